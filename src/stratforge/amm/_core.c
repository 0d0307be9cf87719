/*
 * stratforge.amm._core: the compiled simulation core.
 *
 * One call to simulate() runs one full simulation of the AMM fee-strategy challenge: a GBM fair
 * price, closed-form arbitrage on each AMM (submission first), Poisson retail flow routed
 * optimally across both AMMs, and per-trade edge at the fair price. Every floating-point operation
 * follows the reference engine's order so that results are bit-identical, and every random draw
 * reproduces rand_pcg's Lcg128Xsl64 seeded with rand_core's seed_from_u64, rand_distr 0.4's
 * ziggurat normal, Knuth's Poisson and the log-normal.
 *
 * Strategies are either native (a fixed fee pair, never leaves C), Solidity strategies run by the
 * core's own EVM (_evm.c, an EvmMachine: never leaves C either), or Python objects whose hooks are
 * called only when a trade executes on their AMM. Build with -ffp-contract=off: a fused multiply-add
 * would change the last bit of results and break parity.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "_evm.h"
#include "_twin.h"

typedef unsigned __int128 u128;
typedef __int128 i128;

#define WAD_F 1e18
#define MAX_FEE_WAD ((int64_t)100000000000000000LL) /* 1e17 = 10% */
#define MIN_ROUTE_AMOUNT 0.0001

/* ------------------------------------------------------------------------------------------ */
/* PCG64 (Lcg128Xsl64) and rand_core's seed_from_u64                                           */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    u128 state;
    u128 inc;
} pcg64_t;

#define PCG_MUL (((u128)0x2360ED051FC65DA4ULL << 64) | (u128)0x4385DF649FCCF645ULL)

static inline void pcg_step(pcg64_t *r) { r->state = r->state * PCG_MUL + r->inc; }

static inline uint64_t pcg_next_u64(pcg64_t *r) {
    pcg_step(r);
    /* XSL RR output: xor the halves, rotate right by the top 6 bits */
    unsigned rot = (unsigned)(r->state >> 122);
    uint64_t xsl = (uint64_t)(r->state >> 64) ^ (uint64_t)r->state;
    return (xsl >> rot) | (xsl << ((64 - rot) & 63));
}

static void pcg_from_state_inc(pcg64_t *r, u128 state, u128 inc) {
    r->inc = inc;
    r->state = state + inc;
    pcg_step(r);
}

/* rand_core 0.6 SeedableRng::seed_from_u64: a PCG32 stream fills the 32-byte seed, 4 bytes at a
 * time (little endian); the seed's words are then (state lo, state hi, inc lo, inc hi). */
static void pcg_seed_from_u64(pcg64_t *r, uint64_t s) {
    uint32_t words[8];
    for (int i = 0; i < 8; i++) {
        s = s * 6364136223846793005ULL + 11634580027462260723ULL;
        uint32_t xorshifted = (uint32_t)(((s >> 18) ^ s) >> 27);
        unsigned rot = (unsigned)(s >> 59);
        words[i] = (xorshifted >> rot) | (xorshifted << ((32 - rot) & 31));
    }
    uint64_t w[4];
    for (int i = 0; i < 4; i++) w[i] = (uint64_t)words[2 * i] | ((uint64_t)words[2 * i + 1] << 32);
    u128 state = (u128)w[0] | ((u128)w[1] << 64);
    u128 inc = (u128)w[2] | ((u128)w[3] << 64);
    pcg_from_state_inc(r, state, inc | 1);
}

/* rand's Standard f64: 53 random bits scaled into [0, 1) */
static inline double rand_f64(pcg64_t *r) { return (double)(pcg_next_u64(r) >> 11) * (1.0 / 9007199254740992.0); }

/* Build the double with the given unbiased exponent and 52 mantissa bits */
static inline double float_with_exponent(uint64_t mantissa52, int exponent) {
    uint64_t bits = mantissa52 | ((uint64_t)(1023 + exponent) << 52);
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* rand's Open01 f64: (0, 1) with 52 bits */
static inline double rand_open01(pcg64_t *r) {
    return float_with_exponent(pcg_next_u64(r) >> 12, 0) - (1.0 - 2.220446049250313e-16 / 2.0);
}

/* ------------------------------------------------------------------------------------------ */
/* Ziggurat standard normal (rand_distr 0.4)                                                   */
/* ------------------------------------------------------------------------------------------ */

#define ZIG_LEN 256
static const double ZIG_NORM_R = 3.6541528853610088;
static const double ZIG_NORM_V = 0.00492867323399;
static double zig_x[ZIG_LEN + 1];
static double zig_f[ZIG_LEN + 1];

/* The published tables were computed in double precision and written with 18 decimals; reading
 * them back rounds the small f-values. Doing the same round trip gives the identical tables. */
static double round_trip_18(double v) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.18f", v);
    return strtod(buf, NULL);
}

/* The published tables hold correctly rounded exp/log results. glibc's exp is not correctly
 * rounded everywhere (ZIG_NORM_F[94] came out one ulp high), so the table construction evaluates
 * exp and log in long double and rounds once; the arithmetic between them stays in double. */
