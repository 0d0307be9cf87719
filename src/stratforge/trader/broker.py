"""Paper broker: taker orders walk the book, pay Polymarket's taker fee, settle as binary options.

Fee curve (Polymarket 15-minute crypto up/down markets, taker only, since January 2026):

    fee_usdc = shares * fee_rate * (p * (1 - p)) ** exponent,   fee_rate = 0.25, exponent = 2

At p = 0.50 and 100 shares this is 100 * 0.25 * 0.0625 = 1.5625 USDC, the "about $1.56 on 100 shares
at $0.50" example of Polymarket's fee documentation (docs.polymarket.com/trading/fees, reported in the
press on 2026-01-06); the general form `C * feeRate * (p(1-p))^exponent` is the one NautilusTrader's
Polymarket adapter implements (`compute_commission`). The fee is largest at p = 0.5 and vanishes
toward 0 and 1. We charge it in USDC on every fill level at that level's price (on the venue a buy's fee
is taken in shares; the value is the same). Makers pay nothing, but this broker only takes.

Fills never happen at mid: buys lift asks, sells hit bids, level by level; what the book cannot fill
is reported as unfilled. The DOWN book is the mirror of the UP book (a DOWN ask at 1 - p is an UP bid
at p). Orders below `min_shares` are rejected (the position is then carried to settlement).
Latency is applied by the caller (`env.TraderEnv`): orders fill against the book as of decision
time + `latency_s`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from stratforge.trader.features import OrderBook

FEE_RATE = 0.25
FEE_EXPONENT = 2.0


def taker_fee(shares: float, price: float, rate: float = FEE_RATE, exponent: float = FEE_EXPONENT) -> float:
    """Polymarket taker fee in USDC for `shares` filled at `price` (see the module docstring)."""
    p = min(max(price, 0.0), 1.0)
    return shares * rate * (p * (1.0 - p)) ** exponent


@dataclass
class BrokerConfig:
    trade_usd: float = 10.0  # notional spent per opening order
    min_shares: float = 5.0  # Polymarket's minimum order size on these markets
    fee_rate: float = FEE_RATE
    fee_exponent: float = FEE_EXPONENT
    latency_s: float = 0.5


@dataclass
class Fill:
    market: str
    token: str  # "UP" or "DOWN"
    side: str  # "BUY" or "SELL"
    ts: float
    shares: float = 0.0
    notional: float = 0.0  # USDC paid (buy) or received (sell), before fees
    fee: float = 0.0
    unfilled: float = 0.0  # USDC (buy) or shares (sell) the book could not take
    rejected: str = ""

    @property
    def avg_price(self) -> float:
        return self.notional / self.shares if self.shares > 0 else float("nan")


@dataclass
class Position:
    market: str
    asset: str
    token: str
    shares: float
    cost: float  # USDC paid including entry fees
    opened_ts: float
    fees: float = 0.0

    @property
    def side(self) -> int:
        return 1 if self.token == "UP" else -1


@dataclass
class ClosedTrade:
    market: str
    asset: str
    token: str
    entry_ts: float
    exit_ts: float
    shares: float
    cost: float
    proceeds: float  # after exit fee
    fees: float
    exit_reason: str  # "close" or "settle"

    @property
    def pnl(self) -> float:
        return self.proceeds - self.cost


@dataclass
class PaperBroker:
    cfg: BrokerConfig = field(default_factory=BrokerConfig)
    positions: dict[str, Position] = field(default_factory=dict)
    trades: list[ClosedTrade] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    fees_paid: float = 0.0

    def _fee(self, shares: float, price: float) -> float:
        return taker_fee(shares, price, self.cfg.fee_rate, self.cfg.fee_exponent)

    @staticmethod
    def token_book(up_book: OrderBook, token: str) -> OrderBook:
        return up_book if token == "UP" else up_book.complement()

    # -- fills (pure: no position changes; the decision engine and `buy`/`close` build on them) ------
    def fill_buy(self, token: str, usd: float, up_book: OrderBook, ts: float, market: str = "") -> Fill:
        """Spend up to `usd` on the token's asks, level by level, paying the taker fee."""
        fill = Fill(market, token, "BUY", ts)
        asks = self.token_book(up_book, token).ask_levels()
        plan: list[tuple[float, float]] = []
        budget = usd
        for price, size in asks:
            if budget <= 1e-12:
                break
            take = min(size, budget / price)
            plan.append((price, take))
            budget -= take * price
        shares = sum(s for _, s in plan)
        if shares < self.cfg.min_shares:
            fill.rejected = "below minimum size" if asks else "empty book"
            fill.unfilled = usd
            return fill
        fill.shares = shares
        fill.notional = sum(p * s for p, s in plan)
        fill.fee = sum(self._fee(s, p) for p, s in plan)
        fill.unfilled = max(budget, 0.0)
        return fill

    def fill_sell(self, token: str, shares: float, up_book: OrderBook, ts: float, market: str = "") -> Fill:
        """Sell up to `shares` of the token into its bids, level by level, paying the taker fee."""
        fill = Fill(market, token, "SELL", ts)
        bids = self.token_book(up_book, token).bid_levels()
        remaining = shares
        plan: list[tuple[float, float]] = []
        for price, size in bids:
            if remaining <= 1e-12:
                break
            take = min(size, remaining)
            plan.append((price, take))
            remaining -= take
        sold = sum(s for _, s in plan)
        if sold < min(self.cfg.min_shares, shares) - 1e-9 or sold <= 0:
            fill.rejected = "below minimum size" if bids else "empty book"
            fill.unfilled = shares
            return fill
        fill.shares = sold
        fill.notional = sum(p * s for p, s in plan)
        fill.fee = sum(self._fee(s, p) for p, s in plan)
        fill.unfilled = max(remaining, 0.0)
        return fill

    # -- stateful broker (the training environment's positions) ---------------------------------
    def buy(self, market: str, asset: str, token: str, usd: float, up_book: OrderBook, ts: float) -> Fill:
        """Open (or add to) a position by spending up to `usd` on the token's asks."""
        held = self.positions.get(market)
        if held is not None and held.token != token:
            return Fill(market, token, "BUY", ts, unfilled=usd, rejected="opposite position open")
        fill = self.fill_buy(token, usd, up_book, ts, market)
        self.fills.append(fill)
        if fill.rejected:
            return fill
        self.fees_paid += fill.fee
        if held is None:
            self.positions[market] = Position(
                market, asset, token, fill.shares, fill.notional + fill.fee, ts, fill.fee
            )
        else:
            held.shares += fill.shares
            held.cost += fill.notional + fill.fee
            held.fees += fill.fee
        return fill

    def close(self, market: str, up_book: OrderBook, ts: float) -> tuple[Fill, float]:
        """Sell the open position into the bids. Returns the fill and the realized PnL (after fees)
        of the part sold; an unsold remainder stays open."""
        pos = self.positions.get(market)
        if pos is None:
            return Fill(market, "", "SELL", ts, rejected="no position"), 0.0
        fill = self.fill_sell(pos.token, pos.shares, up_book, ts, market)
        self.fills.append(fill)
        if fill.rejected:
            return fill, 0.0
        sold = fill.shares
        self.fees_paid += fill.fee
        frac = sold / pos.shares
        cost = pos.cost * frac
        entry_fees = pos.fees * frac
        trade = ClosedTrade(
            market, pos.asset, pos.token, pos.opened_ts, ts, sold, cost,
            fill.notional - fill.fee, entry_fees + fill.fee, "close",
        )  # fmt: skip
        self.trades.append(trade)
        if fill.unfilled > 1e-9:
            pos.shares -= sold
            pos.cost -= cost
            pos.fees -= entry_fees
        else:
            del self.positions[market]
        return fill, trade.pnl

    def settle(self, market: str, up_wins: bool, ts: float) -> float:
        """Binary settlement at window end: the winning token pays 1 USDC per share, no fee."""
        pos = self.positions.pop(market, None)
        if pos is None:
            return 0.0
        won = (pos.token == "UP") == up_wins
        trade = ClosedTrade(
            market, pos.asset, pos.token, pos.opened_ts, ts, pos.shares, pos.cost,
            pos.shares if won else 0.0, pos.fees, "settle",
        )  # fmt: skip
        self.trades.append(trade)
        return trade.pnl

    def unrealized_roi(self, market: str, up_book: OrderBook) -> float:
        """Return on cost if the position were sold now at the best bid, after the taker fee."""
        pos = self.positions.get(market)
        if pos is None or pos.cost <= 0:
            return 0.0
        bid = self.token_book(up_book, pos.token).best_bid()
        if bid is None:
            return -1.0
        value = pos.shares * bid - self._fee(pos.shares, bid)
        return value / pos.cost - 1.0

    def report(self) -> dict[str, Any]:
        return trade_metrics(self.trades, self.fees_paid)


