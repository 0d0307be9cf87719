"""Paired comparison of two strategies on the same seeds.

Both strategies see exactly the same markets (simulation ``i`` uses seed ``i`` for both), so the
per-seed edge differences remove most of the market noise: a paired t-test on those differences is
far more sensitive than comparing two independent means. The statistics are stratforge.stats.paired,
the same test the explorer's champion promotion and the trader's A/B use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import t as _student_t

from stratforge.amm.engine import run_batch
from stratforge.amm.strategy import FixedFee, StrategySpec
from stratforge.stats import paired

__all__ = ["ComparisonResult", "compare", "resolve_spec"]


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


# Kept only while explore/loop.py still imports them (its promotion is moving to stratforge.stats);
# they are scipy's functions under their old names, not a second implementation. Remove with that import.


def student_t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom."""
    return float(_student_t.sf(t, df))


def student_t_ppf(q: float, df: float) -> float:
    """Quantile of Student's t."""
    return float(_student_t.ppf(q, df))


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
    #: two-sided ``1 - alpha`` interval of ``mean_diff`` (95% by default)
    ci: tuple[float, float]
    t_stat: float
    #: two-sided p-value of the paired t-test (stratforge.stats.paired)
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
        d["ci"] = list(self.ci)
        d["confidence"] = 1.0 - self.alpha
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
    res = paired(ra.columns["edge"], rb.columns["edge"], confidence=1.0 - alpha)
    return ComparisonResult(
        name_a=a.name,
        name_b=b.name,
        n=n,
        seed_start=seed_start,
        mean_a=ra.mean_edge,
        mean_b=rb.mean_edge,
        mean_diff=res.mean_diff,
        std_error=res.std_error,
        ci=(res.low, res.high),
        t_stat=res.t_stat,
        p_value=res.p_two_sided,
        a_wins=int(np.sum(diff > 0)),
        b_wins=int(np.sum(diff < 0)),
        ties=int(np.sum(diff == 0)),
        alpha=alpha,
    )
