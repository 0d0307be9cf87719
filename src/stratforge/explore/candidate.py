"""The seam between proposers and the loop: what a candidate is, and what a proposer must do.

One iteration of the explorer asks its proposer for a *generation* of candidates (one for an LLM,
a CMA-ES population for the optimizer), scores them on common seeds, tells the proposer how each did,
and persists the proposer's snapshot in the same transaction as the iteration's record, so a run that
is killed and resumed continues exactly as if it had never stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from stratforge.amm.strategy import StrategySpec
    from stratforge.explore.templates import Template

__all__ = [
    "Candidate",
    "CandidateResult",
    "ChampionView",
    "ProposalContext",
    "Proposer",
    "ProposerFailed",
    "ProposerUnavailable",
]


class ProposerUnavailable(Exception):
    """``propose`` cannot produce anything now but will later (e.g. an LLM backend's circuit breaker
    is cooling down). Nothing was sent, so nothing is recorded: the loop waits until ``retry_at``
    (epoch seconds; None = the loop's default pause), keeps honouring stop requests and its runtime
    limit, and asks again."""

    def __init__(self, reason: str, retry_at: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_at = retry_at


class ProposerFailed(Exception):
    """``propose`` can never succeed in this run (bad credentials, budget spent, missing executable):
    the loop stops with this reason. Nothing is recorded for the iteration."""


@dataclass
class Candidate:
    """One strategy to score. ``source`` is always the complete Solidity file (what gets recorded,
    exported and, for promotion, compiled); ``spec``, when set, is an equivalent ready-to-run strategy
    that skips the compiler (e.g. a precompiled template with its parameters patched in). The loop
    checks a ``spec`` bit-identical to the compiled ``source`` before anything built on it is promoted."""

    source: str
    proposer: str
    template: str | None = None
    params: dict[str, float] | None = None
    hypothesis: str | None = None
    rationale: str = ""
    spec: StrategySpec | None = None
    prompt: str | None = None  #: what was sent to an LLM (None: nothing was sent)
    response: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    errors: list[str] = field(default_factory=list)  #: proposal failed before any scoring


@dataclass(frozen=True)
class CandidateResult:
    """How one candidate did. ``edges`` are per-seed edges on ``seeds``. All members of a generation
    are scored on the same seed order, and a member dropped early by racing has a prefix of the
    survivors' seeds, so any two members can be compared by paired differences on the shorter
    one's seeds. Empty when it failed (``errors`` says why)."""

    candidate: Candidate
    status: str  #: "evaluated" or "failed"
    seeds: Sequence[int] = ()
    edges: np.ndarray = field(default_factory=lambda: np.empty(0))
    errors: Sequence[str] = ()

    @property
    def edge(self) -> float | None:
        return float(self.edges.mean()) if len(self.edges) else None


@dataclass(frozen=True)
class ChampionView:
    """What a proposer may know of the current champion."""

    edge: float
    source: str
    template: str | None
    params: dict[str, float] | None
    holdout_edge: float | None


@dataclass(frozen=True)
class ProposalContext:
    iteration: int
    hypothesis: str | None
    champion: ChampionView | None
    #: seeds a member raced to the end is scored on (the whole selection set); None: unknown
    selection_sims: int | None = None
    #: record an event in the run: ``note(kind, message, level, data)`` (e.g. a provider's state)
    note: Callable[[str, str, str, dict[str, Any]], None] = field(default=lambda kind, message, level, data: None)


@runtime_checkable
class Proposer(Protocol):
    name: str

    def propose(self, ctx: ProposalContext) -> list[Candidate]:
        """One generation (at least one candidate)."""
        ...

    def observe(self, results: Sequence[CandidateResult]) -> None:
        """Results of the generation ``propose`` returned last, in the same order."""
        ...

    def add_template(self, template: Template) -> None:
        """A template extracted from a strong strategy joins the search space."""
        ...

    def snapshot(self) -> bytes:
        """Everything needed to continue (RNG state included), persisted with each iteration."""
        ...

    def restore(self, snapshot: bytes) -> None: ...
