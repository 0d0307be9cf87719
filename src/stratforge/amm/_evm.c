/*
 * stratforge.amm._core's EVM: a bytecode interpreter specialised to validated strategies.
 *
 * Why hand-written C: a hook call through pyrevm costs 6-40 us, almost all of it crossing from
 * the C market loop into Python and Rust and building a transaction; a strategy's own work is a
 * few hundred to a few thousand instructions. This interpreter runs inside the market loop with
 * no Python crossing, and reproduces the reference's per-call transaction (revm 18, spec LATEST,
 * default block/tx environment) exactly:
 *
 *   - every call is a fresh transaction: 21,000 + 4 per zero / 16 per non-zero calldata byte of
 *     intrinsic gas out of the limit; every storage slot cold at the start (EIP-2929: 2,100 for the
 *     first access, 100 after), SSTORE priced and refunded against the value at the start of the
 *     call (EIP-2200 with EIP-2929/3529 constants, the 2,300 stipend rule), the refund capped at
 *     gas spent / 5 at the end; memory expansion 3w + w^2/512; dynamic gas of EXP, KECCAK256,
 *     copies and LOGs; so a strategy runs out of gas at the same instruction as in the reference;
 *   - results: RETURN data, REVERT, halts (INVALID, undefined opcodes, bad jumps, stack over- and
 *     underflow) consume all gas; storage is committed only after a successful call;
 *   - the environment of the reference's transactions: ADDRESS 0x10..01, CALLER = ORIGIN 0x20..02,
 *     CALLVALUE 0, GASPRICE 0, BASEFEE 0, TIMESTAMP 1, NUMBER 0, CHAINID 1, COINBASE 0,
 *     PREVRANDAO 0, GASLIMIT 2^256-1, SELFBALANCE 0, BLOCKHASH 0, RETURNDATASIZE 0.
 *
 * The loop itself is in _evm_interp.h, compiled twice: once checking static gas and the stack per
 * basic block (the fast path every call takes first) and once per instruction (exact in every
 * case; it re-runs the rare call that fails in the fast path, so failures report the reference's
 * status and gas).
 *
 * What it does not implement (calls, creates, balance and code introspection of other accounts,
 * transient storage, MCOPY, blob opcodes, storage keys >= 64) ends the call with status
 * UNSUPPORTED before any effect is kept; the machine then runs that call in pyrevm (the Python
 * subclass's `_fallback`) and counts it, so an unsupported strategy is slower, never different.
 */
#include "_evm.h"

#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 u128;

/* ------------------------------------------------------------------------------------------ */
/* 256-bit words: four 64-bit limbs, least significant first                                   */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    uint64_t w[4];
} u256;

static const u256 U256_ZERO = {{0, 0, 0, 0}};

static inline int u_is_zero(const u256 *a) { return (a->w[0] | a->w[1] | a->w[2] | a->w[3]) == 0; }
static inline int u_eq(const u256 *a, const u256 *b) {
    return a->w[0] == b->w[0] && a->w[1] == b->w[1] && a->w[2] == b->w[2] && a->w[3] == b->w[3];
}
static inline int u_lt(const u256 *a, const u256 *b) {
    for (int i = 3; i >= 0; i--)
        if (a->w[i] != b->w[i]) return a->w[i] < b->w[i];
    return 0;
}
static inline int u_neg(const u256 *a) { return (int)(a->w[3] >> 63); }
static inline u256 u_from64(uint64_t v) {
    u256 r = {{v, 0, 0, 0}};
    return r;
}
/* value if it fits in 32 bits, else UINT64_MAX (offsets and sizes that large always run out of gas) */
static inline uint64_t u_small(const u256 *a) {
    if (a->w[1] | a->w[2] | a->w[3] || a->w[0] > 0xffffffffULL) return UINT64_MAX;
    return a->w[0];
}

static inline u256 u_add(const u256 *a, const u256 *b) {
    u256 r;
    u128 c = 0;
    for (int i = 0; i < 4; i++) {
        c += (u128)a->w[i] + b->w[i];
        r.w[i] = (uint64_t)c;
        c >>= 64;
    }
    return r;
}
static inline u256 u_sub(const u256 *a, const u256 *b) {
    u256 r;
    uint64_t borrow = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t ai = a->w[i], bi = b->w[i];
        uint64_t d = ai - bi;
        uint64_t b1 = ai < bi;
        r.w[i] = d - borrow;
        borrow = b1 | (d < borrow);
    }
    return r;
}
static inline u256 u_negate(const u256 *a) { return u_sub(&U256_ZERO, a); }
static inline u256 u_mul(const u256 *a, const u256 *b) {
    u256 r = U256_ZERO;
    for (int i = 0; i < 4; i++) {
        if (!a->w[i]) continue;
        u128 carry = 0;
        for (int j = 0; i + j < 4; j++) {
            u128 t = (u128)a->w[i] * b->w[j] + r.w[i + j] + carry;
            r.w[i + j] = (uint64_t)t;
            carry = t >> 64;
        }
    }
    return r;
}

static inline int limbs_used(const uint64_t *x, int n) {
    while (n > 0 && x[n - 1] == 0) n--;
    return n;
}

/* Knuth's algorithm D on 64-bit limbs: u (m limbs) / v (n limbs, v[n-1] != 0) -> q (m-n+1), r (n).
 * m <= 8, n <= 4. */
