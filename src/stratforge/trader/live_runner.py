"""Trading on live feeds: the decision engine driven by the wall clock.

Threads: the feeds (CLOB market channel, Binance futures or the OKX fallback) run on a background
event loop and push parsed messages into a queue; the main loop, once per tick:

1. drains the queue into the feed state (nothing else keeps messages: memory stays flat);
2. checks feed health (a silent feed is ``stale``: health degraded, one alert, no entries) and, in
   ``auto`` futures mode, fails over from Binance to OKX when Binance goes silent;
3. hands the engine the outcome of markets that wait for one (``market_resolved`` arrives through
   the feed state; a poll of the CLOB market is the fallback);
4. ticks the engine (settle, safety, features, decision, orders, journal);
5. rediscovers markets every ``rediscover_s`` and makes the CLOB subscription follow the markets the
   engine still trades (ended and settled markets are unsubscribed).

``cfg.mode`` "live" sends orders to the venue (CLOB V2); "paper" fills them with the paper broker
against the live books.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from stratforge.trader.engine import DecisionEngine, Policy
from stratforge.trader.env import FeedState
from stratforge.trader.execution import Execution, PaperExecution
from stratforge.trader.feed_health import OK, STALE, FeedHealth
from stratforge.trader.live.discovery import DiscoveryConfig, discover, fetch_market, fetch_outcome
from stratforge.trader.live.feeds import BinanceFuturesFeed, ClobMarketFeed, OkxSwapFeed
from stratforge.trader.markets.messages import SYMBOLS, MarketInfo, Message, from_raw
from stratforge.trader.markets.session import Session
from stratforge.trader.safety import SHUTDOWN
from stratforge.trader.storage import Store
from stratforge.trader.worker import WorkerConfig, serve_health, start_worker

log = logging.getLogger("stratforge.trader.live_runner")

POLLED = "clob_poll"
MAX_QUEUE = 200_000  # messages between two ticks; beyond this the oldest are dropped (and counted)


class LiveFeeds:
    """The websocket feeds on a background event loop, feeding one bounded queue."""

    def __init__(
        self,
        assets: tuple[str, ...],
        tokens: list[str],
        futures: str,
        clob_ws_url: str | None,
        futures_ws_url: str | None,
        okx_ws_url: str | None,
        health: FeedHealth,
    ) -> None:
        """``tokens``: what the CLOB feed subscribes to when it first connects (see :meth:`follow`)."""
        self.symbols = [SYMBOLS[a] for a in assets]
        self.health = health
        self.queue: deque[Message] = deque(maxlen=MAX_QUEUE)
        self.received = 0
        self.clob = ClobMarketFeed(tokens, **({"url": clob_ws_url} if clob_ws_url else {}))
        self.futures_mode = futures
        self._futures_urls = {"binance": futures_ws_url, "okx": okx_ws_url}
        self.futures_name = "okx" if futures == "okx" else "binance"
        self.futures = self._futures_feed(self.futures_name)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="feeds", daemon=True)
        self._tasks: dict[str, Any] = {}

    def _futures_feed(self, name: str) -> BinanceFuturesFeed | OkxSwapFeed:
        url = self._futures_urls[name]
        kw = {"url": url} if url else {}
        return (
            BinanceFuturesFeed(self.symbols, **kw) if name == "binance" else OkxSwapFeed(self.symbols, **kw)
        )

    def start(self) -> LiveFeeds:
        self._thread.start()
        self._tasks["clob"] = asyncio.run_coroutine_threadsafe(self._pump("clob", self.clob), self.loop)
        self._tasks["futures"] = asyncio.run_coroutine_threadsafe(
            self._pump("futures", self.futures), self.loop
        )
        return self

    async def _pump(self, name: str, feed: AsyncIterator[tuple[str, dict[str, Any]]]) -> None:
        async for src, raw in feed:
            self.health.seen(name)
            for msg in from_raw(src, raw):
                self.queue.append(msg)
                self.received += 1

    def drain(self) -> list[Message]:
        out = []
        q = self.queue
        while q:
            out.append(q.popleft())
        return out

    def follow(self, tokens: list[str]) -> bool:
        """Subscribe the CLOB feed to exactly ``tokens`` (reconnects only when the list changed)."""
        changed = asyncio.run_coroutine_threadsafe(self.clob.set_assets(tokens), self.loop).result(10)
        if changed:
            self.health.reset("clob")
        return changed

    def fail_over(self) -> bool:
        """Binance went silent: replace it with OKX (auto mode only; once). True when switched."""
        if self.futures_mode != "auto" or self.futures_name == "okx":
            return False
        old = self.futures
        old.close()
        self._tasks["futures"].cancel()
        asyncio.run_coroutine_threadsafe(old.reconnect(), self.loop)
        self.futures_name = "okx"
        self.futures = self._futures_feed("okx")
        self.health.reset("futures")
        self._tasks["futures"] = asyncio.run_coroutine_threadsafe(
            self._pump("futures", self.futures), self.loop
        )
        return True

    def stop(self) -> None:
        self.clob.close()
        self.futures.close()

        async def cancel_all() -> None:
            current = asyncio.current_task()
            pending = [t for t in asyncio.all_tasks() if t is not current]
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(timeout=10)
        except Exception:
            log.warning("feed tasks did not stop cleanly", exc_info=True)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


def run_live(
    cfg: WorkerConfig,
    policy: Policy,
    store: Store | None = None,
    stop: threading.Event | None = None,
    execution: Execution | None = None,
    discovery: DiscoveryConfig | None = None,
    clob_ws_url: str | None = None,
    futures_ws_url: str | None = None,
    okx_ws_url: str | None = None,
    assets: tuple[str, ...] = ("BTC", "ETH", "SOL", "XRP"),
    rediscover_s: float = 60.0,
    resolution_poll_s: float = 30.0,
    discover_fn: Callable[[list[str], float], list[MarketInfo]] | None = None,
    outcome_fn: Callable[[MarketInfo], bool | None] | None = None,
    clock: Callable[[], float] = time.time,
) -> str:
    """Trade on live feeds until ``stop`` is set; returns the session id.

    ``execution`` defaults to the paper broker (``cfg.mode`` "paper"); live mode must pass the venue
    execution (the CLI builds it from the environment after checking balance and allowance).
    """
    if cfg.mode == "live" and execution is None:
        raise ValueError("live mode needs the venue execution (see stratforge.trader.live.executor)")
    execution = execution or PaperExecution(cfg.broker)
    stop = stop or threading.Event()
    store = store or Store(cfg.database_url, cfg.data_dir)
    dcfg = discovery or DiscoveryConfig()

    def find(now: float) -> list[MarketInfo]:
        return discover_fn(list(assets), now) if discover_fn else discover(list(assets), now, dcfg)

    def outcome_of(m: MarketInfo) -> bool | None:
        return outcome_fn(m) if outcome_fn else fetch_outcome(m, dcfg)

    feed = FeedState(Session(markets=[], messages=[]))
    worker = start_worker(
        cfg, store, "live", policy, execution, feed, find(clock()),
        find_market=lambda cid: fetch_market(cid, dcfg),
    )  # fmt: skip
    engine = worker.engine
    health = FeedHealth(["clob", "futures"], stale_after_s=cfg.feed_stale_s, clock=clock)
    # the first connection subscribes to the discovered markets already (not to an empty list first)
    tokens = subscribed_tokens(engine)
    feeds = LiveFeeds(assets, tokens, cfg.futures, clob_ws_url, futures_ws_url, okx_ws_url, health).start()
    last_tick: list[float | None] = [None]
    server = None
    if cfg.health_port:
        server = serve_health(worker, cfg, store, lambda: last_tick[0], feeds=health.status)
    last_discovery = last_poll = clock()
    try:
        while not stop.is_set():
            now = clock()
            for msg in feeds.drain():
                feed.apply(msg)
            check_feeds(engine, feeds, health, worker.journal, store, worker.session.id)
            if now - last_poll >= resolution_poll_s:
                last_poll = now
                for m in engine.awaiting_outcome(now):
                    if m.condition_id not in feed.resolved:
                        up_wins = outcome_of(m)
                        if up_wins is not None:
                            engine.resolve(m.condition_id, up_wins, POLLED)
            engine.tick(now)
            last_tick[0] = time.time()
            if now - last_discovery >= rediscover_s:
                last_discovery = now
                for m in find(now):
                    engine.add_market(m)
            feeds.follow(subscribed_tokens(engine))
            stop.wait(cfg.tick_s)
    finally:
        closed = engine.close_all(SHUTDOWN)
        log.warning("live shutdown: closed %d positions, %d still open", closed, len(engine.positions))
        if engine.positions:
            worker.alerter.error(f"shutdown left {len(engine.positions)} positions open (sells failed)")
        worker.journal.flush(engine, final=True)
        store.end_session(worker.session.id, "stopped")
        feeds.stop()
        if server is not None:
            server.stop()
        worker.alerter.close(timeout=5)
    return worker.session.id


def subscribed_tokens(engine: DecisionEngine) -> list[str]:
    """Both tokens of every market the engine still trades or holds (ordered by window)."""
    markets = sorted(engine.markets.values(), key=lambda m: (m.window_start, m.asset))
    return [t for m in markets for t in (m.up_token, m.down_token)]


def check_feeds(
    engine: DecisionEngine,
    feeds: LiveFeeds,
    health: FeedHealth,
    journal: Any,
    store: Store,
    session_id: str,
) -> None:
    """Feed health -> alerts, OKX failover, and the engine's entry block."""
    if not feeds.clob.asset_ids:
        health.seen("clob")  # nothing subscribed: silence is expected
    for name, old, new in health.check():
        if new == STALE:
            if name == "futures" and feeds.fail_over():
                journal.problem("feeds", "Binance futures feed silent: failed over to OKX")
                continue
            journal.problem("feeds", f"{name} feed stale: {health.problem()}; entries paused")
        elif new == OK and old == STALE:
            store.record_health("feeds", f"{name} feed recovered", level="info", session_id=session_id)
    engine.feed_problem = health.problem()
