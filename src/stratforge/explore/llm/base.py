"""`LLMBackend`: the one interface, and the call loop every backend shares.

`complete()` does, in order: cache lookup -> budget check -> circuit breaker -> rate limiter -> the
backend's own `_call()` under a hard timeout -> bounded retries (Retry-After or backoff with jitter)
-> cost accounting -> atomic cache write. Subclasses only implement `_call()` (and `cost_source()`
when their cost is reported rather than priced).
"""

from __future__ import annotations

import random
import time
from abc import ABC, abstractmethod

from stratforge.explore.llm.cache import CacheKeyParts, ResponseCache
from stratforge.explore.llm.config import CLI_BACKENDS, LLMConfig, base_url_for
from stratforge.explore.llm.ledger import CostLedger, price_usd
from stratforge.explore.llm.prices import Price, load_prices
from stratforge.explore.llm.resilience import Backoff, CircuitBreaker, Clock, RateLimiter, SystemClock
from stratforge.explore.llm.types import (
    CircuitOpen,
    LLMBackendError,
    LLMConfigError,
    LLMError,
    LLMResponse,
    LLMTimeout,
    RateLimited,
)

#: statuses of a request the provider refused as malformed; every request refused this way = fatal
_REJECTED = (400, 422)


def key_extra(kind: str, config: LLMConfig) -> tuple[tuple[str, str], ...]:
    """Backend-specific settings that change the answer, beyond model/prompt/sampling."""
    extra: list[tuple[str, str]] = []
    if kind == "openai" or (kind in CLI_BACKENDS and config.base_url):
        # the model name is relative to the server (Ollama's "llama3" is not OpenRouter's)
        extra.append(("base_url", base_url_for(kind, config.base_url)))
    if kind in CLI_BACKENDS and config.extra_args:
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
        self.last_error: str | None = None  # the most recent failed attempt, for status displays
        self._rejected_in_a_row = 0

    # -- keys ---------------------------------------------------------------------------------
    @property
    def key_kind(self) -> str:
        return self.kind

    def key_parts(self, prompt: str, system: str | None) -> CacheKeyParts:
        cli = self.key_kind in CLI_BACKENDS  # the CLIs ignore max_tokens/temperature: keep them out
        return CacheKeyParts(
            kind=self.key_kind,
            model=self.config.model,
            prompt=prompt,
            system=system,
            temperature=None if cli else self.config.temperature,
            max_tokens=0 if cli else self.config.max_tokens,
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
            try:
                self.breaker.before_call()
            except CircuitOpen as exc:
                exc.retry_at = self.clock.now() + exc.retry_in_s
                raise
            self.limiter.wait()
            self.attempts += 1
            t0 = time.perf_counter()
            try:
                resp = self._call(prompt, system)
            except LLMConfigError:
                raise  # not the backend's fault: do not trip the breaker, do not retry
            except LLMError as exc:
                self.breaker.failure()
                self.last_error = str(exc)
                self._note_rejection(exc)
                # a timeout is not retried here: a provider that hung once usually hangs again,
                # and retrying would multiply the cost of a hang; the next iteration tries again
                if exc.fatal or not exc.retriable or isinstance(exc, LLMTimeout):
                    raise
                if retry >= self.config.max_retries or self.breaker.retry_in() > 0:
                    raise  # out of retries, or this failure opened the breaker: report the real error
                self.clock.sleep(self._wait_before_retry(exc, retry))
                retry += 1
                continue
            self.breaker.success()
            self.last_error = None
            self._rejected_in_a_row = 0
            resp = self._finish(resp, key, time.perf_counter() - t0)
            self._record(resp)
            if self.cache is not None:
                try:
                    self.cache.put(key, parts, resp)
                except OSError as exc:  # a full disk must not throw away an answer already paid for
                    resp.extra["cache_error"] = f"{type(exc).__name__}: {exc}"
            return resp

    def check_setup(self) -> None:  # noqa: B027 - optional hook, most backends need nothing
        """Raise `LLMConfigError` now, before any run starts, for what would fail every call
        (missing credentials); the default checks nothing."""

    def ready_in(self) -> float:
        """Seconds until a call could be sent (0 unless the circuit breaker is open)."""
        return self.breaker.retry_in()

    def _note_rejection(self, exc: LLMError) -> None:
        """A provider that refuses every request as malformed will not change its mind: go fatal."""
        if isinstance(exc, LLMBackendError) and exc.status in _REJECTED:
            self._rejected_in_a_row += 1
            if self._rejected_in_a_row >= self.config.breaker_threshold and not exc.fatal:
                exc.fatal = True
                exc.args = (f"{exc} (the last {self._rejected_in_a_row} requests were all refused)",)
        else:
            self._rejected_in_a_row = 0

    # -- costs --------------------------------------------------------------------------------
    def configured_price(self) -> Price | None:
        """The per-token price this backend charges at, if known without calling it."""
        cfg = self.config
        if cfg.price_per_mtok_in or cfg.price_per_mtok_out:
            return Price(cfg.price_per_mtok_in, cfg.price_per_mtok_out)
        return load_prices(cfg.price_file).lookup(cfg.model) if cfg.model else None

    def cost_source(self) -> str | None:
        """How this backend's cost is known ("configured prices", "price table ...", "reported by
        ..."), or None when it cannot be known (a budget could then never stop the run)."""
        cfg = self.config
        if cfg.price_per_mtok_in or cfg.price_per_mtok_out:
            return "configured prices"
        if self.configured_price() is not None:
            return f"price table ({load_prices(cfg.price_file).as_of}) for {cfg.model}"
        return None

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
        """Cost: configured prices, else the cost the client reported, else the price table."""
        cfg = self.config
        extra = dict(resp.extra)
        reported = extra.pop("reported_cost_usd", None)
        if cfg.price_per_mtok_in or cfg.price_per_mtok_out:
            cost = price_usd(
                resp.input_tokens, resp.output_tokens, cfg.price_per_mtok_in, cfg.price_per_mtok_out
            )
            extra["cost_from"] = "configured prices"
        elif reported is not None:
            cost = float(reported)
            extra["cost_from"] = "reported"
        elif (price := load_prices(cfg.price_file).lookup(resp.model or cfg.model)) is not None:
            cost = price.cost_usd(
                resp.input_tokens,
                resp.output_tokens,
                cache_read_tokens=int(extra.get("cache_read_tokens") or 0),
                cache_write_tokens=int(extra.get("cache_write_tokens") or 0),
            )
            extra["cost_from"] = "price table"
        else:
            cost = 0.0
            extra["cost_from"] = "unknown"
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
            extra=extra,
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