static void divmod_limbs(const uint64_t *u, int m, const uint64_t *v, int n, uint64_t *q, uint64_t *r) {
    if (n == 1) {
        u128 rem = 0;
        for (int i = m - 1; i >= 0; i--) {
            u128 cur = (rem << 64) | u[i];
            q[i] = (uint64_t)(cur / v[0]);
            rem = cur % v[0];
        }
        r[0] = (uint64_t)rem;
        return;
    }
    int s = __builtin_clzll(v[n - 1]);
    uint64_t vn[4], un[9];
    for (int i = n - 1; i > 0; i--) vn[i] = (v[i] << s) | (s ? v[i - 1] >> (64 - s) : 0);
    vn[0] = v[0] << s;
    un[m] = s ? u[m - 1] >> (64 - s) : 0;
    for (int i = m - 1; i > 0; i--) un[i] = (u[i] << s) | (s ? u[i - 1] >> (64 - s) : 0);
    un[0] = u[0] << s;
    const u128 B = (u128)1 << 64;
    for (int j = m - n; j >= 0; j--) {
        u128 num = ((u128)un[j + n] << 64) | un[j + n - 1];
        u128 qhat = num / vn[n - 1];
        u128 rhat = num % vn[n - 1];
        while (qhat >= B || qhat * vn[n - 2] > ((rhat << 64) | un[j + n - 2])) {
            qhat--;
            rhat += vn[n - 1];
            if (rhat >= B) break;
        }
        /* un[j..j+n] -= qhat * vn */
        uint64_t borrow = 0, carry = 0;
        for (int i = 0; i < n; i++) {
            u128 p = qhat * vn[i] + carry;
            carry = (uint64_t)(p >> 64);
            uint64_t plo = (uint64_t)p;
            uint64_t t = un[i + j] - plo;
            uint64_t b1 = un[i + j] < plo;
            uint64_t t2 = t - borrow;
            uint64_t b2 = t < borrow;
            un[i + j] = t2;
            borrow = b1 + b2;
        }
        u128 sub = (u128)carry + borrow;
        int negative = (u128)un[j + n] < sub;
        un[j + n] = (uint64_t)((u128)un[j + n] - sub);
        q[j] = (uint64_t)qhat;
        if (negative) {
            q[j]--;
            u128 c = 0;
            for (int i = 0; i < n; i++) {
                c += (u128)un[i + j] + vn[i];
                un[i + j] = (uint64_t)c;
                c >>= 64;
            }
            un[j + n] += (uint64_t)c;
        }
    }
    for (int i = 0; i < n - 1; i++) r[i] = (un[i] >> s) | (s ? un[i + 1] << (64 - s) : 0);
    r[n - 1] = un[n - 1] >> s;
}

/* a / b and a % b for b != 0 (m-limb numerator, up to 8 limbs); quotient truncated to 4 limbs */
static void u_divmod_wide(const uint64_t *a, int alimbs, const u256 *b, u256 *q, u256 *r) {
    int n = limbs_used(b->w, 4), m = limbs_used(a, alimbs);
    uint64_t qq[8] = {0}, rr[4] = {0};
    if (m < n) {
        if (q) *q = U256_ZERO;
        if (r) {
            *r = U256_ZERO;
            for (int i = 0; i < m; i++) r->w[i] = a[i];
        }
        return;
    }
    if (n <= 2 && m <= 2) {
        u128 x = ((u128)(m > 1 ? a[1] : 0) << 64) | a[0];
        u128 y = ((u128)(n > 1 ? b->w[1] : 0) << 64) | b->w[0];
        u128 qv = x / y, rv = x % y;
        qq[0] = (uint64_t)qv;
        qq[1] = (uint64_t)(qv >> 64);
        rr[0] = (uint64_t)rv;
        rr[1] = (uint64_t)(rv >> 64);
    } else {
        divmod_limbs(a, m, b->w, n, qq, rr);
    }
    if (q)
        for (int i = 0; i < 4; i++) q->w[i] = qq[i];
    if (r)
        for (int i = 0; i < 4; i++) r->w[i] = rr[i];
}

static inline void u_divmod(const u256 *a, const u256 *b, u256 *q, u256 *r) { u_divmod_wide(a->w, 4, b, q, r); }

static u256 u_sdiv(const u256 *a, const u256 *b) {
    if (u_is_zero(b)) return U256_ZERO;
    int na = u_neg(a), nb = u_neg(b);
    u256 ma = na ? u_negate(a) : *a, mb = nb ? u_negate(b) : *b, q;
    u_divmod(&ma, &mb, &q, NULL); /* -2^255 / -1 wraps to -2^255 through the negation below */
    return na ^ nb ? u_negate(&q) : q;
}

static u256 u_smod(const u256 *a, const u256 *b) {
    if (u_is_zero(b)) return U256_ZERO;
    int na = u_neg(a);
    u256 ma = na ? u_negate(a) : *a, mb = u_neg(b) ? u_negate(b) : *b, r;
    u_divmod(&ma, &mb, NULL, &r);
    return na ? u_negate(&r) : r;
}

static u256 u_addmod(const u256 *a, const u256 *b, const u256 *n) {
    if (u_is_zero(n)) return U256_ZERO;
    uint64_t s[5];
    u128 c = 0;
    for (int i = 0; i < 4; i++) {
        c += (u128)a->w[i] + b->w[i];
        s[i] = (uint64_t)c;
        c >>= 64;
    }
    s[4] = (uint64_t)c;
    u256 r;
    u_divmod_wide(s, 5, n, NULL, &r);
    return r;
}

static u256 u_mulmod(const u256 *a, const u256 *b, const u256 *n) {
    if (u_is_zero(n)) return U256_ZERO;
    uint64_t p[8] = {0};
    for (int i = 0; i < 4; i++) {
        u128 carry = 0;
        for (int j = 0; j < 4; j++) {
            u128 t = (u128)a->w[i] * b->w[j] + p[i + j] + carry;
            p[i + j] = (uint64_t)t;
            carry = t >> 64;
        }
        p[i + 4] = (uint64_t)carry;
    }
    u256 r;
    u_divmod_wide(p, 8, n, NULL, &r);
    return r;
}

static u256 u_exp(const u256 *base, const u256 *e) {
    u256 result = u_from64(1), b = *base;
    int top = 255;
    while (top >= 0 && !((e->w[top / 64] >> (top % 64)) & 1)) top--;
    for (int i = 0; i <= top; i++) {
        if ((e->w[i / 64] >> (i % 64)) & 1) result = u_mul(&result, &b);
        if (i < top) b = u_mul(&b, &b);
    }
    return result;
}

