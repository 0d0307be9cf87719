"""CMA-ES over a template's parameters, as a :class:`~stratforge.explore.candidate.Proposer`.

The optimizer is the ``cma`` package's CMA-ES (no hand-written evolution strategy). This module adds
what the explorer needs around it:

* a normalised search space (:class:`ParamSpace`): every parameter maps to [0, 1] -- log scale for
  coefficients (``log(x + c)``, with a small offset ``c`` when the range starts at 0), ``log(1 - d)``
  for decays, linear for the rest; switches (0/1 ints) stay fixed at their starting value;
* one generation = one CMA-ES population (``propose``), ranked from per-seed edges on the
  generation's common seeds (``observe``): members that survived more racing rounds rank first, then
  by mean edge on their seeds (on common seeds the ranking by mean equals the ranking by paired
  difference against any member);
* IPOP restarts: when CMA-ES stops (or after ``max_generations`` without a new best) it restarts
  from the best point found with ``incpopsize`` times the population. "Best" compares like with
  like (:class:`Record`): racing scores members on a window of seeds that rotates per generation,
  and a 10-seed mean on an easy window can sit 50 edge above any 1000-seed mean, so a result
  replaces the record only on more seeds, or on the same seeds with a higher mean;
* exact resume: ``snapshot()`` pickles the CMA-ES state together with the private random generator
  it samples from (never numpy's global one), so a restored proposer proposes exactly what the
  uninterrupted one would have.

Templates whose parameters are immutables are precompiled once and each candidate carries a patched
spec (:mod:`stratforge.explore.templates.precompiled`); others get ``spec=None`` (compiled by the loop).

Plug into the loop::

    proposer = CmaesProposer(load_library()["frontier"], seed=0)
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cma
import numpy as np

from stratforge.amm.evm import EvmStrategySpec
from stratforge.explore.candidate import Candidate, CandidateResult, ProposalContext
from stratforge.explore.templates.precompiled import PrecompiledTemplate
from stratforge.explore.templates.templates import ParamSpec, Template

__all__ = ["CmaesProposer", "ParamSpace", "Record", "rank_results"]

SCALES = ("linear", "log", "decay", "switch")
_SNAPSHOT_FORMAT = 2  # 1: records were bare means (see restore)
#: f value of a failed member, above every evaluated one.
_FAILED_F = 1e9


def _default_scale(p: ParamSpec) -> str:
    if p.type == "int" and p.min == 0 and p.max == 1:
        return "switch"
    return "linear"


@dataclass(frozen=True)
class _Axis:
    spec: ParamSpec
    scale: str
    offset: float  # log scale: x + offset > 0 over the whole range

    def to_unit(self, x: float) -> float:
        lo, hi = self.spec.min, self.spec.max
        if hi == lo:
            return 0.5
        if self.scale == "log":
            a, b = math.log(lo + self.offset), math.log(hi + self.offset)
            return (math.log(x + self.offset) - a) / (b - a)
        if self.scale == "decay":
            a, b = math.log(1 - lo), math.log(1 - hi)
            return (math.log(1 - x) - a) / (b - a)
        return (x - lo) / (hi - lo)

    def from_unit(self, u: float) -> float:
        lo, hi = self.spec.min, self.spec.max
        u = float(u)
        if u <= 0.0 or u >= 1.0:  # the ends exactly, whatever the rounding of exp/log
            return lo if u <= 0.0 else hi
        if self.scale == "log":
            a, b = math.log(lo + self.offset), math.log(hi + self.offset)
            x = math.exp(a + u * (b - a)) - self.offset
        elif self.scale == "decay":
            a, b = math.log(1 - lo), math.log(1 - hi)
            x = 1 - math.exp(a + u * (b - a))
        else:
            x = lo + u * (hi - lo)
        return min(max(x, lo), hi)


class ParamSpace:
    """A template's searched parameters <-> a point of the unit cube.

    Scales come from the template's ``meta["scales"]`` (``linear``, ``log``, ``decay``, ``switch``);
    a parameter without one is ``linear`` (``switch`` for a 0/1 int). ``decay`` needs ``max < 1``.
    Switches and names in ``fixed`` are not searched: they keep their value from ``base``.
    """

    def __init__(self, template: Template, fixed: Sequence[str] = ()) -> None:
        scales = dict(template.meta.get("scales", {}))
        unknown = set(fixed) - set(template.param_names)
        if unknown:
            raise ValueError(f"template {template.name} has no parameters {sorted(unknown)}")
        self.template = template
        axes = []
        for p in template.params:
            scale = scales.get(p.name, _default_scale(p))
            if scale not in SCALES:
                raise ValueError(f"parameter {p.name}: unknown scale {scale!r}")
            if scale == "decay" and p.max >= 1:
                scale = "linear"
            if scale == "switch" or p.name in fixed or p.min == p.max:
                continue
            offset = 0.0
            if scale == "log" and p.min <= 0:
                offset = 0.01 * (p.max - p.min) - p.min
            axes.append(_Axis(p, scale, offset))
        self.axes: tuple[_Axis, ...] = tuple(axes)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.spec.name for a in self.axes)

    @property
    def dim(self) -> int:
        return len(self.axes)

    def to_unit(self, params: Mapping[str, float]) -> np.ndarray:
        return np.array([a.to_unit(float(params[a.spec.name])) for a in self.axes])

    def from_unit(self, u: Sequence[float], base: Mapping[str, float] | None = None) -> dict[str, float]:
        """Parameters for the point ``u``; unsearched ones from ``base`` (default: the template's)."""
        out = dict(self.template.defaults() if base is None else base)
        for a, v in zip(self.axes, u, strict=True):
            out[a.spec.name] = a.from_unit(v)
        return out


class _Normal:
    """CMA-ES's sampler (its ``randn`` option) on a private generator, so snapshots capture it."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def __call__(self, *shape: int) -> np.ndarray:
        return self.rng.standard_normal(shape)


@dataclass(frozen=True)
class Record:
    """The best result so far: its mean edge, the seeds it was scored on, its parameters."""

    edge: float
    seeds: frozenset[int]
    params: dict[str, float]

    def beaten_by(self, result: CandidateResult) -> bool:
        """More seeds is more evidence; on the same seeds a higher mean is better; a mean on other
        seeds (another racing window) says nothing."""
        seeds = frozenset(result.seeds)
        if len(seeds) != len(self.seeds):
            return len(seeds) > len(self.seeds)
        return seeds == self.seeds and float(np.mean(result.edges)) > self.edge


def rank_results(results: Sequence[CandidateResult]) -> list[float]:
    """CMA-ES f values (lower is better) for one generation's results.

    Members scored on more seeds (they survived more racing rounds) come first, then higher mean
    edge on their seeds; failures last. Within a racing round all members share their seeds, so
    the mean ranks exactly as the paired difference does.
    """
    lengths = sorted({len(r.edges) for r in results if r.status == "evaluated" and len(r.edges)})
    depth = {n: i for i, n in enumerate(reversed(lengths))}  # 0 for the most seeds
    out = []
    for r in results:
        if r.status != "evaluated" or not len(r.edges) or not np.all(np.isfinite(r.edges)):
            out.append(_FAILED_F)
        else:
            out.append(1e4 * depth[len(r.edges)] - float(np.mean(r.edges)))
    return out


class CmaesProposer:
    """IPOP-CMA-ES over one template at a time (see the module docstring).

    ``template``: what to tune (``meta["scales"]`` gives each parameter's scale). ``x0``: starting
    parameters (default the template's defaults; switches and ``fixed`` names keep these values).
    ``sigma0``: initial step in the unit cube. ``popsize``: first population (default CMA-ES's
    4 + 3 ln n); each restart multiplies it by ``incpopsize``, at most ``max_restarts`` times.
    ``max_generations``: restart after that many generations without a new best (None: only when
    CMA-ES itself stops). ``precompile``: carry patched specs (needs an immutable-parameter template).
    """

    name = "cmaes"

    def __init__(
        self,
        template: Template,
        *,
        seed: int = 0,
        x0: Mapping[str, float] | None = None,
        sigma0: float = 0.15,
        popsize: int | None = None,
        incpopsize: float = 2.0,
        max_restarts: int = 9,
        max_generations: int | None = 30,
        fixed: Sequence[str] = (),
        precompile: bool = True,
    ) -> None:
        self.seed = seed
        self.sigma0 = sigma0
        self.incpopsize = incpopsize
        self.max_restarts = max_restarts
        self.max_generations = max_generations
        self.fixed = tuple(fixed)
        self.precompile = precompile
        self.queued: list[Template] = []
        self.restarts = 0
        self.generation = 0
        self.best: Record | None = None  # over all runs: where a restart starts from
        #: template name -> its precompiled form (None: not patchable, the loop compiles the source)
        self._precompiled: dict[str, PrecompiledTemplate | None] = {}
        self._start(template, dict(template.normalize(x0)), popsize)

    # -- CMA-ES runs -----------------------------------------------------------------------------

    def _start(self, template: Template, base: dict[str, float], popsize: int | None) -> None:
        self.template = template
        self.space = ParamSpace(template, self.fixed)
        self.base = base
        self._since_best = 0
        self._run_best: Record | None = None  # this CMA-ES run's best: stalls are counted from it
        n = max(self.space.dim, 1)
        pop = popsize or int(4 + 3 * math.log(n))
        self.popsize = max(pop, 2)
        opts = {
            "bounds": [0.0, 1.0],
            "popsize": self.popsize,
            "seed": np.nan,  # never touch numpy's global generator
            "randn": _Normal(self.seed * 1_000_003 + self.restarts),
            "verbose": -9,
            "verb_log": 0,
            "verb_disp": 0,
            "CMA_mirrors": 0,
        }
        x = np.clip(self.space.to_unit(base), 0.0, 1.0) if self.space.dim else np.array([0.5])
        self.es = cma.CMAEvolutionStrategy(list(x), self.sigma0, opts)
        self._asked: list[np.ndarray] | None = None

    def _restart(self) -> None:
        self.restarts += 1
        if self.queued:
            template = self.queued.pop(0)
            self._start(template, template.defaults(), None)
            return
        base = (
            dict(self.best.params) if self.best and self.best.params.keys() == self.base.keys() else self.base
        )
        self._start(self.template, base, int(round(self.popsize * self.incpopsize)))

    @property
    def generations_without_gain(self) -> int:
        """Generations since this CMA-ES run's best was last beaten (a restart comes at ``max_generations``)."""
        return self._since_best

    # -- the Proposer protocol --------------------------------------------------------------------

    def propose(self, ctx: ProposalContext) -> list[Candidate]:
        if self._asked is not None:
            raise RuntimeError("propose() called twice without observe()")
        stalled = self.max_generations is not None and self._since_best >= self.max_generations
        if (self.es.stop() or stalled) and self.restarts < self.max_restarts:
            self._restart()
        self._asked = [np.asarray(x) for x in self.es.ask()]
        self.generation += 1
        out = []
        for k, x in enumerate(self._asked):
            params = self.template.normalize(self.space.from_unit(x, self.base))
            label = f"{self.template.name} g{self.generation}.{k}"
            spec, source = self._materialise(params, label)
            out.append(
                Candidate(
                    source=source,
                    proposer=self.name,
                    template=self.template.name,
                    params=params,
                    hypothesis=self.template.hypothesis or None,
                    rationale=(
                        f"CMA-ES run {self.restarts} generation {self.generation} member {k}"
                        f" (population {self.popsize}, sigma {self.es.sigma:.3g})"
                    ),
                    spec=spec,
                )
            )
        return out

    def observe(self, results: Sequence[CandidateResult]) -> None:
        if self._asked is None:
            raise RuntimeError("observe() without a pending generation")
        if len(results) != len(self._asked):
            raise ValueError(f"expected {len(self._asked)} results, got {len(results)}")
        f = rank_results(results)
        self.es.tell(self._asked, f)
        self._asked = None
        top = results[int(np.argmin(f))]
        params = top.candidate.params
        if min(f) >= _FAILED_F or params is None:
            self._since_best += 1
            return
        record = Record(float(np.mean(top.edges)), frozenset(top.seeds), dict(params))
        if self._run_best is None or self._run_best.beaten_by(top):
            self._run_best = record
            self._since_best = 0
        else:
            self._since_best += 1
        if self.best is None or self.best.beaten_by(top):
            self.best = record

    def add_template(self, template: Template) -> None:
        """Queued: the next restart tunes it (from its defaults) instead of restarting this one."""
        if template.name != self.template.name and all(t.name != template.name for t in self.queued):
            self.queued.append(template)

    def snapshot(self) -> bytes:
        state = {k: v for k, v in self.__dict__.items() if k != "_precompiled"}
        return pickle.dumps((_SNAPSHOT_FORMAT, state))

    def restore(self, snapshot: bytes) -> None:
        fmt, state = pickle.loads(snapshot)
        if fmt == 1:  # bare means, not comparable across racing windows: start the records afresh
            state["_run_best"], state["best"] = None, None
        elif fmt != _SNAPSHOT_FORMAT:
            raise ValueError(f"unknown CMA-ES snapshot format {fmt}")
        self.__dict__.update(state)

    # -- candidates -------------------------------------------------------------------------------

    def _materialise(self, params: dict[str, float], label: str) -> tuple[EvmStrategySpec | None, str]:
        """(patched spec or None, rendered source)."""
        name = self.template.name
        if self.precompile and name not in self._precompiled:
            try:
                self._precompiled[name] = PrecompiledTemplate.build(self.template)
            except ValueError:  # not patchable (TemplateError) or rejected (StrategyRejected)
                self._precompiled[name] = None
        pre = self._precompiled.get(name) if self.precompile else None
        if pre is None:
            return None, self.template.render(params, label)
        return pre.render(params, label)
