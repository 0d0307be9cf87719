"""The autonomous exploration loop: propose -> validate/compile -> staged test -> promote -> repeat.

One iteration:

1. pick the least-explored hypothesis and ask the proposer for a candidate (the offline template
   proposer by default, an LLM through a prompt when one is configured); the prompt and response
   are saved before anything else happens;
2. extract the Solidity, validate and compile it (the challenge's security rules);
3. staged test on the *selection* seeds (10 -> 100 -> 1000 simulations), paired against the
   champion on the same seeds; a stage whose upper confidence bound on the paired difference is
   below zero stops the candidate early;
4. a candidate that beats the champion on all selection seeds is re-scored on fresh *confirmation*
   seeds and promoted only if the paired difference over both sets is significant at
   ``confidence``; every champion is also scored on *holdout* seeds that never influence selection,
   so overfitting to the selection seeds shows up as a gap;
5. strong strategies are turned into templates that feed the offline proposer;
6. exit checks: runtime, target edge, iterations, LLM budget, a stop request or a signal.

Scoring goes through the EVM, except that a template candidate is scored with its pure-Python twin
(same integer arithmetic, ~5x cheaper) once the twin has been checked against the EVM on a few seeds
with bit-identical edges; any mismatch falls back to the EVM and is recorded as an alert.

Every state change is a transaction in the run store, so ``kill -9`` loses at most the iteration in
flight, and ``--resume`` continues the run (the proposer replays finished iterations to recover its
state, so the continuation is the one an uninterrupted run would have made).
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stratforge.amm.engine import SIMULATOR_VERSION, BatchResult, run_batch
from stratforge.amm.solidity import EXAMPLES_DIR, CompilerUnavailable, StrategyRejected, check_solidity
from stratforge.amm.strategy import FixedFee, StrategySpec
from stratforge.explore.llm_proposer import ProviderPaced
from stratforge.explore.store import (
    DEFAULT_RUN_DIR,
    STATUS_EVALUATED,
    STATUS_FAILED,
    open_run,
    source_hash,
)

#: Seeds used to choose between strategies are 0 .. max(stages)-1, like the reference's scoring.
CONFIRM_SEED_START = 100_000  #: fresh seeds for re-scoring a would-be champion
HOLDOUT_SEED_START = 900_000_000  #: never used for any decision, only reported
STOP_FILE = "STOP"
PID_FILE = "explorer.pid"
STARTER = EXAMPLES_DIR / "StarterStrategy.sol"


@dataclass
class ExploreConfig:
    """Everything a run depends on; stored in the run so a resume continues with the same settings."""

    state_dir: Path = DEFAULT_RUN_DIR
    max_runtime_s: float = 10 * 3600
    target_edge: float = 527.0
    max_iterations: int | None = None
    budget_usd: float | None = None
    stages: tuple[int, ...] = (10, 100, 1000)
    confidence: float = 0.95
    rescore_sims: int = 1000
    holdout_sims: int = 500
    template_threshold: float = 390.0
    seed: int = 0
    workers: int | None = None
    executor: str = "local"
    use_native_twins: bool = True
    twin_check_sims: int = 4
    llm: dict[str, Any] | None = None  #: an LLMConfig as a dict; None = the offline proposer
    hypotheses_file: Path | None = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["state_dir"] = str(self.state_dir)
        d["hypotheses_file"] = None if self.hypotheses_file is None else str(self.hypotheses_file)
        d["stages"] = list(self.stages)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ExploreConfig:
        d = dict(d)
        d["state_dir"] = Path(d["state_dir"])
        d["stages"] = tuple(d["stages"])
        if d.get("hypotheses_file"):
            d["hypotheses_file"] = Path(d["hypotheses_file"])
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def validate(self) -> None:
        if not self.stages or any(s < 1 for s in self.stages) or list(self.stages) != sorted(self.stages):
            raise ValueError("stages must be increasing positive simulation counts, e.g. 10,100,1000")
        if not 0.5 < self.confidence < 1.0:
            raise ValueError("confidence must be between 0.5 and 1")
        if self.max_runtime_s <= 0:
            raise ValueError("max runtime must be positive")
        if self.max_iterations is not None and self.max_iterations < 1:
            raise ValueError("max iterations must be at least 1")
        if self.executor not in ("local", "ray"):
            raise ValueError("executor must be 'local' or 'ray'")


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairedStats:
    """Candidate minus champion on the same seeds."""

    n: int
    mean_diff: float
    std_error: float
    ci_low: float
    ci_high: float
    p_better: float  #: one-sided p-value of "candidate is not better"

    def to_json(self) -> dict[str, float]:
        return asdict(self)


def paired_stats(candidate: np.ndarray, champion: np.ndarray, confidence: float = 0.95) -> PairedStats:
    from stratforge.amm.compare import student_t_ppf, student_t_sf

    d = np.asarray(candidate, dtype=float) - np.asarray(champion, dtype=float)
    n = len(d)
    mean = float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else float("inf")
    if se == 0.0:
        p = 0.0 if mean > 0 else 1.0
        return PairedStats(n, mean, 0.0, mean, mean, p)
    t_crit = student_t_ppf(0.5 + confidence / 2, n - 1)
    p = student_t_sf(mean / se, n - 1)
    return PairedStats(n, mean, se, mean - t_crit * se, mean + t_crit * se, p)


# ---------------------------------------------------------------------------------------------
# Evaluation executors
# ---------------------------------------------------------------------------------------------


class LocalExecutor:
    """Simulations in a local process pool (the engine's)."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers

    def run(self, spec: StrategySpec, seeds: Sequence[int]) -> BatchResult:
        return run_batch(spec, len(seeds), seeds=seeds, workers=self.workers)


class RayExecutor:
    """Simulations as Ray tasks, on a local Ray instance or the cluster at ``address``."""

    name = "ray"

    def __init__(self, address: str | None = None, chunk: int = 25) -> None:
        import ray

        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        self._ray = ray
        self._task = ray.remote(_ray_chunk)
        self.chunk = chunk

    def run(self, spec: StrategySpec, seeds: Sequence[int]) -> BatchResult:
        from stratforge.amm.engine import assemble_batch

        t0 = time.perf_counter()
        seeds = [int(s) for s in seeds]
        chunks = [seeds[i : i + self.chunk] for i in range(0, len(seeds), self.chunk)]
        parts = self._ray.get([self._task.remote(c, spec) for c in chunks])
        return assemble_batch(spec.name, seeds, parts, time.perf_counter() - t0)


def _ray_chunk(seeds: list[int], spec: StrategySpec) -> tuple[np.ndarray, float]:
    from stratforge.amm.engine import CHALLENGE, run_chunk
    from stratforge.amm.strategy import NORMALIZER

    return run_chunk(seeds, spec, NORMALIZER, CHALLENGE)


def make_executor(config: ExploreConfig) -> LocalExecutor | RayExecutor:
    if config.executor == "ray":
        return RayExecutor(address=os.environ.get("RAY_ADDRESS"))
    return LocalExecutor(config.workers)


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------


@dataclass
class Candidate:
    source: str
    template: str | None = None
    params: dict[str, float] | None = None
    hypothesis: str | None = None
    proposer: str = "offline"
    rationale: str = ""
    native: StrategySpec | None = None  #: pure-Python twin, if any
    prompt: str | None = None
    response: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    errors: list[str] = field(default_factory=list)


@dataclass
class ChampionState:
    iteration: int
    edge: float
    selection: np.ndarray  #: per-seed edges on the selection seeds
    confirm: np.ndarray | None
    holdout_edge: float | None
    source: str
    template: str | None = None
    params: dict[str, float] | None = None


class StopRequested(Exception):
    pass


class Explorer:
    """Runs (or resumes) one exploration in ``config.state_dir``."""

    def __init__(
        self,
        config: ExploreConfig,
        *,
        resume: bool = False,
        proposer: Any | None = None,
        backend: Any | None = None,
        on_event: Callable[[str, str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        config.validate()
        self.config = config
        self.clock = clock
        self.on_event = on_event or (lambda kind, msg: None)
        versions = {"simulator": SIMULATOR_VERSION, "solc": "0.8.24"}
        if resume:
            self.store = open_run(config.state_dir, resume=True, versions=versions)
            stored = self.store.run_info().config
            if stored:  # a resume continues with the run's own settings, bar the exit conditions
                base = ExploreConfig.from_json(stored)
                for name in (
                    "max_runtime_s",
                    "target_edge",
                    "max_iterations",
                    "budget_usd",
                    "workers",
                    "executor",
                ):
                    setattr(base, name, getattr(config, name))
                self.config = base
        else:
            self.store = open_run(
                config.state_dir, config=config.to_json(), seed=config.seed, versions=versions
            )
        self.executor = make_executor(self.config)
        self.backend = backend
        self.proposer = proposer or self._default_proposer()
        self.hypotheses = _load_hypotheses(self.config.hypotheses_file)
        self.champion: ChampionState | None = None
        self._stop_reason: str | None = None
        self._signals = 0
        self._provider_state = "closed"

    # -- setup --------------------------------------------------------------------------------

    def _default_proposer(self) -> Any:
        if self.config.llm:
            from stratforge.explore.llm_proposer import LLMProposer

            return LLMProposer.from_config(self.config, self.store, backend=self.backend)
        from stratforge.explore.proposers import OfflineProposer

        return OfflineProposer(seed=self.config.seed)

    @property
    def selection_seeds(self) -> list[int]:
        return list(range(max(self.config.stages)))

    @property
    def confirm_seeds(self) -> list[int]:
        return list(range(CONFIRM_SEED_START, CONFIRM_SEED_START + self.config.rescore_sims))

    @property
    def holdout_seeds(self) -> list[int]:
        return list(range(HOLDOUT_SEED_START, HOLDOUT_SEED_START + self.config.holdout_sims))

    def elapsed(self) -> float:
        return self.clock() - self.store.run_info().started_at

    def event(self, kind: str, message: str, level: str = "info", data: dict[str, Any] | None = None) -> None:
        self.store.add_event(kind, message, level=level, data=data)
        self.on_event(kind, message)

    # -- evaluation ---------------------------------------------------------------------------

    def _scorer(self, cand: Candidate, spec: StrategySpec) -> tuple[StrategySpec, str]:
        """The spec to score with: the verified native twin when allowed, else the EVM."""
        if not (self.config.use_native_twins and cand.native is not None):
            return spec, "evm"
        seeds = self.selection_seeds[: self.config.twin_check_sims]
        twin = self.executor.run(cand.native, seeds).edge
        evm = self.executor.run(spec, seeds).edge
        if np.array_equal(twin, evm):
            return cand.native, "native-twin (verified)"
        self.event(
            "alert",
            f"native twin of {cand.template} disagrees with the EVM ({twin.mean():.4f} vs {evm.mean():.4f});"
            " scoring this candidate in the EVM",
            level="warning",
        )
        return spec, "evm"

    def _staged(self, scorer: StrategySpec) -> tuple[dict[str, Any], np.ndarray, bool]:
        """Run the stages on the selection seeds; returns (stage results, per-seed edges, passed all)."""
        stages: dict[str, Any] = {}
        edges = np.empty(0)
        done = 0
        for n in self.config.stages:
            self._check_stop()
            seeds = self.selection_seeds[done:n]
            result = self.executor.run(scorer, seeds)
            edges = np.concatenate([edges, result.edge])
            done = n
            summary = {k: v for k, v in result.summary().items() if isinstance(v, int | float)}
            summary["mean_edge"] = float(edges.mean())
            summary["simulations"] = n
            entry: dict[str, Any] = {"summary": summary}
            if self.champion is not None:
                paired = paired_stats(edges, self.champion.selection[:n], self.config.confidence)
                entry["vs_champion"] = paired.to_json()
                stages[str(n)] = entry
                if paired.ci_high < 0 or (n == max(self.config.stages) and paired.mean_diff <= 0):
                    return stages, edges, False
            else:
                stages[str(n)] = entry
        return stages, edges, True

    # -- one iteration ------------------------------------------------------------------------

    def iterate(self) -> int:
        number = self.store.next_iteration_number()
        hypothesis = self._least_explored_hypothesis()
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        self.store.begin_iteration(
            number, hypothesis=hypothesis, proposer=getattr(self.proposer, "name", "?")
        )
        cand = self._propose(number, hypothesis)
        timings["propose_s"] = time.perf_counter() - t0
        common = {
            "tokens_in": cand.tokens_in,
            "tokens_out": cand.tokens_out,
            "cost_usd": cand.cost_usd,
            "hypothesis": cand.hypothesis or hypothesis,
            "template": cand.template,
            "params": cand.params,
        }
        if cand.errors or not cand.source:
            self.store.finish_iteration(
                number, status=STATUS_FAILED, errors=cand.errors or ["no source"], timings=timings, **common
            )
            self._observe(cand, None)
            return number
        self.store.save_source(number, cand.source)
        t1 = time.perf_counter()
        try:
            loaded = check_solidity(cand.source)
        except CompilerUnavailable:
            raise  # not the candidate's fault: the run stops and this iteration is re-run on resume
        except StrategyRejected as exc:
            timings["compile_s"] = time.perf_counter() - t1
            errors = [str(p) for p in exc.problems]
            self.store.finish_iteration(
                number, status=STATUS_FAILED, errors=errors, timings=timings, **common
            )
            self._observe(cand, None)
            return number
        timings["compile_s"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        scorer, scored_by = self._scorer(cand, loaded.spec)
        stages, edges, passed = self._staged(scorer)
        stages["scored_by"] = scored_by
        timings["test_s"] = time.perf_counter() - t2
        edge = float(edges.mean())
        self.store.finish_iteration(
            number, status=STATUS_EVALUATED, edge=edge, stage_results=stages, timings=timings, **common
        )
        self._observe(cand, edge if len(edges) == max(self.config.stages) else None)
        self.event(
            "iteration", f"#{number} {cand.template or cand.proposer}: {edge:.2f} over {len(edges)} sims"
        )
        if passed and self.champion is not None:
            self._consider_promotion(number, cand, scorer, edges)
        if edge >= self.config.template_threshold and len(edges) == max(self.config.stages):
            self._extract_template(number, cand, edge)
        return number

    def _propose(self, number: int, hypothesis: str | None) -> Candidate:
        if hasattr(self.proposer, "candidate"):  # LLM proposers build the whole candidate themselves
            cand: Candidate = self.proposer.candidate(number, hypothesis, self)
            if cand.prompt is not None:
                self.store.save_prompt(number, cand.prompt)
            if cand.response is not None:
                self.store.save_response(number, cand.response)
            return cand
        p = self.proposer.propose(number, hypothesis=hypothesis)
        native = self.proposer.native_spec(p) if hasattr(self.proposer, "native_spec") else None
        self.store.save_prompt(
            number, f"offline proposal ({p.kind}): {p.rationale}\n\n{json.dumps(p.params)}"
        )
        return Candidate(
            p.source, p.template, dict(p.params), p.hypothesis, "offline", p.rationale, native=native
        )

    def _observe(self, cand: Candidate, edge: float | None) -> None:
        if hasattr(self.proposer, "observe"):
            self.proposer.observe(cand.template, cand.params, edge)

    # -- champion -----------------------------------------------------------------------------

    def _install_starter(self) -> None:
        """Iteration 0 of every run: the challenge's 50 bps starter is the first champion."""
        source = STARTER.read_text()
        number = 0
        if self.store.iteration(0) is None or not self.store.iteration(0).finished:
            self.store.begin_iteration(0, hypothesis=None, proposer="starter")
            self.store.save_source(0, source)
            loaded = check_solidity(source)
            cand = Candidate(source, native=FixedFee(50), proposer="starter")
            scorer, scored_by = self._scorer(cand, loaded.spec)
            stages, edges, _ = self._staged(scorer)
            stages["scored_by"] = scored_by
            self.store.finish_iteration(
                number, status=STATUS_EVALUATED, edge=float(edges.mean()), stage_results=stages
            )
            self._promote(number, cand, scorer, edges, None, "starting point: the challenge's 50 bps starter")

    def _consider_promotion(
        self, number: int, cand: Candidate, scorer: StrategySpec, edges: np.ndarray
    ) -> None:
        assert self.champion is not None
        self._check_stop()
        confirm = self.executor.run(scorer, self.confirm_seeds).edge
        cand_all = np.concatenate([edges, confirm])
        champ_all = np.concatenate([self.champion.selection, self._champion_confirm()])
        stats = paired_stats(cand_all, champ_all, self.config.confidence)
        alpha = 1.0 - self.config.confidence
        if stats.p_better < alpha:
            reason = (
                f"beats champion #{self.champion.iteration} by {stats.mean_diff:+.2f} edge over {stats.n} paired"
                f" simulations (95% CI {stats.ci_low:+.2f}..{stats.ci_high:+.2f}, p={stats.p_better:.2g})"
            )
            self._promote(number, cand, scorer, edges, confirm, reason, stats)
        else:
            self.event(
                "rejected",
                f"#{number} looked better ({stats.mean_diff:+.2f}) but not significantly (p={stats.p_better:.2g})",
            )

    def _champion_confirm(self) -> np.ndarray:
        assert self.champion is not None
        if self.champion.confirm is None:
            spec = self._spec_for_source(self.champion)
            self.champion.confirm = self.executor.run(spec, self.confirm_seeds).edge
        return self.champion.confirm

    def _spec_for_source(self, champ: ChampionState) -> StrategySpec:
        if champ.template and self.config.use_native_twins and hasattr(self.proposer, "native_spec"):
            from stratforge.explore.proposers import Proposal

            twin = self.proposer.native_spec(
                Proposal(champ.source, champ.template, champ.params or {}, None, "")
            )
            if twin is not None:
                return twin
        if champ.iteration == 0:
            return FixedFee(50)
        return check_solidity(champ.source).spec

    def _promote(
        self,
        number: int,
        cand: Candidate,
        scorer: StrategySpec,
        edges: np.ndarray,
        confirm: np.ndarray | None,
        reason: str,
        stats: PairedStats | None = None,
    ) -> None:
        holdout = (
            self.executor.run(scorer, self.holdout_seeds).edge if self.config.holdout_sims else np.empty(0)
        )
        holdout_edge = float(holdout.mean()) if len(holdout) else None
        edge = float(edges.mean())
        payload = {
            "selection_edges": [round(float(v), 9) for v in edges],
            "confirm_edges": None if confirm is None else [round(float(v), 9) for v in confirm],
            "paired": None if stats is None else stats.to_json(),
            "template": cand.template,
            "params": cand.params,
            "holdout_seeds": [HOLDOUT_SEED_START, len(holdout)],
        }
        self.store.record_champion(number, edge, reason=reason, stats=payload, holdout_edge=holdout_edge)
        if holdout_edge is not None:
            self.store.set_holdout(number, holdout_edge)
        self.champion = ChampionState(
            number, edge, edges, confirm, holdout_edge, cand.source, cand.template, cand.params
        )
        gap = "" if holdout_edge is None else f", holdout {holdout_edge:.2f}"
        self.event("champion", f"new champion #{number}: {edge:.2f}{gap} ({reason})")

    def _restore_champion(self) -> None:
        champ = self.store.champion()
        if champ is None:
            return
        it = self.store.iteration(champ.iteration)
        stats = champ.stats or {}
        confirm = stats.get("confirm_edges")
        self.champion = ChampionState(
            champ.iteration,
            champ.edge,
            np.asarray(stats.get("selection_edges", []), dtype=float),
            None if confirm is None else np.asarray(confirm, dtype=float),
            champ.holdout_edge,
            it.source if it and it.source else "",
            stats.get("template"),
            stats.get("params"),
        )

    def _extract_template(self, number: int, cand: Candidate, edge: float) -> None:
        """Strong strategies from outside the library become templates for the offline proposer."""
        if cand.template is not None:  # already a template: its parameters are known
            return
        from stratforge.explore.template_extract import maybe_extract

        directory = self.config.state_dir / "templates"
        template = maybe_extract(
            cand.source,
            edge,
            f"iter_{number:04d}",
            directory,
            threshold=self.config.template_threshold,
            hypothesis=cand.hypothesis or "",
        )
        if template is None:
            return
        self.store.add_template(
            template.name,
            directory / f"{template.name}.sol.template",
            template.to_schema(),
            source_iteration=number,
            edge=edge,
        )
        if hasattr(self.proposer, "add_template"):
            self.proposer.add_template(template)
        self.event("template", f"template {template.name} extracted from #{number} ({edge:.2f})")

    # -- hypotheses ---------------------------------------------------------------------------

    def _least_explored_hypothesis(self) -> str | None:
        ids = [h["id"] for h in self.hypotheses]
        if not ids:
            return None
        coverage = self.store.hypothesis_coverage(ids)
        return min(ids, key=lambda h: (coverage.get(h, {}).get("iterations", 0), ids.index(h)))

    # -- exits and signals --------------------------------------------------------------------

    def _check_stop(self) -> None:
        if self._signals >= 2:
            raise KeyboardInterrupt
        if (self.config.state_dir / STOP_FILE).exists():
            self._stop_reason = self._stop_reason or "stop requested (stratforge explore stop)"

    def exit_reason(self) -> str | None:
        self._check_stop()
        if self._stop_reason:
            return self._stop_reason
        if isinstance(self.proposer, ProviderPaced) and (fatal := self.proposer.fatal_reason()):
            return fatal
        c = self.config
        if self.elapsed() >= c.max_runtime_s:
            return f"max runtime reached ({c.max_runtime_s:.0f} s)"
        if self.champion is not None and self.champion.edge >= c.target_edge:
            return f"target edge reached ({self.champion.edge:.2f} >= {c.target_edge:.2f})"
        totals = self.store.totals()
        if c.max_iterations is not None and totals["iterations"] - 1 >= c.max_iterations:  # minus the starter
            return f"max iterations reached ({c.max_iterations})"
        if c.budget_usd is not None and totals["cost_usd"] >= c.budget_usd:
            return f"LLM budget spent (${totals['cost_usd']:.2f} of ${c.budget_usd:.2f})"
        return None

    def _wait_for_provider(self) -> bool:
        """True while an LLM provider asks the loop to wait (its circuit breaker is open): record
        the provider's state when it changes, sleep one step on the provider's clock, and let the
        caller re-check the exit conditions, instead of spinning through iterations that cannot
        send anything."""
        if not isinstance(self.proposer, ProviderPaced):
            return False
        st = self.proposer.provider_state()
        if st.state != self._provider_state:
            self._provider_state = st.state
            level = "warning" if st.state == "open" else "info"
            self.event("llm-provider", st.describe(), level=level, data=st.to_json())
        if st.state != "open":
            return False
        self.proposer.wait(st.retry_in_s)
        return True

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signals += 1
        if self._signals == 1:
            self._stop_reason = f"signal {signal.Signals(signum).name}: finishing the current iteration"
            self.on_event("signal", "stopping after this iteration (signal again to stop now)")
        else:
            raise KeyboardInterrupt

    def run(self) -> str:
        """Run until an exit condition; returns the reason. Writes the final report."""
        root = self.config.state_dir
        (root / STOP_FILE).unlink(missing_ok=True)
        (root / PID_FILE).write_text(str(os.getpid()))
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        reason = "interrupted"
        try:
            self._restore_champion()
            if hasattr(self.proposer, "observe_iterations"):
                self.proposer.observe_iterations(self.store.iterations(finished_only=True))
            if self.champion is None:
                self._install_starter()
            while (r := self.exit_reason()) is None:
                if self._wait_for_provider():
                    continue
                self.iterate()
            reason = r
        except KeyboardInterrupt:
            reason = "stopped at once (second signal); the iteration in flight is re-run on resume"
        except CompilerUnavailable as exc:
            problems = "; ".join(str(p) for p in exc.problems)
            reason = (
                f"Solidity compiler unavailable ({problems}); run `stratforge amm setup-solc`, then --resume"
            )
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
            self.store.set_status(f"stopped: {reason}")
            self.store.add_event("exit", reason)
            (root / PID_FILE).unlink(missing_ok=True)
        self.on_event("exit", reason)
        try:
            from stratforge.explore.report import write_report

            write_report(self.store)
        except Exception as exc:  # the run's data is safe in the store; report later with `explore report`
            self.store.add_event("report", f"report failed: {exc}", level="warning")
        return reason


def _load_hypotheses(extra: Path | None) -> list[dict[str, Any]]:
    shipped = Path(__file__).resolve().parent / "hypotheses.json"
    items: list[dict[str, Any]] = json.loads(shipped.read_text()).get("hypotheses", [])
    if extra is not None:
        added = json.loads(Path(extra).read_text())
        known = {h["id"] for h in items}
        items += [
            h
            for h in added.get("hypotheses", added if isinstance(added, list) else [])
            if h["id"] not in known
        ]
    return items


def request_stop(state_dir: Path) -> bool:
    """Ask a running explorer to finish its iteration and exit; True if one seems to be running."""
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / STOP_FILE).write_text(str(time.time()))
    pid_file = state_dir / PID_FILE
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


__all__ = [
    "ExploreConfig",
    "Explorer",
    "PairedStats",
    "paired_stats",
    "request_stop",
    "source_hash",
]
