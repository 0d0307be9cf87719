"""The trading worker: feeds -> 18 features -> model -> safety -> paper broker or live executor -> store.

One :class:`Engine` holds the trading state (books, flows, histories, open positions, safety) and is
driven by a clock: the replay's event time in ``--replay`` runs, wall-clock time live. Every trade
open/close is committed together with the recovery checkpoint (replay cursor, safety counters, feature
histories), so a worker killed at any instant resumes exactly where its last commit left it: open
positions come back from the ``trades`` table, nothing is lost and nothing is opened twice (trade keys
are unique per session).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from stratforge.trader.alerts import Alerter
from stratforge.trader.broker import BrokerConfig, PaperBroker, Position
from stratforge.trader.env import FeedState
from stratforge.trader.features import HistoryWindow, MarketBook, PositionView, compute_features
from stratforge.trader.health import HealthServer, Snapshot
from stratforge.trader.markets.messages import SYMBOLS, MarketInfo
from stratforge.trader.markets.session import Session
from stratforge.trader.safety import (
    SETTLEMENT,
    SHUTDOWN,
    SIGNAL,
    Mark,
    Safety,
    SafetyConfig,
    kill_switch_path,
)
from stratforge.trader.safety import PositionView as SafetyPosition
from stratforge.trader.storage import Store

log = logging.getLogger("stratforge.trader.worker")

HOLD, BUY, SELL = 0, 1, 2
SECRET_ENV_NAMES = (
    "POLYMARKET_PRIVATE_KEY",
    "POLYMARKET_FUNDER_ADDRESS",
    "POLY_API_KEY",
    "POLY_API_SECRET",
    "POLY_API_PASSPHRASE",
    "DISCORD_WEBHOOK_URL",
    "DATABASE_URL",
)


# -- secrets never reach the logs ------------------------------------------------------------------
class RedactSecrets(logging.Filter):
    """Replaces credential values (and URL passwords) in log records with ``***``."""

    def __init__(self, env: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> None:
        super().__init__()
        env = os.environ if env is None else env
        values = {env[k] for k in SECRET_ENV_NAMES if env.get(k)} | {v for v in extra if v}
        # Also the password part of URLs such as postgresql://user:pass@host/db
        for v in list(values):
            m = re.match(r"^[a-z+]+://[^:/@]+:([^@]+)@", v)
            if m:
                values.add(m.group(1))
        self.secrets = sorted((v for v in values if len(v) >= 4), key=len, reverse=True)

    def redact(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = self.redact(record.getMessage())
            record.args = None
            if record.exc_info and not record.exc_text:
                record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            elif record.exc_text:
                record.exc_text = self.redact(record.exc_text)
        return True


def install_redaction(env: Mapping[str, str] | None = None) -> RedactSecrets:
    """Attach the filter to every root handler (filters on loggers do not see propagated records)."""
    filt = RedactSecrets(env)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in root.handlers:
        handler.addFilter(filt)
    return filt


# -- configuration ---------------------------------------------------------------------------------
@dataclass
class WorkerConfig:
    mode: str = "paper"
    replay: Path | None = None
    data_dir: Path = Path("data")
    database_url: str | None = None
    trade_size: float = 10.0
    tick_s: float = 5.0
    safety_interval_s: float = 10.0
    checkpoint_interval_s: float = 60.0
    explore: bool = False  # sample actions (seeded per market and tick) instead of the argmax
    learn: bool = False  # online PPO updates; the learned model is saved on shutdown
    pace_s: float = 0.0  # wall seconds to sleep per replay tick (demos, crash tests)
    health_port: int | None = None
    webhook_url: str | None = None
    model_version: str | None = None
    resume: bool = True
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    broker: BrokerConfig = field(default_factory=BrokerConfig)


@dataclass
class OpenPos:
    trade_id: str
    trade_key: str
    info: MarketInfo
    side: str  # "UP" | "DOWN"
    entry_time: float
    entry_price: float
    shares: float
    notional: float
    entry_fee: float


@dataclass
class ExecFill:
    shares: float = 0.0
    notional: float = 0.0
    fee: float = 0.0
    unfilled: float = 0.0
    error: str = ""

    @property
    def avg_price(self) -> float:
        return self.notional / self.shares if self.shares > 0 else 0.0


# -- execution back-ends ---------------------------------------------------------------------------
class PaperExecution:
    """Fills against the replayed/live book through the markets engineer's paper broker."""

    def __init__(self, cfg: BrokerConfig) -> None:
        self.broker = PaperBroker(cfg)

    def open(self, info: MarketInfo, token: str, usd: float, book: MarketBook, now: float) -> ExecFill:
        fill = self.broker.buy(info.condition_id, info.asset, token, usd, book.book, now)
        if fill.rejected:
            return ExecFill(error=fill.rejected)
        return ExecFill(fill.shares, fill.notional, fill.fee, fill.unfilled)

    def close(self, pos: OpenPos, book: MarketBook, now: float) -> ExecFill:
        fill, _ = self.broker.close(pos.info.condition_id, book.book, now)
        if fill.rejected:
            return ExecFill(error=fill.rejected)
        return ExecFill(fill.shares, fill.notional, fill.fee, fill.unfilled)

    def settle(self, pos: OpenPos, up_wins: bool, now: float) -> None:
        self.broker.settle(pos.info.condition_id, up_wins, now)

    def restore(self, pos: OpenPos) -> None:
        self.broker.positions[pos.info.condition_id] = Position(
            pos.info.condition_id,
            pos.info.asset,
            pos.side,
            pos.shares,
            pos.notional + pos.entry_fee,
            pos.entry_time,
            pos.entry_fee,
        )


