"""Scores equal the public reference's on the same seeds, for any worker count."""

from __future__ import annotations

import numpy as np
import pytest

from stratforge.amm.engine import CHALLENGE, draw_config, run_batch, simulate
from stratforge.amm.strategy import MAX_FEE, NORMALIZER, FixedFee


@pytest.mark.parametrize(
    ("bps", "n", "edge"),
    [(50, 10, 392.08), (55, 10, 396.71), (55, 100, 383.97)],
)
def test_reference_scores(bps: float, n: int, edge: float) -> None:
    result = run_batch(FixedFee(bps), n, workers=1)
    assert round(result.mean_edge, 2) == edge


@pytest.mark.slow
@pytest.mark.parametrize(("bps", "edge", "normalizer"), [(50, 369.45, None), (55, 373.31, 469.38)])
def test_reference_scores_1000(bps: float, edge: float, normalizer: float | None) -> None:
    result = run_batch(FixedFee(bps), 1000, workers=2)
    assert round(result.mean_edge, 2) == edge
    if normalizer is not None:
        assert round(result.normalizer_mean_edge, 2) == normalizer


def test_configs_are_drawn_like_the_reference() -> None:
    rng = np.random.default_rng(7)
    cfg = draw_config(7)
    assert cfg.retail_mean_size == rng.uniform(19, 21)
    assert cfg.retail_arrival_rate == rng.uniform(0.6, 1.0)
    assert cfg.gbm_sigma == rng.uniform(0.000882, 0.001008)


def test_results_do_not_depend_on_worker_count() -> None:
    one = run_batch(FixedFee(42), 12, seed_start=100, workers=1)
    two = run_batch(FixedFee(42), 12, seed_start=100, workers=2)
    for name, col in one.columns.items():
        np.testing.assert_array_equal(col, two.columns[name], err_msg=name)


def test_a_copy_of_the_normalizer_scores_like_the_normalizer() -> None:
    # equal AMMs split flow in halves; only rounding in the split tells them apart
    result = run_batch(NORMALIZER, 3, workers=1)
    np.testing.assert_allclose(result.edge, result.normalizer_edge, rtol=1e-9)


class CountingFixed:
    """A Python strategy with the same fees as a native one: exercises the hook path."""

    name = "python 50 bps"

    def __init__(self) -> None:
        self.calls = 0
        self.last: tuple[object, ...] = ()

    def create(self) -> CountingFixed:
        return self

    def after_initialize(self, x: int, y: int) -> tuple[int, int]:
        assert (x, y) == (100 * 10**18, 10_000 * 10**18)
        return 5 * 10**15, 5 * 10**15

    def after_swap(self, *trade: object) -> tuple[int, int]:
        self.calls += 1
        self.last = trade
        return 5 * 10**15, 5 * 10**15


def test_python_strategies_get_every_trade_and_score_like_native() -> None:
    cfg = draw_config(0)
    strategy = CountingFixed()
    py = simulate(cfg, strategy)
    native = simulate(cfg, FixedFee(50))
    assert py.submission.edge == native.submission.edge
    assert (
        strategy.calls
        == py.submission.hook_calls
        == native.submission.arb_trades + native.submission.retail_trades
    )
    is_buy, ax, ay, t, rx, ry = strategy.last
    assert isinstance(is_buy, bool) and all(isinstance(v, int) and v > 0 for v in (ax, ay, rx, ry))
    assert 0 <= t < CHALLENGE.n_steps


class Misbehaving:
    """Raises, returns junk, negative fees or fees above the maximum: each keeps the previous fees."""

    name = "misbehaving"

    def __init__(self) -> None:
        self.calls = 0

    def create(self) -> Misbehaving:
        return type(self)()

    def after_initialize(self, x: int, y: int) -> tuple[int, int]:
        return 5 * 10**15, 5 * 10**15

    def after_swap(self, *trade: object) -> object:
        self.calls += 1
        if self.calls % 5 == 0:
            raise RuntimeError("boom")
        return [None, "junk", (MAX_FEE + 1, 0), (-1, 0), (1, 2, 3)][self.calls % 5]


def test_failing_hooks_keep_previous_fees_and_are_counted() -> None:
    cfg = draw_config(1)
    bad = simulate(cfg, Misbehaving())
    fixed = simulate(cfg, FixedFee(50))
    # every call failed, so fees stayed at the initial 50 bps: identical to the fixed strategy
    assert bad.submission.hook_failures == bad.submission.hook_calls > 0
    assert bad.submission.edge == fixed.submission.edge


def test_bad_after_initialize_fails_the_run() -> None:
    class BadInit(Misbehaving):
        def after_initialize(self, x: int, y: int) -> tuple[int, int]:
            return MAX_FEE + 1, 0

    with pytest.raises(ValueError, match="afterInitialize"):
        simulate(draw_config(0), BadInit().create())


def test_history_is_optional_and_consistent() -> None:
    cfg = draw_config(3)
    plain = simulate(cfg, FixedFee(50))
    assert plain.history is None
    detailed = simulate(cfg, FixedFee(50), history=True)
    assert detailed.history is not None and detailed.history.shape == (CHALLENGE.n_steps, 8)
    assert detailed.history[-1, 7] == pytest.approx(plain.submission.edge)
    assert detailed.history[-1, 5] == pytest.approx(plain.submission.pnl)
    assert np.all(detailed.history[:, 3] == 0.005)


def test_invalid_batches_are_rejected() -> None:
    with pytest.raises(ValueError):
        run_batch(FixedFee(50), 0)
    with pytest.raises(ValueError):
        run_batch(FixedFee(50), 5, workers=0)
    with pytest.raises(ValueError):
        FixedFee(1500)


def test_summary_has_the_aggregates() -> None:
    s = run_batch(FixedFee(50), 10, workers=1).summary()
    assert round(s["mean_edge"], 2) == 392.08
    assert s["wins"] + s["losses"] + s["draws"] == 10
    assert s["p05"] <= s["p50"] <= s["p95"]
    assert s["std_error"] > 0
    assert s["avg_bid_fee_bps"] == pytest.approx(50.0)


@pytest.mark.parametrize(("seed", "bid", "ask"), [(0, 0.005, 0.005), (5, 0.0035, 0.0028), (17, 0.0, 0.01)])
def test_compiled_core_equals_the_python_specification(seed: int, bid: float, ask: float) -> None:
    from dataclasses import replace

    from stratforge.amm.reference import simulate_fixed

    cfg = replace(draw_config(seed), market=replace(CHALLENGE, n_steps=1500))
    native = simulate(cfg, FixedFee(bid * 1e4, ask * 1e4))
    assert simulate_fixed(cfg, bid, ask) == (native.submission.edge, native.normalizer.edge)


def test_memory_stays_flat_with_the_number_of_simulations() -> None:
    import tracemalloc

    def peak(n: int) -> int:
        tracemalloc.start()
        run_batch(FixedFee(50), n, workers=1)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(5), peak(200)
    assert large < small + 200 * 1024  # a few hundred bytes per simulation at most, no step history
