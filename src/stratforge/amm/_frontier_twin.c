/*
 * A native twin of the explorer's `frontier` template (explore/templates/frontier.sol.template).
 *
 * Why it exists: the explorer scores thousands of parameter sets of this one family, and the EVM,
 * however fast, spends most of a call on what the bytecode does around the arithmetic (ABI decoding,
 * checked-math guards, jumps, storage gas). This file computes the same afterSwap / afterInitialize
 * in C with the same integer semantics, so a candidate simulation costs a fraction of an EVM one.
 *
 * Exactness: every statement mirrors the Solidity source in its order, with uint256 semantics:
 * WAD products and quotients floor like `(x * y) / WAD` and `(x * WAD) / y`, a subtraction below
 * zero or a division by zero reverts the call (state kept, previous fees kept, as the EVM does).
 * Values are held in 128 bits; products are formed in 256 bits. Anything the twin does not model
 * exactly makes it give up with TwinOutOfRange instead of guessing, and the engine then runs that
 * simulation in the EVM: a value at or above 2^128, and any call whose gas could reach the hook's
 * limit. Gas is bounded per call as storage gas (EIP-2929 cold/warm, EIP-2200 SSTORE, computed
 * exactly from the slot values) plus a fixed bound for everything else, measured against the EVM
 * (tests/amm/test_frontier_twin.py checks the EVM's gas never exceeds the twin's bound).
 * Whatever the twin computes is also checked bit-identical against the compiled source through the
 * EVM before the explorer promotes it (explore/champion.py).
 */
#include "_twin.h"

#include <string.h>

typedef unsigned __int128 u128;

#define U128_MAX (~(u128)0)
#define WAD ((u128)1000000000000000000ULL)
#define WAD_SQRT ((u128)1000000000ULL)
#define MAX_FEE (WAD / 10)
#define GAS_HOOK 250000
#define STIPEND 2300
/* Gas of a call besides storage: intrinsic gas, calldata, ABI decoding, arithmetic, warm reloads.
 * The EVM spends at most ~37.4k of it in afterSwap (simulations at and around the defaults, every
 * switch off) and 22.6k in afterInitialize (one path); the bounds leave room for paths not taken. */
#define OTHER_GAS_SWAP 60000
#define OTHER_GAS_INIT 26000

/* ---- parameters, in the order FrontierTwin(params) takes them (FrontierTwin.PARAMS) ---------- */
enum {
    P_BASE_FEE, P_SIGMA_K, P_LAMBDA_K, P_FLOW_K, P_TOX_K1, P_TOX_K2, P_TOX_K3, P_ACT_K, P_STALE_K,
    P_STALE_CUT, P_DIR_K, P_ARB_BOOST_K, P_NORM_W, P_NORM_UNDERCUT, P_NORM_MARGIN, P_ALPHA_ARB,
    P_ALPHA_FIRST, P_ALPHA_LATER, P_SHOCK_K, P_ARB_MAX_RATIO, P_SIGNAL_RATIO, P_SIGMA_DECAY,
    P_LAMBDA_DECAY, P_SIZE_DECAY, P_SIZE_BLEND, P_TOX_DECAY, P_TOX_BLEND, P_ACT_DECAY, P_ACT_BLEND,
    P_DIR_DECAY, P_BOOST_DECAY, P_TAIL_KNEE, P_TAIL_SLOPE_HI, P_TAIL_SLOPE_LO, P_USE_SHOCK_GATE,
    P_USE_ARB_CLASSIFIER, P_USE_ELAPSED_DECAY, P_USE_TAIL, P_USE_NORM_ARB, N_PARAMS
};
static const char *const PARAM_NAMES[N_PARAMS] = {
    "BASE_FEE", "SIGMA_K", "LAMBDA_K", "FLOW_K", "TOX_K1", "TOX_K2", "TOX_K3", "ACT_K", "STALE_K",
    "STALE_CUT", "DIR_K", "ARB_BOOST_K", "NORM_W", "NORM_UNDERCUT", "NORM_MARGIN", "ALPHA_ARB",
    "ALPHA_FIRST", "ALPHA_LATER", "SHOCK_K", "ARB_MAX_RATIO", "SIGNAL_RATIO", "SIGMA_DECAY",
    "LAMBDA_DECAY", "SIZE_DECAY", "SIZE_BLEND", "TOX_DECAY", "TOX_BLEND", "ACT_DECAY", "ACT_BLEND",
    "DIR_DECAY", "BOOST_DECAY", "TAIL_KNEE", "TAIL_SLOPE_HI", "TAIL_SLOPE_LO", "USE_SHOCK_GATE",
    "USE_ARB_CLASSIFIER", "USE_ELAPSED_DECAY", "USE_TAIL", "USE_NORM_ARB"};

