"""Rule-based baselines with the model's policy interface.

Every policy here has ``action_probs(features, history, context=None) -> [n, 3]`` (HOLD, BUY, SELL),
like ``stratforge.trader.model.Policy.action_probs(features, history)``. Rules that need quantities
the 18 features do not carry (the UP mid, the true probability) read them from ``context``, the raw
per-slot arrays of ``env.Observation.context``; the learned model never sees it.

- ``random``: HOLD with probability 1 - p_trade, else BUY or SELL (p_trade/2 each), drawn from a
  seeded stream (one-hot rows, so an argmax executes the draw).
- ``momentum`` (the reference's rule): velocity = UP mid now - UP mid 3 ticks ago; BUY above +0.03,
  SELL below -0.03; no new decisions in the last 2 minutes.
- ``mean_reversion`` (the reference's rule): BUY when the UP mid < 0.40, SELL when > 0.60; same expiry rule.
- ``spot_momentum`` (a cross-market lag rule, stronger than the reference's rules): when flat and more
  than 1 minute remains, BUY if the 1-minute futures return feature (x50) is above +0.05, SELL if below
  -0.05, then hold to settlement. The threshold (a 0.1% move in a minute) was fixed a priori.
- ``oracle``: knows the true UP probability p (synthetic sessions only). Flat: buys the side whose
  expected value (p or 1 - p, less the fee taken in shares) beats its ask by `margin`; holding: sells only when the
  bid after fee beats the expected value by `margin`, otherwise holds to settlement. An upper bound
  for what the lag offers a taker, not a proof of optimality.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol

import numpy as np

from stratforge.trader.fees import CRYPTO_FEES_V2

HOLD, BUY, SELL = 0, 1, 2
NEAR_EXPIRY_S = 120.0


class TraderPolicy(Protocol):
    name: str

    def action_probs(
        self, features: Any, history: Any, context: dict[str, np.ndarray] | None = None
    ) -> np.ndarray:
        """Action probabilities [n, 3] for n markets."""
        ...


def _onehot(actions: np.ndarray) -> np.ndarray:
    out = np.zeros((len(actions), 3), dtype=np.float32)
    out[np.arange(len(actions)), actions] = 1.0
    return out


def _ctx(context: dict[str, np.ndarray] | None, key: str, n: int) -> np.ndarray:
    if context is None or key not in context:
        return np.full(n, np.nan)
    return np.asarray(context[key], dtype=np.float64)


class RandomPolicy:
    """Trades at random: each market and tick BUY or SELL with probability p_trade/2 each. The draw is
    made here (one-hot rows from a seeded stream), so the engine's argmax executes it as drawn."""

    def __init__(self, p_trade: float = 0.1, seed: int = 0) -> None:
        self.name = "random"
        self.p_trade = p_trade
        self.rng = np.random.default_rng(seed)

    def action_probs(
        self, features: Any, history: Any, context: dict[str, np.ndarray] | None = None
    ) -> np.ndarray:
        n = len(np.asarray(features).reshape(-1, 18))
        u = self.rng.random(n)
        p = self.p_trade
        acts = np.where(u < p / 2, BUY, np.where(u < p, SELL, HOLD)).astype(np.int64)
        return _onehot(acts)


class MomentumPolicy:
    def __init__(self, threshold: float = 0.03, lookback: int = 3) -> None:
        self.name = "momentum"
        self.threshold = threshold
        self.lookback = lookback
        self._mids: dict[float, deque[float]] = {}

    def action_probs(
        self, features: Any, history: Any, context: dict[str, np.ndarray] | None = None
    ) -> np.ndarray:
        n = len(np.asarray(features).reshape(-1, 18))
        mid, left, key = (
            _ctx(context, "mid", n),
            _ctx(context, "time_left", n),
            _ctx(context, "market_index", n),
        )
        acts = np.zeros(n, dtype=np.int64)
        for i in range(n):
            if np.isnan(mid[i]):
                continue
            q = self._mids.setdefault(float(key[i]), deque(maxlen=self.lookback + 1))
            q.append(float(mid[i]))
            if len(q) <= self.lookback or left[i] < NEAR_EXPIRY_S:
                continue
            vel = q[-1] - q[0]
            if vel > self.threshold:
                acts[i] = BUY
            elif vel < -self.threshold:
                acts[i] = SELL
        if len(self._mids) > 64:  # forget markets that ended
            for k in list(self._mids)[:-16]:
                del self._mids[k]
        return _onehot(acts)


