"""Candidates from a language model: build the prompt from the run store, ask the backend, extract.

A generation of one: the loop races it through the staged gate. Responses go through the
backend's content-addressed cache in the run directory, so a run can be replayed offline with the
``replay`` backend and writes the same store.

Failures go through the loop's two typed signals (``stratforge.explore.candidate``): while the
backend's circuit breaker is open nothing can be sent -> :class:`ProposerUnavailable` with the
time the cool-down ends, and the loop waits it out; an error that will not heal (bad key, unknown
model, every request refused, budget spent, broken configuration) -> :class:`ProposerFailed`, and
the run stops with that reason. A call that was sent but failed is a failed candidate carrying its
prompt (the iteration keeps what was sent); a call never sent leaves no prompt anywhere. Changes of
the provider's state are recorded as ``llm-provider`` events through ``ProposalContext.note``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from stratforge.explore.candidate import (
    Candidate,
    CandidateResult,
    ProposalContext,
    ProposerFailed,
    ProposerUnavailable,
)
from stratforge.explore.extract import extract_response
from stratforge.explore.hypotheses import Hypothesis, load_hypotheses, run_hypotheses
from stratforge.explore.llm import CostLedger, LLMConfig, ResponseCache, make_backend
from stratforge.explore.llm.base import LLMBackend
from stratforge.explore.llm.types import BudgetExceeded, LLMConfigError, LLMError
from stratforge.explore.prompts import build_prompt

if TYPE_CHECKING:
    from stratforge.explore.config import ExploreConfig
    from stratforge.explore.store import RunStore
    from stratforge.explore.templates import Template

SYSTEM = (
    "You design fee strategies for a constant-product AMM competition. Answer with the four sections"
    " requested, in order, and put the complete Solidity contract in one ```solidity block."
)


#: longest single sleep while waiting for a breaker: stop requests and signals are seen this often
WAIT_STEP_S = 5.0


@dataclass(frozen=True)
class ProviderState:
    """What the loop shows and records about the LLM provider."""

    state: str  #: "closed" (calls go out), "open" (waiting out the cool-down), "half-open" (one trial)
    retry_in_s: float = 0.0
    until: float | None = None  #: wall-clock time the cool-down ends (when open)
    failures: int = 0
    last_error: str | None = None

    def describe(self) -> str:
        if self.state == "open":
            return (
                f"LLM provider unavailable after {self.failures} failed attempts; waiting "
                f"{self.retry_in_s:.0f}s for the circuit breaker to let a trial call through"
                + (f" (last error: {self.last_error[:160]})" if self.last_error else "")
            )
        if self.state == "half-open":
            return "LLM provider: cool-down over, the next call is a trial"
        return "LLM provider: calls go through again"

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "retry_in_s": round(self.retry_in_s, 3),
            "until": self.until,
            "failures": self.failures,
            "last_error": self.last_error,
        }


@runtime_checkable
class ProviderPaced(Protocol):
    """A proposer that depends on a provider which may ask it to wait, or fail for good."""

    def provider_state(self) -> ProviderState: ...

    def wait(self, seconds: float) -> None:
        """Sleep on the provider's clock (tests inject a fake one)."""
        ...

    def fatal_reason(self) -> str | None:
        """Why no further proposal can succeed, or None."""
        ...


def budget_cost_problem(backend: LLMBackend, budget_usd: float | None) -> str | None:
    """Why a budgeted run on ``backend`` could never be stopped by its budget, or None."""
    if budget_usd is None or backend.kind == "replay":
        return None
    if backend.cost_source() is not None:
        return None
    model = backend.config.model or "(the CLI's default model)"
    return (
        f"--budget-usd needs a known cost, but the {backend.kind} backend reports none and the price "
        f"table has no entry for {model}; choose a priced --model, set price_per_mtok_in/out, or "
        "add the model to a price_file"
    )