/* the template's constants */
#define ELAPSED_CAP 8
#define RATIO_CAP (WAD / 5)
#define RET_CAP (WAD / 10)
#define TOX_CAP (WAD / 5)
#define LAMBDA_CAP (5 * WAD)
#define SIGMA_INIT ((u128)1000000000000000ULL) /* 1e15 */
#define LAMBDA_INIT ((u128)800000000000000000ULL) /* 8e17 */
#define SIZE_INIT ((u128)2000000000000000ULL)  /* 2e15 */
#define NORM_GAMMA ((u128)997000000000000000ULL) /* 997e15 */

/* storage slots the template uses (see its comment) */
enum { S_BID, S_ASK, S_LAST, S_COUNT, S_FAIR, S_SIGMA, S_LAMBDA, S_SIZE, S_TOX, S_ACT, S_DIR, S_BOOST,
       S_NORM, S_IMPLIED, N_STATE };

/* ---- one call: checked uint arithmetic, storage with gas ------------------------------------ */

enum { OK = 0, E_REVERT = 1, E_RANGE = 2 };

typedef struct {
    const u128 *p;
    const u128 *orig; /* storage when the call started */
    u128 s[N_STATE];  /* storage as the call goes */
    uint32_t accessed;
    int64_t storage_gas;
    int err; /* the first error is the outcome */
} Call;

static inline void fail(Call *c, int e) {
    if (!c->err) c->err = e;
}

static inline u128 sload(Call *c, int i) {
    c->accessed |= 1u << i;
    return c->s[i];
}

/* EIP-2200 with EIP-2929's prices; the cold surcharge is added per slot at the end. */
static inline void sstore(Call *c, int i, u128 v) {
    c->accessed |= 1u << i;
    u128 cur = c->s[i], orig = c->orig[i];
    if (v == cur || cur != orig)
        c->storage_gas += 100;
    else
        c->storage_gas += orig == 0 ? 20000 : 2900;
    c->s[i] = v;
}

static inline int64_t storage_gas(const Call *c) {
    return c->storage_gas + 2100 * (int64_t)__builtin_popcount(c->accessed);
}

static inline u128 add(Call *c, u128 a, u128 b) {
    u128 r = a + b;
    if (r < a) fail(c, E_RANGE); /* fine for uint256, beyond the twin's 128 bits */
    return r;
}

static inline u128 sub(Call *c, u128 a, u128 b) {
    if (b > a) {
        fail(c, E_REVERT); /* checked arithmetic: Panic(0x11) */
        return 0;
    }
    return a - b;
}

/* floor(x / 1e18) without a 128-bit division: 1e18 = 2^18 * 5^18, and x >> 18 is divided by 5^18
 * (< 2^42) in base-2^22 digits, each a 64-bit division by a constant (a multiply and a shift). */
static inline u128 div_wad(u128 x) {
    const uint64_t d = 3814697265625ULL; /* 5^18 */
    u128 y = x >> 18;
    uint64_t hi = (uint64_t)(y >> 64), lo = (uint64_t)y;
    uint64_t qh = hi / d, r = hi % d, q;
    r = (r << 22) | (lo >> 42);
    q = r / d;
    r %= d;
    r = (r << 22) | ((lo >> 20) & 0x3FFFFF);
    q = (q << 22) | (r / d);
    r %= d;
    r = (r << 20) | (lo & 0xFFFFF);
    q = (q << 20) | (r / d);
    return ((u128)qh << 64) | q;
}