class LiveExecution:
    """Orders through :class:`~stratforge.trader.live.executor.LiveExecutor` (FOK, limit fallback)."""

    def __init__(self, executor: Any, slippage: float = 0.03) -> None:
        self.executor = executor
        self.slippage = slippage

    def _book(self, book: MarketBook, token: str) -> Any:
        return book.book if token == "UP" else book.book.complement()

    def open(self, info: MarketInfo, token: str, usd: float, book: MarketBook, now: float) -> ExecFill:
        ask = self._book(book, token).best_ask()
        if ask is None:
            return ExecFill(error="empty book")
        token_id = info.up_token if token == "UP" else info.down_token
        res = self.executor.buy(token_id, usd, worst_price=min(ask + self.slippage, 0.99))
        if not res.ok:
            return ExecFill(error=res.error or "buy failed")
        return ExecFill(res.shares, res.dollars, 0.0, max(usd - res.dollars, 0.0))

    def close(self, pos: OpenPos, book: MarketBook, now: float) -> ExecFill:
        bid = self._book(book, pos.side).best_bid()
        token_id = pos.info.up_token if pos.side == "UP" else pos.info.down_token
        worst = max((bid if bid is not None else 0.02) - self.slippage, 0.01)
        res = self.executor.sell(token_id, pos.shares, worst_price=worst)
        if not res.ok:
            return ExecFill(error=res.error or "sell failed")
        return ExecFill(res.shares, res.dollars, 0.0, max(pos.shares - res.shares, 0.0))

    def settle(self, pos: OpenPos, up_wins: bool, now: float) -> None:
        pass  # resolved on-chain; redemption is outside the worker

    def restore(self, pos: OpenPos) -> None:
        pass  # the venue holds the shares


