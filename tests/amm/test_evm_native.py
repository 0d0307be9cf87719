"""The core's EVM (_evm.c) against pyrevm's exact path: every call, every simulation.

Each differential check runs the same call (same calldata, same committed storage, same gas limit)
in the core's EVM and in pyrevm as a fresh transaction (the reference's), and requires the same
failure kind, return or revert data, gas spent, refund and storage afterwards.
"""

from __future__ import annotations

import dataclasses
import random
import tracemalloc

import numpy as np
import pytest
from _evm_oracle import assert_same_calls, native_call, oracle_call
from _solidity_helpers import (
    DYNAMIC,
    EXAMPLES_DIR,
    FIXTURES,
    STARTER,
    Capturing,
    fixture,
    load,
    strategy_source,
)
from eth_hash.auto import keccak
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from stratforge.amm import _core
from stratforge.amm.engine import draw_config, run_batch, simulate
from stratforge.amm.evm import (
    GAS_LIMIT_INIT,
    GAS_LIMIT_SWAP,
    NATIVE_UNSUPPORTED,
    SEL_AFTER_INITIALIZE,
    SEL_AFTER_SWAP,
    SEL_GET_NAME,
    EvmStrategySpec,
    NativeEvmStrategy,
    pack_after_initialize,
    pack_after_swap,
)
from stratforge.amm.solidity import load_solidity_strategy
from stratforge.amm.strategy import FixedFee

WAD = 10**18
INIT = (100 * WAD, 10_000 * WAD)
M = 2**256
LOADABLE = [
    p for p in sorted(FIXTURES.glob("*.sol")) + sorted(EXAMPLES_DIR.glob("*.sol")) if "Outside" not in p.name
]


def _random_calls(rng: random.Random, n: int) -> list[tuple[bytes, int]]:
    """afterInitialize, then afterSwaps with plausible and extreme values, then getName and junk."""
    calls = [(pack_after_initialize(*INIT), GAS_LIMIT_INIT)]
    for i in range(n):

        def word() -> int:
            return rng.randrange(2 ** rng.choice([1, 8, 64, 70, 100, 128, 250, 256]))

        plausible = rng.random() < 0.6
        x = rng.randrange(1, 50 * WAD) if plausible else word()
        y = rng.randrange(1, 5000 * WAD) if plausible else word()
        rx = rng.randrange(50 * WAD, 200 * WAD) if plausible else word()
        ry = rng.randrange(5_000 * WAD, 20_000 * WAD) if plausible else word()
        ts = i // 2 if plausible else word() % 2**64
        calls.append((pack_after_swap(rng.random() < 0.5, x, y, ts, rx, ry), GAS_LIMIT_SWAP))
    calls.append((SEL_GET_NAME, 50_000))
    calls.append((bytes.fromhex("deadbeef") + bytes(32), GAS_LIMIT_SWAP))  # unknown selector
    calls.append((SEL_AFTER_SWAP + bytes(10), GAS_LIMIT_SWAP))  # truncated calldata
    calls.append((pack_after_swap(True, 1, 2, 3, 4, 5), 21_000 + 2_000))  # starved of gas
    return calls


# ------------------------------------------------------------------------------ words and hashes


def test_keccak256_matches_the_reference_implementation() -> None:
    assert _core.keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    rng = random.Random(0)
    for n in (1, 31, 32, 135, 136, 137, 271, 272, 1000):
        data = rng.randbytes(n)
        assert _core.keccak256(data) == keccak(data), n


def _signed(v: int) -> int:
    return v - M if v >> 255 else v