/* (x * y) / WAD */
static inline u128 wmul(Call *c, u128 x, u128 y) {
    uint64_t x1 = (uint64_t)(x >> 64), y1 = (uint64_t)(y >> 64);
    if ((x1 | y1) == 0) return div_wad((u128)(uint64_t)x * (uint64_t)y);
    uint64_t x0 = (uint64_t)x, y0 = (uint64_t)y;
    u128 p00 = (u128)x0 * y0, p01 = (u128)x0 * y1, p10 = (u128)x1 * y0, p11 = (u128)x1 * y1;
    u128 mid = (p00 >> 64) + (uint64_t)p01 + (uint64_t)p10;
    u128 lo = (mid << 64) | (uint64_t)p00;
    u128 hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    if (hi >= WAD) {
        fail(c, E_RANGE); /* the quotient needs more than 128 bits */
        return 0;
    }
    if (hi == 0) return div_wad(lo);
    u128 top = (hi << 64) | (lo >> 64); /* hi < WAD < 2^60 */
    u128 q1 = top / WAD, r1 = top % WAD;
    u128 q0 = ((r1 << 64) | (uint64_t)lo) / WAD;
    return (q1 << 64) | q0;
}

/* (x * WAD) / y */
static inline u128 wdiv(Call *c, u128 x, u128 y) {
    if (y == 0) {
        fail(c, E_REVERT); /* Panic(0x12) */
        return 0;
    }
    if (x <= U128_MAX / WAD) return (x * WAD) / y;
    /* x * WAD = (qx * y + rx) * WAD; rx * WAD / y in two steps of 1e9 */
    u128 qx = x / y, rx = x % y;
    if (qx > U128_MAX / WAD || y > U128_MAX / WAD_SQRT) {
        fail(c, E_RANGE);
        return 0;
    }
    u128 t = rx * WAD_SQRT;
    u128 q1 = t / y;
    u128 q2 = (t % y) * WAD_SQRT / y;
    return add(c, qx * WAD, q1 * WAD_SQRT + q2);
}

static inline u128 abs_diff(u128 a, u128 b) { return a > b ? a - b : b - a; }
static inline u128 clamp_fee(u128 f) { return f > MAX_FEE ? MAX_FEE : f; }

/* factor^n for a WAD factor (square and multiply), as the template's _pow */
static u128 wpow(Call *c, u128 factor, u128 n) {
    u128 result = WAD;
    while (n > 0) {
        if (n & 1) result = wmul(c, result, factor);
        factor = wmul(c, factor, factor);
        n >>= 1;
    }
    return result;
}

/* wmul(x, keep) + wmul(y, WAD - keep): the template's EMA step */
static inline u128 blend(Call *c, u128 x, u128 keep, u128 y) {
    return add(c, wmul(c, x, keep), wmul(c, y, sub(c, WAD, keep)));
}

/* ---- the template's functions ------------------------------------------------------------- */

static u128 base_fee(Call *c, u128 sigma, u128 lambda, u128 size) {
    const u128 *p = c->p;
    u128 f = add(c, p[P_BASE_FEE], wmul(c, p[P_SIGMA_K], sigma));
    f = add(c, f, wmul(c, p[P_LAMBDA_K], lambda));
    return add(c, f, wmul(c, p[P_FLOW_K], wmul(c, lambda, size)));
}

static inline u128 compress(Call *c, u128 fee, u128 slope) {
    u128 knee = c->p[P_TAIL_KNEE];
    return fee <= knee ? fee : add(c, knee, wmul(c, fee - knee, slope));
}

