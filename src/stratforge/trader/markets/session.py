"""A session: the markets, the time-ordered stream of feed messages, and the outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stratforge.trader.markets.messages import MarketInfo, Message, Resolution


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

    def true_prob(self, condition_id: str, t: float) -> float:
        """True UP probability at time t (NaN when the session has no ground truth)."""
        tr = self.truth.get(condition_id)
        if tr is None:
            return float("nan")
        times, probs = tr
        i = int(np.searchsorted(times, t, side="right")) - 1
        return float(probs[max(i, 0)])
