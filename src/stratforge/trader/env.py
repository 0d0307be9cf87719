"""Gymnasium-style environment over the concurrent 15-minute markets of a session (for training).

One slot per asset; a slot holds that asset's current market and moves on to the next window when the
current one settles (so a multi-window replay is one episode). Each `step` is one decision tick:

1. actions (HOLD=0, BUY=1, SELL=2 per slot) are turned into orders using the position at decision
   time t: BUY opens UP or closes DOWN, SELL opens DOWN or closes UP (the reference's semantics).
   Entries follow the trading engine's rules: sized by `sizing` (confidence sizing by default), none
   in the last ``close_before_end_s + entry_margin_s`` of a window or on a stale book, and none the
   safety entry rules refuse (max positions / exposure, daily loss, loss streak);
2. the feed advances to t + latency and the orders fill against the books of that moment, with the
   market's taker fee schedule;
3. the feed advances to t + tick; markets whose window ended settle on their recorded outcome
   (`settle_outcome`: the venue's resolution, else the resolution source's price, else, flagged, the
   futures price);
4. every ``safety_interval_s`` the safety exit rules (window end, max age, stale book, take profit,
   stop loss) close positions against the books of the new tick, as the engine does;
5. the next observation is computed and pushed to each slot's history exactly once.

Rewards are the realized PnL in USDC after fees (closes, safety exits and settlements) per slot.
`info["market_end"]` marks slots whose market settled during the step, so learners can cut advantages
per market. Evaluation and backtests do not use this class: they run the trading engine itself
(`stratforge.trader.train.run_engine`), so their trades are the trades `trader run` makes.

The feed does not depend on the agent's (small, taker) orders, so `reset` first runs the session's
messages once through the state code and records a `Tape`: per tick, the position-free features,
the books at decision time and at decision time + latency, and the settlements. Stepping then only
touches the broker and the histories; several policies can be evaluated on one tape (paired runs)
for the cost of one pass over the feed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from stratforge.trader.broker import BrokerConfig, PaperBroker, Position
from stratforge.trader.features import (
    HISTORY_LEN,
    N_FEATURES,
    FuturesFlow,
    HistoryWindow,
    MarketBook,
    OrderBook,
    PositionView,
    clamp,
    compute_features,
)
from stratforge.trader.markets.messages import (
    SYMBOLS,
    AggTrade,
    BookSnapshot,
    Kline,
    MarketInfo,
    MarketResolved,
    Message,
    PriceChange,
)
from stratforge.trader.markets.session import Session
from stratforge.trader.markets.synthetic import SyntheticConfig, generate_session
from stratforge.trader.safety import Mark, Safety, SafetyConfig
from stratforge.trader.sizing import sizing_named

HOLD, BUY, SELL = 0, 1, 2
ACTION_NAMES = ("HOLD", "BUY", "SELL")


@dataclass
class EnvConfig:
    tick_s: float = 5.0
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    sizing: str = "confidence"  # or "fixed" (see `sizing`)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    safety_interval_s: float = 10.0
    entry_margin_s: float = 60.0  # the engine's: no entry the window-end rule would close at once


class Observation(NamedTuple):
    features: np.ndarray  # [n_slots, 18]
    history: np.ndarray  # [n_slots, 90], oldest state first, includes the current one
    mask: np.ndarray  # [n_slots] bool: the slot has an active market
    context: dict[str, np.ndarray]  # raw quantities for rule-based baselines (not model inputs)


class FeedState:
    """Applies feed messages to per-symbol futures flow and per-market UP books.

    Replays pull messages from the session (:meth:`advance`); live runners push them one by one
    (:meth:`apply`) and keep nothing else, and follow the active markets with :meth:`add_market` /
    :meth:`remove_market`. ``resolved`` holds the venue's ``market_resolved`` winners by condition id.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self.flows: dict[str, FuturesFlow] = {}
        self.books: dict[str, MarketBook] = {}  # by condition_id
        self._by_token: dict[str, MarketBook] = {}
        self.resolved: dict[str, MarketResolved] = {}
        for m in session.markets:
            self.add_market(m)
        self._i = 0
        self.now = -np.inf

    def add_market(self, m: MarketInfo) -> MarketBook:
        """Start keeping the book of ``m`` (idempotent)."""
        mb = self.books.get(m.condition_id)
        if mb is None:
            mb = self.books[m.condition_id] = MarketBook(m.up_token)
            self._by_token[m.up_token] = mb
        return mb

    def remove_market(self, m: MarketInfo) -> None:
        """Forget the book of a market that is over (bounded memory in long sessions)."""
        mb = self.books.pop(m.condition_id, None)
        if mb is not None:
            self._by_token.pop(mb.up_token, None)
        self.resolved.pop(m.condition_id, None)

    def flow(self, symbol: str) -> FuturesFlow:
        f = self.flows.get(symbol)
        if f is None:
            f = self.flows[symbol] = FuturesFlow()
        return f

    def apply(self, m: Message) -> None:
        """Apply one feed message (unknown kinds are ignored)."""
        if isinstance(m, AggTrade):
            self.flow(m.symbol).on_trade(m)
        elif isinstance(m, PriceChange):
            done: set[str] = set()
            for asset_id, *_ in m.changes:
                mb = self._by_token.get(asset_id)
                if mb is not None and asset_id not in done:
                    mb.on_change(m)
                    done.add(asset_id)
        elif isinstance(m, BookSnapshot):
            mb = self._by_token.get(m.asset_id)
            if mb is not None:
                mb.on_snapshot(m)
        elif isinstance(m, Kline):
            self.flow(m.symbol).on_kline(m)
        elif isinstance(m, MarketResolved):
            self.resolved[m.market] = m

    def advance(self, t: float) -> int:
        """Apply every session message with time <= t. Returns how many were applied."""
        msgs = self.session.messages
        i, n = self._i, len(msgs)
        apply = self.apply
        while i < n:
            m = msgs[i]
            if m.ts > t:
                break
            apply(m)
            i += 1
        applied = i - self._i
        self._i = i
        self.now = t
        return applied