class MeanReversionPolicy:
    def __init__(self, buy_below: float = 0.40, sell_above: float = 0.60) -> None:
        self.name = "mean_reversion"
        self.buy_below = buy_below
        self.sell_above = sell_above

    def action_probs(
        self, features: Any, history: Any, context: dict[str, np.ndarray] | None = None
    ) -> np.ndarray:
        n = len(np.asarray(features).reshape(-1, 18))
        mid, left = _ctx(context, "mid", n), _ctx(context, "time_left", n)
        acts = np.zeros(n, dtype=np.int64)
        ok = ~np.isnan(mid) & (left >= NEAR_EXPIRY_S)
        acts[ok & (mid < self.buy_below)] = BUY
        acts[ok & (mid > self.sell_above)] = SELL
        return _onehot(acts)


class SpotMomentumPolicy:
    def __init__(self, threshold: float = 0.05, min_time_left: float = 60.0) -> None:
        self.name = "spot_momentum"
        self.threshold = threshold
        self.min_time_left = min_time_left

    def action_probs(
        self, features: Any, history: Any, context: dict[str, np.ndarray] | None = None
    ) -> np.ndarray:
        f = np.asarray(features, dtype=np.float64).reshape(-1, 18)
        n = len(f)
        left = _ctx(context, "time_left", n)
        ok = (f[:, 12] == 0) & ~(left < self.min_time_left)
        acts = np.zeros(n, dtype=np.int64)
        acts[ok & (f[:, 0] > self.threshold)] = BUY
        acts[ok & (f[:, 0] < -self.threshold)] = SELL
        return _onehot(acts)


class OraclePolicy:
    def __init__(self, margin: float = 0.02) -> None:
        self.name = "oracle"
        self.margin = margin

    def action_probs(
        self, features: Any, history: Any, context: dict[str, np.ndarray] | None = None
    ) -> np.ndarray:
        n = len(np.asarray(features).reshape(-1, 18))
        p, bid, ask = _ctx(context, "true_prob", n), _ctx(context, "bid", n), _ctx(context, "ask", n)
        side = np.nan_to_num(_ctx(context, "side", n))
        acts = np.zeros(n, dtype=np.int64)
        m, fees = self.margin, CRYPTO_FEES_V2
        for i in range(n):
            if np.isnan(p[i]) or np.isnan(bid[i]) or np.isnan(ask[i]):
                continue
            up_ask, up_bid = ask[i], bid[i]
            dn_ask, dn_bid = 1.0 - bid[i], 1.0 - ask[i]
            if side[i] == 0:
                # A buy's fee is taken in shares: one share bought at the ask pays out (1 - F).
                edge_up = p[i] * (1.0 - fees.fee_shares(1.0, up_ask)) - up_ask
                edge_dn = (1.0 - p[i]) * (1.0 - fees.fee_shares(1.0, dn_ask)) - dn_ask
                if edge_up > m and edge_up >= edge_dn:
                    acts[i] = BUY
                elif edge_dn > m:
                    acts[i] = SELL
            elif side[i] > 0 and up_bid - fees.fee_usdc(1.0, up_bid) > p[i] + m:
                acts[i] = SELL  # closes UP
            elif side[i] < 0 and dn_bid - fees.fee_usdc(1.0, dn_bid) > (1.0 - p[i]) + m:
                acts[i] = BUY  # closes DOWN
        return _onehot(acts)


BASELINES = ("random", "momentum", "mean_reversion", "spot_momentum", "oracle")


def make_baseline(name: str) -> TraderPolicy:
    if name == "random":
        return RandomPolicy()
    if name == "momentum":
        return MomentumPolicy()
    if name == "mean_reversion":
        return MeanReversionPolicy()
    if name == "spot_momentum":
        return SpotMomentumPolicy()
    if name == "oracle":
        return OraclePolicy()
    raise ValueError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")


class ModelPolicy:
    """Adapter: a `stratforge.trader.model.Policy` (no context) behind the baseline interface."""

    def __init__(self, policy: Any, name: str = "model") -> None:
        self.name = name
        self.policy = policy

    def action_probs(
        self, features: Any, history: Any, context: dict[str, np.ndarray] | None = None
    ) -> np.ndarray:
        return np.asarray(self.policy.action_probs(features, history), dtype=np.float64)