def _python_op(op: int, a: int, b: int, c: int) -> int:
    sa, sb = _signed(a), _signed(b)
    if op == 0x01:
        return (a + b) % M
    if op == 0x02:
        return a * b % M
    if op == 0x03:
        return (a - b) % M
    if op == 0x04:
        return a // b if b else 0
    if op == 0x05:
        q = abs(sa) // abs(sb) if b else 0
        return (-q if (sa < 0) != (sb < 0) else q) % M
    if op == 0x06:
        return a % b if b else 0
    if op == 0x07:
        r = abs(sa) % abs(sb) if b else 0
        return (-r if sa < 0 else r) % M
    if op == 0x08:
        return (a + b) % c if c else 0
    if op == 0x09:
        return a * b % c if c else 0
    if op == 0x0A:
        return pow(a, b, M)
    if op == 0x0B:
        if a >= 31:
            return b
        bit = 8 * a + 7
        low = b & ((1 << (bit + 1)) - 1)
        return (low - (1 << (bit + 1))) % M if low >> bit else low
    if op == 0x1B:
        return (b << a) % M if a < 256 else 0
    if op == 0x1C:
        return b >> a if a < 256 else 0
    return (sb >> min(a, 256)) % M  # 0x1d SAR


_words = st.one_of(
    st.integers(0, 2**64),
    st.integers(0, M - 1),
    st.integers(0, 300),
    st.sampled_from([0, 1, M - 1, 2**255, 2**255 - 1, 2**128, 2**64 - 1, 10**18]),
    st.integers(1, 2**130).map(lambda v: M - v),
)


@settings(max_examples=3000, deadline=None)
@given(st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x1B, 0x1C, 0x1D]), _words, _words, _words)
def test_256_bit_arithmetic_matches_python_integers(op: int, a: int, b: int, c: int) -> None:
    assert _core.u256_op(op, a, b, c) == _python_op(op, a, b, c)


# ------------------------------------------------------------------------------ call by call


@pytest.mark.parametrize("path", LOADABLE, ids=lambda p: p.name)
def test_every_example_and_fixture_matches_pyrevm_call_by_call(path) -> None:  # noqa: ANN001
    spec = load(path)
    calls = _random_calls(random.Random(path.name), 120)
    assert_same_calls(spec.runtime_code, calls)


def test_opcode_zoo_covers_what_solc_emits_and_matches_pyrevm() -> None:
    """OpcodeZoo makes solc (0.8.24, viaIR, paris) emit every opcode family a strategy can reach;
    600 calls spread over its blocks succeed, revert, run out of gas and halt exactly as in pyrevm."""
    spec = fixture("OpcodeZoo.sol")
    ok = assert_same_calls(spec.runtime_code, _random_calls(random.Random(7), 600))
    assert ok > 300
    machine = _core.EvmMachine(spec.runtime_code)
    kinds = {machine.call(cd, gas)[0] for cd, gas in _random_calls(random.Random(7), 600)}
    assert kinds >= {None, "revert", "out_of_gas", "halt"}


def _template_sources() -> list[tuple[str, str]]:
    from stratforge.explore.templates import load_library

    out = []
    for name, template in sorted(load_library().items()):
        rng = random.Random(name)
        for k in range(2):
            params = {p.name: rng.uniform(p.min, p.max) for p in template.params}
            out.append((f"{name}-{k}", template.render(params)))
    return out


@pytest.mark.parametrize(("label", "source"), _template_sources(), ids=lambda v: v if len(v) < 40 else "")
def test_templates_at_random_parameters_match_pyrevm_call_by_call(label: str, source: str) -> None:
    spec = load_solidity_strategy(source)
    assert_same_calls(spec.runtime_code, _random_calls(random.Random(label), 60))


_selectors = st.sampled_from([SEL_AFTER_SWAP, SEL_AFTER_INITIALIZE, SEL_GET_NAME, b"\x00\x00\x00\x00"])
_calldata = st.one_of(
    st.tuples(_selectors, st.lists(_words, min_size=0, max_size=7)).map(
        lambda t: t[0] + b"".join(w.to_bytes(32, "big") for w in t[1])
    ),
    st.binary(max_size=240),
)
_storage = st.dictionaries(st.integers(0, 31), _words, max_size=12)


