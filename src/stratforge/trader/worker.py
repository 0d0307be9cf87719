"""The trading worker's shared parts: configuration, session start/resume, engine assembly, signals.

The worker is split by job (read in this order):

* :mod:`stratforge.trader.engine` -- the decision engine (one tick: settle, safety, features, policy,
  sizing, orders); the same code for replays, live feeds, backtests and evaluation;
* :mod:`stratforge.trader.positions` -- the one ``Position`` type and the position book;
* :mod:`stratforge.trader.execution` -- paper fills; :mod:`stratforge.trader.live.executor` -- CLOB V2;
* :mod:`stratforge.trader.journal` -- trades + checkpoint + metrics committed per tick, alerts after;
* :mod:`stratforge.trader.checkpoint` -- what a restart restores;
* :mod:`stratforge.trader.snapshot` / :mod:`stratforge.trader.health` -- health and dashboard;
* :mod:`stratforge.trader.replay_runner` / :mod:`stratforge.trader.live_runner` -- the loops;
* :mod:`stratforge.trader.redaction` -- secrets never reach the logs.

Every trade open/close is committed together with the recovery checkpoint, so a worker killed at any
instant resumes exactly where its last commit left it: open positions come back from the ``trades``
table, nothing is lost and nothing is opened twice (trade keys are unique per session).
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stratforge.trader.alerts import Alerter
from stratforge.trader.broker import BrokerConfig
from stratforge.trader.checkpoint import Checkpoint
from stratforge.trader.engine import DecisionEngine, EngineConfig, Learner, Policy, inference_policy
from stratforge.trader.env import FeedState
from stratforge.trader.execution import Execution
from stratforge.trader.health import HealthServer
from stratforge.trader.journal import StoreJournal, position_from_row
from stratforge.trader.markets.messages import MarketInfo
from stratforge.trader.safety import Safety, SafetyConfig, kill_switch_path
from stratforge.trader.sizing import sizing_named
from stratforge.trader.snapshot import build_snapshot
from stratforge.trader.storage import Store, TradingSession

log = logging.getLogger("stratforge.trader.worker")


@dataclass
class WorkerConfig:
    mode: str = "paper"
    replay: Path | None = None
    data_dir: Path = Path("data")
    database_url: str | None = None
    trade_size: float = 10.0
    sizing: str = "confidence"  # or "fixed" (see stratforge.trader.sizing)
    tick_s: float = 5.0
    safety_interval_s: float = 10.0
    checkpoint_interval_s: float = 60.0  # a metric row (and checkpoint) at least this often
    explore: bool = False  # sample actions (seeded per market and tick) instead of the argmax
    learn: bool = False  # online PPO updates; the learned model is saved on shutdown
    pace_s: float = 0.0  # wall seconds to sleep per replay tick (demos, crash tests)
    health_port: int | None = None
    webhook_url: str | None = None
    model_version: str | None = None
    resume: bool = True
    futures: str = "auto"  # live: binance | okx | auto (Binance, OKX when Binance goes silent)
    feed_stale_s: float = 30.0  # live: a feed silent this long is stale (health degraded, no entries)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    broker: BrokerConfig = field(default_factory=BrokerConfig)

    def engine_config(self) -> EngineConfig:
        return EngineConfig(
            trade_size=self.trade_size,
            tick_s=self.tick_s,
            safety_interval_s=self.safety_interval_s,
            explore=self.explore,
            commit_each_fill=self.mode == "live",
            fees=self.broker.fees,
        )


@dataclass
class RunResult:
    session_id: str
    resumed: bool
    restored_positions: int
    trades: int
    open_positions: int
    pnl: float
    exit_reasons: dict[str, int]
    stopped_early: bool = False


@dataclass
class Worker:
    """A session's engine with the journal that records it and the alerter that reports it."""

    session: TradingSession
    resumed: bool
    engine: DecisionEngine
    journal: StoreJournal
    alerter: Alerter
    checkpoint: Checkpoint | None  # what the session resumed from (None for a new session)


