"""Scoring a generation: compile what needs compiling, then race its members on common seeds.

Every member of a generation is scored on the *same* seeds, in the same order: a window of the
selection seeds that rotates with the iteration number (so no seed subset is favoured run-long).
Per-seed differences of two nearby strategies on common seeds vary far less than their absolute
edges (std ~0.2-1.6 edge against ~73-89), so members are compared by paired differences:

* rung ``k`` (``stages[k]`` seeds): every surviving member is scored on the next seeds;
* after a rung, a member is dropped when its paired difference against the champion (on the
  seeds so far) has a confidence interval entirely below zero -- the classic staged gate -- and,
  while more than one member is alive, when it is significantly worse than the rung's best member
  or outside the best ``keep_fraction`` (successive halving);
* the last rung (the whole selection set) is run by the best survivor only: the generation's
  best is re-raced on all selection seeds, in blocks of ``final_look_sims`` with the champion gate
  after each block, so a best that is clearly below the champion stops early (a group-sequential
  futility stop: the gate's one-sided 2.5 % at each look rarely stops a member that is truly better).

A generation of one is therefore exactly the staged 10/100/1000 gate against the champion (with
the looks inside its last stage).
Candidates with a ready ``spec`` skip the compiler (the champion keeper checks that spec against
the compiled source before anything built on it is promoted); every other candidate is validated
and compiled, so each is scored as its Solidity.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stratforge.amm.engine import BatchResult, Executor, run_batch
from stratforge.amm.solidity import CompilerUnavailable, StrategyRejected, check_solidity
from stratforge.amm.strategy import StrategySpec
from stratforge.explore.candidate import Candidate, CandidateResult
from stratforge.explore.config import ExploreConfig
from stratforge.explore.store import STATUS_EVALUATED, STATUS_FAILED, IterationRecord, Member
from stratforge.stats import paired

__all__ = ["Scored", "Scoring", "compile_candidate", "generation_record"]

_TIMINGS = ("elapsed_s", "cpu_s")


def compile_candidate(source: str) -> StrategySpec:
    """Validate and compile a source under the challenge's rules. Raises ``StrategyRejected`` (the
    candidate's fault) or ``CompilerUnavailable`` (not its fault: the run stops)."""
    return check_solidity(source).spec


@dataclass
class Scored:
    """One member after racing. ``edges[i]`` is its edge on ``seeds[i]``."""

    candidate: Candidate
    spec: StrategySpec | None
    errors: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    edges: np.ndarray = field(default_factory=lambda: np.empty(0))
    stages: dict[str, Any] = field(default_factory=dict)
    dropped: str | None = None  #: why racing stopped it early (None: it ran every rung it was given)

    @property
    def status(self) -> str:
        return STATUS_FAILED if self.spec is None else STATUS_EVALUATED

    @property
    def edge(self) -> float | None:
        return float(self.edges.mean()) if len(self.edges) else None

    def result(self) -> CandidateResult:
        return CandidateResult(self.candidate, self.status, tuple(self.seeds), self.edges, tuple(self.errors))