static void quote(Call *c, u128 fair, u128 spot, u128 sigma, u128 lambda, u128 size, u128 tox, u128 act,
                  u128 dir, u128 boost, u128 *bid_out, u128 *ask_out) {
    const u128 *p = c->p;
    u128 tox2 = wmul(c, tox, tox);
    u128 mid = add(c, base_fee(c, sigma, lambda, size), wmul(c, p[P_TOX_K1], tox));
    mid = add(c, mid, wmul(c, p[P_TOX_K2], tox2));
    mid = add(c, mid, wmul(c, p[P_TOX_K3], wmul(c, tox2, tox)));
    mid = add(c, mid, wmul(c, p[P_ACT_K], act));
    mid = add(c, mid, boost);
    u128 bid = mid, ask = mid;
    u128 skew = wmul(c, p[P_DIR_K], abs_diff(dir, WAD));
    if (dir > WAD) {
        bid = add(c, bid, skew);
        ask = ask > skew ? ask - skew : 0;
    } else {
        ask = add(c, ask, skew);
        bid = bid > skew ? bid - skew : 0;
    }
    u128 shift = wmul(c, p[P_STALE_K], tox);
    u128 cut = wmul(c, shift, p[P_STALE_CUT]);
    if (spot >= fair) {
        bid = add(c, bid, shift);
        ask = ask > cut ? ask - cut : 0;
    } else {
        ask = add(c, ask, shift);
        bid = bid > cut ? bid - cut : 0;
    }
    if (p[P_USE_TAIL] == 1) {
        int bid_high = bid >= ask;
        bid = compress(c, bid, bid_high ? p[P_TAIL_SLOPE_HI] : p[P_TAIL_SLOPE_LO]);
        ask = compress(c, ask, bid_high ? p[P_TAIL_SLOPE_LO] : p[P_TAIL_SLOPE_HI]);
    }
    *bid_out = clamp_fee(bid);
    *ask_out = clamp_fee(ask);
}

static void track_normaliser(Call *c, int we_bought_x, u128 spot) {
    u128 gamma = sub(c, WAD, sload(c, we_bought_x ? S_BID : S_ASK));
    u128 estimate = sload(c, S_NORM);
    if (we_bought_x) {
        u128 bound = wdiv(c, wmul(c, spot, gamma), NORM_GAMMA);
        if (bound < estimate) estimate = bound;
    } else {
        u128 bound = wdiv(c, wmul(c, spot, NORM_GAMMA), gamma);
        if (bound > estimate) estimate = bound;
    }
    sstore(c, S_NORM, estimate);
}

static void normaliser_after_arbitrage(Call *c, u128 fair) {
    u128 estimate = sload(c, S_NORM);
    u128 low = wmul(c, fair, NORM_GAMMA);
    u128 high = wdiv(c, fair, NORM_GAMMA);
    if (estimate < low)
        estimate = low;
    else if (estimate > high)
        estimate = high;
    sstore(c, S_NORM, estimate);
}

static void toward_normaliser(Call *c, u128 *bid, u128 *ask, u128 spot) {
    const u128 *p = c->p;
    u128 norm_spot = sload(c, S_NORM);
    u128 implied = sload(c, S_IMPLIED);
    u128 target = wmul(c, wdiv(c, norm_spot, NORM_GAMMA), sub(c, WAD, p[P_NORM_UNDERCUT]));
    u128 floor = wmul(c, implied, add(c, WAD, p[P_NORM_MARGIN]));
    if (target < floor) target = floor;
    u128 ask_target = spot >= target ? 0 : sub(c, WAD, wdiv(c, spot, target));
    target = wmul(c, wmul(c, norm_spot, NORM_GAMMA), add(c, WAD, p[P_NORM_UNDERCUT]));
    u128 ceiling = wmul(c, implied, sub(c, WAD, p[P_NORM_MARGIN]));
    if (target > ceiling) target = ceiling;
    u128 bid_target = target >= spot ? 0 : sub(c, WAD, wdiv(c, target, spot));
    u128 keep = sub(c, WAD, p[P_NORM_W]);
    *bid = clamp_fee(add(c, wmul(c, *bid, keep), wmul(c, bid_target, p[P_NORM_W])));
    *ask = clamp_fee(add(c, wmul(c, *ask, keep), wmul(c, ask_target, p[P_NORM_W])));
}

