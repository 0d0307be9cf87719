"""Backends that drive an agent CLI as a subprocess: `codex exec --json` and `claude -p`.

The prompt goes on stdin (no argv length limits, nothing in `ps`), the process runs in its own
session so a timeout kills the whole process group (the CLI and anything it spawned), the group dies
with stratforge however stratforge dies (`stratforge.process`), and stderr is kept on the response
and in error messages.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from stratforge import process
from stratforge.explore.llm.base import LLMBackend
from stratforge.explore.llm.types import LLMBackendError, LLMConfigError, LLMResponse, LLMTimeout

# Messages that mean "try again later" rather than "this will never work".
_TRANSIENT = re.compile(
    r"rate.?limit|too many requests|\b429\b|overloaded|\b5\d\d\b|temporarily|timed? ?out|try again|"
    r"connection (reset|refused|error)|stream disconnected",
    re.IGNORECASE,
)


def _tail(text: str, n: int = 400) -> str:
    text = text.strip()
    return text if len(text) <= n else "..." + text[-n:]


@dataclass
class CLIResult:
    stdout: str
    stderr: str
    returncode: int
    elapsed_s: float


def run_cli(argv: list[str], stdin_text: str, timeout_s: float) -> CLIResult:
    """Run ``argv`` with ``stdin_text`` on stdin; kill its process group after ``timeout_s``.

    The CLI runs in an empty temporary directory: the agent cannot read or edit the project, and
    project instruction files (AGENTS.md, CLAUDE.md) cannot change its answers between machines.
    """
    exe = shutil.which(argv[0])
    if exe is None:
        raise LLMConfigError(f"{argv[0]!r} not found on PATH; install it or set `command` in the LLM config")
    with tempfile.TemporaryDirectory(prefix="stratforge-llm-") as workdir:
        return _run_in(exe, argv, stdin_text, timeout_s, workdir)


def _run_in(exe: str, argv: list[str], stdin_text: str, timeout_s: float, workdir: str) -> CLIResult:
    t0 = time.perf_counter()
    # Own process group under the supervisor of stratforge.process: kill_group reaches every
    # descendant, and the group dies with this process however it dies.
    proc = process.popen(
        [exe, *argv[1:]], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=workdir
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
    errors: list[str]
    events: int
    bad_lines: int
    thread_id: str | None


def parse_codex_jsonl(stdout: str) -> CodexTranscript:
    """Fold ``codex exec --json`` events: the last agent message is the answer; usage is summed.

    Accepts both current (`turn.completed`, `item.type`) and older (`turn.ended`, `item_type`) names.
    """
    messages: list[str] = []
    errors: list[str] = []
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
            msg = err.get("message") if isinstance(err, dict) else ev.get("message")
            errors.append(str(msg or etype))
    return CodexTranscript(
        text=messages[-1] if messages else "",
        input_tokens=tin,
        cached_input_tokens=tcached,
        output_tokens=tout,
        errors=errors,
        events=events,
        bad_lines=bad,
        thread_id=thread_id,
    )


class CodexCLIBackend(LLMBackend):
    """``codex exec --json -`` with the prompt on stdin (codex has no system flag: it is prepended)."""

    kind = "codex"

    def argv(self) -> list[str]:
        cmd = [self.config.command or "codex", "exec", "--json", "--skip-git-repo-check"]
        if not {"-s", "--sandbox"} & set(self.config.extra_args):
            cmd += ["--sandbox", "read-only"]  # we want text, never edits or commands with side effects
        if self.config.model:
            cmd += ["--model", self.config.model]
        return [*cmd, *self.config.extra_args, "-"]

    def _call(self, prompt: str, system: str | None) -> LLMResponse:
        stdin = f"{system}\n\n{prompt}" if system else prompt
        res = run_cli(self.argv(), stdin, self.config.timeout_s)
        tr = parse_codex_jsonl(res.stdout)
        if res.returncode != 0 or not tr.text:
            why = "; ".join(tr.errors) or _tail(res.stderr) or "no agent message in output"
            status = f"exit code {res.returncode}" if res.returncode else "no answer"
            raise LLMBackendError(
                f"codex failed ({status}): {why}",
                retriable=bool(_TRANSIENT.search(why + " " + res.stderr)),
            )
        return LLMResponse(
            text=tr.text,
            model=self.config.model or "codex-default",
            input_tokens=tr.input_tokens,
            output_tokens=tr.output_tokens,
            cost_usd=0.0,  # codex reports no price; configure price_per_mtok_* to account for it
            latency_s=res.elapsed_s,
            backend=self.kind,
            raw=res.stdout,
            stderr=res.stderr,
            extra={
                "cached_input_tokens": tr.cached_input_tokens,
                "events": tr.events,
                "bad_lines": tr.bad_lines,
                "thread_id": tr.thread_id,
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


class ClaudeCLIBackend(LLMBackend):
    """``claude -p --output-format json`` with the prompt on stdin."""

    kind = "claude"

    def argv(self, system: str | None) -> list[str]:
        cmd = [self.config.command or "claude", "-p", "--output-format", "json"]
        if self.config.model:
            cmd += ["--model", self.config.model]
        if system:
            cmd += ["--system-prompt", system]
        return [*cmd, *self.config.extra_args]

    def _call(self, prompt: str, system: str | None) -> LLMResponse:
        res = run_cli(self.argv(system), prompt, self.config.timeout_s)
        if res.returncode != 0 and not res.stdout.strip():
            why = _tail(res.stderr) or "no output"
            raise LLMBackendError(
                f"claude failed (exit code {res.returncode}): {why}", retriable=bool(_TRANSIENT.search(why))
            )
        data = parse_claude_json(res.stdout)
        text = data.get("result")
        if data.get("is_error") or res.returncode != 0 or not isinstance(text, str):
            why = str(text or data.get("error") or data.get("subtype") or _tail(res.stderr) or "error")
            raise LLMBackendError(
                f"claude reported an error ({data.get('subtype', 'unknown')}): {_tail(why)}",
                retriable=bool(_TRANSIENT.search(why)),
            )
        usage = data.get("usage") or {}
        tin = sum(
            _as_int(usage.get(k))
            for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        )
        model_usage = data.get("modelUsage") or {}
        model = next(iter(model_usage), "") if isinstance(model_usage, dict) else ""
        try:
            cost = float(data.get("total_cost_usd") or 0.0)
        except (TypeError, ValueError):
            cost = 0.0
        return LLMResponse(
            text=text,
            model=model or self.config.model or "claude-default",
            input_tokens=tin,
            output_tokens=_as_int(usage.get("output_tokens")),
            cost_usd=cost,
            latency_s=res.elapsed_s,
            backend=self.kind,
            raw=res.stdout,
            stderr=res.stderr,
            extra={"session_id": data.get("session_id"), "num_turns": data.get("num_turns")},
        )
