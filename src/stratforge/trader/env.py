"""Gymnasium-style environment over the concurrent 15-minute markets of a session.

One slot per asset; a slot holds that asset's current market and moves on to the next window when the
current one settles (so a multi-window replay is one episode). Each `step` is one decision tick:

1. actions (HOLD=0, BUY=1, SELL=2 per slot) are turned into orders using the position at decision
   time t: BUY opens UP or closes DOWN, SELL opens DOWN or closes UP (the reference's semantics);
2. the feed advances to t + latency and the orders fill against the books of that moment;
3. the feed advances to t + tick; markets whose window ended settle (UP pays 1 if final >= strike);
4. the next observation is computed and pushed to each slot's history exactly once.

Rewards are the realized PnL in USDC after fees (closes and settlements) per slot. `info["market_end"]`
marks slots whose market settled during the step, so learners can cut advantages per market.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from stratforge.trader.broker import BrokerConfig, PaperBroker
from stratforge.trader.features import (
    HISTORY_LEN,
    N_FEATURES,
    FuturesFlow,
    HistoryWindow,
    MarketBook,
    PositionView,
    compute_features,
)
from stratforge.trader.markets.messages import (
    SYMBOLS,
    AggTrade,
    BookSnapshot,
    Kline,
    MarketInfo,
    PriceChange,
)
from stratforge.trader.markets.session import Session
from stratforge.trader.markets.synthetic import SyntheticConfig, generate_session

HOLD, BUY, SELL = 0, 1, 2
ACTION_NAMES = ("HOLD", "BUY", "SELL")


@dataclass
class EnvConfig:
    tick_s: float = 5.0
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


class Observation(NamedTuple):
    features: np.ndarray  # [n_slots, 18]
    history: np.ndarray  # [n_slots, 90], oldest state first, includes the current one
    mask: np.ndarray  # [n_slots] bool: the slot has an active market
    context: dict[str, np.ndarray]  # raw quantities for rule-based baselines (not model inputs)


class FeedState:
    """Applies feed messages to per-symbol futures flow and per-market UP books."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.flows: dict[str, FuturesFlow] = {}
        self.books: dict[str, MarketBook] = {}  # by condition_id
        self._by_token: dict[str, MarketBook] = {}
        for m in session.markets:
            mb = MarketBook(m.up_token)
            self.books[m.condition_id] = mb
            self._by_token[m.up_token] = mb
        self._i = 0
        self.now = -np.inf

    def flow(self, symbol: str) -> FuturesFlow:
        f = self.flows.get(symbol)
        if f is None:
            f = self.flows[symbol] = FuturesFlow()
        return f

    def advance(self, t: float) -> int:
        """Apply every message with time <= t. Returns how many were applied."""
        msgs = self.session.messages
        i, n = self._i, len(msgs)
        flows, by_token = self.flows, self._by_token
        while i < n:
            m = msgs[i]
            if m.ts > t:
                break
            if isinstance(m, AggTrade):
                f = flows.get(m.symbol) or self.flow(m.symbol)
                f.on_trade(m)
            elif isinstance(m, PriceChange):
                done: set[str] = set()
                for asset_id, *_ in m.changes:
                    mb = by_token.get(asset_id)
                    if mb is not None and asset_id not in done:
                        mb.on_change(m)
                        done.add(asset_id)
            elif isinstance(m, BookSnapshot):
                mb = by_token.get(m.asset_id)
                if mb is not None:
                    mb.on_snapshot(m)
            elif isinstance(m, Kline):
                (flows.get(m.symbol) or self.flow(m.symbol)).on_kline(m)
            i += 1
        applied = i - self._i
        self._i = i
        self.now = t
        return applied


