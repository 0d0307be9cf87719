"""The live-feed worker (paper fills) over real local websocket servers speaking the venues' shapes."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import websockets

from stratforge.trader.markets.messages import MarketInfo
from stratforge.trader.storage import Store
from stratforge.trader.worker import WorkerConfig, run_live

UP, DOWN = "111", "222"


class AlwaysUp:
    def action_probs(self, features, history=None):
        return np.tile(np.array([0.0, 1.0, 0.0], dtype=np.float32), (len(np.atleast_2d(features)), 1))


def _serve(stop: threading.Event, ports: dict) -> None:
    async def clob(ws):
        sub = json.loads(await ws.recv())
        ports["subscribed"] = sub["assets_ids"]
        while not stop.is_set():
            ms = str(int(time.time() * 1000))
            book = {"event_type": "book", "asset_id": UP, "market": "0xc", "timestamp": ms,
                    "bids": [{"price": "0.48", "size": "500"}, {"price": "0.49", "size": "200"}],
                    "asks": [{"price": "0.52", "size": "200"}, {"price": "0.51", "size": "300"}]}  # fmt: skip
            await ws.send(json.dumps([book]))
            await asyncio.sleep(0.1)

    async def binance(ws):
        while not stop.is_set():
            ms = int(time.time() * 1000)
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

    async def main():
        a = await websockets.serve(clob, "127.0.0.1", 0)
        b = await websockets.serve(binance, "127.0.0.1", 0)
        ports["clob"] = a.sockets[0].getsockname()[1]
        ports["binance"] = b.sockets[0].getsockname()[1]
        ports["ready"].set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        a.close()
        b.close()

    asyncio.run(main())


def test_paper_on_live_feeds(tmp_path: Path) -> None:
    stop_servers = threading.Event()
    ports: dict = {"ready": threading.Event()}
    threading.Thread(target=_serve, args=(stop_servers, ports), daemon=True).start()
    assert ports["ready"].wait(60)
    start = time.time() - 60
    market = MarketInfo("BTC", start, "0xc", UP, DOWN)
    stop = threading.Event()
    cfg = WorkerConfig(mode="paper", data_dir=tmp_path, tick_s=0.2, safety_interval_s=0.2, health_port=None)
    result: dict = {}

    def worker():
        result["id"] = run_live(
            cfg,
            AlwaysUp(),
            stop=stop,
            clob_ws_url=f"ws://127.0.0.1:{ports['clob']}",
            futures_ws_url=f"ws://127.0.0.1:{ports['binance']}",
            assets=("BTC",),
            discover_fn=lambda assets, now: [market],
        )

    t = threading.Thread(target=worker)
    t.start()
    store = Store(data_dir=tmp_path)
    deadline = time.time() + 120  # an upper bound only: the loop ends as soon as a trade is stored
    while time.time() < deadline and not store.trades():
        time.sleep(0.2)
    stop.set()
    t.join(30)
    stop_servers.set()
    assert not t.is_alive()
    assert ports["subscribed"] == [UP, DOWN]
    (trade,) = store.trades(result["id"])
    # Bought UP at the live asks (0.51 first), then closed on shutdown into the live bids.
    assert trade.side == "UP" and 0.51 <= trade.entry_price <= 0.52
    assert trade.status == "closed" and trade.exit_reason == "shutdown"
    assert trade.exit_price == pytest.approx(0.49)
    sess = store.get_session(result["id"])
    assert (sess.mode, sess.source, sess.status) == ("paper", "live", "stopped")
