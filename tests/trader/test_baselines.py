"""Baseline rules behind the model's policy interface."""

from __future__ import annotations

import numpy as np
import pytest

from stratforge.trader.baselines import (
    BASELINES,
    MeanReversionPolicy,
    ModelPolicy,
    MomentumPolicy,
    OraclePolicy,
    RandomPolicy,
    SpotMomentumPolicy,
    make_baseline,
)
from stratforge.trader.evaluation import evaluate
from stratforge.trader.markets.synthetic import SyntheticConfig

F = np.zeros((1, 18), dtype=np.float32)
H = np.zeros((1, 90), dtype=np.float32)


def ctx(**kw: float) -> dict[str, np.ndarray]:
    base = {"mid": 0.5, "bid": 0.49, "ask": 0.51, "time_left": 600.0, "true_prob": np.nan, "side": 0.0,
            "market_index": 1.0}  # fmt: skip
    base.update(kw)
    return {k: np.array([v], dtype=np.float64) for k, v in base.items()}


def act(policy, **kw: float) -> int:
    return int(np.argmax(policy.action_probs(F, H, ctx(**kw))[0]))


def test_every_baseline_returns_probability_rows() -> None:
    feats = np.zeros((3, 18), dtype=np.float32)
    c = {k: np.repeat(v, 3) for k, v in ctx().items()}
    for name in BASELINES:
        p = make_baseline(name).action_probs(feats, np.zeros((3, 90)), c)
        assert p.shape == (3, 3) and np.allclose(p.sum(axis=1), 1.0)
    with pytest.raises(ValueError):
        make_baseline("nope")


def test_random_trades_with_given_probability() -> None:
    pol = RandomPolicy(p_trade=0.2, seed=3)
    rows = np.concatenate([pol.action_probs(np.zeros((100, 18)), np.zeros((100, 90))) for _ in range(50)])
    assert set(rows.sum(axis=1)) == {1.0} and set(rows.max(axis=1)) == {1.0}  # one-hot draws
    freq = rows.mean(axis=0)
    assert freq == pytest.approx([0.8, 0.1, 0.1], abs=0.02)
    again = RandomPolicy(p_trade=0.2, seed=3).action_probs(np.zeros((100, 18)), np.zeros((100, 90)))
    assert np.array_equal(again, rows[:100])  # seeded


def test_momentum_follows_mid_velocity_and_skips_expiry() -> None:
    pol = MomentumPolicy(threshold=0.03, lookback=3)
    assert [act(pol, mid=m) for m in (0.50, 0.51, 0.52)] == [0, 0, 0]  # not enough history
    assert act(pol, mid=0.55) == 1  # +0.05 over 3 ticks
    pol = MomentumPolicy(threshold=0.03, lookback=3)
    for m in (0.60, 0.58, 0.56):
        act(pol, mid=m)
    assert act(pol, mid=0.52) == 2
    pol = MomentumPolicy(threshold=0.03, lookback=3)
    for m in (0.50, 0.52, 0.54):
        act(pol, mid=m, time_left=100.0)
    assert act(pol, mid=0.60, time_left=100.0) == 0


def test_mean_reversion_thresholds() -> None:
    pol = MeanReversionPolicy()
    assert act(pol, mid=0.30) == 1 and act(pol, mid=0.70) == 2 and act(pol, mid=0.5) == 0
    assert act(pol, mid=0.30, time_left=60.0) == 0


def test_spot_momentum_enters_on_futures_return_then_holds() -> None:
    pol = SpotMomentumPolicy(threshold=0.05)

    def act_f(ret: float, has_pos: float = 0.0, **kw: float) -> int:
        f = F.copy()
        f[0, 0], f[0, 12] = ret, has_pos
        return int(np.argmax(pol.action_probs(f, H, ctx(**kw))[0]))

    assert act_f(0.08) == 1 and act_f(-0.08) == 2 and act_f(0.02) == 0
    assert act_f(0.08, has_pos=1.0) == 0  # holds to settlement, never flips
    assert act_f(0.08, time_left=30.0) == 0


def test_oracle_buys_value_and_sells_overpriced_holdings() -> None:
    pol = OraclePolicy(margin=0.02)
    assert act(pol, true_prob=0.80, bid=0.58, ask=0.60) == 1  # UP is cheap
    assert act(pol, true_prob=0.20, bid=0.58, ask=0.60) == 2  # DOWN ask 0.42 < 0.80
    assert act(pol, true_prob=0.59, bid=0.58, ask=0.60) == 0  # no edge after fee
    assert act(pol, true_prob=0.70, bid=0.90, ask=0.92, side=1.0) == 2  # sell UP above its value
    assert act(pol, true_prob=0.95, bid=0.90, ask=0.92, side=1.0) == 0  # hold to settlement
    assert act(pol, true_prob=np.nan) == 0  # no ground truth (replays): never trades


def test_model_adapter_ignores_context() -> None:
    class Stub:
        def action_probs(self, features, history):
            return np.tile([0.2, 0.5, 0.3], (len(features), 1))

    p = ModelPolicy(Stub()).action_probs(F, H, ctx())
    assert p.tolist() == [[0.2, 0.5, 0.3]]


def test_oracle_is_profitable_and_beats_random_after_fees() -> None:
    synth = SyntheticConfig(warmup_minutes=15)
    seeds = [20_000_001, 20_000_002]
    res = evaluate({"oracle": OraclePolicy(), "random": RandomPolicy()}, seeds, synth)
    assert sum(res.pnl["oracle"]) > 0
    assert sum(res.pnl["oracle"]) > sum(res.pnl["random"])
    assert all(r["n_trades"] > 0 for r in res.reports["oracle"])
