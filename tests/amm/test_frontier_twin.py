"""The native twin of the `frontier` template (_frontier_twin.c) against the contract in the EVM.

The lockstep harness runs every hook call of a simulation in both: the compiled contract in the
core's EVM and the twin, each on its own storage, and requires the same fees (or the same failure)
and the same storage after every call, and the EVM's gas never above the twin's bound.
"""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratforge.amm import _core
from stratforge.amm.engine import MarketParams, draw_config, run_batch, simulate
from stratforge.amm.evm import (
    GAS_LIMIT_INIT,
    GAS_LIMIT_SWAP,
    EvmStrategySpec,
    pack_after_initialize,
    pack_after_swap,
)
from stratforge.amm.twins import TwinOutOfRange, TwinSpec, twin_for
from stratforge.explore.templates.precompiled import PrecompiledTemplate
from stratforge.explore.templates.templates import load_library

WAD = 10**18
SHORT = MarketParams(n_steps=1500)  #: enough steps for every path, a fraction of the time


@pytest.fixture(scope="module")
def pre() -> PrecompiledTemplate:
    return PrecompiledTemplate.build(load_library()["frontier"])


def _fees(out: bytes) -> tuple[int, int]:
    return int.from_bytes(out[:32], "big"), int.from_bytes(out[32:64], "big")


def _with_words(pre: PrecompiledTemplate, words: dict[str, int]) -> TwinSpec:
    """The twin and contract for raw parameter words (values a template's ranges would not allow)."""
    twin = twin_for(pre.template.text, words, pre.contract(words, "words"))
    assert twin is not None
    return twin


class Lockstep:
    """A strategy instance that runs each hook in the EVM and in the twin and compares them."""

    def __init__(self, spec: TwinSpec) -> None:
        self.evm = spec.exact.create()
        self.twin = spec.create()
        self.name = "lockstep"
        self.calls = self.failures = 0

    def after_initialize(self, x: int, y: int) -> tuple[int, int]:
        kind, out, gas, _ = self.evm.call(pack_after_initialize(x, y), GAS_LIMIT_INIT)
        fees = self.twin.after_initialize(x, y)
        assert kind is None and _fees(out) == fees
        assert gas <= self.twin.last_gas_bound
        assert self.evm.storage == self.twin.storage
        return fees

    def after_swap(self, is_buy: bool, ax: int, ay: int, t: int, rx: int, ry: int) -> tuple[int, int] | None:
        kind, out, gas, _ = self.evm.call(pack_after_swap(is_buy, ax, ay, t, rx, ry), GAS_LIMIT_SWAP)
        fees = self.twin.after_swap(is_buy, ax, ay, t, rx, ry)
        expected = None if kind else _fees(out)
        assert fees == expected, f"call {self.calls}: twin {fees}, EVM {expected} ({kind})"
        assert self.evm.storage == self.twin.storage, f"call {self.calls}: storage differs"
        if kind is None:
            assert gas <= self.twin.last_gas_bound, f"call {self.calls}: EVM gas {gas} above the bound"
        self.calls += 1
        self.failures += fees is None
        return fees


@dataclasses.dataclass
class LockstepSpec:
    twin: TwinSpec
    name: str = "lockstep"
    made: list[Lockstep] = dataclasses.field(default_factory=list)

    def create(self) -> Lockstep:
        self.made.append(Lockstep(self.twin))
        return self.made[-1]


def _lockstep(spec: TwinSpec, seed: int) -> Lockstep:
    ls = LockstepSpec(spec)
    simulate(draw_config(seed, SHORT), ls)
    return ls.made[0]


def test_the_twin_serves_the_shipped_template_with_its_parameters(pre: PrecompiledTemplate) -> None:
    # the twin mirrors this exact text; editing the template needs the twin (and this hash) updated
    fast, _ = pre.render(None, "x")
    assert isinstance(fast, TwinSpec) and fast.family == "frontier"
    assert set(_core.FrontierTwin.PARAMS) == set(pre.template.param_names)
    assert dict(zip(_core.FrontierTwin.PARAMS, fast.params, strict=True)) == pre.words(None)
    assert fast.exact.runtime_code == pre.runtime_code(None)
    edited = pre.template.text.replace(
        "uint256 constant ELAPSED_CAP = 8;", "uint256 constant ELAPSED_CAP = 9;"
    )
    assert twin_for(edited, pre.words(None), fast.exact) is None
    assert isinstance(pre.render(None, "x", twin=False)[0], EvmStrategySpec)
    others = [t for name, t in load_library().items() if name != "frontier" and t.meta.get("patchable")]
    for t in others:
        assert isinstance(PrecompiledTemplate.build(t).render(None)[0], EvmStrategySpec)


