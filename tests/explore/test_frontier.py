"""The frontier family: it validates, patched parameters equal a compiled render bit for bit, and
every switchable term is really off when switched off (and really on otherwise)."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field

import numpy as np
import pytest

from stratforge.amm.engine import CHALLENGE, draw_config, simulate
from stratforge.amm.evm import EvmStrategySpec
from stratforge.amm.solidity import check_solidity
from stratforge.amm.strategy import NORMALIZER
from stratforge.amm.validate import scan_forbidden_opcodes
from stratforge.explore.templates import TemplateError, load_library
from stratforge.explore.templates.precompiled import (
    PrecompiledTemplate,
    check_identical,
    check_spec_matches_source,
)

LIB = load_library()
FAMILY = LIB["frontier"]


@pytest.fixture(scope="module")
def pre() -> PrecompiledTemplate:
    return PrecompiledTemplate.build(FAMILY)


def _random_params(seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    out = {p.name: rng.uniform(p.min, p.max) for p in FAMILY.params if p.type != "int"}
    out.update({p.name: float(rng.randint(0, 1)) for p in FAMILY.params if p.type == "int"})
    return FAMILY.normalize(out)


def test_family_has_about_thirty_continuous_parameters_with_scales() -> None:
    scales = FAMILY.meta["scales"]
    assert set(scales) == set(FAMILY.param_names)
    continuous = [n for n, s in scales.items() if s != "switch"]
    assert 25 <= len(continuous) <= 35
    for p in FAMILY.params:
        if scales[p.name] == "decay":
            assert p.max < 1


def test_rendered_family_validates_under_the_challenge_rules_at_random_params() -> None:
    for seed in (0, 1):
        loaded = check_solidity(FAMILY.render(_random_params(seed), f"frontier {seed}"))
        assert loaded.compiled.storage and all(e["label"] == "slots" for e in loaded.compiled.storage)
        assert set(FAMILY.param_names) <= set(loaded.compiled.immutables)


def test_patches_touch_only_push32_data_and_keep_the_code_clean(pre: PrecompiledTemplate) -> None:
    a, b = pre.runtime_code(_random_params(3)), pre.runtime_code(_random_params(4))
    assert len(a) == len(b) == len(pre.compiled.runtime_code)
    patched = {i for where in pre.offsets.values() for s in where for i in range(s, s + 32)}
    assert {i for i in range(len(a)) if a[i] != b[i]} <= patched
    assert scan_forbidden_opcodes(a) == [] and scan_forbidden_opcodes(b) == []


def test_patched_spec_gives_the_compiled_renders_edges_bit_for_bit(pre: PrecompiledTemplate) -> None:
    for seed in (5, 6):
        check = check_identical(pre, _random_params(seed), [0, 1], workers=1)
        assert check.identical, (check.patched, check.compiled)
    # the check can fail: a spec next to another parameter set's source is caught
    spec, _ = pre.render(_random_params(5))
    _, other_source = pre.render(_random_params(6))
    mismatch = check_spec_matches_source(spec, other_source, [0])
    assert not mismatch.identical and not np.array_equal(mismatch.patched, mismatch.compiled)


def test_a_template_with_constants_is_not_patchable() -> None:
    with pytest.raises(TemplateError, match="immutable"):
        PrecompiledTemplate.build(LIB["fixed_fee"])


# -- switches: driving the hooks directly on a fixed trade tape (fast, no market needed) -----------


def _tape(n_steps: int = 120, seed: int = 7, skip: float = 0.2) -> list[tuple[bool, int, int, int, int, int]]:
    """Trades on a constant-product pool: a small first trade (arbitrage-sized) in most steps,
    larger retail trades after it, some steps skipped."""
    rng = random.Random(seed)
    x, y = 100.0, 10_000.0
    k = x * y
    out = []
    for step in range(n_steps):
        if rng.random() < skip:
            continue
        sizes = [rng.uniform(0.001, 0.004)] + [rng.uniform(0.001, 0.02) for _ in range(rng.randint(0, 3))]
        for share in sizes:
            is_buy = rng.random() < 0.5  # the AMM buys X
            if is_buy:
                dx = x * share
                nx = x + dx
                ny = k / nx
                amount_x, amount_y = dx, y - ny
            else:
                dy = y * share
                ny = y + dy
                nx = k / ny
                amount_x, amount_y = x - nx, dy
            x, y = nx, ny
            w = 10**18
            out.append((is_buy, int(amount_x * w), int(amount_y * w), step, int(x * w), int(y * w)))
    return out


TAPE = _tape()


def _fees(pre: PrecompiledTemplate, params: dict[str, float], tape: list = TAPE) -> list[tuple[int, int]]:
    strategy = pre.spec(params).create()
    out = [strategy.after_initialize(100 * 10**18, 10_000 * 10**18)]
    for trade in tape:
        fees = strategy.after_swap(*trade)
        assert fees is not None
        out.append(fees)
    return out


#: (what turns the term off, parameters the term reads, values they take in the test)
SWITCHES = [
    ({"STALE_K": 0.0}, {"STALE_CUT": 2.5}),
    ({"DIR_K": 0.0}, {"DIR_DECAY": 0.2}),
    ({"ACT_K": 0.0}, {"ACT_DECAY": 0.2, "ACT_BLEND": 0.6}),
    ({"ARB_BOOST_K": 0.0}, {"BOOST_DECAY": 0.9}),
    ({"NORM_W": 0.0}, {"NORM_UNDERCUT": 0.004, "NORM_MARGIN": 0.003}),
    ({"USE_TAIL": 0.0}, {"TAIL_KNEE": 60.0, "TAIL_SLOPE_HI": 0.3, "TAIL_SLOPE_LO": 0.4}),
    ({"USE_SHOCK_GATE": 0.0}, {"SHOCK_K": 1.0}),
    ({"USE_ARB_CLASSIFIER": 0.0}, {"ARB_MAX_RATIO": 0.0003, "ALPHA_FIRST": 0.9}),
    ({"SIGMA_K": 0.0, "USE_SHOCK_GATE": 0.0}, {"SIGMA_DECAY": 0.3}),
    ({"FLOW_K": 0.0}, {"SIZE_DECAY": 0.15, "SIZE_BLEND": 0.2}),
    ({"TOX_K1": 0.0, "TOX_K2": 0.0, "TOX_K3": 0.0, "STALE_K": 0.0}, {"TOX_DECAY": 0.35, "TOX_BLEND": 0.9}),
]


@pytest.mark.parametrize(("off", "reads"), SWITCHES, ids=[next(iter(s[0])) for s in SWITCHES])
def test_each_term_switched_off_has_no_effect_and_on_has_one(
    pre: PrecompiledTemplate, off: dict[str, float], reads: dict[str, float]
) -> None:
    # A strongly active baseline so every term has something to act on.
    base = FAMILY.normalize(
        {
            "STALE_K": 1.5,
            "DIR_K": 0.05,
            "ACT_K": 20,
            "ARB_BOOST_K": 1.5,
            "TAIL_KNEE": 60,
            "TOX_K3": 5000,
            "SIGMA_K": 2.0,
            "FLOW_K": 2.0,
            "TOX_K1": 0.3,
            "NORM_W": 0.5,
        }
    )
    switched_off = {**base, **off}
    assert _fees(pre, switched_off) == _fees(pre, {**switched_off, **reads})  # off: no effect
    assert _fees(pre, base) != _fees(pre, {**base, **reads})  # on: the same change matters


def test_elapsed_decay_switch_matters_only_when_steps_are_skipped(pre: PrecompiledTemplate) -> None:
    base = FAMILY.normalize({"ACT_K": 20, "DIR_K": 0.05})
    off = {**base, "USE_ELAPSED_DECAY": 0.0}
    assert _fees(pre, base) != _fees(pre, off)
    every_step = _tape(skip=0.0)
    assert sorted({t[3] for t in every_step}) == list(range(120))
    assert _fees(pre, base, every_step) == _fees(pre, off, every_step)


def test_patched_spec_is_a_plain_picklable_evm_spec(pre: PrecompiledTemplate) -> None:
    import pickle

    spec = pre.spec(FAMILY.defaults(), name="x")
    assert isinstance(spec, EvmStrategySpec) and spec.name == "x"
    assert pickle.loads(pickle.dumps(spec)) == spec


# -- the normaliser tracker: checked against the normaliser itself in a real simulation ----------


class _SlotRecorder:
    """A strategy that runs the family's EVM strategy and records (step, slot values) after every hook."""

    def __init__(self, inner, slots: tuple[int, ...], log: list[tuple[int, tuple[int, ...]]]) -> None:
        self._inner, self._slots, self._log = inner, slots, log

    @property
    def name(self) -> str:
        return "recorder"

    def after_initialize(self, initial_x: int, initial_y: int) -> tuple[int, int]:
        return self._inner.after_initialize(initial_x, initial_y)

    def after_swap(self, *trade: int) -> tuple[int, int] | None:
        fees = self._inner.after_swap(*trade)
        self._log.append((trade[3], tuple(self._inner.storage[s] for s in self._slots)))
        return fees