static double exp_rounded(double v) { return (double)expl((long double)v); }

/* exp as the reference's random distributions compute it.
 *
 * rand_distr 0.4's generic distributions (LogNormal for retail sizes, Poisson's e^-lambda) do their
 * math through num-traits, which the reference's build compiles without its `std` feature, so their
 * `exp` is Rust's `libm` crate (a port of musl's fdlibm-derived exp), not the platform's C library.
 * Code on concrete f64 (the GBM step, the ziggurat's density and tail) calls the platform's exp/log,
 * as this core does. Written out here because no C library ships this exact exp, and one differing
 * last bit in a trade size changes what a dynamic strategy sees. Same operations, in the same order,
 * as the crate (no contraction: this file is built with -ffp-contract=off). */
static double libm_crate_exp(double x) {
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    const double inv_ln2 = 1.44269504088896338700e+00;
    const double p1 = 1.66666666666666019037e-01, p2 = -2.77777777770155933842e-03,
                 p3 = 6.61375632143793436117e-05, p4 = -1.65339022054652515390e-06,
                 p5 = 4.13813679705723846039e-08;
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    const uint32_t high = (uint32_t)(bits >> 32) & 0x7fffffffu; /* high word of |x| */
    const int negative = (int)(bits >> 63);
    if (high >= 0x4086232bu) { /* |x| >= 708.39: NaN, overflow or (near) underflow */
        if (x != x) return x;
        if (x > 709.782712893383973096) return x * 0x1p1023;
        if (x < -745.13321910194110842) return 0.0;
    }
    double hi, lo;
    int k;
    if (high > 0x3fd62e42u) { /* |x| > ln2/2: reduce to x = k ln2 + r */
        k = high >= 0x3ff0a2b2u ? (int)(inv_ln2 * x + (negative ? -0.5 : 0.5)) : 1 - 2 * negative;
        hi = x - (double)k * ln2_hi; /* exact */
        lo = (double)k * ln2_lo;
        x = hi - lo;
    } else if (high > 0x3e300000u) { /* |x| > 2^-28 */
        k = 0;
        hi = x;
        lo = 0.0;
    } else {
        return 1.0 + x;
    }
    const double xx = x * x;
    const double c = x - xx * (p1 + xx * (p2 + xx * (p3 + xx * (p4 + xx * p5))));
    const double y = 1.0 + (x * c / (2.0 - c) - lo + hi);
    return k == 0 ? y : scalbn(y, k);
}

static double log_rounded(double v) { return (double)logl((long double)v); }

static void zig_init(void) {
    double x[ZIG_LEN + 1];
    x[0] = ZIG_NORM_V / exp_rounded(-ZIG_NORM_R * ZIG_NORM_R / 2.0);
    x[1] = ZIG_NORM_R;
    for (int i = 2; i < ZIG_LEN; i++) {
        double last = x[i - 1];
        x[i] = sqrt(-2.0 * log_rounded(ZIG_NORM_V / last + exp_rounded(-last * last / 2.0)));
    }
    x[ZIG_LEN] = 0.0;
    for (int i = 0; i <= ZIG_LEN; i++) {
        zig_x[i] = round_trip_18(x[i]);
        zig_f[i] = round_trip_18(exp_rounded(-x[i] * x[i] / 2.0));
    }
}

static double std_normal(pcg64_t *r) {
    for (;;) {
        uint64_t bits = pcg_next_u64(r);
        unsigned i = (unsigned)(bits & 0xff);
        double u = float_with_exponent(bits >> 12, 1) - 3.0; /* [-1, 1) */
        double x = u * zig_x[i];
        if (fabs(x) < zig_x[i + 1]) return x;
        if (i == 0) {
            /* tail beyond R: Marsaglia's exponential rejection */
            double tx = 1.0, ty = 0.0;
            while (-2.0 * ty < tx * tx) {
                double x_ = rand_open01(r);
                double y_ = rand_open01(r);
                tx = log(x_) / ZIG_NORM_R;
                ty = log(y_);
            }
            return u < 0.0 ? tx - ZIG_NORM_R : ZIG_NORM_R - tx;
        }
        if (zig_f[i + 1] + (zig_f[i] - zig_f[i + 1]) * rand_f64(r) < exp(-x * x / 2.0)) return x;
    }
}

/* Knuth's product of uniforms (rand_distr's algorithm for lambda < 12) */
static inline uint64_t poisson_knuth(pcg64_t *r, double exp_neg_lambda) {
    double result = 0.0, p = 1.0;
    while (p > exp_neg_lambda) {
        p = p * rand_f64(r);
        result = result + 1.0;
    }
    return (uint64_t)(result - 1.0);
}

/* ------------------------------------------------------------------------------------------ */
/* WAD conversions                                                                              */
/* ------------------------------------------------------------------------------------------ */

/* f64 -> WAD: truncating, saturating cast of v * 1e18 (Rust's `as i128`) */
static inline i128 wad_from_f64(double v) {
    double s = v * WAD_F;
    if (!(s == s)) return 0;
    if (s >= 1.7014118346046923e38) return (i128)(((u128)1 << 127) - 1);
    if (s <= -1.7014118346046923e38) return -(i128)(((u128)1 << 127) - 1) - 1;
    return (i128)s;
}