@pytest.mark.parametrize("name", ["ComplexStrategy.sol", "OpcodeZoo.sol", "GasBurner.sol"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calldata=st.lists(_calldata, min_size=1, max_size=4), storage=_storage)
def test_fuzzed_calldata_and_storage_match_pyrevm(
    name: str, calldata: list[bytes], storage: dict[int, int]
) -> None:
    spec = fixture(name)
    assert_same_calls(spec.runtime_code, [(cd, GAS_LIMIT_SWAP) for cd in calldata], storage)


# ------------------------------------------------------------------------------ raw programs


def _push(v: int) -> bytes:
    n = max(1, (v.bit_length() + 7) // 8)
    return bytes([0x5F + n]) + v.to_bytes(n, "big")


# Defined opcodes a fuzzed program may use: all but the ones the core leaves to pyrevm and
# GASLIMIT (pyrevm cannot be given the reference's 2^256-1, see the test below).
_PROGRAM_OPS = sorted(
    {*range(0x00, 0x0C), *range(0x10, 0x1E), 0x20, *range(0x30, 0x49), *range(0x50, 0x5C), 0x5F}
    | {*range(0x80, 0xA5), 0xF3, 0xFD, 0xFE, 0x0C, 0x21, 0xEF} - NATIVE_UNSUPPORTED - {0x45}
)
_instruction = st.one_of(
    st.sampled_from(_PROGRAM_OPS).map(lambda op: bytes([op])),
    st.integers(0, 70).map(_push),
    st.sampled_from([0, 1, 31, 32, 2**64, M - 1, 2**255]).map(_push),
    st.integers(0, 40).map(lambda k: _push(k) + bytes([0x54])),  # SLOAD of a small key
    st.tuples(st.integers(0, 2**70), st.integers(0, 40)).map(
        lambda t: _push(t[0]) + _push(t[1]) + bytes([0x55])
    ),
    st.just(bytes([0x5B])),  # JUMPDEST
)


@settings(max_examples=1500, deadline=None)
@given(
    program=st.lists(_instruction, min_size=1, max_size=40).map(b"".join),
    calldata=st.binary(max_size=70),
    gas=st.integers(21_000, 120_000),
    storage=_storage,
)
def test_fuzzed_programs_match_pyrevm(
    program: bytes, calldata: bytes, gas: int, storage: dict[int, int]
) -> None:
    """Random straight-line and jumping programs: arithmetic on edge values, memory growth, copies,
    hashing, storage, jumps to and away from JUMPDESTs, stack underflow, invalid opcodes."""
    machine = _core.EvmMachine(program, storage)
    got = native_call(machine, calldata, gas)
    assume(got.kind != "unsupported")  # a storage key >= 64: the pyrevm fallback's business
    intrinsic = 21_000 + sum(16 if b else 4 for b in calldata)
    assume(gas >= intrinsic)
    assert got == oracle_call(program, storage, calldata, gas)


def test_hand_written_programs_cover_the_remaining_opcodes() -> None:
    """Opcodes solc does not emit for a strategy, each in a program whose result shows its value."""
    ret_top = bytes([0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xF3])  # MSTORE(0, top); RETURN(0, 32)
    programs = [
        bytes([0x58, 0x58, 0x01]) + ret_top,  # PC
        bytes([0x60, 0x07, 0x60, 0x40, 0x53, 0x59]) + ret_top,  # MSTORE8 then MSIZE
        bytes([0x38]) + ret_top,  # CODESIZE
        bytes([0x60, 0x20, 0x60, 0x00, 0x60, 0x00, 0x39, 0x60, 0x20, 0x60, 0x00, 0xF3]),  # CODECOPY
        bytes([0x60, 0x20, 0x60, 0x05, 0x60, 0x00, 0x37, 0x60, 0x20, 0x60, 0x00, 0xF3]),  # CALLDATACOPY
        bytes([0x3D]) + ret_top,  # RETURNDATASIZE
        bytes([0x60, 0x00, 0x60, 0x00, 0x60, 0x00, 0x3E, 0x00]),  # empty RETURNDATACOPY
        bytes([0x60, 0x01, 0x60, 0x00, 0x60, 0x00, 0x3E]),  # RETURNDATACOPY out of bounds: halt
        bytes([0x5F]) + ret_top,  # PUSH0
        bytes([0x60, 0x00, 0x40]) + ret_top,  # BLOCKHASH
        bytes([0x41, 0x44, 0x18]) + ret_top,  # COINBASE ^ PREVRANDAO
        bytes([0x5A]) + ret_top,  # GAS
        bytes([0x60, 0x01] * 16 + [0x8F, 0x9F]) + ret_top,  # DUP16, SWAP16
        bytes([0x60, 0x01] * 1025),  # stack overflow
        bytes([0x60, 0x03, 0x56, 0x5B, 0x00]),  # JUMP into PUSH data... of itself: not a JUMPDEST
        bytes([0x60, 0x04, 0x56, 0x00, 0x5B, 0x60, 0x2A]) + ret_top,  # valid JUMP
        bytes([0x60, 0x00, 0x60, 0x00, 0xA2]),  # LOG2 underflow (needs 4)
        bytes([0x60, 0x01, 0x61, 0xFF, 0xFF, 0x52]),  # memory growth to 64 KiB
        bytes([0x60, 0x01, 0x63, 0xFF, 0xFF, 0xFF, 0xFF, 0x52]),  # memory bomb: out of gas
        bytes([0x60, 0x20, 0x63, 0xFF, 0xFF, 0xFF, 0xFF, 0x20]),  # KECCAK256 far out: out of gas
        bytes([0x60, 0x05, 0x60, 0x00, 0x55, 0x60, 0x00, 0x60, 0x00, 0x55, 0x00]),  # SSTORE set then clear
        bytes([0x60, 0x00, 0x60, 0x03, 0x55, 0x00]),  # clear a non-zero slot: refund
    ]
    for program in programs:
        for storage in ({}, {3: 9, 0: 1}):
            machine = _core.EvmMachine(program, storage)
            cd = bytes(range(1, 40))
            got = native_call(machine, cd, 100_000)
            assert got == oracle_call(program, storage, cd, 100_000), program.hex()


@pytest.mark.parametrize("width", range(1, 33))
def test_every_push_width_reads_its_immediate_big_endian(width: int) -> None:
    """PUSH1..PUSH32 with distinct bytes (so a byte read from the wrong place shows), alone and as
    the last instruction of the code (its immediate runs past the end: the missing bytes are zero)."""
    ret_top = bytes([0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xF3])
    immediate = bytes((0xA0 + 7 * i) % 256 or 1 for i in range(width))
    program = bytes([0x5F + width]) + immediate + ret_top
    machine = _core.EvmMachine(program, {})
    got = native_call(machine, b"", 100_000)
    assert got == oracle_call(program, {}, b"", 100_000)
    assert int.from_bytes(got.output, "big") == int.from_bytes(immediate, "big")
    truncated = bytes([0x5F + width]) + immediate[: width // 2]
    machine = _core.EvmMachine(truncated, {})
    assert native_call(machine, b"", 100_000) == oracle_call(truncated, {}, b"", 100_000)


def _gas_windows(program: bytes, storage: dict[int, int], calldata: bytes) -> list[int]:
    """Every gas limit from just short of what the call spends to 2,450 past it (an SSTORE needs more
    than the 2,300 stipend left): the limits where a call stops part-way through a basic block."""
    intrinsic = 21_000 + sum(16 if b else 4 for b in calldata)
    need = oracle_call(program, storage, calldata, 1_000_000).gas_spent
    return list(range(max(intrinsic, need - 150), need + 2_450))


_RET_TOP = bytes([0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xF3])  # MSTORE(0, top); RETURN(0, 32)


@pytest.mark.parametrize(
    "program",
    [
        # a cheap SSTORE early in a long block: its stipend check must see the gas the rest of the
        # block has not used yet
        bytes([0x60, 0x03, 0x54, 0x50, 0x60, 0x09, 0x60, 0x03, 0x55] + [0x60, 0x01, 0x50] * 30 + [0x00]),
        # GAS in the middle of a block, then more of the block, returning what GAS saw
        bytes([0x60, 0x01, 0x50, 0x5A] + [0x60, 0x01, 0x50] * 10) + _RET_TOP,
        # a loop: JUMPI falling through into a JUMPDEST, memory growing each round
        bytes(
            [0x60, 0x00, 0x5B, 0x80, 0x60, 0x20, 0x02, 0x51, 0x50, 0x60, 0x01, 0x01, 0x80, 0x60, 0x0A, 0x11]
            + [0x60, 0x02, 0x57, 0x5B, 0x60, 0x01, 0x50]
        )
        + _RET_TOP,
    ],
    ids=["sstore-stipend", "gas-mid-block", "loop"],
)
def test_every_gas_limit_near_a_calls_need_matches_pyrevm(program: bytes) -> None:
    """The core checks static gas once per basic block; at every limit where the call runs out
    part-way through a block, status, gas, output and storage must still be the reference's."""
    storage = {3: 9}
    outcomes = set()
    for gas in _gas_windows(program, storage, b""):
        got = native_call(_core.EvmMachine(program, storage), b"", gas)
        assert got == oracle_call(program, storage, b"", gas), gas
        outcomes.add(got.kind)
    assert None in outcomes and "out_of_gas" in outcomes  # the windows straddle the need


def test_every_gas_limit_near_a_strategys_need_matches_pyrevm() -> None:
    spec = fixture("ComplexStrategy.sol")
    machine = _core.EvmMachine(spec.runtime_code, {})
    native_call(machine, pack_after_initialize(*INIT), GAS_LIMIT_INIT)
    storage = machine.storage
    calldata = pack_after_swap(True, 2 * WAD, 190 * WAD, 5, 102 * WAD, 9_810 * WAD)
    kinds = set()
    for gas in _gas_windows(spec.runtime_code, storage, calldata):
        got = native_call(_core.EvmMachine(spec.runtime_code, storage), calldata, gas)
        assert got == oracle_call(spec.runtime_code, storage, calldata, gas), gas
        kinds.add(got.kind)
    assert None in kinds and "out_of_gas" in kinds


def test_gaslimit_is_the_references_and_pyrevm_cannot_match_it() -> None:
    """The reference's block gas limit is revm's default U256::MAX; pyrevm always reports 2^64-1."""
    program = bytes([0x45, 0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xF3])
    kind, out, _, _ = _core.EvmMachine(program).call(b"", 30_000)
    assert kind is None and int.from_bytes(out, "big") == M - 1
    assert int.from_bytes(oracle_call(program, {}, b"", 30_000).output, "big") == 2**64 - 1


# ------------------------------------------------------------------------------ fallback


def _creation_code(runtime: bytes) -> bytes:
    """Init code that returns ``runtime`` (CODECOPY it to memory 0, RETURN it)."""
    n = len(runtime)
    init = bytes(
        [0x61, n >> 8, n & 0xFF, 0x60, 0x0E, 0x60, 0x00, 0x39, 0x61, n >> 8, n & 0xFF, 0x60, 0x00, 0xF3]
    )
    assert len(init) == 0x0E
    return init + runtime


def test_an_unsupported_opcode_runs_that_call_in_pyrevm_and_counts_it() -> None:
    # TSTORE(0, 5); TLOAD(0) -> slot 1; return (30 bps, 30 bps + TLOAD)
    fee = 30 * 10**14
    runtime = (
        bytes([0x60, 0x05, 0x60, 0x00, 0x5D, 0x60, 0x00, 0x5C, 0x80, 0x60, 0x01, 0x55])
        + _push(fee)
        + bytes([0x01, 0x60, 0x20, 0x52])
        + _push(fee)
        + bytes([0x60, 0x00, 0x52, 0x60, 0x40, 0x60, 0x00, 0xF3])
    )
    spec = EvmStrategySpec.from_creation_code(_creation_code(runtime), name="T")
    assert spec.engine == "pyrevm" and "0x5d" in spec.engine_note  # chosen at load time
    native = NativeEvmStrategy(spec.with_engine("native"))
    assert native.after_swap(True, 1, 2, 3, 4, 5) == (fee, fee + 5)
    assert native.fallback_calls == 1 and native.storage == {1: 5}
    assert spec.create().after_swap(True, 1, 2, 3, 4, 5) == (fee, fee + 5)


def test_fallback_calls_are_reported_by_the_simulation() -> None:
    fee = 30 * 10**14
    runtime = bytes([0x60, 0x00, 0x5C, 0x50]) + _push(fee) + bytes([0x60, 0x00, 0x52])
    runtime += _push(fee) + bytes([0x60, 0x20, 0x52, 0x60, 0x40, 0x60, 0x00, 0xF3])
    spec = EvmStrategySpec.from_creation_code(_creation_code(runtime), name="T").with_engine("native")
    market = dataclasses.replace(draw_config(0).market, n_steps=200)
    result = simulate(dataclasses.replace(draw_config(0), market=market), spec)
    # every afterSwap and the afterInitialize call ran in pyrevm
    assert result.submission.evm_fallback_calls == result.submission.hook_calls + 1 > 1
    assert (
        result.submission.edge
        == simulate(dataclasses.replace(draw_config(0), market=market), FixedFee(30)).submission.edge
    )


# ------------------------------------------------------------------------------ whole simulations


def _columns_equal(a, b) -> None:  # noqa: ANN001 - BatchResult
    for col in a.columns:
        np.testing.assert_array_equal(a.columns[col], b.columns[col], err_msg=col)


def test_starter_native_equals_pyrevm_and_fixed_50_bps() -> None:
    spec = load(STARTER)
    assert spec.engine == "native"
    native = run_batch(spec, 10, workers=1)
    pyrevm = run_batch(spec.with_engine("pyrevm"), 10, workers=1)
    assert round(native.mean_edge, 2) == 392.08
    _columns_equal(native, pyrevm)
    fixed = run_batch(FixedFee(50), 10, workers=1)
    np.testing.assert_array_equal(native.columns["edge"], fixed.columns["edge"])


@pytest.mark.slow
def test_starter_native_1000_simulations() -> None:
    assert round(run_batch(load(STARTER), 1000).mean_edge, 2) == 369.45


@pytest.mark.parametrize(
    ("name", "min_calls"),
    [("DynamicStrategy.sol", 1000), ("ComplexStrategy.sol", 1000), ("OpcodeZoo.sol", 30)],
)
def test_dynamic_strategies_native_simulations_are_bit_identical_to_pyrevm(name: str, min_calls: int) -> None:
    spec = load(EXAMPLES_DIR / name) if name == "DynamicStrategy.sol" else fixture(name)
    native = run_batch(spec, 3, workers=1)
    pyrevm = run_batch(spec.with_engine("pyrevm"), 3, workers=1)
    _columns_equal(native, pyrevm)
    assert native.columns["hook_calls"].min() > min_calls


@pytest.mark.slow
def test_complex_strategy_100_simulations_bit_identical_to_pyrevm() -> None:
    spec = fixture("ComplexStrategy.sol")
    native = run_batch(spec, 100)
    _columns_equal(native, run_batch(spec.with_engine("pyrevm"), 100))
    assert native.columns["hook_failures"].sum() == 0


def test_results_do_not_depend_on_the_number_of_workers() -> None:
    spec = fixture("ComplexStrategy.sol")
    _columns_equal(run_batch(spec, 4, workers=1), run_batch(spec, 4, workers=2))


def test_memory_stays_flat_in_the_number_of_simulations() -> None:
    spec = fixture("ComplexStrategy.sol")
    market = dataclasses.replace(draw_config(0).market, n_steps=500)
    tracemalloc.start()
    try:
        sizes = []
        for seed in range(30):
            simulate(dataclasses.replace(draw_config(seed), market=market), spec)
            if seed in (4, 29):
                sizes.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    assert sizes[1] - sizes[0] < 64 * 1024  # 25 more simulations, no growth beyond noise


# ------------------------------------------------------------------------------ hostile strategies


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("InfiniteLoop.sol", "out_of_gas"),
        ("AlwaysReverts.sol", "revert"),
        ("FeeTooHigh.sol", "fee_above_max"),
        ("MemoryBomb.sol", "out_of_gas"),
        ("SlotOutOfBounds.sol", "revert"),
    ],
)
def test_hostile_strategies_are_contained(name: str, kind: str) -> None:
    """Each opens at 50 bps and never returns a usable fee: the simulation finishes, every call is
    counted as a failure of its kind, and the run equals fixed 50 bps."""
    spec = Capturing(fixture(name))
    market = dataclasses.replace(draw_config(0).market, n_steps=2000)
    config = dataclasses.replace(draw_config(0), market=market)
    result = simulate(config, spec)
    assert result.submission.edge == simulate(config, FixedFee(50)).submission.edge
    assert result.submission.hook_failures == result.submission.hook_calls > 100
    assert spec.created[0].failures == {kind: result.submission.hook_calls}


def test_gas_burner_runs_out_of_gas_at_the_same_loop_count_as_pyrevm() -> None:
    spec = fixture("GasBurner.sol")
    warmup = [(pack_after_initialize(*INIT), GAS_LIMIT_INIT)] + [
        (pack_after_swap(True, 0, k, 1, 101 * WAD, 9_900 * WAD), GAS_LIMIT_SWAP) for k in (1, 2, 3)
    ]
    burn = [
        (pack_after_swap(True, n, 3, 2, 101 * WAD, 9_900 * WAD), GAS_LIMIT_SWAP) for n in range(1000, 1400, 7)
    ]
    ok = assert_same_calls(spec.runtime_code, warmup + burn)
    assert 4 < ok < len(warmup + burn)  # the limit falls inside the sweep


# ------------------------------------------------------------------------------ spec API


def test_initial_storage_is_applied_before_after_initialize_in_both_engines() -> None:
    hooks = """
    function afterInitialize(uint256, uint256) external override returns (uint256, uint256) {
        return (bpsToWad(30) + slots[0], bpsToWad(30) + slots[5]);
    }

    function afterSwap(TradeInfo calldata) external override returns (uint256, uint256) {
        slots[5] += 1;
        return (bpsToWad(30) + slots[0], bpsToWad(30) + slots[5]);
    }

    function getName() external pure override returns (string memory) {
        return "S";
    }
"""
    spec = load_solidity_strategy(strategy_source(hooks=hooks)).with_storage({0: 7, 5: 100})
    base = 30 * 10**14
    for engine in ("native", "pyrevm"):
        instance = spec.with_engine(engine).create()
        assert instance.after_initialize(*INIT) == (base + 7, base + 100)
        assert instance.after_swap(True, 1, 2, 3, 4, 5) == (base + 7, base + 101)
    with pytest.raises(ValueError, match="slots"):
        spec.with_storage({40: 1})


def test_native_instance_counts_and_pickles_like_the_pyrevm_one() -> None:
    import pickle

    spec = pickle.loads(pickle.dumps(load(DYNAMIC)))
    instance = spec.create()
    assert isinstance(instance, NativeEvmStrategy) and instance.name == "DynamicVolatility"
    instance.after_initialize(*INIT)
    assert instance.after_swap(True, WAD, 100 * WAD, 1, 101 * WAD, 9_900 * WAD) is not None
    assert instance.hook_calls == 1 and instance.failures == {}
    assert instance.after_swap(True, WAD, 100 * WAD, 2, 0, 9_900 * WAD) is None  # division by zero
    assert instance.failures == {"revert": 1}
