"""Paired comparison of two strategies on the same seeds.

Both strategies see exactly the same markets (simulation ``i`` uses seed ``i`` for both), so the
per-seed edge differences remove most of the market noise: a paired t-test on those differences is
far more sensitive than comparing two independent means. The explorer's champion promotion uses
``compare``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import t as _t

from stratforge.amm.engine import run_batch
from stratforge.amm.strategy import FixedFee, StrategySpec

__all__ = ["ComparisonResult", "compare", "paired_t_test", "resolve_spec", "student_t_sf"]


def resolve_spec(arg: str | Path | StrategySpec) -> StrategySpec:
    """``fixed:50`` / ``fixed:50/45`` (bid/ask bps), a ``.sol`` path, or a spec (returned as is)."""
    if not isinstance(arg, str | Path):
        return arg
    text = str(arg)
    if text.startswith("fixed:"):
        try:
            fees = [float(p) for p in text.removeprefix("fixed:").split("/")]
        except ValueError:
            raise ValueError(f"{text!r}: expected fixed:BPS or fixed:BID/ASK") from None
        if len(fees) not in (1, 2):
            raise ValueError(f"{text!r}: expected fixed:BPS or fixed:BID/ASK")
        return FixedFee(*fees)
    from stratforge.amm.solidity import load_solidity_strategy

    return load_solidity_strategy(Path(text))


# --------------------------------------------------------------------------- Student's t


def student_t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom."""
    return float(_t.sf(t, df))


def student_t_ppf(q: float, df: float) -> float:
    """Quantile of Student's t."""
    return float(_t.ppf(q, df))


def paired_t_test(diff: np.ndarray) -> tuple[float, float, float, float]:
    """(mean, standard error, t statistic, two-sided p-value) of paired differences."""
    n = len(diff)
    mean = float(np.mean(diff))
    if n < 2:
        return mean, float("nan"), float("nan"), float("nan")
    se = float(np.std(diff, ddof=1) / math.sqrt(n))
    if se == 0.0:
        return mean, 0.0, (math.inf if mean > 0 else -math.inf if mean < 0 else 0.0), float(mean == 0.0)
    t = mean / se
    return mean, se, t, min(1.0, 2.0 * student_t_sf(abs(t), n - 1))


# --------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class ComparisonResult:
    name_a: str
    name_b: str
    n: int
    seed_start: int
    mean_a: float
    mean_b: float
    #: mean of per-seed (edge A - edge B)
    mean_diff: float
    std_error: float
    ci95: tuple[float, float]
    t_stat: float
    p_value: float
    #: seeds where A's edge is above / below / equal to B's
    a_wins: int
    b_wins: int
    ties: int
    alpha: float = 0.05

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha

    @property
    def better(self) -> str:
        """ "A", "B", or "neither" (difference not significant at ``alpha``)."""
        if not self.significant or self.mean_diff == 0:
            return "neither"
        return "A" if self.mean_diff > 0 else "B"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ci95"] = list(self.ci95)
        d["significant"] = self.significant
        d["better"] = self.better
        return d


def compare(
    spec_a: str | Path | StrategySpec,
    spec_b: str | Path | StrategySpec,
    n: int = 1000,
    seed_start: int = 0,
    workers: int | None = None,
    alpha: float = 0.05,
    progress: Callable[[int], None] | None = None,
) -> ComparisonResult:
    """Run both strategies on seeds ``seed_start .. seed_start+n-1`` and test the paired difference."""
    a, b = resolve_spec(spec_a), resolve_spec(spec_b)
    ra = run_batch(a, n, seed_start=seed_start, workers=workers, progress=progress)
    rb = run_batch(b, n, seed_start=seed_start, workers=workers, progress=progress)
    diff = ra.columns["edge"] - rb.columns["edge"]
    mean, se, t, p = paired_t_test(diff)
    if n >= 2 and se > 0:
        half = student_t_ppf(0.975, n - 1) * se
        ci = (mean - half, mean + half)
    else:
        ci = (mean, mean)
    return ComparisonResult(
        name_a=a.name,
        name_b=b.name,
        n=n,
        seed_start=seed_start,
        mean_a=ra.mean_edge,
        mean_b=rb.mean_edge,
        mean_diff=mean,
        std_error=se,
        ci95=ci,
        t_stat=t,
        p_value=p,
        a_wins=int(np.sum(diff > 0)),
        b_wins=int(np.sum(diff < 0)),
        ties=int(np.sum(diff == 0)),
        alpha=alpha,
    )
