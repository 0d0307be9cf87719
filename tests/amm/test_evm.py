"""The pyrevm engine (oracle and fallback): parity with the native engine, exact gas at the limit,
runtime failure handling, the wall-clock guard. The core's EVM is tested in test_evm_native.py."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import numpy as np
import pytest
from _solidity_helpers import DYNAMIC, HOOKS, STARTER, VANILLA, Capturing, fixture, load, strategy_source
from pyrevm import AccountInfo

from stratforge.amm.compiler import compile_strategy
from stratforge.amm.engine import draw_config, run_batch, simulate
from stratforge.amm.evm import (
    CALLER_ADDRESS,
    FAST_PATH_GAS,
    GAS_LIMIT_SWAP,
    STRATEGY_ADDRESS,
    StrategyError,
    code_reads_gas,
    decode_fee_pair,
    exact_call,
    fresh_evm,
    pack_after_initialize,
    pack_after_swap,
)
from stratforge.amm.solidity import (
    CompilerUnavailable,
    StrategyRejected,
    check_solidity,
    load_solidity_strategy,
)
from stratforge.amm.strategy import MAX_FEE, FixedFee

WAD = 10**18
INIT = (100 * WAD, 10_000 * WAD)
RESERVES = (101 * WAD, 9_900 * WAD)


# ------------------------------------------------------------------------------ calldata


def test_after_swap_calldata_layout() -> None:
    cd = pack_after_swap(True, 5, 6, 7, 8, 9)
    assert len(cd) == 196
    assert cd[:4] == bytes.fromhex("c2babb57")
    words = [int.from_bytes(cd[4 + 32 * i : 36 + 32 * i], "big") for i in range(6)]
    assert words == [1, 5, 6, 7, 8, 9]
    assert pack_after_swap(False, 0, 0, 0, 0, 0)[4:36] == bytes(32)
    init = pack_after_initialize(*INIT)
    assert init[:4] == bytes.fromhex("837aef47") and len(init) == 68


def test_decode_fee_pair_bounds() -> None:
    word = lambda v: v.to_bytes(32, "big")  # noqa: E731
    assert decode_fee_pair(word(MAX_FEE) + word(0)) == (MAX_FEE, 0)
    assert decode_fee_pair(word(MAX_FEE + 1) + word(0)) == "fee_above_max"
    assert decode_fee_pair(word(0) + word(2**255)) == "fee_above_max"
    assert decode_fee_pair(bytes(63)) == "malformed_return"


def test_gas_opcode_detection_skips_push_data_and_metadata() -> None:
    assert code_reads_gas(bytes([0x60, 0x5A, 0x5A, 0x00]))  # PUSH1 0x5a, then GAS
    assert not code_reads_gas(bytes([0x60, 0x5A, 0x00]))  # 0x5a only as PUSH data
    # 0x5a only inside a 3-byte "metadata" tail whose length (3) sits in the last two bytes
    assert not code_reads_gas(bytes([0x00, 0x5A, 0x5A, 0x5A, 0x00, 0x03]))


# ------------------------------------------------------------------------------ parity


def test_starter_through_evm_equals_native_50_bps() -> None:
    spec = load(STARTER)
    assert spec.name == "StarterStrategy"
    evm = run_batch(spec, 10, workers=2)
    native = run_batch(FixedFee(50), 10, workers=1)
    assert round(evm.mean_edge, 2) == 392.08
    for col in ("edge", "normalizer_edge", "pnl", "arb_volume_y", "retail_volume_y", "avg_bid_fee"):
        np.testing.assert_array_equal(evm.columns[col], native.columns[col])
    assert evm.columns["hook_calls"].min() > 1000
    assert evm.columns["hook_failures"].sum() == 0


@pytest.mark.slow
def test_starter_through_evm_1000_simulations() -> None:
    result = run_batch(load(STARTER), 1000)
    assert round(result.mean_edge, 2) == 369.45


def test_deployed_runtime_code_is_the_compilers() -> None:
    compiled = compile_strategy(DYNAMIC.read_text(), file_name=DYNAMIC.name)
    assert load(DYNAMIC).runtime_code == compiled.runtime_code  # no immutables: identical bytes


def test_vanilla_example_equals_native_normalizer() -> None:
    config = draw_config(3)
    evm, native = simulate(config, load(VANILLA)), simulate(config, FixedFee(30))
    assert evm.submission.edge == native.submission.edge
    assert evm.normalizer.edge == native.normalizer.edge


def test_exact_mode_gives_the_same_simulation_as_the_fast_path() -> None:
    spec = load(DYNAMIC).with_engine("pyrevm")
    exact = Capturing(dataclasses.replace(spec, always_exact=True))
    fast = Capturing(spec)
    config = draw_config(1)
    a, b = simulate(config, fast), simulate(config, exact)
    assert a.submission == b.submission
    assert fast.created[0].exact_calls == 0  # the dynamic example stays on the fast path
    assert exact.created[0].exact_calls == b.submission.hook_calls + 1  # + afterInitialize


@pytest.mark.parametrize("engine", ["native", "pyrevm"])
def test_spec_is_picklable_and_instances_are_independent(engine: str) -> None:
    spec = pickle.loads(pickle.dumps(load(DYNAMIC).with_engine(engine)))
    one, two = spec.create(), spec.create()
    one.after_initialize(*INIT)
    two.after_initialize(*INIT)
    # Drive `one` through a volatile step; `two` must not see its state.
    one.after_swap(True, WAD, 150 * WAD, 1, 50 * WAD, 20_000 * WAD)
    trade = (False, WAD, 99 * WAD, 2, *RESERVES)
    assert one.after_swap(*trade) != two.after_swap(*trade)
    assert two.after_swap(*trade) == two.after_swap(*trade)  # same step, same spot: same fees


# ------------------------------------------------------------------------------ gas


#: afterInitialize, then three cheap afterSwaps that set slots 1, 2 and 3 one at a time.
WARMUP = [pack_after_initialize(*INIT)] + [pack_after_swap(True, 0, k, 1, *RESERVES) for k in (1, 2, 3)]


def _burner_state() -> tuple[AccountInfo, dict[int, int]]:
    """GasBurner's storage after WARMUP, in the fresh-transaction model."""
    spec = fixture("GasBurner.sol")
    info = AccountInfo(nonce=1, code=spec.runtime_code)
    storage: dict[int, int] = {}
    for calldata in WARMUP:
        outcome = exact_call(info, storage, calldata, GAS_LIMIT_SWAP)
        assert outcome.failure is None
        storage = outcome.storage
    assert storage == {0: 1, 1: 2, 2: 3, 3: 4}
    return info, storage


