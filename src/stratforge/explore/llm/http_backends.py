"""HTTP backends: the Anthropic Messages API and any OpenAI-compatible chat completions API.

Every request has a hard deadline: httpx per-phase timeouts plus a wall-clock check while the body
streams in, so a server that drips bytes cannot hold a call open much past ``timeout_s``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import httpx

from stratforge.explore.llm.base import LLMBackend
from stratforge.explore.llm.cache import ResponseCache
from stratforge.explore.llm.config import LLMConfig
from stratforge.explore.llm.ledger import CostLedger
from stratforge.explore.llm.resilience import Clock, parse_retry_after
from stratforge.explore.llm.types import (
    LLMBackendError,
    LLMConfigError,
    LLMResponse,
    LLMTimeout,
    RateLimited,
)

ANTHROPIC_VERSION = "2023-06-01"
# 408 request timeout, 409 conflict (Anthropic uses it for transient lock errors), 5xx, 529 overloaded
_RETRIABLE_STATUS = {408, 409, 500, 502, 503, 504, 520, 522, 524, 529}
_MAX_BODY = 32 * 1024 * 1024


def _error_message(body: bytes) -> str:
    try:
        data = json.loads(body)
        err = data.get("error", data) if isinstance(data, dict) else data
        if isinstance(err, dict):
            return str(err.get("message") or err.get("type") or err)[:300]
        return str(err)[:300]
    except ValueError:
        return body[:300].decode("utf-8", "replace")


class _HTTPBackend(LLMBackend):
    def __init__(
        self,
        config: LLMConfig,
        *,
        ledger: CostLedger | None = None,
        cache: ResponseCache | None = None,
        clock: Clock | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(config, ledger=ledger, cache=cache, clock=clock)
        self._client = httpx.Client(timeout=httpx.Timeout(config.timeout_s), transport=transport)

    def close(self) -> None:
        self._client.close()

    def _api_key(self, required: bool) -> str | None:
        env = self.config.effective_api_key_env
        key = os.environ.get(env) if env else None
        if required and not key:
            raise LLMConfigError(f"{self.kind} backend needs an API key in ${env}")
        return key

    def _post(self, url: str, headers: dict[str, str], payload: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """POST JSON; return the decoded object and the raw body, or raise a classified `LLMError`."""
        deadline = time.monotonic() + self.config.timeout_s
        try:
            with self._client.stream("POST", url, headers=headers, json=payload) as r:
                chunks: list[bytes] = []
                size = 0
                for chunk in r.iter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if time.monotonic() > deadline:
                        raise LLMTimeout(
                            f"{self.kind}: response exceeded the {self.config.timeout_s:g}s timeout"
                        )
                    if size > _MAX_BODY:
                        raise LLMBackendError(f"{self.kind}: response body larger than {_MAX_BODY} bytes")
                body = b"".join(chunks)
                status = r.status_code
                retry_after = r.headers.get("retry-after")
        except httpx.TimeoutException as exc:
            raise LLMTimeout(
                f"{self.kind}: no response within {self.config.timeout_s:g}s ({type(exc).__name__})"
            ) from None
        except httpx.TransportError as exc:
            raise LLMBackendError(f"{self.kind}: connection failed: {exc}", retriable=True) from exc
        if status == 429:
            wait = parse_retry_after(retry_after, self.clock.now())
            raise RateLimited(f"{self.kind}: 429 rate limited: {_error_message(body)}", retry_after_s=wait)
        if status >= 400:
            raise LLMBackendError(
                f"{self.kind}: HTTP {status}: {_error_message(body)}",
                retriable=status in _RETRIABLE_STATUS or status >= 500,
                status=status,
            )
        raw = body.decode("utf-8", "replace")
        try:
            data = json.loads(raw)
        except ValueError:
            raise LLMBackendError(
                f"{self.kind}: malformed JSON in HTTP {status} response: {raw[:120]!r}", retriable=True
            ) from None
        if not isinstance(data, dict):
            raise LLMBackendError(f"{self.kind}: response is not a JSON object", retriable=True)
        return data, raw


def _int(v: Any) -> int:
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0


class AnthropicBackend(_HTTPBackend):
    """``POST {base_url}/v1/messages`` with ``x-api-key`` and ``anthropic-version`` headers."""

    kind = "anthropic"

    def _call(self, prompt: str, system: str | None) -> LLMResponse:
        cfg = self.config
        if not cfg.model:
            raise LLMConfigError("anthropic backend needs a model name")
        headers = {
            "x-api-key": self._api_key(required=True) or "",
            "anthropic-version": ANTHROPIC_VERSION,
            "content-type": "application/json",
        }
        payload: dict[str, Any] = {
            "model": cfg.model,
            "max_tokens": cfg.max_tokens,
            "messages": [{"role": "user", "content": prompt}],
        }
        if system:
            payload["system"] = system
        if cfg.temperature is not None:
            payload["temperature"] = cfg.temperature
        data, raw = self._post(f"{cfg.effective_base_url}/v1/messages", headers, payload)
        if data.get("type") == "error":
            raise LLMBackendError(f"anthropic: {_error_message(raw.encode())}", retriable=False)
        blocks = data.get("content")
        if not isinstance(blocks, list):
            raise LLMBackendError("anthropic: response has no content list", retriable=True)
        text = "".join(b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text")
        usage = data.get("usage") or {}
        tin = sum(
            _int(usage.get(k))
            for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        )
        return LLMResponse(
            text=text,
            model=str(data.get("model") or cfg.model),
            input_tokens=tin,
            output_tokens=_int(usage.get("output_tokens")),
            cost_usd=0.0,
            latency_s=0.0,
            backend=self.kind,
            raw=raw,
            extra={"stop_reason": data.get("stop_reason"), "id": data.get("id")},
        )


class OpenAICompatBackend(_HTTPBackend):
    """``POST {base_url}/chat/completions``; the bearer key is optional (Ollama, vLLM need none)."""

    kind = "openai"

    def _call(self, prompt: str, system: str | None) -> LLMResponse:
        cfg = self.config
        headers = {"content-type": "application/json"}
        key = self._api_key(required=False)
        if key:
            headers["authorization"] = f"Bearer {key}"
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": prompt})
        payload: dict[str, Any] = {"model": cfg.model, "messages": messages, "max_tokens": cfg.max_tokens}
        if cfg.temperature is not None:
            payload["temperature"] = cfg.temperature
        data, raw = self._post(f"{cfg.effective_base_url}/chat/completions", headers, payload)
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            why = _error_message(raw.encode())
            raise LLMBackendError(f"openai: response has no choices: {why}", retriable=True)
        message = choices[0].get("message") or {}
        text = message.get("content")
        if not isinstance(text, str):
            raise LLMBackendError("openai: first choice has no text content", retriable=True)
        usage = data.get("usage") or {}
        reported_cost = usage.get("cost")  # OpenRouter reports USD here
        try:
            cost = float(reported_cost) if reported_cost is not None else 0.0
        except (TypeError, ValueError):
            cost = 0.0
        return LLMResponse(
            text=text,
            model=str(data.get("model") or cfg.model),
            input_tokens=_int(usage.get("prompt_tokens")),
            output_tokens=_int(usage.get("completion_tokens")),
            cost_usd=cost,
            latency_s=0.0,
            backend=self.kind,
            raw=raw,
            extra={"finish_reason": choices[0].get("finish_reason"), "usage_reported": bool(usage)},
        )
