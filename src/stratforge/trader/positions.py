"""Open positions: the one :class:`Position` type and the :class:`PositionBook` that holds them.

Every part of the trader sees the same object: the decision engine opens and closes it, the safety
rules read it, the executions fill it, the journal stores it (``trades`` rows are its persisted form,
see :mod:`stratforge.trader.journal`) and the health snapshot shows it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from stratforge.trader.features import OrderBook
from stratforge.trader.markets.messages import MarketInfo

UP, DOWN = "UP", "DOWN"


@dataclass
class Position:
    """Shares of one outcome token of one market, held since ``entry_time`` (epoch seconds)."""

    trade_id: str
    trade_key: str  # market@entry tick: unique per session, so a replayed tick cannot open a twin
    market: MarketInfo
    side: str  # UP | DOWN
    entry_time: float
    entry_price: float  # average matched price
    shares: float  # held (a buy's fee taken in shares is not among them)
    cost: float  # USDC paid (including an entry fee charged in USDC): the PnL reference
    entry_fee: float = 0.0  # USDC value of the entry fee, for reports (already in shares/cost)

    @property
    def condition_id(self) -> str:
        return self.market.condition_id

    @property
    def token_id(self) -> str:
        return self.market.up_token if self.side == UP else self.market.down_token

    @property
    def window_end(self) -> float:
        return self.market.window_end

    def own_book(self, up_book: OrderBook) -> OrderBook:
        """The book of the token held (the DOWN book mirrors the UP book)."""
        return up_book if self.side == UP else up_book.complement()

    def mark(self, up_book: OrderBook) -> float | None:
        """Best bid of the token held: what a sell would get now (None on an empty book)."""
        return self.own_book(up_book).best_bid()

    def split(self, sold_shares: float) -> tuple[float, float]:
        """(cost, entry fee) attributable to ``sold_shares`` of this position."""
        frac = min(sold_shares / self.shares, 1.0) if self.shares > 0 else 1.0
        return self.cost * frac, self.entry_fee * frac


class PositionBook:
    """The open positions by trade id, with lookups by market and the exposure at cost."""

    def __init__(self) -> None:
        self._by_id: dict[str, Position] = {}

    def __iter__(self) -> Iterator[Position]:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)

    def __bool__(self) -> bool:
        return bool(self._by_id)

    def add(self, pos: Position) -> None:
        if pos.trade_id in self._by_id:
            raise ValueError(f"position {pos.trade_id} is already open")
        self._by_id[pos.trade_id] = pos

    def remove(self, pos: Position) -> None:
        self._by_id.pop(pos.trade_id, None)

    def get(self, trade_id: str) -> Position | None:
        return self._by_id.get(trade_id)

    def in_market(self, condition_id: str) -> list[Position]:
        return [p for p in self._by_id.values() if p.condition_id == condition_id]

    def first_in(self, condition_id: str) -> Position | None:
        return next((p for p in self._by_id.values() if p.condition_id == condition_id), None)

    @property
    def exposure(self) -> float:
        """Dollars at cost over every open position (what the exposure limit counts)."""
        return sum(p.cost for p in self._by_id.values())
