"""Proposers: where the next candidate strategy comes from when no LLM is used.

:class:`OfflineProposer` is the default proposer. It draws from the template library and learns
from results, with no network and no model:

* every template is first tried once at its defaults (so each hypothesis gets a baseline);
* then, per proposal, one of: a Gaussian **mutation** of the best-known parameters (sigma is a
  fraction of each parameter's range, values clipped to the range), a **recombination** of two
  parameter sets of templates that share parameter names, or a **sample** from a template chosen
  with probability growing with its best edge (softmax with an exploration floor) - either a
  mutation of that template's best parameters with a wider sigma or a uniform draw from its ranges.

As a :class:`~stratforge.explore.candidate.Proposer` it returns a generation of
``generation_size`` draws per iteration (raced on common seeds by the loop) and learns the edges of
members that ran on the whole selection set (the only edges comparable across generations).

It is deterministic: draw ``k`` depends only on ``seed``, ``k`` and the results observed so far,
and :meth:`OfflineProposer.snapshot` captures everything observed (templates added included), so
a resumed run proposes exactly what the uninterrupted one would have. Strategy sources from
outside the library (an LLM champion) join it through :mod:`stratforge.explore.template_extract`.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stratforge.explore.candidate import Candidate, CandidateResult, ProposalContext
from stratforge.explore.templates import Template, load_library, template_from_schema

KIND_DEFAULT = "default"
KIND_MUTATE = "mutate"
KIND_RECOMBINE = "recombine"
KIND_SAMPLE = "sample"


@dataclass(frozen=True)
class Proposal:
    """One candidate strategy and how it was made."""

    source: str
    template: str | None
    params: dict[str, float]
    hypothesis: str | None
    rationale: str
    kind: str = KIND_SAMPLE
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class _TemplateStats:
    tried: int = 0
    failed: int = 0
    #: best results first: (edge, params)
    top: list[tuple[float, dict[str, float]]] = field(default_factory=list)

    @property
    def best_edge(self) -> float | None:
        return self.top[0][0] if self.top else None


def _key(template: str, params: Mapping[str, float]) -> tuple[str, tuple[tuple[str, float], ...]]:
    return template, tuple(sorted(params.items()))


def _compatible(a: Template, b: Template, name: str) -> bool:
    """Same-named parameters mean the same thing only if their types match and their ranges overlap."""
    pa, pb = a.spec(name), b.spec(name)
    return pa.type == pb.type and pa.min <= pb.max and pb.min <= pa.max


class OfflineProposer:
    """Seeded template sampler / mutator / recombiner that learns per-template best parameters."""

    name = "offline"

    def __init__(
        self,
        templates: Mapping[str, Template] | None = None,
        *,
        seed: int = 0,
        mutate_prob: float = 0.5,
        recombine_prob: float = 0.15,
        uniform_prob: float = 0.25,
        sigma: float = 0.12,
        temperature: float = 8.0,
        explore: float = 0.15,
        keep_top: int = 5,
        generation_size: int = 1,
    ) -> None:
        self.templates: dict[str, Template] = dict(templates if templates is not None else load_library())
        if not self.templates:
            raise ValueError("the offline proposer needs at least one template")
        self.seed = seed
        self.mutate_prob = mutate_prob
        self.recombine_prob = recombine_prob
        self.uniform_prob = uniform_prob
        self.sigma = sigma
        self.temperature = temperature
        self.explore = explore
        self.keep_top = keep_top
        self.generation_size = generation_size
        self._shipped = set(self.templates)
        self._draws = 0  #: draws made so far (the RNG stream of draw k is a function of seed and k)
        self._full_sims: int | None = None  #: seeds of a member raced to the end (from the context)
        self.stats: dict[str, _TemplateStats] = {name: _TemplateStats() for name in self.templates}
        self._seen: set[tuple[str, tuple[tuple[str, float], ...]]] = set()
        self._champion: tuple[str, dict[str, float]] | None = None

    # -- learning -------------------------------------------------------------------------------

    def add_template(self, template: Template) -> None:
        self.templates[template.name] = template
        self.stats.setdefault(template.name, _TemplateStats())

    def seed_champion(self, template: Template, edge: float | None = None) -> None:
        """Register a template (e.g. extracted from the starter) whose defaults are the current champion."""
        self.add_template(template)
        params = template.normalize()
        self._champion = (template.name, params)
        self._seen.add(_key(template.name, params))
        if edge is not None:
            self.learn(template.name, params, edge)

    def observe(self, results: Sequence[CandidateResult]) -> None:
        """Learn a generation: failures count as failures, full-selection edges are remembered, and
        members stopped early by racing count as tried (their few-seed edges are not comparable)."""
        for r in results:
            c = r.candidate
            if r.status != "evaluated":
                self.learn(c.template, c.params, None)
            elif self._full_sims is None or len(r.seeds) >= self._full_sims:
                self.learn(c.template, c.params, r.edge)
            else:
                self.learn(c.template, c.params, None, failed=False)

    def learn(
        self, template: str | None, params: Mapping[str, float] | None, edge: float | None, *, failed: bool = True
    ) -> None:
        """Learn from one evaluation: its edge, or ``None`` (a failure, or with ``failed=False`` a
        candidate that was only tried)."""
        if template is None or template not in self.templates:
            return
        t = self.templates[template]
        values = t.normalize(params or {})
        self._seen.add(_key(template, values))
        st = self.stats[template]
        st.tried += 1
        if edge is None or not math.isfinite(edge):
            st.failed += int(failed)
            return
        st.top.append((float(edge), values))
        # Stable order: edge descending, then the parameter tuple, so replays give identical state.
        st.top.sort(key=lambda e: (-e[0], tuple(sorted(e[1].items()))))
        del st.top[self.keep_top :]
        best = self.best()
        if best is not None:
            self._champion = (best[1], best[2])

    def best(self) -> tuple[float, str, dict[str, float]] | None:
        """Best observed (edge, template, params); ties go to the template name order."""
        best: tuple[float, str, dict[str, float]] | None = None
        for name in sorted(self.stats):
            st = self.stats[name]
            if st.top and (best is None or st.top[0][0] > best[0]):
                best = (st.top[0][0], name, st.top[0][1])
        return best

    # -- proposing ------------------------------------------------------------------------------

    def propose(self, ctx: ProposalContext) -> list[Candidate]:
        """A generation of ``generation_size`` distinct draws; the focus hypothesis biases them."""
        self._full_sims = ctx.selection_sims
        out = []
        for _ in range(self.generation_size):
            self._draws += 1
            p = self.draw(self._draws, hypothesis=ctx.hypothesis)
            out.append(
                Candidate(p.source, self.name, p.template, dict(p.params), p.hypothesis, f"{p.kind}: {p.rationale}")
            )
        return out

    def draw(self, number: int, *, hypothesis: str | None = None) -> Proposal:
        """Draw ``number``; ``hypothesis`` (e.g. the least explored) biases the choice."""
        rng = random.Random(self.seed * 1_000_003 + number)
        untried = [n for n in sorted(self.templates) if self.stats[n].tried == 0]
        untried = [n for n in untried if _key(n, self.templates[n].normalize()) not in self._seen]
        if untried:
            preferred = [n for n in untried if self.templates[n].hypothesis == hypothesis]
            name = (preferred or untried)[0]
            t = self.templates[name]
            self._seen.add(_key(name, t.normalize()))
            return self._make(t, t.normalize(), KIND_DEFAULT, f"first try of template {name} at its defaults")
        proposal: Proposal | None = None
        for _attempt in range(25):
            proposal = self._draw(rng, hypothesis)
            if _key(proposal.template or "", proposal.params) not in self._seen:
                break
        assert proposal is not None
        self._seen.add(_key(proposal.template or "", proposal.params))
        return proposal

    def _draw(self, rng: random.Random, hypothesis: str | None) -> Proposal:
        r = rng.random()
        if r < self.mutate_prob and self._champion is not None:
            name, params = self._champion
            t = self.templates[name]
            new, changes = self._mutate(rng, t, params, self._local_sigma(name))
            return self._make(t, new, KIND_MUTATE, f"mutate champion ({name}): {changes}")
        if r < self.mutate_prob + self.recombine_prob:
            made = self._recombine(rng)
            if made is not None:
                return made
        name = self._pick_template(rng, hypothesis)
        t = self.templates[name]
        st = self.stats[name]
        if not st.top or rng.random() < self.uniform_prob:
            params = {p.name: rng.uniform(p.min, p.max) for p in t.params}
            return self._make(t, t.normalize(params), KIND_SAMPLE, f"uniform sample of template {name}")
        base = st.top[rng.randrange(len(st.top))][1]
        new, changes = self._mutate(rng, t, base, self.sigma * 2)
        return self._make(t, new, KIND_SAMPLE, f"wide mutation of a top {name} parameter set: {changes}")

    def _local_sigma(self, name: str) -> float:
        """Step size for champion mutations: shrinks as a template is explored (coarse then fine),
        never below a quarter of the initial sigma so the search can still leave a local optimum."""
        tried = self.stats[name].tried
        return self.sigma * max(0.25, 1.0 / math.sqrt(1.0 + tried / 10.0))

    def _pick_template(self, rng: random.Random, hypothesis: str | None) -> str:
        names = sorted(self.templates)
        best = self.best()
        top = best[0] if best else 0.0
        weights = []
        for n in names:
            e = self.stats[n].best_edge
            w = math.exp((e - top) / self.temperature) if e is not None else 1.0
            w += self.explore / len(names)
            if hypothesis is not None and self.templates[n].hypothesis == hypothesis:
                w *= 2.0
            weights.append(w)
        return rng.choices(names, weights=weights, k=1)[0]

    def _mutate(
        self, rng: random.Random, t: Template, params: Mapping[str, float], sigma: float
    ) -> tuple[dict[str, float], str]:
        names = list(t.param_names)
        p_each = max(1.0 / len(names), 0.3)
        chosen = [n for n in names if rng.random() < p_each] or [names[rng.randrange(len(names))]]
        new = dict(params)
        for n in chosen:
            spec = t.spec(n)
            new[n] = spec.clip(new[n] + rng.gauss(0.0, sigma * (spec.max - spec.min)))
        new = t.normalize(new)
        changes = ", ".join(f"{n} {params[n]:g}->{new[n]:g}" for n in chosen if params.get(n) != new[n])
        return new, changes or "no change after clipping"

    def _recombine(self, rng: random.Random) -> Proposal | None:
        """Uniform crossover of two parameter sets over the names their templates share."""
        pool = [(name, p) for name in sorted(self.stats) for _, p in self.stats[name].top]
        if len(pool) < 2:
            return None
        a_name, a = pool[rng.randrange(len(pool))]
        partners = [
            (n, p) for n, p in pool if p is not a and set(p) & set(a) and _key(n, p) != _key(a_name, a)
        ]
        if not partners:
            return None
        b_name, b = partners[rng.randrange(len(partners))]
        t, tb = self.templates[a_name], self.templates[b_name]
        shared = sorted(n for n in set(a) & set(b) if _compatible(t, tb, n))
        if not shared:
            return None
        child = dict(a)
        taken = [n for n in shared if rng.random() < 0.5] or [shared[rng.randrange(len(shared))]]
        for n in taken:
            child[n] = b[n]
        child = t.normalize(child)
        return self._make(t, child, KIND_RECOMBINE, f"recombine {a_name} with {b_name} on {', '.join(taken)}")

    def _make(self, t: Template, params: dict[str, float], kind: str, rationale: str) -> Proposal:
        return Proposal(
            source=t.render(params),
            template=t.name,
            params=params,
            hypothesis=t.hypothesis or None,
            rationale=rationale,
            kind=kind,
        )

    # -- persistence ----------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        state = {
            "draws": self._draws,
            "stats": {n: [st.tried, st.failed, [[e, p] for e, p in st.top]] for n, st in sorted(self.stats.items())},
            "seen": sorted([name, [list(kv) for kv in params]] for name, params in self._seen),
            "champion": self._champion,
            "added": [
                [t.text, t.to_schema()] for n, t in sorted(self.templates.items()) if n not in self._shipped
            ],
        }
        return json.dumps(state, sort_keys=True).encode()

    def restore(self, snapshot: bytes) -> None:
        state = json.loads(snapshot)
        for text, schema in state["added"]:
            self.add_template(template_from_schema(text, schema))
        self._draws = int(state["draws"])
        self.stats = {
            n: _TemplateStats(tried, failed, [(float(e), dict(p)) for e, p in top])
            for n, (tried, failed, top) in state["stats"].items()
        }
        for name in self.templates:
            self.stats.setdefault(name, _TemplateStats())
        self._seen = {(name, tuple((k, float(v)) for k, v in params)) for name, params in state["seen"]}
        champ = state["champion"]
        self._champion = None if champ is None else (champ[0], dict(champ[1]))