@dataclass(frozen=True)
class _RecorderSpec:
    spec: EvmStrategySpec
    slots: tuple[int, ...] = (12,)  # the normaliser's spot (estimate)
    log: list = field(default_factory=list, compare=False)

    @property
    def name(self) -> str:
        return "recorder"

    def create(self) -> _SlotRecorder:
        return _SlotRecorder(self.spec.create(), self.slots, self.log)


def _tracker_errors(pre: PrecompiledTemplate, fee_bps: float, **switches: float) -> np.ndarray:
    """Relative error of the normaliser estimate after our last trade of each step, on a flat fee."""
    flat = {n: 0.0 for n in ("SIGMA_K", "LAMBDA_K", "FLOW_K", "TOX_K1", "TOX_K2", "TOX_K3", "ACT_K")}
    flat.update({"STALE_K": 0.0, "DIR_K": 0.0, "ARB_BOOST_K": 0.0, "NORM_W": 0.0, "USE_TAIL": 0.0})
    recorder = _RecorderSpec(pre.spec(FAMILY.normalize({**flat, **switches, "BASE_FEE": fee_bps})))
    result = simulate(draw_config(5, dataclasses.replace(CHALLENGE, n_steps=400)), recorder, history=True)
    assert result.history is not None
    last_of_step = {step: values[0] for step, values in recorder.log}
    return np.array([abs(e / 1e18 / result.history[s, 2] - 1) for s, e in last_of_step.items()])


