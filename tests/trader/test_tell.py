"""The default synthetic market has no hidden tell: book imbalance does not predict the outcome beyond
the quote. The same measurement finds the tell of the old market (--lean 0.25 --lag 15,40), so it can
fail."""

from __future__ import annotations

import pytest

from stratforge.trader.markets.synthetic import OLD_LAG_S, OLD_LEAN, SyntheticConfig
from stratforge.trader.markets.tell import book_tell, feature_tell, sample_markets

SEEDS = range(100, 110)  # 10 sessions x 4 assets x 4 windows = 160 markets, 25 ticks each


def _cfg(**kw: object) -> SyntheticConfig:
    return SyntheticConfig(n_windows=4, warmup_minutes=15, **kw)  # type: ignore[arg-type]


@pytest.mark.slow
def test_default_market_book_adds_nothing_beyond_the_quote() -> None:
    res = book_tell(sample_markets(_cfg(), SEEDS, tick_s=10))
    assert res.n == 160
    assert res.p_greater > 0.05  # no evidence that imbalance lowers the out-of-fold log loss
    assert res.high < 0.1  # and any gain is bounded well below the old market's (+0.19 per market)


@pytest.mark.slow
def test_old_market_tell_is_detected() -> None:
    res = book_tell(sample_markets(_cfg(lag_s=OLD_LAG_S, imbalance_lean=OLD_LEAN), SEEDS, tick_s=10))
    assert res.mean_diff > 0
    assert res.p_greater < 0.001


@pytest.mark.slow
def test_no_observation_feature_leaks_the_outcome_beyond_the_quote() -> None:
    # every position-free feature the agent sees, together: no better out-of-fold log loss
    sample = sample_markets(_cfg(), SEEDS, tick_s=10)
    res = feature_tell(sample, tuple(range(12)) + (15, 16, 17))
    assert res.p_greater > 0.05, res
