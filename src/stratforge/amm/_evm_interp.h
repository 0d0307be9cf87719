/*
 * The interpreter loop, included twice by _evm.c: INTERP_BLOCKS 0 is the exact interpreter, which
 * charges static gas and checks the stack before every instruction in revm's order; INTERP_BLOCKS 1
 * does both once per basic block (see BlockInfo) and is exact whenever the call succeeds or
 * reverts. A call that fails in it is run again by the exact interpreter, whose status is reported.
 */
static CallResult INTERP_NAME(Machine *m, const unsigned char *cd, size_t cd_len, int64_t gas_limit) {
    CallResult res = {ST_OK, 0, 0};
    int64_t intrinsic = 21000;
    for (size_t i = 0; i < cd_len; i++) intrinsic += cd[i] ? 16 : 4;
    int64_t gas = gas_limit - intrinsic;
    int64_t refund = 0;
    size_t msize = 0;
    size_t sp = 0;
    size_t pc = 0;
    u256 *stack = m->stack;
    const unsigned char *code = m->code;
    const size_t code_len = m->code_len;
    int status = ST_OK;
    m->warm = 0;
    m->out_len = 0;
    if (gas < 0) {
        res.status = ST_OOG;
        res.gas_spent = gas_limit;
        return res;
    }

#define TOP (stack[sp - 1])
#define ARG(k) (stack[sp - 1 - (k)])
#define FAIL(st)      \
    do {              \
        status = (st); \
        goto finish;  \
    } while (0)
#define CHARGE(n)              \
    do {                       \
        gas -= (int64_t)(n);   \
        if (gas < 0) FAIL(ST_OOG); \
    } while (0)

    /* Threaded dispatch: every handler ends by fetching the next instruction, charging its static
     * gas and checking the stack (revm's order), then jumping to its handler. */
    static const void *const LABELS[256] = {
        &&op_00, &&op_01, &&op_02, &&op_03, &&op_04, &&op_05, &&op_06, &&op_07,
        &&op_08, &&op_09, &&op_0a, &&op_0b, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid,
        &&op_10, &&op_11, &&op_12, &&op_13, &&op_14, &&op_15, &&op_16, &&op_17,
        &&op_18, &&op_19, &&op_1a, &&op_1b, &&op_1c, &&op_1d, &&op_invalid, &&op_invalid,
        &&op_20, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid,
        &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid,
        &&op_30, &&op_invalid, &&op_32, &&op_33, &&op_34, &&op_35, &&op_36, &&op_37,
        &&op_38, &&op_39, &&op_3a, &&op_invalid, &&op_invalid, &&op_3d, &&op_3e, &&op_invalid,
        &&op_40, &&op_41, &&op_42, &&op_43, &&op_44, &&op_45, &&op_46, &&op_47,
        &&op_48, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid,
        &&op_50, &&op_51, &&op_52, &&op_53, &&op_54, &&op_55, &&op_56, &&op_57,
        &&op_58, &&op_59, &&op_5a, &&op_5b, &&op_invalid, &&op_invalid, &&op_invalid, &&op_5f,
        &&op_60, &&op_61, &&op_62, &&op_63, &&op_64, &&op_65, &&op_66, &&op_67,
        &&op_68, &&op_69, &&op_6a, &&op_6b, &&op_6c, &&op_6d, &&op_6e, &&op_6f,
        &&op_70, &&op_71, &&op_72, &&op_73, &&op_74, &&op_75, &&op_76, &&op_77,
        &&op_78, &&op_79, &&op_7a, &&op_7b, &&op_7c, &&op_7d, &&op_7e, &&op_7f,
        &&op_80, &&op_81, &&op_82, &&op_83, &&op_84, &&op_85, &&op_86, &&op_87,
        &&op_88, &&op_89, &&op_8a, &&op_8b, &&op_8c, &&op_8d, &&op_8e, &&op_8f,
        &&op_90, &&op_91, &&op_92, &&op_93, &&op_94, &&op_95, &&op_96, &&op_97,
        &&op_98, &&op_99, &&op_9a, &&op_9b, &&op_9c, &&op_9d, &&op_9e, &&op_9f,
        &&op_a0, &&op_a1, &&op_a2, &&op_a3, &&op_a4, &&op_invalid, &&op_invalid, &&op_invalid,
        &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid,
        &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid,
        &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid,
        &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid,
        &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid,
        &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid,
        &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid,
        &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid,
        &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid,
        &&op_invalid, &&op_invalid, &&op_invalid, &&op_f3, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid,
        &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_invalid, &&op_fd, &&op_invalid, &&op_invalid,
    };
    unsigned char op;
#if !INTERP_BLOCKS
    OpInfo oi;
#endif
#if INTERP_BLOCKS
    /* The block's static gas and stack bounds were checked when it was entered. */
#define DISPATCH()            \
    do {                      \
        op = code[pc];        \
        goto *LABELS[op];     \
    } while (0)
    /* Entering the block that starts at p: any failure sends the call to the exact interpreter. */
#define ENTER(p)                                                                            \
    do {                                                                                    \
        const BlockInfo *blk = &m->blocks[p];                                               \
        gas -= blk->gas;                                                                    \
        if (gas < 0 || (int64_t)sp < blk->need || (int64_t)sp + blk->grow > STACK_LIMIT)    \
            FAIL(ST_HALT);                                                                  \
    } while (0)
    /* A block that starts at a JUMPDEST is entered by the JUMPDEST itself. */
#define ENTER_FALLTHROUGH(p)            \
    do {                                \
        if (!m->jumpdest[p]) ENTER(p);  \
    } while (0)
    /* The next instruction after one that ends its block (a JUMPI not taken, GAS). */
#define NEXT_BLOCK()             \
    do {                         \
        pc++;                    \
        ENTER_FALLTHROUGH(pc);   \
        DISPATCH();              \
    } while (0)
#else
#define DISPATCH()                                                                  \
    do {                                                                            \
        op = code[pc];                                                              \
        oi = OPS[op];                                                               \
        if (oi.gas < 0) FAIL(oi.gas == GAS_UNSUPPORTED ? ST_UNSUPPORTED : ST_HALT); \
        gas -= oi.gas;                                                              \
        if (gas < 0) FAIL(ST_OOG);                                                  \
        if (sp < oi.pops || (int64_t)sp + oi.grow > STACK_LIMIT) FAIL(ST_HALT);     \
        goto *LABELS[op];                                                           \
    } while (0)
#endif
#define NEXT()     \
    do {           \
        pc++;      \
        DISPATCH(); \
    } while (0)
#if !INTERP_BLOCKS
#define NEXT_BLOCK() NEXT()
#endif

#if INTERP_BLOCKS
    ENTER_FALLTHROUGH(0);
#endif
    DISPATCH();
    {
        op_00:
            goto finish;
        op_01: ARG(1) = u_add(&ARG(0), &ARG(1)); sp--; NEXT();
        op_02: ARG(1) = u_mul(&ARG(0), &ARG(1)); sp--; NEXT();
        op_03: ARG(1) = u_sub(&ARG(0), &ARG(1)); sp--; NEXT();
        op_04:
            if (u_is_zero(&ARG(1))) ARG(1) = U256_ZERO;
            else u_divmod(&ARG(0), &ARG(1), &ARG(1), NULL);
            sp--;
            NEXT();
        op_05: ARG(1) = u_sdiv(&ARG(0), &ARG(1)); sp--; NEXT();
        op_06:
            if (u_is_zero(&ARG(1))) ARG(1) = U256_ZERO;
            else u_divmod(&ARG(0), &ARG(1), NULL, &ARG(1));
            sp--;
            NEXT();
        op_07: ARG(1) = u_smod(&ARG(0), &ARG(1)); sp--; NEXT();
        op_08: ARG(2) = u_addmod(&ARG(0), &ARG(1), &ARG(2)); sp -= 2; NEXT();
        op_09: ARG(2) = u_mulmod(&ARG(0), &ARG(1), &ARG(2)); sp -= 2; NEXT();
        op_0a:
            CHARGE(10 + 50 * u_byte_len(&ARG(1)));
            ARG(1) = u_exp(&ARG(0), &ARG(1));
            sp--;
            NEXT();
        op_0b: ARG(1) = u_signextend(&ARG(0), &ARG(1)); sp--; NEXT();
        op_10: ARG(1) = u_from64(u_lt(&ARG(0), &ARG(1))); sp--; NEXT();
        op_11: ARG(1) = u_from64(u_lt(&ARG(1), &ARG(0))); sp--; NEXT();
        op_12: {
            int na = u_neg(&ARG(0)), nb = u_neg(&ARG(1));
            ARG(1) = u_from64(na != nb ? na : u_lt(&ARG(0), &ARG(1)));
            sp--;
            NEXT();
        }
        op_13: {
            int na = u_neg(&ARG(0)), nb = u_neg(&ARG(1));
            ARG(1) = u_from64(na != nb ? nb : u_lt(&ARG(1), &ARG(0)));
            sp--;
            NEXT();
        }
        op_14: ARG(1) = u_from64(u_eq(&ARG(0), &ARG(1))); sp--; NEXT();
        op_15: TOP = u_from64(u_is_zero(&TOP)); NEXT();
        op_16: for (int i = 0; i < 4; i++) ARG(1).w[i] &= ARG(0).w[i]; sp--; NEXT();
        op_17: for (int i = 0; i < 4; i++) ARG(1).w[i] |= ARG(0).w[i]; sp--; NEXT();
        op_18: for (int i = 0; i < 4; i++) ARG(1).w[i] ^= ARG(0).w[i]; sp--; NEXT();
        op_19: for (int i = 0; i < 4; i++) TOP.w[i] = ~TOP.w[i]; NEXT();
        op_1a: {
            uint64_t i = u_small(&ARG(0));
            u256 r = U256_ZERO;
            if (i < 32) r.w[0] = (ARG(1).w[(31 - i) / 8] >> (8 * ((31 - i) % 8))) & 0xff;
            ARG(1) = r;
            sp--;
            NEXT();
        }
        op_1b: { uint64_t s = u_small(&ARG(0)); ARG(1) = u_shl(&ARG(1), s > 256 ? 256 : (unsigned)s); sp--; NEXT(); }
        op_1c: { uint64_t s = u_small(&ARG(0)); ARG(1) = u_shr(&ARG(1), s > 256 ? 256 : (unsigned)s); sp--; NEXT(); }
        op_1d: { uint64_t s = u_small(&ARG(0)); ARG(1) = u_sar(&ARG(1), s > 256 ? 256 : (unsigned)s); sp--; NEXT(); }
        op_20: {
            uint64_t off = u_small(&ARG(0)), len = u_small(&ARG(1));
            if (len == UINT64_MAX) FAIL(ST_OOG);
            CHARGE(30 + 6 * ((len + 31) / 32));
            unsigned char h[32];
            if (len == 0) {
                keccak256(NULL, 0, h);
            } else {
                if (!mem_expand(m, &msize, &gas, off, len)) FAIL(ST_OOG);
                keccak256(m->mem + off, len, h);
            }
            ARG(1) = u_from_be32(h);
            sp--;
            NEXT();
        }
        op_30: stack[sp++] = u_from_be(ADDRESS_BYTES, 20); NEXT();
        op_32: /* ORIGIN */
        op_33: stack[sp++] = u_from_be(CALLER_BYTES, 20); NEXT();
        op_34: /* CALLVALUE */
        op_3a: /* GASPRICE */
        op_3d: /* RETURNDATASIZE */
        op_41: /* COINBASE */
        op_43: /* NUMBER */
        op_44: /* PREVRANDAO */
        op_47: /* SELFBALANCE */
        op_48: /* BASEFEE */
            stack[sp++] = U256_ZERO;
            NEXT();
        op_42: /* TIMESTAMP */
        op_46: /* CHAINID */
            stack[sp++] = u_from64(1);
            NEXT();
        op_45: /* GASLIMIT: the block's, U256::MAX */
            for (int i = 0; i < 4; i++) stack[sp].w[i] = UINT64_MAX;
            sp++;
            NEXT();
        op_40: TOP = U256_ZERO; NEXT(); /* BLOCKHASH: block number 0 has no ancestors */
        op_35: {
            uint64_t off = (TOP.w[1] | TOP.w[2] | TOP.w[3]) ? UINT64_MAX : TOP.w[0];
            unsigned char word[32];
            copy_padded(word, cd, cd_len, off >= cd_len ? cd_len : off, 32);
            TOP = u_from_be32(word);
            NEXT();
        }
        op_36: stack[sp++] = u_from64(cd_len); NEXT();
        op_38: stack[sp++] = u_from64(code_len); NEXT();
        op_37: /* CALLDATACOPY */
        op_39: /* CODECOPY */
        op_3e: { /* RETURNDATACOPY (the buffer is always empty) */
            uint64_t dst = u_small(&ARG(0)), len = u_small(&ARG(2));
            const u256 *so = &ARG(1);
            uint64_t src = (so->w[1] | so->w[2] | so->w[3]) ? UINT64_MAX : so->w[0];
            sp -= 3;
            if (len == UINT64_MAX) FAIL(ST_OOG);
            CHARGE(3 + 3 * ((len + 31) / 32));
            if (op == 0x3e) {
                if (src != 0 || len != 0) FAIL(ST_HALT); /* OutOfOffset */
                NEXT();
            }
            if (len == 0) NEXT();
            if (!mem_expand(m, &msize, &gas, dst, len)) FAIL(ST_OOG);
            if (op == 0x37)
                copy_padded(m->mem + dst, cd, cd_len, src, len);
            else
                copy_padded(m->mem + dst, code, code_len, src, len);
            NEXT();
        }
        op_50: sp--; NEXT();
        op_51: {
            uint64_t off = u_small(&TOP);
            if (!mem_expand(m, &msize, &gas, off, 32)) FAIL(ST_OOG);
            TOP = u_from_be32(m->mem + off);
            NEXT();
        }
        op_52: {
            uint64_t off = u_small(&ARG(0));
            if (!mem_expand(m, &msize, &gas, off, 32)) FAIL(ST_OOG);
            u_to_be(&ARG(1), m->mem + off);
            sp -= 2;
            NEXT();
        }
        op_53: {
            uint64_t off = u_small(&ARG(0));
            if (!mem_expand(m, &msize, &gas, off, 1)) FAIL(ST_OOG);
            m->mem[off] = (unsigned char)ARG(1).w[0];
            sp -= 2;
            NEXT();
        }
        op_54: {
            if (TOP.w[1] | TOP.w[2] | TOP.w[3] || TOP.w[0] >= N_SLOTS) FAIL(ST_UNSUPPORTED);
            unsigned k = (unsigned)TOP.w[0];
            uint64_t bit = (uint64_t)1 << k;
            if (m->warm & bit) {
                CHARGE(100);
            } else {
                CHARGE(2100);
                m->warm |= bit;
                m->original[k] = m->storage[k];
            }
            TOP = m->storage[k];
            NEXT();
        }
        op_55: {
            const u256 *key = &ARG(0), *val = &ARG(1);
            if (key->w[1] | key->w[2] | key->w[3] || key->w[0] >= N_SLOTS) FAIL(ST_UNSUPPORTED);
            unsigned k = (unsigned)key->w[0];
            uint64_t bit = (uint64_t)1 << k;
            int cold = !(m->warm & bit);
            if (cold) {
                m->warm |= bit;
                m->original[k] = m->storage[k];
            }
            if (gas <= 2300) FAIL(ST_OOG); /* EIP-1706: no SSTORE within the call stipend */
            const u256 *orig = &m->original[k], *cur = &m->storage[k];
            int64_t cost = cold ? 2100 : 0;
            if (u_eq(val, cur)) {
                cost += 100;
            } else {
                int orig_zero = u_is_zero(orig);
                if (u_eq(orig, cur)) {
                    cost += orig_zero ? 20000 : 2900;
                    if (!orig_zero && u_is_zero(val)) refund += 4800;
                } else {
                    cost += 100;
                    if (!orig_zero) {
                        if (u_is_zero(cur))
                            refund -= 4800;
                        else if (u_is_zero(val))
                            refund += 4800;
                    }
                    if (u_eq(orig, val)) refund += orig_zero ? 19900 : 2800;
                }
            }
            CHARGE(cost);
            m->storage[k] = *val;
            sp -= 2;
            NEXT();
        }
        op_56: {
            const u256 *d = &TOP;
            if (d->w[1] | d->w[2] | d->w[3] || d->w[0] >= code_len || !m->jumpdest[d->w[0]]) FAIL(ST_HALT);
            pc = (size_t)d->w[0];
            sp--;
            DISPATCH();
        }
        op_57: {
            const u256 *d = &ARG(0);
            if (!u_is_zero(&ARG(1))) {
                if (d->w[1] | d->w[2] | d->w[3] || d->w[0] >= code_len || !m->jumpdest[d->w[0]]) FAIL(ST_HALT);
                pc = (size_t)d->w[0];
                sp -= 2;
                DISPATCH();
            }
            sp -= 2;
            NEXT_BLOCK();
        }
        op_58: stack[sp++] = u_from64(pc); NEXT();
        op_59: stack[sp++] = u_from64(msize); NEXT();
        op_5a: /* GAS ends its block, so the gas left here is the exact interpreter's */
            stack[sp++] = u_from64((uint64_t)gas);
            NEXT_BLOCK();
        op_5b:
#if INTERP_BLOCKS
            ENTER(pc);
#endif
            NEXT();
        op_5f: stack[sp++] = U256_ZERO; NEXT();
        op_60: stack[sp++] = u_from64(code[pc + 1]); pc += 2; DISPATCH();
        op_61: stack[sp++] = u_from64(((uint64_t)code[pc + 1] << 8) | code[pc + 2]); pc += 3; DISPATCH();
        op_62: op_63: op_64: op_65: op_66: op_67: op_68: op_69:
        op_6a: op_6b: op_6c: op_6d: op_6e: op_6f: op_70: op_71:
        op_72: op_73: op_74: op_75: op_76: op_77: op_78: op_79:
        op_7a: op_7b: op_7c: op_7d: op_7e: op_7f: {
            int n = op - 0x5f;
            stack[sp++] = u_from_be(code + pc + 1, n);
            pc += 1 + n;
            DISPATCH();
        }
        op_80: op_81: op_82: op_83: op_84: op_85: op_86: op_87:
        op_88: op_89: op_8a: op_8b: op_8c: op_8d: op_8e: op_8f:
            stack[sp] = stack[sp - 1 - (op - 0x80)];
            sp++;
            NEXT();
        op_90: op_91: op_92: op_93: op_94: op_95: op_96: op_97:
        op_98: op_99: op_9a: op_9b: op_9c: op_9d: op_9e: op_9f: {
            u256 t = TOP;
            TOP = stack[sp - 2 - (op - 0x90)];
            stack[sp - 2 - (op - 0x90)] = t;
            NEXT();
        }
        op_a0: op_a1: op_a2: op_a3: op_a4: {
            int topics = op - 0xa0;
            uint64_t off = u_small(&ARG(0)), len = u_small(&ARG(1));
            if (len == UINT64_MAX) FAIL(ST_OOG);
            CHARGE(375 + 375 * topics + 8 * len);
            if (len && !mem_expand(m, &msize, &gas, off, len)) FAIL(ST_OOG);
            if (sp < (size_t)(2 + topics)) FAIL(ST_HALT);
            sp -= 2 + topics; /* the data and topics are discarded: nothing reads logs */
            NEXT();
        }
        op_f3: /* RETURN */
        op_fd: { /* REVERT */
            uint64_t off = u_small(&ARG(0)), len = u_small(&ARG(1));
            sp -= 2;
            if (len == UINT64_MAX) FAIL(ST_OOG);
            if (len) {
                if (!mem_expand(m, &msize, &gas, off, len)) FAIL(ST_OOG);
                if (set_output(m, m->mem + off, len) < 0) FAIL(ST_HALT);
            }
            if (op == 0xfd) FAIL(ST_REVERT);
            goto finish;
        }
    op_invalid: /* 0xfe INVALID and every opcode not handled above */
        FAIL(ST_HALT);
    }
#undef DISPATCH
#if INTERP_BLOCKS
#undef ENTER
#undef ENTER_FALLTHROUGH
#endif
#undef NEXT_BLOCK
#undef NEXT
#undef TOP
#undef ARG
#undef FAIL
#undef CHARGE

finish:
    if (msize) memset(m->mem, 0, msize);
    res.status = status;
    if (status == ST_OK) {
        res.gas_spent = gas_limit - gas;
        int64_t cap = res.gas_spent / 5;
        res.refund = refund < cap ? refund : cap;
        if (res.refund < 0) res.refund = 0;
    } else {
        /* undo this call's storage writes: every written slot was accessed, hence warm */
        for (unsigned k = 0; k < N_SLOTS; k++)
            if (m->warm & ((uint64_t)1 << k)) m->storage[k] = m->original[k];
        res.gas_spent = status == ST_REVERT ? gas_limit - gas : gas_limit;
        if (status != ST_REVERT) m->out_len = 0;
    }
    return res;
}

#undef INTERP_NAME
#undef INTERP_BLOCKS
