"""Safety rules of the trader: pure logic over positions, marks and a clock.

The worker asks :meth:`Safety.exits` every safety tick (10 s by default) which positions must close and
why, and :meth:`Safety.entry_block` before every entry whether a new position is allowed. The state that
must survive a crash (daily PnL, loss streak, pauses, kill) round-trips through :meth:`to_dict`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stratforge.trader.positions import Position

# Exit reasons (all fit the 40-char trades.exit_reason column).
WINDOW_END = "window_end"
MAX_AGE = "max_age"
STALE_BOOK = "stale_book"
TAKE_PROFIT = "take_profit"
STOP_LOSS = "stop_loss"
SHUTDOWN = "shutdown"
SETTLEMENT = "settlement"
SIGNAL = "signal"
FEED_DEGRADED = "feed_degraded"  # an entry block, not an exit


@dataclass
class SafetyConfig:
    """Thresholds; defaults are the live fork's (see docs/trader-operations.md)."""

    close_before_end_s: float = 180.0
    max_age_s: float = 840.0
    stale_book_s: float = 60.0
    take_profit: float = 0.75  # +75% of the entry price
    stop_loss: float = -0.35  # -35%
    daily_loss_limit: float = 100.0  # dollars; entries stop for the rest of the UTC day
    max_consecutive_losses: int = 5
    loss_pause_s: float = 900.0  # entries pause this long after the loss streak limit
    max_positions: int = 4
    max_exposure: float = 200.0  # dollars at cost over all open positions
    kill_switch_file: Path | None = None


@dataclass
class Mark:
    """Current price of the position's own token and when its book last updated."""

    price: float | None
    book_time: float | None


@dataclass
class SafetyState:
    day: str = ""
    daily_pnl: float = 0.0
    consecutive_losses: int = 0
    paused_until: float = 0.0
    killed: bool = False
    kill_reason: str = ""
    trips: list[str] = field(default_factory=list)


class Safety:
    """Stateful rule engine; ``clock`` returns epoch seconds (the replay clock in paper runs)."""

    def __init__(self, config: SafetyConfig | None = None, clock: Callable[[], float] = time.time) -> None:
        self.config = config or SafetyConfig()
        self.clock = clock
        self.state = SafetyState()

    # -- exits ----------------------------------------------------------------------------------------
    def exit_reason(self, pos: Position, mark: Mark, now: float | None = None) -> str | None:
        """The first rule that says ``pos`` must close now, or None."""
        cfg = self.config
        now = self.clock() if now is None else now
        if pos.window_end - now < cfg.close_before_end_s:
            return WINDOW_END
        if now - pos.entry_time > cfg.max_age_s:
            return MAX_AGE
        if mark.book_time is None or now - mark.book_time > cfg.stale_book_s:
            return STALE_BOOK
        if mark.price is not None and pos.entry_price > 0:
            change = (mark.price - pos.entry_price) / pos.entry_price
            if change >= cfg.take_profit:
                return TAKE_PROFIT
            if change <= cfg.stop_loss:
                return STOP_LOSS
        return None

    def exits(self, positions: Iterable[Position], marks: dict[str, Mark]) -> list[tuple[str, str]]:
        """``(trade id, reason)`` for every position a rule closes (marks are keyed by trade id)."""
        now = self.clock()
        out = []
        for pos in positions:
            reason = self.exit_reason(pos, marks.get(pos.trade_id, Mark(None, None)), now)
            if reason is not None:
                out.append((pos.trade_id, reason))
        return out

    # -- entries --------------------------------------------------------------------------------------
    def entry_block(
        self, open_positions: Iterable[Position], size_dollars: float, feed_problem: str | None = None
    ) -> str | None:
        """Why a new position of ``size_dollars`` may not open now, or None when it may.

        ``feed_problem`` names a degraded feed (see :mod:`stratforge.trader.feed_health`): no entry is
        made on data the worker cannot trust; exits keep running.
        """
        cfg = self.config
        now = self.clock()
        self._roll_day(now)
        if self.kill_switch_active():
            return "kill_switch"
        if feed_problem:
            return FEED_DEGRADED
        if self.state.daily_pnl <= -cfg.daily_loss_limit:
            return "daily_loss_limit"
        if now < self.state.paused_until:
            return "consecutive_losses"
        positions = list(open_positions)
        if len(positions) >= cfg.max_positions:
            return "max_positions"
        exposure = sum(p.cost for p in positions)
        if exposure + size_dollars > cfg.max_exposure + 1e-9:
            return "max_exposure"
        return None

    def record_close(self, pnl: float) -> list[str]:
        """Account a closed trade; returns the limits this close tripped (for alerts)."""
        cfg = self.config
        now = self.clock()
        self._roll_day(now)
        tripped = []
        before = self.state.daily_pnl
        self.state.daily_pnl += pnl
        if before > -cfg.daily_loss_limit >= self.state.daily_pnl:
            tripped.append("daily_loss_limit")
        if pnl < 0:
            self.state.consecutive_losses += 1
            if self.state.consecutive_losses >= cfg.max_consecutive_losses:
                self.state.paused_until = now + cfg.loss_pause_s
                self.state.consecutive_losses = 0
                tripped.append("consecutive_losses")
        else:
            self.state.consecutive_losses = 0
        self.state.trips = (self.state.trips + tripped)[-50:]  # the recent ones (bounded state)
        return tripped

    # -- kill switch ----------------------------------------------------------------------------------
    def kill_switch_active(self) -> bool:
        path = self.config.kill_switch_file
        return self.state.killed or (path is not None and path.exists())

    def kill(self, reason: str = "manual") -> None:
        self.state.killed = True
        self.state.kill_reason = reason

    def _roll_day(self, now: float) -> None:
        day = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")
        if day != self.state.day:
            self.state.day = day
            self.state.daily_pnl = 0.0

    # -- checkpoint -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self.state)

    def restore(self, data: dict[str, Any]) -> None:
        self.state = SafetyState(**data)


def kill_switch_path(data_dir: Path) -> Path:
    """Where ``stratforge trader kill`` drops the file the worker watches."""
    return Path(data_dir) / "KILL"
