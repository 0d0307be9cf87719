"""HTTP backends on the official SDKs: `anthropic` (Messages API) and `openai` (chat completions on
api.openai.com or any OpenAI-compatible server: OpenRouter, Ollama, vLLM, LM Studio).

The SDKs build the requests, parse the answers into typed objects and raise typed errors. Their own
retries are off (``max_retries=0``): the shared call loop in `base` (cache, budget, circuit breaker,
retries with Retry-After) is the one retry policy. On top of the SDKs' per-phase timeouts, every
request has a wall-clock deadline checked as each chunk of the body arrives (`DeadlineTransport`),
so a server that drips bytes cannot hold a call open much past ``timeout_s``.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import openai

from stratforge.explore.llm.base import LLMBackend
from stratforge.explore.llm.cache import ResponseCache
from stratforge.explore.llm.config import LLMConfig
from stratforge.explore.llm.ledger import CostLedger
from stratforge.explore.llm.resilience import Clock, parse_retry_after
from stratforge.explore.llm.types import (
    LLMBackendError,
    LLMConfigError,
    LLMError,
    LLMResponse,
    LLMTimeout,
    RateLimited,
    classify_status,
)

# OpenAI's reasoning models refuse `max_tokens` ("use max_completion_tokens"); api.openai.com accepts
# max_completion_tokens for every model, while older OpenAI-compatible servers only know max_tokens.
_REASONING_MODEL = re.compile(r"^(?:openai/)?(o\d|gpt-5)", re.IGNORECASE)


class _DeadlineStream(httpx2.SyncByteStream):
    def __init__(self, inner: httpx2.SyncByteStream, deadline: float, timeout_s: float) -> None:
        self.inner = inner
        self.deadline = deadline
        self.timeout_s = timeout_s

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.inner:
            if time.monotonic() > self.deadline:
                raise httpx2.ReadTimeout(f"response exceeded the {self.timeout_s:g}s deadline")
            yield chunk

    def close(self) -> None:
        self.inner.close()


class DeadlineTransport(httpx2.BaseTransport):
    """An HTTP transport whose responses fail with a read timeout once ``timeout_s`` has passed
    since the request started, however steadily the bytes trickle in."""

    def __init__(self, timeout_s: float, inner: httpx2.BaseTransport | None = None) -> None:
        self.timeout_s = timeout_s
        self.inner = inner or httpx2.HTTPTransport()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        deadline = time.monotonic() + self.timeout_s
        resp = self.inner.handle_request(request)
        assert isinstance(resp.stream, httpx2.SyncByteStream)
        return httpx2.Response(
            resp.status_code,
            headers=resp.headers,
            stream=_DeadlineStream(resp.stream, deadline, self.timeout_s),
            extensions=resp.extensions,
        )

    def close(self) -> None:
        self.inner.close()


def _status_message(exc: anthropic.APIStatusError | openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return str(err.get("message") or err.get("type") or err)[:300]
    return str(exc.message)[:300]


class _SDKBackend(LLMBackend):
    def __init__(
        self,
        config: LLMConfig,
        *,
        ledger: CostLedger | None = None,
        cache: ResponseCache | None = None,
        clock: Clock | None = None,
        transport: httpx2.BaseTransport | None = None,
    ) -> None:
        super().__init__(config, ledger=ledger, cache=cache, clock=clock)
        self._http = httpx2.Client(
            timeout=httpx2.Timeout(config.timeout_s),
            transport=DeadlineTransport(config.timeout_s, transport),
        )

    def close(self) -> None:
        self._http.close()

    def _api_key(self, required: bool) -> str | None:
        env = self.config.effective_api_key_env
        key = os.environ.get(env) if env else None
        if required and not key:
            raise LLMConfigError(f"{self.kind} backend needs an API key in ${env}")
        return key

    def _send(self, request: Any) -> Any:
        """Run one SDK request; SDK exceptions become classified `LLMError`s."""
        try:
            return request()
        except (anthropic.APITimeoutError, openai.APITimeoutError) as exc:
            raise LLMTimeout(
                f"{self.kind}: no complete response within the {self.config.timeout_s:g}s timeout "
                f"(exceeded; {exc.__cause__ or exc})"
            ) from None
        except (anthropic.APIStatusError, openai.APIStatusError) as exc:
            status = exc.status_code
            msg = _status_message(exc)
            if status == 429:
                wait = parse_retry_after(exc.response.headers.get("retry-after"), self.clock.now())
                raise RateLimited(f"{self.kind}: 429 rate limited: {msg}", retry_after_s=wait) from None
            retriable, fatal = classify_status(status)
            raise LLMBackendError(
                f"{self.kind}: HTTP {status}: {msg}", retriable=retriable, status=status, fatal=fatal
            ) from None
        except (anthropic.APIConnectionError, openai.APIConnectionError) as exc:
            raise LLMBackendError(
                f"{self.kind}: connection failed: {exc.__cause__ or exc}", retriable=True
            ) from None
        except (anthropic.APIResponseValidationError, openai.APIResponseValidationError, ValueError) as exc:
            raise LLMBackendError(
                f"{self.kind}: malformed JSON in the response: {exc}", retriable=True
            ) from None
        except LLMError:
            raise
        except (anthropic.AnthropicError, openai.OpenAIError) as exc:  # pragma: no cover - SDK-internal
            raise LLMBackendError(f"{self.kind}: {type(exc).__name__}: {exc}", retriable=False) from None


def _int(v: Any) -> int:
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0


class AnthropicBackend(_SDKBackend):
    """The Messages API through ``anthropic.Anthropic``; ``ANTHROPIC_BASE_URL`` is honoured."""

    kind = "anthropic"

    def _call(self, prompt: str, system: str | None) -> LLMResponse:
        cfg = self.config
        client = anthropic.Anthropic(
            api_key=self._api_key(required=True),
            base_url=cfg.effective_base_url,
            max_retries=0,
            timeout=cfg.timeout_s,
            http_client=self._http,
        )
        kwargs: dict[str, Any] = {
            "model": cfg.model,
            "max_tokens": cfg.max_tokens,
            "messages": [{"role": "user", "content": prompt}],
        }
        if system:
            kwargs["system"] = system
        if cfg.temperature is not None:
            # no longer a typed parameter of the SDK (newer models fix it); older models accept it
            kwargs["extra_body"] = {"temperature": cfg.temperature}
        raw = self._send(lambda: client.messages.with_raw_response.create(**kwargs))
        msg = self._send(raw.parse)
        blocks = getattr(msg, "content", None)
        if not isinstance(blocks, list):
            raise LLMBackendError("anthropic: response has no content list", retriable=True)
        text = "".join(getattr(b, "text", "") for b in blocks if getattr(b, "type", None) == "text")
        usage = msg.usage
        read = _int(getattr(usage, "cache_read_input_tokens", 0))
        write = _int(getattr(usage, "cache_creation_input_tokens", 0))
        return LLMResponse(
            text=text,
            model=str(msg.model or cfg.model),
            input_tokens=_int(usage.input_tokens) + read + write,
            output_tokens=_int(usage.output_tokens),
            cost_usd=0.0,
            latency_s=0.0,
            backend=self.kind,
            raw=raw.http_response.text,
            extra={
                "stop_reason": msg.stop_reason,
                "id": msg.id,
                "cache_read_tokens": read,
                "cache_write_tokens": write,
            },
        )


class OpenAICompatBackend(_SDKBackend):
    """Chat completions through ``openai.OpenAI``; the bearer key is optional (local servers need
    none). ``OPENAI_BASE_URL`` is honoured; OpenRouter's reported ``usage.cost`` is taken as the cost."""

    kind = "openai"

    def _openrouter(self) -> bool:
        return "openrouter.ai" in self.config.effective_base_url

    def _token_param(self) -> str:
        official = "api.openai.com" in self.config.effective_base_url
        return (
            "max_completion_tokens" if official or _REASONING_MODEL.match(self.config.model) else "max_tokens"
        )

    def cost_source(self) -> str | None:
        if self._openrouter() and not (self.config.price_per_mtok_in or self.config.price_per_mtok_out):
            return "reported by OpenRouter (usage.cost)"
        return super().cost_source()

    def _call(self, prompt: str, system: str | None) -> LLMResponse:
        cfg = self.config
        key = self._api_key(required=False)
        client = openai.OpenAI(
            # a placeholder rather than None, so that the SDK never picks up $OPENAI_API_KEY by itself;
            # without a key the Authorization header is omitted from the request (below)
            api_key=key or "no-key",
            base_url=cfg.effective_base_url,
            max_retries=0,
            timeout=cfg.timeout_s,
            http_client=self._http,
        )
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": prompt})
        kwargs: dict[str, Any] = {
            "model": cfg.model,
            "messages": messages,
            self._token_param(): cfg.max_tokens,
        }
        if cfg.temperature is not None:
            kwargs["temperature"] = cfg.temperature
        if self._openrouter():
            kwargs["extra_body"] = {"usage": {"include": True}}  # ask OpenRouter for the cost
        if not key:
            kwargs["extra_headers"] = {"Authorization": openai.omit}  # local servers need no key
        raw = self._send(lambda: client.chat.completions.with_raw_response.create(**kwargs))
        data = self._send(raw.parse)
        choices = getattr(data, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise LLMBackendError(
                f"openai: response has no choices: {raw.http_response.text[:200]}", retriable=True
            )
        text = getattr(choices[0].message, "content", None) if choices[0].message else None
        if not isinstance(text, str):
            raise LLMBackendError("openai: first choice has no text content", retriable=True)
        usage = data.usage
        extra: dict[str, Any] = {
            "finish_reason": choices[0].finish_reason,
            "usage_reported": usage is not None,
        }
        if usage is not None:
            details = getattr(usage, "prompt_tokens_details", None)
            extra["cache_read_tokens"] = _int(getattr(details, "cached_tokens", 0))
            reported = (usage.model_extra or {}).get("cost")
            if reported is not None:
                with contextlib.suppress(TypeError, ValueError):
                    extra["reported_cost_usd"] = float(reported)
        return LLMResponse(
            text=text,
            model=str(data.model or cfg.model),
            input_tokens=_int(getattr(usage, "prompt_tokens", 0)),
            output_tokens=_int(getattr(usage, "completion_tokens", 0)),
            cost_usd=0.0,
            latency_s=0.0,
            backend=self.kind,
            raw=raw.http_response.text,
            extra=extra,
        )
