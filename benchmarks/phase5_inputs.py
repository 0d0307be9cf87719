"""Measure whether the published Phase 5 weights see in-distribution inputs under our feature
definitions (5, 6, 9, 10, 14 differ from the reference's): see `stratforge.trader.phase5_inputs`.

    PYTHONPATH=src python benchmarks/phase5_inputs.py [N_SESSIONS]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from stratforge.trader.model import load_phase5
from stratforge.trader.phase5_inputs import measure, summarize

PHASE5 = Path("/work/shared/data/cmsf-phase5")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    cmp = measure(range(30_000_000, 30_000_000 + n))
    policy = load_phase5(PHASE5) if PHASE5.exists() else None
    res = summarize(cmp, policy)
    print(f"{res['n']} observations from {n} synthetic sessions (default honest market)")
    print(f"{'feature':>8} {'ours p1/p25/p50/p75/p99':>44} {'reference p1/p25/p50/p75/p99':>44} {'ours outside ref 1-99%':>24} {'KS':>6}")
    for j, f in res["features"].items():
        print(f"{j:>8} {str(f['ours_q']):>44} {str(f['reference_q']):>44} {f['outside_reference_1_99']:>24.1%} {f['ks_distance']:>6.2f}")
    if policy is not None:
        print(f"Phase 5 argmax agreement, ours vs reference forms: {res['argmax_agreement']:.1%}; "
              f"mean total variation of the action distribution: {res['mean_total_variation']:.3f}")
        print(f"argmax HOLD/BUY/SELL counts, ours: {res['action_share_ours']}, reference: "
              f"{res['action_share_reference']}")
        print("agreement when only one feature takes the reference form:",
              json.dumps({str(k): round(v, 3) for k, v in res["argmax_agreement_one_feature"].items()}))


if __name__ == "__main__":
    main()
