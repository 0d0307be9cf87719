"""Local websocket venues for live-worker tests: the CLOB market channel, Binance and OKX.

Message shapes as the venues send them (see docs/replay-format.md and the Polymarket market channel
docs): ``book`` snapshots, ``market_resolved`` (only to subscriptions with ``custom_feature_enabled``),
Binance combined-stream ``aggTrade``, OKX ``trades``. Every timestamp comes from the test's clock, so
the worker sees exactly the time the test decides.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import websockets


class ManualClock:
    """A clock the test moves (seconds since the epoch)."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Venues:
    def __init__(self, clock: Callable[[], float], books: dict[str, dict[str, Any]]) -> None:
        """``books``: UP token -> {"market": condition id, "bids": [(p, s)], "asks": [(p, s)]}."""
        self.clock = clock
        self.books = books
        self.resolved: dict[str, str] = {}  # condition id -> winning token id (sent when set)
        self.subscriptions: list[dict[str, Any]] = []
        self.futures_alive = threading.Event()
        self.futures_alive.set()
        self.okx_alive = threading.Event()
        self.okx_alive.set()
        self.okx_connects = 0
        self.ports: dict[str, int] = {}
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def url(self, name: str) -> str:
        return f"ws://127.0.0.1:{self.ports[name]}"

    def __enter__(self) -> Venues:
        self._thread.start()
        assert self._ready.wait(20)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(10)

    def _ms(self) -> int:
        return int(self.clock() * 1000)

    async def _clob(self, ws: Any) -> None:
        sub = json.loads(await ws.recv())
        self.subscriptions.append(sub)
        sent_resolutions: set[str] = set()
        try:
            while not self._stop.is_set():
                events = []
                for token in sub.get("assets_ids", []):
                    book = self.books.get(token)
                    if book is None:
                        continue
                    events.append(
                        {
                            "event_type": "book",
                            "asset_id": token,
                            "market": book["market"],
                            "timestamp": str(self._ms()),
                            "bids": [{"price": str(p), "size": str(s)} for p, s in book["bids"]],
                            "asks": [{"price": str(p), "size": str(s)} for p, s in book["asks"]],
                        }
                    )
                    cid = book["market"]
                    if (
                        cid in self.resolved
                        and cid not in sent_resolutions
                        and sub.get("custom_feature_enabled")
                    ):
                        sent_resolutions.add(cid)
                        events.append(
                            {
                                "event_type": "market_resolved",
                                "id": "1",
                                "market": cid,
                                "assets_ids": [token],
                                "winning_asset_id": self.resolved[cid],
                                "winning_outcome": "Up" if self.resolved[cid] == token else "Down",
                                "timestamp": str(self._ms()),
                            }
                        )
                if events:
                    await ws.send(json.dumps(events))
                await asyncio.sleep(0.05)
        except websockets.ConnectionClosed:
            pass

    async def _binance(self, ws: Any) -> None:
        try:
            while not self._stop.is_set():
                if self.futures_alive.is_set():
                    ms = self._ms()
                    trade = {
                        "e": "aggTrade",
                        "E": ms,
                        "s": "BTCUSDT",
                        "p": "91000.5",
                        "q": "0.01",
                        "T": ms,
                        "m": False,
                    }
                    await ws.send(json.dumps({"stream": "btcusdt@aggTrade", "data": trade}))
                await asyncio.sleep(0.05)
        except websockets.ConnectionClosed:
            pass

    async def _okx(self, ws: Any) -> None:
        self.okx_connects += 1
        await ws.recv()  # the subscription
        try:
            while not self._stop.is_set():
                if self.okx_alive.is_set():
                    row = {
                        "instId": "BTC-USDT-SWAP",
                        "px": "91001",
                        "sz": "2",
                        "side": "buy",
                        "ts": str(self._ms()),
                    }
                    await ws.send(
                        json.dumps({"arg": {"channel": "trades", "instId": "BTC-USDT-SWAP"}, "data": [row]})
                    )
                await asyncio.sleep(0.05)
        except websockets.ConnectionClosed:
            pass

    async def _main(self) -> None:
        servers = {
            "clob": await websockets.serve(self._clob, "127.0.0.1", 0),
            "binance": await websockets.serve(self._binance, "127.0.0.1", 0),
            "okx": await websockets.serve(self._okx, "127.0.0.1", 0),
        }
        for name, srv in servers.items():
            self.ports[name] = srv.sockets[0].getsockname()[1]
        self._ready.set()
        while not self._stop.is_set():
            await asyncio.sleep(0.05)
        for srv in servers.values():
            srv.close()