class LLMProposer:
    name = "llm"

    def __init__(
        self, backend: LLMBackend, store: RunStore, hypotheses: Sequence[Hypothesis] | None = None
    ) -> None:
        self.backend = backend
        self.store = store
        if hypotheses is None:
            hypotheses = load_hypotheses() if store is None else run_hypotheses(store)
        self.hypotheses = list(hypotheses)
        self._fatal: str | None = None
        self._state = "closed"  #: the provider state last recorded

    @classmethod
    def from_config(
        cls,
        config: ExploreConfig,
        store: RunStore,
        hypotheses: Sequence[Hypothesis] | None = None,
        backend: LLMBackend | None = None,
    ) -> LLMProposer:
        if backend is None:
            llm = LLMConfig.from_dict(dict(config.llm or {}))
            cache_dir = llm.cache_dir or str(config.state_dir / "llm_cache")
            ledger = CostLedger(budget_usd=config.budget_usd, path=config.state_dir / "llm_ledger.jsonl")
            backend = make_backend(llm, ledger=ledger, cache=ResponseCache(cache_dir))
        problem = budget_cost_problem(backend, config.budget_usd)
        if problem:
            raise LLMConfigError(problem)
        return cls(backend, store, hypotheses)

    # -- ProviderPaced --------------------------------------------------------------------------
    def provider_state(self) -> ProviderState:
        breaker = self.backend.breaker
        left = self.backend.ready_in()
        state = "open" if left > 0 else breaker.state
        return ProviderState(
            state,
            retry_in_s=left,
            until=self.backend.clock.now() + left if left > 0 else None,
            failures=breaker.failures,
            last_error=self.backend.last_error,
        )

    def wait(self, seconds: float) -> None:
        # at least 10 ms: a remainder too small to move a float clock must not become a busy loop
        self.backend.clock.sleep(min(max(seconds, 0.01), WAIT_STEP_S))

    def fatal_reason(self) -> str | None:
        return self._fatal

    # -- Proposer -------------------------------------------------------------------------------
    def propose(self, ctx: ProposalContext) -> list[Candidate]:
        if self._fatal:
            raise ProposerFailed(self._fatal)
        st = self.provider_state()
        if st.state != self._state:
            self._state = st.state
            ctx.note("llm-provider", st.describe(), "warning" if st.state == "open" else "info", st.to_json())
        if st.state == "open":
            raise ProposerUnavailable(st.describe(), st.until)
        built = build_prompt(self.store, self.hypotheses, focus=ctx.hypothesis)
        hyp = built.hypothesis.id
        attempts = self.backend.attempts
        try:
            resp = self.backend.complete(built.text, system=SYSTEM)
        except LLMError as exc:
            sent = self.backend.attempts > attempts
            if isinstance(exc, BudgetExceeded):
                self._fatal = f"LLM budget spent ({exc})"
            elif exc.fatal:
                self._fatal = f"LLM provider error that waiting will not fix: {exc}"
            if not sent:  # nothing went out: nothing to record
                if self._fatal:
                    raise ProposerFailed(self._fatal) from exc
                raise ProposerUnavailable(f"LLM call not sent: {exc}", self.provider_state().until) from exc
            return [Candidate("", self.name, hypothesis=hyp, prompt=built.text, errors=[f"LLM error: {exc}"])]
        ext = extract_response(resp.text)
        meta = ext.metadata or {}
        cand = Candidate(
            ext.code or "",
            self.name,
            hypothesis=str(meta.get("hypothesis") or hyp),
            rationale=str(meta.get("name") or ""),
            prompt=built.text,
            response=resp.text,
            tokens_in=resp.input_tokens,
            tokens_out=resp.output_tokens,
            cost_usd=resp.cost_usd,
        )
        if not ext.ok:
            cand.errors = [f"extraction: {ext.failure_reason}"]
        return [cand]

    def observe(self, results: Sequence[CandidateResult]) -> None:
        """The prompt is rebuilt from the store, which already holds every result."""

    def add_template(self, template: Template) -> None:
        """Templates feed the parameter proposers, not the prompt."""

    def snapshot(self) -> bytes:
        return b""  # stateless: everything it needs is in the store and the response cache

    def restore(self, snapshot: bytes) -> None:
        pass
