"""Paper broker: fills walk the book, fees as Polymarket charges them (per market, buys in shares,
sells in USDC), binary settlement, metrics."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratforge.trader.broker import BrokerConfig, ClosedTrade, PaperBroker, trade_metrics
from stratforge.trader.features import OrderBook
from stratforge.trader.fees import CRYPTO_FEES_V2, LAUNCH_CRYPTO_FEES, FeeSchedule, schedule_from_metadata

V2 = CRYPTO_FEES_V2


def fee_shares(c: float, p: float, fs: FeeSchedule = V2) -> float:
    return c * fs.rate * (p * (1 - p)) ** fs.exponent


def book(bids, asks) -> OrderBook:
    b = OrderBook()
    b.bids = dict(bids)
    b.asks = dict(asks)
    return b


def test_fee_curve_matches_polymarket_fee_table() -> None:
    # docs.polymarket.com/trading/fees at launch (rate 0.25, exponent 2): 100 shares at 0.50 -> $0.78
    fs = LAUNCH_CRYPTO_FEES
    assert fs.fee_shares(100, 0.50) == pytest.approx(1.5625)
    assert fs.fee_usdc(100, 0.50) == pytest.approx(0.78125)
    assert round(fs.fee_usdc(100, 0.20), 2) == 0.13 and round(fs.fee_usdc(100, 0.60), 2) == 0.86
    assert fs.fee_usdc(100, 0.30) == pytest.approx(fs.fee_usdc(100, 0.70) * 0.3 / 0.7)
    assert fs.fee_shares(100, 0.30) == pytest.approx(fs.fee_shares(100, 0.70))  # symmetric in shares
    assert fs.fee_shares(100, 0.0) == 0.0 and fs.fee_shares(100, 1.0) == 0.0
    assert fs.fee_shares(100, 0.5, maker=True) == 0.0  # takers only
    # the current crypto schedule is the default
    assert BrokerConfig().fees == FeeSchedule(0.07, 1.0)
    assert V2.fee_shares(100, 0.5) == pytest.approx(1.75)


def test_fee_schedule_from_market_metadata() -> None:
    gamma = {"feeType": "crypto_fees_v2", "feeSchedule": {"rate": 0.07, "exponent": 1, "takerOnly": True}}
    assert schedule_from_metadata(gamma) == FeeSchedule(0.07, 1.0)
    assert schedule_from_metadata({"fd": {"r": 0.25, "e": 2}}) == LAUNCH_CRYPTO_FEES  # CLOB V2 info
    assert schedule_from_metadata({"fee_rate": 0.1, "fee_exponent": 2}) == FeeSchedule(0.1, 2.0)
    assert schedule_from_metadata({"feesEnabled": False}).fee_shares(100, 0.5) == 0.0
    assert schedule_from_metadata({"question": "?"}) is None and schedule_from_metadata(None) is None


def test_buy_fee_is_taken_in_shares_sell_fee_in_usdc() -> None:
    br = PaperBroker(BrokerConfig(min_shares=1, fees=LAUNCH_CRYPTO_FEES))
    up = book({0.50: 1000}, {0.50: 1000})  # a (degenerate) book to price both sides at 0.50
    fill = br.buy("m", "BTC", "UP", 50.0, up, ts=0)
    assert fill.shares_traded == pytest.approx(100) and fill.notional == pytest.approx(50.0)
    assert fill.fee_shares == pytest.approx(1.5625) and fill.fee == 0.0  # no USDC changes hands
    assert fill.shares == pytest.approx(98.4375)
    assert br.positions["m"].cost == pytest.approx(50.0)  # what was paid
    sell = br.fill_sell("UP", 100.0, up, ts=1)
    assert sell.fee == pytest.approx(0.78125) and sell.fee_shares == 0.0  # in USDC


def test_per_market_schedule_overrides_the_default() -> None:
    br = PaperBroker(BrokerConfig(min_shares=1))
    up = book({0.48: 1000}, {0.50: 1000})
    a = br.buy("a", "BTC", "UP", 50.0, up, ts=0)
    b = br.buy("b", "BTC", "UP", 50.0, up, ts=0, fees=LAUNCH_CRYPTO_FEES)
    assert a.fee_shares == pytest.approx(fee_shares(100, 0.5)) and b.fee_shares == pytest.approx(1.5625)
    _, pnl = br.close("b", up, ts=1)  # the position keeps its market's schedule for the exit
    assert pnl == pytest.approx(98.4375 * 0.48 * (1 - 0.25 * (0.48 * 0.52) ** 2) - 50.0)


def test_buy_walks_asks_never_fills_at_mid() -> None:
    br = PaperBroker(BrokerConfig(min_shares=5))
    up = book({0.48: 100}, {0.52: 10, 0.53: 10, 0.60: 1000})
    fill = br.buy("m", "BTC", "UP", 12.0, up, ts=1.0)
    # 10 @ 0.52 (5.20), 10 @ 0.53 (5.30), then 1.50 / 0.60 = 2.5 @ 0.60
    assert fill.shares_traded == pytest.approx(22.5)
    assert fill.notional == pytest.approx(12.0)
    assert fill.avg_price > 0.50  # the mid; buys pay the ask side
    expected_fee = fee_shares(10, 0.52) + fee_shares(10, 0.53) + fee_shares(2.5, 0.60)
    assert fill.fee_shares == pytest.approx(expected_fee)
    assert fill.shares == pytest.approx(22.5 - expected_fee)
    pos = br.positions["m"]
    assert pos.cost == pytest.approx(12.0) and pos.token == "UP"
    assert pos.shares == pytest.approx(22.5 - expected_fee)


def test_partial_fill_reports_unfilled_remainder() -> None:
    br = PaperBroker(BrokerConfig(min_shares=5))
    fill = br.buy("m", "BTC", "UP", 100.0, book({0.48: 100}, {0.52: 10}), ts=0)
    assert fill.shares_traded == pytest.approx(10) and fill.unfilled == pytest.approx(100 - 5.2)


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
    assert fill.avg_price == pytest.approx(0.40) and fill.shares_traded == pytest.approx(10)


def test_close_sells_into_bids_and_realizes_pnl_after_both_fees() -> None:
    br = PaperBroker(BrokerConfig(min_shares=1))
    br.buy("m", "BTC", "UP", 5.0, book({0.48: 100}, {0.50: 100}), ts=0)  # 10 shares traded
    held = 10 - fee_shares(10, 0.50)
    cost = br.positions["m"].cost
    assert cost == pytest.approx(5.0) and br.positions["m"].shares == pytest.approx(held)
    fill, pnl = br.close("m", book({0.60: 4, 0.58: 100}, {0.62: 100}), ts=10)
    rest = held - 4
    sell_fee = 0.60 * fee_shares(4, 0.60) + 0.58 * fee_shares(rest, 0.58)
    assert fill.fee == pytest.approx(sell_fee)
    assert pnl == pytest.approx(4 * 0.60 + rest * 0.58 - sell_fee - cost)
    assert "m" not in br.positions and br.trades[-1].exit_reason == "close"
    assert br.fees_paid == pytest.approx(0.5 * fee_shares(10, 0.5) + sell_fee)


def test_partial_close_keeps_remainder_with_prorated_cost() -> None:
    br = PaperBroker(BrokerConfig(min_shares=1))
    br.buy("m", "BTC", "UP", 5.0, book({0.48: 100}, {0.50: 100}), ts=0)
    held = br.positions["m"].shares
    cost = br.positions["m"].cost
    fill, pnl = br.close("m", book({0.55: 4}, {0.62: 100}), ts=5)
    assert fill.unfilled == pytest.approx(held - 4)
    assert br.positions["m"].shares == pytest.approx(held - 4)
    assert br.positions["m"].cost == pytest.approx(cost * (held - 4) / held)
    assert pnl == pytest.approx(4 * 0.55 - 0.55 * fee_shares(4, 0.55) - cost * 4 / held)


def test_binary_settlement_pays_one_per_winning_share_without_fee() -> None:
    br = PaperBroker(BrokerConfig(min_shares=1))
    br.buy("a", "BTC", "UP", 5.0, book({0.48: 100}, {0.50: 100}), ts=0)
    br.buy("b", "ETH", "DOWN", 5.0, book({0.50: 100}, {0.52: 100}), ts=0)
    cost_a, cost_b = br.positions["a"].cost, br.positions["b"].cost
    held_a = br.positions["a"].shares
    assert held_a == pytest.approx(10 - fee_shares(10, 0.5))  # the buy fee came out of the shares
    assert br.settle("a", up_wins=True, ts=900) == pytest.approx(held_a - cost_a)
    assert br.settle("b", up_wins=True, ts=900) == pytest.approx(-cost_b)  # DOWN lost
    assert br.settle("c", up_wins=True, ts=900) == 0.0
    assert not br.positions and [t.exit_reason for t in br.trades] == ["settle", "settle"]


def test_unrealized_roi_marks_at_bid_after_fee() -> None:
    br = PaperBroker(BrokerConfig(min_shares=1))
    br.buy("m", "BTC", "UP", 5.0, book({0.48: 100}, {0.50: 100}), ts=0)
    cost, held = br.positions["m"].cost, br.positions["m"].shares
    roi = br.unrealized_roi("m", book({0.70: 100}, {0.72: 100}))
    assert roi == pytest.approx((held * 0.70 - 0.70 * fee_shares(held, 0.70)) / cost - 1)


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
    assert fill.shares < fill.shares_traded <= sum(s for _, s in tb.ask_levels()) + 1e-9
    prices = [p for p, _ in tb.ask_levels()]
    assert min(prices) - 1e-12 <= fill.avg_price <= max(prices) + 1e-12
    assert fill.notional + fill.unfilled == pytest.approx(usd)
    _, pnl = br.close("m", up, ts=1)
    total = pnl + (br.settle("m", up_wins=(token == "UP"), ts=2) if "m" in br.positions else 0.0)
    if not br.positions and all(t.exit_reason == "close" for t in br.trades):
        assert pnl <= 1e-9  # selling straight back into an uncrossed book cannot make money
    assert total == pytest.approx(sum(t.pnl for t in br.trades))
