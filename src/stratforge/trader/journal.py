"""Journals: where the decision engine's trades are recorded.

:class:`StoreJournal` (the worker) turns opens and closes into ``trades`` rows and commits them with
the recovery checkpoint and a periodic metric row in one transaction per flush; alerts are sent only
after the commit, so an alert never announces a trade the database does not hold.
:class:`MemoryJournal` (backtests, evaluation, tests) keeps the same events in lists.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from stratforge.trader.alerts import Alerter
from stratforge.trader.checkpoint import Checkpoint
from stratforge.trader.markets.messages import MarketInfo
from stratforge.trader.positions import Position
from stratforge.trader.storage import Store, Trade

if TYPE_CHECKING:
    from stratforge.trader.engine import DecisionEngine, Exit

log = logging.getLogger("stratforge.trader.journal")


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def trade_fields(pos: Position, session_id: str) -> dict[str, Any]:
    """The ``trades`` row of an open position (its persisted form)."""
    return dict(
        id=pos.trade_id,
        session_id=session_id,
        trade_key=pos.trade_key,
        condition_id=pos.condition_id,
        asset=pos.market.asset,
        side=pos.side,
        entry_time=_dt(pos.entry_time),
        entry_price=pos.entry_price,
        size_dollars=pos.cost,
        shares=pos.shares,
        entry_fee=pos.entry_fee,
        window_end=_dt(pos.window_end),
    )


def position_from_row(row: Trade, market: MarketInfo) -> Position:
    """An open ``trades`` row back as a position (crash recovery)."""
    return Position(
        row.id,
        row.trade_key,
        market,
        row.side,
        row.entry_time.timestamp(),
        row.entry_price,
        row.shares,
        row.size_dollars,
        row.entry_fee,
    )


@dataclass
class MemoryJournal:
    """Events in memory: ``trades`` are (position, exit) pairs in close order."""

    opens: list[Position] = field(default_factory=list)
    trades: list[tuple[Position, Exit]] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)

    def opened(self, pos: Position, probs: list[float] | None, features: np.ndarray) -> None:
        self.opens.append(pos)

    def closed(self, pos: Position, exit: Exit, remainder: Position | None) -> None:
        self.trades.append((pos, exit))

    def problem(self, component: str, message: str) -> None:
        self.problems.append((component, message))

    def flush(self, engine: DecisionEngine) -> None:
        pass


class StoreJournal:
    """Commits each unit of work (trades + checkpoint + metric) atomically, then alerts."""

    def __init__(
        self,
        store: Store,
        session_id: str,
        alerter: Alerter | None = None,
        metric_interval_s: float = 60.0,
        clock_state: dict[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.session_id = session_id
        self.alerter = alerter
        self.metric_interval_s = metric_interval_s
        state = clock_state or {}
        self._last_metric: float | None = state.get("last_metric")
        self._last_day: str = state.get("last_day", "")
        self._opens: list[dict[str, Any]] = []
        self._closes: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
        self._after_commit: list[Callable[[], Any]] = []

    # -- events ------------------------------------------------------------------------------------
    def opened(self, pos: Position, probs: list[float] | None, features: np.ndarray) -> None:
        fields = trade_fields(pos, self.session_id)
        fields["action_probs"] = (
            None if probs is None else dict(zip(("hold", "buy", "sell"), probs, strict=False))
        )
        fields["market_state"] = {"features": [round(float(x), 6) for x in features], "ts": pos.entry_time}
        self._opens.append(fields)
        if self.alerter is not None:
            alerter = self.alerter
            self._after_commit.append(
                lambda: alerter.trade_open(pos.market.slug, pos.side, pos.entry_price, pos.cost, probs)
            )

    def closed(self, pos: Position, exit: Exit, remainder: Position | None) -> None:
        fields = dict(
            exit_time=_dt(exit.time),
            exit_price=exit.price,
            exit_fee=exit.fee,
            exit_reason=exit.reason,
            pnl=exit.pnl,
            shares=exit.shares,
            duration_seconds=exit.time - pos.entry_time,
        )
        rest = None if remainder is None else trade_fields(remainder, self.session_id)
        self._closes.append((pos.trade_id, fields, rest))
        if self.alerter is not None:
            alerter = self.alerter
            self._after_commit.append(
                lambda: alerter.trade_close(pos.market.slug, pos.side, exit.pnl, exit.reason, exit.price)
            )

    def problem(self, component: str, message: str) -> None:
        log.warning(message)
        self.store.record_health(component, message, level="warning", session_id=self.session_id)
        if self.alerter is not None:
            self.alerter.error(message)

    # -- commit ------------------------------------------------------------------------------------
    def flush(self, engine: DecisionEngine, final: bool = False) -> None:
        """Commit what happened since the last flush; ``final`` also writes a last metric row."""
        now = engine.now
        metric = None
        due = self._last_metric is None or now - self._last_metric >= self.metric_interval_s - 1e-9
        if due or final:
            metric = self._metric(engine, now)
        if not (self._opens or self._closes or metric is not None):
            return
        checkpoint = Checkpoint(engine.state(), self.state())
        self.store.commit_tick(self.session_id, checkpoint.to_dict(), self._opens, self._closes, metric)
        self._opens, self._closes = [], []
        after, self._after_commit = self._after_commit, []
        for fn in after:
            fn()

    def state(self) -> dict[str, Any]:
        return {"last_metric": self._last_metric, "last_day": self._last_day}

    def _metric(self, engine: DecisionEngine, now: float) -> dict[str, Any]:
        """A metric row (committed with this flush) and the daily summary when the UTC day changes."""
        self._last_metric = now
        sess = self.store.get_session(self.session_id)
        assert sess is not None
        pnl = sess.total_pnl + sum(f["pnl"] for _, f, _ in self._closes)
        n = sess.trade_count + len(self._closes)
        wins = sess.win_count + sum(1 for _, f, _ in self._closes if f["pnl"] > 0)
        day = _dt(now).strftime("%Y-%m-%d")
        if self._last_day and day != self._last_day and self.alerter is not None:
            alerter, prev, dpnl = self.alerter, self._last_day, engine.safety.state.daily_pnl
            self._after_commit.append(lambda: alerter.daily_summary(prev, dpnl, n, wins / max(n, 1)))
        self._last_day = day
        return dict(
            recorded_at=_dt(now),
            cumulative_pnl=pnl,
            daily_pnl=engine.safety.state.daily_pnl,
            trades_total=n,
            win_rate=(wins / n) if n else None,
            open_positions=len(engine.positions),
            exposure=engine.positions.exposure,
            data={"blocked": engine.counters["entries_blocked"], "ticks": engine.counters["ticks"]},
        )
