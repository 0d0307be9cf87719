"""A local LLM provider on 127.0.0.1 for the real `codex` and `claude` CLIs and the SDK backends.

It speaks just enough of three wire protocols, streaming (server-sent events) or not, as the client
asks: the OpenAI Responses API (`POST /v1/responses`, what codex uses), OpenAI chat completions
(`POST /v1/chat/completions`) and the Anthropic Messages API (`POST /v1/messages`). Each model
request takes the next scripted `Behaviour` (or the default): an answer, an HTTP error (with
headers such as Retry-After), or a hang that holds the connection until the server stops.
Everything a client sends is recorded, so tests can assert what went over the wire.

A second server, `TrapProxy`, is given to the clients as HTTP(S)_PROXY: any request a CLI tries to
send anywhere but the mock provider lands there and is recorded, so a test can prove the CLIs never
tried to reach the internet.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from .llm_fakes import LoopbackServer


@dataclass
class Answer:
    text: str
    input_tokens: int = 1200
    output_tokens: int = 800
    cost: float | None = None  # reported as usage.cost (OpenRouter style) when set


@dataclass
class Fail:
    status: int
    message: str = "error"
    headers: dict[str, str] = field(default_factory=dict)
    error_type: str = "api_error"


@dataclass
class Hang:
    """Accept the request and never answer (until the server stops)."""


Behaviour = Answer | Fail | Hang


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float

    @property
    def model_call(self) -> bool:
        return self.method == "POST" and self.path.split("?")[0].rstrip("/").endswith(
            ("/responses", "/chat/completions", "/messages")
        )


def _sse(handler: BaseHTTPRequestHandler, events: list[tuple[str, dict[str, Any]]]) -> None:
    handler.send_response(200)
    handler.send_header("content-type", "text/event-stream")
    handler.send_header("cache-control", "no-cache")
    handler.send_header("connection", "close")
    handler.end_headers()
    for name, data in events:
        handler.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        handler.wfile.flush()
    handler.close_connection = True


def _json(
    handler: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None
) -> None:
    payload = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(payload)))
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.end_headers()
    handler.wfile.write(payload)


class MockProvider(LoopbackServer):
    def __init__(self, default: Behaviour | None = None) -> None:
        self.script: list[Behaviour] = []
        self.default: Behaviour = default or Fail(500, "no scripted behaviour")
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _record(self, body: Any) -> Seen:
                seen = Seen(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.time(),
                )
                with outer._lock:
                    outer.seen.append(seen)
                return seen

            def do_GET(self) -> None:  # noqa: N802 - http.server naming
                self._record(None)
                path = self.path.split("?")[0].rstrip("/")
                if path.endswith("/models"):
                    _json(self, 200, {"object": "list", "data": [], "models": []})
                else:
                    _json(self, 404, {"error": {"message": f"no route {path}", "type": "not_found_error"}})

            def do_HEAD(self) -> None:  # noqa: N802
                self._record(None)
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                seen = self._record(body)
                path = self.path.split("?")[0].rstrip("/")
                if path.endswith("/messages/count_tokens"):
                    _json(self, 200, {"input_tokens": 10})
                    return
                if not seen.model_call:
                    _json(self, 404, {"error": {"message": f"no route {path}", "type": "not_found_error"}})
                    return
                with outer._lock:
                    behaviour = outer.script.pop(0) if outer.script else outer.default
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up
                    outer._reply(self, path, body if isinstance(body, dict) else {}, behaviour)

        super().__init__(Handler)

    def model_calls(self) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.model_call]

    # -- replies -------------------------------------------------------------------------------
    def _reply(self, h: BaseHTTPRequestHandler, path: str, body: dict[str, Any], b: Behaviour) -> None:
        if isinstance(b, Hang):
            self._stopping.wait()
            return
        anthropic = path.endswith("/messages")
        if isinstance(b, Fail):
            if anthropic:
                err = {"type": "error", "error": {"type": b.error_type, "message": b.message}}
            else:
                err = {"error": {"message": b.message, "type": b.error_type, "code": None}}
            _json(h, b.status, err, b.headers)
            return
        model = str(body.get("model") or "mock-model")
        stream = bool(body.get("stream"))
        if path.endswith("/responses"):
            self._responses(h, model, b, stream)
        elif path.endswith("/chat/completions"):
            self._chat(h, model, b, stream)
        else:
            self._messages(h, model, b, stream)

    @staticmethod
    def _responses(h: BaseHTTPRequestHandler, model: str, a: Answer, stream: bool) -> None:
        item = {
            "type": "message",
            "id": "msg_mock_1",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": a.text, "annotations": []}],
        }
        usage = {
            "input_tokens": a.input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": a.output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": a.input_tokens + a.output_tokens,
        }
        response = {"id": "resp_mock_1", "object": "response", "model": model, "status": "completed"}
        if not stream:
            _json(h, 200, {**response, "output": [item], "usage": usage})
            return
        _sse(
            h,
            [
                (
                    "response.created",
                    {"type": "response.created", "response": {**response, "status": "in_progress"}},
                ),
                (
                    "response.output_item.added",
                    {
                        "type": "response.output_item.added",
                        "output_index": 0,
                        "item": {**item, "content": [], "status": "in_progress"},
                    },
                ),
                (
                    "response.output_text.delta",
                    {
                        "type": "response.output_text.delta",
                        "item_id": "msg_mock_1",
                        "output_index": 0,
                        "content_index": 0,
                        "delta": a.text,
                    },
                ),
                (
                    "response.output_item.done",
                    {"type": "response.output_item.done", "output_index": 0, "item": item},
                ),
                (
                    "response.completed",
                    {
                        "type": "response.completed",
                        "response": {**response, "output": [item], "usage": usage},
                    },
                ),
            ],
        )

    @staticmethod
    def _chat(h: BaseHTTPRequestHandler, model: str, a: Answer, stream: bool) -> None:
        usage: dict[str, Any] = {
            "prompt_tokens": a.input_tokens,
            "completion_tokens": a.output_tokens,
            "total_tokens": a.input_tokens + a.output_tokens,
        }
        if a.cost is not None:
            usage["cost"] = a.cost
        base = {"id": "chatcmpl-mock", "created": int(time.time()), "model": model}
        if not stream:
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": a.text},
                "finish_reason": "stop",
            }
            _json(h, 200, {**base, "object": "chat.completion", "choices": [choice], "usage": usage})
            return
        h.send_response(200)
        h.send_header("content-type", "text/event-stream")
        h.send_header("connection", "close")
        h.end_headers()
        chunks = [
            {
                **base,
                "object": "chat.completion.chunk",
                "choices": [
                    {"index": 0, "delta": {"role": "assistant", "content": a.text}, "finish_reason": None}
                ],
            },
            {
                **base,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "usage": usage,
            },
        ]
        for c in chunks:
            h.wfile.write(f"data: {json.dumps(c)}\n\n".encode())
        h.wfile.write(b"data: [DONE]\n\n")
        h.wfile.flush()
        h.close_connection = True

    @staticmethod
    def _messages(h: BaseHTTPRequestHandler, model: str, a: Answer, stream: bool) -> None:
        usage = {
            "input_tokens": a.input_tokens,
            "output_tokens": a.output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
        message = {
            "id": "msg_mock_1",
            "type": "message",
            "role": "assistant",
            "model": model,
            "stop_reason": "end_turn",
            "stop_sequence": None,
        }
        if not stream:
            _json(h, 200, {**message, "content": [{"type": "text", "text": a.text}], "usage": usage})
            return
        _sse(
            h,
            [
                (
                    "message_start",
                    {
                        "type": "message_start",
                        "message": {
                            **message,
                            "content": [],
                            "stop_reason": None,
                            "usage": {**usage, "output_tokens": 1},
                        },
                    },
                ),
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "text", "text": ""},
                    },
                ),
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": a.text},
                    },
                ),
                ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                (
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                        "usage": {"output_tokens": a.output_tokens},
                    },
                ),
                ("message_stop", {"type": "message_stop"}),
            ],
        )

    # -- lifecycle -----------------------------------------------------------------------------
    def stop(self) -> None:
        self._stopping.set()
        super().stop()


class TrapProxy(LoopbackServer):
    """An HTTP proxy that forwards nothing: every request or CONNECT is recorded and refused."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _trap(self) -> None:
                outer.seen.append(f"{self.command} {self.path}")
                self.send_response(403)
                self.send_header("content-length", "0")
                self.end_headers()

            do_GET = do_POST = do_CONNECT = do_HEAD = do_PUT = _trap  # noqa: N815

        super().__init__(Handler)



@contextmanager
def mock_provider(*script: Behaviour, default: Behaviour | None = None) -> Iterator[MockProvider]:
    srv = MockProvider(default).start()
    srv.script.extend(script)
    try:
        yield srv
    finally:
        srv.stop()


@contextmanager
def trap_proxy() -> Iterator[TrapProxy]:
    trap = TrapProxy().start()
    try:
        yield trap
    finally:
        trap.stop()
