"""Websocket feeds: Polymarket CLOB market channel, Binance USD-M futures, OKX swaps (fallback).

Each feed is an async iterator of ``(source, raw_dict)`` in the venue's own JSON shape (OKX trades are
re-shaped to Binance ``aggTrade`` so downstream code has one futures shape), which is exactly what the
replay format stores and what :func:`stratforge.trader.markets.messages.from_raw` parses. Feeds
reconnect with capped exponential backoff and never end on a network error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import websockets

log = logging.getLogger(__name__)

CLOB_WS_URL = "wss://ws-subscriptions-clob.polymarket.com/ws/market"
BINANCE_FUTURES_WS_URL = "wss://fstream.binance.com"
OKX_WS_URL = "wss://ws.okx.com:8443/ws/v5/public"

Raw = tuple[str, dict[str, Any]]


class _Feed:
    source = ""

    def __init__(self, url: str, max_backoff: float = 30.0, ping_interval: float = 10.0) -> None:
        self.url = url
        self.max_backoff = max_backoff
        self.ping_interval = ping_interval
        self.connects = 0
        self.last_message: float | None = None
        self._closed = False
        self._ws: Any = None  # the open connection (to drop it on a resubscription)

    def close(self) -> None:
        self._closed = True

    async def reconnect(self) -> None:
        """Drop the current connection; the iterator reconnects (and resubscribes) at once."""
        ws = self._ws
        if ws is not None:
            await ws.close()

    def _connect_url(self) -> str:
        return self.url

    async def _subscribe(self, ws: Any) -> None:  # pragma: no cover - overridden
        pass

    async def _keepalive(self, ws: Any) -> None:
        pass

    def _parse(self, text: str) -> list[dict[str, Any]]:
        data = json.loads(text)
        return data if isinstance(data, list) else [data]

    async def __aiter__(self) -> AsyncIterator[Raw]:
        backoff = 0.5
        while not self._closed:
            try:
                async with websockets.connect(self._connect_url(), ping_interval=20, open_timeout=10) as ws:
                    self.connects += 1
                    backoff = 0.5
                    self._ws = ws
                    await self._subscribe(ws)
                    keep = asyncio.create_task(self._keepalive(ws))
                    try:
                        async for text in ws:
                            if self._closed:
                                return
                            if isinstance(text, bytes):
                                text = text.decode()
                            if text in ("PONG", "pong"):
                                continue
                            try:
                                items = self._parse(text)
                            except ValueError:
                                log.warning("%s: unparsable message %r", self.source, text[:200])
                                continue
                            self.last_message = time.time()
                            for item in items:
                                out = self._shape(item)
                                if out is not None:
                                    yield self.source, out
                    finally:
                        keep.cancel()
                        self._ws = None
            except (TimeoutError, OSError, websockets.WebSocketException) as exc:
                if self._closed:
                    return
                log.warning("%s feed disconnected (%s); reconnecting in %.1fs", self.source, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)

    def _shape(self, item: dict[str, Any]) -> dict[str, Any] | None:
        return item


class ClobMarketFeed(_Feed):
    """Polymarket market channel: ``book`` snapshots, ``price_change`` deltas, ``last_trade_price`` and
    ``market_resolved`` (the winning token of a resolved market).

    Subscribes with ``{"assets_ids": [...], "type": "market", "custom_feature_enabled": true}`` (the
    flag enables ``market_resolved``) and keeps the socket alive with the text ``PING`` the venue
    expects every ~10 s. The channel has no unsubscribe: :meth:`set_assets` with a changed token list
    drops the connection, and the reconnect subscribes to the new list only.
    """

    source = "polymarket"
    EVENTS = ("book", "price_change", "last_trade_price", "market_resolved")

    def __init__(self, asset_ids: list[str], url: str = CLOB_WS_URL, **kw: Any) -> None:
        super().__init__(url, **kw)
        self._assets = list(asset_ids)

    @property
    def asset_ids(self) -> list[str]:
        return list(self._assets)

    async def set_assets(self, asset_ids: list[str]) -> bool:
        """Follow a new token list (run on the feed's event loop); True when it changed."""
        new = list(asset_ids)
        if new == self._assets:
            return False
        self._assets = new
        await self.reconnect()
        return True

    async def _subscribe(self, ws: Any) -> None:
        await ws.send(
            json.dumps({"assets_ids": self._assets, "type": "market", "custom_feature_enabled": True})
        )

    async def _keepalive(self, ws: Any) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            await ws.send("PING")

    def _shape(self, item: dict[str, Any]) -> dict[str, Any] | None:
        return item if item.get("event_type") in self.EVENTS else None


class BinanceFuturesFeed(_Feed):
    """Binance USD-M combined stream of ``<symbol>@aggTrade`` and ``<symbol>@kline_1m``."""

    source = "binance"

    def __init__(self, symbols: list[str], url: str = BINANCE_FUTURES_WS_URL, **kw: Any) -> None:
        super().__init__(url, **kw)
        self.symbols = [s.lower() for s in symbols]

    def _connect_url(self) -> str:
        streams = "/".join(f"{s}@aggTrade/{s}@kline_1m" for s in self.symbols)
        return f"{self.url.rstrip('/')}/stream?streams={streams}"

    def _shape(self, item: dict[str, Any]) -> dict[str, Any] | None:
        data = item.get("data", item)
        return data if data.get("e") in ("aggTrade", "kline") else None


class OkxSwapFeed(_Feed):
    """OKX public ``trades`` channel on ``<ASSET>-USDT-SWAP``, re-shaped to Binance ``aggTrade``.

    Used where Binance blocks the host. OKX sends ``{"arg": {...}, "data": [{"instId", "px", "sz",
    "side", "ts"}]}``; ``side`` is the taker side, so ``m`` (buyer is maker) is ``side == "sell"``.
    Contract sizes differ from Binance quantities; features use ratios, so only the scale of feature 8's
    notional median changes.
    """

    source = "binance"  # downstream sees the Binance shape

    def __init__(self, symbols: list[str], url: str = OKX_WS_URL, **kw: Any) -> None:
        super().__init__(url, **kw)
        self.inst = {f"{s.upper().removesuffix('USDT')}-USDT-SWAP": s.upper() for s in symbols}

    async def _subscribe(self, ws: Any) -> None:
        args = [{"channel": "trades", "instId": inst} for inst in self.inst]
        await ws.send(json.dumps({"op": "subscribe", "args": args}))

    async def _keepalive(self, ws: Any) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            await ws.send("ping")

    def _parse(self, text: str) -> list[dict[str, Any]]:
        msg = json.loads(text)
        if msg.get("event") or (msg.get("arg") or {}).get("channel") != "trades":
            return []
        return list(msg.get("data", []))

    def _shape(self, item: dict[str, Any]) -> dict[str, Any] | None:
        symbol = self.inst.get(item.get("instId", ""))
        if symbol is None:
            return None
        ts = int(item["ts"])
        return {
            "e": "aggTrade",
            "E": ts,
            "s": symbol,
            "p": item["px"],
            "q": item["sz"],
            "T": ts,
            "m": item.get("side") == "sell",
        }
