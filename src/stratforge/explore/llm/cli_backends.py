"""Backends that drive an agent CLI as a subprocess: `codex exec --json` and `claude -p`.

The prompt goes on stdin (no argv length limits, nothing in `ps`), the process runs in its own
session so a timeout kills the whole process group (the CLI and anything it spawned), the group dies
with stratforge however stratforge dies (`stratforge.process`), and stderr is kept on the response
and in error messages.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stratforge import process
from stratforge.explore.llm.base import LLMBackend
from stratforge.explore.llm.types import (
    LLMBackendError,
    LLMConfigError,
    LLMResponse,
    LLMTimeout,
    RateLimited,
    classify_status,
)

# Messages that mean "try again later" rather than "this will never work". Codex replaces a 5xx
# body with "We're currently experiencing high demand, which may cause temporary errors."
_TRANSIENT = re.compile(
    r"rate.?limit|too many requests|\b429\b|overloaded|\b5\d\d\b|temporar(il)?y|high demand|"
    r"timed? ?out|try again|connection (reset|refused|error|failed)|stream disconnected|reconnecting",
    re.IGNORECASE,
)
# ... and messages that mean "this will never work until the user fixes something".
_FATAL = re.compile(
    r"\b(401|403)\b|unauthori[sz]ed|forbidden|invalid (x-)?api.?key|authentication|not logged in|"
    r"model[_ ]not[_ ]found|does not exist|unknown model|invalid model|model .* not (found|supported)",
    re.IGNORECASE,
)
_STATUS = re.compile(r"\bstatus:? (\d{3})\b|\((\d{3})\)|\bAPI Error: (\d{3})\b")


def classify_cli_error(message: str, status: int | None = None) -> LLMBackendError:
    """One error with ``retriable``/``fatal`` set from the HTTP status (when the CLI names one)
    or from the wording of the CLI's message."""
    if status is None and (m := _STATUS.search(message)):
        status = int(next(g for g in m.groups() if g))
    if status is not None:
        retriable, fatal = classify_status(status)
        if status == 404 and not _FATAL.search(message):
            fatal = False  # a 404 that is not about the model: do not stop the run on it
    else:
        fatal = bool(_FATAL.search(message))
        retriable = not fatal and bool(_TRANSIENT.search(message))
    if status is not None and status == 429:
        return RateLimited(message)
    return LLMBackendError(message, retriable=retriable, status=status, fatal=fatal)


def _tail(text: str, n: int = 400) -> str:
    text = text.strip()
    return text if len(text) <= n else "..." + text[-n:]


@dataclass
class CLIResult:
    stdout: str
    stderr: str
    returncode: int
    elapsed_s: float


def run_cli(
    argv: list[str], stdin_text: str, timeout_s: float, env: dict[str, str] | None = None
) -> CLIResult:
    """Run ``argv`` with ``stdin_text`` on stdin; kill its process group after ``timeout_s``.

    The CLI runs in an empty temporary directory: the agent cannot read or edit the project, and
    project instruction files (AGENTS.md, CLAUDE.md) cannot change its answers between machines.
    """
    exe = shutil.which(argv[0])
    if exe is None:
        raise LLMConfigError(f"{argv[0]!r} not found on PATH; install it or set `command` in the LLM config")
    with tempfile.TemporaryDirectory(prefix="stratforge-llm-") as workdir:
        return _run_in(exe, argv, stdin_text, timeout_s, workdir, env)


