"""Measure whether a synthetic market's book leaks the answer: does book imbalance predict the outcome
beyond what the quote already says?

For every market of many generated sessions we take its decision ticks every 30 s from minute 1 to
minute 13 (through the same state code and features the agent sees), and fit two logistic regressions of
the outcome (UP won) by K-fold cross-validation:

- ``quote``: intercept + logit(UP mid);
- ``quote+book``: the same plus features 3 and 4 (level-1 and 5-level imbalance of the UP book).

Each market then has two out-of-fold log losses (summed over its ticks); ``stats.paired(quote, quote+book)`` says whether the
book features lower the loss (a positive mean difference). In an honest market they cannot; with the
old ``imbalance_lean`` they do, which is the tell the first trained model learned to read.

The regressions use scipy's L-BFGS on the (tiny-L2) penalised log-likelihood: a well-kept optimiser,
two parameters to four, nothing that needs its own library.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from stratforge.stats import PairedComparison, paired
from stratforge.trader.env import EnvConfig, record_tape
from stratforge.trader.markets.synthetic import SyntheticConfig, generate_session


@dataclass
class TellSample:
    """Decision ticks of many markets: UP mid, the two imbalance features, the outcome, the market."""

    mid: np.ndarray
    imbalance: np.ndarray  # [n, 2]: features 3 and 4
    up_wins: np.ndarray  # bool
    market: np.ndarray  # int: which market each row belongs to
    features: np.ndarray  # [n, 18]: the whole (position-free) observation, for leak checks


def sample_markets(
    cfg: SyntheticConfig, seeds: range, tick_s: float = 5.0, every_s: float = 30.0
) -> TellSample:
    """Every ``every_s`` seconds from 1 to 13 minutes into each window, through the agent's features."""
    rows: list[tuple[float, float, float, int]] = []
    feats: list[np.ndarray] = []
    wins: list[bool] = []
    market_ids: dict[str, int] = {}
    for seed in seeds:
        tape = record_tape(generate_session(seed, cfg), EnvConfig(tick_s=tick_s, synthetic=cfg))
        outcome = {st.market.condition_id: st.up_wins for rec in tape.ticks for st in rec.settlements}
        for rec in tape.ticks:
            for slot, m in enumerate(rec.markets):
                if m is None:
                    continue
                into = rec.t - m.window_start
                mid = rec.context["mid"][slot]
                if not (60.0 <= into <= 780.0 and into % every_s == 0 and np.isfinite(mid)):
                    continue
                k = market_ids.setdefault(m.condition_id, len(market_ids))
                rows.append((float(mid), float(rec.features[slot, 3]), float(rec.features[slot, 4]), k))
                feats.append(rec.features[slot].astype(np.float64))
                wins.append(bool(outcome[m.condition_id]))
    a = np.asarray(rows).reshape(-1, 4)
    return TellSample(
        a[:, 0], a[:, 1:3], np.asarray(wins, dtype=bool), a[:, 3].astype(np.int64),
        np.asarray(feats).reshape(-1, 18),
    )  # fmt: skip


def _fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3) -> np.ndarray:
    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ w
        nll = -np.sum(y * log_expit(z) + (1 - y) * log_expit(-z)) + 0.5 * l2 * float(w @ w)
        grad = x.T @ (expit(z) - y) + l2 * w
        return float(nll), grad

    return minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B").x


def _cv_log_loss(x: np.ndarray, y: np.ndarray, market: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Out-of-fold log loss summed per market (folds split by market, so no market is in both the
    fitted and the scored part)."""
    n_markets = int(market.max()) + 1
    fold_of = np.random.default_rng(seed).permutation(n_markets) % folds
    loss = np.empty(len(y))
    for k in range(folds):
        test = fold_of[market] == k
        w = _fit_logistic(x[~test], y[~test])
        z = x[test] @ w
        loss[test] = -(y[test] * log_expit(z) + (1 - y[test]) * log_expit(-z))
    return np.bincount(market, weights=loss, minlength=n_markets)


def feature_tell(
    sample: TellSample, columns: tuple[int, ...], folds: int = 5, seed: int = 0
) -> PairedComparison:
    """Like `book_tell` for any observation features (a leak check: in an honest market with a lag of
    a second or two, nothing the agent observes should predict the outcome beyond the quote)."""
    mid = np.clip(sample.mid, 0.01, 0.99)
    y = sample.up_wins.astype(np.float64)
    base = np.column_stack([np.ones_like(mid), np.log(mid / (1 - mid))])
    full = np.column_stack([base, sample.features[:, list(columns)]])
    m = sample.market
    return paired(_cv_log_loss(base, y, m, folds, seed), _cv_log_loss(full, y, m, folds, seed))


def book_tell(sample: TellSample, folds: int = 5, seed: int = 0) -> PairedComparison:
    """Paired comparison over markets of the out-of-fold log loss, quote-only minus quote+book
    (positive: the book features predict the outcome beyond the quote). Ticks of one market share
    its outcome, so the unit of the comparison is the market, not the tick."""
    mid = np.clip(sample.mid, 0.01, 0.99)
    y = sample.up_wins.astype(np.float64)
    base = np.column_stack([np.ones_like(mid), np.log(mid / (1 - mid))])
    full = np.column_stack([base, sample.imbalance])
    m = sample.market
    return paired(_cv_log_loss(base, y, m, folds, seed), _cv_log_loss(full, y, m, folds, seed))