def _warm_after_warmup(info: AccountInfo):  # noqa: ANN202 - pyrevm.EVM
    warm = fresh_evm(info, {})
    for calldata in WARMUP:
        warm.message_call(CALLER_ADDRESS, STRATEGY_ADDRESS, calldata, 0, GAS_LIMIT_SWAP)
    return warm


def test_fresh_transaction_model_charges_cold_slots_and_sstore_resets() -> None:
    """EIP-2929/2200: a fresh transaction pays, per slot touched, 2,100 for the cold access plus
    2,800 more for rewriting a clean slot (2,900 reset instead of a 100 dirty write); slot 0 is first
    read (cold SLOAD 2,100 instead of 100) and then rewritten: 2,000 + 2,800."""
    info, storage = _burner_state()
    cd = pack_after_swap(True, 100, 3, 2, *RESERVES)
    fresh = exact_call(info, storage, cd, GAS_LIMIT_SWAP)
    warm = _warm_after_warmup(info)
    warm.message_call(CALLER_ADDRESS, STRATEGY_ADDRESS, cd, 0, GAS_LIMIT_SWAP)
    warm_gas = warm.result.gas_used + warm.result.gas_refunded
    assert fresh.gas_used - warm_gas == (2_000 + 2_800) + 3 * (2_100 + 2_800)


