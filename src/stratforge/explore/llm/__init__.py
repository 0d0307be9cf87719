"""LLM backends for the explorer: one interface, a content-addressed cache, rate limits, cost caps.

Use `make_backend(config)`; share one `CostLedger` between backends to cap the whole run's spend.
"""

from __future__ import annotations

from stratforge.explore.llm.base import LLMBackend
from stratforge.explore.llm.cache import CacheKeyParts, ResponseCache
from stratforge.explore.llm.cli_backends import ClaudeCLIBackend, CodexCLIBackend
from stratforge.explore.llm.config import BACKENDS, LLMConfig
from stratforge.explore.llm.http_backends import AnthropicBackend, OpenAICompatBackend
from stratforge.explore.llm.ledger import CostLedger
from stratforge.explore.llm.replay import ReplayBackend
from stratforge.explore.llm.resilience import Clock, FakeClock, SystemClock
from stratforge.explore.llm.types import (
    BudgetExceeded,
    CacheMiss,
    CircuitOpen,
    LLMBackendError,
    LLMConfigError,
    LLMError,
    LLMResponse,
    LLMTimeout,
    RateLimited,
)

_CLASSES: dict[str, type[LLMBackend]] = {
    "codex": CodexCLIBackend,
    "claude": ClaudeCLIBackend,
    "anthropic": AnthropicBackend,
    "openai": OpenAICompatBackend,
    "replay": ReplayBackend,
}


def make_backend(
    config: LLMConfig,
    *,
    ledger: CostLedger | None = None,
    cache: ResponseCache | None = None,
    clock: Clock | None = None,
) -> LLMBackend:
    """The backend named by ``config.backend``, wired to the given (shared) ledger and cache."""
    config.validate()
    return _CLASSES[config.backend](config, ledger=ledger, cache=cache, clock=clock)


__all__ = [
    "BACKENDS",
    "AnthropicBackend",
    "BudgetExceeded",
    "CacheKeyParts",
    "CacheMiss",
    "CircuitOpen",
    "ClaudeCLIBackend",
    "Clock",
    "CodexCLIBackend",
    "CostLedger",
    "FakeClock",
    "LLMBackend",
    "LLMBackendError",
    "LLMConfig",
    "LLMConfigError",
    "LLMError",
    "LLMResponse",
    "LLMTimeout",
    "OpenAICompatBackend",
    "RateLimited",
    "ReplayBackend",
    "ResponseCache",
    "SystemClock",
    "make_backend",
]