# -- the engine ------------------------------------------------------------------------------------
class Engine:
    """Trading state and rules; callers feed messages, then call :meth:`tick` with the current time."""

    def __init__(
        self,
        cfg: WorkerConfig,
        store: Store,
        session_row_id: str,
        policy: Any,
        execution: PaperExecution | LiveExecution,
        feed: FeedState,
        alerter: Alerter | None = None,
        agent: Any = None,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.session_id = session_row_id
        self.policy = _fast_inference(policy) if not cfg.learn else policy
        self.agent = agent
        self.execution = execution
        self.feed = feed
        self.alerter = alerter
        self.now = 0.0
        self.safety = Safety(
            SafetyConfig(**{**cfg.safety.__dict__, "kill_switch_file": kill_switch_path(cfg.data_dir)}),
            clock=lambda: self.now,
        )
        self.markets: dict[str, MarketInfo] = {m.condition_id: m for m in feed.session.markets}
        self.positions: dict[str, OpenPos] = {}
        self.histories: dict[str, HistoryWindow] = {}
        self.settled: set[str] = set()
        self.pending_reward: dict[str, float] = {}
        self.failed_exits: dict[str, str] = {}
        self.counters: dict[str, int] = {"ticks": 0, "entries_blocked": 0, "sell_failures": 0}
        self.trips: dict[str, int] = {}
        self.last_progress = time.time()
        self._last_safety = -math.inf
        self._last_checkpoint = -math.inf
        self._last_day = ""
        self._lock = threading.RLock()
        # Work of the current tick, committed in one transaction at its end (see Store.commit_tick).
        self._opens: list[dict[str, Any]] = []
        self._closes: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
        self._after_commit: list[Callable[[], Any]] = []
        self._metric: dict[str, Any] | None = None

    # -- checkpoint / recovery --------------------------------------------------------------------
    def checkpoint_data(self) -> dict[str, Any]:
        return {
            "cursor": self.now,
            "safety": self.safety.to_dict(),
            "settled": sorted(self.settled),
            "histories": {k: h.stacked().tolist() for k, h in self.histories.items()},
            "history_lens": {k: len(h._rows) for k, h in self.histories.items()},
            "last_safety": self._last_safety if math.isfinite(self._last_safety) else None,
            "counters": self.counters,
            "trips": self.trips,
            "failed_exits": self.failed_exits,
            "last_checkpoint": self._last_checkpoint if math.isfinite(self._last_checkpoint) else None,
            "last_day": self._last_day,
        }

    def restore(self, data: dict[str, Any]) -> int:
        """Load the checkpoint and the open trades; returns how many positions were restored."""
        self.now = float(data.get("cursor", 0.0))
        if data.get("safety"):
            self.safety.restore(data["safety"])
        self.settled = set(data.get("settled", []))
        lens = data.get("history_lens", {})
        for cid, rows in (data.get("histories") or {}).items():
            h = HistoryWindow()
            arr = np.asarray(rows, dtype=np.float32).reshape(h.length, h.n_features)
            n = int(lens.get(cid, h.length))
            for row in arr[h.length - n :]:
                h.push(row)
            self.histories[cid] = h
        if data.get("last_safety") is not None:
            self._last_safety = float(data["last_safety"])
        self.counters.update(data.get("counters", {}))
        self.trips.update(data.get("trips", {}))
        self.failed_exits.update(data.get("failed_exits", {}))
        if data.get("last_checkpoint") is not None:
            self._last_checkpoint = float(data["last_checkpoint"])
        self._last_day = data.get("last_day", "")
        restored = 0
        for row in self.store.trades(self.session_id, status="open"):
            info = self.markets.get(row.condition_id)
            if info is None:
                log.error("open trade %s refers to unknown market %s", row.id, row.condition_id)
                continue
            pos = OpenPos(
                row.id,
                row.trade_key,
                info,
                row.side,
                row.entry_time.timestamp(),
                row.entry_price,
                row.shares,
                row.size_dollars,
                row.entry_fee,
            )
            self.positions[info.condition_id] = pos
            self.execution.restore(pos)
            restored += 1
        return restored

    # -- main tick -----------------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """One decision tick at ``now`` (feed already advanced to ``now``), committed atomically."""
        with self._lock:
            self.now = now
            self.counters["ticks"] += 1
            self._settle_due(now)
            if now - self._last_safety >= self.cfg.safety_interval_s - 1e-9:
                self._last_safety = now
                self.run_safety(now)
            self._decide(now)
            if now - self._last_checkpoint >= self.cfg.checkpoint_interval_s - 1e-9:
                self._periodic(now)
            if self._opens or self._closes or self._metric is not None:
                self.commit()
            self.last_progress = time.time()

    def commit(self) -> None:
        """Write the pending opens/closes/metric with a checkpoint at ``now``, then send their alerts."""
        self.store.commit_tick(
            self.session_id, self.checkpoint_data(), self._opens, self._closes, self._metric
        )
        self._opens, self._closes, self._metric = [], [], None
        after, self._after_commit = self._after_commit, []
        for fn in after:
            fn()

    def active_markets(self, now: float) -> list[MarketInfo]:
        return [
            m
            for m in self.markets.values()
            if m.window_start <= now < m.window_end and m.condition_id not in self.settled
        ]

    def _decide(self, now: float) -> None:
        active = self.active_markets(now)
        if not active:
            return
        feats, hists = [], []
        for m in active:
            book = self.feed.books[m.condition_id]
            pos = self.positions.get(m.condition_id)
            view = PositionView()
            if pos is not None:
                view = PositionView(1 if pos.side == "UP" else -1, self._unrealized_roi(pos, book))
            flow = self.feed.flow(SYMBOLS.get(m.asset, m.asset + "USDT"))
            f = compute_features(flow, book, view, now, m.window_end)
            h = self.histories.setdefault(m.condition_id, HistoryWindow())
            feats.append(f)
            hists.append(h.push(f))
        fx, hx = np.stack(feats), np.stack(hists)
        learning = self.agent is not None and self.cfg.learn
        if learning:
            actions, logp, values = self.agent.act(fx, hx)
            probs = None
        else:
            probs = np.asarray(self.policy.action_probs(fx, hx), dtype=np.float64)
            actions = self._choose(probs, active, now)
        for i, m in enumerate(active):
            p = None if probs is None else [round(float(x), 6) for x in probs[i]]
            self._act(m, int(actions[i]), p, feats[i], now)
        if learning:
            # Reward of each action is the PnL it realised by the next tick (closes and settlements).
            rewards = [self.pending_reward.pop(m.condition_id, 0.0) for m in active]
            dones = [now + self.cfg.tick_s >= m.window_end for m in active]
            self.agent.record([m.condition_id for m in active], fx, hx, actions, logp, values, rewards, dones)
            if self.agent.ready():
                stats = self.agent.update()
                log.info("online PPO update: %s", stats.as_dict() if hasattr(stats, "as_dict") else stats)

    def _choose(self, probs: np.ndarray, active: list[MarketInfo], now: float) -> np.ndarray:
        if not self.cfg.explore:
            return probs.argmax(axis=1)
        out = np.empty(len(active), dtype=np.int64)
        for i, m in enumerate(active):
            # Seeded by market and tick so a resumed run makes the same choices as an uninterrupted one.
            digest = hashlib.sha256(f"{m.condition_id}@{now:.3f}".encode()).digest()
            u = np.random.default_rng(int.from_bytes(digest[:8], "little")).random()
            out[i] = int(np.searchsorted(np.cumsum(probs[i]) / probs[i].sum(), u, side="right"))
        return np.minimum(out, probs.shape[1] - 1)

    def _act(
        self, m: MarketInfo, action: int, probs: list[float] | None, feats: np.ndarray, now: float
    ) -> None:
        pos = self.positions.get(m.condition_id)
        if action == HOLD:
            return
        if pos is not None:
            if (action == BUY and pos.side == "DOWN") or (action == SELL and pos.side == "UP"):
                self.close(pos, SIGNAL, now)
            return
        if m.window_end - now < self.safety.config.close_before_end_s + 60:
            return  # too late in the window: the window-end rule would close it at once
        if now - self.feed.books[m.condition_id].book.ts > self.safety.config.stale_book_s:
            self.counters["entries_blocked"] += 1
            return  # never enter on a book the stale-book rule would close at once
        block = self.safety.entry_block(self._safety_views(), self.cfg.trade_size)
        if block is not None:
            self.counters["entries_blocked"] += 1
            return
        self.open(m, "UP" if action == BUY else "DOWN", probs, feats, now)

    # -- positions -----------------------------------------------------------------------------------
    def open(
        self, m: MarketInfo, side: str, probs: list[float] | None, feats: np.ndarray, now: float
    ) -> None:
        book = self.feed.books[m.condition_id]
        fill = self.execution.open(m, side, self.cfg.trade_size, book, now)
        if fill.error or fill.shares <= 0:
            log.info("entry %s %s not filled: %s", side, m.slug, fill.error)
            return
        pos = OpenPos(
            str(uuid.uuid4()),
            f"{m.condition_id}@{now:.3f}",
            m,
            side,
            now,
            fill.avg_price,
            fill.shares,
            fill.notional,
            fill.fee,
        )
        fields = self._trade_fields(pos)
        names = ("hold", "buy", "sell")
        fields["action_probs"] = None if probs is None else dict(zip(names, probs, strict=False))
        fields["market_state"] = {"features": [round(float(x), 6) for x in feats], "ts": now}
        self._opens.append(fields)
        self.positions[m.condition_id] = pos
        if self.alerter is not None:
            alerter = self.alerter
            self._after_commit.append(
                lambda: alerter.trade_open(m.slug, side, fill.avg_price, fill.notional, probs)
            )
        if self.cfg.mode == "live":
            self.commit()  # real money moved: record it now, not at the end of the tick

    def close(self, pos: OpenPos, reason: str, now: float) -> bool:
        """Sell ``pos``; a failed sell keeps it open, alerts once per reason and returns False."""
        book = self.feed.books[pos.info.condition_id]
        fill = self.execution.close(pos, book, now)
        if fill.error or fill.shares <= 0:
            self.counters["sell_failures"] += 1
            if self.failed_exits.get(pos.trade_id) != reason:
                self.failed_exits[pos.trade_id] = reason
                msg = (
                    f"could not close {pos.side} {pos.info.slug} ({reason}): {fill.error}; position kept open"
                )
                log.warning(msg)
                self.store.record_health("executor", msg, level="warning", session_id=self.session_id)
                if self.alerter is not None:
                    self.alerter.error(msg)
            return False
        frac = min(fill.shares / pos.shares, 1.0) if pos.shares > 0 else 1.0
        cost = (pos.notional + pos.entry_fee) * frac
        pnl = fill.notional - fill.fee - cost
        rest = None
        if pos.shares - fill.shares > 1e-9:
            rest = OpenPos(
                str(uuid.uuid4()),
                f"{pos.trade_key}/rest@{now:.3f}",
                pos.info,
                pos.side,
                pos.entry_time,
                pos.entry_price,
                pos.shares - fill.shares,
                pos.notional * (1 - frac),
                pos.entry_fee * (1 - frac),
            )
        self._finish(
            pos, reason, now, fill.avg_price, fill.fee, pnl, shares=fill.shares,
            remainder=None if rest is None else self._trade_fields(rest),
        )  # fmt: skip
        if rest is not None:
            self.positions[pos.info.condition_id] = rest
        if self.cfg.mode == "live":
            self.commit()
        return True

    def _trade_fields(self, p: OpenPos) -> dict[str, Any]:
        return dict(
            id=p.trade_id,
            session_id=self.session_id,
            trade_key=p.trade_key,
            condition_id=p.info.condition_id,
            asset=p.info.asset,
            side=p.side,
            entry_time=_dt(p.entry_time),
            entry_price=p.entry_price,
            size_dollars=p.notional,
            shares=p.shares,
            entry_fee=p.entry_fee,
            window_end=_dt(p.info.window_end),
        )

    def _finish(
        self,
        pos: OpenPos,
        reason: str,
        now: float,
        price: float,
        fee: float,
        pnl: float,
        shares: float,
        remainder: dict[str, Any] | None = None,
    ) -> None:
        self.positions.pop(pos.info.condition_id, None)
        self.failed_exits.pop(pos.trade_id, None)
        tripped = self.safety.record_close(pnl)
        for rule in (reason, *tripped):
            self.trips[rule] = self.trips.get(rule, 0) + 1
        self.pending_reward[pos.info.condition_id] = self.pending_reward.get(pos.info.condition_id, 0.0) + pnl
        fields = dict(
            exit_time=_dt(now),
            exit_price=price,
            exit_fee=fee,
            exit_reason=reason,
            pnl=pnl,
            shares=shares,
            duration_seconds=now - pos.entry_time,
        )
        self._closes.append((pos.trade_id, fields, remainder))
        if self.alerter is not None:
            alerter = self.alerter
            self._after_commit.append(
                lambda: alerter.trade_close(pos.info.slug, pos.side, pnl, reason, price)
            )
            for rule in tripped:
                self._after_commit.append(
                    lambda r=rule: alerter.error(f"safety limit tripped: {r}; entries paused")
                )

    def _settle_due(self, now: float) -> None:
        """Binary settlement of positions whose window has ended (UP pays 1 if final >= strike)."""
        for cid, m in self.markets.items():
            if cid in self.settled or now < m.window_end:
                continue
            pos = self.positions.get(cid)
            if pos is not None:
                res = self.feed.session.resolutions.get(cid)
                if res is None:
                    continue  # wait for the resolution; the position stays open and visible
                up_wins = res.up_wins
                won = (pos.side == "UP") == up_wins
                self.execution.settle(pos, up_wins, now)
                payout = pos.shares if won else 0.0
                pnl = payout - pos.notional - pos.entry_fee
                self.settled.add(cid)
                self._finish(pos, SETTLEMENT, now, 1.0 if won else 0.0, 0.0, pnl, shares=pos.shares)
            self.settled.add(cid)
            self.histories.pop(cid, None)

    def run_safety(self, now: float) -> list[tuple[str, str]]:
        marks: dict[str, Mark] = {}
        for cid, pos in self.positions.items():
            book = self.feed.books[cid].book
            own = book if pos.side == "UP" else book.complement()
            marks[pos.trade_id] = Mark(own.best_bid(), book.ts if book.ts > 0 else None)
        views = self._safety_views()
        exits = self.safety.exits(views, marks)
        by_id = {p.trade_id: p for p in self.positions.values()}
        for trade_id, reason in exits:
            pos = by_id.get(trade_id)
            if pos is not None and now < pos.info.window_end:
                self.close(pos, reason, now)
        return exits

    def close_all(self, reason: str = SHUTDOWN) -> int:
        """Emergency close of every open position (shutdown), committed at once; returns how many."""
        with self._lock:
            n = sum(self.close(p, reason, self.now) for p in list(self.positions.values()))
            self.commit()
            return n

    def _periodic(self, now: float) -> None:
        """Queue a metric row (committed with this tick) and the daily summary at day change."""
        self._last_checkpoint = now
        sess = self.store.get_session(self.session_id)
        assert sess is not None
        pnl = sess.total_pnl + sum(f["pnl"] for _, f, _ in self._closes)
        n = sess.trade_count + len(self._closes)
        wins = sess.win_count + sum(1 for _, f, _ in self._closes if f["pnl"] > 0)
        self._metric = dict(
            recorded_at=_dt(now),
            cumulative_pnl=pnl,
            daily_pnl=self.safety.state.daily_pnl,
            trades_total=n,
            win_rate=(wins / n) if n else None,
            open_positions=len(self.positions),
            exposure=sum(p.notional for p in self.positions.values()),
            data={"blocked": self.counters["entries_blocked"], "ticks": self.counters["ticks"]},
        )
        day = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")
        if self._last_day and day != self._last_day and self.alerter is not None:
            alerter, prev, dpnl = self.alerter, self._last_day, self.safety.state.daily_pnl
            self._after_commit.append(lambda: alerter.daily_summary(prev, dpnl, n, wins / max(n, 1)))
        self._last_day = day

    def _safety_views(self) -> list[SafetyPosition]:
        return [
            SafetyPosition(
                p.trade_id,
                p.info.condition_id,
                p.side,
                p.entry_time,
                p.entry_price,
                p.notional,
                p.info.window_end,
            )
            for p in self.positions.values()
        ]

    def _unrealized_roi(self, pos: OpenPos, book: MarketBook) -> float:
        own = book.book if pos.side == "UP" else book.book.complement()
        bid = own.best_bid()
        cost = pos.notional + pos.entry_fee
        if bid is None or cost <= 0:
            return -1.0
        return pos.shares * bid / cost - 1.0

    def snapshot(self) -> Snapshot:
        """Health/dashboard view, read from the store so it reflects only committed state."""
        sess = self.store.get_session(self.session_id)
        closed = self.store.trades(self.session_id, status="closed")
        closed.sort(key=lambda t: t.exit_time or t.entry_time)
        curve, total = [], 0.0
        for t in closed:
            total += t.pnl or 0.0
            curve.append(((t.exit_time or t.entry_time).timestamp(), total))
        open_rows = [
            {
                "market": p.info.slug,
                "side": p.side,
                "entry_price": p.entry_price,
                "size_dollars": p.notional,
                "mark": (
                    self.feed.books[cid].book if p.side == "UP" else self.feed.books[cid].book.complement()
                ).best_bid(),
                "age_s": self.now - p.entry_time,
            }
            for cid, p in list(self.positions.items())
        ]
        recent = [
            {
                "market": self.markets[t.condition_id].slug
                if t.condition_id in self.markets
                else t.condition_id,
                "side": t.side,
                "entry_price": t.entry_price,
                "exit_price": t.exit_price,
                "pnl": t.pnl,
                "exit_reason": t.exit_reason,
            }
            for t in reversed(closed[-20:])
        ]
        return Snapshot(
            mode=self.cfg.mode,
            status="ok",
            session_id=self.session_id,
            last_tick=self.last_progress,
            pnl=sess.total_pnl if sess else 0.0,
            trades=sess.trade_count if sess else 0,
            wins=sess.win_count if sess else 0,
            exposure=sum(p.notional for p in self.positions.values()),
            pnl_curve=curve,
            open_positions=open_rows,
            recent_trades=recent,
            components={"feeds": "ok", "executor": "ok" if not self.failed_exits else "failing_exits"},
            alerts=dict(self.alerter.outcomes) if self.alerter else {},
            safety_trips=dict(self.trips),
            kill_switch=self.safety.kill_switch_active(),
            model_version=self.cfg.model_version,
        )


class _NumpyPolicy:
    """Inference through the model's pure-NumPy forward pass: for a 4-market batch it is several times
    faster than an MLX call (dispatch overhead dominates such tiny networks). Not used when learning."""

    def __init__(self, params: dict[str, np.ndarray]) -> None:
        from stratforge.trader.model import numpy_forward

        self.params = params
        self._forward = numpy_forward

    def action_probs(self, features: Any, history: Any = None) -> np.ndarray:
        return self._forward(self.params, features, history)[0]


def _fast_inference(policy: Any) -> Any:
    params = getattr(policy, "numpy_params", None)
    if params is None:
        return policy
    try:
        return _NumpyPolicy(params())
    except Exception:  # an architecture the NumPy path does not know: keep MLX
        return policy


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


# -- replay (paper) runner ------------------------------------------------------------------------
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


def run_replay(
    cfg: WorkerConfig,
    session: Session,
    policy: Any,
    store: Store | None = None,
    progress: Callable[[float, float], None] | None = None,
    stop: threading.Event | None = None,
    agent: Any = None,
) -> RunResult:
    """Drive an :class:`Engine` through a replayed session on the replay clock (paper broker)."""
    if cfg.mode != "paper":
        raise ValueError("replays run in paper mode only")
    store = store or Store(cfg.database_url, cfg.data_dir)
    source = str(cfg.replay.resolve()) if cfg.replay else "replay"
    stop = stop or threading.Event()
    row = store.find_resumable("paper", source) if cfg.resume else None
    resumed = row is not None
    if row is None:
        row = store.start_session(
            mode="paper",
            trade_size=cfg.trade_size,
            source=source,
            model_version=cfg.model_version,
            config={"tick_s": cfg.tick_s, "explore": cfg.explore, "learn": cfg.learn},
        )
    alerter = Alerter(cfg.webhook_url, store, row.id).start()
    feed = FeedState(session)
    engine = Engine(cfg, store, row.id, policy, PaperExecution(cfg.broker), feed, alerter, agent)
    start = min(m.window_start for m in session.markets)
    end = max(m.window_end for m in session.markets)
    restored = 0
    t = start
    if resumed and row.checkpoint_data:
        restored = engine.restore(row.checkpoint_data)
        t = float(row.checkpoint_data["cursor"]) + cfg.tick_s
        msg = f"resumed session {row.id} at {_dt(t - cfg.tick_s).isoformat()} with {restored} open positions"
        log.info(msg)
        store.record_health("worker", msg, level="warning", session_id=row.id, data={"restored": restored})
        alerter.recovery(msg, restored=restored)
    server = None
    if cfg.health_port is not None:
        server = HealthServer(engine.snapshot, host="0.0.0.0", port=cfg.health_port).start()
        log.info("health server on %s", server.url)
    try:
        n_ticks = 0
        while t <= end + cfg.tick_s and not stop.is_set():
            feed.advance(t)
            engine.tick(t)
            n_ticks += 1
            if progress is not None:
                progress(t - start, end - start)
            if cfg.pace_s > 0:
                time.sleep(cfg.pace_s)
            t += cfg.tick_s
        stopped_early = stop.is_set()
        if stopped_early:
            closed = engine.close_all(SHUTDOWN)
            log.info("shutdown: emergency-closed %d positions", closed)
        engine._periodic(engine.now)
        engine.commit()
        if engine.positions:
            log.warning("%d positions still open at the end of the replay", len(engine.positions))
        store.end_session(row.id, "stopped")
    finally:
        if server is not None:
            server.stop()
        alerter.close(timeout=5)
    trades = store.trades(row.id)
    reasons: dict[str, int] = {}
    for tr in trades:
        if tr.status == "closed":
            reasons[tr.exit_reason or "?"] = reasons.get(tr.exit_reason or "?", 0) + 1
    sess = store.get_session(row.id)
    return RunResult(
        row.id,
        resumed,
        restored,
        sum(1 for tr in trades if tr.status == "closed"),
        sum(1 for tr in trades if tr.status == "open"),
        sess.total_pnl if sess else 0.0,
        reasons,
        stopped_early,
    )


def install_signal_stop(stop: threading.Event) -> None:
    """SIGTERM/SIGINT set ``stop``: the loop then emergency-closes every position and exits cleanly."""

    def handler(signum: int, _frame: Any) -> None:
        log.warning("signal %d: stopping (positions will be closed)", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


# -- live runner ----------------------------------------------------------------------------------
def run_live(
    cfg: WorkerConfig,
    policy: Any,
    store: Store | None = None,
    stop: threading.Event | None = None,
    executor: Any = None,
    discovery: Any = None,
    clob_ws_url: str | None = None,
    futures_ws_url: str | None = None,
    assets: tuple[str, ...] = ("BTC", "ETH", "SOL", "XRP"),
    rediscover_s: float = 60.0,
    discover_fn: Callable[[list[str], float], list[MarketInfo]] | None = None,
) -> str:
    """Trade on live feeds: discovery every minute, CLOB + Binance feeds in a background event loop, the
    engine ticking on the wall clock. ``cfg.mode`` "live" sends orders through the live executor;
    "paper" fills them with the paper broker against the live books. Returns the session id."""
    import asyncio
    from collections import deque

    from stratforge.trader.live.discovery import DiscoveryConfig, discover
    from stratforge.trader.live.executor import LiveExecutor
    from stratforge.trader.live.feeds import BinanceFuturesFeed, ClobMarketFeed
    from stratforge.trader.markets.messages import from_raw

    stop = stop or threading.Event()
    execution: PaperExecution | LiveExecution
    if cfg.mode == "live":
        executor = executor or LiveExecutor.from_env()
        balance = executor.balance()
        log.info("live: collateral balance $%.2f", balance)
        if balance < cfg.trade_size:
            raise RuntimeError(f"wallet balance ${balance:.2f} is below one trade (${cfg.trade_size:.2f})")
        execution = LiveExecution(executor)
    else:
        execution = PaperExecution(cfg.broker)
    store = store or Store(cfg.database_url, cfg.data_dir)
    row = store.find_resumable(cfg.mode, "live") if cfg.resume else None
    resumed = row is not None
    if row is None:
        row = store.start_session(
            mode=cfg.mode, trade_size=cfg.trade_size, source="live", model_version=cfg.model_version
        )
    alerter = Alerter(cfg.webhook_url, store, row.id).start()
    session = Session(markets=[], messages=[])
    feed = FeedState(session)
    engine = Engine(cfg, store, row.id, policy, execution, feed, alerter)
    dcfg = discovery or DiscoveryConfig()
    incoming: deque[Any] = deque()
    clob = ClobMarketFeed([], **({"url": clob_ws_url} if clob_ws_url else {}))
    futures = BinanceFuturesFeed(
        [SYMBOLS[a] for a in assets], **({"url": futures_ws_url} if futures_ws_url else {})
    )

    def add_markets(now: float) -> bool:
        changed = False
        found = discover_fn(list(assets), now) if discover_fn else discover(list(assets), now, dcfg)
        for m in found:
            if m.condition_id in engine.markets:
                continue
            session.markets.append(m)
            mb = MarketBook(m.up_token)
            feed.books[m.condition_id] = mb
            feed._by_token[m.up_token] = mb
            engine.markets[m.condition_id] = m
            clob.asset_ids += [m.up_token, m.down_token]
            changed = True
        return changed

    async def pump(source_feed: Any) -> None:
        async for src, raw in source_feed:
            for msg in from_raw(src, raw):
                incoming.append(msg)

    loop = asyncio.new_event_loop()
    tasks: dict[str, Any] = {}

    def start_clob() -> None:
        if "clob" in tasks:
            tasks["clob"].cancel()
        tasks["clob"] = asyncio.run_coroutine_threadsafe(pump(clob), loop)

    thread = threading.Thread(target=loop.run_forever, name="feeds", daemon=True)
    thread.start()
    add_markets(time.time())
    if resumed and row.checkpoint_data:
        restored = engine.restore(row.checkpoint_data)
        alerter.recovery(f"live session {row.id} resumed with {restored} open positions", restored=restored)
    start_clob()
    tasks["futures"] = asyncio.run_coroutine_threadsafe(pump(futures), loop)
    server = (
        HealthServer(engine.snapshot, host="0.0.0.0", port=cfg.health_port).start()
        if cfg.health_port
        else None
    )
    last_discovery = time.time()
    try:
        while not stop.is_set():
            now = time.time()
            while incoming:
                session.messages.append(incoming.popleft())
            feed.advance(now)
            engine.tick(now)
            if now - last_discovery > rediscover_s:
                last_discovery = now
                if add_markets(now):
                    start_clob()  # resubscribe with the new token ids
            stop.wait(cfg.tick_s)
    finally:
        closed = engine.close_all(SHUTDOWN)
        log.warning("live shutdown: closed %d positions, %d still open", closed, len(engine.positions))
        if engine.positions:
            alerter.error(f"shutdown left {len(engine.positions)} positions open (sells failed)")
        store.end_session(row.id, "stopped")
        clob.close()
        futures.close()

        async def _cancel_all() -> None:
            current = asyncio.current_task()
            pending = [t for t in asyncio.all_tasks() if t is not current]
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(_cancel_all(), loop).result(timeout=10)
        except Exception:
            log.warning("feed tasks did not stop cleanly", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        if server is not None:
            server.stop()
        alerter.close(timeout=5)
    return row.id