static inline double wad_to_f64(i128 w) { return (double)w / WAD_F; }

/* ------------------------------------------------------------------------------------------ */
/* AMM state and strategies                                                                     */
/* ------------------------------------------------------------------------------------------ */

enum {
    STRAT_FIXED = 0,
    STRAT_PYTHON = 1,
    STRAT_PYTHON_RAW = 2,
    STRAT_EVM = 3,  /* the core's EVM (_evm.c) */
    STRAT_TWIN = 4, /* a native twin of a Solidity family (_frontier_twin.c) */
};

typedef struct {
    double rx, ry;           /* reserves */
    double fees_x, fees_y;   /* fees collected outside the reserves */
    int64_t bid_wad, ask_wad;
    double bid, ask;         /* fees as f64, as the reference converts them */
    int kind;
    PyObject *obj;           /* strategy instance (borrowed), or NULL for native */
    PyObject *swap_fn;       /* bound after_swap / after_swap_raw (owned) */
    /* accounting */
    double edge, arb_volume_y, retail_volume_y, sum_bid, sum_ask;
    long n_arb, n_retail, hook_calls, hook_failures;
} amm_t;

static inline void amm_set_fees(amm_t *a, int64_t bid, int64_t ask) {
    a->bid_wad = bid;
    a->ask_wad = ask;
    a->bid = wad_to_f64(bid);
    a->ask = wad_to_f64(ask);
}

static PyObject *int_from_i128(i128 v) {
    unsigned char bytes[16];
    u128 u = (u128)v;
    for (int i = 0; i < 16; i++) bytes[i] = (unsigned char)(u >> (8 * i));
    return _PyLong_FromByteArray(bytes, 16, 1, 1);
}

/* Accepts a Python int in [0, MAX_FEE]; returns -1 when it is anything else. */
static int64_t fee_from_object(PyObject *o) {
    if (!PyLong_Check(o)) return -1;
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow || v < 0 || v > MAX_FEE_WAD) {
        PyErr_Clear();
        return -1;
    }
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    return (int64_t)v;
}

static void put_u256(unsigned char *dst, u128 v) {
    memset(dst, 0, 16);
    for (int i = 0; i < 16; i++) dst[31 - i] = (unsigned char)(v >> (8 * i));
}

/* After every executed trade the AMM's strategy may move its fees. Returns 0, or -1 when a
 * Python exception must abort the simulation (KeyboardInterrupt, MemoryError, SystemExit). */
static int amm_after_swap(amm_t *a, int is_buy, double amount_x, double amount_y, uint64_t t) {
    if (a->kind == STRAT_FIXED) return 0;
    i128 wx = wad_from_f64(amount_x), wy = wad_from_f64(amount_y);
    i128 wrx = wad_from_f64(a->rx), wry = wad_from_f64(a->ry);
    PyObject *res = NULL;
    a->hook_calls++;
    if (a->kind == STRAT_TWIN) {
        int64_t bid = 0, ask = 0;
        int rc = twin_after_swap(a->obj, is_buy, (u128)wx, (u128)wy, t, (u128)wrx, (u128)wry, &bid, &ask);
        if (rc < 0) return -1; /* TwinOutOfRange: the engine re-runs the simulation in the EVM */
        if (rc == 1)
            amm_set_fees(a, bid, ask);
        else
            a->hook_failures++;
        return 0;
    }
    if (a->kind == STRAT_PYTHON_RAW || a->kind == STRAT_EVM) {
        /* ABI calldata of afterSwap(TradeInfo): selector + 6 words (values are positive here,
         * the reference encodes the low 128 bits of each) */
        unsigned char cd[196];
        cd[0] = 0xc2; cd[1] = 0xba; cd[2] = 0xbb; cd[3] = 0x57;
        put_u256(cd + 4, (u128)(is_buy ? 1 : 0));
        put_u256(cd + 36, (u128)wx);
        put_u256(cd + 68, (u128)wy);
        put_u256(cd + 100, (u128)t);
        put_u256(cd + 132, (u128)wrx);
        put_u256(cd + 164, (u128)wry);
        if (a->kind == STRAT_EVM) {
            int64_t bid = 0, ask = 0;
            int rc = evm_after_swap(a->obj, cd, sizeof cd, &bid, &ask);
            if (rc < 0) return -1;
            if (rc == 1)
                amm_set_fees(a, bid, ask);
            else
                a->hook_failures++; /* keep the previous fees */
            return 0;
        }
        PyObject *arg = PyBytes_FromStringAndSize((const char *)cd, 196);
        if (!arg) return -1;
        res = PyObject_CallOneArg(a->swap_fn, arg);
        Py_DECREF(arg);
    } else {
        PyObject *args[6];
        args[0] = PyBool_FromLong(is_buy);
        args[1] = int_from_i128(wx);
        args[2] = int_from_i128(wy);
        args[3] = PyLong_FromUnsignedLongLong(t);
        args[4] = int_from_i128(wrx);
        args[5] = int_from_i128(wry);
        int ok = 1;
        for (int i = 0; i < 6; i++) ok = ok && args[i] != NULL;
        if (ok) res = PyObject_Vectorcall(a->swap_fn, args, 6, NULL);
        for (int i = 0; i < 6; i++) Py_XDECREF(args[i]);
        if (!ok) return -1;
    }
    if (res == NULL) {
        if (PyErr_ExceptionMatches(PyExc_KeyboardInterrupt) || PyErr_ExceptionMatches(PyExc_MemoryError) ||
            PyErr_ExceptionMatches(PyExc_SystemExit))
            return -1;
        PyErr_Clear();
        a->hook_failures++;
        return 0;
    }
    int64_t bid = -1, ask = -1;
    int valid = 0;
    if (a->kind == STRAT_PYTHON_RAW) {
        if (PyBytes_Check(res))
            valid = decode_fee_pair((const unsigned char *)PyBytes_AS_STRING(res), (size_t)PyBytes_GET_SIZE(res),
                                    &bid, &ask) == FEES_OK;
    } else if (PyTuple_Check(res) && PyTuple_GET_SIZE(res) == 2) {
        bid = fee_from_object(PyTuple_GET_ITEM(res, 0));
        ask = fee_from_object(PyTuple_GET_ITEM(res, 1));
        valid = bid >= 0 && ask >= 0;
    }
    Py_DECREF(res);
    if (valid)
        amm_set_fees(a, bid, ask);
    else
        a->hook_failures++; /* keep the previous fees */
    return 0;
}

