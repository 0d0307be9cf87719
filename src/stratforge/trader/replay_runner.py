"""Paper trading on a replay file: the decision engine driven by the replay's own clock.

One tick of the loop (:func:`replay_ticks`): apply the replay's messages up to ``t`` to the feed
state, hand the engine the recorded outcome of every market that waits for one, tick the engine
(settle, safety, features, decision, fills, journal). Files are streamed (:class:`FileSource`), so
memory does not grow with the replay's length. A killed run resumes from its checkpoint: the feed is
re-applied up to the cursor and the loop continues with the next tick, so the trades equal an
uninterrupted run.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from stratforge.trader.engine import DecisionEngine, Learner, Policy
from stratforge.trader.env import FUTURES_FALLBACK, RESOLUTION_PRICE, FeedState, futures_outcome
from stratforge.trader.execution import PaperExecution
from stratforge.trader.markets.messages import MarketInfo, Message, Resolution
from stratforge.trader.markets.replay import ReplayError, iter_messages
from stratforge.trader.markets.session import Session
from stratforge.trader.safety import SHUTDOWN
from stratforge.trader.storage import Store
from stratforge.trader.worker import RunResult, WorkerConfig, serve_health, start_worker, summarize

log = logging.getLogger("stratforge.trader.replay_runner")

RESOLUTION_GRACE_S = 600.0  # no resolution this long after a window: settle on the futures price


class MessageSource(Protocol):
    """Where a replay's messages come from: an in-memory session or a file read as time advances."""

    exhausted: bool  # no message left after the last pump
    last_end: float  # latest window end of the markets seen so far

    def pump(self, t: float, feed: FeedState) -> list[MarketInfo]:
        """Apply every message up to ``t`` to ``feed``; returns the markets first seen meanwhile."""
        ...

    def recorded(self, condition_id: str) -> Resolution | None:
        """The recorded (``meta``) resolution of a market, if the replay has one by now."""
        ...


class SessionSource:
    """A session already in memory (tests, A/B runs): every market is known from the start."""

    exhausted = True

    def __init__(self, session: Session) -> None:
        if not session.markets:
            raise ValueError("session has no markets")
        self.session = session
        self.markets = list(session.markets)
        self.start = min(m.window_start for m in session.markets)
        self.last_end = max(m.window_end for m in session.markets)

    def pump(self, t: float, feed: FeedState) -> list[MarketInfo]:
        feed.advance(t)
        return []

    def recorded(self, condition_id: str) -> Resolution | None:
        return self.session.resolutions.get(condition_id)


class FileSource:
    """A replay file streamed in receive order: only the current message is held, so a day-long
    replay runs in the memory of an hour (the messages' event times are normalised as
    :func:`~stratforge.trader.markets.replay.read_session` does: a missing time is the receive time,
    and times never go backwards)."""

    def __init__(self, path: Path) -> None:
        self._it: Iterator[tuple[float, Message]] = iter_messages(path)
        self._pending: tuple[float, Message] | None = None
        self._last_ts = -math.inf
        self._resolutions: dict[str, Resolution] = {}
        self.exhausted = False
        self.last_end = -math.inf
        self.markets: list[MarketInfo] = []  # the header: definitions before the first feed message
        self._new: list[MarketInfo] = []
        while True:
            nxt = self._read()
            if nxt is None or not isinstance(nxt[1], MarketInfo):
                self._pending = nxt
                break
            self._note_market(nxt[1])
        self._new = []
        if not self.markets:
            raise ReplayError(f"{path}: no market definitions (meta 'market' lines) at its start")
        self.start = min(m.window_start for m in self.markets)

    def _read(self) -> tuple[float, Message] | None:
        try:
            return next(self._it)
        except StopIteration:
            self.exhausted = True
            return None

    def _note_market(self, m: MarketInfo) -> None:
        self.markets.append(m)
        self._new.append(m)
        self.last_end = max(self.last_end, m.window_end)

    def pump(self, t: float, feed: FeedState) -> list[MarketInfo]:
        while True:
            item = self._pending if self._pending is not None else self._read()
            self._pending = None
            if item is None:
                break
            rt, m = item
            if rt > t:
                self._pending = item
                break
            if isinstance(m, MarketInfo):
                self._note_market(m)
                feed.add_market(m)
            elif isinstance(m, Resolution):
                self._resolutions[m.condition_id] = m
            else:
                if not m.ts:
                    m.ts = rt
                if m.ts < self._last_ts:
                    m.ts = self._last_ts
                self._last_ts = m.ts
                feed.apply(m)
        feed.now = t
        # Forget what is long over: resolutions after an hour, market definitions after a day.
        self.markets = [m for m in self.markets if m.window_end > t - 86400]
        for cid in [c for c, r in self._resolutions.items() if r.ts < t - 3600]:
            del self._resolutions[cid]
        new, self._new = self._new, []
        return new

    def recorded(self, condition_id: str) -> Resolution | None:
        return self._resolutions.get(condition_id)


