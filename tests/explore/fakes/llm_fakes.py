"""Local peers for the LLM backend tests: a scripted HTTP server and fake `codex`/`claude` executables.

Nothing here talks to the internet. The server speaks just enough of the Anthropic Messages and
OpenAI chat-completions APIs; each request pops the next scripted `Reply` (or the default one).
"""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

RECORDED = Path(__file__).parent / "recorded"


def recorded(name: str) -> str:
    return (RECORDED / name).read_text(encoding="utf-8")


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON, str/bytes -> sent as is
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # before the status line (slow server)
    drip_s: float = 0.0  # between body bytes (slow body)
    gate: threading.Event | None = None  # held until the test sets it (a call in flight on demand)


@dataclass
class SeenRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


def anthropic_body(text: str, *, model: str = "claude-test", tin: int = 100, tout: int = 50) -> dict:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": tin, "output_tokens": tout},
    }


def openai_body(text: str, *, model: str = "local-model", tin: int = 100, tout: int = 50) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": tin, "completion_tokens": tout, "total_tokens": tin + tout},
    }


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 (ephemeral port) serving ``handler``: the lifecycle the
    fake providers share."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class ScriptedServer(LoopbackServer):
    def __init__(self, default: Reply | None = None) -> None:
        self.script: list[Reply] = []
        self.default = default or Reply(body={"error": {"message": "no scripted reply"}}, status=500)
        self.requests: list[SeenRequest] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                headers = {k.lower(): v for k, v in self.headers.items()}
                with outer._lock:
                    outer.requests.append(SeenRequest(self.path, headers, body, time.time()))
                    reply = outer.script.pop(0) if outer.script else outer.default
                outer._send(self, reply)

        super().__init__(Handler)

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        if isinstance(reply.body, dict | list):
            payload = json.dumps(reply.body).encode()
        elif isinstance(reply.body, str):
            payload = reply.body.encode()
        else:
            payload = reply.body or b""
        try:
            if reply.gate is not None:
                reply.gate.wait(600)
            time.sleep(reply.delay_s)
            handler.send_response(reply.status)
            handler.send_header("content-type", "application/json")
            handler.send_header("content-length", str(len(payload)))
            for k, v in reply.headers.items():
                handler.send_header(k, v)
            handler.end_headers()
            if reply.drip_s:
                for i in range(len(payload)):
                    handler.wfile.write(payload[i : i + 1])
                    handler.wfile.flush()
                    time.sleep(reply.drip_s)
            else:
                handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout tests)



@contextmanager
def scripted_server(*replies: Reply, default: Reply | None = None) -> Iterator[ScriptedServer]:
    srv = ScriptedServer(default).start()
    srv.script.extend(replies)
    try:
        yield srv
    finally:
        srv.stop()


def write_fake_cli(
    bindir: Path,
    name: str,
    *,
    stdout: str = "",
    stderr: str = "",
    exit_code: int = 0,
    hang_s: float = 0.0,
    record_dir: Path | None = None,
) -> Path:
    """A /bin/sh executable named ``name`` that records argv and stdin, prints ``stdout`` and exits.

    With ``hang_s`` it starts a child ``sleep`` (pid written to ``<record_dir>/child.pid``) and
    waits on it, to prove a timeout kills the whole process group, not just the CLI.
    """
    bindir.mkdir(parents=True, exist_ok=True)
    rec = record_dir or bindir
    out_file = bindir / f"{name}.stdout"
    err_file = bindir / f"{name}.stderr"
    out_file.write_text(stdout, encoding="utf-8")
    err_file.write_text(stderr, encoding="utf-8")
    hang = ""
    if hang_s:
        hang = f'sleep {hang_s} &\necho $! > "{rec}/child.pid"\nwait\n'
    script = (
        "#!/bin/sh\n"
        f'cat > "{rec}/{name}.stdin"\n'
        f'printf "%s\\n" "$@" > "{rec}/{name}.argv"\n'
        f'echo $$ >> "{rec}/{name}.calls"\n'
        f'pwd > "{rec}/{name}.cwd"\n'
        f"{hang}"
        f'cat "{out_file}"\n'
        f'cat "{err_file}" >&2\n'
        f"exit {exit_code}\n"
    )
    path = bindir / name
    path.write_text(script, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def pid_alive(pid: int) -> bool:
    """True if ``pid`` runs and is not a zombie (containers may not reap orphans promptly)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def prepend_path(monkeypatch: Any, bindir: Path) -> None:
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