/* --- CFMM with fee on input, fees kept outside the reserves (k unchanged by fees) --- */

/* AMM buys X (trader sells X). Returns y_out, or 0 when nothing trades. */
static inline double quote_buy_x(const amm_t *a, double amount_x, double *fee_amount) {
    if (amount_x <= 0.0) return 0.0;
    double fee = a->bid;
    double gamma = fmin(fmax(1.0 - fee, 0.0), 1.0);
    if (gamma <= 0.0) return 0.0;
    double net_x = amount_x * gamma;
    double k = a->rx * a->ry;
    double new_rx = a->rx + net_x;
    double new_ry = k / new_rx;
    double y_out = a->ry - new_ry;
    if (y_out > 0.0) {
        *fee_amount = amount_x * fee;
        return y_out;
    }
    return 0.0;
}

/* AMM sells amount_x of X (trader pays Y). Returns the total Y in, or 0. */
static inline double quote_sell_x(const amm_t *a, double amount_x, double *fee_amount) {
    if (amount_x <= 0.0 || amount_x >= a->rx) return 0.0;
    double k = a->rx * a->ry;
    double fee = a->ask;
    double gamma = fmin(fmax(1.0 - fee, 0.0), 1.0);
    if (gamma <= 0.0) return 0.0;
    double new_rx = a->rx - amount_x;
    double new_ry = k / new_rx;
    double net_y = new_ry - a->ry;
    if (net_y <= 0.0) return 0.0;
    double total_y = net_y / gamma;
    *fee_amount = total_y - net_y;
    return total_y;
}

/* Trader pays amount_y of Y for X. Returns x_out, or 0. */
static inline double quote_x_for_y(const amm_t *a, double amount_y, double *fee_amount) {
    if (amount_y <= 0.0) return 0.0;
    double k = a->rx * a->ry;
    double fee = a->ask;
    double gamma = fmin(fmax(1.0 - fee, 0.0), 1.0);
    if (gamma <= 0.0) return 0.0;
    double net_y = amount_y * gamma;
    double new_ry = a->ry + net_y;
    double new_rx = k / new_ry;
    double x_out = a->rx - new_rx;
    if (x_out > 0.0) {
        *fee_amount = amount_y * fee;
        return x_out;
    }
    return 0.0;
}

/* Each execute_* returns 1 when the trade executed, 0 when not, -1 on a fatal Python error.
 * *reported receives the f64 value of the WAD amount the strategy was told (as the reference's
 * router reads it back from the trade info). */
static int execute_buy_x(amm_t *a, double amount_x, uint64_t t, double *y_out_p, double *reported_y) {
    double fee_amount = 0.0;
    double y_out = quote_buy_x(a, amount_x, &fee_amount);
    if (y_out <= 0.0) return 0;
    double net_x = amount_x - fee_amount;
    a->rx += net_x;
    a->fees_x += fee_amount;
    a->ry -= y_out;
    *y_out_p = y_out;
    if (reported_y) *reported_y = wad_to_f64(wad_from_f64(y_out));
    return amm_after_swap(a, 1, amount_x, y_out, t) < 0 ? -1 : 1;
}

static int execute_sell_x(amm_t *a, double amount_x, uint64_t t, double *total_y_p) {
    double fee_amount = 0.0;
    double total_y = quote_sell_x(a, amount_x, &fee_amount);
    if (total_y <= 0.0) return 0;
    double net_y = total_y - fee_amount;
    a->rx -= amount_x;
    a->ry += net_y;
    a->fees_y += fee_amount;
    *total_y_p = total_y;
    return amm_after_swap(a, 0, amount_x, total_y, t) < 0 ? -1 : 1;
}

