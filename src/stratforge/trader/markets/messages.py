"""Shared market message types and their raw (wire) JSON shapes.

Live feeds, replay files and the synthetic generator all produce these typed messages, so the same
state code (`stratforge.trader.features`) consumes every source. Times are UNIX seconds (float);
the raw shapes use the venues' millisecond integers and decimal strings.

Raw shapes (what the venues send):

- Polymarket CLOB market channel, ``event_type`` ``book`` (full snapshot of one token's book),
  ``price_change`` (level deltas: new absolute size at a price, 0 removes the level; side ``BUY`` is a
  bid level, ``SELL`` an ask level), ``last_trade_price`` and ``market_resolved`` (the winning token id;
  sent only to subscriptions with ``custom_feature_enabled: true``).
- Binance USD-M futures ``aggTrade`` (``m`` true = buyer is maker, i.e. a taker sell) and ``kline``.
- ``meta`` records (our own): market definitions and resolutions, which the venues give via REST.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stratforge.trader.fees import FeeSchedule, schedule_from_metadata

ASSETS: tuple[str, ...] = ("BTC", "ETH", "SOL", "XRP")
SYMBOLS: dict[str, str] = {a: f"{a}USDT" for a in ASSETS}
SYMBOL_TO_ASSET: dict[str, str] = {v: k for k, v in SYMBOLS.items()}
WINDOW_SECONDS = 900


@dataclass(slots=True)
class MarketInfo:
    """One 15-minute up/down market (Gamma event + CLOB market)."""

    asset: str
    window_start: float
    condition_id: str
    up_token: str
    down_token: str
    strike: float | None = None  # asset price at window start; derived from the feed when None
    window_end: float = 0.0
    fees: FeeSchedule | None = None  # the market's taker fee schedule; None: the broker's default

    def __post_init__(self) -> None:
        if not self.window_end:
            self.window_end = self.window_start + WINDOW_SECONDS

    @property
    def slug(self) -> str:
        return f"{self.asset.lower()}-updown-15m-{int(self.window_start)}"


@dataclass(slots=True)
class Resolution:
    """Outcome of a market: the price at window end decides UP (final >= strike) or DOWN."""

    ts: float
    condition_id: str
    strike: float
    final: float

    @property
    def up_wins(self) -> bool:
        return self.final >= self.strike


@dataclass(slots=True)
class MarketResolved:
    """The venue's ``market_resolved`` event (market channel with ``custom_feature_enabled``): the
    winning outcome token of a market. The venue's word, so it outranks any price we observed."""

    ts: float
    market: str  # condition id
    winning_asset_id: str
    winning_outcome: str = ""  # "Up" / "Down" label as the venue sends it

    def up_wins(self, info: MarketInfo) -> bool | None:
        """True/False when the winner is one of the market's tokens, None when it is neither."""
        if self.winning_asset_id == info.up_token:
            return True
        if self.winning_asset_id == info.down_token:
            return False
        return None


@dataclass(slots=True)
class BookSnapshot:
    """Full book of one outcome token. Levels are (price, size) sorted best first."""

    ts: float
    market: str
    asset_id: str
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]


@dataclass(slots=True)
class PriceChange:
    """Level deltas: (asset_id, price, side 'BUY'|'SELL', new size; 0 removes the level)."""

    ts: float
    market: str
    changes: list[tuple[str, float, str, float]] = field(default_factory=list)


@dataclass(slots=True)
class LastTrade:
    ts: float
    market: str
    asset_id: str
    price: float
    size: float
    side: str  # taker side, 'BUY' or 'SELL'


@dataclass(slots=True)
class AggTrade:
    ts: float
    symbol: str
    price: float
    qty: float
    buyer_is_maker: bool  # True: the taker sold

    @property
    def notional(self) -> float:
        return self.price * self.qty


@dataclass(slots=True)
class Kline:
    """A 1-minute futures candle; `closed` marks the final update of the minute."""

    ts: float
    symbol: str
    start: float
    open: float
    high: float
    low: float
    close: float
    volume: float  # base asset
    quote_volume: float
    trades: int
    closed: bool


Message = MarketInfo | Resolution | MarketResolved | BookSnapshot | PriceChange | LastTrade | AggTrade | Kline


def _ms(t: float) -> int:
    return int(round(t * 1000.0))


def _num(x: float) -> str:
    # Decimal strings like the venues send ("0.53", "12"); repr keeps every float exact on a round trip.
    x = float(x)
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


