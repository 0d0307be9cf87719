"""Where orders go: the :class:`Execution` protocol and its paper implementation.

The decision engine sends every entry, exit and settlement through an ``Execution``; it never knows
whether fills come from the paper broker walking the (replayed or live) book or from the venue
(:class:`stratforge.trader.live.executor.LiveExecution`). Both return the broker's
:class:`~stratforge.trader.broker.Fill`: shares received, shares traded, USDC notional and the fee
(a buy's in shares, a sell's in USDC) of what actually filled, or ``rejected`` with the reason. A rejected sell leaves the position open (the engine keeps it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from stratforge.trader.broker import BrokerConfig, Fill, PaperBroker
from stratforge.trader.features import OrderBook
from stratforge.trader.markets.messages import MarketInfo
from stratforge.trader.positions import Position

PAID, PENDING, LOST = "paid", "pending_redemption", "lost"


@dataclass
class Redemption:
    """What happened to a settled position's tokens: winners paid out (or awaiting redemption)."""

    status: str  # PAID | PENDING | LOST
    detail: str = ""


class Execution(Protocol):
    """Order placement seam between the decision engine and a venue (or the paper broker)."""

    name: str  # "paper" | "live"

    def buy(self, market: MarketInfo, side: str, usd: float, up_book: OrderBook, now: float) -> Fill:
        """Spend up to ``usd`` on the ``side`` ("UP"/"DOWN") token of ``market``."""
        ...

    def sell(self, pos: Position, up_book: OrderBook, now: float) -> Fill:
        """Sell all shares of ``pos`` (a partial fill leaves the rest to the caller)."""
        ...

    def settle(self, pos: Position, up_wins: bool, now: float) -> Redemption:
        """The market resolved: collect the winnings of ``pos`` (or say they are pending)."""
        ...


class PaperExecution:
    """Fills against the book the engine sees, through the paper broker's fill math (taker fees,
    level by level, minimum size); settlement pays 1 per winning share at once."""

    name = "paper"

    def __init__(self, cfg: BrokerConfig | None = None) -> None:
        self.broker = PaperBroker(cfg or BrokerConfig())

    def buy(self, market: MarketInfo, side: str, usd: float, up_book: OrderBook, now: float) -> Fill:
        return self.broker.fill_buy(side, usd, up_book, now, market.condition_id, market.fees)

    def sell(self, pos: Position, up_book: OrderBook, now: float) -> Fill:
        return self.broker.fill_sell(pos.side, pos.shares, up_book, now, pos.condition_id, pos.market.fees)

    def settle(self, pos: Position, up_wins: bool, now: float) -> Redemption:
        return Redemption(PAID if (pos.side == "UP") == up_wins else LOST)
