"""The exploration loop: propose a generation -> compile -> race on common seeds -> promote -> repeat.

One iteration:

1. the least-explored hypothesis goes into a :class:`ProposalContext`, and the proposer returns a
   generation of candidates (one for an LLM, a population for an optimizer);
2. members without a ready ``spec`` are validated and compiled (the challenge's rules);
3. the generation races on a rotating window of the selection seeds, all members on the same seeds
   (:mod:`.scoring`); the proposer observes every member's per-seed edges;
4. the generation's best, re-raced on all selection seeds, is judged against the champion on
   confirmation seeds (:mod:`.champion`); the champion a run ends with is scored on the holdout
   seeds once, after the last iteration;
5. a strong strategy from outside the template library becomes a template for the proposer;
6. the iteration's record, its members, the proposer's snapshot, a champion change, new templates
   and the iteration's events are written in ONE store transaction.

Iteration 0 installs the challenge's 50 bps starter as the first champion. A run killed at any
instant holds whole iterations only; ``--resume`` restores the champion and the proposer's snapshot
of the last written iteration and re-runs the one in flight, so it writes the same store as a run
that never stopped. Exits: runtime, target edge, iterations, LLM budget, stop file or signals
(:mod:`.control`), an unavailable compiler or a proposer that can never succeed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from stratforge.amm.engine import SIMULATOR_VERSION, Executor
from stratforge.amm.solidity import EXAMPLES_DIR, CompilerUnavailable
from stratforge.amm.strategy import FixedFee
from stratforge.explore.candidate import (
    Candidate,
    ProposalContext,
    Proposer,
    ProposerFailed,
    ProposerUnavailable,
)
from stratforge.explore.champion import ChampionKeeper
from stratforge.explore.config import REFERENCE_FEE_BPS, ExploreConfig
from stratforge.explore.control import RunControl, StopNow, request_stop
from stratforge.explore.hypotheses import Hypothesis, least_explored, run_hypotheses
from stratforge.explore.scoring import Scored, Scoring, generation_record
from stratforge.explore.store import (
    ChampionChange,
    IterationRecord,
    NewEvent,
    NewTemplate,
    RunStore,
    open_run,
)

STARTER = EXAMPLES_DIR / "StarterStrategy.sol"
RETRY_PAUSE_S = 30.0  #: wait when a proposer is unavailable without saying until when

__all__ = ["ExploreConfig", "Explorer", "make_executor", "make_proposer", "request_stop"]


def make_proposer(
    config: ExploreConfig, store: RunStore, hypotheses: Sequence[Hypothesis], backend: Any | None = None
) -> Proposer:
    """The one place that chooses a run's proposer: an LLM when configured, else the offline default."""
    if config.llm:
        from stratforge.explore.llm_proposer import LLMProposer

        return LLMProposer.from_config(config, store, hypotheses, backend=backend)
    if config.proposer == "cmaes":
        from stratforge.explore.optimizer import CmaesProposer
        from stratforge.explore.templates import load_library

        # sigma0 0.03: the family's defaults are strong; wider first steps mostly made members worse
        return CmaesProposer(load_library()["frontier"], seed=config.seed, sigma0=0.03)
    from stratforge.explore.proposers import OfflineProposer

    return OfflineProposer(seed=config.seed, generation_size=config.generation_size)


def make_executor(config: ExploreConfig) -> Executor | None:
    """None: the engine's local process pool."""
    if config.executor == "ray":
        from stratforge.amm.ray_executor import RayExecutor

        return RayExecutor(address=os.environ.get("RAY_ADDRESS"))
    return None


