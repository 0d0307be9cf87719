"""Offline search on the frontier family: CMA-ES (or the old offline proposer) with racing on common seeds.

One *arm* = one proposer tuning the ``frontier`` template (patched specs, no solc per candidate):

* each generation (the CMA-ES population; for the old proposer the same number of its proposals)
  is raced on common seeds: a rotating block of the selection seeds 0..999, ``--race-seeds`` per
  member first, then successive halving (the better half gets twice as many more seeds, for
  ``--race-rounds`` rounds);
* the generation's best is re-raced on seeds 0..``--rerace-sims``-1 and becomes the champion when
  its mean there beats the champion's (paired on the same seeds, :func:`stratforge.stats.paired`);
* when the budget (wall seconds, or simulations) is spent, the champion, the family's default and
  the starter (fixed 50 bps) are scored on seeds 0..999 and on ``--holdout-sims`` holdout seeds
  (from 900,000,000; never used by the search).

Printed: candidates per hour and simulations per candidate, the champion's edges next to the
default's and the starter's on the same seeds. Per-seed edges are cached by runtime-code hash in
``--cache-dir``, so the default and repeated finals are computed once across arms and runs.

    python benchmarks/explore_offline.py --arm cmaes --budget-s 1800 --workers 2
    python benchmarks/explore_offline.py --arm offline --budget-s 1800 --workers 2   # the old proposer
"""

from __future__ import annotations

import argparse
import hashlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console

from stratforge.amm.engine import SIMULATOR_VERSION, run_batch, shutdown_pools
from stratforge.amm.evm import EvmStrategySpec
from stratforge.amm.strategy import FixedFee, StrategySpec
from stratforge.explore.candidate import Candidate, CandidateResult, ProposalContext
from stratforge.explore.optimizer import CmaesProposer
from stratforge.explore.proposers import OfflineProposer
from stratforge.explore.templates import load_library
from stratforge.explore.templates.precompiled import PrecompiledTemplate, check_identical
from stratforge.files import atomic_write_json
from stratforge.stats import mean_ci, paired

HOLDOUT_SEED_START = 900_000_000
SELECTION_SEEDS = 1000


class EdgeCache:
    """Per-seed edges of a strategy, keyed by its runtime code (or fixed fee) and the simulator."""

    def __init__(self, directory: Path | None, workers: int) -> None:
        self.directory = directory
        self.workers = workers
        self.sims = 0  # simulations actually run
        self.cpu_s = 0.0
        self._lock = threading.Lock()

    def _key(self, spec: StrategySpec) -> str:
        ident = spec.runtime_code.hex() if isinstance(spec, EvmStrategySpec) else repr(spec)
        return hashlib.sha256(f"{SIMULATOR_VERSION}|{ident}".encode()).hexdigest()[:32]

    def _load(self, path: Path | None) -> dict[int, float]:
        if path is None or not path.is_file():
            return {}
        return {int(k): float(v) for k, v in json.loads(path.read_text()).items()}

    def edges(self, spec: StrategySpec, seeds: Sequence[int], chunk: int = 100) -> np.ndarray:
        """Per-seed edges on ``seeds``; missing ones are simulated ``chunk`` seeds at a time and
        written after each chunk (merged with what another process wrote meanwhile), so a killed
        run loses at most one chunk."""
        path = self.directory / f"{self._key(spec)}.json" if self.directory else None
        known = self._load(path)
        missing = [s for s in seeds if s not in known]
        for i in range(0, len(missing), chunk):
            part = missing[i : i + chunk]
            r = run_batch(spec, len(part), seeds=part, workers=self.workers)
            with self._lock:
                self.sims += len(part)
                self.cpu_s += r.cpu_s
            known = {**self._load(path), **known}
            known.update(zip(part, (float(e) for e in r.edge), strict=True))
            if path is not None:
                atomic_write_json(path, {str(k): v for k, v in sorted(known.items())})
        return np.array([known[s] for s in seeds])


