"""Paper broker: fills walk the book, fees follow Polymarket's curve, binary settlement, metrics."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratforge.trader.broker import BrokerConfig, ClosedTrade, PaperBroker, taker_fee, trade_metrics
from stratforge.trader.features import OrderBook


def book(bids, asks) -> OrderBook:
    b = OrderBook()
    b.bids = dict(bids)
    b.asks = dict(asks)
    return b


def test_fee_curve_matches_polymarket_example_and_shape() -> None:
    # Polymarket's documented example: 100 shares at 0.50 pay about 1.56 USDC
    assert taker_fee(100, 0.50) == pytest.approx(1.5625)
    assert taker_fee(100, 0.30) == pytest.approx(100 * 0.25 * (0.3 * 0.7) ** 2)
    assert taker_fee(100, 0.30) == pytest.approx(taker_fee(100, 0.70))  # symmetric
    assert taker_fee(100, 0.50) > taker_fee(100, 0.40) > taker_fee(100, 0.10) > taker_fee(100, 0.01)
    assert taker_fee(100, 0.0) == 0.0 and taker_fee(100, 1.0) == 0.0


def test_buy_walks_asks_never_fills_at_mid() -> None:
    br = PaperBroker(BrokerConfig(min_shares=5))
    up = book({0.48: 100}, {0.52: 10, 0.53: 10, 0.60: 1000})
    fill = br.buy("m", "BTC", "UP", 12.0, up, ts=1.0)
    # 10 @ 0.52 (5.20), 10 @ 0.53 (5.30), then 1.50 / 0.60 = 2.5 @ 0.60
    assert fill.shares == pytest.approx(22.5)
    assert fill.notional == pytest.approx(12.0)
    assert fill.avg_price > 0.50  # the mid; buys pay the ask side
    expected_fee = taker_fee(10, 0.52) + taker_fee(10, 0.53) + taker_fee(2.5, 0.60)
    assert fill.fee == pytest.approx(expected_fee)
    pos = br.positions["m"]
    assert pos.cost == pytest.approx(12.0 + expected_fee) and pos.token == "UP"


def test_partial_fill_reports_unfilled_remainder() -> None:
    br = PaperBroker(BrokerConfig(min_shares=5))
    fill = br.buy("m", "BTC", "UP", 100.0, book({0.48: 100}, {0.52: 10}), ts=0)
    assert fill.shares == pytest.approx(10) and fill.unfilled == pytest.approx(100 - 5.2)


def test_minimum_size_rejects_small_and_empty() -> None:
    br = PaperBroker(BrokerConfig(min_shares=5))
    fill = br.buy("m", "BTC", "UP", 10.0, book({0.48: 100}, {0.52: 3}), ts=0)
    assert fill.rejected and fill.shares == 0 and "m" not in br.positions
    fill = br.buy("m", "BTC", "UP", 10.0, book({}, {}), ts=0)
    assert fill.rejected == "empty book"


def test_down_buys_against_mirrored_up_bids() -> None:
    br = PaperBroker(BrokerConfig(min_shares=1))
    up = book({0.60: 50, 0.59: 50}, {0.62: 50})
    fill = br.buy("m", "BTC", "DOWN", 4.0, up, ts=0)
    # DOWN asks are 1 - UP bids: 0.40 (50 shares) first
    assert fill.avg_price == pytest.approx(0.40) and fill.shares == pytest.approx(10)


def test_close_sells_into_bids_and_realizes_pnl_after_both_fees() -> None:
    br = PaperBroker(BrokerConfig(min_shares=1))
    br.buy("m", "BTC", "UP", 5.0, book({0.48: 100}, {0.50: 100}), ts=0)  # 10 shares
    cost = br.positions["m"].cost
    fill, pnl = br.close("m", book({0.60: 4, 0.58: 100}, {0.62: 100}), ts=10)
    proceeds = 4 * 0.60 + 6 * 0.58 - taker_fee(4, 0.60) - taker_fee(6, 0.58)
    assert pnl == pytest.approx(proceeds - cost)
    assert "m" not in br.positions and br.trades[-1].exit_reason == "close"
    assert br.fees_paid == pytest.approx(taker_fee(10, 0.50) + taker_fee(4, 0.60) + taker_fee(6, 0.58))


def test_partial_close_keeps_remainder_with_prorated_cost() -> None:
    br = PaperBroker(BrokerConfig(min_shares=1))
    br.buy("m", "BTC", "UP", 5.0, book({0.48: 100}, {0.50: 100}), ts=0)
    cost = br.positions["m"].cost
    fill, pnl = br.close("m", book({0.55: 4}, {0.62: 100}), ts=5)
    assert fill.unfilled == pytest.approx(6)
    assert br.positions["m"].shares == pytest.approx(6)
    assert br.positions["m"].cost == pytest.approx(cost * 0.6)
    assert pnl == pytest.approx(4 * 0.55 - taker_fee(4, 0.55) - cost * 0.4)


def test_binary_settlement_pays_one_per_winning_share_without_fee() -> None:
    br = PaperBroker(BrokerConfig(min_shares=1))
    br.buy("a", "BTC", "UP", 5.0, book({0.48: 100}, {0.50: 100}), ts=0)
    br.buy("b", "ETH", "DOWN", 5.0, book({0.50: 100}, {0.52: 100}), ts=0)
    cost_a, cost_b = br.positions["a"].cost, br.positions["b"].cost
    assert br.settle("a", up_wins=True, ts=900) == pytest.approx(10 - cost_a)
    assert br.settle("b", up_wins=True, ts=900) == pytest.approx(-cost_b)  # DOWN lost
    assert br.settle("c", up_wins=True, ts=900) == 0.0
    assert not br.positions and [t.exit_reason for t in br.trades] == ["settle", "settle"]


def test_unrealized_roi_marks_at_bid_after_fee() -> None:
    br = PaperBroker(BrokerConfig(min_shares=1))
    br.buy("m", "BTC", "UP", 5.0, book({0.48: 100}, {0.50: 100}), ts=0)
    cost = br.positions["m"].cost
    roi = br.unrealized_roi("m", book({0.70: 100}, {0.72: 100}))
    assert roi == pytest.approx((10 * 0.70 - taker_fee(10, 0.70)) / cost - 1)


def _t(pnl: float, exit_ts: float, cost: float = 10.0) -> ClosedTrade:
    return ClosedTrade("m", "BTC", "UP", 0.0, exit_ts, 10, cost, cost + pnl, 0.1, "close")


def test_metrics_pnl_roi_winrate_sharpe_drawdown() -> None:
    trades = [_t(5, 1), _t(-8, 2), _t(2, 3), _t(-1, 4)]
    m = trade_metrics(trades)
    assert m["pnl"] == pytest.approx(-2) and m["roi"] == pytest.approx(-2 / 40)
    assert m["win_rate"] == pytest.approx(0.5) and m["n_trades"] == 4
    # equity 5, -3, -1, -2: peak 5, trough -3
    assert m["max_drawdown"] == pytest.approx(8)
    mean = -0.5
    std = ((5.5**2 + 7.5**2 + 2.5**2 + 0.5**2) / 3) ** 0.5
    assert m["sharpe_per_trade"] == pytest.approx(mean / std)
    assert m["fees_paid"] == pytest.approx(0.4)
    empty = trade_metrics([])
    assert empty["pnl"] == 0 and empty["win_rate"] == 0 and empty["max_drawdown"] == 0


_levels = st.lists(
    st.tuples(st.integers(min_value=1, max_value=99), st.floats(min_value=1.0, max_value=500.0)),
    min_size=1,
    max_size=8,
    unique_by=lambda lv: lv[0],
)


@settings(max_examples=150, deadline=None)
@given(_levels, _levels, st.floats(min_value=1.0, max_value=300.0), st.sampled_from(["UP", "DOWN"]))
def test_round_trip_never_profits_and_fills_respect_book(bids, asks, usd, token) -> None:
    best_ask = min(p for p, _ in asks)
    bids = [(p, s) for p, s in bids if p < best_ask]  # an uncrossed book
    if not bids:
        return
    up = book({p / 100: s for p, s in bids}, {p / 100: s for p, s in asks})
    br = PaperBroker(BrokerConfig(min_shares=1.0))
    fill = br.buy("m", "BTC", token, usd, up, ts=0)
    tb = PaperBroker.token_book(up, token)
    if fill.rejected:
        assert fill.shares == 0 and "m" not in br.positions
        return
    assert fill.notional <= usd + 1e-9
    assert fill.shares <= sum(s for _, s in tb.ask_levels()) + 1e-9
    prices = [p for p, _ in tb.ask_levels()]
    assert min(prices) - 1e-12 <= fill.avg_price <= max(prices) + 1e-12
    assert fill.notional + fill.unfilled == pytest.approx(usd)
    _, pnl = br.close("m", up, ts=1)
    total = pnl + (br.settle("m", up_wins=(token == "UP"), ts=2) if "m" in br.positions else 0.0)
    if not br.positions and all(t.exit_reason == "close" for t in br.trades):
        assert pnl <= 1e-9  # selling straight back into an uncrossed book cannot make money
    assert total == pytest.approx(sum(t.pnl for t in br.trades))