class Explorer:
    """Runs (or resumes) one exploration in ``config.state_dir``."""

    def __init__(
        self,
        config: ExploreConfig,
        *,
        resume: bool = False,
        proposer: Proposer | None = None,
        backend: Any | None = None,
        on_event: Callable[[str, str], None] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        config.validate()
        versions = {"simulator": SIMULATOR_VERSION, "solc": "0.8.24"}
        if resume:
            self.store = open_run(config.state_dir, resume=True, versions=versions)
            self.config = config.resumed_with(self.store.run_info().config)
        else:
            self.store = open_run(
                config.state_dir, config=config.to_json(), seed=config.seed, versions=versions
            )
            self.config = config
        self.clock, self.sleep = clock, sleep
        self.on_event = on_event or (lambda kind, message: None)
        self.hypotheses = run_hypotheses(self.store)
        self.control = RunControl(self.config.state_dir, lambda message: self.on_event("signal", message))
        self.scoring = Scoring(self.config, make_executor(self.config), self.control.stop_now_if_asked)
        self.champions = ChampionKeeper(self.scoring, self._emit)
        self.proposer = proposer or make_proposer(self.config, self.store, self.hypotheses, backend)
        self._events: list[NewEvent] = []  #: written with the iteration they belong to

    # -- the run --------------------------------------------------------------------------------

    def run(self) -> str:
        """Run until an exit condition; returns the reason. Writes the final report."""
        reason = "interrupted"
        with self.control:
            try:
                self.champions.restore(self.store)
                if (state := self.store.proposer_state()) is not None:
                    self.proposer.restore(state)
                if self.champions.state is None:
                    self._install_starter()
                while (exit_reason := self.exit_reason()) is None:
                    self.iterate()
                reason = exit_reason
                self._score_holdout()
            except StopNow:
                reason = "stopped at once (second signal); the iteration in flight is re-run on resume"
            except CompilerUnavailable as exc:
                problems = "; ".join(str(p) for p in exc.problems)
                reason = f"Solidity compiler unavailable ({problems}); run `stratforge amm setup-solc`, then --resume"
            except ProposerFailed as exc:
                reason = f"proposer failed: {exc}"
            finally:
                self.store.set_status(f"stopped: {reason}")
                self.store.add_event("exit", reason)
        self.on_event("exit", reason)
        try:
            from stratforge.explore.report import write_report

            write_report(self.store)
        except Exception as exc:  # the run's data is safe in the store; report later with `explore report`
            self.store.add_event("report", f"report failed: {exc}", level="warning")
        return reason

    def _score_holdout(self) -> None:
        """The final champion on the holdout seeds (a second signal stops this too: then a resume does it)."""
        if self.champions.state is not None and self.champions.state.holdout_edge is None:
            self.on_event("holdout", f"scoring the champion on {self.config.holdout_sims} holdout seeds")
            edge = self.champions.score_holdout(self.store)
            self.on_event("holdout", f"champion holdout edge {edge:.2f}")

    def exit_reason(self) -> str | None:
        if (stop := self.control.check()) is not None:
            return stop
        c = self.config
        if self.clock() - self.store.run_info().started_at >= c.max_runtime_s:
            return f"max runtime reached ({c.max_runtime_s:.0f} s)"
        champ = self.champions.state
        if champ is not None and champ.edge >= c.target_edge:
            return f"target edge reached ({champ.edge:.2f} >= {c.target_edge:.2f})"
        totals = self.store.totals()
        if c.max_iterations is not None and totals["iterations"] - 1 >= c.max_iterations:  # minus the starter
            return f"max iterations reached ({c.max_iterations})"
        if c.budget_usd is not None and totals["cost_usd"] >= c.budget_usd:
            return f"LLM budget spent (${totals['cost_usd']:.2f} of ${c.budget_usd:.2f})"
        return None

    # -- one iteration --------------------------------------------------------------------------

    def iterate(self) -> int:
        number = self.store.next_iteration_number()
        champ = self.champions.state
        ctx = ProposalContext(
            number, self._focus(), None if champ is None else champ.view(), self.config.n_selection, self._note
        )
        t0 = time.perf_counter()
        try:
            candidates = self.proposer.propose(ctx)
        except ProposerUnavailable as exc:
            self._wait(exc)
            return number
        timings = {"propose_s": time.perf_counter() - t0}
        members = [self.scoring.prepare(c) for c in candidates]
        timings["compile_s"] = time.perf_counter() - t0 - timings["propose_s"]
        order = self.scoring.seed_order(number)
        self.scoring.race(members, order, None if champ is None else champ.selection)
        self.proposer.observe([m.result() for m in members])
        timings["race_s"] = time.perf_counter() - t0 - sum(timings.values())
        best = max(
            members, key=lambda m: (m.spec is not None, len(m.seeds), m.edge or 0.0, -members.index(m))
        )
        full = best.spec is not None and best.dropped is None and len(best.seeds) == self.config.n_selection
        label = best.candidate.template or best.candidate.proposer
        if best.edge is not None:
            self._emit(
                "iteration",
                f"#{number} {label}: {best.edge:.2f} over {len(best.seeds)} sims (best of {len(members)})",
                "info",
            )
        change = self.champions.consider(number, best) if full else None
        templates = self._extract_template(number, best) if full else []
        timings["promote_s"] = time.perf_counter() - t0 - sum(timings.values())
        self.store.write_iteration(
            self._record(number, ctx.hypothesis, members, best, order, change, templates, timings)
        )
        return number

    def _install_starter(self) -> None:
        """Iteration 0 of every run: the challenge's 50 bps starter is the first champion."""
        cand = Candidate(
            STARTER.read_text(),
            "starter",
            spec=FixedFee(REFERENCE_FEE_BPS),
            rationale="the challenge's starter strategy",
        )
        member = self.scoring.prepare(cand)
        order = list(range(self.config.n_selection))
        self.scoring.race([member], order, None)
        change = self.champions.install_starter(member)
        self.store.write_iteration(self._record(0, None, [member], member, order, change, [], {}))

    def _record(
        self,
        number: int,
        hypothesis: str | None,
        members: list[Scored],
        best: Scored,
        order: list[int],
        change: ChampionChange | None,
        templates: list[NewTemplate],
        timings: dict[str, float],
    ) -> IterationRecord:
        record = generation_record(number, hypothesis, members, best, order)
        if change is not None:
            record.edge, record.holdout_edge, record.champion = change.edge, change.holdout_edge, change
        record.templates, record.timings = templates, timings
        record.proposer_state = self.proposer.snapshot()
        record.events = self._take_events()
        return record

    def _extract_template(self, number: int, best: Scored) -> list[NewTemplate]:
        """Strong strategies from outside the library become templates for the proposer."""
        cand = best.candidate
        if cand.template is not None or best.edge is None or best.edge < self.config.template_threshold:
            return []
        from stratforge.explore.template_extract import maybe_extract

        directory = self.config.state_dir / "templates"
        template = maybe_extract(
            cand.source,
            best.edge,
            f"iter_{number:04d}",
            directory,
            threshold=self.config.template_threshold,
            hypothesis=cand.hypothesis or "",
        )
        if template is None:
            return []
        self.proposer.add_template(template)
        self._emit("template", f"template {template.name} extracted from #{number} ({best.edge:.2f})", "info")
        path = str(directory / f"{template.name}.sol.template")
        return [NewTemplate(template.name, path, template.to_schema(), best.edge)]

    def _focus(self) -> str | None:
        if not self.hypotheses:
            return None
        coverage = self.store.hypothesis_coverage([h.id for h in self.hypotheses])
        return least_explored(self.hypotheses, coverage).id

    def _wait(self, exc: ProposerUnavailable) -> None:
        """Wait out a proposer's cool-down (nothing was sent, nothing is recorded), honouring exits."""
        retry_at = max(exc.retry_at or self.clock() + RETRY_PAUSE_S, self.clock() + 1.0)
        self.store.add_event(
            "waiting", f"proposer unavailable ({exc.reason}); retrying at {retry_at:.0f}", level="warning"
        )
        self.on_event("waiting", exc.reason)
        while (left := retry_at - self.clock()) > 0 and self.exit_reason() is None:
            self.sleep(min(1.0, left))

    def _note(self, kind: str, message: str, level: str, data: dict[str, Any]) -> None:
        """An event outside any iteration record (a proposer's state change): written at once."""
        self.store.add_event(kind, message, level=level, data=data)
        self.on_event(kind, message)

    def _emit(self, kind: str, message: str, level: str) -> None:
        self._events.append(NewEvent(kind, message, level))
        self.on_event(kind, message)

    def _take_events(self) -> list[NewEvent]:
        events, self._events = self._events, []
        return events
