"""Per-seed edges of one strategy, printed to compare bit for bit with the reference engine.

Prints the mean edge over seeds 0..N-1 at several N with full precision (repr), the normalizer's
mean, p05/p50/p95, mean volumes and a per-seed table, plus the floating-point platform the run
used. Two optional checks:

* ``--reference FILE``: per-seed edges of the reference engine (JSON ``{"seed": edge, ...}`` or a
  list of ``{"seed": s, "edge": e}``), e.g. exported from ``amm_sim_rs.run_batch``; prints every
  seed that differs and by how much.
* ``--perturb``: re-runs every seed with the volatility moved by one ulp, i.e. a last-bit change
  of every price step, and lists the seeds whose edge then moves by more than 1e-9 (relative).

Why the second check: the engine, like the reference's Rust engine, takes the price step's ``exp``
(and the ziggurat's) from the platform's C math library, whose last bit differs between libraries
(glibc, macOS) and even between glibc's FMA and non-FMA variants picked by CPU (retail sizes use the
libm crate's ``exp`` in both engines, the same everywhere; see docs/solidity.md). A fixed-fee strategy never notices; a dynamic one
sees trade amounts truncated to WAD integers, so on a *sensitive* seed a one-ulp price difference
changes its fees and the seed's edge moves by up to ~0.1. Bit parity with a reference run holds on
the same platform (``benchmarks/reference_oracle.py`` checks it against the reference's own code);
across platforms expect differences on exactly such seeds.

    python benchmarks/parity.py STRATEGY.sol [-n 200] [--workers 2] [--perturb] [--reference ref.json]
    python benchmarks/parity.py fixed:50 -n 10
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import shutil
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from stratforge.amm.compare import resolve_spec
from stratforge.amm.engine import BatchResult, draw_config, run_batch, shutdown_pools, simulate
from stratforge.amm.solidity import StrategyRejected
from stratforge.amm.strategy import StrategySpec

SENSITIVE_REL = 1e-9


def float_platform() -> str:
    """Where exp/log come from: OS, CPU architecture, C library and whether the CPU has FMA."""
    libc, version = platform.libc_ver()
    fma = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        flags = next(
            (ln for ln in cpuinfo.read_text().splitlines() if ln.startswith(("flags", "Features"))), ""
        )
        fma = ", CPU with FMA" if " fma" in flags else ", CPU without FMA"
    lib = f"{libc} {version}".strip() or "system libm"
    return f"{sys.platform}-{platform.machine()}, {lib}{fma}"


def perturbed_edges(spec: StrategySpec, seeds: Sequence[int]) -> list[float]:
    """Edges with gbm_sigma one ulp higher: every price step differs in its last bits."""
    out = []
    for seed in seeds:
        cfg = draw_config(seed)
        cfg = dataclasses.replace(cfg, gbm_sigma=math.nextafter(cfg.gbm_sigma, 1.0))
        out.append(simulate(cfg, spec).submission.edge)
    return out


def run_perturbed(spec: StrategySpec, seeds: list[int], workers: int, progress: Progress) -> np.ndarray:
    task = progress.add_task("perturbed (+1 ulp sigma)", total=len(seeds))
    chunks = [seeds[i : i + 10] for i in range(0, len(seeds), 10)]
    edges: list[float] = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        for chunk, part in zip(chunks, pool.map(perturbed_edges, [spec] * len(chunks), chunks), strict=True):
            edges.extend(part)
            progress.advance(task, len(chunk))
    return np.array(edges)


def load_reference(path: Path) -> dict[int, float]:
    data = json.loads(path.read_text())
    if isinstance(data, dict):
        return {int(k): float(v) for k, v in data.items()}
    return {int(row["seed"]): float(row["edge"]) for row in data}


def checkpoints(n: int) -> list[int]:
    return sorted({c for c in (10, 100, 200, 1000) if c <= n} | {n})


def print_summary(console: Console, result: BatchResult) -> None:
    """One block per N: the figures the reference reports, each with full precision (repr)."""
    c = result.columns
    for n in checkpoints(result.n):
        edge = c["edge"][:n]
        p05, p50, p95 = (float(v) for v in np.percentile(edge, [5, 50, 95]))
        console.print(f"[bold]N = {n}[/bold]: mean edge {float(np.mean(edge))!r}")
        console.print(
            f"  normalizer {float(np.mean(c['normalizer_edge'][:n]))!r}; p05 {p05!r} p50 {p50!r} p95 {p95!r}"
        )
        console.print(
            f"  mean retail volume {float(np.mean(c['retail_volume_y'][:n]))!r};"
            f" mean arb volume {float(np.mean(c['arb_volume_y'][:n]))!r}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("strategy", help="a .sol file or fixed:BPS[/BPS]")
    parser.add_argument("-n", "--simulations", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rows", type=int, default=20, help="per-seed rows to print (all go to --json)")
    parser.add_argument("--reference", type=Path, help="per-seed reference edges (JSON)")
    parser.add_argument("--perturb", action="store_true", help="list seeds sensitive to a last-bit change")
    parser.add_argument("--json", type=Path, help="write per-seed rows and the means here")
    args = parser.parse_args()
    console = Console(width=max(shutil.get_terminal_size().columns, 140))

    try:
        spec = resolve_spec(args.strategy)
    except StrategyRejected as exc:
        sys.exit(f"strategy rejected: {'; '.join(str(p) for p in exc.problems)}")
    except ValueError as exc:
        sys.exit(str(exc))
    console.print(f"[bold]{spec.name}[/bold], seeds 0..{args.simulations - 1}; floats: {float_platform()}")
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("simulations", total=args.simulations)
        result = run_batch(
            spec, args.simulations, workers=args.workers, progress=lambda k: progress.advance(task, k)
        )
        shutdown_pools()
        seeds = [int(s) for s in result.seeds]
        perturbed = run_perturbed(spec, seeds, args.workers, progress) if args.perturb else None

    print_summary(console, result)
    edge = result.columns["edge"]
    reference = load_reference(args.reference) if args.reference else {}
    flagged: set[int] = set()
    if perturbed is not None:
        moved = np.abs(perturbed - edge) > SENSITIVE_REL * np.abs(edge)
        flagged |= {seeds[i] for i in np.flatnonzero(moved)}
        shift = float(np.mean(perturbed) - np.mean(edge))
        console.print(
            f"sensitive seeds (edge moves by > {SENSITIVE_REL:g} relative after a one-ulp change of "
            f"sigma): {len(flagged)} of {len(seeds)}: {sorted(flagged)}; mean edge moves by {shift:+.3e}"
        )
    if reference:
        differing = [s for i, s in enumerate(seeds) if s in reference and reference[s] != edge[i]]
        flagged |= set(differing)
        console.print(f"seeds differing from the reference: {len(differing)} of {len(reference)}")

    table = Table(title="Per seed (first rows, then every flagged seed)")
    for col in ("seed", "edge", "normalizer", "hook failures"):
        table.add_column(col, justify="right")
    if perturbed is not None:
        table.add_column("edge, sigma +1 ulp", justify="right")
    if reference:
        table.add_column("reference - ours", justify="right")
    c = result.columns
    for i, seed in enumerate(seeds):
        if i >= args.rows and seed not in flagged:
            continue
        row = [
            str(seed),
            repr(float(edge[i])),
            repr(float(c["normalizer_edge"][i])),
            str(int(c["hook_failures"][i])),
        ]
        if perturbed is not None:
            row.append(repr(float(perturbed[i])))
        if reference:
            row.append(f"{reference[seed] - edge[i]:+.3e}" if seed in reference else "")
        table.add_row(*row)
    console.print(table)

    if args.json:
        rows = result.per_simulation()
        if perturbed is not None:
            for row, value in zip(rows, perturbed, strict=True):
                row["edge_sigma_plus_1ulp"] = float(value)
        means = {str(n): float(np.mean(edge[:n])) for n in checkpoints(result.n)}
        payload = {"strategy": spec.name, "platform": float_platform(), "mean_edge": means, "per_seed": rows}
        args.json.write_text(json.dumps(payload, indent=1))
        console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
