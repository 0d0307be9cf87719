"""CPU cost of the simulator for fixed-fee strategies.

Prints CPU-seconds per simulation of the compiled engine, the same simulation in the pure-Python
specification (`stratforge.amm.reference`, measured in this run, the in-run baseline), and the ratio
to the public reference's published 0.11 CPU-s per simulation (its Rust engine with both hooks in
revm, StarterStrategy, 1000 simulations = 109.8 CPU-s). Also checks that memory stays flat.

    python benchmarks/engine.py [--simulations 1000] [--workers 2]
"""

from __future__ import annotations

import argparse
import resource
import time

from rich.console import Console
from rich.table import Table

from stratforge.amm.engine import draw_config, run_batch, shutdown_pools
from stratforge.amm.reference import simulate_fixed
from stratforge.amm.strategy import FixedFee

REFERENCE_CPU_S_PER_SIM = 109.8 / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--python-sims", type=int, default=1, help="simulations for the pure-Python baseline")
    args = parser.parse_args()
    console = Console()

    # In-run baseline: the pure-Python specification of the same simulation.
    t = time.process_time()
    for seed in range(args.python_sims):
        simulate_fixed(draw_config(seed), 0.005, 0.005)
    python_cpu = (time.process_time() - t) / args.python_sims

    rows = []
    for bps in (30, 50, 55):
        run_batch(FixedFee(bps), 4, workers=args.workers)  # warm the worker pool
        result = run_batch(FixedFee(bps), args.simulations, workers=args.workers)
        rows.append((bps, result))
    shutdown_pools()

    table = Table(
        title=f"Engine: fixed-fee strategies, {args.simulations} simulations, {args.workers} workers"
    )
    for col in ("strategy", "edge", "wall s", "CPU-s/sim", "vs reference 0.11", "vs pure Python (this run)"):
        table.add_column(col, justify="right")
    for bps, r in rows:
        cpu = r.cpu_s / r.n
        table.add_row(
            f"fixed {bps} bps",
            f"{r.mean_edge:.2f}",
            f"{r.elapsed_s:.2f}",
            f"{cpu:.5f}",
            f"{REFERENCE_CPU_S_PER_SIM / cpu:.1f}x less CPU",
            f"{python_cpu / cpu:.0f}x faster",
        )
    console.print(table)
    console.print(f"pure-Python specification: {python_cpu:.2f} CPU-s per simulation")

    # Memory: peak RSS of this process after a small and a large in-process batch.
    run_batch(FixedFee(50), 20, workers=1)
    small = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run_batch(FixedFee(50), args.simulations, workers=1)
    large = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    console.print(
        f"peak RSS after 20 sims: {small / 1024:.1f} MiB; after {args.simulations}: {large / 1024:.1f} MiB"
    )


if __name__ == "__main__":
    main()
