"""The project's statistics: a mean with its confidence interval, and a paired comparison.

Every interval or p-value stratforge prints comes from here (``amm compare``, champion promotion,
``trader eval``, ``trader models ab``), so that one definition of "significant" holds everywhere.
Student's t comes from scipy; nothing here uses a normal approximation or a hand-written table.

Conventions:
- ``n < 2``: the standard error is unknown; the interval is (-inf, inf) and p-values are 1.0 (no
  evidence either way), never NaN, so a comparison against a threshold is always well defined.
- zero variance (all values, or all differences, equal): the interval collapses to the mean and the
  p-values are 0 or 1 by the sign of the mean (0.5/1.0 for an exact zero).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import t as _student_t

__all__ = ["MeanCI", "PairedComparison", "mean_ci", "paired", "t_quantile"]


def t_quantile(confidence: float, df: float) -> float:
    """Two-sided critical value: the ``0.5 + confidence/2`` quantile of Student's t."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return float(_student_t.ppf(0.5 + confidence / 2.0, df))


def _as_array(values: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float).ravel()
    if arr.size and not np.all(np.isfinite(arr)):
        raise ValueError(f"{what}: values must be finite")
    return arr


@dataclass(frozen=True)
class MeanCI:
    """Mean of ``n`` values with a two-sided ``confidence`` interval."""

    n: int
    mean: float
    std_error: float
    low: float
    high: float
    confidence: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0

    def to_json(self) -> dict[str, float]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.mean:.2f} [{self.low:.2f}, {self.high:.2f}]"


def mean_ci(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> MeanCI:
    """Mean and Student-t confidence interval of independent values."""
    arr = _as_array(values, "mean_ci")
    n = int(arr.size)
    if n == 0:
        raise ValueError("mean_ci: no values")
    mean = float(arr.mean())
    if n < 2:
        return MeanCI(n, mean, math.inf, -math.inf, math.inf, confidence)
    se = float(arr.std(ddof=1) / math.sqrt(n))
    half = t_quantile(confidence, n - 1) * se
    return MeanCI(n, mean, se, mean - half, mean + half, confidence)


@dataclass(frozen=True)
class PairedComparison:
    """``a - b`` over the same units (seeds, episodes): mean difference, interval and p-values."""

    n: int
    mean_a: float
    mean_b: float
    mean_diff: float
    std_error: float
    low: float
    high: float
    confidence: float
    t_stat: float
    p_two_sided: float  #: H0: mean difference = 0
    p_greater: float  #: one-sided, H0: a is not better than b (mean difference <= 0)

    @property
    def p_less(self) -> float:
        """One-sided, H0: a is not worse than b."""
        return 1.0 - self.p_greater if self.n >= 2 else 1.0

    @property
    def significant(self) -> bool:
        """The interval excludes zero."""
        return self.low > 0.0 or self.high < 0.0

    def to_json(self) -> dict[str, float]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.mean_diff:+.2f} [{self.low:+.2f}, {self.high:+.2f}]"


def paired(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, confidence: float = 0.95
) -> PairedComparison:
    """Paired t comparison of ``a`` against ``b`` (same length, unit ``i`` of both paired)."""
    xa, xb = _as_array(a, "paired a"), _as_array(b, "paired b")
    if xa.shape != xb.shape:
        raise ValueError(f"paired: lengths differ ({xa.size} vs {xb.size})")
    n = int(xa.size)
    if n == 0:
        raise ValueError("paired: no values")
    d = xa - xb
    mean_a, mean_b, mean = float(xa.mean()), float(xb.mean()), float(d.mean())
    if n < 2:
        return PairedComparison(n, mean_a, mean_b, mean, math.inf, -math.inf, math.inf, confidence,
                                math.nan, 1.0, 1.0)
    se = float(d.std(ddof=1) / math.sqrt(n))
    if se == 0.0:
        t = math.inf if mean > 0 else -math.inf if mean < 0 else 0.0
        p_greater = 0.0 if mean > 0 else 1.0 if mean < 0 else 0.5
        p_two = 1.0 if mean == 0 else 0.0
        return PairedComparison(n, mean_a, mean_b, mean, 0.0, mean, mean, confidence, t, p_two, p_greater)
    t = mean / se
    half = t_quantile(confidence, n - 1) * se
    p_greater = float(_student_t.sf(t, n - 1))
    p_two = float(min(1.0, 2.0 * _student_t.sf(abs(t), n - 1)))
    return PairedComparison(n, mean_a, mean_b, mean, se, mean - half, mean + half, confidence, t, p_two,
                            p_greater)
