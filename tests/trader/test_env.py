"""The vector environment: action semantics, latency, rewards, histories, settlement, and the
engine's rules (confidence sizing, entry rules, safety exits)."""

from __future__ import annotations

import numpy as np
import pytest

from stratforge.trader.broker import BrokerConfig
from stratforge.trader.env import BUY, FUTURES_FALLBACK, HOLD, RESOLUTION_PRICE, SELL, EnvConfig, TraderEnv
from stratforge.trader.fees import LAUNCH_CRYPTO_FEES
from stratforge.trader.markets.messages import AggTrade, BookSnapshot, MarketInfo, PriceChange, Resolution
from stratforge.trader.markets.session import Session
from stratforge.trader.markets.synthetic import SyntheticConfig
from stratforge.trader.safety import SafetyConfig

T0 = 1_767_225_600.0


def tiny_session(final: float = 101.0, with_resolution: bool = True) -> Session:
    """One BTC market; the UP book is 0.49/0.51 until t0+12, then jumps to 0.69/0.71."""
    m = MarketInfo("BTC", T0, "0xabc", "UP1", "DOWN1", strike=100.0)
    msgs = [AggTrade(T0 - 5, "BTCUSDT", 100.0, 1.0, False)]
    msgs.append(BookSnapshot(T0, "0xabc", "UP1", [(0.49, 500.0)], [(0.51, 500.0)]))
    msgs.append(
        PriceChange(T0 + 12, "0xabc", [("UP1", 0.69, "BUY", 500.0), ("UP1", 0.49, "BUY", 0.0),
                                         ("UP1", 0.71, "SELL", 500.0), ("UP1", 0.51, "SELL", 0.0)])
    )  # fmt: skip
    msgs.append(AggTrade(T0 + 899, "BTCUSDT", final, 1.0, False))
    res = {"0xabc": Resolution(T0 + 900, "0xabc", 100.0, final)} if with_resolution else {}
    return Session([m], msgs, res)


# The mechanics tests hold positions to settlement on a book that stops updating: the safety exits
# (stale book, window end) are off there and tested on their own below.
NO_EXITS = SafetyConfig(close_before_end_s=0.0, stale_book_s=1e9, max_age_s=1e9, take_profit=1e9,
                        stop_loss=-1e9)  # fmt: skip


def cfg(latency: float = 0.5, safety: SafetyConfig = NO_EXITS, sizing: str = "fixed") -> EnvConfig:
    return EnvConfig(
        tick_s=5.0,
        broker=BrokerConfig(trade_usd=10.0, min_shares=1.0, latency_s=latency, fees=LAUNCH_CRYPTO_FEES),
        sizing=sizing,
        safety=safety,
        entry_margin_s=0.0,
    )


def fee_shares(c: float, p: float) -> float:
    return c * 0.25 * (p * (1 - p)) ** 2


def run(env: TraderEnv, actions: dict[int, int]) -> tuple[list[float], dict]:
    env.reset()
    rewards, k, done, info = [], 0, False, {}
    while not done:
        _, r, done, _, info = env.step([actions.get(k, HOLD)])
        rewards.append(float(r[0]))
        k += 1
    return rewards, info


def test_episode_length_and_termination() -> None:
    env = TraderEnv(cfg(), session=tiny_session())
    obs, info = env.reset()
    assert obs.features.shape == (1, 18) and obs.history.shape == (1, 90) and obs.mask.all()
    steps, done = 0, False
    while not done:
        obs, r, done, trunc, info = env.step([HOLD])
        steps += 1
    assert steps == 900 / 5 and not trunc
    assert info["market_end"][0] and not obs.mask.any()
    with pytest.raises(RuntimeError):
        env.step([HOLD])


def test_buy_opens_up_and_settlement_pays_binary() -> None:
    env = TraderEnv(cfg(), session=tiny_session(final=101.0))
    rewards, _ = run(env, {0: BUY})
    traded = 10.0 / 0.51
    held = traded - fee_shares(traded, 0.51)  # the buy fee is taken in shares
    assert sum(rewards[:-1]) == 0.0  # no reward before the market settles
    assert rewards[-1] == pytest.approx(held - 10.0)
    assert env.report()["settled"] == 1
    assert env.settled[0]["resolved_by"] == RESOLUTION_PRICE
    assert env.report()["futures_fallback_settlements"] == 0


def test_sell_opens_down_and_loses_when_up_wins() -> None:
    env = TraderEnv(cfg(), session=tiny_session(final=101.0))
    rewards, _ = run(env, {0: SELL})
    assert rewards[-1] < -9.9  # the DOWN position expires worthless


