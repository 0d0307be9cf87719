"""The order book (snapshots + deltas) and each of the 18 features."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stratforge.trader.features import (
    FEATURE_NAMES,
    HISTORY_LEN,
    N_FEATURES,
    FuturesFlow,
    HistoryWindow,
    MarketBook,
    OrderBook,
    PositionView,
    clamp,
    compute_features,
)
from stratforge.trader.markets.messages import AggTrade, BookSnapshot, Kline, PriceChange

UP = "up-token"


def snap(ts: float, bids, asks, asset: str = UP) -> BookSnapshot:
    return BookSnapshot(ts, "m", asset, sorted(bids, reverse=True), sorted(asks))


def trade(ts: float, price: float, qty: float, buy: bool) -> AggTrade:
    return AggTrade(ts, "BTCUSDT", price, qty, buyer_is_maker=not buy)


def kline(start: float, close: float, qv: float = 1000.0) -> Kline:
    return Kline(start + 60, "BTCUSDT", start, close, close, close, close, qv / close, qv, 10, True)


def test_book_snapshot_then_deltas() -> None:
    book = OrderBook()
    book.apply_snapshot(snap(0, [(0.48, 100), (0.47, 50)], [(0.52, 80), (0.53, 40)]))
    assert (book.best_bid(), book.best_ask()) == (0.48, 0.52)
    book.apply_change(0.49, "BUY", 30, 1.0)  # new better bid
    book.apply_change(0.52, "SELL", 0, 1.0)  # best ask removed
    book.apply_change(0.47, "BUY", 75, 1.0)  # size replaced, not added
    assert book.best_bid() == 0.49 and book.best_ask() == 0.53
    assert book.bid_levels() == [(0.49, 30), (0.48, 100), (0.47, 75)]
    assert book.mid() == pytest.approx(0.51)
    # a later snapshot replaces everything, including levels only the deltas created
    book.apply_snapshot(snap(2, [(0.40, 10)], [(0.60, 10)]))
    assert book.bid_levels() == [(0.40, 10)] and book.ask_levels() == [(0.60, 10)]


def test_complement_book_mirrors_prices() -> None:
    book = OrderBook()
    book.apply_snapshot(snap(0, [(0.48, 100)], [(0.52, 80), (0.55, 20)]))
    down = book.complement()
    assert down.best_bid() == pytest.approx(0.48) and down.best_ask() == pytest.approx(0.52)
    assert down.bid_levels() == [(0.48, 80), (0.45, 20)]


def test_market_book_routes_price_change_by_asset_and_ignores_down_token() -> None:
    mb = MarketBook(UP)
    mb.on_snapshot(snap(0, [(0.48, 100)], [(0.52, 80)]))
    mb.on_snapshot(snap(0.5, [(0.10, 1)], [(0.90, 1)], asset="down-token"))
    mb.on_change(PriceChange(1, "m", [("down-token", 0.49, "BUY", 5.0), (UP, 0.50, "BUY", 7.0)]))
    assert mb.book.best_bid() == 0.50 and mb.book.best_ask() == 0.52


def empty_features(flow=None, mb=None, pos=None, now=100.0, end=900.0) -> np.ndarray:
    return compute_features(flow or FuturesFlow(), mb or MarketBook(UP), pos or PositionView(), now, end)


def test_empty_state_is_all_zero_except_time() -> None:
    f = empty_features(now=450.0, end=900.0)
    assert f.shape == (N_FEATURES,) and f.dtype == np.float32
    assert f[15] == pytest.approx(0.5)
    assert np.count_nonzero(np.delete(f, 15)) == 0
    assert len(FEATURE_NAMES) == N_FEATURES


def test_returns_use_price_at_lookback_and_scale_50() -> None:
    flow = FuturesFlow()
    flow.on_trade(trade(0.0, 100.0, 1, True))
    flow.on_trade(trade(300.0, 100.4, 1, True))
    flow.on_trade(trade(540.0, 100.6, 1, True))
    flow.on_trade(trade(600.0, 101.0, 1, True))
    f = empty_features(flow=flow, now=600.0, end=900.0)
    assert f[0] == pytest.approx(50 * (101.0 / 100.6 - 1), rel=1e-5)  # 1 min: price at t=540
    assert f[1] == pytest.approx(50 * (101.0 / 100.4 - 1), rel=1e-5)  # 5 min: price at t=300
    assert f[2] == pytest.approx(50 * (101.0 / 100.0 - 1), rel=1e-5)  # 10 min: price at t=0


def test_returns_clamp_to_one() -> None:
    flow = FuturesFlow()
    flow.on_trade(trade(0.0, 100.0, 1, True))
    flow.on_trade(trade(60.0, 110.0, 1, True))  # +10% * 50 = 5 -> 1
    assert empty_features(flow=flow, now=60.0)[0] == 1.0


def test_book_imbalance_and_spread() -> None:
    mb = MarketBook(UP)
    bids = [(0.49, 30), (0.48, 10), (0.47, 10), (0.46, 10), (0.45, 10), (0.44, 1000)]
    asks = [(0.51, 10), (0.52, 10), (0.53, 10), (0.54, 10), (0.55, 10)]
    mb.on_snapshot(snap(0, bids, asks))
    f = empty_features(mb=mb)
    assert f[3] == pytest.approx((30 - 10) / 40)
    assert f[4] == pytest.approx((70 - 50) / 120)  # 6th bid level is not counted
    assert f[7] == pytest.approx(20 * 0.02 / 0.50)


def test_trade_flow_decays_with_half_life() -> None:
    flow = FuturesFlow()
    flow.on_trade(trade(0.0, 100.0, 3.0, buy=True))  # 300 bought
    flow.on_trade(trade(30.0, 100.0, 1.0, buy=False))  # 100 sold one half-life later
    # buy volume decayed to 150: (150 - 100) / 250
    assert empty_features(flow=flow, now=30.0)[5] == pytest.approx(50 / 250)


def test_cvd_acceleration_compares_last_two_10s_windows() -> None:
    flow = FuturesFlow()
    flow.on_trade(trade(85.0, 100.0, 1.0, buy=False))  # older window: -100
    flow.on_trade(trade(95.0, 100.0, 2.0, buy=True))  # recent window: +200
    f = empty_features(flow=flow, now=100.0)
    assert f[6] == pytest.approx((200 - (-100)) / 300)


def test_trade_intensity_counts_last_10_seconds() -> None:
    flow = FuturesFlow()
    for k in range(30):
        flow.on_trade(trade(70.0 + k, 100.0, 1.0, buy=True))  # one per second, t = 70..99
    # the window is (now - 10, now]: trades at t = 91..99 count, the one at t = 90 does not
    assert empty_features(flow=flow, now=100.0)[8] == pytest.approx(9 / 10 / 10)


def test_large_trade_flag_and_decay() -> None:
    flow = FuturesFlow()
    for k in range(30):
        flow.on_trade(trade(float(k), 100.0, 1.0, buy=True))
    assert empty_features(flow=flow, now=30.0)[9] == 0.0
    flow.on_trade(trade(30.0, 100.0, 10.0, buy=True))  # 10x the median
    assert empty_features(flow=flow, now=30.0)[9] == pytest.approx(1.0)
    assert empty_features(flow=flow, now=35.0)[9] == pytest.approx(0.5)  # one 5 s half-life


def test_volatility_window_is_five_minutes_of_mid_changes() -> None:
    mb = MarketBook(UP)
    mb.on_snapshot(snap(0.0, [(0.49, 1)], [(0.51, 1)]))  # mid 0.50
    mb.on_change(PriceChange(10.0, "m", [(UP, 0.51, "BUY", 1), (UP, 0.53, "SELL", 1), (UP, 0.51, "SELL", 0)]))
    mb.on_change(PriceChange(400.0, "m", [(UP, 0.51, "BUY", 0), (UP, 0.50, "BUY", 1)]))
    # at t=400 only changes in (100, 400] count; the 0.50->0.52 move at t=10 is 390 s old
    # after the t=400 change the mid moved 0.52 -> 0.515
    assert empty_features(mb=mb, now=400.0)[10] == pytest.approx(3 * 0.005, rel=1e-6)
    # at t=200 the t=10 move (0.02) has left the window; nothing else happened
    mb2 = MarketBook(UP)
    mb2.on_snapshot(snap(0.0, [(0.49, 1)], [(0.51, 1)]))
    mb2.on_change(
        PriceChange(250.0, "m", [(UP, 0.51, "BUY", 1), (UP, 0.53, "SELL", 1), (UP, 0.51, "SELL", 0)])
    )
    assert empty_features(mb=mb2, now=290.0)[10] == pytest.approx(3 * 0.02, rel=1e-6)
    assert empty_features(mb=mb2, now=551.0)[10] == 0.0


def test_volume_expansion_is_recent_over_hourly_mean() -> None:
    flow = FuturesFlow()
    for m in range(55):
        flow.on_kline(kline(60.0 * m, 100.0, qv=1000.0))
    for m in range(55, 60):
        flow.on_kline(kline(60.0 * m, 100.0, qv=1500.0))
    base = (55 * 1000 + 5 * 1500) / 60
    assert empty_features(flow=flow, now=3600.0)[11] == pytest.approx(1500 / base - 1, rel=1e-6)
    few = FuturesFlow()
    for m in range(5):
        few.on_kline(kline(60.0 * m, 100.0, qv=5000.0))
    assert empty_features(flow=few, now=300.0)[11] == 0.0  # fewer than 10 klines: no estimate


def test_vol_and_trend_regimes_from_klines() -> None:
    calm, wild = FuturesFlow(), FuturesFlow()
    for m in range(61):
        calm.on_kline(kline(60.0 * m, 100.0 * (1 + 0.0001 * m)))  # +0.6% over the hour, no noise
        wild.on_kline(kline(60.0 * m, 100.0 * (1.004 if m % 2 else 1.0)))  # 0.4% swings every minute
    fc, fw = empty_features(flow=calm, now=3700.0), empty_features(flow=wild, now=3700.0)
    assert (fc[16], fc[17]) == (0.0, 1.0)
    assert fw[16] == 1.0 and fw[17] == 0.0


def test_position_features() -> None:
    f = empty_features(pos=PositionView(side=-1, unrealized_roi=0.25))
    assert (f[12], f[13], f[14]) == (1.0, -1.0, 0.25)
    f = empty_features(pos=PositionView(side=1, unrealized_roi=-3.0))
    assert (f[12], f[13], f[14]) == (1.0, 1.0, -1.0)


def test_all_features_clamped_on_random_states() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        flow, mb = FuturesFlow(), MarketBook(UP)
        t = 0.0
        for _ in range(200):
            t += float(rng.exponential(1.0))
            flow.on_trade(
                trade(t, float(rng.uniform(50, 150)), float(rng.lognormal(0, 2)), bool(rng.random() < 0.5))
            )
        bids = [(round(0.01 * k, 2), float(rng.uniform(0, 1e4))) for k in range(1, 40)]
        asks = [(round(0.01 * k, 2), float(rng.uniform(0, 1e4))) for k in range(41, 99)]
        mb.on_snapshot(snap(t, bids, asks))
        f = compute_features(flow, mb, PositionView(1, float(rng.normal(0, 5))), t, t + 100)
        assert np.all(np.abs(f) <= 1.0) and np.all(np.isfinite(f))
    assert clamp(float("nan")) == 0.0 and clamp(math.inf) == 1.0


def test_history_window_oldest_first_zero_padded() -> None:
    hw = HistoryWindow()
    rows = [np.full(N_FEATURES, k, dtype=np.float32) for k in range(1, 8)]
    h = hw.push(rows[0]).reshape(HISTORY_LEN, N_FEATURES)
    assert np.all(h[:4] == 0) and np.all(h[4] == 1)
    for r in rows[1:]:
        h = hw.push(r).reshape(HISTORY_LEN, N_FEATURES)
    assert [int(h[i, 0]) for i in range(HISTORY_LEN)] == [3, 4, 5, 6, 7]
    hw.reset()
    assert np.all(hw.stacked() == 0)