static int execute_buy_x_with_y(amm_t *a, double amount_y, uint64_t t, double *reported_x) {
    double fee_amount = 0.0;
    double x_out = quote_x_for_y(a, amount_y, &fee_amount);
    if (x_out <= 0.0) return 0;
    double net_y = amount_y - fee_amount;
    a->rx -= x_out;
    a->ry += net_y;
    a->fees_y += fee_amount;
    *reported_x = wad_to_f64(wad_from_f64(x_out));
    return amm_after_swap(a, 0, x_out, amount_y, t) < 0 ? -1 : 1;
}

/* Closed-form optimal arbitrage against the fee-on-input curve. Returns -1 on fatal error. */
static int arbitrage(amm_t *a, double p, uint64_t t) {
    double spot = a->ry / a->rx;
    if (spot < p) {
        /* AMM underprices X: buy X from it (the AMM sells X at its ask fee) */
        double k = a->rx * a->ry;
        double gamma = 1.0 - a->ask;
        if (gamma <= 0.0 || p <= 0.0) return 0;
        double new_x = sqrt(k / (gamma * p));
        double amount_x = a->rx - new_x;
        if (amount_x <= 0.0) return 0;
        amount_x = fmin(amount_x, a->rx * 0.99);
        double fee_amount = 0.0;
        double total_y = quote_sell_x(a, amount_x, &fee_amount);
        if (total_y <= 0.0) return 0;
        double profit = amount_x * p - total_y;
        if (profit <= 0.0) return 0;
        double y = 0.0;
        int rc = execute_sell_x(a, amount_x, t, &y);
        if (rc <= 0) return rc;
        a->arb_volume_y += total_y;
        a->edge += -profit;
        a->n_arb++;
    } else if (spot > p) {
        /* AMM overprices X: sell X to it (the AMM buys X at its bid fee) */
        double k = a->rx * a->ry;
        double gamma = 1.0 - a->bid;
        if (gamma <= 0.0 || p <= 0.0) return 0;
        double x_virtual = sqrt(k * gamma / p);
        double net_x = x_virtual - a->rx;
        double amount_x = net_x / gamma;
        if (amount_x <= 0.0) return 0;
        double fee_amount = 0.0;
        double y_out = quote_buy_x(a, amount_x, &fee_amount);
        if (y_out <= 0.0) return 0;
        double profit = y_out - amount_x * p;
        if (profit <= 0.0) return 0;
        double y = 0.0;
        int rc = execute_buy_x(a, amount_x, t, &y, NULL);
        if (rc <= 0) return rc;
        a->arb_volume_y += y_out;
        a->edge += -profit;
        a->n_arb++;
    }
    return 0;
}

/* Optimal split of an order across two AMMs (equalises marginal prices after fees). */
static inline void split_two(double x1, double y1, double g1, double x2, double y2, double g2, double total,
                             double *out1, double *out2) {
    /* For a buy the caller passes (x, y); for a sell (y, x): the formula is symmetric. */
    double a1 = sqrt(x1 * g1 * y1);
    double a2 = sqrt(x2 * g2 * y2);
    if (a2 == 0.0) {
        *out1 = total;
        *out2 = 0.0;
        return;
    }
    double r = a1 / a2;
    double numerator = r * (y2 + g2 * total) - y1;
    double denominator = g1 + r * g2;
    double amount1 = denominator == 0.0 ? total / 2.0 : numerator / denominator;
    amount1 = fmin(fmax(amount1, 0.0), total);
    *out1 = amount1;
    *out2 = total - amount1;
}

static int retail_buy(amm_t *a, double y, double p, uint64_t t) {
    /* trader pays y of Y for X: the AMM sells X */
    double x_rep = 0.0;
    int rc = execute_buy_x_with_y(a, y, t, &x_rep);
    if (rc <= 0) return rc;
    a->retail_volume_y += y;
    a->edge += y - x_rep * p;
    a->n_retail++;
    return 0;
}

