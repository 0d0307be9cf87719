"""Quick offline search: the offline proposer over the template library, scored with native twins.

Seeds the proposer with the challenge's 50 bps starter (through the template extractor), proposes
``--iterations`` candidates scored on ``--screen-sims`` selection seeds (0..), then re-scores the best
one on 1000 selection seeds and ``--holdout-sims`` holdout seeds that never influenced the search,
and checks the winner's Solidity source compiles and gives the same edge in the EVM on a few seeds.

    python benchmarks/explore_offline.py [--iterations 80] [--screen-sims 30] [--seed 1] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import time

from rich.console import Console
from rich.progress import Progress

from stratforge.amm.engine import run_batch, shutdown_pools
from stratforge.amm.solidity import EXAMPLES_DIR, load_solidity_strategy
from stratforge.amm.strategy import FixedFee
from stratforge.explore.proposers import OfflineProposer
from stratforge.explore.template_extract import extract_template

HOLDOUT_SEED_START = 900_000_000
STARTER_EDGE_1000 = 369.45  # fixed 50 bps on seeds 0..999 (reference and our engine agree)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=80)
    parser.add_argument("--screen-sims", type=int, default=30)
    parser.add_argument("--final-sims", type=int, default=1000)
    parser.add_argument("--holdout-sims", type=int, default=500)
    parser.add_argument("--evm-sims", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    console = Console()

    starter = extract_template((EXAMPLES_DIR / "StarterStrategy.sol").read_text(), "starter")
    proposer = OfflineProposer(seed=args.seed)
    proposer.seed_champion(starter)
    t0 = time.perf_counter()
    with Progress(console=console) as progress:
        task = progress.add_task("searching", total=args.iterations)
        for i in range(1, args.iterations + 1):
            p = proposer.propose(i)
            spec = proposer.native_spec(p)
            if spec is None:  # the starter's extracted template has no twin: its fee is a fixed fee
                spec = FixedFee(p.params["FEE"])
            r = run_batch(spec, args.screen_sims, workers=args.workers)
            proposer.observe(p.template, p.params, r.mean_edge)
            best = proposer.best()
            progress.update(task, advance=1, description=f"best {best[0]:.1f} ({best[1]})" if best else "")
    search_s = time.perf_counter() - t0
    best = proposer.best()
    assert best is not None
    edge, name, params = best
    template = proposer.templates[name]
    console.print(f"search: {args.iterations} proposals x {args.screen_sims} sims in {search_s:.0f} s")
    console.print(f"best on screening seeds: {edge:.2f}  {name} {json.dumps(params)}")

    native = template.reference_spec(params) or FixedFee(params["FEE"])
    final = run_batch(native, args.final_sims, workers=args.workers)
    holdout = run_batch(native, args.holdout_sims, seed_start=HOLDOUT_SEED_START, workers=args.workers)
    console.print(
        f"re-scored: {final.mean_edge:.2f} +- {final.std_error:.2f} on seeds 0..{args.final_sims - 1}"
        f" (starter {STARTER_EDGE_1000} at 1000); holdout {holdout.mean_edge:.2f} +- {holdout.std_error:.2f}"
        f" on {args.holdout_sims} seeds from {HOLDOUT_SEED_START}"
    )
    evm = load_solidity_strategy(template.render(params))
    e = run_batch(evm, args.evm_sims, workers=args.workers)
    n = run_batch(native, args.evm_sims, workers=args.workers)
    console.print(f"EVM check on {args.evm_sims} seeds: evm {e.mean_edge:.4f} native {n.mean_edge:.4f}")
    console.print(f"total {time.perf_counter() - t0:.0f} s")
    shutdown_pools()


if __name__ == "__main__":
    main()