class Settlement(NamedTuple):
    slot: int
    market: MarketInfo
    up_wins: bool
    strike: float
    final: float
    source: str  # MARKET_RESOLVED | RESOLUTION_PRICE | FUTURES_FALLBACK (see `settle_outcome`)


MARKET_RESOLVED = "market_resolved"  # the venue's resolution event (the winning token)
RESOLUTION_PRICE = "resolution_price"  # a recorded resolution (the resolution source's prices)
FUTURES_FALLBACK = "futures_fallback"  # no resolution recorded: our futures prices (flagged)


@dataclass
class TickRecord:
    t: float
    markets: list[MarketInfo | None]  # per slot
    features: np.ndarray  # [n, 18], position features (12-14) zero
    books: list[OrderBook | None]  # UP books at t
    fill_books: list[OrderBook | None] = field(default_factory=list)  # UP books at t + latency
    settlements: list[Settlement] = field(default_factory=list)
    context: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Tape:
    assets: list[str]
    ticks: list[TickRecord]
    session: Session


def _copy_book(b: OrderBook) -> OrderBook:
    c = OrderBook()
    c.bids = dict(b.bids)
    c.asks = dict(b.asks)
    c.ts = b.ts
    return c


def futures_outcome(m: MarketInfo, feed: FeedState, strike: float | None = None) -> bool | None:
    """UP wins by our futures prices (final >= strike at the window's end and start): the fallback
    when no resolution is known (results flag it). None without prices."""
    flow = feed.flow(SYMBOLS[m.asset])
    k = m.strike if m.strike is not None else strike
    if k is None or k != k:
        k = flow.price_at(m.window_start)
    final = flow.price_at(m.window_end)
    if final is None or k is None:
        return None
    return final >= k


def settle_outcome(
    m: MarketInfo, session: Session, feed: FeedState, strike: float | None = None
) -> tuple[bool, float, float, str]:
    """(UP wins, strike, final, source) of a market of a recorded session whose window ended, as the
    venue settles it: the venue's ``market_resolved`` (MARKET_RESOLVED), else a recorded resolution
    with the resolution source's prices (RESOLUTION_PRICE), else our futures prices
    (FUTURES_FALLBACK, flagged in every result). The engine's replays follow the same order
    (`replay_runner.settle_waiting`)."""
    nan = float("nan")
    event = feed.resolved.get(m.condition_id) or session.venue_resolution(m.condition_id)
    if event is not None and event.up_wins(m) is not None:
        return bool(event.up_wins(m)), nan, nan, MARKET_RESOLVED
    res = session.resolutions.get(m.condition_id)
    if res is not None:
        return res.up_wins, res.strike, res.final, RESOLUTION_PRICE
    up = futures_outcome(m, feed, strike)
    if up is None:
        raise ValueError(f"cannot resolve {m.slug}: no resolution and no futures price at its window start/end")
    flow = feed.flow(SYMBOLS[m.asset])
    k = m.strike if m.strike is not None else (strike if strike == strike else flow.price_at(m.window_start))
    return up, float(k if k is not None else nan), float(flow.price_at(m.window_end) or nan), FUTURES_FALLBACK