def test_sell_closes_up_with_realized_reward_at_that_step() -> None:
    env = TraderEnv(cfg(), session=tiny_session())
    rewards, _ = run(env, {0: BUY, 3: SELL, 4: SELL})
    traded = 10.0 / 0.51
    held = traded - fee_shares(traded, 0.51)
    fee_out = 0.69 * fee_shares(held, 0.69)  # the sell fee is paid in USDC
    assert rewards[3] == pytest.approx(held * 0.69 - fee_out - 10.0)
    # the second SELL opened a DOWN position (reference semantics), which loses at settlement
    assert rewards[-1] < 0
    assert env.report()["n_trades"] == 2


def test_repeated_buy_does_not_add_and_hold_does_nothing() -> None:
    env = TraderEnv(cfg(), session=tiny_session())
    run(env, {0: BUY, 1: BUY, 2: BUY})
    assert len([f for f in env.broker.fills if f.side == "BUY"]) == 1


def test_latency_fills_against_the_later_book() -> None:
    # decision at t0+10, book jumps at t0+12: 1 s latency fills at the old ask, 3 s at the new one
    for latency, price in ((1.0, 0.51), (3.0, 0.71)):
        env = TraderEnv(cfg(latency), session=tiny_session())
        run(env, {2: BUY})
        assert env.broker.fills[0].avg_price == pytest.approx(price)


def test_position_features_and_history_one_push_per_tick() -> None:
    env = TraderEnv(cfg(), session=tiny_session())
    obs, _ = env.reset()
    first = obs.features[0].copy()
    obs, *_ = env.step([BUY])
    f = obs.features[0]
    assert (f[12], f[13]) == (1.0, 1.0)
    h = obs.history[0].reshape(5, 18)
    assert np.all(h[:3] == 0) and np.allclose(h[3], first) and np.allclose(h[4], f)
    for _ in range(3):
        obs, *_ = env.step([HOLD])
    h = obs.history[0].reshape(5, 18)
    assert np.allclose(h[0], first) and np.allclose(h[4], obs.features[0])


def test_resolution_falls_back_to_futures_prices() -> None:
    env = TraderEnv(cfg(), session=tiny_session(final=99.0, with_resolution=False))
    run(env, {0: BUY})
    assert env.settled[0]["up_wins"] is False and env.settled[0]["final"] == 99.0
    assert env.settled[0]["resolved_by"] == FUTURES_FALLBACK  # flagged
    assert env.report()["futures_fallback_settlements"] == 1


def test_confidence_sizing_scales_entries_by_distance_from_half() -> None:
    # decision at t0 (ask 0.51): 0.25 + 0.75 * 0.02 = 0.265 of the size; at t0+15 (ask 0.71): 0.565
    for step, ask, frac in ((0, 0.51, 0.265), (3, 0.71, 0.565)):
        env = TraderEnv(cfg(sizing="confidence"), session=tiny_session())
        run(env, {step: BUY})
        buy = env.broker.fills[0]
        assert buy.avg_price == pytest.approx(ask)
        assert buy.notional == pytest.approx(10.0 * frac)


def test_safety_exits_close_positions_as_the_engine_does() -> None:
    # the tiny book stops updating at t0+12: the stale-book rule (60 s) closes the position
    env = TraderEnv(cfg(safety=SafetyConfig(close_before_end_s=0.0)), session=tiny_session())
    rewards, _ = run(env, {0: BUY})
    assert env.report()["safety_exits"] == {"stale_book": 1}
    stale_step = next(k for k, r in enumerate(rewards) if r != 0.0)
    assert 5 * (stale_step + 1) > 12 + 60  # not before the book is 60 s old
    assert rewards[-1] == 0.0  # nothing left to settle
    # no entries in the last close_before_end_s + entry margin
    late = TraderEnv(cfg(safety=SafetyConfig(close_before_end_s=180.0, stale_book_s=1e9)),
                     session=tiny_session())  # fmt: skip
    run(late, {170: BUY})
    assert not late.broker.fills


def test_invalid_actions_rejected() -> None:
    env = TraderEnv(cfg(), session=tiny_session())
    env.reset()
    with pytest.raises(ValueError):
        env.step([7])
    with pytest.raises(ValueError):
        env.step([0, 0])


def test_synthetic_multi_window_session_moves_slots_to_next_market() -> None:
    env = TraderEnv(EnvConfig(synthetic=SyntheticConfig(assets=("XRP",), n_windows=2, warmup_minutes=15)))
    obs, info = env.reset(seed=3)
    first = info["markets"][0]
    ends, done, steps = 0, False, 0
    while not done:
        obs, r, done, _, info = env.step([HOLD])
        ends += int(info["market_end"][0])
        steps += 1
        if steps == 180:
            assert info["market_end"][0] and obs.mask[0]
            assert env.current[0].slug != first
            assert np.all(obs.history[0].reshape(5, 18)[:4] == 0)  # fresh window for the new market
    assert ends == 2 and steps == 360