static inline int u_byte_len(const u256 *a) {
    for (int i = 3; i >= 0; i--)
        if (a->w[i]) return i * 8 + (64 - __builtin_clzll(a->w[i]) + 7) / 8;
    return 0;
}

static u256 u_shl(const u256 *v, unsigned s) {
    if (s >= 256) return U256_ZERO;
    u256 r = U256_ZERO;
    unsigned limb = s / 64, bits = s % 64;
    for (int i = 3; i >= (int)limb; i--) {
        uint64_t x = v->w[i - limb] << bits;
        if (bits && i - (int)limb - 1 >= 0) x |= v->w[i - limb - 1] >> (64 - bits);
        r.w[i] = x;
    }
    return r;
}

static u256 u_shr(const u256 *v, unsigned s) {
    if (s >= 256) return U256_ZERO;
    u256 r = U256_ZERO;
    unsigned limb = s / 64, bits = s % 64;
    for (unsigned i = 0; i + limb < 4; i++) {
        uint64_t x = v->w[i + limb] >> bits;
        if (bits && i + limb + 1 < 4) x |= v->w[i + limb + 1] << (64 - bits);
        r.w[i] = x;
    }
    return r;
}

static u256 u_sar(const u256 *v, unsigned s) {
    int neg = u_neg(v);
    if (s >= 256) {
        u256 r;
        for (int i = 0; i < 4; i++) r.w[i] = neg ? UINT64_MAX : 0;
        return r;
    }
    u256 r = u_shr(v, s);
    if (neg && s) {
        u256 ones;
        for (int i = 0; i < 4; i++) ones.w[i] = UINT64_MAX;
        u256 mask = u_shl(&ones, 256 - s);
        for (int i = 0; i < 4; i++) r.w[i] |= mask.w[i];
    }
    return r;
}

static u256 u_signextend(const u256 *b, const u256 *x) {
    if (b->w[1] | b->w[2] | b->w[3] || b->w[0] >= 31) return *x;
    unsigned bit = (unsigned)b->w[0] * 8 + 7;
    int neg = (x->w[bit / 64] >> (bit % 64)) & 1;
    u256 r = *x;
    for (unsigned i = bit + 1; i < 256; i++) {
        uint64_t m = (uint64_t)1 << (i % 64);
        if (neg)
            r.w[i / 64] |= m;
        else
            r.w[i / 64] &= ~m;
    }
    return r;
}

static inline uint64_t load_be64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}

static inline void store_be64(unsigned char *p, uint64_t v) {
    v = __builtin_bswap64(v);
    memcpy(p, &v, 8);
}

/* a 32-byte big-endian word */
static inline u256 u_from_be32(const unsigned char *p) {
    u256 r = {{load_be64(p + 24), load_be64(p + 16), load_be64(p + 8), load_be64(p)}};
    return r;
}

/* n <= 32 big-endian bytes, read as whole limbs from the end (every PUSH decodes its immediate
 * when it runs; copying it into a zeroed word compiled to a `rep movs`, a quarter of a complex
 * strategy's hook time) */
static inline u256 u_from_be(const unsigned char *p, int n) {
    u256 r = U256_ZERO;
    int limb = 0;
    for (; n >= 8; n -= 8) r.w[limb++] = load_be64(p + n - 8);
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    if (n) r.w[limb] = v;
    return r;
}

static inline void u_to_be(const u256 *a, unsigned char *p) {
    store_be64(p, a->w[3]);
    store_be64(p + 8, a->w[2]);
    store_be64(p + 16, a->w[1]);
    store_be64(p + 24, a->w[0]);
}

/* ------------------------------------------------------------------------------------------ */
/* Keccak-256 (the original Keccak padding, as the EVM uses)                                   */
/* ------------------------------------------------------------------------------------------ */

static const uint64_t KECCAK_RC[24] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL, 0x8000000080008000ULL,
    0x000000000000808bULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
    0x000000000000008aULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
    0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800aULL, 0x800000008000000aULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL};
/* rho rotations and pi lane order, walking the permutation's cycle starting at lane 1 */
static const int KECCAK_ROT[24] = {1, 3, 6, 10, 15, 21, 28, 36, 45, 55, 2, 14, 27, 41, 56, 8, 25, 43, 62, 18, 39, 61, 20, 44};
static const int KECCAK_PI[24] = {10, 7, 11, 17, 18, 3, 5, 16, 8, 21, 24, 4, 15, 23, 19, 13, 12, 2, 20, 14, 22, 9, 6, 1};

static inline uint64_t rotl64(uint64_t x, int n) { return (x << n) | (x >> (64 - n)); }

static void keccak_f1600(uint64_t st[25]) {
    for (int round = 0; round < 24; round++) {
        uint64_t bc[5];
        for (int i = 0; i < 5; i++) bc[i] = st[i] ^ st[i + 5] ^ st[i + 10] ^ st[i + 15] ^ st[i + 20];
        for (int i = 0; i < 5; i++) {
            uint64_t t = bc[(i + 4) % 5] ^ rotl64(bc[(i + 1) % 5], 1);
            for (int j = 0; j < 25; j += 5) st[j + i] ^= t;
        }
        uint64_t t = st[1];
        for (int i = 0; i < 24; i++) {
            int j = KECCAK_PI[i];
            uint64_t tmp = st[j];
            st[j] = rotl64(t, KECCAK_ROT[i]);
            t = tmp;
        }
        for (int j = 0; j < 25; j += 5) {
            for (int i = 0; i < 5; i++) bc[i] = st[j + i];
            for (int i = 0; i < 5; i++) st[j + i] ^= (~bc[(i + 1) % 5]) & bc[(i + 2) % 5];
        }
        st[0] ^= KECCAK_RC[round];
    }
}

/* noinline: inlined into the interpreter, its state took the registers that hold the code pointer
 * and the jump table, and every instruction's dispatch reloaded them from the stack. */