def record_tape(session: Session, cfg: EnvConfig, assets: list[str] | None = None) -> Tape:
    """One pass of the session's feed through the state code, sampled at the decision ticks."""
    assets = assets or session.assets
    n = len(assets)
    feed = FeedState(session)
    queues = [
        sorted((m for m in session.markets if m.asset == a), key=lambda m: m.window_start) for a in assets
    ]
    current: list[MarketInfo | None] = [None] * n
    strikes: dict[str, float] = {}
    if not session.markets:
        raise ValueError("session has no markets")
    t = float(min(m.window_start for m in session.markets))
    flat = PositionView()

    def activate(now: float) -> None:
        for i in range(n):
            if current[i] is not None:
                continue
            q = queues[i]
            while q and q[0].window_end <= now:
                q.pop(0)  # windows that ended before we got to them (replay gaps)
            if q and q[0].window_start <= now:
                m = q.pop(0)
                current[i] = m
                k = m.strike
                if k is None:
                    k = feed.flow(SYMBOLS[m.asset]).price_at(m.window_start)
                strikes[m.condition_id] = float("nan") if k is None else float(k)

    def observe(now: float) -> TickRecord:
        feats = np.zeros((n, N_FEATURES), dtype=np.float32)
        books: list[OrderBook | None] = [None] * n
        ctx = {k: np.full(n, np.nan) for k in ("bid", "ask", "mid", "time_left", "true_prob", "market_index")}
        for i, m in enumerate(current):
            if m is None:
                continue
            mb = feed.books[m.condition_id]
            feats[i] = compute_features(feed.flow(SYMBOLS[m.asset]), mb, flat, now, m.window_end)
            books[i] = _copy_book(mb.book)
            b, a = mb.book.best_bid(), mb.book.best_ask()
            ctx["bid"][i] = np.nan if b is None else b
            ctx["ask"][i] = np.nan if a is None else a
            ctx["mid"][i] = np.nan if (a is None or b is None) else 0.5 * (a + b)
            ctx["time_left"][i] = m.window_end - now
            ctx["true_prob"][i] = session.true_prob(m.condition_id, now)
            ctx["market_index"][i] = int(m.condition_id[-8:], 16) if m.condition_id.startswith("0x") else i
        return TickRecord(now, list(current), feats, books, context=ctx)

    def outcome(m: MarketInfo) -> tuple[bool, float, float, str]:
        return settle_outcome(m, session, feed, strikes.get(m.condition_id, float("nan")))

    feed.advance(t)
    activate(t)
    ticks = [observe(t)]
    while True:
        rec = ticks[-1]
        feed.advance(t + cfg.broker.latency_s)
        rec.fill_books = [
            None if m is None else _copy_book(feed.books[m.condition_id].book) for m in rec.markets
        ]
        t += cfg.tick_s
        feed.advance(t)
        for i in range(n):
            m = current[i]
            if m is not None and m.window_end <= t:
                rec.settlements.append(Settlement(i, m, *outcome(m)))
                current[i] = None
        activate(t)
        if all(c is None for c in current) and not any(queues):
            break
        ticks.append(observe(t))
    ticks.append(TickRecord(t, [None] * n, np.zeros((n, N_FEATURES), dtype=np.float32), [None] * n))
    return Tape(assets, ticks, session)


