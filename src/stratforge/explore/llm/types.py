"""Shared types of the LLM layer: the response record and the error hierarchy."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class LLMResponse:
    """One completion, whatever backend produced it.

    On a cache hit ``cached`` is True and ``cost_usd`` is 0.0 (nothing was spent now); tokens, model
    and latency are those of the original call, so a replayed run reports the same text and usage.
    """

    text: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_s: float
    backend: str
    raw: str = ""
    cached: bool = False
    key: str = ""
    stderr: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LLMError(RuntimeError):
    """Base class of every error raised by the LLM layer.

    ``retriable``: the same request may succeed later (retried inside the call). ``fatal``: no
    request will succeed until the user changes something (key, model name, configuration), so a
    run should stop instead of trying again.
    """

    retriable: bool = False
    fatal: bool = False


class LLMConfigError(LLMError):
    """The configuration cannot work (unknown backend, missing API key, missing executable)."""

    fatal = True


class LLMTimeout(LLMError):
    """A call exceeded its hard time limit (HTTP request or subprocess)."""

    retriable = True


class LLMBackendError(LLMError):
    """The backend answered, but with an error or something unparseable."""

    def __init__(
        self, message: str, *, retriable: bool = False, status: int | None = None, fatal: bool = False
    ) -> None:
        super().__init__(message)
        self.retriable = retriable
        self.status = status
        self.fatal = fatal


class RateLimited(LLMBackendError):
    """HTTP 429 (or equivalent); ``retry_after_s`` is the server's requested wait, if it gave one."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message, retriable=True, status=429)
        self.retry_after_s = retry_after_s


class CircuitOpen(LLMError):
    """Too many consecutive failures: calls are refused until the cool-down has passed.

    ``retry_in_s`` is how long until the breaker lets a trial call through.
    """

    def __init__(self, message: str, *, retry_in_s: float = 0.0, retry_at: float | None = None) -> None:
        super().__init__(message)
        self.retry_in_s = retry_in_s
        self.retry_at = retry_at  #: wall-clock (epoch) time of the trial call, on the backend's clock


class BudgetExceeded(LLMError):
    """The shared USD budget is spent; raised before anything is sent."""

    fatal = True


# HTTP statuses that no retry or wait will fix: bad key, no permission, unknown model or endpoint.
FATAL_STATUS = frozenset({401, 403, 404})


def classify_status(status: int) -> tuple[bool, bool]:
    """(retriable, fatal) for an HTTP error status, shared by every backend (HTTP or CLI)."""
    retriable = status in (408, 409, 429) or status >= 500
    return retriable, status in FATAL_STATUS


class CacheMiss(LLMError):
    """The replay backend has no stored response for this prompt and settings."""