def to_raw(msg: Message) -> tuple[str, dict[str, Any]]:
    """Convert a typed message to (source, raw venue-shaped dict)."""
    if isinstance(msg, BookSnapshot):
        return "polymarket", {
            "event_type": "book",
            "asset_id": msg.asset_id,
            "market": msg.market,
            "bids": [{"price": _num(p), "size": _num(s)} for p, s in reversed(msg.bids)],
            "asks": [{"price": _num(p), "size": _num(s)} for p, s in reversed(msg.asks)],
            "timestamp": str(_ms(msg.ts)),
        }
    if isinstance(msg, PriceChange):
        return "polymarket", {
            "event_type": "price_change",
            "market": msg.market,
            "price_changes": [
                {"asset_id": a, "price": _num(p), "side": side, "size": _num(s)}
                for a, p, side, s in msg.changes
            ],
            "timestamp": str(_ms(msg.ts)),
        }
    if isinstance(msg, LastTrade):
        return "polymarket", {
            "event_type": "last_trade_price",
            "asset_id": msg.asset_id,
            "market": msg.market,
            "price": _num(msg.price),
            "size": _num(msg.size),
            "side": msg.side,
            "timestamp": str(_ms(msg.ts)),
        }
    if isinstance(msg, AggTrade):
        return "binance", {
            "e": "aggTrade",
            "E": _ms(msg.ts),
            "s": msg.symbol,
            "p": _num(msg.price),
            "q": _num(msg.qty),
            "T": _ms(msg.ts),
            "m": msg.buyer_is_maker,
        }
    if isinstance(msg, Kline):
        return "binance", {
            "e": "kline",
            "E": _ms(msg.ts),
            "s": msg.symbol,
            "k": {
                "t": _ms(msg.start),
                "T": _ms(msg.start + 60.0) - 1,
                "s": msg.symbol,
                "i": "1m",
                "o": _num(msg.open),
                "c": _num(msg.close),
                "h": _num(msg.high),
                "l": _num(msg.low),
                "v": _num(msg.volume),
                "n": msg.trades,
                "x": msg.closed,
                "q": _num(msg.quote_volume),
            },
        }
    if isinstance(msg, MarketInfo):
        return "meta", {
            "type": "market",
            "asset": msg.asset,
            "slug": msg.slug,
            "condition_id": msg.condition_id,
            "up_token": msg.up_token,
            "down_token": msg.down_token,
            "window_start": int(msg.window_start),
            "window_end": int(msg.window_end),
            "strike": msg.strike,
        } | ({} if msg.fees is None else {"fee_rate": msg.fees.rate, "fee_exponent": msg.fees.exponent})
    if isinstance(msg, MarketResolved):
        return "polymarket", {
            "event_type": "market_resolved",
            "market": msg.market,
            "winning_asset_id": msg.winning_asset_id,
            "winning_outcome": msg.winning_outcome,
            "timestamp": str(_ms(msg.ts)),
        }
    if isinstance(msg, Resolution):
        return "meta", {
            "type": "resolution",
            "ts": _ms(msg.ts),
            "condition_id": msg.condition_id,
            "strike": msg.strike,
            "final": msg.final,
        }
    raise TypeError(f"not a market message: {type(msg).__name__}")


def _levels(rows: list[dict[str, Any]], reverse: bool) -> list[tuple[float, float]]:
    out = [(float(r["price"]), float(r["size"])) for r in rows]
    out = [lv for lv in out if lv[1] > 0]
    out.sort(key=lambda lv: lv[0], reverse=reverse)
    return out


def from_raw(source: str, raw: dict[str, Any] | list[Any]) -> list[Message]:
    """Parse one raw venue payload into typed messages (a payload can hold several events).

    Unknown event types return []; malformed known events raise ValueError.
    """
    if isinstance(raw, list):
        out: list[Message] = []
        for item in raw:
            out.extend(from_raw(source, item))
        return out
    try:
        if source == "polymarket":
            et = raw.get("event_type")
            ts = float(raw.get("timestamp", 0)) / 1000.0
            if et == "book":
                return [
                    BookSnapshot(
                        ts,
                        raw.get("market", ""),
                        raw["asset_id"],
                        _levels(raw.get("bids", []), reverse=True),
                        _levels(raw.get("asks", []), reverse=False),
                    )
                ]
            if et == "price_change":
                rows = raw.get("price_changes")
                if rows is None:  # older shape: one asset_id with a "changes" list
                    rows = [dict(c, asset_id=raw["asset_id"]) for c in raw.get("changes", [])]
                changes = [(r["asset_id"], float(r["price"]), r["side"], float(r["size"])) for r in rows]
                return [PriceChange(ts, raw.get("market", ""), changes)]
            if et == "market_resolved":
                return [
                    MarketResolved(
                        ts, raw["market"], str(raw["winning_asset_id"]), str(raw.get("winning_outcome", ""))
                    )
                ]
            if et == "last_trade_price":
                return [
                    LastTrade(
                        ts,
                        raw.get("market", ""),
                        raw["asset_id"],
                        float(raw["price"]),
                        float(raw.get("size", 0)),
                        raw.get("side", ""),
                    )
                ]
            return []
        if source == "binance":
            if "data" in raw and "stream" in raw:  # combined-stream wrapper
                raw = raw["data"]
            e = raw.get("e")
            if e == "aggTrade":
                return [
                    AggTrade(raw["T"] / 1000.0, raw["s"], float(raw["p"]), float(raw["q"]), bool(raw["m"]))
                ]
            if e == "kline":
                k = raw["k"]
                return [
                    Kline(
                        raw["E"] / 1000.0,
                        raw["s"],
                        k["t"] / 1000.0,
                        float(k["o"]),
                        float(k["h"]),
                        float(k["l"]),
                        float(k["c"]),
                        float(k["v"]),
                        float(k.get("q", 0.0)),
                        int(k.get("n", 0)),
                        bool(k["x"]),
                    )
                ]
            return []
        if source == "meta":
            t = raw.get("type")
            if t == "market":
                strike = raw.get("strike")
                return [
                    MarketInfo(
                        raw["asset"],
                        float(raw["window_start"]),
                        raw["condition_id"],
                        raw["up_token"],
                        raw["down_token"],
                        None if strike is None else float(strike),
                        float(raw.get("window_end") or 0.0),
                        schedule_from_metadata(raw),
                    )
                ]
            if t == "resolution":
                return [
                    Resolution(
                        raw["ts"] / 1000.0, raw["condition_id"], float(raw["strike"]), float(raw["final"])
                    )
                ]
            return []
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed {source} message: {exc}") from exc
    return []