def test_words_the_twin_cannot_hold_get_no_twin(pre: PrecompiledTemplate) -> None:
    words = pre.words(None) | {"TOX_K3": 2**128}
    assert twin_for(pre.template.text, words, pre.spec(None)) is None


U128 = st.integers(0, 2**128 - 1)
EDGES = st.sampled_from([0, 1, WAD - 1, WAD, WAD + 1, 2**64 - 1, 2**64, 2**127, 2**128 - 1])


@settings(max_examples=400, deadline=None)
@given(a=st.one_of(U128, EDGES, st.integers(0, 10**24)), b=st.one_of(U128, EDGES, st.integers(0, 10**24)))
def test_wmul_and_wdiv_are_uint256_floors_or_give_up(a: int, b: int) -> None:
    for op, exact in (("wmul", a * b // WAD), ("wdiv", a * WAD // b if b else None)):
        if exact is not None and exact >= 2**128:
            with pytest.raises(TwinOutOfRange):
                _core._twin_math(op, a, b)
            continue
        try:
            got = _core._twin_math(op, a, b)
        except TwinOutOfRange:
            # only where the twin's shortcut needs a divisor below 2^128 / 1e9 (never a price)
            assert op == "wdiv" and b > 2**128 // 10**9
            continue
        assert got == exact, (op, a, b)


def _perturbed(pre: PrecompiledTemplate, rng: np.random.Generator, scale: float) -> dict[str, float]:
    """A neighbour of the defaults, as the optimizer proposes them: log-scaled terms move by a
    factor, the others by a share of their range; the switches stay on."""
    scales = pre.template.meta["scales"]
    out = {}
    for p in pre.template.params:
        if scales[p.name] == "switch":
            continue
        if scales[p.name] == "log":
            value = p.default * float(np.exp(rng.normal(0, scale)))
        else:
            value = p.default + float(rng.normal(0, scale * (p.max - p.min) / 4))
        out[p.name] = float(np.clip(value, p.min, p.max))
    return out


def test_every_call_matches_the_evm_at_the_defaults_and_near_them(pre: PrecompiledTemplate) -> None:
    rng = np.random.default_rng(7)
    cases = [None, *(_perturbed(pre, rng, 0.1) for _ in range(3)), _perturbed(pre, rng, 0.4)]
    for k, params in enumerate(cases):
        fast, _ = pre.render(params, "x")
        assert isinstance(fast, TwinSpec)
        ls = _lockstep(fast, seed=k)
        assert ls.calls > 300  # a strategy that trades


def test_every_switch_and_range_corner_matches_the_evm(pre: PrecompiledTemplate) -> None:
    t = pre.template
    switches = [p.name for p in t.params if p.type == "int"]
    corners = [{s: 0.0 for s in switches}]
    corners.append({p.name: p.max for p in t.params})
    corners.append({p.name: p.min for p in t.params})
    # a cheap strategy with the arbitrage boost and every smoother at its fastest
    corners.append({"BASE_FEE": 0.0, "ARB_BOOST_K": 2.0, "TOX_BLEND": 0.0, "SIGNAL_RATIO": 0.0})
    for k, params in enumerate(corners):
        fast, _ = pre.render(params, "x")
        assert isinstance(fast, TwinSpec)
        _lockstep(fast, seed=10 + k)


def test_synthetic_calls_that_reach_every_cap_match_the_evm(pre: PrecompiledTemplate) -> None:
    # jumps far beyond a simulation's (every cap: ratio, return, toxicity, arrival rate, pressure),
    # bursts of trades in one step and long gaps between steps
    rng = np.random.default_rng(11)
    for params in (None, {"USE_ELAPSED_DECAY": 0.0, "USE_SHOCK_GATE": 0.0, "ARB_BOOST_K": 1.5}):
        fast, _ = pre.render(params, "x")
        assert isinstance(fast, TwinSpec)
        ls = Lockstep(fast)
        ls.after_initialize(100 * WAD, 10_000 * WAD)
        t = 0
        for _ in range(800):
            t += int(rng.choice([0, 0, 0, 0, 0, 0, 1, 1, 2, 9, 40]))
            jump = float(rng.choice([1e-4, 1e-3, 0.02, 0.2, 0.6]))
            rx = int(100 * WAD * np.exp(rng.normal(0, jump)))
            ry = int(10_000 * WAD * np.exp(rng.normal(0, jump)))
            ay = int(ry * float(rng.choice([1e-6, 1e-3, 3e-3, 0.05, 0.5])))
            ls.after_swap(bool(rng.integers(2)), ay // 100, ay, t, rx, ry)
        assert ls.calls == 800


def test_a_reverting_parameter_fails_the_same_calls_as_the_evm(pre: PrecompiledTemplate) -> None:
    # SIGMA_DECAY above WAD: `WAD - SIGMA_DECAY` reverts in every arbitrage-looking call
    spec = _with_words(pre, pre.words(None) | {"SIGMA_DECAY": 2 * WAD})
    ls = _lockstep(spec, seed=3)
    assert 0 < ls.failures < ls.calls


def test_a_simulation_the_twin_cannot_model_runs_in_the_evm(pre: PrecompiledTemplate) -> None:
    # a fee floor of 2^128 - 1 overflows the twin's 128 bits in afterInitialize; uint256 holds it
    spec = _with_words(pre, pre.words(None) | {"BASE_FEE": 2**128 - 1})
    config = draw_config(5, SHORT)
    with pytest.raises(TwinOutOfRange):
        spec.create().after_initialize(100 * WAD, 10_000 * WAD)
    got = simulate(config, spec)
    want = simulate(config, spec.exact)
    assert got.submission == want.submission and got.normalizer == want.normalizer


def test_the_twin_gives_up_before_the_gas_limit_could_be_reached(pre: PrecompiledTemplate) -> None:
    # storage where one afterSwap writes eight slots from zero (20k gas each): the EVM still fits
    # the 250k limit, but the twin's bound does not, so it leaves the call to the EVM
    spec = _with_words(pre, pre.words({"ARB_BOOST_K": 1.0}))
    evm, twin = spec.exact.create(), spec.create()
    twin.after_initialize(100 * WAD, 10_000 * WAD)
    kept = {k: v for k, v in twin.storage.items() if k not in (0, 1, 10)}
    evm.storage = kept
    twin.storage = kept
    args = (False, WAD // 10, 20 * WAD, 0, 100 * WAD - WAD // 10, 10_000 * WAD + 20 * WAD)
    kind, _, gas, _ = evm.call(pack_after_swap(*args), GAS_LIMIT_SWAP)
    assert kind is None and gas <= GAS_LIMIT_SWAP
    with pytest.raises(TwinOutOfRange, match="gas"):
        twin.after_swap(*args)
    assert twin.last_gas_bound > GAS_LIMIT_SWAP - 2300 >= gas
    assert twin.storage == kept  # nothing committed


def test_whole_simulations_score_bit_identical_to_the_evm(pre: PrecompiledTemplate) -> None:
    fast, _ = pre.render(_perturbed(pre, np.random.default_rng(1), 0.05), "x")
    assert isinstance(fast, TwinSpec)
    a = run_batch(fast, 3, workers=1)
    b = run_batch(fast.exact, 3, workers=1)
    for name, col in b.columns.items():
        assert np.array_equal(a.columns[name], col), name
    assert a.meta["evm_engine"].startswith("native twin of frontier")


def test_a_twin_spec_pickles_and_runs_in_worker_processes(pre: PrecompiledTemplate) -> None:
    fast, _ = pre.render(None, "x")
    assert pickle.loads(pickle.dumps(fast)) == fast
    seeds = [11, 12, 13, 14]
    one = run_batch(fast, len(seeds), seeds=seeds, workers=1)
    two = run_batch(fast, len(seeds), seeds=seeds, workers=2)
    assert np.array_equal(one.edge, two.edge)


def test_bad_construction_is_refused() -> None:
    with pytest.raises(ValueError, match="parameters"):
        _core.FrontierTwin((1, 2, 3))
    with pytest.raises(TypeError):
        _core.FrontierTwin(["x"] * len(_core.FrontierTwin.PARAMS))
    with pytest.raises(TwinOutOfRange):
        _core.FrontierTwin([-1] * len(_core.FrontierTwin.PARAMS))
    twin = _core.FrontierTwin([0] * len(_core.FrontierTwin.PARAMS))
    with pytest.raises(ValueError, match="slots"):
        twin.storage = {40: 1}