def start_worker(
    cfg: WorkerConfig,
    store: Store,
    source: str,
    policy: Policy,
    execution: Execution,
    feed: FeedState,
    markets: list[MarketInfo] | Callable[[float | None], list[MarketInfo]],
    learner: Learner | None = None,
    session_config: dict[str, Any] | None = None,
    find_market: Callable[[str], MarketInfo | None] | None = None,
) -> Worker:
    """Resume the crashed session of ``source`` (or start one) and assemble its engine.

    On resume the checkpoint and the open trades are loaded; the caller replays the feed up to the
    checkpoint's cursor (replays) or simply continues (live feeds). ``markets`` may be a function of
    the checkpoint's cursor (None for a new session) for sources that must first be read up to it.
    ``find_market`` looks up the
    market of an open trade that is not in ``markets`` (live: its window may have passed while the
    worker was down; it must still settle).
    """
    row = store.find_resumable(cfg.mode, source) if cfg.resume else None
    resumed = row is not None
    if row is None:
        row = store.start_session(
            mode=cfg.mode,
            trade_size=cfg.trade_size,
            source=source,
            model_version=cfg.model_version,
            config=session_config,
        )
    checkpoint = Checkpoint.from_dict(row.checkpoint_data) if resumed and row.checkpoint_data else None
    alerter = Alerter(cfg.webhook_url, store, row.id).start()
    journal = StoreJournal(
        store,
        row.id,
        alerter,
        metric_interval_s=cfg.checkpoint_interval_s,
        clock_state=checkpoint.journal if checkpoint else None,
    )
    safety_cfg = dataclasses.replace(cfg.safety, kill_switch_file=kill_switch_path(cfg.data_dir))
    engine: DecisionEngine
    safety = Safety(safety_cfg, clock=lambda: engine.now)
    engine = DecisionEngine(
        cfg.engine_config(),
        policy if learner is not None else inference_policy(policy),
        execution,
        feed,
        safety,
        journal,
        name=row.id,
        sizing=sizing_named(cfg.sizing),
        learner=learner,
    )
    if callable(markets):
        markets = markets(checkpoint.cursor if checkpoint is not None else None)
    for m in markets:
        engine.add_market(m)
    if checkpoint is not None:
        known = {m.condition_id: m for m in markets}
        positions = []
        for trade in store.trades(row.id, status="open"):
            m = known.get(trade.condition_id) or (find_market(trade.condition_id) if find_market else None)
            if m is None:
                msg = f"open trade {trade.id} refers to unknown market {trade.condition_id}"
                log.error(msg)
                store.record_health("worker", msg, level="error", session_id=row.id)
                continue
            positions.append(position_from_row(trade, m))
        restored = engine.restore(checkpoint.engine, positions)
        msg = f"resumed session {row.id} with {restored} open positions"
        log.info(msg)
        store.record_health("worker", msg, level="warning", session_id=row.id, data={"restored": restored})
        alerter.recovery(msg, restored=restored)
    return Worker(row, resumed, engine, journal, alerter, checkpoint)


def serve_health(
    worker: Worker,
    cfg: WorkerConfig,
    store: Store,
    last_tick: Callable[[], float | None],
    feeds: Callable[[], dict[str, str]] | None = None,
) -> HealthServer:
    """The health/metrics/dashboard server of a running worker, on ``cfg.health_port``."""
    return HealthServer(
        lambda: build_snapshot(
            worker.engine, store, worker.session.id, cfg.mode, cfg.model_version, worker.alerter,
            feeds=None if feeds is None else feeds(), last_tick=last_tick(),
        ),  # fmt: skip
        host="0.0.0.0",
        port=cfg.health_port,
    ).start()


def install_signal_stop(stop: threading.Event) -> None:
    """SIGTERM/SIGINT set ``stop``: the loop then emergency-closes every position and exits cleanly."""

    def handler(signum: int, _frame: Any) -> None:
        log.warning("signal %d: stopping (positions will be closed)", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def summarize(store: Store, session_id: str, resumed: bool, restored: int, stopped: bool) -> RunResult:
    trades = store.trades(session_id)
    reasons: dict[str, int] = {}
    for tr in trades:
        if tr.status == "closed":
            reasons[tr.exit_reason or "?"] = reasons.get(tr.exit_reason or "?", 0) + 1
    sess = store.get_session(session_id)
    return RunResult(
        session_id,
        resumed,
        restored,
        sum(1 for tr in trades if tr.status == "closed"),
        sum(1 for tr in trades if tr.status == "open"),
        sess.total_pnl if sess else 0.0,
        reasons,
        stopped,
    )