static void after_swap(Call *c, int is_buy, u128 amount_y, u128 timestamp, u128 reserve_x, u128 reserve_y,
                       u128 *bid_out, u128 *ask_out) {
    const u128 *p = c->p;
    u128 fair = sload(c, S_FAIR), sigma = sload(c, S_SIGMA), lambda = sload(c, S_LAMBDA);
    u128 size = sload(c, S_SIZE), tox = sload(c, S_TOX), act = sload(c, S_ACT), dir = sload(c, S_DIR);
    u128 boost = sload(c, S_BOOST), count = sload(c, S_COUNT);
    u128 last = sload(c, S_LAST);
    u128 step = add(c, timestamp, 1);
    int first = step != last;
    if (first) {
        u128 elapsed = last == 0 ? 1 : sub(c, step, last);
        if (last != 0) {
            u128 rate = wdiv(c, count, elapsed); /* (count * WAD) / elapsed */
            if (rate > LAMBDA_CAP) rate = LAMBDA_CAP;
            lambda = blend(c, lambda, p[P_LAMBDA_DECAY], rate);
        }
        u128 n = p[P_USE_ELAPSED_DECAY] == 1 ? (elapsed > ELAPSED_CAP ? ELAPSED_CAP : elapsed) : 1;
        size = wmul(c, size, wpow(c, p[P_SIZE_DECAY], n));
        tox = wmul(c, tox, wpow(c, p[P_TOX_DECAY], n));
        act = wmul(c, act, wpow(c, p[P_ACT_DECAY], n));
        boost = wmul(c, boost, wpow(c, p[P_BOOST_DECAY], n));
        u128 keep = wpow(c, p[P_DIR_DECAY], n);
        dir = dir >= WAD ? add(c, WAD, wmul(c, dir - WAD, keep)) : sub(c, WAD, wmul(c, WAD - dir, keep));
        count = 0;
        sstore(c, S_LAST, step);
    }
    u128 spot = wdiv(c, reserve_y, reserve_x);
    u128 ratio = wdiv(c, amount_y, reserve_y);
    if (ratio > RATIO_CAP) ratio = RATIO_CAP;
    int arb = first && (p[P_USE_ARB_CLASSIFIER] == 0 || ratio <= p[P_ARB_MAX_RATIO]);
    {
        u128 gamma = sub(c, WAD, sload(c, is_buy ? S_BID : S_ASK));
        u128 implied = is_buy ? wmul(c, spot, gamma) : wdiv(c, spot, gamma);
        u128 ret = wdiv(c, abs_diff(implied, fair), fair);
        u128 alpha = arb ? p[P_ALPHA_ARB] : (first ? p[P_ALPHA_FIRST] : p[P_ALPHA_LATER]);
        if (p[P_USE_SHOCK_GATE] == 0 || ret <= wmul(c, p[P_SHOCK_K], sigma))
            fair = add(c, wmul(c, fair, sub(c, WAD, alpha)), wmul(c, implied, alpha));
        if (arb) {
            sstore(c, S_IMPLIED, implied);
            if (p[P_USE_NORM_ARB] == 1) normaliser_after_arbitrage(c, implied);
            if (ret > RET_CAP) ret = RET_CAP;
            sigma = blend(c, sigma, p[P_SIGMA_DECAY], ret);
            u128 kick = wmul(c, p[P_ARB_BOOST_K], ratio);
            if (kick > boost) boost = kick;
        }
    }
    track_normaliser(c, is_buy, spot);
    if (ratio > p[P_SIGNAL_RATIO]) {
        size = blend(c, size, p[P_SIZE_BLEND], ratio);
        act = blend(c, act, p[P_ACT_BLEND], ratio);
        dir = is_buy ? add(c, dir, ratio) : (dir > ratio ? dir - ratio : 0);
        if (dir > 2 * WAD) dir = 2 * WAD;
    }
    {
        u128 gap = wdiv(c, abs_diff(spot, fair), fair);
        if (gap > TOX_CAP) gap = TOX_CAP;
        tox = blend(c, tox, p[P_TOX_BLEND], gap);
    }
    u128 bid, ask;
    quote(c, fair, spot, sigma, lambda, size, tox, act, dir, boost, &bid, &ask);
    if (p[P_NORM_W] > 0) toward_normaliser(c, &bid, &ask, spot);
    sstore(c, S_BID, bid);
    sstore(c, S_ASK, ask);
    sstore(c, S_COUNT, add(c, count, 1));
    sstore(c, S_FAIR, fair);
    sstore(c, S_SIGMA, sigma);
    sstore(c, S_LAMBDA, lambda);
    sstore(c, S_SIZE, size);
    sstore(c, S_TOX, tox);
    sstore(c, S_ACT, act);
    sstore(c, S_DIR, dir);
    sstore(c, S_BOOST, boost);
    *bid_out = bid;
    *ask_out = ask;
}