static int retail_sell(amm_t *a, double x, double p, uint64_t t) {
    /* trader sells x of X for Y: the AMM buys X */
    double y_out = 0.0, y_rep = 0.0;
    int rc = execute_buy_x(a, x, t, &y_out, &y_rep);
    if (rc <= 0) return rc;
    a->retail_volume_y += y_rep;
    a->edge += x * p - y_rep;
    a->n_retail++;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Strategy binding                                                                             */
/* ------------------------------------------------------------------------------------------ */

static int bind_strategy(amm_t *a, PyObject *spec, double x0, double y0) {
    a->obj = NULL;
    a->swap_fn = NULL;
    if (PyTuple_Check(spec)) {
        /* native fixed fees: (bid_wad, ask_wad) */
        if (PyTuple_GET_SIZE(spec) != 2) goto bad_tuple;
        int64_t bid = fee_from_object(PyTuple_GET_ITEM(spec, 0));
        int64_t ask = fee_from_object(PyTuple_GET_ITEM(spec, 1));
        if (bid < 0 || ask < 0) goto bad_tuple;
        a->kind = STRAT_FIXED;
        amm_set_fees(a, bid, ask);
        return 0;
    bad_tuple:
        PyErr_SetString(PyExc_ValueError, "a native strategy is a (bid_wad, ask_wad) pair within [0, 1e17]");
        return -1;
    }
    a->obj = spec;
    PyObject *raw = NULL;
    if (evm_is_machine(spec)) {
        a->kind = STRAT_EVM;
    } else if (twin_is(spec)) {
        a->kind = STRAT_TWIN;
    } else if ((raw = PyObject_GetAttrString(spec, "after_swap_raw")) != NULL) {
        a->kind = STRAT_PYTHON_RAW;
        a->swap_fn = raw;
    } else {
        PyErr_Clear();
        a->kind = STRAT_PYTHON;
        a->swap_fn = PyObject_GetAttrString(spec, "after_swap");
        if (!a->swap_fn) return -1;
    }
    PyObject *ix = int_from_i128(wad_from_f64(x0));
    PyObject *iy = int_from_i128(wad_from_f64(y0));
    if (!ix || !iy) {
        Py_XDECREF(ix);
        Py_XDECREF(iy);
        return -1;
    }
    PyObject *res = PyObject_CallMethod(spec, "after_initialize", "OO", ix, iy);
    Py_DECREF(ix);
    Py_DECREF(iy);
    if (!res) return -1;
    int64_t bid = -1, ask = -1;
    if (PyTuple_Check(res) && PyTuple_GET_SIZE(res) == 2) {
        bid = fee_from_object(PyTuple_GET_ITEM(res, 0));
        ask = fee_from_object(PyTuple_GET_ITEM(res, 1));
    }
    Py_DECREF(res);
    if (bid < 0 || ask < 0) {
        PyErr_SetString(PyExc_ValueError,
                        "afterInitialize must return two fees in WAD between 0 and 1e17 (10%)");
        return -1;
    }
    amm_set_fees(a, bid, ask);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* simulate()                                                                                   */
/* ------------------------------------------------------------------------------------------ */

static PyObject *amm_result(const amm_t *a, double init_value, double p_final, long n_steps) {
    double final_value = (a->rx * p_final + a->ry) + (a->fees_x * p_final + a->fees_y);
    long fallbacks = a->kind == STRAT_EVM ? evm_fallback_calls(a->obj) : 0;
    return Py_BuildValue("{s:d,s:d,s:d,s:d,s:d,s:d,s:l,s:l,s:l,s:l,s:l}", "edge", a->edge, "pnl",
                         final_value - init_value, "arb_volume_y", a->arb_volume_y, "retail_volume_y",
                         a->retail_volume_y, "avg_bid_fee", a->sum_bid / (double)n_steps, "avg_ask_fee",
                         a->sum_ask / (double)n_steps, "arb_trades", a->n_arb, "retail_trades", a->n_retail,
                         "hook_calls", a->hook_calls, "hook_failures", a->hook_failures, "evm_fallback_calls",
                         fallbacks);
}

#define HIST_COLS 8

PyDoc_STRVAR(simulate_doc,
             "simulate(seed, n_steps, initial_price, initial_x, initial_y, gbm_mu, gbm_sigma, gbm_dt,\n"
             "         retail_arrival_rate, retail_mean_size, retail_size_sigma, retail_buy_prob,\n"
             "         submission, normalizer, history=None) -> (submission_result, normalizer_result)\n\n"
             "Runs one simulation. A strategy is a (bid_wad, ask_wad) tuple (native fixed fees) or a\n"
             "strategy instance. `history`, if given, is a writable float64 buffer of n_steps*8 values\n"
             "receiving per step: fair price, submission spot, normalizer spot, submission bid fee,\n"
             "submission ask fee, submission pnl, normalizer pnl, submission cumulative edge.");

static PyObject *py_simulate(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"seed", "n_steps", "initial_price", "initial_x", "initial_y", "gbm_mu",
                             "gbm_sigma", "gbm_dt", "retail_arrival_rate", "retail_mean_size",
                             "retail_size_sigma", "retail_buy_prob", "submission", "normalizer",
                             "history", NULL};
    unsigned long long seed;
    long n_steps;
    double p0, x0, y0, mu, sigma, dt, rate, mean_size, size_sigma, buy_prob;
    PyObject *sub_spec, *norm_spec, *history = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "KlddddddddddOO|O", kwlist, &seed, &n_steps, &p0, &x0, &y0,
                                     &mu, &sigma, &dt, &rate, &mean_size, &size_sigma, &buy_prob, &sub_spec,
                                     &norm_spec, &history))
        return NULL;
    if (n_steps <= 0) {
        PyErr_SetString(PyExc_ValueError, "n_steps must be positive");
        return NULL;
    }
    double lambda = fmax(rate, 0.01);
    if (lambda >= 12.0) {
        PyErr_SetString(PyExc_ValueError, "retail_arrival_rate must be below 12 (Knuth's Poisson sampler)");
        return NULL;
    }
    Py_buffer hist = {0};
    double *h = NULL;
    if (history != Py_None) {
        if (PyObject_GetBuffer(history, &hist, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) return NULL;
        if (hist.len < (Py_ssize_t)(n_steps * HIST_COLS * sizeof(double))) {
            PyBuffer_Release(&hist);
            PyErr_SetString(PyExc_ValueError, "history buffer must hold n_steps * 8 float64 values");
            return NULL;
        }
        h = (double *)hist.buf;
    }

    amm_t amms[2];
    memset(amms, 0, sizeof amms);
    PyObject *result = NULL;
    for (int i = 0; i < 2; i++) {
        amms[i].rx = x0;
        amms[i].ry = y0;
        amm_set_fees(&amms[i], 30 * 100000000000000LL, 30 * 100000000000000LL);
    }
    if (bind_strategy(&amms[0], sub_spec, x0, y0) < 0) goto done;
    if (bind_strategy(&amms[1], norm_spec, x0, y0) < 0) goto done;

    pcg64_t price_rng, retail_rng;
    pcg_seed_from_u64(&price_rng, (uint64_t)seed);
    pcg_seed_from_u64(&retail_rng, (uint64_t)seed + 1);
    const double drift = (mu - 0.5 * sigma * sigma) * dt;
    const double vol = sigma * sqrt(dt);
    /* Poisson's e^-lambda and the log-normal sizes: the libm crate's exp (see libm_crate_exp);
     * the GBM step and ln(mean): the platform's, as the reference's concrete-f64 code */
    const double exp_neg_lambda = libm_crate_exp(-lambda);
    const double ln_sigma = fmax(size_sigma, 0.01);
    const double ln_mu = log(fmax(mean_size, 0.01)) - 0.5 * ln_sigma * ln_sigma;
    const double init_value = x0 * p0 + y0;
    double p = p0;
    amm_t *s = &amms[0], *n = &amms[1];

    for (long t = 0; t < n_steps; t++) {
        uint64_t ts = (uint64_t)t;
        p *= exp(drift + vol * std_normal(&price_rng));
        if (arbitrage(s, p, ts) < 0 || arbitrage(n, p, ts) < 0) goto done;

        uint64_t n_orders = poisson_knuth(&retail_rng, exp_neg_lambda);
        for (uint64_t o = 0; o < n_orders; o++) {
            double size = libm_crate_exp(ln_mu + ln_sigma * std_normal(&retail_rng));
            int is_buy = rand_f64(&retail_rng) < buy_prob;
            double a1, a2;
            if (is_buy) {
                split_two(s->rx, s->ry, 1.0 - s->ask, n->rx, n->ry, 1.0 - n->ask, size, &a1, &a2);
                if (a1 > MIN_ROUTE_AMOUNT && retail_buy(s, a1, p, ts) < 0) goto done;
                if (a2 > MIN_ROUTE_AMOUNT && retail_buy(n, a2, p, ts) < 0) goto done;
            } else {
                double total_x = size / p;
                split_two(s->ry, s->rx, 1.0 - s->bid, n->ry, n->rx, 1.0 - n->bid, total_x, &a1, &a2);
                if (a1 > MIN_ROUTE_AMOUNT && retail_sell(s, a1, p, ts) < 0) goto done;
                if (a2 > MIN_ROUTE_AMOUNT && retail_sell(n, a2, p, ts) < 0) goto done;
            }
        }
        for (int i = 0; i < 2; i++) {
            amms[i].sum_bid += amms[i].bid;
            amms[i].sum_ask += amms[i].ask;
        }
        if (h) {
            double *row = h + t * HIST_COLS;
            row[0] = p;
            row[1] = s->ry / s->rx;
            row[2] = n->ry / n->rx;
            row[3] = s->bid;
            row[4] = s->ask;
            row[5] = (s->rx * p + s->ry) + (s->fees_x * p + s->fees_y) - init_value;
            row[6] = (n->rx * p + n->ry) + (n->fees_x * p + n->fees_y) - init_value;
            row[7] = s->edge;
        }
    }
    {
        PyObject *rs = amm_result(s, init_value, p, n_steps);
        PyObject *rn = amm_result(n, init_value, p, n_steps);
        if (rs && rn) result = PyTuple_Pack(2, rs, rn);
        Py_XDECREF(rs);
        Py_XDECREF(rn);
    }
done:
    for (int i = 0; i < 2; i++) Py_XDECREF(amms[i].swap_fn);
    if (h) PyBuffer_Release(&hist);
    return result;
}

