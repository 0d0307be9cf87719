"""`LLMBackend`: the one interface, and the call loop every backend shares.

`complete()` does, in order: cache lookup -> budget check -> circuit breaker -> rate limiter -> the
backend's own `_call()` under a hard timeout -> bounded retries (Retry-After or backoff with jitter)
-> cost accounting -> atomic cache write. Subclasses only implement `_call()`.
"""

from __future__ import annotations

import random
import time
from abc import ABC, abstractmethod

from stratforge.explore.llm.cache import CacheKeyParts, ResponseCache
from stratforge.explore.llm.config import LLMConfig
from stratforge.explore.llm.ledger import CostLedger, price_usd
from stratforge.explore.llm.resilience import Backoff, CircuitBreaker, Clock, RateLimiter, SystemClock
from stratforge.explore.llm.types import LLMConfigError, LLMError, LLMResponse, RateLimited


def key_extra(kind: str, config: LLMConfig) -> tuple[tuple[str, str], ...]:
    """Backend-specific settings that change the answer, beyond model/prompt/sampling."""
    extra: list[tuple[str, str]] = []
    if kind == "openai":
        # the model name is relative to the server (Ollama's "llama3" is not OpenRouter's)
        base = config.base_url or "https://api.openai.com/v1"
        extra.append(("base_url", base.rstrip("/")))
    if kind in ("codex", "claude") and config.extra_args:
        extra.append(("extra_args", "\x1f".join(config.extra_args)))
    return tuple(extra)


class LLMBackend(ABC):
    """Base of every backend: ``complete(prompt, system=...) -> LLMResponse``."""

    kind: str = ""

    def __init__(
        self,
        config: LLMConfig,
        *,
        ledger: CostLedger | None = None,
        cache: ResponseCache | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.ledger = ledger if ledger is not None else CostLedger(config.budget_usd)
        if cache is None and config.cache_dir:
            cache = ResponseCache(config.cache_dir)
        self.cache = cache
        self.limiter = RateLimiter(config.min_interval_s, self.clock)
        self.backoff = Backoff(config.backoff_base_s, config.backoff_max_s, random.Random(config.seed))
        self.breaker = CircuitBreaker(config.breaker_threshold, config.breaker_cooldown_s, self.clock)
        self.attempts = 0  # sends actually started, for tests and reports

    # -- keys ---------------------------------------------------------------------------------
    @property
    def key_kind(self) -> str:
        return self.kind

    def key_parts(self, prompt: str, system: str | None) -> CacheKeyParts:
        return CacheKeyParts(
            kind=self.key_kind,
            model=self.config.model,
            prompt=prompt,
            system=system,
            temperature=self.config.temperature,
            max_tokens=self.config.max_tokens,
            extra=key_extra(self.key_kind, self.config),
        )

    def cache_key(self, prompt: str, *, system: str | None = None) -> str:
        return self.key_parts(prompt, system).key()

    # -- the call loop ------------------------------------------------------------------------
    def complete(self, prompt: str, *, system: str | None = None) -> LLMResponse:
        parts = self.key_parts(prompt, system)
        key = parts.key()
        if self.cache is not None and self.config.use_cache:
            hit = self.cache.get(key)
            if hit is not None:
                self._record(hit)
                return hit
        retry = 0
        while True:
            self.ledger.check()
            self.breaker.before_call()
            self.limiter.wait()
            self.attempts += 1
            t0 = time.perf_counter()
            try:
                resp = self._call(prompt, system)
            except LLMConfigError:
                raise  # not the backend's fault: do not trip the breaker, do not retry
            except LLMError as exc:
                self.breaker.failure()
                if not exc.retriable or retry >= self.config.max_retries:
                    raise
                self.clock.sleep(self._wait_before_retry(exc, retry))
                retry += 1
                continue
            self.breaker.success()
            resp = self._finish(resp, key, time.perf_counter() - t0)
            self._record(resp)
            if self.cache is not None:
                try:
                    self.cache.put(key, parts, resp)
                except OSError as exc:  # a full disk must not throw away an answer already paid for
                    resp.extra["cache_error"] = f"{type(exc).__name__}: {exc}"
            return resp

    def _wait_before_retry(self, exc: LLMError, retry: int) -> float:
        if isinstance(exc, RateLimited) and exc.retry_after_s is not None:
            if exc.retry_after_s > self.config.max_retry_after_s:
                # waiting would look like a hang; surface it instead
                raise RateLimited(
                    f"{self.kind}: server asked to retry after {exc.retry_after_s:.0f}s, "
                    f"more than max_retry_after_s={self.config.max_retry_after_s:.0f}s",
                    retry_after_s=exc.retry_after_s,
                ) from exc
            return exc.retry_after_s
        return self.backoff.delay(retry)

    def _finish(self, resp: LLMResponse, key: str, latency_s: float) -> LLMResponse:
        cfg = self.config
        cost = resp.cost_usd
        if cfg.price_per_mtok_in or cfg.price_per_mtok_out:
            cost = price_usd(
                resp.input_tokens, resp.output_tokens, cfg.price_per_mtok_in, cfg.price_per_mtok_out
            )
        return LLMResponse(
            text=resp.text,
            model=resp.model or cfg.model,
            input_tokens=resp.input_tokens,
            output_tokens=resp.output_tokens,
            cost_usd=cost,
            latency_s=latency_s,
            backend=self.kind,
            raw=resp.raw,
            cached=False,
            key=key,
            stderr=resp.stderr,
            extra=resp.extra,
        )

    def _record(self, resp: LLMResponse) -> None:
        self.ledger.record(
            backend=resp.backend,
            model=resp.model,
            input_tokens=resp.input_tokens,
            output_tokens=resp.output_tokens,
            cost_usd=resp.cost_usd,
            cached=resp.cached,
            key=resp.key,
        )

    @abstractmethod
    def _call(self, prompt: str, system: str | None) -> LLMResponse:
        """One attempt. Raise `LLMError` subclasses (with ``retriable`` set) on failure."""

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release connections; the default has none."""