def _run_in(
    exe: str, argv: list[str], stdin_text: str, timeout_s: float, workdir: str, env: dict[str, str] | None
) -> CLIResult:
    t0 = time.perf_counter()
    # Own process group under the supervisor of stratforge.process: kill_group reaches every
    # descendant, and the group dies with this process however it dies.
    proc = process.popen(
        [exe, *argv[1:]],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=workdir,
        env=None if env is None else {**os.environ, **env},
    )
    try:
        out, err = proc.communicate(stdin_text.encode("utf-8"), timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill_group(proc)
        try:
            out, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:  # a descendant escaped the group and holds the pipes
            out, err = b"", b""
        raise LLMTimeout(
            f"{argv[0]} exceeded the {timeout_s:g}s timeout; process group killed"
            + (f"; stderr: {_tail(err.decode('utf-8', 'replace'))}" if err else "")
        ) from None
    except BaseException:
        process.kill_group(proc)
        proc.wait()
        raise
    return CLIResult(
        stdout=out.decode("utf-8", "replace"),
        stderr=err.decode("utf-8", "replace"),
        returncode=proc.returncode,
        elapsed_s=time.perf_counter() - t0,
    )


def _as_int(v: Any) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return 0


@dataclass
class CodexTranscript:
    text: str
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    errors: list[str]  #: every error/warning event, in order
    events: int
    bad_lines: int
    thread_id: str | None
    failure: str | None = None  #: the error that ended the turn (turn.failed, else the last error event)


def parse_codex_jsonl(stdout: str) -> CodexTranscript:
    """Fold ``codex exec --json`` events: the last agent message is the answer; usage is summed.

    Error *items* are warnings codex carries on after ("Model metadata ... not found", "Falling
    back from WebSockets"); ``error`` events are retries in progress ("Reconnecting... 2/5") or the
    final error; ``turn.failed`` is what ended the turn. Accepts both current (`turn.completed`,
    `item.type`) and older (`turn.ended`, `item_type`) names.
    """
    messages: list[str] = []
    errors: list[str] = []
    last_error_event: str | None = None
    turn_failed: str | None = None
    tin = tcached = tout = 0
    events = bad = 0
    thread_id = None
    for line in stdout.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if not isinstance(ev, dict):
            bad += 1
            continue
        events += 1
        etype = ev.get("type", "")
        if etype == "thread.started":
            thread_id = ev.get("thread_id")
        elif etype == "item.completed":
            item = ev.get("item") or {}
            itype = item.get("type") or item.get("item_type")
            if itype in ("agent_message", "assistant_message") and isinstance(item.get("text"), str):
                messages.append(item["text"])
            elif itype == "error" and item.get("message"):
                errors.append(str(item["message"]))
        elif etype in ("turn.completed", "turn.ended"):
            usage = ev.get("usage") or {}
            tin += _as_int(usage.get("input_tokens"))
            tcached += _as_int(usage.get("cached_input_tokens"))
            tout += _as_int(usage.get("output_tokens"))
        elif etype in ("turn.failed", "error"):
            err = ev.get("error")
            msg = str((err.get("message") if isinstance(err, dict) else ev.get("message")) or etype)
            errors.append(msg)
            if etype == "turn.failed":
                turn_failed = msg
            else:
                last_error_event = msg
    return CodexTranscript(
        text=messages[-1] if messages else "",
        input_tokens=tin,
        cached_input_tokens=tcached,
        output_tokens=tout,
        errors=errors,
        events=events,
        bad_lines=bad,
        thread_id=thread_id,
        failure=turn_failed or last_error_event,
    )


def _has_flag(args: list[str], *names: str) -> bool:
    """``--name``, ``--name=value`` or a short ``-s``/``-svalue`` among ``args``."""
    for a in args:
        for n in names:
            if (
                a == n
                or a.startswith(n + "=")
                or (len(n) == 2 and a.startswith(n) and not a.startswith("--"))
            ):
                return True
    return False


class CodexCLIBackend(LLMBackend):
    """``codex exec --json --ephemeral -`` with the prompt on stdin (codex has no system flag: it is
    prepended).

    Credentials: ``CODEX_API_KEY`` (codex exec ignores ``OPENAI_API_KEY``) or a ``codex login``
    (``$CODEX_HOME/auth.json``); checked before the first call. With ``base_url`` set, codex talks to
    that server as a custom provider (Responses API), with its own retries off so that ours are the
    only ones, and the key (if any) taken from ``api_key_env`` (default ``CODEX_API_KEY``).
    """

    kind = "codex"
    PROVIDER = "stratforge"

    def _key_env(self) -> str:
        return self.config.effective_api_key_env or "CODEX_API_KEY"

    def provider_args(self) -> list[str]:
        url = self.config.base_url
        if not url:
            return []
        p = f"model_providers.{self.PROVIDER}"
        args = [
            f"model_provider={self.PROVIDER}",
            f'{p}.name="{self.PROVIDER}"',
            f'{p}.base_url="{url.rstrip("/")}"',
            f'{p}.wire_api="responses"',
            f"{p}.request_max_retries=0",
            f"{p}.stream_max_retries=0",
            f"{p}.stream_idle_timeout_ms={int(self.config.timeout_s * 1000)}",
        ]
        if os.environ.get(self._key_env()):
            args.append(f'{p}.env_key="{self._key_env()}"')
        return [x for a in args for x in ("-c", a)]

    def check_setup(self) -> None:
        if self.config.base_url:
            return  # a custom server: the key is optional (local servers need none)
        if os.environ.get("CODEX_API_KEY"):
            return
        home = Path(os.environ.get("CODEX_HOME") or Path.home() / ".codex")
        if (home / "auth.json").is_file():
            return
        raise LLMConfigError(
            "codex has no credentials: set CODEX_API_KEY (codex exec does not read OPENAI_API_KEY) "
            f"or run `codex login` (no {home / 'auth.json'})"
        )

    def argv(self) -> list[str]:
        cmd = [self.config.command or "codex", "exec", "--json", "--skip-git-repo-check", "--ephemeral"]
        if not _has_flag(self.config.extra_args, "-s", "--sandbox"):
            cmd += ["--sandbox", "read-only"]  # we want text, never edits or commands with side effects
        if self.config.model:
            cmd += ["--model", self.config.model]
        return [*cmd, *self.provider_args(), *self.config.extra_args, "-"]

    def _call(self, prompt: str, system: str | None) -> LLMResponse:
        self.check_setup()
        stdin = f"{system}\n\n{prompt}" if system else prompt
        res = run_cli(self.argv(), stdin, self.config.timeout_s)
        tr = parse_codex_jsonl(res.stdout)
        if res.returncode != 0 or not tr.text:
            why = tr.failure or _tail(res.stderr) or "no agent message in output"
            status = f"exit code {res.returncode}" if res.returncode else "no answer"
            err = classify_cli_error(f"codex failed ({status}): {why}")
            if not tr.failure and not err.fatal:  # no error event: judge by stderr too
                err.retriable = err.retriable or bool(_TRANSIENT.search(res.stderr))
            raise err
        return LLMResponse(
            text=tr.text,
            model=self.config.model or "codex-default",
            input_tokens=tr.input_tokens,
            output_tokens=tr.output_tokens,
            cost_usd=0.0,
            latency_s=res.elapsed_s,
            backend=self.kind,
            raw=res.stdout,
            stderr=res.stderr,
            extra={
                "cache_read_tokens": tr.cached_input_tokens,
                "events": tr.events,
                "bad_lines": tr.bad_lines,
                "thread_id": tr.thread_id,
                "warnings": [e for e in tr.errors if e != tr.failure],
            },
        )


def parse_claude_json(stdout: str) -> dict[str, Any]:
    """The ``result`` object of ``claude -p --output-format json`` (a single object, or an event list)."""
    try:
        data = json.loads(stdout)
    except ValueError as exc:
        raise LLMBackendError(f"claude printed invalid JSON: {_tail(stdout, 200)!r}", retriable=True) from exc
    if isinstance(data, list):
        results = [e for e in data if isinstance(e, dict) and e.get("type") == "result"]
        if not results:
            raise LLMBackendError("claude output has no result event", retriable=True)
        data = results[-1]
    if not isinstance(data, dict):
        raise LLMBackendError("claude output is not a JSON object", retriable=True)
    return data


def claude_usage(data: dict[str, Any]) -> tuple[int, int, int, int, str]:
    """(input, output, cache read, cache write, model) over *every* call the CLI made.

    ``modelUsage`` covers all of them (``total_cost_usd`` does too), while ``usage`` is the main
    call only, so tokens and cost agree only when taken from ``modelUsage``.
    """
    per_model = data.get("modelUsage")
    if isinstance(per_model, dict) and per_model:
        tin = tout = read = write = 0
        for u in per_model.values():
            if not isinstance(u, dict):
                continue
            read += _as_int(u.get("cacheReadInputTokens"))
            write += _as_int(u.get("cacheCreationInputTokens"))
            tin += _as_int(u.get("inputTokens"))
            tout += _as_int(u.get("outputTokens"))
        main = max(per_model, key=lambda m: _as_int((per_model[m] or {}).get("outputTokens")))
        return tin + read + write, tout, read, write, main
    usage = data.get("usage") or {}
    read = _as_int(usage.get("cache_read_input_tokens"))
    write = _as_int(usage.get("cache_creation_input_tokens"))
    tin = _as_int(usage.get("input_tokens")) + read + write
    return tin, _as_int(usage.get("output_tokens")), read, write, ""


class ClaudeCLIBackend(LLMBackend):
    """``claude -p --output-format json --tools "" --no-session-persistence`` with the prompt on stdin.

    No tool definitions are sent (``--tools ""``: 1 KB instead of ~80 KB per request), no title
    call is made (``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1``), no session is written, and the
    CLI's own retries are off (``CLAUDE_CODE_MAX_RETRIES=0``) so that ours are the only ones: a
    wrong key surfaces at once instead of after minutes of retrying. ``base_url`` and
    ``api_key_env`` become ``ANTHROPIC_BASE_URL`` / ``ANTHROPIC_API_KEY`` for the CLI; without them
    the CLI uses its own login or the variables already set.
    """

    kind = "claude"

    def argv(self, system: str | None) -> list[str]:
        cmd = [self.config.command or "claude", "-p", "--output-format", "json", "--no-session-persistence"]
        if not _has_flag(self.config.extra_args, "--tools"):
            cmd += ["--tools", ""]
        if self.config.model:
            cmd += ["--model", self.config.model]
        if system:
            cmd += ["--system-prompt", system]
        return [*cmd, *self.config.extra_args]

    def env(self) -> dict[str, str]:
        env = {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "CLAUDE_CODE_MAX_RETRIES": "0"}
        if self.config.base_url:
            env["ANTHROPIC_BASE_URL"] = self.config.base_url.rstrip("/")
        if self.config.api_key_env:
            key = os.environ.get(self.config.api_key_env)
            if not key:
                raise LLMConfigError(f"claude backend: ${self.config.api_key_env} is not set")
            env["ANTHROPIC_API_KEY"] = key
        return env

    def cost_source(self) -> str | None:
        return super().cost_source() or "reported by the claude CLI (total_cost_usd)"

    def _call(self, prompt: str, system: str | None) -> LLMResponse:
        res = run_cli(self.argv(system), prompt, self.config.timeout_s, env=self.env())
        if res.returncode != 0 and not res.stdout.strip():
            raise classify_cli_error(
                f"claude failed (exit code {res.returncode}): {_tail(res.stderr) or 'no output'}"
            )
        data = parse_claude_json(res.stdout)
        text = data.get("result")
        if data.get("is_error") or res.returncode != 0 or not isinstance(text, str):
            why = str(text or data.get("error") or data.get("subtype") or _tail(res.stderr) or "error")
            status = data.get("api_error_status")
            raise classify_cli_error(
                f"claude reported an error ({data.get('api_error_type') or data.get('subtype', 'unknown')}): "
                f"{_tail(why)}",
                status=int(status) if isinstance(status, int | str) and str(status).isdigit() else None,
            )
        tin, tout, read, write, model = claude_usage(data)
        try:
            cost = float(data["total_cost_usd"]) if data.get("total_cost_usd") is not None else None
        except (TypeError, ValueError):
            cost = None
        extra: dict[str, Any] = {
            "session_id": data.get("session_id"),
            "num_turns": data.get("num_turns"),
            "cache_read_tokens": read,
            "cache_write_tokens": write,
        }
        if cost is not None:
            extra["reported_cost_usd"] = cost
        return LLMResponse(
            text=text,
            model=model or self.config.model or "claude-default",
            input_tokens=tin,
            output_tokens=tout,
            cost_usd=0.0,
            latency_s=res.elapsed_s,
            backend=self.kind,
            raw=res.stdout,
            stderr=res.stderr,
            extra=extra,
        )
