"""Candidates from a language model: build the prompt, ask the backend, extract the Solidity.

Responses go through the backend's content-addressed cache in the run directory, so the same run
can be replayed offline with the ``replay`` backend and produces the same store.

The proposer is `ProviderPaced`: the loop asks it for the provider's state before every iteration
and, while the backend's circuit breaker is open, waits out the cool-down on the backend's clock
instead of running iterations that could not send anything. An error that will not heal (bad key,
unknown model, every request refused, budget spent, broken configuration) becomes its
`fatal_reason` and the loop stops with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from stratforge.explore.extract import extract_response
from stratforge.explore.llm import CostLedger, LLMConfig, ResponseCache, make_backend
from stratforge.explore.llm.base import LLMBackend
from stratforge.explore.llm.types import BudgetExceeded, LLMConfigError, LLMError
from stratforge.explore.prompts import build_prompt, load_hypotheses

if TYPE_CHECKING:
    from stratforge.explore.loop import Candidate, ExploreConfig, Explorer
    from stratforge.explore.store import RunStore

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

    def __init__(self, backend: LLMBackend, hypotheses_file: Any = None) -> None:
        self.backend = backend
        self.hypotheses = load_hypotheses([hypotheses_file] if hypotheses_file else [])
        self._fatal: str | None = None

    @classmethod
    def from_config(
        cls, config: ExploreConfig, store: RunStore, backend: LLMBackend | None = None
    ) -> LLMProposer:
        if backend is None:
            llm = LLMConfig.from_dict(dict(config.llm or {}))
            cache_dir = llm.cache_dir or str(config.state_dir / "llm_cache")
            ledger = CostLedger(budget_usd=config.budget_usd, path=config.state_dir / "llm_ledger.jsonl")
            backend = make_backend(llm, ledger=ledger, cache=ResponseCache(cache_dir))
        problem = budget_cost_problem(backend, config.budget_usd)
        if problem:
            raise LLMConfigError(problem)
        return cls(backend, config.hypotheses_file)

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

    # -- proposals ------------------------------------------------------------------------------
    def candidate(self, number: int, hypothesis: str | None, explorer: Explorer) -> Candidate:
        from stratforge.explore.loop import Candidate

        built = build_prompt(explorer.store, self.hypotheses, focus=hypothesis)
        hyp = built.hypothesis.id
        attempts = self.backend.attempts
        try:
            resp = self.backend.complete(built.text, system=SYSTEM)
        except LLMError as exc:
            sent = self.backend.attempts > attempts  # no prompt is recorded for a call never sent
            if isinstance(exc, BudgetExceeded):
                self._fatal = f"LLM budget spent ({exc})"
            elif exc.fatal:
                self._fatal = f"LLM provider error that waiting will not fix: {exc}"
            return Candidate(
                "",
                hypothesis=hyp,
                proposer=self.name,
                prompt=built.text if sent else None,
                errors=[f"LLM error: {exc}"],
            )
        ext = extract_response(resp.text)
        meta = ext.metadata or {}
        cand = Candidate(
            ext.code or "",
            hypothesis=str(meta.get("hypothesis") or hyp),
            proposer=self.name,
            rationale=str(meta.get("name") or ""),
            prompt=built.text,
            response=resp.text,
            tokens_in=resp.input_tokens,
            tokens_out=resp.output_tokens,
            cost_usd=resp.cost_usd,
        )
        if not ext.ok:
            cand.errors = [f"extraction: {ext.failure_reason}"]
        return cand
