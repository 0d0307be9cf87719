"""Candidates from a language model: build the prompt, ask the backend, extract the Solidity.

Responses go through the backend's content-addressed cache in the run directory, so the same run
can be replayed offline with the ``replay`` backend and produces the same store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stratforge.explore.extract import extract_response
from stratforge.explore.llm import CostLedger, LLMConfig, ResponseCache, make_backend
from stratforge.explore.llm.types import BudgetExceeded, LLMError
from stratforge.explore.prompts import build_prompt, load_hypotheses

if TYPE_CHECKING:
    from stratforge.explore.loop import Candidate, ExploreConfig, Explorer
    from stratforge.explore.store import RunStore

SYSTEM = (
    "You design fee strategies for a constant-product AMM competition. Answer with the four sections"
    " requested, in order, and put the complete Solidity contract in one ```solidity block."
)


class LLMProposer:
    name = "llm"

    def __init__(self, backend: Any, hypotheses_file: Any = None) -> None:
        self.backend = backend
        self.hypotheses = load_hypotheses([hypotheses_file] if hypotheses_file else [])

    @classmethod
    def from_config(cls, config: ExploreConfig, store: RunStore, backend: Any | None = None) -> LLMProposer:
        if backend is None:
            llm = LLMConfig.from_dict(dict(config.llm or {}))
            cache_dir = llm.cache_dir or str(config.state_dir / "llm_cache")
            ledger = CostLedger(budget_usd=config.budget_usd, path=config.state_dir / "llm_ledger.jsonl")
            backend = make_backend(llm, ledger=ledger, cache=ResponseCache(cache_dir))
        return cls(backend, config.hypotheses_file)

    def candidate(self, number: int, hypothesis: str | None, explorer: Explorer) -> Candidate:
        from stratforge.explore.loop import Candidate

        built = build_prompt(explorer.store, self.hypotheses, focus=hypothesis)
        hyp = built.hypothesis.id
        try:
            resp = self.backend.complete(built.text, system=SYSTEM)
        except BudgetExceeded as exc:
            explorer._stop_reason = f"LLM budget spent ({exc})"
            return Candidate(
                "", hypothesis=hyp, proposer=self.name, prompt=built.text, errors=[f"budget: {exc}"]
            )
        except LLMError as exc:
            return Candidate(
                "", hypothesis=hyp, proposer=self.name, prompt=built.text, errors=[f"LLM error: {exc}"]
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
