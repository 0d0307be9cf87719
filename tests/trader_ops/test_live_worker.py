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

from stratforge.trader.live_runner import run_live
from stratforge.trader.markets.messages import MarketInfo
from stratforge.trader.storage import Store
from stratforge.trader.worker import WorkerConfig

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
    deadline = time.time() + 600  # an upper bound only: the loop ends as soon as a trade is stored
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


# -- CLOB V2 live trading, settlement and feed health against local venues ---------------------------
import httpx  # noqa: E402

from stratforge.trader.live.discovery import DiscoveryConfig  # noqa: E402
from stratforge.trader.safety import SafetyConfig  # noqa: E402
from trader_ops.clob_v2 import FakeClobV2, Market  # noqa: E402
from trader_ops.conftest import free_port  # noqa: E402
from trader_ops.httpserver import LocalServer  # noqa: E402
from trader_ops.venue_ws import ManualClock, Venues  # noqa: E402

W0 = 1767600000  # a window start
CID = "0x" + "ab" * 32
BOOK = {"market": CID, "bids": [(0.49, 200.0), (0.48, 500.0)], "asks": [(0.51, 10.0), (0.52, 300.0)]}


def wait_for(cond, what: str, timeout: float = 600.0):
    """Poll ``cond`` until it returns something truthy; generous deadline, never a timing assertion."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


class Worker:
    """``run_live`` in a thread; ``stop()`` ends it and returns the session id."""

    def __init__(self, cfg: WorkerConfig, **kw) -> None:
        self.stop_event = threading.Event()
        self.result: dict = {}

        def main() -> None:
            try:
                self.result["id"] = run_live(cfg, AlwaysUp(), stop=self.stop_event, **kw)
            except BaseException as exc:  # surfaced by stop()
                self.result["error"] = exc

        self.thread = threading.Thread(target=main)
        self.thread.start()

    def stop(self) -> str:
        self.stop_event.set()
        self.thread.join(60)
        assert not self.thread.is_alive()
        if "error" in self.result:
            raise self.result["error"]
        return self.result["id"]


def _market() -> MarketInfo:
    return MarketInfo("BTC", W0, CID, UP, DOWN)


def _cfg(tmp_path: Path, mode: str = "paper", **kw) -> WorkerConfig:
    return WorkerConfig(
        mode=mode, data_dir=tmp_path, tick_s=0.05, sizing="fixed", trade_size=10.0,
        safety=SafetyConfig(max_age_s=1e6), feed_stale_s=kw.pop("feed_stale_s", 1e9), **kw,
    )  # fmt: skip


def test_live_v2_round_trip_failed_sell_kept_then_resolution_settles(tmp_path: Path) -> None:
    from stratforge.trader.live.executor import LiveExecution, LiveExecutor
    from trader_ops.test_executor import env

    clock = ManualClock(W0 + 100.0)
    venue_market = Market(CID, UP, DOWN, f"btc-updown-15m-{W0}")
    venue_market.asks[UP] = [[0.51, 10.0], [0.52, 300.0]]  # the venue matches buys ...
    venue_market.bids[UP] = []  # ... but nobody takes our sell
    clob = FakeClobV2([venue_market], balance=100.0)
    with Venues(clock, {UP: BOOK}) as venues, LocalServer(clob) as rest:
        executor = LiveExecutor.from_env(env(rest.url), limit_wait_s=0.2, poll_s=0.05)
        executor.check_ready(10.0)
        worker = Worker(
            _cfg(tmp_path, mode="live"),
            execution=LiveExecution(executor),
            clob_ws_url=venues.url("clob"),
            futures_ws_url=venues.url("binance"),
            assets=("BTC",),
            discover_fn=lambda assets, now: [_market()],
            outcome_fn=lambda m: None,  # only the websocket's market_resolved settles here
            clock=clock,
        )
        store = Store(data_dir=tmp_path)
        try:
            # 1. An entry: a V2 FOK order filled at the venue's matched prices.
            (trade,) = wait_for(lambda: store.trades(), "an entry")
            assert trade.side == "UP" and trade.status == "open"
            shares_traded = 10 + (10.0 - 5.1) / 0.52
            assert trade.entry_price == pytest.approx(10.0 / shares_traded, rel=1e-4)  # not the 0.54 limit
            assert trade.size_dollars == pytest.approx(10.0, abs=1e-3)
            assert trade.shares < shares_traded and trade.entry_fee > 0  # V2 buy fee taken in shares
            assert [d["orderType"] for d in clob.posted] == ["FOK"]
            # 2. The window-end rule fires (< 180 s left); the sell finds no buyer: the position stays.
            clock.t = W0 + 900 - 170
            wait_for(
                lambda: any("could not close" in e.message for e in store.health_events()), "failed exit"
            )
            assert [t.status for t in store.trades()] == ["open"]
            assert [d["orderType"] for d in clob.posted[1:3]] == ["FOK", "GTC"]
            assert clob.cancelled  # the unfilled limit sell was cancelled
            # 3. The window ends unresolved: still open. Then the venue says UP won: settled at 1.
            clock.t = W0 + 905
            time.sleep(0.5)
            assert [t.status for t in store.trades()] == ["open"]
            venues.resolved[CID] = UP
            (done,) = wait_for(lambda: store.trades(status="closed"), "settlement")
            assert done.exit_reason == "settlement" and done.exit_price == 1.0
            assert done.pnl == pytest.approx(done.shares - done.size_dollars)
            wait_for(lambda: any("pending redemption" in e.message for e in store.health_events()), "redeem")
            # 4. The settled market is dropped from the subscription.
            wait_for(lambda: venues.subscriptions[-1]["assets_ids"] == [], "unsubscribe")
            assert venues.subscriptions[0] == {
                "assets_ids": [UP, DOWN], "type": "market", "custom_feature_enabled": True,
            }  # fmt: skip
        finally:
            session_id = worker.stop()
    sess = store.get_session(session_id)
    assert sess.mode == "live" and sess.trade_count == 1 and sess.total_pnl == pytest.approx(done.pnl)
    assert any(a.alert_type == "error" and "pending redemption" in str(a.payload) for a in store.alerts())


def test_resolution_by_polling_the_clob_when_the_socket_misses_it(tmp_path: Path) -> None:
    clock = ManualClock(W0 + 100.0)
    venue_market = Market(CID, UP, DOWN, f"btc-updown-15m-{W0}")
    clob = FakeClobV2([venue_market])
    with Venues(clock, {UP: BOOK}) as venues, LocalServer(clob) as rest:
        worker = Worker(
            _cfg(tmp_path),
            clob_ws_url=venues.url("clob"),
            futures_ws_url=venues.url("binance"),
            assets=("BTC",),
            discover_fn=lambda assets, now: [_market()],
            discovery=DiscoveryConfig(gamma_url=rest.url, clob_url=rest.url),
            resolution_poll_s=0.0,
            clock=clock,
        )
        store = Store(data_dir=tmp_path)
        try:
            wait_for(lambda: store.trades(), "an entry")
            clock.t = W0 + 901  # past the window; the position is still open (no exit before the end)
            time.sleep(0.3)
            assert [t.status for t in store.trades()] == ["open"]  # not resolved yet
            venue_market.winner = DOWN  # GET /markets/{id} now shows the winner
            (done,) = wait_for(lambda: store.trades(status="closed"), "settlement by poll")
        finally:
            worker.stop()
    assert done.exit_reason == "settlement" and done.exit_price == 0.0
    assert done.pnl == pytest.approx(-done.size_dollars)


def test_dead_futures_feed_degrades_health_and_blocks_entries(tmp_path: Path) -> None:
    clock = ManualClock(W0 + 100.0)
    port = free_port()
    with Venues(clock, {UP: BOOK}) as venues:
        venues.futures_alive.clear()  # Binance never says a word
        worker = Worker(
            _cfg(tmp_path, feed_stale_s=30.0, futures="binance", health_port=port),
            clob_ws_url=venues.url("clob"),
            futures_ws_url=venues.url("binance"),
            assets=("BTC",),
            discover_fn=lambda assets, now: [_market()],
            outcome_fn=lambda m: None,
            clock=clock,
        )
        store = Store(data_dir=tmp_path)
        try:

            def health() -> dict | None:
                try:
                    return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
                except (httpx.HTTPError, ValueError):
                    return None

            first = wait_for(health, "the health endpoint")
            assert first["components"]["feed:futures"] == "starting"  # no message yet: no entries
            clock.t += 31  # 31 s of silence on the futures feed (the book feed keeps talking)

            def futures_only_stale() -> dict | None:
                h = health()
                c = (h or {}).get("components", {})
                return h if c.get("feed:futures") == "stale" and c.get("feed:clob") == "ok" else None

            doc = wait_for(futures_only_stale, "a stale futures feed")
            assert doc["status"] == "degraded" and doc["components"]["feeds"] == "degraded"
            wait_for(lambda: any("futures feed stale" in str(a.payload) for a in store.alerts()), "alert")
            time.sleep(0.5)
            assert store.trades() == []  # no entry on a dead feed (the policy wants to buy every tick)
            venues.futures_alive.set()  # the feed comes back: ok again, entries resume
            wait_for(lambda: (h := health()) and h["status"] == "ok", "recovery")
            wait_for(lambda: store.trades(), "an entry after recovery")
        finally:
            worker.stop()
    assert any(e.message == "futures feed recovered" for e in store.health_events())


def test_okx_takes_over_when_binance_goes_silent(tmp_path: Path) -> None:
    clock = ManualClock(W0 + 100.0)
    with Venues(clock, {UP: BOOK}) as venues:
        venues.futures_alive.clear()
        worker = Worker(
            _cfg(tmp_path, feed_stale_s=30.0, futures="auto"),
            clob_ws_url=venues.url("clob"),
            futures_ws_url=venues.url("binance"),
            okx_ws_url=venues.url("okx"),
            assets=("BTC",),
            discover_fn=lambda assets, now: [_market()],
            outcome_fn=lambda m: None,
            clock=clock,
        )
        store = Store(data_dir=tmp_path)
        try:
            time.sleep(0.5)
            clock.t += 31
            wait_for(lambda: venues.okx_connects >= 1, "an OKX connection")
            wait_for(
                lambda: any("failed over to OKX" in e.message for e in store.health_events()), "failover"
            )
            wait_for(lambda: store.trades(), "an entry on OKX futures data")
        finally:
            worker.stop()
