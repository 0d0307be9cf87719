"""A session: the markets, the time-ordered stream of feed messages, and the outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stratforge.trader.markets.messages import MarketInfo, MarketResolved, Message, Resolution


@dataclass
class Session:
    markets: list[MarketInfo]
    messages: list[Message]  # feed messages (books, trades, klines), sorted by time
    resolutions: dict[str, Resolution] = field(default_factory=dict)
    # Synthetic sessions only: condition_id -> (second timestamps, true UP probability at each second)
    truth: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def assets(self) -> list[str]:
        seen: list[str] = []
        for m in sorted(self.markets, key=lambda m: m.window_start):
            if m.asset not in seen:
                seen.append(m.asset)
        return seen

    def venue_resolution(self, condition_id: str) -> MarketResolved | None:
        """The venue's ``market_resolved`` event for a market anywhere in the session, if recorded
        (replays: the index is built once, on the first call)."""
        index = self.__dict__.get("_venue")
        if index is None:
            index = {m.market: m for m in self.messages if isinstance(m, MarketResolved)}
            self.__dict__["_venue"] = index
        return index.get(condition_id)

    def true_prob(self, condition_id: str, t: float) -> float:
        """True UP probability at time t (NaN when the session has no ground truth)."""
        tr = self.truth.get(condition_id)
        if tr is None:
            return float("nan")
        times, probs = tr
        i = int(np.searchsorted(times, t, side="right")) - 1
        return float(probs[max(i, 0)])


def merge_sessions(sessions: list[Session]) -> Session:
    """One session from several (recordings of consecutive periods): markets by condition id, feed
    messages in time order (ties keep file order), resolutions and ground truth united."""
    if len(sessions) == 1:
        return sessions[0]
    markets: dict[str, MarketInfo] = {}
    resolutions: dict[str, Resolution] = {}
    truth: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for s in sessions:
        for m in s.markets:
            markets.setdefault(m.condition_id, m)
        resolutions.update(s.resolutions)
        truth.update(s.truth)
    msgs = sorted(
        ((m.ts, k, i, m) for k, s in enumerate(sessions) for i, m in enumerate(s.messages)),
        key=lambda e: (e[0], e[1], e[2]),
    )
    return Session(sorted(markets.values(), key=lambda m: m.window_start), [e[3] for e in msgs],
                   resolutions, truth)  # fmt: skip


def split_by_time(session: Session, t_split: float) -> tuple[Session, Session]:
    """Walk-forward split at ``t_split``: the earlier part holds the markets that ended by then and
    only the messages before it (nothing from the later part can leak into training); the later part
    holds the markets that start at or after it, with the whole earlier feed as warm-up history (the
    features only ever look back)."""
    early = [m for m in session.markets if m.window_end <= t_split]
    late = [m for m in session.markets if m.window_start >= t_split]
    early_ids = {m.condition_id for m in early}
    late_ids = {m.condition_id for m in late}

    def part(ms: list[MarketInfo], ids: set[str], msgs: list[Message]) -> Session:
        return Session(
            ms, msgs, {k: v for k, v in session.resolutions.items() if k in ids},
            {k: v for k, v in session.truth.items() if k in ids},
        )  # fmt: skip

    before = [m for m in session.messages if m.ts < t_split]
    return part(early, early_ids, before), part(late, late_ids, list(session.messages))


def walk_forward_split_time(session: Session, train_fraction: float) -> float:
    """The window start that puts about ``train_fraction`` of the market windows before it."""
    starts = sorted({m.window_start for m in session.markets})
    if len(starts) < 2:
        raise ValueError("walk-forward evaluation needs markets in at least two different windows")
    k = min(max(int(round(train_fraction * len(starts))), 1), len(starts) - 1)
    return starts[k]