__attribute__((noinline)) static void keccak256(const unsigned char *data, size_t len, unsigned char out[32]) {
    enum { RATE = 136 };
    uint64_t st[25] = {0};
    unsigned char block[RATE];
    for (;;) {
        size_t take = len < RATE ? len : RATE;
        memcpy(block, data, take);
        int last = take < RATE;
        if (last) {
            memset(block + take, 0, RATE - take);
            block[take] ^= 0x01;
            block[RATE - 1] ^= 0x80;
        }
        for (int i = 0; i < RATE / 8; i++) {
            uint64_t lane = 0;
            for (int b = 7; b >= 0; b--) lane = (lane << 8) | block[8 * i + b];
            st[i] ^= lane;
        }
        keccak_f1600(st);
        if (last) break;
        data += RATE;
        len -= RATE;
    }
    for (int i = 0; i < 32; i++) out[i] = (unsigned char)(st[i / 8] >> (8 * (i % 8)));
}

/* ------------------------------------------------------------------------------------------ */
/* The machine                                                                                  */
/* ------------------------------------------------------------------------------------------ */

#define N_SLOTS 64 /* storage keys the machine holds (the challenge allows slots 0..31) */
#define STACK_LIMIT 1024
#define MEM_LIMIT (1u << 26) /* 64 MiB: far beyond what 250k gas can pay for */
#define GAS_HOOK 250000
#define MAX_FEE_WAD 100000000000000000ULL

enum { ST_OK = 0, ST_REVERT, ST_OOG, ST_HALT, ST_UNSUPPORTED };
static const char *const STATUS_KIND[] = {NULL, "revert", "out_of_gas", "halt", "unsupported"};
enum { F_REVERT, F_OOG, F_HALT, F_MALFORMED, F_ABOVE_MAX, F_ERROR, N_FAIL };
static const char *const FAIL_NAME[N_FAIL] = {"revert", "out_of_gas", "halt", "malformed_return", "fee_above_max",
                                              "error"};

typedef struct {
    PyObject_HEAD
    unsigned char *code; /* runtime code followed by 33 zero bytes (PUSH data past the end reads 0) */
    size_t code_len;
    uint8_t *jumpdest;   /* 1 where a JUMPDEST instruction starts */
    struct BlockInfo *blocks; /* at every pc where a basic block can be entered */
    u256 storage[N_SLOTS];
    /* per call */
    u256 original[N_SLOTS];
    uint64_t warm;       /* bit i: slot i accessed in this call */
    u256 *stack;
    unsigned char *mem;
    size_t mem_cap;
    unsigned char *out;  /* return data of the last call */
    size_t out_len, out_cap;
    /* counters */
    long hook_calls, fallback_calls;
    long failures[N_FAIL];
} Machine;

typedef struct {
    int status;
    int64_t gas_spent; /* before the refund */
    int64_t refund;    /* final (capped) refund; 0 unless the call succeeded */
} CallResult;

/* static gas, stack items needed, net stack growth; gas GAS_UNDEFINED = undefined opcode (halts),
 * GAS_UNSUPPORTED = left to pyrevm */
#define GAS_UNDEFINED (-1)
#define GAS_UNSUPPORTED (-2)
typedef struct {
    int16_t gas;
    uint8_t pops;
    int8_t grow;
} OpInfo;

static OpInfo OPS[256];

/* A basic block: straight-line code entered at pc 0, at a JUMPDEST, or after a JUMPI or GAS, up to
 * and including the first JUMP, JUMPI, GAS, STOP, RETURN, REVERT or opcode that halts, or up to the
 * next JUMPDEST. Its static gas and stack bounds are checked once on entry instead of before every
 * instruction. */
typedef struct BlockInfo {
    int32_t gas;  /* static gas of all its instructions */
    int32_t need; /* stack items it needs on entry */
    int32_t grow; /* its highest stack level above the entry level */
} BlockInfo;

static int ends_block(unsigned char op) {
    return op == 0x00 || op == 0x56 || op == 0x57 || op == 0x5a || op == 0xf3 || op == 0xfd || OPS[op].gas < 0;
}
/* opcodes left to pyrevm: status UNSUPPORTED */
static uint8_t UNSUPPORTED_OP[256];