/* ------------------------------------------------------------------------------------------ */
/* Generator access for tests: the raw streams, checked against published vectors             */
/* ------------------------------------------------------------------------------------------ */

PyDoc_STRVAR(draw_doc,
             "draw(kind, seed, n, param=0.0) -> list\n\n"
             "Draws n values from a fresh Pcg64::seed_from_u64(seed) stream. kind is one of 'u64',\n"
             "'f64' (Standard), 'open01', 'normal' (ziggurat StandardNormal), 'poisson' (param=lambda),\n"
             "'lognormal' (param=sigma, mu=0).");

static PyObject *py_draw(PyObject *self, PyObject *args) {
    const char *kind;
    unsigned long long seed;
    Py_ssize_t n;
    double param = 0.0;
    if (!PyArg_ParseTuple(args, "sKn|d", &kind, &seed, &n, &param)) return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "n must be >= 0");
        return NULL;
    }
    pcg64_t r;
    pcg_seed_from_u64(&r, (uint64_t)seed);
    PyObject *out = PyList_New(n);
    if (!out) return NULL;
    double exp_neg = libm_crate_exp(-param);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v;
        if (strcmp(kind, "u64") == 0)
            v = PyLong_FromUnsignedLongLong(pcg_next_u64(&r));
        else if (strcmp(kind, "f64") == 0)
            v = PyFloat_FromDouble(rand_f64(&r));
        else if (strcmp(kind, "open01") == 0)
            v = PyFloat_FromDouble(rand_open01(&r));
        else if (strcmp(kind, "normal") == 0)
            v = PyFloat_FromDouble(std_normal(&r));
        else if (strcmp(kind, "poisson") == 0)
            v = PyLong_FromUnsignedLongLong(poisson_knuth(&r, exp_neg));
        else if (strcmp(kind, "lognormal") == 0)
            v = PyFloat_FromDouble(libm_crate_exp(param * std_normal(&r)));
        else {
            Py_DECREF(out);
            PyErr_Format(PyExc_ValueError, "unknown kind %s", kind);
            return NULL;
        }
        if (!v) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, v);
    }
    return out;
}