class Scoring:
    """Runs simulations for the loop (local pool or an engine executor) and races generations."""

    def __init__(
        self,
        config: ExploreConfig,
        executor: Executor | None = None,
        checkpoint: Callable[[], None] = lambda: None,
    ) -> None:
        self.config = config
        self.executor = executor
        self.checkpoint = checkpoint  #: called around every batch (e.g. to stop at once on a signal)

    def run(self, spec: StrategySpec, seeds: Sequence[int]) -> np.ndarray:
        """Per-seed edges of ``spec`` on ``seeds``."""
        return self.batch(spec, seeds).columns["edge"]

    def batch(self, spec: StrategySpec, seeds: Sequence[int]) -> BatchResult:
        self.checkpoint()
        result = run_batch(
            spec, len(seeds), seeds=list(seeds), workers=self.config.workers, executor=self.executor
        )
        self.checkpoint()
        return result

    def seed_order(self, iteration: int) -> list[int]:
        """The selection seeds, rotated by a window per iteration (common to the whole generation)."""
        n = self.config.n_selection
        offset = (iteration * self.config.stages[0]) % n
        return [(offset + j) % n for j in range(n)]

    def prepare(self, cand: Candidate) -> Scored:
        self.checkpoint()
        if cand.errors:
            return Scored(cand, None, list(cand.errors))
        if cand.spec is not None:
            return Scored(cand, cand.spec)
        if not cand.source.strip():
            return Scored(cand, None, ["no source"])
        try:
            return Scored(cand, compile_candidate(cand.source))
        except CompilerUnavailable:
            raise
        except StrategyRejected as exc:
            return Scored(cand, None, [str(p) for p in exc.problems])

    def race(self, members: list[Scored], order: Sequence[int], champion: np.ndarray | None) -> list[Scored]:
        """Race the prepared ``members`` on ``order``; ``champion[seed]`` = the champion's edge."""
        c = self.config
        alive = [i for i, m in enumerate(members) if m.spec is not None]
        done = 0
        for k, n in enumerate(c.stages):
            final = k == len(c.stages) - 1
            if final and len(alive) > 1:
                best = self._best(members, alive)
                for i in alive:
                    if i != best:
                        members[i].dropped = "not the generation's best"
                alive = [best]
            for look in self._looks(done, n, final and champion is not None):
                seeds = list(order[done:look])
                for i in alive:
                    self._extend(members[i], seeds, str(look))
                done = look
                alive = self._gate(members, alive, champion, str(look))
                if not alive:
                    break
            if not final and len(alive) > 1:
                alive = self._halve(members, alive)
            if not alive:
                break
        return members

    def _looks(self, done: int, n: int, sequential: bool) -> list[int]:
        """Where a rung from ``done`` to ``n`` seeds checks the champion gate: at its end, and for the
        last rung also every ``final_look_sims`` seeds (a futility stop: a re-race is the costliest
        step of a generation, and most re-raced bests are not promoted: 17 of 46 in stop 19's run)."""
        step = self.config.final_look_sims
        if not sequential or step <= 0:
            return [n]
        return [*range(done + step, n, step), n]

    def _extend(self, m: Scored, seeds: list[int], rung: str) -> None:
        """Score ``m`` on the next ``seeds`` and record the rung's summary."""
        assert m.spec is not None
        result = self.batch(m.spec, seeds)
        m.seeds += seeds
        m.edges = np.concatenate([m.edges, result.columns["edge"]])
        summary = {
            key: v
            for key, v in result.summary().items()
            if isinstance(v, int | float) and key not in _TIMINGS  # the store holds decisions only
        }
        summary["mean_edge"] = float(m.edges.mean())
        m.stages[rung] = {"summary": summary}

    def _best(self, members: list[Scored], alive: list[int]) -> int:
        return max(alive, key=lambda i: (float(members[i].edges.mean()), -i))

    def _gate(
        self, members: list[Scored], alive: list[int], champion: np.ndarray | None, rung: str
    ) -> list[int]:
        if champion is None:
            return alive
        kept = []
        for i in alive:
            m = members[i]
            vs = paired(m.edges, champion[np.asarray(m.seeds)], self.config.confidence)
            m.stages[rung]["paired_vs_champion"] = vs.to_json()
            if vs.high < 0:
                m.dropped = f"worse than the champion after {len(m.seeds)} sims ({vs})"
            else:
                kept.append(i)
        return kept

    def _halve(self, members: list[Scored], alive: list[int]) -> list[int]:
        best = self._best(members, alive)
        ranked = sorted(alive, key=lambda i: (-float(members[i].edges.mean()), i))
        keep = set(ranked[: max(1, math.ceil(len(alive) * self.config.keep_fraction))])
        kept = []
        for i in alive:
            m = members[i]
            if i != best:
                vs = paired(m.edges, members[best].edges, self.config.confidence)
                if vs.high < 0:
                    m.dropped = f"worse than the generation's best after {len(m.seeds)} sims ({vs})"
                    continue
            if i not in keep:
                m.dropped = f"outside the best {self.config.keep_fraction:.0%} after {len(m.seeds)} sims"
                continue
            kept.append(i)
        return kept


def generation_record(
    number: int, hypothesis: str | None, members: list[Scored], best: Scored, order: Sequence[int]
) -> IterationRecord:
    """The store record of a raced generation: the iteration row describes ``best`` (with its
    per-seed edges and the seed offset, so any later champion can be paired with it), and every
    member is kept."""
    cand = best.candidate
    stages: dict[str, Any] = dict(best.stages)
    stages.update(
        seed_offset=order[0],
        edges=[float(v) for v in best.edges],  # on order[:len(edges)]
        dropped=best.dropped,
        generation=[
            {"index": i, "edge": m.edge, "sims": len(m.seeds), "dropped": m.dropped}
            for i, m in enumerate(members)
        ],
    )
    sent = [m.candidate for m in members if m.candidate.prompt is not None]
    return IterationRecord(
        number=number,
        status=best.status,
        proposer=cand.proposer,
        hypothesis=cand.hypothesis or hypothesis,
        source=cand.source or None,
        template=cand.template,
        params=cand.params,
        edge=best.edge,
        errors=list(best.errors),
        stage_results=stages if best.spec is not None else {},
        tokens_in=sum(m.candidate.tokens_in for m in members),
        tokens_out=sum(m.candidate.tokens_out for m in members),
        cost_usd=sum(m.candidate.cost_usd for m in members),
        prompt=sent[0].prompt if sent else None,
        response=sent[0].response if sent else None,
        members=[
            Member(
                i,
                m.candidate.source,
                m.candidate.template,
                m.candidate.params,
                m.status,
                m.edge,
                len(m.seeds),
                list(m.errors),
            )
            for i, m in enumerate(members)
        ],
    )
