"""The decision engine: one tick of trading, the same for replays, live feeds, backtests and eval.

Per tick, top to bottom (:meth:`DecisionEngine.tick`):

1. **settle**: every market whose window ended and whose outcome is known (the venue's
   ``market_resolved``, a recorded resolution, or a poll of the market) closes all its positions at
   1 or 0 and is retired (its book, history and subscription are dropped);
2. **safety** (every ``safety_interval_s``): the exit rules of :mod:`stratforge.trader.safety` close
   positions (a failed sell keeps the position open and alerts once per rule);
3. **observe**: market state (books, futures flow: the :class:`~stratforge.trader.env.FeedState`)
   -> the 18 features of every active market -> its 5-step history;
4. **decide**: the policy's action probabilities -> actions (argmax, or seeded sampling);
5. **act**: HOLD / BUY / SELL -> close on an opposite signal, or an entry sized by ``sizing`` and
   allowed by the safety entry rules -> an order through the :class:`Execution`
   (paper broker or venue) -> a :class:`Position` in the :class:`PositionBook`;
6. **record**: every open/close goes to the :class:`Journal` (the worker's store journal commits the
   tick with its checkpoint in one transaction; backtests keep them in memory).

The engine owns no I/O: feeds, stores, alerts and clocks belong to its callers (the runners in
:mod:`stratforge.trader.replay_runner` and :mod:`stratforge.trader.live_runner`).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from stratforge.trader.broker import Fill
from stratforge.trader.checkpoint import EngineState
from stratforge.trader.env import FeedState
from stratforge.trader.execution import PENDING, Execution, Redemption
from stratforge.trader.features import (
    HistoryWindow,
    MarketBook,
    PositionView,
    compute_features,
    position_view,
)
from stratforge.trader.fees import CRYPTO_FEES_V2, FeeSchedule
from stratforge.trader.markets.messages import SYMBOLS, MarketInfo
from stratforge.trader.positions import DOWN, UP, Position, PositionBook
from stratforge.trader.safety import SETTLEMENT, SHUTDOWN, SIGNAL, Mark, Safety
from stratforge.trader.sizing import fixed_size

log = logging.getLogger("stratforge.trader.engine")

HOLD, BUY, SELL = 0, 1, 2
ACTION_NAMES = ("hold", "buy", "sell")


# -- seams ----------------------------------------------------------------------------------------
class Policy(Protocol):
    """Action probabilities [n, 3] (HOLD, BUY, SELL) for n markets' features and histories."""

    def action_probs(self, features: np.ndarray, history: np.ndarray) -> np.ndarray: ...


class Sizing(Protocol):
    """Dollars to spend on an entry, given the configured trade size and the token's ask
    (:mod:`stratforge.trader.sizing`: ``confidence_size``, ``fixed_size``)."""

    def __call__(self, trade_size: float, price: float) -> float: ...


@dataclass
class Exit:
    """How a position (or the sold part of it) ended."""

    time: float
    price: float  # average sell price, or 1/0 at settlement
    fee: float  # USDC value of the exit fee
    reason: str
    pnl: float  # after both fees: proceeds - exit fee - cost
    shares: float
    redemption: str | None = None  # settlement only: paid | pending_redemption | lost
    settled_by: str = ""  # settlement only: where the outcome came from (a futures fallback is flagged)


class Journal(Protocol):
    """Where the engine's trades go. ``flush`` ends a unit of work (a tick, or one fill in live mode)."""

    def opened(self, pos: Position, probs: list[float] | None, features: np.ndarray) -> None: ...

    def closed(self, pos: Position, exit: Exit, remainder: Position | None) -> None: ...

    def problem(self, component: str, message: str) -> None:
        """Something an operator must hear about now (failed exit, tripped limit, pending redemption)."""
        ...

    def flush(self, engine: DecisionEngine) -> None: ...


class Learner(Protocol):
    """Online PPO (``stratforge.trader.ppo.PPOAgent``): acts, records transitions, updates."""

    def act(self, features: np.ndarray, history: np.ndarray) -> tuple[Any, Any, Any]: ...

    def record(self, *args: Any) -> None: ...

    def ready(self) -> bool: ...

    def update(self) -> Any: ...