@dataclass
class Racer:
    """Successive halving on common seeds drawn from a rotating block of the selection seeds."""

    cache: EdgeCache
    first: int
    rounds: int
    cursor: int = 0

    def _next_seeds(self, n: int) -> list[int]:
        out = [(self.cursor + i) % SELECTION_SEEDS for i in range(n)]
        self.cursor = (self.cursor + n) % SELECTION_SEEDS
        return out

    def race(self, members: Sequence[Candidate]) -> list[CandidateResult]:
        seeds: list[int] = []
        alive = list(range(len(members)))
        edges: dict[int, np.ndarray] = {i: np.empty(0) for i in alive}
        block = self.first
        for r in range(self.rounds + 1):
            new = self._next_seeds(block)
            seeds += new
            specs = [members[i].spec for i in alive]
            assert all(specs), "the frontier family is patchable: every member has a spec"
            if self.cache.workers > 1:
                # One thread per member feeds the shared worker pool, so all workers stay busy.
                with ThreadPoolExecutor(max_workers=len(alive)) as pool:
                    got = list(pool.map(self.cache.edges, specs, [new] * len(specs)))
            else:  # in-process simulations: threads would only share the GIL (and its CPU clock)
                got = [self.cache.edges(spec, new) for spec in specs]
            for i, e in zip(alive, got, strict=True):
                edges[i] = np.concatenate([edges[i], e])
            if r < self.rounds and len(alive) > 1:
                alive.sort(key=lambda i: -float(edges[i].mean()))
                alive = alive[: max(1, (len(alive) + 1) // 2)]
            block *= 2
        return [
            CandidateResult(m, "evaluated", seeds[: len(edges[i])], edges[i]) for i, m in enumerate(members)
        ]


class OldProposerArm:
    """The old (1+1)-style offline proposer on the same family, asked for a generation at a time."""

    name = "offline"

    def __init__(self, pre: PrecompiledTemplate, size: int, seed: int) -> None:
        self.pre = pre
        self.size = size
        self.proposer = OfflineProposer({pre.template.name: pre.template}, seed=seed)
        self.proposer.seed_champion(pre.template)
        self.number = 0

    def propose(self, ctx: ProposalContext) -> list[Candidate]:
        out = []
        for _ in range(self.size):
            self.number += 1
            p = self.proposer.propose(self.number)
            spec, source = self.pre.render(p.params, f"{p.template} #{self.number}")
            out.append(Candidate(source, self.name, p.template, p.params, spec=spec))
        return out

    def observe(self, results: Sequence[CandidateResult]) -> None:
        for r in results:
            self.proposer.observe(r.candidate.template, r.candidate.params, r.edge)


def search(
    arm: CmaesProposer | OldProposerArm,
    pre: PrecompiledTemplate,
    racer: Racer,
    cache: EdgeCache,
    rerace: list[int],
    out_of_budget: Callable[[], bool],
    console: Console,
) -> tuple[dict[str, float], np.ndarray, int, int]:
    """Run generations until the budget is spent; (champion params, its re-race edges, candidates, generations)."""
    champion = pre.template.normalize()
    champ_edges = cache.edges(pre.spec(champion), rerace)
    candidates = generations = 0
    console.print(f"start: family default {champ_edges.mean():.2f} on {len(rerace)} re-race seeds")
    while not out_of_budget():
        generations += 1
        members = arm.propose(ProposalContext(generations, None, None))
        results = racer.race(members)
        arm.observe(results)
        candidates += len(members)
        top = max(results, key=lambda r: (len(r.edges), r.edge or -1e9))
        assert top.candidate.params is not None
        top_edges = cache.edges(pre.spec(top.candidate.params), rerace)
        cmp = paired(top_edges, champ_edges)
        promoted = cmp.mean_diff > 0
        if promoted:
            champion, champ_edges = dict(top.candidate.params), top_edges
        console.print(
            f"gen {generations:3d}: {len(members)} members, race best {top.edge:.2f} on {len(top.edges)} seeds;"
            f" re-race {top_edges.mean():.2f} ({cmp.mean_diff:+.2f} vs champion, p {cmp.p_greater:.3f})"
            f"{' -> champion' if promoted else ''}; champion {champ_edges.mean():.2f};"
            f" {cache.sims} sims so far"
        )
    return champion, champ_edges, candidates, generations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", choices=("cmaes", "offline"), default="cmaes")
    parser.add_argument("--budget-s", type=float, default=1800.0, help="search wall-clock budget")
    parser.add_argument("--budget-sims", type=int, default=0, help="search simulation budget (0: none)")
    parser.add_argument("--race-seeds", type=int, default=8, help="seeds per member in the first round")
    parser.add_argument("--race-rounds", type=int, default=2, help="halving rounds after the first")
    parser.add_argument("--rerace-sims", type=int, default=1000, help="seeds 0.. for the generation's best")
    parser.add_argument("--final-sims", type=int, default=SELECTION_SEEDS)
    parser.add_argument("--holdout-sims", type=int, default=2000)
    parser.add_argument("--popsize", type=int, default=0, help="first CMA-ES population (0: 4 + 3 ln n)")
    parser.add_argument("--sigma0", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache-dir", type=Path, default=Path(".stratforge/bench-edges"))
    parser.add_argument("--check-seeds", type=int, default=2, help="patched vs compiled identity check")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    console = Console()
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    cache = EdgeCache(args.cache_dir, args.workers)
    cache.edges(FixedFee(50), [0])  # starts the worker pool before any thread uses it

    template = load_library()["frontier"]
    pre = PrecompiledTemplate.build(template)
    if args.arm == "cmaes":
        arm: CmaesProposer | OldProposerArm = CmaesProposer(
            template, seed=args.seed, sigma0=args.sigma0, popsize=args.popsize or None
        )
        size = arm.popsize
    else:
        size = args.popsize or CmaesProposer(template, precompile=False).popsize
        arm = OldProposerArm(pre, size, args.seed)
    racer = Racer(cache, args.race_seeds, args.race_rounds, cursor=(args.seed * 7919) % SELECTION_SEEDS)
    rerace = list(range(args.rerace_sims))

    t0 = time.perf_counter()
    sims0 = cache.sims

    def out_of_budget() -> bool:
        if args.budget_sims and cache.sims - sims0 >= args.budget_sims:
            return True
        return time.perf_counter() - t0 >= args.budget_s

    console.print(
        f"arm {args.arm}: generations of {size}, budget {args.budget_s:.0f} s / {args.budget_sims} sims"
    )
    champion, _, candidates, generations = search(arm, pre, racer, cache, rerace, out_of_budget, console)
    search_s = time.perf_counter() - t0
    search_sims, search_cpu = cache.sims - sims0, cache.cpu_s
    per_hour = candidates / search_s * 3600 if search_s else 0.0
    console.print(
        f"search: {candidates} candidates in {generations} generations, {search_s:.0f} s wall,"
        f" {search_sims} sims run ({search_cpu:.0f} CPU-s, {search_sims / max(candidates, 1):.1f} sims per"
        f" candidate incl. re-races): {per_hour:.0f} candidates per hour"
    )
    console.print(f"champion params: {json.dumps(champion)}")

    selection = list(range(args.final_sims))
    holdout = list(range(HOLDOUT_SEED_START, HOLDOUT_SEED_START + args.holdout_sims))
    rows = {
        "champion": pre.spec(champion),
        "family default": pre.spec(template.normalize()),
        "starter (50 bps)": FixedFee(50),
    }
    figures: dict[str, dict[str, float]] = {}
    for label, spec in rows.items():
        sel, hold = cache.edges(spec, selection), cache.edges(spec, holdout)
        figures[label] = {"selection": float(sel.mean()), "holdout": float(hold.mean())}
        console.print(
            f"{label:18s} seeds 0..{args.final_sims - 1}: {mean_ci(sel)}   "
            f"holdout ({args.holdout_sims} from {HOLDOUT_SEED_START}): {mean_ci(hold)}"
        )
    d_sel = paired(cache.edges(rows["champion"], selection), cache.edges(rows["family default"], selection))
    d_hold = paired(cache.edges(rows["champion"], holdout), cache.edges(rows["family default"], holdout))
    console.print(
        f"champion - default: selection {d_sel.mean_diff:+.2f} (p {d_sel.p_greater:.3g}),"
        f" holdout {d_hold.mean_diff:+.2f} (p {d_hold.p_greater:.3g})"
    )
    check = check_identical(pre, champion, list(range(args.check_seeds)), workers=args.workers)
    console.print(
        f"rendered + compiled champion vs patched on {args.check_seeds} seeds: "
        f"{'bit-identical' if check.identical else 'DIFFERENT'}"
    )
    if args.json:
        atomic_write_json(
            args.json,
            {
                "arm": args.arm,
                "args": {k: str(v) for k, v in vars(args).items()},
                "candidates": candidates,
                "generations": generations,
                "search_s": search_s,
                "search_sims": search_sims,
                "search_cpu_s": search_cpu,
                "candidates_per_hour": per_hour,
                "champion": champion,
                "figures": figures,
                "identical": check.identical,
            },
            indent=2,
        )
    shutdown_pools()


if __name__ == "__main__":
    main()