@pytest.mark.parametrize("placed_by_arbitrage", [1.0, 0.0])
@pytest.mark.parametrize("fee_bps", [10.0, 25.0])
def test_normaliser_tracker_equals_the_normalisers_spot_when_we_quote_tighter(
    pre: PrecompiledTemplate, fee_bps: float, placed_by_arbitrage: float
) -> None:
    # Quoting tighter than the normaliser's 30 bps, every order is shared with us and every arbitrage
    # of the normaliser is one of ours too: the estimate must then be its spot, step after step.
    errors = _tracker_errors(pre, fee_bps, USE_NORM_ARB=placed_by_arbitrage)
    assert len(errors) > 150  # steps in which we traded
    assert errors.max() < 1e-12


def test_normaliser_tracker_lags_when_we_quote_wider(pre: PrecompiledTemplate) -> None:
    # The control: at 40 bps (BASE_FEE's maximum) the normaliser trades without us and the estimate goes stale.
    assert _tracker_errors(pre, 40.0).max() > 1e-4


def _outside_band_after_arbitrage(pre: PrecompiledTemplate, **params: float) -> tuple[int, int]:
    """(arbitrage-looking trades after which the estimate lies outside the normaliser's fee band of
    the fair price that trade implies, all arbitrage-looking trades) in a 2000-step simulation."""
    recorder = _RecorderSpec(pre.spec(FAMILY.normalize(params)), slots=(12, 13))  # 13: implied fair price
    simulate(draw_config(5, dataclasses.replace(CHALLENGE, n_steps=2000)), recorder)
    values = np.array([v for _, v in recorder.log], dtype=float) / 1e18
    estimate, fair = values[1:, 0], values[1:, 1]
    arbitrage = fair != values[:-1, 1]  # slot 13 is written by arbitrage-looking trades only
    gamma = 1 - NORMALIZER.bid_bps / 10_000  # the normaliser's 30 bps
    outside = (estimate < fair * gamma * (1 - 1e-12)) | (estimate > fair / gamma * (1 + 1e-12))
    return int((outside & arbitrage).sum()), int(arbitrage.sum())


@pytest.mark.parametrize("fee_terms", [{}, {"BASE_FEE": 40.0, "NORM_W": 0.0}], ids=["defaults", "wide"])
def test_each_arbitrage_places_the_normaliser_within_its_band(
    pre: PrecompiledTemplate, fee_terms: dict[str, float]
) -> None:
    # The step's arbitrage moves the normaliser to within its 30 bps of the fair price it shows us.
    # Our fills alone bound the estimate on one side only, so a stale estimate can sit outside that band.
    placed, trades = _outside_band_after_arbitrage(pre, **fee_terms)
    fills_only, _ = _outside_band_after_arbitrage(pre, **fee_terms, USE_NORM_ARB=0.0)
    assert trades > 500
    assert placed == 0 < fills_only