class TraderEnv:
    """Vector-of-markets environment. Construct with a fixed `session`, or with a `session_fn(seed)`
    (default: the synthetic generator) to draw a new session on every `reset(seed)`."""

    def __init__(
        self,
        cfg: EnvConfig | None = None,
        session: Session | None = None,
        session_fn: Callable[[int], Session] | None = None,
    ) -> None:
        self.cfg = cfg or EnvConfig()
        self._fixed = session
        self._session_fn = session_fn or (lambda seed: generate_session(seed, self.cfg.synthetic))
        self.assets: list[str] = list(session.assets if session else self.cfg.synthetic.assets)
        self.n = len(self.assets)
        self.session: Session | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> tuple[Observation, dict[str, Any]]:
        if self._fixed is not None:
            self.session = self._fixed
        else:
            self.session = self._session_fn(0 if seed is None else int(seed))
        s = self.session
        self.feed = FeedState(s)
        self.broker = PaperBroker(self.cfg.broker)
        self._queues: list[list[MarketInfo]] = [
            sorted((m for m in s.markets if m.asset == a), key=lambda m: m.window_start) for a in self.assets
        ]
        self.current: list[MarketInfo | None] = [None] * self.n
        self.histories = [HistoryWindow() for _ in range(self.n)]
        self._strikes: dict[str, float] = {}
        self.settled: list[dict[str, Any]] = []
        self.equity: list[tuple[float, float]] = []
        self._realized = 0.0
        starts = [m.window_start for m in s.markets]
        if not starts:
            raise ValueError("session has no markets")
        self.t = float(min(starts))
        self.feed.advance(self.t)
        self._activate()
        obs = self._observe()
        self.equity.append((self.t, 0.0))
        return obs, {"t": self.t, "markets": [m.slug if m else None for m in self.current]}

    def _activate(self) -> None:
        for i in range(self.n):
            if self.current[i] is not None:
                continue
            q = self._queues[i]
            while q and q[0].window_end <= self.t:
                q.pop(0)  # windows that ended before we got to them (replay gaps)
            if q and q[0].window_start <= self.t:
                m = q.pop(0)
                self.current[i] = m
                self.histories[i].reset()
                strike = m.strike
                if strike is None:
                    strike = self.feed.flow(SYMBOLS[m.asset]).price_at(m.window_start)
                self._strikes[m.condition_id] = float("nan") if strike is None else float(strike)

    @property
    def done(self) -> bool:
        return all(c is None for c in self.current) and not any(self._queues)

    # -- stepping --------------------------------------------------------------------------------
    def step(
        self, actions: np.ndarray | list[int]
    ) -> tuple[Observation, np.ndarray, bool, bool, dict[str, Any]]:
        if self.session is None:
            raise RuntimeError("call reset() first")
        acts = np.asarray(actions, dtype=np.int64).reshape(-1)
        if acts.shape[0] != self.n:
            raise ValueError(f"expected {self.n} actions, got {acts.shape[0]}")
        rewards = np.zeros(self.n, dtype=np.float64)
        market_end = np.zeros(self.n, dtype=bool)
        fills = []
        # 1. orders from positions at decision time
        orders: list[tuple[int, str]] = []
        for i, a in enumerate(acts):
            m = self.current[i]
            if m is None or a == HOLD:
                continue
            pos = self.broker.positions.get(m.condition_id)
            if a == BUY:
                if pos is None:
                    orders.append((i, "open_up"))
                elif pos.token == "DOWN":
                    orders.append((i, "close"))
            elif a == SELL:
                if pos is None:
                    orders.append((i, "open_down"))
                elif pos.token == "UP":
                    orders.append((i, "close"))
            else:
                raise ValueError(f"invalid action {a}; use 0=HOLD, 1=BUY, 2=SELL")
        # 2. fill after latency
        if orders:
            t_fill = self.t + self.cfg.broker.latency_s
            self.feed.advance(t_fill)
            for i, kind in orders:
                m = self.current[i]
                assert m is not None
                book = self.feed.books[m.condition_id].book
                if kind == "close":
                    fill, pnl = self.broker.close(m.condition_id, book, t_fill)
                    rewards[i] += pnl
                else:
                    token = "UP" if kind == "open_up" else "DOWN"
                    fill = self.broker.buy(
                        m.condition_id, m.asset, token, self.cfg.broker.trade_usd, book, t_fill
                    )
                fills.append((m.slug, kind, fill))
        # 3. advance to the next tick; settle ended windows
        self.t += self.cfg.tick_s
        self.feed.advance(self.t)
        for i in range(self.n):
            m = self.current[i]
            if m is None or m.window_end > self.t:
                continue
            up_wins, strike, final = self._outcome(m)
            pnl = self.broker.settle(m.condition_id, up_wins, m.window_end)
            rewards[i] += pnl
            market_end[i] = True
            self.settled.append(
                {"slug": m.slug, "strike": strike, "final": final, "up_wins": up_wins, "settle_pnl": pnl}
            )
            self.current[i] = None
        self._activate()
        self._realized += float(rewards.sum())
        self.equity.append((self.t, self._realized))
        obs = self._observe()
        terminated = self.done
        info = {"t": self.t, "market_end": market_end, "fills": fills}
        return obs, rewards, terminated, False, info

    def _outcome(self, m: MarketInfo) -> tuple[bool, float, float]:
        res = self.session.resolutions.get(m.condition_id) if self.session else None
        if res is not None:
            return res.up_wins, res.strike, res.final
        strike = self._strikes.get(m.condition_id, float("nan"))
        final = self.feed.flow(SYMBOLS[m.asset]).price_at(m.window_end)
        if final is None or strike != strike:
            raise ValueError(f"cannot resolve {m.slug}: no futures price at its window start/end")
        return final >= strike, strike, final

    # -- observation -----------------------------------------------------------------------------
    def _observe(self) -> Observation:
        n = self.n
        feats = np.zeros((n, N_FEATURES), dtype=np.float32)
        hist = np.zeros((n, N_FEATURES * HISTORY_LEN), dtype=np.float32)
        mask = np.zeros(n, dtype=bool)
        ctx = {
            k: np.full(n, np.nan)
            for k in ("bid", "ask", "mid", "time_left", "true_prob", "side", "market_index")
        }
        for i, m in enumerate(self.current):
            if m is None:
                continue
            mb = self.feed.books[m.condition_id]
            pos = self.broker.positions.get(m.condition_id)
            pv = PositionView(
                0 if pos is None else pos.side,
                0.0 if pos is None else self.broker.unrealized_roi(m.condition_id, mb.book),
            )
            f = compute_features(self.feed.flow(SYMBOLS[m.asset]), mb, pv, self.t, m.window_end)
            feats[i] = f
            hist[i] = self.histories[i].push(f)
            mask[i] = True
            b, a = mb.book.best_bid(), mb.book.best_ask()
            ctx["bid"][i] = np.nan if b is None else b
            ctx["ask"][i] = np.nan if a is None else a
            ctx["mid"][i] = np.nan if (a is None or b is None) else 0.5 * (a + b)
            ctx["time_left"][i] = m.window_end - self.t
            ctx["true_prob"][i] = self.session.true_prob(m.condition_id, self.t) if self.session else np.nan
            ctx["side"][i] = pv.side
            ctx["market_index"][i] = hash(m.condition_id) % (2**31)
        return Observation(feats, hist, mask, ctx)

    def report(self) -> dict[str, Any]:
        rep = self.broker.report()
        rep["equity"] = self.equity
        return rep
