"""Measure the synthetic market's tell: does book imbalance (or any observation feature) predict the
outcome beyond the quote? (`stratforge.trader.markets.tell`; tests/trader/test_tell.py asserts it.)

    PYTHONPATH=src python benchmarks/book_tell.py [N_SESSIONS]
"""

from __future__ import annotations

import sys

from stratforge.trader.markets.synthetic import OLD_LAG_S, OLD_LEAN, SyntheticConfig
from stratforge.trader.markets.tell import book_tell, feature_tell, sample_markets


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    seeds = range(100, 100 + n)
    print(
        "log-loss per market, quote-only minus quote+features (positive: the features help); "
        "paired over markets, 95% CI, one-sided p"
    )
    for name, cfg in (
        ("default (lag 0-2 s, no lean)", SyntheticConfig(n_windows=4, warmup_minutes=15)),
        (
            "old (--lean 0.25 --lag 15,40)",
            SyntheticConfig(n_windows=4, warmup_minutes=15, lag_s=OLD_LAG_S, imbalance_lean=OLD_LEAN),
        ),
    ):
        s = sample_markets(cfg, seeds, tick_s=10)
        r = book_tell(s)
        print(f"{name:32} book (3, 4): {r} p={r.p_greater:.3g} over {r.n} markets")
        if name.startswith("default"):
            r = feature_tell(s, tuple(range(12)) + (15, 16, 17))
            print(f"{'':32} all 15 position-free features: {r} p={r.p_greater:.3g}")


if __name__ == "__main__":
    main()