static void ops_init(void) {
    for (int i = 0; i < 256; i++) OPS[i] = (OpInfo){-1, 0, 0};
#define OP(code, g, p, q) OPS[code] = (OpInfo){g, p, (int8_t)((q) - (p))}
    OP(0x00, 0, 0, 0);
    OP(0x01, 3, 2, 1); OP(0x02, 5, 2, 1); OP(0x03, 3, 2, 1); OP(0x04, 5, 2, 1); OP(0x05, 5, 2, 1);
    OP(0x06, 5, 2, 1); OP(0x07, 5, 2, 1); OP(0x08, 8, 3, 1); OP(0x09, 8, 3, 1); OP(0x0a, 0, 2, 1); /* ops charging all gas after popping (as revm): 10 + 50/byte */
    OP(0x0b, 5, 2, 1);
    for (int c = 0x10; c <= 0x14; c++) OP(c, 3, 2, 1);
    OP(0x15, 3, 1, 1);
    for (int c = 0x16; c <= 0x18; c++) OP(c, 3, 2, 1);
    OP(0x19, 3, 1, 1);
    for (int c = 0x1a; c <= 0x1d; c++) OP(c, 3, 2, 1);
    OP(0x20, 0, 2, 1); /* 30 + 6/word, charged after popping */
    OP(0x30, 2, 0, 1); OP(0x31, 0, 1, 1); OP(0x32, 2, 0, 1); OP(0x33, 2, 0, 1); OP(0x34, 2, 0, 1);
    OP(0x35, 3, 1, 1); OP(0x36, 2, 0, 1); OP(0x37, 0, 3, 0); OP(0x38, 2, 0, 1); OP(0x39, 0, 3, 0);
    OP(0x3a, 2, 0, 1); OP(0x3b, 0, 1, 1); OP(0x3c, 0, 4, 0); OP(0x3d, 2, 0, 1); OP(0x3e, 0, 3, 0);
    OP(0x3f, 0, 1, 1);
    OP(0x40, 20, 1, 1); OP(0x41, 2, 0, 1); OP(0x42, 2, 0, 1); OP(0x43, 2, 0, 1); OP(0x44, 2, 0, 1);
    OP(0x45, 2, 0, 1); OP(0x46, 2, 0, 1); OP(0x47, 5, 0, 1); OP(0x48, 2, 0, 1); OP(0x49, 3, 1, 1);
    OP(0x4a, 2, 0, 1);
    OP(0x50, 2, 1, 0); OP(0x51, 3, 1, 1); OP(0x52, 3, 2, 0); OP(0x53, 3, 2, 0); OP(0x54, 0, 1, 1);
    OP(0x55, 0, 2, 0); OP(0x56, 8, 1, 0); OP(0x57, 10, 2, 0); OP(0x58, 2, 0, 1); OP(0x59, 2, 0, 1);
    OP(0x5a, 2, 0, 1); OP(0x5b, 1, 0, 0); OP(0x5c, 100, 1, 1); OP(0x5d, 100, 2, 0); OP(0x5e, 3, 3, 0);
    OP(0x5f, 2, 0, 1);
    for (int c = 0x60; c <= 0x7f; c++) OP(c, 3, 0, 1);
    for (int k = 1; k <= 16; k++) OP(0x7f + k, 3, k, k + 1);
    for (int k = 1; k <= 16; k++) OP(0x8f + k, 3, k + 1, k + 1);
    for (int k = 0; k <= 4; k++) OP(0xa0 + k, 0, 2, 0); /* the topics are checked after the gas */
    OP(0xf0, 0, 3, 1); OP(0xf1, 0, 7, 1); OP(0xf2, 0, 7, 1); OP(0xf3, 0, 2, 0); OP(0xf4, 0, 6, 1);
    OP(0xf5, 0, 4, 1); OP(0xfa, 0, 6, 1); OP(0xfd, 0, 2, 0); OP(0xff, 0, 1, 0);
#undef OP
    static const uint8_t unsupported[] = {0x31, 0x3b, 0x3c, 0x3f, 0x49, 0x4a, 0x5c, 0x5d, 0x5e, 0xf0,
                                          0xf1, 0xf2, 0xf4, 0xf5, 0xfa, 0xff};
    for (size_t i = 0; i < sizeof unsupported; i++) {
        UNSUPPORTED_OP[unsupported[i]] = 1;
        OPS[unsupported[i]].gas = GAS_UNSUPPORTED;
    }
}

static int machine_set_code(Machine *m, const unsigned char *code, size_t len) {
    m->code = PyMem_Calloc(len + 33, 1);
    m->jumpdest = PyMem_Calloc(len + 1, 1);
    m->blocks = PyMem_Calloc(len + 1, sizeof(BlockInfo));
    m->stack = PyMem_Malloc(sizeof(u256) * STACK_LIMIT);
    if (!m->code || !m->jumpdest || !m->blocks || !m->stack) return -1;
    memcpy(m->code, code, len);
    m->code_len = len;
    /* One pass over the instructions (PUSH data skipped): JUMPDEST analysis as revm's, and the
     * basic blocks. b is the entry of the block being summed, level the stack height relative to
     * its entry; code after a block's end that no jump can reach is skipped. */
    BlockInfo *b = &m->blocks[0];
    int32_t level = 0;
    for (size_t i = 0; i < len;) {
        unsigned char op = code[i];
        if (op == 0x5b) {
            m->jumpdest[i] = 1;
            b = &m->blocks[i];
            level = 0;
        }
        if (b) {
            int pops = OPS[op].pops, grow = OPS[op].grow;
            if (op >= 0xa0 && op <= 0xa4) pops = 2 + (op - 0xa0), grow = -pops; /* LOGs pop their topics */
            if (OPS[op].gas > 0) b->gas += OPS[op].gas;
            if (pops - level > b->need) b->need = pops - level;
            level += grow;
            if (level > b->grow) b->grow = level;
        }
        size_t next = i + 1 + (op >= 0x60 && op <= 0x7f ? op - 0x5f : 0);
        if (b && ends_block(op)) {
            b = (op == 0x57 || op == 0x5a) && next <= len ? &m->blocks[next] : NULL;
            level = 0;
        }
        i = next;
    }
    return 0;
}

