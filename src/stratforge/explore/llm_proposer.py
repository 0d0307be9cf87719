"""Candidates from a language model: build the prompt from the run store, ask the backend, extract.

A generation of one: the loop races it through the staged gate. Responses go through the
backend's content-addressed cache in the run directory, so a run can be replayed offline with the
``replay`` backend and writes the same store.

Failures go through the loop's two typed signals (``stratforge.explore.candidate``): nothing sent
and it will heal (circuit breaker open) -> :class:`ProposerUnavailable`, the loop waits; it can
never work in this run (budget spent, bad configuration) -> :class:`ProposerFailed`, the run stops.
A call that was sent but failed is a failed candidate carrying its prompt (so the iteration keeps it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from stratforge.explore.candidate import (
    Candidate,
    CandidateResult,
    ProposalContext,
    ProposerFailed,
    ProposerUnavailable,
)
from stratforge.explore.extract import extract_response
from stratforge.explore.hypotheses import Hypothesis
from stratforge.explore.llm import CostLedger, LLMConfig, ResponseCache, make_backend
from stratforge.explore.llm.types import BudgetExceeded, CircuitOpen, LLMConfigError, LLMError
from stratforge.explore.prompts import build_prompt

if TYPE_CHECKING:
    from stratforge.explore.config import ExploreConfig
    from stratforge.explore.store import RunStore
    from stratforge.explore.templates import Template

SYSTEM = (
    "You design fee strategies for a constant-product AMM competition. Answer with the four sections"
    " requested, in order, and put the complete Solidity contract in one ```solidity block."
)


class LLMProposer:
    name = "llm"

    def __init__(self, backend: Any, store: RunStore, hypotheses: Sequence[Hypothesis]) -> None:
        self.backend = backend
        self.store = store
        self.hypotheses = list(hypotheses)

    @classmethod
    def from_config(
        cls,
        config: ExploreConfig,
        store: RunStore,
        hypotheses: Sequence[Hypothesis],
        backend: Any | None = None,
    ) -> LLMProposer:
        if backend is None:
            llm = LLMConfig.from_dict(dict(config.llm or {}))
            cache_dir = llm.cache_dir or str(config.state_dir / "llm_cache")
            ledger = CostLedger(budget_usd=config.budget_usd, path=config.state_dir / "llm_ledger.jsonl")
            backend = make_backend(llm, ledger=ledger, cache=ResponseCache(cache_dir))
        return cls(backend, store, hypotheses)

    def propose(self, ctx: ProposalContext) -> list[Candidate]:
        built = build_prompt(self.store, self.hypotheses, focus=ctx.hypothesis)
        hyp = built.hypothesis.id
        try:
            resp = self.backend.complete(built.text, system=SYSTEM)
        except BudgetExceeded as exc:  # raised before anything is sent
            raise ProposerFailed(f"LLM budget spent ({exc})") from exc
        except LLMConfigError as exc:
            raise ProposerFailed(f"LLM configuration: {exc}") from exc
        except CircuitOpen as exc:  # refused before sending; heals after the cool-down
            raise ProposerUnavailable(
                f"LLM backend cooling down ({exc})", getattr(exc, "retry_at", None)
            ) from exc
        except LLMError as exc:
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
