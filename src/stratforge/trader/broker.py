"""Paper broker: taker orders walk the book, pay the market's taker fee, settle as binary options.

Fees (see `stratforge.trader.fees` for the schedule and its sources): per market, from the market's
metadata when present (``MarketInfo.fees``), else ``BrokerConfig.fees`` (the current crypto schedule,
rate 0.07, exponent 1). A buy of C shares at p costs ``C * p`` USDC and delivers ``C - F`` shares
(the fee is taken in shares); a sale of C shares at p pays ``C * p - F * p`` USDC (the fee is taken
in USDC), with F = C * rate * (p(1-p))^exponent per fill level at that level's price. Only takers
pay; every order of this broker takes.

Fills never happen at mid: buys lift asks, sells hit bids, level by level; what the book cannot fill
is reported as unfilled. The DOWN book is the mirror of the UP book (a DOWN ask at 1 - p is an UP bid
at p). Orders below `min_shares` are rejected (the position is then carried to settlement).
Latency is applied by the caller: orders fill against the book as of decision time + `latency_s`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from stratforge.trader.features import OrderBook, unrealized_roi
from stratforge.trader.fees import CRYPTO_FEES_V2, FeeSchedule


@dataclass
class BrokerConfig:
    trade_usd: float = 10.0  # full trade size in USDC (confidence sizing scales it, see `sizing`)
    min_shares: float = 5.0  # Polymarket's minimum order size on these markets
    fees: FeeSchedule = CRYPTO_FEES_V2  # default for markets whose metadata carries no schedule
    latency_s: float = 0.5


@dataclass
class Fill:
    market: str
    token: str  # "UP" or "DOWN"
    side: str  # "BUY" or "SELL"
    ts: float
    shares: float = 0.0
    shares_traded: float = 0.0  # shares matched; a buy receives `shares` = shares_traded - fee_shares
    notional: float = 0.0  # USDC paid (buy) or received (sell), before fees
    fee: float = 0.0  # USDC fee charged (sells; a buy's fee is in shares, so 0 here)
    fee_shares: float = 0.0  # shares fee withheld from a buy
    unfilled: float = 0.0  # USDC (buy) or shares (sell) the book could not take
    rejected: str = ""

    @property
    def avg_price(self) -> float:
        """Matched price per share traded."""
        return self.notional / self.shares_traded if self.shares_traded > 0 else float("nan")

    @property
    def fee_value(self) -> float:
        """The fee's value in USDC, whichever way it was taken (for reports)."""
        return self.fee + self.fee_shares * (self.avg_price if self.shares_traded > 0 else 0.0)


@dataclass
class Position:
    market: str
    asset: str
    token: str
    shares: float  # held, after the buy fee taken in shares
    cost: float  # USDC paid (the entry fee is in the shares not received)
    opened_ts: float
    fees: float = 0.0  # USDC value of the fees paid so far
    schedule: FeeSchedule = CRYPTO_FEES_V2

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
    cost: float  # USDC paid for the shares
    proceeds: float  # USDC received after the exit fee (payout at settlement)
    fees: float  # USDC value of entry (in shares) and exit fees, for reports; already in the PnL
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

    @staticmethod
    def token_book(up_book: OrderBook, token: str) -> OrderBook:
        return up_book if token == "UP" else up_book.complement()

    # -- fills (pure: no position changes; the stateful methods below and the engine build on them) --
    def fill_buy(
        self, token: str, usd: float, up_book: OrderBook, ts: float, market: str = "",
        fees: FeeSchedule | None = None,
    ) -> Fill:  # fmt: skip
        """Spend up to `usd` on the token's asks, level by level; the taker fee is withheld in shares.
        `fees`: the market's schedule (default `cfg.fees`)."""
        schedule = fees or self.cfg.fees
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
        traded = sum(s for _, s in plan)
        if traded < self.cfg.min_shares:
            fill.rejected = "below minimum size" if asks else "empty book"
            fill.unfilled = usd
            return fill
        fill.shares_traded = traded
        fill.notional = sum(p * s for p, s in plan)
        fill.fee_shares = sum(schedule.fee_shares(s, p) for p, s in plan)
        fill.shares = traded - fill.fee_shares
        fill.unfilled = max(budget, 0.0)
        return fill

    def fill_sell(
        self, token: str, shares: float, up_book: OrderBook, ts: float, market: str = "",
        fees: FeeSchedule | None = None,
    ) -> Fill:  # fmt: skip
        """Sell up to `shares` of the token into its bids, level by level; the fee is paid in USDC."""
        schedule = fees or self.cfg.fees
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
        fill.shares = fill.shares_traded = sold
        fill.notional = sum(p * s for p, s in plan)
        fill.fee = sum(schedule.fee_usdc(s, p) for p, s in plan)
        fill.unfilled = max(remaining, 0.0)
        return fill

    # -- stateful broker (the training environment's positions) ---------------------------------
    def buy(
        self, market: str, asset: str, token: str, usd: float, up_book: OrderBook, ts: float,
        fees: FeeSchedule | None = None,
    ) -> Fill:  # fmt: skip
        """Open (or add to) a position by spending up to `usd` on the token's asks."""
        held = self.positions.get(market)
        if held is not None and held.token != token:
            return Fill(market, token, "BUY", ts, unfilled=usd, rejected="opposite position open")
        schedule = fees or (held.schedule if held is not None else self.cfg.fees)
        fill = self.fill_buy(token, usd, up_book, ts, market, schedule)
        self.fills.append(fill)
        if fill.rejected:
            return fill
        self.fees_paid += fill.fee_value
        if held is None:
            self.positions[market] = Position(
                market, asset, token, fill.shares, fill.notional, ts, fill.fee_value, schedule
            )
        else:
            held.shares += fill.shares
            held.cost += fill.notional
            held.fees += fill.fee_value
        return fill

    def close(self, market: str, up_book: OrderBook, ts: float) -> tuple[Fill, float]:
        """Sell the open position into the bids. Returns the fill and the realized PnL (after fees)
        of the part sold; an unsold remainder stays open."""
        pos = self.positions.get(market)
        if pos is None:
            return Fill(market, "", "SELL", ts, rejected="no position"), 0.0
        fill = self.fill_sell(pos.token, pos.shares, up_book, ts, market, pos.schedule)
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
        """Feature 14 of the open position (`features.unrealized_roi`, the live engine's too)."""
        pos = self.positions.get(market)
        if pos is None:
            return 0.0
        return unrealized_roi(pos.shares, pos.cost, self.token_book(up_book, pos.token), pos.schedule)

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