static const unsigned char ADDRESS_BYTES[20] = {0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
static const unsigned char CALLER_BYTES[20] = {0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02};

static inline int64_t mem_cost_words(uint64_t words) { return (int64_t)(3 * words + words * words / 512); }

/* Grows memory to cover [off, off+len) (len > 0) and charges expansion gas; 0 = out of gas. */
static inline int mem_expand(Machine *m, size_t *msize, int64_t *gas, uint64_t off, uint64_t len) {
    if (off == UINT64_MAX || len == UINT64_MAX) return 0;
    uint64_t end = off + len;
    if (end <= *msize) return 1;
    if (end > MEM_LIMIT) return 0;
    uint64_t words = (end + 31) / 32;
    *gas -= mem_cost_words(words) - mem_cost_words(*msize / 32);
    if (*gas < 0) return 0;
    size_t need = words * 32;
    if (need > m->mem_cap) {
        size_t cap = m->mem_cap ? m->mem_cap : 4096;
        while (cap < need) cap *= 2;
        unsigned char *p = PyMem_Realloc(m->mem, cap);
        if (!p) return 0;
        memset(p + m->mem_cap, 0, cap - m->mem_cap);
        m->mem = p;
        m->mem_cap = cap;
    }
    *msize = need;
    return 1;
}

/* Copies src[src_off .. src_off+len) (zero-padded beyond src_len) to memory at dst. */
static inline void copy_padded(unsigned char *dst, const unsigned char *src, size_t src_len, uint64_t src_off,
                               uint64_t len) {
    uint64_t avail = src_off < src_len ? src_len - src_off : 0;
    uint64_t n = avail < len ? avail : len;
    if (n) memcpy(dst, src + src_off, n);
    if (n < len) memset(dst + n, 0, len - n);
}

static int set_output(Machine *m, const unsigned char *data, size_t len) {
    if (len > m->out_cap) {
        unsigned char *p = PyMem_Realloc(m->out, len);
        if (!p) return -1;
        m->out = p;
        m->out_cap = len;
    }
    if (len) memcpy(m->out, data, len);
    m->out_len = len;
    return 0;
}

/* The two interpreters, call_exact and call_by_blocks: one transaction calling the strategy with
 * `cd` under `gas_limit`. Storage is committed on success and left as it was otherwise. */
#define INTERP_NAME call_exact
#define INTERP_BLOCKS 0
#include "_evm_interp.h"
#define INTERP_NAME call_by_blocks
#define INTERP_BLOCKS 1
#include "_evm_interp.h"

/* One fresh transaction. The block-checked interpreter is exact for calls that succeed or revert;
 * the rare call that fails in it (out of gas, a halt, an unsupported opcode) is run again from the
 * start by the exact interpreter, so the status and gas reported are always the reference's. */
static CallResult machine_call(Machine *m, const unsigned char *cd, size_t cd_len, int64_t gas_limit) {
    CallResult r = call_by_blocks(m, cd, cd_len, gas_limit);
    if (r.status == ST_OK || r.status == ST_REVERT) return r;
    return call_exact(m, cd, cd_len, gas_limit);
}

/* ------------------------------------------------------------------------------------------ */
/* Python type                                                                                  */
/* ------------------------------------------------------------------------------------------ */

static PyTypeObject MachineType;

static PyObject *u256_to_py(const u256 *v) {
    unsigned char b[32];
    u_to_be(v, b);
    return _PyLong_FromByteArray(b, 32, 0, 0);
}

static int u256_from_py(PyObject *o, u256 *out) {
    if (!PyLong_Check(o)) {
        PyErr_SetString(PyExc_TypeError, "storage keys and values must be int");
        return -1;
    }
    if (_PyLong_Sign(o) < 0) {
        PyErr_SetString(PyExc_ValueError, "storage keys and values must be >= 0");
        return -1;
    }
    unsigned char b[32];
    if (_PyLong_AsByteArray((PyLongObject *)o, b, 32, 0, 0) < 0) return -1;
    *out = u_from_be32(b);
    return 0;
}

static int machine_load_storage(Machine *m, PyObject *storage) {
    for (int k = 0; k < N_SLOTS; k++) m->storage[k] = U256_ZERO;
    if (storage == NULL || storage == Py_None) return 0;
    if (!PyDict_Check(storage)) {
        PyErr_SetString(PyExc_TypeError, "storage must be a dict {slot: value}");
        return -1;
    }
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(storage, &pos, &key, &value)) {
        u256 k, v;
        if (u256_from_py(key, &k) < 0 || u256_from_py(value, &v) < 0) return -1;
        if (k.w[1] | k.w[2] | k.w[3] || k.w[0] >= N_SLOTS) {
            PyErr_Format(PyExc_ValueError, "storage slot must be below %d", N_SLOTS);
            return -1;
        }
        m->storage[k.w[0]] = v;
    }
    return 0;
}

static PyObject *machine_storage_dict(Machine *m) {
    PyObject *d = PyDict_New();
    if (!d) return NULL;
    for (int k = 0; k < N_SLOTS; k++) {
        if (u_is_zero(&m->storage[k])) continue;
        PyObject *key = PyLong_FromLong(k), *val = u256_to_py(&m->storage[k]);
        if (!key || !val || PyDict_SetItem(d, key, val) < 0) {
            Py_XDECREF(key);
            Py_XDECREF(val);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(key);
        Py_DECREF(val);
    }
    return d;
}

static int machine_init(Machine *m, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"code", "storage", NULL};
    Py_buffer code;
    PyObject *storage = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*|O", kwlist, &code, &storage)) return -1;
    if (m->code) {
        PyBuffer_Release(&code);
        PyErr_SetString(PyExc_RuntimeError, "EvmMachine is already initialised");
        return -1;
    }
    int rc = machine_set_code(m, code.buf, (size_t)code.len);
    PyBuffer_Release(&code);
    if (rc < 0) {
        PyErr_NoMemory();
        return -1;
    }
    return machine_load_storage(m, storage);
}

static void machine_dealloc(Machine *m) {
    PyMem_Free(m->code);
    PyMem_Free(m->jumpdest);
    PyMem_Free(m->blocks);
    PyMem_Free(m->stack);
    PyMem_Free(m->mem);
    PyMem_Free(m->out);
    Py_TYPE(m)->tp_free((PyObject *)m);
}

static int machine_ready(Machine *m) {
    if (m->code) return 1;
    PyErr_SetString(PyExc_RuntimeError, "EvmMachine.__init__ was not called");
    return 0;
}

PyDoc_STRVAR(machine_call_doc,
             "call(calldata, gas_limit) -> (kind, output, gas_spent, gas_refund)\n\n"
             "One fresh transaction. kind is None on success, else 'revert', 'out_of_gas', 'halt' or\n"
             "'unsupported' (nothing ran: the call needs pyrevm). gas_spent includes the intrinsic gas\n"
             "and is before the refund; gas_refund is the capped refund (0 unless successful).\n"
             "Storage is committed only on success.");

static PyObject *py_machine_call(Machine *m, PyObject *args) {
    Py_buffer cd;
    long long gas_limit;
    if (!machine_ready(m)) return NULL;
    if (!PyArg_ParseTuple(args, "y*L", &cd, &gas_limit)) return NULL;
    if (gas_limit < 0 || gas_limit > 30000000) {
        PyBuffer_Release(&cd);
        PyErr_SetString(PyExc_ValueError, "gas_limit must be within [0, 30M]");
        return NULL;
    }
    CallResult r = machine_call(m, cd.buf, (size_t)cd.len, gas_limit);
    PyBuffer_Release(&cd);
    PyObject *kind = STATUS_KIND[r.status] ? PyUnicode_FromString(STATUS_KIND[r.status]) : Py_NewRef(Py_None);
    if (!kind) return NULL;
    return Py_BuildValue("(Ny#LL)", kind, m->out ? (const char *)m->out : "", (Py_ssize_t)m->out_len, (long long)r.gas_spent,
                         (long long)r.refund);
}

