"""`LLMConfig`: which backend to call and how, loadable from TOML and overridable from CLI options."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stratforge.explore.llm.types import LLMConfigError

BACKENDS = ("codex", "claude", "anthropic", "openai", "replay")
LIVE_BACKENDS = ("codex", "claude", "anthropic", "openai")
CLI_BACKENDS = ("codex", "claude")

DEFAULT_BASE_URLS = {
    "anthropic": "https://api.anthropic.com",
    "openai": "https://api.openai.com/v1",
}
# The variables each client itself reads for its base URL (honoured when `base_url` is not set).
BASE_URL_ENVS = {
    "anthropic": "ANTHROPIC_BASE_URL",
    "openai": "OPENAI_BASE_URL",
    "claude": "ANTHROPIC_BASE_URL",
}
DEFAULT_API_KEY_ENVS = {
    "anthropic": "ANTHROPIC_API_KEY",
    "openai": "OPENAI_API_KEY",
    "codex": "CODEX_API_KEY",  # codex exec reads this one, not OPENAI_API_KEY
    "claude": "ANTHROPIC_API_KEY",
}


def base_url_for(kind: str, base_url: str | None) -> str:
    """`base_url`, else the client's own environment variable, else the public endpoint ("" if none)."""
    env = BASE_URL_ENVS.get(kind)
    url = base_url or (os.environ.get(env) if env else None) or DEFAULT_BASE_URLS.get(kind, "")
    return url.rstrip("/")


@dataclass
class LLMConfig:
    """Settings of one backend. Unset optional fields take backend-specific defaults."""

    backend: str = "codex"
    model: str = ""
    base_url: str | None = None
    api_key_env: str | None = None
    # A hung provider costs one timeout per iteration (timeouts are not retried within a call),
    # and a dead one opens the breaker after `breaker_threshold` failed attempts.
    timeout_s: float = 180.0
    max_tokens: int = 8000  # HTTP backends only: the CLIs choose their own
    temperature: float | None = None  # HTTP backends only
    min_interval_s: float = 0.0
    price_per_mtok_in: float = 0.0  # 0/0 = the reported cost, else the price table
    price_per_mtok_out: float = 0.0
    price_file: str | None = None  # TOML overriding entries of the shipped price table
    budget_usd: float | None = None
    cache_dir: str | None = None  # None: the run's state directory (explore) / .stratforge/llm-cache (ask)
    # Resilience: bounded retries with exponential backoff and jitter, and a circuit breaker.
    use_cache: bool = True
    max_retries: int = 2
    backoff_base_s: float = 2.0
    backoff_max_s: float = 60.0
    max_retry_after_s: float = 120.0
    breaker_threshold: int = 5
    breaker_cooldown_s: float = 120.0
    seed: int = 0
    # Replay answers from responses recorded by this live backend kind (the key includes the kind).
    replay_of: str | None = None
    # CLI backends: executable (name on PATH or path) and extra arguments appended to the command.
    command: str | None = None
    extra_args: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise `LLMConfigError` with a one-line message when a setting cannot work."""
        if self.backend not in BACKENDS:
            raise LLMConfigError(f"unknown LLM backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        if self.backend == "replay" and self.replay_of is not None and self.replay_of not in LIVE_BACKENDS:
            raise LLMConfigError(
                f"replay_of must be one of {', '.join(LIVE_BACKENDS)}, not {self.replay_of!r}"
            )
        if not self.timeout_s > 0:
            raise LLMConfigError(f"timeout_s must be > 0, got {self.timeout_s}")
        if self.max_tokens < 1:
            raise LLMConfigError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.temperature is not None and not 0.0 <= self.temperature <= 2.0:
            raise LLMConfigError(f"temperature must be within [0, 2], got {self.temperature}")
        for name in ("min_interval_s", "price_per_mtok_in", "price_per_mtok_out", "backoff_base_s"):
            if getattr(self, name) < 0:
                raise LLMConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.budget_usd is not None and self.budget_usd < 0:
            raise LLMConfigError(f"budget_usd must be >= 0, got {self.budget_usd}")
        if self.max_retries < 0 or self.breaker_threshold < 1:
            raise LLMConfigError("max_retries must be >= 0 and breaker_threshold >= 1")
        if self.backend in ("anthropic", "openai") and not self.model.strip():
            raise LLMConfigError(f"the {self.backend} backend needs a model name (--model)")

    @property
    def effective_base_url(self) -> str:
        return base_url_for(self.backend, self.base_url)

    @property
    def effective_api_key_env(self) -> str | None:
        return self.api_key_env or DEFAULT_API_KEY_ENVS.get(self.backend)

    def with_overrides(self, **overrides: Any) -> LLMConfig:
        """A copy with the given fields replaced; None values mean "not given" (typical of CLI options)."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise LLMConfigError(f"unknown LLM setting(s): {', '.join(sorted(unknown))}")
        given = {k: v for k, v in overrides.items() if v is not None}
        return dataclasses.replace(self, **given)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LLMConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise LLMConfigError(f"unknown LLM setting(s): {', '.join(sorted(unknown))}")
        try:
            return cls(**data)
        except TypeError as exc:  # pragma: no cover - dataclass arity errors are already filtered above
            raise LLMConfigError(str(exc)) from exc

    @classmethod
    def from_toml(cls, path: str | Path, *, section: str = "llm") -> LLMConfig:
        """Load from a TOML file: the ``[llm]`` table if present, else the top-level keys."""
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise LLMConfigError(f"LLM config file not found: {p}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise LLMConfigError(f"invalid TOML in {p}: {exc}") from exc
        table = data.get(section, data)
        if not isinstance(table, dict):
            raise LLMConfigError(f"[{section}] in {p} must be a table")
        return cls.from_dict(dict(table))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