static void after_initialize(Call *c, u128 initial_x, u128 initial_y, u128 *fee_out) {
    sstore(c, S_FAIR, wdiv(c, initial_y, initial_x));
    sstore(c, S_SIGMA, SIGMA_INIT);
    sstore(c, S_LAMBDA, LAMBDA_INIT);
    sstore(c, S_SIZE, SIZE_INIT);
    sstore(c, S_DIR, WAD);
    sstore(c, S_NORM, wdiv(c, initial_y, initial_x));
    sstore(c, S_IMPLIED, sload(c, S_FAIR));
    u128 fee = clamp_fee(base_fee(c, SIGMA_INIT, LAMBDA_INIT, SIZE_INIT));
    sstore(c, S_BID, fee);
    sstore(c, S_ASK, fee);
    *fee_out = fee;
}

/* ---- the Python type ---------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    u128 params[N_PARAMS];
    u128 storage[N_STATE];
    int64_t last_gas_bound; /* of the last call (for tests: the EVM must never spend more) */
} Twin;

static PyTypeObject TwinType;
static PyObject *TwinOutOfRange;

static void call_begin(Call *c, const Twin *t) {
    c->p = t->params;
    c->orig = t->storage;
    memcpy(c->s, t->storage, sizeof c->s);
    c->accessed = 0;
    c->storage_gas = 0;
    c->err = OK;
}

/* The call's outcome: 1 committed, 0 reverted, -1 TwinOutOfRange raised. */
static int call_end(Call *c, Twin *t, int64_t other_gas, const char *what) {
    t->last_gas_bound = other_gas + storage_gas(c);
    if (c->err == OK && t->last_gas_bound + STIPEND > GAS_HOOK) {
        PyErr_Format(TwinOutOfRange, "%s could come near the %d gas limit (bound %lld)", what, GAS_HOOK,
                     (long long)t->last_gas_bound);
        return -1;
    }
    if (c->err == E_RANGE) {
        PyErr_Format(TwinOutOfRange, "%s needs a value of 2^128 or more", what);
        return -1;
    }
    if (c->err == E_REVERT) return 0;
    memcpy(t->storage, c->s, sizeof t->storage);
    return 1;
}

int twin_is(PyObject *o) { return Py_IS_TYPE(o, &TwinType); }

int twin_after_swap(PyObject *o, int is_buy, u128 amount_x, u128 amount_y, uint64_t timestamp, u128 reserve_x,
                    u128 reserve_y, int64_t *bid, int64_t *ask) {
    (void)amount_x; /* the template does not read it */
    Twin *t = (Twin *)o;
    Call c;
    u128 b = 0, a = 0;
    call_begin(&c, t);
    after_swap(&c, is_buy, amount_y, timestamp, reserve_x, reserve_y, &b, &a);
    int rc = call_end(&c, t, OTHER_GAS_SWAP, "afterSwap");
    if (rc == 1) {
        *bid = (int64_t)b; /* clamped to MAX_FEE by the template */
        *ask = (int64_t)a;
    }
    return rc;
}

static int u128_from_py(PyObject *o, u128 *out, const char *what) {
    if (!PyLong_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int", what);
        return -1;
    }
    unsigned char bytes[16];
    if (_PyLong_Sign(o) < 0 || _PyLong_NumBits(o) > 128) {
        PyErr_Format(TwinOutOfRange, "%s must be within [0, 2^128)", what);
        return -1;
    }
    if (_PyLong_AsByteArray((PyLongObject *)o, bytes, 16, 1, 0) < 0) return -1;
    u128 v = 0;
    for (int i = 15; i >= 0; i--) v = (v << 8) | bytes[i];
    *out = v;
    return 0;
}

static PyObject *u128_to_py(u128 v) {
    unsigned char bytes[16];
    for (int i = 0; i < 16; i++) bytes[i] = (unsigned char)(v >> (8 * i));
    return _PyLong_FromByteArray(bytes, 16, 1, 0);
}