@dataclass
class EngineConfig:
    trade_size: float = 10.0
    tick_s: float = 5.0
    safety_interval_s: float = 10.0
    explore: bool = False  # sample actions (seeded per market and tick) instead of the argmax
    entry_margin_s: float = 60.0  # no entry this close to the window-end rule (it would close at once)
    commit_each_fill: bool = False  # live: record every fill at once, not at the end of the tick
    retire_after_s: float = 3600.0  # forget settled markets this long after their window (bounded state)
    fees: FeeSchedule = CRYPTO_FEES_V2  # markets whose metadata carries no fee schedule (feature 14)


@dataclass
class Decision:
    market: MarketInfo
    action: int
    probs: list[float] | None
    features: np.ndarray


# -- the engine -----------------------------------------------------------------------------------
class DecisionEngine:
    """Trading state and rules. Callers apply feed messages to ``feed``, then call :meth:`tick`."""

    def __init__(
        self,
        cfg: EngineConfig,
        policy: Policy,
        execution: Execution,
        feed: FeedState,
        safety: Safety,
        journal: Journal,
        name: str = "",
        sizing: Sizing = fixed_size,
        learner: Learner | None = None,
    ) -> None:
        self.cfg = cfg
        self.policy = policy
        self.execution = execution
        self.feed = feed
        self.safety = safety
        self.journal = journal
        self.name = name  # namespace of the deterministic trade ids (the session id)
        self.sizing = sizing
        self.learner = learner
        self.now = 0.0
        self.markets: dict[str, MarketInfo] = {}
        self.positions = PositionBook()
        self.histories: dict[str, HistoryWindow] = {}
        self.outcomes: dict[str, tuple[bool, str]] = {}  # market -> (up wins, source)
        self.retired: dict[str, float] = {}  # settled markets -> window end (ignored if re-added)
        self.failed_exits: dict[str, str] = {}  # trade id -> rule whose sell failed
        self.counters: dict[str, int] = {"ticks": 0, "entries_blocked": 0, "sell_failures": 0}
        self.trips: dict[str, int] = {}
        self.feed_problem: str | None = None  # set by the runner from its feed health
        self._last_safety = -math.inf
        self._pending_reward: dict[str, float] = {}
        self._step: tuple[Any, ...] = ()  # the learner's last (features, histories, actions, logp, values)
        self._lock = threading.RLock()

    # -- markets and outcomes (called by the runners) ----------------------------------------------
    def add_market(self, m: MarketInfo) -> bool:
        """Start trading ``m`` (idempotent; a retired market is not revived). True when new."""
        if m.condition_id in self.markets or m.condition_id in self.retired:
            return False
        self.markets[m.condition_id] = m
        self.feed.add_market(m)
        return True

    def resolve(self, condition_id: str, up_wins: bool, source: str) -> None:
        """The outcome of a market (applied at the first tick at or after its window end)."""
        self.outcomes.setdefault(condition_id, (bool(up_wins), source))

    def active_markets(self, now: float) -> list[MarketInfo]:
        return [m for m in self.markets.values() if m.window_start <= now < m.window_end]

    def awaiting_outcome(self, now: float) -> list[MarketInfo]:
        """Markets past their window that still hold positions and have no outcome yet."""
        return [
            m
            for cid, m in self.markets.items()
            if now >= m.window_end and cid not in self.outcomes and self.positions.first_in(cid)
        ]

    # -- one tick ---------------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """One decision tick at ``now`` (the feed already holds every message up to ``now``)."""
        with self._lock:
            self.now = now
            self.counters["ticks"] += 1
            self._settle_resolved(now)
            if now - self._last_safety >= self.cfg.safety_interval_s - 1e-9:
                self._last_safety = now
                self.run_safety(now)
            active = self.active_markets(now)
            if active:
                features, histories = self._observe(active, now)
                decisions = self._decide(active, features, histories, now)
                for d in decisions:
                    self._act(d, now)
                if self.learner is not None:
                    self._learn(active, now)
            self.journal.flush(self)

    def _observe(self, active: list[MarketInfo], now: float) -> tuple[np.ndarray, np.ndarray]:
        feats, hists = [], []
        for m in active:
            book = self.feed.books[m.condition_id]
            f = compute_features(
                self.feed.flow(SYMBOLS.get(m.asset, m.asset + "USDT")),
                book,
                self._position_view(m, book),
                now,
                m.window_end,
            )
            feats.append(f)
            hists.append(self.histories.setdefault(m.condition_id, HistoryWindow()).push(f))
        return np.stack(feats), np.stack(hists)

    def _position_view(self, m: MarketInfo, book: MarketBook) -> PositionView:
        pos = self.positions.first_in(m.condition_id)
        if pos is None:
            return PositionView()
        return position_view(pos.side, pos.shares, pos.cost, book.book, m.fees or self.cfg.fees)

    def _decide(
        self, active: list[MarketInfo], features: np.ndarray, histories: np.ndarray, now: float
    ) -> list[Decision]:
        if self.learner is not None:
            actions, logp, values = self.learner.act(features, histories)
            self._step = (features, histories, actions, logp, values)
            return [Decision(m, int(actions[i]), None, features[i]) for i, m in enumerate(active)]
        probs = np.asarray(self.policy.action_probs(features, histories), dtype=np.float64)
        actions = self._choose(probs, active, now)
        return [
            Decision(m, int(actions[i]), [round(float(x), 6) for x in probs[i]], features[i])
            for i, m in enumerate(active)
        ]

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

    def _act(self, d: Decision, now: float) -> None:
        if d.action == HOLD:
            return
        m = d.market
        held = self.positions.first_in(m.condition_id)
        if held is not None:
            if (d.action == BUY and held.side == DOWN) or (d.action == SELL and held.side == UP):
                self.close(held, SIGNAL, now)
            return
        if m.window_end - now < self.safety.config.close_before_end_s + self.cfg.entry_margin_s:
            return  # the window-end rule would close it at once
        up_book = self.feed.books[m.condition_id].book
        if now - up_book.ts > self.safety.config.stale_book_s:
            self.counters["entries_blocked"] += 1
            return  # never enter on a book the stale-book rule would close at once
        side = UP if d.action == BUY else DOWN
        ask = (up_book if side == UP else up_book.complement()).best_ask()
        usd = self.sizing(self.cfg.trade_size, 0.5 if ask is None else ask)
        if self.safety.entry_block(self.positions, usd, self.feed_problem) is not None:
            self.counters["entries_blocked"] += 1
            return
        self.open(m, side, usd, d.probs, d.features, now)

    # -- positions --------------------------------------------------------------------------------
    def open(
        self, m: MarketInfo, side: str, usd: float, probs: list[float] | None, feats: np.ndarray, now: float
    ) -> Position | None:
        """Buy ``usd`` of the ``side`` token; the filled part becomes an open position."""
        fill = self.execution.buy(m, side, usd, self.feed.books[m.condition_id].book, now)
        if fill.rejected or fill.shares <= 0:
            log.info("entry %s %s not filled: %s", side, m.slug, fill.rejected)
            return None
        key = f"{m.condition_id}@{now:.3f}"
        pos = Position(
            self._trade_id(key), key, m, side, now, fill.avg_price, fill.shares,
            fill.notional + fill.fee, fill.fee_value,
        )  # fmt: skip
        self.positions.add(pos)
        self.journal.opened(pos, probs, feats)
        if self.cfg.commit_each_fill:
            self.journal.flush(self)  # real money moved: record it now
        return pos

    def close(self, pos: Position, reason: str, now: float) -> bool:
        """Sell ``pos``; a failed sell keeps it open, reports once per rule and returns False."""
        fill = self.execution.sell(pos, self.feed.books[pos.condition_id].book, now)
        if fill.rejected or fill.shares <= 0:
            self._failed_exit(pos, reason, fill)
            return False
        cost, entry_fee = pos.split(fill.shares)
        pnl = fill.notional - fill.fee - cost
        rest = None
        if pos.shares - fill.shares > 1e-9:
            key = rest_key(pos.trade_key, now)
            rest = Position(
                self._trade_id(key), key, pos.market, pos.side, pos.entry_time, pos.entry_price,
                pos.shares - fill.shares, pos.cost - cost, pos.entry_fee - entry_fee,
            )  # fmt: skip
        self._finish(pos, Exit(now, fill.avg_price, fill.fee_value, reason, pnl, fill.shares), rest)
        if self.cfg.commit_each_fill:
            self.journal.flush(self)
        return True

    def _failed_exit(self, pos: Position, reason: str, fill: Fill) -> None:
        self.counters["sell_failures"] += 1
        if self.failed_exits.get(pos.trade_id) != reason:
            self.failed_exits[pos.trade_id] = reason
            self.journal.problem(
                "executor",
                f"could not close {pos.side} {pos.market.slug} ({reason}): {fill.rejected}; "
                "position kept open",
            )

    def _finish(self, pos: Position, exit: Exit, remainder: Position | None = None) -> None:
        self.positions.remove(pos)
        self.failed_exits.pop(pos.trade_id, None)
        if remainder is not None:
            self.positions.add(remainder)
        tripped = self.safety.record_close(exit.pnl)
        for rule in (exit.reason, *tripped):
            self.trips[rule] = self.trips.get(rule, 0) + 1
        cid = pos.condition_id
        self._pending_reward[cid] = self._pending_reward.get(cid, 0.0) + exit.pnl
        self.journal.closed(pos, exit, remainder)
        for rule in tripped:
            self.journal.problem("safety", f"safety limit tripped: {rule}; entries paused")

    def _settle_resolved(self, now: float) -> None:
        """Close every position of each resolved market at 1 or 0, then retire the market."""
        for cid, m in list(self.markets.items()):
            if now < m.window_end:
                continue
            held = self.positions.in_market(cid)
            if held:
                outcome = self._outcome(m)
                if outcome is None:
                    continue  # wait for the resolution; the positions stay open and visible
                up_wins, source = outcome
                for pos in held:
                    self._settle(pos, up_wins, source, now)
            if not self.positions.in_market(cid):
                self._retire(m)
        # Forget retired markets after a while so a long session's state stays bounded.
        for cid, end in list(self.retired.items()):
            if now - end > self.cfg.retire_after_s:
                del self.retired[cid]

    def _outcome(self, m: MarketInfo) -> tuple[bool, str] | None:
        known = self.outcomes.get(m.condition_id)
        if known is not None:
            return known
        event = self.feed.resolved.get(m.condition_id)
        up_wins = None if event is None else event.up_wins(m)
        return None if up_wins is None else (up_wins, "market_resolved")

    def _settle(self, pos: Position, up_wins: bool, source: str, now: float) -> None:
        won = (pos.side == UP) == up_wins
        red: Redemption = self.execution.settle(pos, up_wins, now)
        payout = pos.shares if won else 0.0
        exit = Exit(
            now, 1.0 if won else 0.0, 0.0, SETTLEMENT, payout - pos.cost, pos.shares, red.status, source
        )
        self._finish(pos, exit)
        if red.status == PENDING:
            self.journal.problem(
                "settlement",
                f"{pos.market.slug} resolved ({source}): {pos.shares:.2f} winning {pos.side} shares "
                f"pending redemption{': ' + red.detail if red.detail else ''}",
            )

    def _retire(self, m: MarketInfo) -> None:
        cid = m.condition_id
        self.markets.pop(cid, None)
        self.histories.pop(cid, None)
        self.outcomes.pop(cid, None)
        self._pending_reward.pop(cid, None)
        self.feed.remove_market(m)
        self.retired[cid] = m.window_end

    def run_safety(self, now: float) -> list[tuple[str, str]]:
        """Apply the exit rules to every open position of a live window; returns (trade id, rule)."""
        marks: dict[str, Mark] = {}
        for pos in self.positions:
            book = self.feed.books[pos.condition_id].book
            marks[pos.trade_id] = Mark(pos.mark(book), book.ts if book.ts > 0 else None)
        exits = self.safety.exits(self.positions, marks)
        for trade_id, reason in exits:
            pos = self.positions.get(trade_id)
            if pos is not None and now < pos.window_end:
                self.close(pos, reason, now)
        return exits

    def close_all(self, reason: str = SHUTDOWN) -> int:
        """Emergency close of every open position (shutdown), recorded at once; returns how many."""
        with self._lock:
            n = sum(self.close(p, reason, self.now) for p in self.positions)
            self.journal.flush(self)
            return n

    # -- online learning --------------------------------------------------------------------------
    def _learn(self, active: list[MarketInfo], now: float) -> None:
        assert self.learner is not None
        fx, hx, actions, logp, values = self._step
        # Reward of each action is the PnL it realised by the next tick (closes and settlements).
        rewards = [self._pending_reward.pop(m.condition_id, 0.0) for m in active]
        dones = [now + self.cfg.tick_s >= m.window_end for m in active]
        self.learner.record([m.condition_id for m in active], fx, hx, actions, logp, values, rewards, dones)
        if self.learner.ready():
            stats = self.learner.update()
            log.info("online PPO update: %s", stats.as_dict() if hasattr(stats, "as_dict") else stats)

    # -- checkpoint -------------------------------------------------------------------------------
    def state(self) -> EngineState:
        return EngineState(
            cursor=self.now,
            safety=self.safety.to_dict(),
            histories={k: h.rows() for k, h in self.histories.items()},
            outcomes={k: [v[0], v[1]] for k, v in self.outcomes.items()},
            retired=sorted(self.retired),
            last_safety=self._last_safety if math.isfinite(self._last_safety) else None,
            counters=dict(self.counters),
            trips=dict(self.trips),
            failed_exits=dict(self.failed_exits),
        )

    def restore(self, state: EngineState, positions: Iterable[Position]) -> int:
        """Load a checkpoint and the open positions stored with it; returns how many were restored."""
        self.now = state.cursor
        if state.safety:
            self.safety.restore(state.safety)
        for cid, rows in state.histories.items():
            h = self.histories[cid] = HistoryWindow()
            for row in rows:
                h.push(np.asarray(row, dtype=np.float32))
        self.outcomes.update({k: (bool(v[0]), str(v[1])) for k, v in state.outcomes.items()})
        if state.last_safety is not None:
            self._last_safety = float(state.last_safety)
        self.counters.update(state.counters)
        self.trips.update(state.trips)
        self.failed_exits.update(state.failed_exits)
        n = 0
        for pos in positions:
            self.add_market(pos.market)
            self.positions.add(pos)
            n += 1
        for cid in state.retired:
            if not self.positions.first_in(cid):
                m = self.markets.get(cid)
                if m is not None:
                    self._retire(m)
                else:
                    self.retired[cid] = state.cursor
        return n

    def _trade_id(self, trade_key: str) -> str:
        # Deterministic: a re-run of the same session and tick gives the same id.
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"stratforge-trade:{self.name}/{trade_key}"))


def rest_key(trade_key: str, now: float) -> str:
    """The key of the unsold rest of a partial close: the entry's key, the split's generation and
    time (unique even for two splits in one tick; not nested, so it never outgrows the column)."""
    base, sep, tail = trade_key.partition("/rest")
    gen = tail.split("@", 1)[0]
    return f"{base}/rest{int(gen) + 1 if sep and gen.isdigit() else 1}@{now:.3f}"


def inference_policy(policy: Any) -> Any:
    """The fastest equivalent of ``policy`` for inference: the model's pure-NumPy forward pass when
    it has one (several times faster than an MLX call for a 4-market batch: dispatch overhead
    dominates such tiny networks), else ``policy`` itself."""
    params = getattr(policy, "numpy_params", None)
    if params is None:
        return policy
    try:
        return _NumpyPolicy(params())
    except Exception:  # an architecture the NumPy path does not know: keep MLX
        return policy


class _NumpyPolicy:
    def __init__(self, params: dict[str, np.ndarray]) -> None:
        from stratforge.trader.model import numpy_forward

        self.params = params
        self._forward: Callable[..., Any] = numpy_forward

    def action_probs(self, features: np.ndarray, history: np.ndarray) -> np.ndarray:
        return self._forward(self.params, features, history)[0]