def trade_metrics(trades: list[ClosedTrade], fees_paid: float | None = None) -> dict[str, Any]:
    """PnL, ROI, win rate, per-trade Sharpe, max drawdown and fees of closed trades.

    ROI = PnL / total cost of the closed positions. Sharpe = mean / std of per-trade PnL (not
    annualised). Max drawdown = largest peak-to-trough fall of cumulative realized PnL (USDC), with
    trades taken in exit-time order.
    """
    ordered = sorted(trades, key=lambda t: t.exit_ts)
    pnls = [t.pnl for t in ordered]
    n = len(pnls)
    total = sum(pnls)
    cost = sum(t.cost for t in ordered)
    peak = dd = cum = 0.0
    for p in pnls:
        cum += p
        peak = max(peak, cum)
        dd = max(dd, peak - cum)
    if n >= 2:
        mean = total / n
        std = math.sqrt(sum((p - mean) ** 2 for p in pnls) / (n - 1))
        sharpe = mean / std if std > 0 else 0.0
    else:
        sharpe = 0.0
    return {
        "pnl": total,
        "roi": total / cost if cost > 0 else 0.0,
        "n_trades": n,
        "win_rate": sum(1 for p in pnls if p > 0) / n if n else 0.0,
        "sharpe_per_trade": sharpe,
        "max_drawdown": dd,
        "fees_paid": fees_paid if fees_paid is not None else sum(t.fees for t in ordered),
        "settled": sum(1 for t in ordered if t.exit_reason == "settle"),
    }