static int twin_init(Twin *t, PyObject *args, PyObject *kwargs) {
    PyObject *params;
    static char *kwlist[] = {"params", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O", kwlist, &params)) return -1;
    PyObject *seq = PySequence_Fast(params, "params must be a sequence of ints (FrontierTwin.PARAMS order)");
    if (!seq) return -1;
    if (PySequence_Fast_GET_SIZE(seq) != N_PARAMS) {
        PyErr_Format(PyExc_ValueError, "FrontierTwin takes %d parameters, got %zd", N_PARAMS,
                     PySequence_Fast_GET_SIZE(seq));
        Py_DECREF(seq);
        return -1;
    }
    for (int i = 0; i < N_PARAMS; i++) {
        if (u128_from_py(PySequence_Fast_GET_ITEM(seq, i), &t->params[i], PARAM_NAMES[i]) < 0) {
            Py_DECREF(seq);
            return -1;
        }
    }
    Py_DECREF(seq);
    memset(t->storage, 0, sizeof t->storage);
    t->last_gas_bound = 0;
    return 0;
}

PyDoc_STRVAR(twin_init_doc,
             "after_initialize(initial_x, initial_y) -> (bid, ask)\n\n"
             "The template's afterInitialize; raises TwinOutOfRange where the EVM must decide.");

static PyObject *py_twin_after_initialize(Twin *t, PyObject *args) {
    PyObject *ox, *oy;
    u128 x, y, fee = 0;
    if (!PyArg_ParseTuple(args, "OO", &ox, &oy)) return NULL;
    if (u128_from_py(ox, &x, "initial_x") < 0 || u128_from_py(oy, &y, "initial_y") < 0) return NULL;
    Call c;
    call_begin(&c, t);
    after_initialize(&c, x, y, &fee);
    int rc = call_end(&c, t, OTHER_GAS_INIT, "afterInitialize");
    if (rc < 0) return NULL;
    if (rc == 0) {
        /* the EVM raises its own error for a failed afterInitialize: let it */
        PyErr_SetString(TwinOutOfRange, "afterInitialize reverts");
        return NULL;
    }
    return Py_BuildValue("(NN)", u128_to_py(fee), u128_to_py(fee));
}

PyDoc_STRVAR(twin_swap_doc,
             "after_swap(is_buy, amount_x, amount_y, timestamp, reserve_x, reserve_y) -> (bid, ask) | None\n\n"
             "The template's afterSwap as the engine calls it: the fee pair, or None when the contract\n"
             "reverts (state kept); raises TwinOutOfRange where the EVM must decide.");

static PyObject *py_twin_after_swap(Twin *t, PyObject *args) {
    int is_buy;
    PyObject *o[5];
    u128 v[5];
    static const char *const names[5] = {"amount_x", "amount_y", "timestamp", "reserve_x", "reserve_y"};
    if (!PyArg_ParseTuple(args, "pOOOOO", &is_buy, &o[0], &o[1], &o[2], &o[3], &o[4])) return NULL;
    for (int i = 0; i < 5; i++)
        if (u128_from_py(o[i], &v[i], names[i]) < 0) return NULL;
    if (v[2] > UINT64_MAX) {
        PyErr_SetString(TwinOutOfRange, "timestamp must fit 64 bits");
        return NULL;
    }
    int64_t bid = 0, ask = 0;
    int rc = twin_after_swap((PyObject *)t, is_buy, v[0], v[1], (uint64_t)v[2], v[3], v[4], &bid, &ask);
    if (rc < 0) return NULL;
    if (rc == 0) Py_RETURN_NONE;
    return Py_BuildValue("(LL)", (long long)bid, (long long)ask);
}

static PyObject *twin_get_storage(Twin *t, void *closure) {
    PyObject *d = PyDict_New();
    if (!d) return NULL;
    for (int i = 0; i < N_STATE; i++) {
        if (!t->storage[i]) continue;
        PyObject *k = PyLong_FromLong(i), *v = u128_to_py(t->storage[i]);
        if (!k || !v || PyDict_SetItem(d, k, v) < 0) {
            Py_XDECREF(k);
            Py_XDECREF(v);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(k);
        Py_DECREF(v);
    }
    return d;
}

static int twin_set_storage(Twin *t, PyObject *value, void *closure) {
    if (value == NULL || !PyDict_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "storage must be a dict {slot: value}");
        return -1;
    }
    u128 slots[N_STATE] = {0};
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    while (PyDict_Next(value, &pos, &k, &v)) {
        long i = PyLong_AsLong(k);
        if (i == -1 && PyErr_Occurred()) return -1;
        if (i < 0 || i >= N_STATE) {
            PyErr_Format(PyExc_ValueError, "the template uses slots 0..%d", N_STATE - 1);
            return -1;
        }
        if (u128_from_py(v, &slots[i], "a slot value") < 0) return -1;
    }
    memcpy(t->storage, slots, sizeof slots);
    return 0;
}

static PyObject *twin_get_gas_bound(Twin *t, void *closure) { return PyLong_FromLongLong(t->last_gas_bound); }

static PyMethodDef twin_methods[] = {
    {"after_initialize", (PyCFunction)py_twin_after_initialize, METH_VARARGS, twin_init_doc},
    {"after_swap", (PyCFunction)py_twin_after_swap, METH_VARARGS, twin_swap_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef twin_getset[] = {
    {"storage", (getter)twin_get_storage, (setter)twin_set_storage,
     "nonzero slots {slot: value}, as the contract's storage", NULL},
    {"last_gas_bound", (getter)twin_get_gas_bound, NULL, "gas the last call can at most have spent", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject TwinType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "stratforge.amm._core.FrontierTwin",
    .tp_basicsize = sizeof(Twin),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "FrontierTwin(params): one live `frontier` strategy for one simulation, in C.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)twin_init,
    .tp_methods = twin_methods,
    .tp_getset = twin_getset,
};

/* test helper: the twin's arithmetic on Python ints ("wmul" or "wdiv"); None when it reverts,
 * TwinOutOfRange when it leaves 128 bits */
static PyObject *py_twin_math(PyObject *self, PyObject *args) {
    const char *op;
    PyObject *oa, *ob;
    u128 a, b, r;
    if (!PyArg_ParseTuple(args, "sOO", &op, &oa, &ob)) return NULL;
    if (u128_from_py(oa, &a, "a") < 0 || u128_from_py(ob, &b, "b") < 0) return NULL;
    Call c = {0};
    if (strcmp(op, "wmul") == 0)
        r = wmul(&c, a, b);
    else if (strcmp(op, "wdiv") == 0)
        r = wdiv(&c, a, b);
    else {
        PyErr_SetString(PyExc_ValueError, "op must be 'wmul' or 'wdiv'");
        return NULL;
    }
    if (c.err == E_RANGE) {
        PyErr_SetString(TwinOutOfRange, "result needs 2^128 or more");
        return NULL;
    }
    if (c.err == E_REVERT) Py_RETURN_NONE;
    return u128_to_py(r);
}

static PyMethodDef twin_module_methods[] = {
    {"_twin_math", py_twin_math, METH_VARARGS, "test helper: the twin's wmul / wdiv"},
    {NULL, NULL, 0, NULL},
};

int twin_add_to_module(PyObject *module) {
    if (PyType_Ready(&TwinType) < 0) return -1;
    PyObject *names = PyTuple_New(N_PARAMS);
    if (!names) return -1;
    for (int i = 0; i < N_PARAMS; i++) {
        PyObject *s = PyUnicode_FromString(PARAM_NAMES[i]);
        if (!s) {
            Py_DECREF(names);
            return -1;
        }
        PyTuple_SET_ITEM(names, i, s);
    }
    int rc = PyDict_SetItemString(TwinType.tp_dict, "PARAMS", names);
    Py_DECREF(names);
    if (rc < 0) return -1;
    PyType_Modified(&TwinType);
    TwinOutOfRange = PyErr_NewExceptionWithDoc(
        "stratforge.amm._core.TwinOutOfRange",
        "A native twin met what it does not model exactly; the simulation must run in the EVM.", NULL, NULL);
    if (!TwinOutOfRange) return -1;
    if (PyModule_AddObjectRef(module, "TwinOutOfRange", TwinOutOfRange) < 0) return -1;
    if (PyModule_AddObjectRef(module, "FrontierTwin", (PyObject *)&TwinType) < 0) return -1;
    for (PyMethodDef *d = twin_module_methods; d->ml_name; d++) {
        PyObject *f = PyCFunction_New(d, NULL);
        if (!f || PyModule_AddObject(module, d->ml_name, f) < 0) {
            Py_XDECREF(f);
            return -1;
        }
    }
    return 0;
}
