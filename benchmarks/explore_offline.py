"""Offline explorer end to end: champion, holdout next to the reference, candidates per hour.

Runs ``stratforge explore``'s loop with the default offline proposer from the starter for
``--max-runtime`` seconds, then prints the champion's selection and holdout edges next to the fixed
reference strategy (50 bps starter) on the same seeds, and how many candidates were evaluated per
hour at how many simulations each (racing stops most of them early). ``--max-runtime`` bounds the
search; the final champion's holdout scoring comes after it and is timed separately.

    python benchmarks/explore_offline.py [--max-runtime 600] [--proposer cmaes|templates] [--seed 0]
        [--workers 2] [--state-dir DIR] [--holdout-every-champion]

Run it once per proposer on the same budget to compare them side by side.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

from rich.console import Console

from stratforge.amm.engine import shutdown_pools
from stratforge.explore.loop import ExploreConfig, Explorer
from stratforge.explore.report import reference_comparison


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-runtime", type=float, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--generation-size", type=int, default=4)
    parser.add_argument("--proposer", choices=["cmaes", "templates"], default="cmaes")
    parser.add_argument("--holdout-sims", type=int, default=2000)
    parser.add_argument("--state-dir", type=Path, default=None)
    parser.add_argument("--holdout-every-champion", action="store_true")
    args = parser.parse_args()
    console = Console()
    state_dir = args.state_dir or Path(tempfile.mkdtemp(prefix="explore_bench_")) / "run"
    config = ExploreConfig(
        state_dir=state_dir,
        max_runtime_s=args.max_runtime,
        seed=args.seed,
        workers=args.workers,
        generation_size=args.generation_size,
        proposer=args.proposer,
        holdout_sims=args.holdout_sims,
        holdout_every_champion=args.holdout_every_champion,
    )
    t0 = time.perf_counter()
    marks: dict[str, float] = {}

    def on_event(kind: str, message: str) -> None:
        if kind == "holdout":
            marks.setdefault("holdout", time.perf_counter())
        if kind != "iteration":
            console.print(f"{kind}: {message}")

    explorer = Explorer(config, on_event=on_event)
    reason = explorer.run()
    end = time.perf_counter()
    wall = marks.get("holdout", end) - t0  #: the search, without the final holdout
    shutdown_pools()
    store = explorer.store
    champ = store.champion()
    members = [
        m for it in store.iterations(finished_only=True) if it.number > 0 for m in store.members(it.number)
    ]
    sims = Counter(m.sims for m in members)
    console.print(
        f"exit: {reason}; search {wall:.0f} s, final holdout {end - t0 - wall:.0f} s; state dir {state_dir}"
    )
    console.print(
        f"candidates evaluated: {len(members)} ({len(members) / wall * 3600:.0f}/hour); by simulations reached: "
        + ", ".join(f"{n} sims: {k}" for n, k in sorted(sims.items()))
    )
    if champ is not None:
        holdout = "not scored" if champ.holdout_edge is None else f"{champ.holdout_edge:.2f}"
        console.print(f"champion #{champ.iteration}: selection {champ.edge:.2f}, holdout {holdout}")
    versus = reference_comparison(store)
    if versus is not None:
        sel, hold = versus["selection"], versus["holdout"]
        console.print(
            f"reference (50 bps): selection {sel.mean_b:.2f}, holdout {hold.mean_b:.2f} on the same seeds;"
            f" champion - reference: selection {sel}, holdout {hold}"
        )


if __name__ == "__main__":
    main()