def settle_waiting(
    engine: DecisionEngine, feed: FeedState, source: MessageSource, t: float, final: bool = False
) -> int:
    """Give the engine the outcome of every market that waits for one; returns how many.

    The venue's ``market_resolved`` (seen by the feed state: the engine reads it itself) wins; a
    recorded ``meta`` resolution (the resolution source's prices, as a poll of the market is live)
    is next; only when neither comes (``RESOLUTION_GRACE_S`` after the window, or the replay is
    over: ``final``) do the futures prices decide, flagged ``futures_fallback`` in the trade."""
    n = 0
    for m in engine.awaiting_outcome(t):
        if m.condition_id in feed.resolved:
            continue
        res = source.recorded(m.condition_id)
        if res is not None:
            engine.resolve(m.condition_id, res.up_wins, RESOLUTION_PRICE)
            n += 1
        elif final or t >= m.window_end + RESOLUTION_GRACE_S:
            up = futures_outcome(m, feed)
            if up is not None:
                engine.resolve(m.condition_id, up, FUTURES_FALLBACK)
                n += 1
    return n


def replay_ticks(
    engine: DecisionEngine,
    feed: FeedState,
    source: MessageSource,
    start: float,
    tick_s: float,
    stop: threading.Event | None = None,
    on_tick: Callable[[float], None] | None = None,
) -> float:
    """Tick ``engine`` from ``start`` every ``tick_s`` until one tick past the last window end.

    Per tick: the source's messages up to ``t`` -> feed state (new markets -> engine); outcomes of
    markets waiting for one, as the venue settles them (`settle_waiting`); then the engine's tick.
    Returns the time of the last tick.
    """
    t = last = start
    while not (stop is not None and stop.is_set()):
        for m in source.pump(t, feed):
            engine.add_market(m)
        ended = source.exhausted and t > source.last_end + tick_s + 1e-9
        if ended and not settle_waiting(engine, feed, source, t, final=True):
            break  # over, and nothing left to settle (a settled market needs this last tick)
        if not ended:
            settle_waiting(engine, feed, source, t)
        engine.tick(t)
        if on_tick is not None:
            on_tick(t)
        last = t
        t += tick_s
    return last


def run_replay(
    cfg: WorkerConfig,
    session: Session | Path,
    policy: Policy,
    store: Store | None = None,
    progress: Callable[[float, float], None] | None = None,
    stop: threading.Event | None = None,
    agent: Learner | None = None,
) -> RunResult:
    """Paper-trade a session in memory, or a replay file streamed from disk (``Path``), resuming a
    crashed run of the same replay file, and record it."""
    if cfg.mode != "paper":
        raise ValueError("replays run in paper mode only")
    store = store or Store(cfg.database_url, cfg.data_dir)
    name = str(cfg.replay.resolve()) if cfg.replay else "replay"
    stop = stop or threading.Event()
    if isinstance(session, Path):
        source: SessionSource | FileSource = FileSource(session)
        feed = FeedState(Session([], []))
    else:
        source = SessionSource(session)
        feed = FeedState(session)

    def markets_at(cursor: float | None) -> list[MarketInfo]:
        """The markets known at the checkpoint (a streamed file is fast-forwarded to it first)."""
        if cursor is not None and isinstance(source, FileSource):
            source.pump(cursor, feed)
        return list(source.markets)

    worker = start_worker(
        cfg, store, name, policy, PaperExecution(cfg.broker), feed, markets_at, learner=agent,
        session_config={"tick_s": cfg.tick_s, "explore": cfg.explore, "learn": cfg.learn},
    )  # fmt: skip
    engine, journal = worker.engine, worker.journal
    first, last_end = source.start, source.last_end
    start = first if worker.checkpoint is None else worker.checkpoint.cursor + cfg.tick_s
    restored = len(engine.positions) if worker.resumed else 0
    last_tick: list[float | None] = [None]
    server = None
    if cfg.health_port is not None:
        server = serve_health(worker, cfg, store, lambda: last_tick[0])
        log.info("health server on %s", server.url)

    def on_tick(t: float) -> None:
        last_tick[0] = time.time()
        if progress is not None:
            progress(t - first, max(source.last_end, last_end) - first)
        if cfg.pace_s > 0:
            time.sleep(cfg.pace_s)

    try:
        replay_ticks(engine, feed, source, start, cfg.tick_s, stop, on_tick)
        stopped_early = stop.is_set()
        if stopped_early:
            log.info("shutdown: emergency-closed %d positions", engine.close_all(SHUTDOWN))
        journal.flush(engine, final=True)
        if engine.positions:
            log.warning("%d positions still open at the end of the replay", len(engine.positions))
        store.end_session(worker.session.id, "stopped")
    finally:
        if server is not None:
            server.stop()
        worker.alerter.close(timeout=5)
    return summarize(store, worker.session.id, worker.resumed, restored, stopped_early)