static PyObject *machine_get_storage(Machine *m, void *closure) {
    if (!machine_ready(m)) return NULL;
    return machine_storage_dict(m);
}

static int machine_set_storage(Machine *m, PyObject *value, void *closure) {
    if (!machine_ready(m)) return -1;
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete storage");
        return -1;
    }
    return machine_load_storage(m, value);
}

static PyObject *machine_get_failures(Machine *m, void *closure) {
    PyObject *d = PyDict_New();
    if (!d) return NULL;
    for (int i = 0; i < N_FAIL; i++) {
        if (!m->failures[i]) continue;
        PyObject *v = PyLong_FromLong(m->failures[i]);
        if (!v || PyDict_SetItemString(d, FAIL_NAME[i], v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(v);
    }
    return d;
}

static PyObject *machine_get_hook_calls(Machine *m, void *c) { return PyLong_FromLong(m->hook_calls); }
static PyObject *machine_get_fallback_calls(Machine *m, void *c) { return PyLong_FromLong(m->fallback_calls); }

static int fail_index(const char *kind) {
    for (int i = 0; i < N_FAIL; i++)
        if (strcmp(kind, FAIL_NAME[i]) == 0) return i;
    return F_ERROR;
}

/* The pyrevm fallback for one call: the subclass's _fallback(calldata, gas) -> (kind, output),
 * which runs the call as a fresh transaction on this machine's storage and stores the result. */
static int machine_fallback(Machine *m, const unsigned char *cd, size_t n, int64_t gas, int *failed, int *fail_kind) {
    m->fallback_calls++;
    PyObject *res = PyObject_CallMethod((PyObject *)m, "_fallback", "y#L", (const char *)cd, (Py_ssize_t)n,
                                        (long long)gas);
    if (!res) return -1;
    PyObject *kind, *out;
    if (!PyArg_ParseTuple(res, "OS", &kind, &out)) {
        Py_DECREF(res);
        return -1;
    }
    *failed = 0;
    if (kind != Py_None) {
        const char *k = PyUnicode_AsUTF8(kind);
        if (!k) {
            Py_DECREF(res);
            return -1;
        }
        *failed = 1;
        *fail_kind = fail_index(k);
        m->out_len = 0;
    } else if (set_output(m, (const unsigned char *)PyBytes_AS_STRING(out), (size_t)PyBytes_GET_SIZE(out)) < 0) {
        Py_DECREF(res);
        PyErr_NoMemory();
        return -1;
    }
    Py_DECREF(res);
    return 0;
}

int decode_fee_pair(const unsigned char *d, size_t n, int64_t *bid, int64_t *ask) {
    if (n < 64) return FEES_MALFORMED;
    int64_t out[2];
    for (int w = 0; w < 2; w++) {
        const unsigned char *p = d + 32 * w;
        for (int i = 0; i < 24; i++)
            if (p[i]) return FEES_ABOVE_MAX;
        uint64_t v = 0;
        for (int i = 24; i < 32; i++) v = (v << 8) | p[i];
        if (v > MAX_FEE_WAD) return FEES_ABOVE_MAX;
        out[w] = (int64_t)v;
    }
    *bid = out[0];
    *ask = out[1];
    return FEES_OK;
}

/* A hook call with fallback and decoding: 1 = valid fees, 0 = failed (*kind set), -1 = error. */
static int machine_hook(Machine *m, const unsigned char *cd, size_t n, int64_t gas_limit, int64_t *bid, int64_t *ask,
                        int *kind) {
    CallResult r = machine_call(m, cd, n, gas_limit);
    int failed = r.status != ST_OK;
    *kind = F_ERROR;
    if (r.status == ST_UNSUPPORTED) {
        if (machine_fallback(m, cd, n, gas_limit, &failed, kind) < 0) return -1;
    } else if (failed) {
        *kind = r.status == ST_REVERT ? F_REVERT : r.status == ST_OOG ? F_OOG : F_HALT;
    }
    if (failed) return 0;
    int decoded = decode_fee_pair(m->out, m->out_len, bid, ask);
    if (decoded == FEES_OK) return 1;
    *kind = decoded == FEES_MALFORMED ? F_MALFORMED : F_ABOVE_MAX;
    return 0;
}

int evm_after_swap(PyObject *o, const unsigned char *cd, size_t n, int64_t *bid, int64_t *ask) {
    Machine *m = (Machine *)o;
    int kind;
    m->hook_calls++;
    int rc = machine_hook(m, cd, n, GAS_HOOK, bid, ask, &kind);
    if (rc == 0) m->failures[kind]++;
    return rc;
}

int evm_is_machine(PyObject *o) { return PyObject_TypeCheck(o, &MachineType); }

long evm_fallback_calls(PyObject *o) { return ((Machine *)o)->fallback_calls; }

PyDoc_STRVAR(machine_hook_doc,
             "hook(calldata, gas_limit=250000, count=True) -> (bid, ask) | str\n\n"
             "A hook call as the engine makes it (pyrevm fallback included): the fee pair, or the\n"
             "failure kind. With count, the call is counted in `hook_calls` and a failure in `failures`.");

static PyObject *py_machine_hook(Machine *m, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"calldata", "gas_limit", "count", NULL};
    Py_buffer cd;
    long long gas_limit = GAS_HOOK;
    int count = 1;
    if (!machine_ready(m)) return NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*|Lp", kwlist, &cd, &gas_limit, &count)) return NULL;
    if (gas_limit < 0 || gas_limit > 30000000) {
        PyBuffer_Release(&cd);
        PyErr_SetString(PyExc_ValueError, "gas_limit must be within [0, 30M]");
        return NULL;
    }
    int64_t bid = 0, ask = 0;
    int kind;
    int rc = machine_hook(m, cd.buf, (size_t)cd.len, gas_limit, &bid, &ask, &kind);
    PyBuffer_Release(&cd);
    if (rc < 0) return NULL;
    if (count) m->hook_calls++;
    if (rc == 1) return Py_BuildValue("(LL)", (long long)bid, (long long)ask);
    if (count) m->failures[kind]++;
    return PyUnicode_FromString(FAIL_NAME[kind]);
}

static PyObject *py_machine_output(Machine *m, void *c) {
    return PyBytes_FromStringAndSize(m->out ? (const char *)m->out : "", (Py_ssize_t)m->out_len);
}

static PyMethodDef machine_methods[] = {
    {"call", (PyCFunction)py_machine_call, METH_VARARGS, machine_call_doc},
    {"hook", (PyCFunction)(void (*)(void))py_machine_hook, METH_VARARGS | METH_KEYWORDS, machine_hook_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef machine_getset[] = {
    {"storage", (getter)machine_get_storage, (setter)machine_set_storage, "non-zero slots {slot: value}", NULL},
    {"failures", (getter)machine_get_failures, NULL, "failed hook calls by kind", NULL},
    {"hook_calls", (getter)machine_get_hook_calls, NULL, "afterSwap calls made by the engine", NULL},
    {"fallback_calls", (getter)machine_get_fallback_calls, NULL, "calls that ran in pyrevm", NULL},
    {"last_output", (getter)py_machine_output, NULL, "return data of the last call", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject MachineType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "stratforge.amm._core.EvmMachine",
    .tp_basicsize = sizeof(Machine),
    .tp_dealloc = (destructor)machine_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "EvmMachine(code, storage=None): a strategy's runtime code and storage, run by the core's EVM.",
    .tp_methods = machine_methods,
    .tp_getset = machine_getset,
    .tp_init = (initproc)machine_init,
    .tp_new = PyType_GenericNew,
};

/* ------------------------------------------------------------------------------------------ */
/* Test helpers                                                                                 */
/* ------------------------------------------------------------------------------------------ */

static PyObject *py_keccak256(PyObject *self, PyObject *arg) {
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0) return NULL;
    unsigned char h[32];
    keccak256(b.buf, (size_t)b.len, h);
    PyBuffer_Release(&b);
    return PyBytes_FromStringAndSize((const char *)h, 32);
}

PyDoc_STRVAR(u256_op_doc, "u256_op(opcode, a, b=0, c=0) -> int: the EVM's result of an arithmetic, compare or\n"
                          "bitwise opcode (stack top first: a op b), for tests.");

static PyObject *py_u256_op(PyObject *self, PyObject *args) {
    int op;
    PyObject *ao, *bo = NULL, *co = NULL;
    if (!PyArg_ParseTuple(args, "iO|OO", &op, &ao, &bo, &co)) return NULL;
    u256 a, b = U256_ZERO, c = U256_ZERO, r;
    if (u256_from_py(ao, &a) < 0 || (bo && u256_from_py(bo, &b) < 0) || (co && u256_from_py(co, &c) < 0))
        return NULL;
    uint64_t s = u_small(&a);
    unsigned sh = s > 256 ? 256 : (unsigned)s;
    switch (op) {
    case 0x01: r = u_add(&a, &b); break;
    case 0x02: r = u_mul(&a, &b); break;
    case 0x03: r = u_sub(&a, &b); break;
    case 0x04: if (u_is_zero(&b)) r = U256_ZERO; else u_divmod(&a, &b, &r, NULL); break;
    case 0x05: r = u_sdiv(&a, &b); break;
    case 0x06: if (u_is_zero(&b)) r = U256_ZERO; else u_divmod(&a, &b, NULL, &r); break;
    case 0x07: r = u_smod(&a, &b); break;
    case 0x08: r = u_addmod(&a, &b, &c); break;
    case 0x09: r = u_mulmod(&a, &b, &c); break;
    case 0x0a: r = u_exp(&a, &b); break;
    case 0x0b: r = u_signextend(&a, &b); break;
    case 0x1b: r = u_shl(&b, sh); break;
    case 0x1c: r = u_shr(&b, sh); break;
    case 0x1d: r = u_sar(&b, sh); break;
    default: PyErr_Format(PyExc_ValueError, "u256_op: unsupported opcode 0x%02x", op); return NULL;
    }
    return u256_to_py(&r);
}

static PyObject *py_unsupported_opcodes(PyObject *self, PyObject *noargs) {
    PyObject *out = PyList_New(0);
    for (int i = 0; out && i < 256; i++) {
        if (!UNSUPPORTED_OP[i]) continue;
        PyObject *v = PyLong_FromLong(i);
        if (!v || PyList_Append(out, v) < 0) {
            Py_XDECREF(v);
            Py_CLEAR(out);
            break;
        }
        Py_DECREF(v);
    }
    return out;
}

static PyMethodDef evm_functions[] = {
    {"keccak256", py_keccak256, METH_O, "Keccak-256 of bytes (the EVM's KECCAK256)."},
    {"u256_op", py_u256_op, METH_VARARGS, u256_op_doc},
    {"evm_unsupported_opcodes", py_unsupported_opcodes, METH_NOARGS,
     "Opcodes the core's EVM leaves to pyrevm (a call reaching one runs in pyrevm)."},
    {NULL, NULL, 0, NULL},
};

int evm_add_to_module(PyObject *module) {
    ops_init();
    if (PyType_Ready(&MachineType) < 0) return -1;
    Py_INCREF(&MachineType);
    if (PyModule_AddObject(module, "EvmMachine", (PyObject *)&MachineType) < 0) {
        Py_DECREF(&MachineType);
        return -1;
    }
    return PyModule_AddFunctions(module, evm_functions);
}