class TraderEnv:
    """Vector-of-markets environment. Construct with a fixed `session` (or a recorded `tape`), or with a
    `session_fn(seed)` (default: the synthetic generator) to draw a new session on every `reset(seed)`."""

    def __init__(
        self,
        cfg: EnvConfig | None = None,
        session: Session | None = None,
        session_fn: Callable[[int], Session] | None = None,
        tape: Tape | None = None,
    ) -> None:
        self.cfg = cfg or EnvConfig()
        self._tape = tape
        self._fixed = session if tape is None else tape.session
        self._session_fn = session_fn or (lambda seed: generate_session(seed, self.cfg.synthetic))
        if tape is not None:
            self.assets = list(tape.assets)
        elif session is not None:
            self.assets = session.assets
        else:
            self.assets = list(self.cfg.synthetic.assets)
        self.n = len(self.assets)
        self.session: Session | None = None

    @property
    def tape(self) -> Tape | None:
        return self._tape

    # -- lifecycle -------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> tuple[Observation, dict[str, Any]]:
        if self._fixed is not None:
            if self._tape is None:
                self._tape = record_tape(self._fixed, self.cfg, self.assets)
        else:
            session = self._session_fn(0 if seed is None else int(seed))
            self._tape = record_tape(session, self.cfg, self.assets)
        self.session = self._tape.session
        self.broker = PaperBroker(self.cfg.broker)
        self._now = self._tape.ticks[0].t
        self.safety = Safety(self.cfg.safety, clock=lambda: self._now)
        self._last_safety = -np.inf
        self._sizing = sizing_named(self.cfg.sizing)
        self.exits: dict[str, int] = {}  # safety exits by rule
        self.histories = [HistoryWindow() for _ in range(self.n)]
        self._k = 0
        self.settled: list[dict[str, Any]] = []
        self._realized = 0.0
        rec = self._tape.ticks[0]
        self.equity: list[tuple[float, float]] = [(rec.t, 0.0)]
        self._prev_markets: list[MarketInfo | None] = [None] * self.n
        obs = self._observe()
        return obs, {"t": rec.t, "markets": [m.slug if m else None for m in rec.markets]}

    @property
    def t(self) -> float:
        return self._tape.ticks[self._k].t if self._tape else float("nan")

    @property
    def current(self) -> list[MarketInfo | None]:
        return self._tape.ticks[self._k].markets if self._tape else [None] * self.n

    @property
    def done(self) -> bool:
        return self._tape is not None and self._k >= len(self._tape.ticks) - 1

    # -- stepping --------------------------------------------------------------------------------
    def step(
        self, actions: np.ndarray | list[int]
    ) -> tuple[Observation, np.ndarray, bool, bool, dict[str, Any]]:
        if self._tape is None:
            raise RuntimeError("call reset() first")
        if self.done:
            raise RuntimeError("episode is over; call reset()")
        acts = np.asarray(actions, dtype=np.int64).reshape(-1)
        if acts.shape[0] != self.n:
            raise ValueError(f"expected {self.n} actions, got {acts.shape[0]}")
        rec = self._tape.ticks[self._k]
        rewards = np.zeros(self.n, dtype=np.float64)
        market_end = np.zeros(self.n, dtype=bool)
        fills = []
        t_fill = rec.t + self.cfg.broker.latency_s
        for i, a in enumerate(acts):
            if a not in (HOLD, BUY, SELL):
                raise ValueError(f"invalid action {a}; use 0=HOLD, 1=BUY, 2=SELL")
            m = rec.markets[i]
            if m is None or a == HOLD:
                continue
            pos = self.broker.positions.get(m.condition_id)
            book = rec.fill_books[i]
            assert book is not None
            if pos is None:
                # BUY opens UP, SELL opens DOWN
                token = "UP" if a == BUY else "DOWN"
                usd = self._entry_usd(rec, i, token)
                if usd <= 0:
                    continue
                fill = self.broker.buy(m.condition_id, m.asset, token, usd, book, t_fill, m.fees)
                fills.append((m.slug, "open_" + token.lower(), fill))
            elif (a == BUY and pos.token == "DOWN") or (a == SELL and pos.token == "UP"):
                fill, pnl = self.broker.close(m.condition_id, book, t_fill)
                if not fill.rejected:
                    rewards[i] += pnl
                    self.safety.record_close(pnl)
                fills.append((m.slug, "close", fill))
        for st in rec.settlements:
            pnl = self.broker.settle(st.market.condition_id, st.up_wins, st.market.window_end)
            rewards[st.slot] += pnl
            market_end[st.slot] = True
            self.settled.append(
                {"slug": st.market.slug, "strike": st.strike, "final": st.final, "up_wins": st.up_wins,
                 "settle_pnl": pnl, "resolved_by": st.source}
            )  # fmt: skip
        self._k += 1
        self._now = self.t
        if not self.done and self._now - self._last_safety >= self.cfg.safety_interval_s - 1e-9:
            self._last_safety = self._now
            for i, pnl in self._safety_exits(fills):
                rewards[i] += pnl
        self._realized += float(rewards.sum())
        self.equity.append((self.t, self._realized))
        obs = self._observe()
        info = {"t": self.t, "market_end": market_end, "fills": fills}
        return obs, rewards, self.done, False, info

    def _entry_usd(self, rec: TickRecord, i: int, token: str) -> float:
        """Size of an entry at decision time, 0 when the engine's entry rules refuse it."""
        m, book = rec.markets[i], rec.books[i]
        assert m is not None and book is not None
        cfg = self.cfg
        if m.window_end - rec.t < cfg.safety.close_before_end_s + cfg.entry_margin_s:
            return 0.0  # the window-end rule would close it at once
        if rec.t - book.ts > cfg.safety.stale_book_s:
            return 0.0  # never enter on a book the stale-book rule would close at once
        ask = (book if token == "UP" else book.complement()).best_ask()
        usd = self._sizing(cfg.broker.trade_usd, 0.5 if ask is None else ask)
        if self.safety.entry_block(list(self._held_views()), usd) is not None:
            return 0.0
        return usd

    def _held_views(self) -> list[_Held]:
        return [_Held(p) for p in self.broker.positions.values()]

    def _safety_exits(self, fills: list[Any]) -> list[tuple[int, float]]:
        """Run the safety exit rules at the current tick; returns (slot, realized PnL) per exit."""
        rec = self._tape.ticks[self._k]  # type: ignore[union-attr]
        out = []
        for i, m in enumerate(rec.markets):
            pos = None if m is None else self.broker.positions.get(m.condition_id)
            book = rec.books[i]
            if pos is None or book is None or m is None or self._now >= m.window_end:
                continue
            own = book if pos.token == "UP" else book.complement()
            held = _Held(pos, m.window_end)
            reason = self.safety.exit_reason(held, Mark(own.best_bid(), book.ts or None), self._now)
            if reason is None:
                continue
            fill, pnl = self.broker.close(m.condition_id, book, self._now)
            fills.append((m.slug, reason, fill))
            if not fill.rejected:
                self.safety.record_close(pnl)
                self.exits[reason] = self.exits.get(reason, 0) + 1
                out.append((i, pnl))
        return out

    # -- observation -----------------------------------------------------------------------------
    def _observe(self) -> Observation:
        rec = self._tape.ticks[self._k]  # type: ignore[union-attr]
        feats = rec.features.copy()
        hist = np.zeros((self.n, N_FEATURES * HISTORY_LEN), dtype=np.float32)
        mask = np.zeros(self.n, dtype=bool)
        side = np.zeros(self.n)
        for i, m in enumerate(rec.markets):
            if m is None:
                continue
            if self._prev_markets[i] is not m:
                self.histories[i].reset()  # a new market starts with an empty window
                self._prev_markets[i] = m
            pos = self.broker.positions.get(m.condition_id)
            if pos is not None:
                book = rec.books[i]
                assert book is not None
                feats[i, 12] = 1.0
                feats[i, 13] = float(pos.side)
                feats[i, 14] = clamp(self.broker.unrealized_roi(m.condition_id, book))
                side[i] = pos.side
            hist[i] = self.histories[i].push(feats[i])
            mask[i] = True
        ctx = dict(rec.context)
        ctx["side"] = side
        return Observation(feats, hist, mask, ctx)

    def report(self) -> dict[str, Any]:
        rep = self.broker.report()
        rep["equity"] = self.equity
        rep["safety_exits"] = dict(self.exits)
        rep["futures_fallback_settlements"] = sum(
            1 for x in self.settled if x["resolved_by"] == FUTURES_FALLBACK
        )
        return rep


class _Held:
    """A broker position as the safety rules read it (entry time and price, cost, window end)."""

    def __init__(self, pos: Position, window_end: float = float("inf")) -> None:
        self.key = self.trade_id = pos.market
        self.market = pos.market
        self.side = pos.token
        self.entry_time = pos.opened_ts
        self.entry_price = pos.cost / pos.shares if pos.shares > 0 else 0.0
        self.cost = self.size_dollars = pos.cost
        self.window_end = window_end
