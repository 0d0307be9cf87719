"""Paper trading on a replay file: the decision engine driven by the replay's own clock.

One tick of the loop: apply the replay's messages up to ``t`` to the feed state, hand the engine the
recorded outcome of every market that waits for one, tick the engine (settle, safety, features,
decision, fills, journal). A killed run resumes from its checkpoint: the feed is re-applied up to
the cursor and the loop continues with the next tick, so the trades equal an uninterrupted run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from stratforge.trader.engine import DecisionEngine, Learner, Policy
from stratforge.trader.env import FeedState, settle_outcome
from stratforge.trader.execution import PaperExecution
from stratforge.trader.health import HealthServer
from stratforge.trader.markets.session import Session
from stratforge.trader.safety import SHUTDOWN
from stratforge.trader.snapshot import build_snapshot
from stratforge.trader.storage import Store
from stratforge.trader.worker import RunResult, WorkerConfig, start_worker, summarize

log = logging.getLogger("stratforge.trader.replay_runner")

def replay_ticks(
    engine: DecisionEngine,
    feed: FeedState,
    session: Session,
    start: float,
    tick_s: float,
    stop: threading.Event | None = None,
    on_tick: Callable[[float], None] | None = None,
) -> float:
    """Tick ``engine`` from ``start`` every ``tick_s`` until one tick past the last window end.

    Outcomes (`env.settle_outcome`, the one rule for training, evaluation and replays): the venue's
    ``market_resolved`` events in the replay win (the engine sees them through the feed state); a
    recorded ``meta`` resolution is next (as a poll of the market is live); without either the
    futures price decides, flagged ``futures_fallback`` in the trade's exit. Returns the time of the
    last tick.
    """
    # Run until the last window has ended and the venue's last recorded resolution has arrived.
    end = max(
        [m.window_end for m in session.markets]
        + [r.ts for m in session.markets if (r := session.venue_resolution(m.condition_id))]
    )
    t = start
    last = start
    while t <= end + tick_s and not (stop is not None and stop.is_set()):
        feed.advance(t)
        for m in engine.awaiting_outcome(t):
            if m.condition_id in feed.resolved:
                continue
            outcome = settle_outcome(m, session, feed, wait=True)
            if outcome is not None:
                engine.resolve(m.condition_id, outcome[0], outcome[3])
        engine.tick(t)
        if on_tick is not None:
            on_tick(t)
        last = t
        t += tick_s
    return last


def run_replay(
    cfg: WorkerConfig,
    session: Session,
    policy: Policy,
    store: Store | None = None,
    progress: Callable[[float, float], None] | None = None,
    stop: threading.Event | None = None,
    agent: Learner | None = None,
) -> RunResult:
    """Paper-trade ``session`` (resuming a crashed run of the same replay file) and record it."""
    if cfg.mode != "paper":
        raise ValueError("replays run in paper mode only")
    store = store or Store(cfg.database_url, cfg.data_dir)
    source = str(cfg.replay.resolve()) if cfg.replay else "replay"
    stop = stop or threading.Event()
    feed = FeedState(session)
    worker = start_worker(
        cfg, store, source, policy, PaperExecution(cfg.broker), feed, session.markets, learner=agent,
        session_config={"tick_s": cfg.tick_s, "explore": cfg.explore, "learn": cfg.learn},
    )  # fmt: skip
    engine, journal = worker.engine, worker.journal
    first = min(m.window_start for m in session.markets)
    last_end = max(m.window_end for m in session.markets)
    start = first if worker.checkpoint is None else worker.checkpoint.cursor + cfg.tick_s
    restored = len(engine.positions) if worker.resumed else 0
    last_tick: list[float | None] = [None]
    server = None
    if cfg.health_port is not None:
        server = HealthServer(
            lambda: build_snapshot(
                engine,
                store,
                worker.session.id,
                cfg.mode,
                cfg.model_version,
                worker.alerter,
                last_tick=last_tick[0],
            ),  # fmt: skip
            host="0.0.0.0",
            port=cfg.health_port,
        ).start()
        log.info("health server on %s", server.url)

    def on_tick(t: float) -> None:
        last_tick[0] = time.time()
        if progress is not None:
            progress(t - first, last_end - first)
        if cfg.pace_s > 0:
            time.sleep(cfg.pace_s)

    try:
        replay_ticks(engine, feed, session, start, cfg.tick_s, stop, on_tick)
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
