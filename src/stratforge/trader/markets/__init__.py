"""Market data sources for the trader: typed messages, synthetic sessions and JSONL replays."""

from stratforge.trader.markets.messages import (
    ASSETS,
    AggTrade,
    BookSnapshot,
    Kline,
    LastTrade,
    MarketInfo,
    MarketResolved,
    Message,
    PriceChange,
    Resolution,
)
from stratforge.trader.markets.session import Session

__all__ = [
    "ASSETS",
    "AggTrade",
    "BookSnapshot",
    "Kline",
    "LastTrade",
    "MarketInfo",
    "MarketResolved",
    "Message",
    "PriceChange",
    "Resolution",
    "Session",
]