def test_gas_limit_is_enforced_exactly_as_a_fresh_transaction() -> None:
    info, storage = _burner_state()

    def fits(n: int) -> bool:
        cd = pack_after_swap(True, n, 3, 2, *RESERVES)
        return exact_call(info, storage, cd, GAS_LIMIT_SWAP).failure is None

    lo, hi = 0, 5_000  # largest loop count a fresh 250k transaction completes
    assert fits(lo) and not fits(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    limit_n = lo

    # The warm EVM alone would accept one more round: the fallback is what makes it exact.
    warm = _warm_after_warmup(info)
    warm.message_call(
        CALLER_ADDRESS, STRATEGY_ADDRESS, pack_after_swap(True, limit_n + 1, 3, 2, *RESERVES), 0, 250_000
    )
    assert warm.result.is_success

    spec = fixture("GasBurner.sol").with_engine("pyrevm")
    for n, ok in ((limit_n, True), (limit_n + 1, False)):
        strategy = spec.create()
        assert strategy.after_initialize(*INIT) == (30 * 10**14, 30 * 10**14)
        for k in (1, 2, 3):
            assert strategy.after_swap(True, 0, k, 1, *RESERVES) is not None
        assert not strategy.exact_mode  # cheap calls stay on the fast path
        fees = strategy.after_swap(True, n, 3, 2, *RESERVES)
        assert (fees is not None) == ok
        assert strategy.failures == ({} if ok else {"out_of_gas": 1})
        assert strategy.exact_mode and strategy.mode_switch_at == 4
        # the exact model carries the state on: the next cheap call behaves normally
        after = strategy.after_swap(False, 0, 3, 3, *RESERVES)
        assert after == (30 * 10**14, 30 * 10**14)


def test_fast_path_threshold_leaves_room_for_every_slot() -> None:
    assert FAST_PATH_GAS == 250_000 - 32 * 4_900 - 2_300


# ------------------------------------------------------------------------------ failures


@pytest.mark.parametrize(
    ("fixture_name", "kind"),
    [("AlwaysReverts.sol", "revert"), ("FeeTooHigh.sol", "fee_above_max"), ("SlotOutOfBounds.sol", "revert")],
)
def test_failing_hooks_keep_the_previous_fees(fixture_name: str, kind: str) -> None:
    """Each of these opens at 50 bps and never returns a usable fee: the run equals fixed 50 bps."""
    spec = Capturing(fixture(fixture_name).with_engine("pyrevm"))
    config = draw_config(0)
    result, native = simulate(config, spec), simulate(config, FixedFee(50))
    assert result.submission.edge == native.submission.edge
    assert result.submission.hook_failures == result.submission.hook_calls > 1000
    assert spec.created[0].failures == {kind: result.submission.hook_calls}


class TickClock:
    """A clock that advances one second per reading: a budget of k seconds expires after k
    readings whatever the machine's speed."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_unbounded_loop_runs_out_of_gas_and_the_wall_clock_guard_finishes_the_simulation() -> None:
    spec = fixture("InfiniteLoop.sol").with_engine("pyrevm")
    strategy = spec.create()
    assert strategy.after_initialize(*INIT) == (50 * 10**14, 50 * 10**14)
    for step in range(3):
        assert strategy.after_swap(True, WAD, 100 * WAD, step, *RESERVES) is None
    assert strategy.failures == {"out_of_gas": 3}

    # Budget: 6 clock readings. Creating the instance reads once; each call that ends in the exact
    # path reads once; so a few calls run out of gas, then the budget is spent and the rest fail fast.
    guarded = Capturing(dataclasses.replace(spec, sim_timeout_s=6.0, clock=TickClock()))
    result = simulate(draw_config(0), guarded)
    assert result.submission.edge == simulate(draw_config(0), FixedFee(50)).submission.edge
    failures = guarded.created[0].failures
    assert 0 < failures["out_of_gas"] <= 6 and failures["timeout"] > 1000
    assert sum(failures.values()) == result.submission.hook_calls


def test_failing_after_initialize_fails_the_run() -> None:
    with pytest.raises(StrategyError, match="afterInitialize failed: revert"):
        simulate(draw_config(0), fixture("BadInit.sol"))


def test_constructor_cannot_hang_deployment_and_its_storage_writes_are_dropped() -> None:
    looping = strategy_source("    constructor() {\n        while (true) {}\n    }\n")
    with pytest.raises(StrategyRejected, match="deployment failed \\(out_of_gas\\)"):
        load_solidity_strategy(looping)  # the 10M deploy gas ends it
    # As in the reference, the runtime code starts from empty storage at a fixed address.
    hooks = HOOKS.replace(
        "return (bpsToWad(30), bpsToWad(30));\n    }\n\n    function afterSwap",
        "return (bpsToWad(30) + slots[0], bpsToWad(30));\n    }\n\n    function afterSwap",
    )
    spec = load_solidity_strategy(
        strategy_source("    constructor() {\n        slots[0] = 7;\n    }\n", hooks)
    )
    for engine in ("native", "pyrevm"):
        assert spec.with_engine(engine).create().after_initialize(*INIT) == (30 * 10**14, 30 * 10**14)


def test_missing_compiler_is_reported_as_unavailable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from stratforge.amm import compiler

    monkeypatch.setattr(compiler, "_candidate_dirs", lambda: [tmp_path])
    with pytest.raises(CompilerUnavailable, match="setup-solc"):
        check_solidity(strategy_source(), use_cache=False)