PyDoc_STRVAR(pcg_new_doc, "pcg_stream(state, stream, n) -> list of n u64 from Lcg128Xsl64::new(state, stream)");

static PyObject *py_pcg_stream(PyObject *self, PyObject *args) {
    PyObject *state_o, *stream_o;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "OOn", &state_o, &stream_o, &n)) return NULL;
    unsigned char sb[16], tb[16];
    if (_PyLong_AsByteArray((PyLongObject *)state_o, sb, 16, 1, 0) < 0) return NULL;
    if (_PyLong_AsByteArray((PyLongObject *)stream_o, tb, 16, 1, 0) < 0) return NULL;
    u128 st = 0, sm = 0;
    for (int i = 15; i >= 0; i--) {
        st = (st << 8) | sb[i];
        sm = (sm << 8) | tb[i];
    }
    pcg64_t r;
    pcg_from_state_inc(&r, st, (sm << 1) | 1);
    PyObject *out = PyList_New(n);
    if (!out) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) PyList_SET_ITEM(out, i, PyLong_FromUnsignedLongLong(pcg_next_u64(&r)));
    return out;
}

static PyObject *py_ziggurat_tables(PyObject *self, PyObject *noargs) {
    PyObject *xs = PyList_New(ZIG_LEN + 1), *fs = PyList_New(ZIG_LEN + 1);
    for (int i = 0; i <= ZIG_LEN; i++) {
        PyList_SET_ITEM(xs, i, PyFloat_FromDouble(zig_x[i]));
        PyList_SET_ITEM(fs, i, PyFloat_FromDouble(zig_f[i]));
    }
    PyObject *res = PyTuple_Pack(2, xs, fs);
    Py_DECREF(xs);
    Py_DECREF(fs);
    return res;
}

static PyObject *py_libm_crate_exp(PyObject *self, PyObject *arg) {
    double v = PyFloat_AsDouble(arg);
    if (v == -1.0 && PyErr_Occurred()) return NULL;
    return PyFloat_FromDouble(libm_crate_exp(v));
}

static PyObject *py_wad_from_f64(PyObject *self, PyObject *arg) {
    double v = PyFloat_AsDouble(arg);
    if (v == -1.0 && PyErr_Occurred()) return NULL;
    return int_from_i128(wad_from_f64(v));
}

static PyMethodDef core_methods[] = {
    {"simulate", (PyCFunction)(void (*)(void))py_simulate, METH_VARARGS | METH_KEYWORDS, simulate_doc},
    {"draw", py_draw, METH_VARARGS, draw_doc},
    {"pcg_stream", py_pcg_stream, METH_VARARGS, pcg_new_doc},
    {"ziggurat_tables", py_ziggurat_tables, METH_NOARGS, "The (x, f) ziggurat tables in use."},
    {"libm_crate_exp", py_libm_crate_exp, METH_O, "exp as Rust's libm crate computes it (see _core.c)."},
    {"wad_from_f64", py_wad_from_f64, METH_O, "Truncating f64 -> WAD conversion, as the reference does."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef core_module = {PyModuleDef_HEAD_INIT, "_core",
                                         "Compiled simulation core of stratforge.amm.", -1, core_methods};

PyMODINIT_FUNC PyInit__core(void) {
    zig_init();
    PyObject *m = PyModule_Create(&core_module);
    if (m && (evm_add_to_module(m) < 0 || twin_add_to_module(m) < 0)) Py_CLEAR(m);
    return m;
}
