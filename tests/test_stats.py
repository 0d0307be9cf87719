"""stratforge.stats against scipy's own tests and textbook values."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from stratforge.stats import mean_ci, paired, t_quantile


def test_t_quantile_uses_exact_degrees_of_freedom():
    # df = 11: 2.201 (a table that rounds df up to 12 gives 2.179, too narrow)
    assert t_quantile(0.95, 11) == pytest.approx(2.20099, abs=1e-5)
    assert t_quantile(0.95, 10_000) == pytest.approx(1.96, abs=1e-3)


def test_mean_ci_matches_scipy_interval():
    rng = np.random.default_rng(3)
    x = rng.normal(5.0, 2.0, size=12)
    got = mean_ci(x, 0.9)
    low, high = sps.t.interval(0.9, len(x) - 1, loc=x.mean(), scale=sps.sem(x))
    assert (got.low, got.high) == pytest.approx((low, high), rel=1e-12)
    assert got.n == 12 and got.mean == pytest.approx(x.mean())


def test_paired_matches_scipy_ttest_rel():
    rng = np.random.default_rng(7)
    b = rng.normal(0, 80, size=50)
    a = b + rng.normal(0.4, 1.0, size=50)
    got = paired(a, b)
    ref_two = sps.ttest_rel(a, b)
    ref_one = sps.ttest_rel(a, b, alternative="greater")
    assert got.t_stat == pytest.approx(ref_two.statistic, rel=1e-12)
    assert got.p_two_sided == pytest.approx(ref_two.pvalue, rel=1e-10)
    assert got.p_greater == pytest.approx(ref_one.pvalue, rel=1e-10)
    assert got.p_less == pytest.approx(sps.ttest_rel(a, b, alternative="less").pvalue, rel=1e-10)
    assert got.low < got.mean_diff < got.high


def test_degenerate_inputs_are_defined():
    one = paired([1.0], [0.0])
    assert one.p_greater == 1.0 and math.isinf(one.high) and not one.significant
    same = paired([2.0, 2.0, 2.0], [1.0, 1.0, 1.0])
    assert same.std_error == 0.0 and same.p_greater == 0.0 and same.low == same.high == 1.0
    assert same.significant
    tie = paired([1.0, 1.0], [1.0, 1.0])
    assert tie.p_two_sided == 1.0 and not tie.significant
    with pytest.raises(ValueError):
        paired([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        mean_ci([])
    with pytest.raises(ValueError):
        mean_ci([1.0, float("nan")])
