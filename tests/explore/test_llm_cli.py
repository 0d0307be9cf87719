"""codex / claude CLI backends against fake executables written into a temp dir first on PATH."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from stratforge.explore.llm import (
    FakeClock,
    LLMBackendError,
    LLMConfig,
    LLMConfigError,
    LLMTimeout,
    make_backend,
)
from stratforge.explore.llm.cli_backends import parse_codex_jsonl

from .fakes.llm_fakes import pid_alive, prepend_path, recorded, write_fake_cli

VALID = recorded("valid_response.md")


def _cfg(kind: str, tmp_path: Path, **kw) -> LLMConfig:
    base = dict(backend=kind, model="", timeout_s=10.0, cache_dir=str(tmp_path / "cache"), max_retries=0)
    base.update(kw)
    return LLMConfig(**base)


@pytest.fixture
def bindir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "bin"
    d.mkdir()
    prepend_path(monkeypatch, d)
    monkeypatch.setenv("CODEX_API_KEY", "sk-test")
    return d


def test_codex_jsonl_parsing_takes_last_agent_message_and_sums_usage():
    tr = parse_codex_jsonl(recorded("codex_ok.jsonl") + "not json\n[1]\n")
    assert tr.text == VALID
    assert (tr.input_tokens, tr.cached_input_tokens, tr.output_tokens) == (5120, 1024, 987)
    assert tr.thread_id and tr.bad_lines == 2 and tr.errors == []
    legacy = "\n".join(
        json.dumps(e)
        for e in [
            {"type": "item.completed", "item": {"item_type": "assistant_message", "text": "old"}},
            {"type": "turn.ended", "usage": {"input_tokens": 3, "output_tokens": 4}},
            {"type": "turn.ended", "usage": {"input_tokens": 1, "output_tokens": "x"}},
        ]
    )
    old = parse_codex_jsonl(legacy)
    assert (old.text, old.input_tokens, old.output_tokens) == ("old", 4, 4)


def test_codex_success_prompt_on_stdin_and_cost_from_prices(tmp_path, bindir):
    write_fake_cli(bindir, "codex", stdout=recorded("codex_ok.jsonl"), stderr="codex v0 banner\n")
    cfg = _cfg(
        "codex",
        tmp_path,
        model="gpt-5-codex",
        price_per_mtok_in=1.25,
        price_per_mtok_out=10.0,
        extra_args=["-c", "model_reasoning_effort=high"],
    )
    be = make_backend(cfg, clock=FakeClock())
    r = be.complete("Design a fee strategy.", system="You are a quant.")
    assert r.text == VALID and r.backend == "codex" and r.model == "gpt-5-codex"
    assert (r.input_tokens, r.output_tokens) == (5120, 987)
    assert r.cost_usd == pytest.approx((5120 * 1.25 + 987 * 10.0) / 1e6)
    assert r.stderr == "codex v0 banner\n" and r.raw.count("\n") == 6
    assert (bindir / "codex.stdin").read_text() == "You are a quant.\n\nDesign a fee strategy."
    argv = (bindir / "codex.argv").read_text().split("\n")[:-1]
    assert argv == [
        "exec",
        "--json",
        "--skip-git-repo-check",
        "--ephemeral",
        "--sandbox",
        "read-only",
        "--model",
        "gpt-5-codex",
        "-c",
        "model_reasoning_effort=high",
        "-",
    ]
    cwd = (bindir / "codex.cwd").read_text().strip()
    assert "stratforge-llm-" in cwd and not Path(cwd).exists()  # a throw-away empty directory
    # a second identical call is served from the cache without running codex again
    assert be.complete("Design a fee strategy.", system="You are a quant.").cached
    assert len((bindir / "codex.calls").read_text().split()) == 1


def test_codex_nonzero_exit_reports_stderr_and_is_not_retried(tmp_path, bindir):
    write_fake_cli(bindir, "codex", stderr="Error: Not logged in. Run codex login.\n", exit_code=2)
    be = make_backend(_cfg("codex", tmp_path, max_retries=3), clock=FakeClock())
    with pytest.raises(LLMBackendError, match=r"exit code 2.*Not logged in"):
        be.complete("p")
    assert len((bindir / "codex.calls").read_text().split()) == 1


def test_codex_rate_limit_events_are_retried_with_backoff(tmp_path, bindir):
    write_fake_cli(bindir, "codex", stdout=recorded("codex_rate_limited.jsonl"), exit_code=1)
    # an explicit sandbox choice replaces the read-only default
    cfg_args = ["--sandbox", "workspace-write"]
    clock = FakeClock()
    be = make_backend(
        _cfg("codex", tmp_path, max_retries=2, backoff_base_s=5, extra_args=cfg_args), clock=clock
    )
    with pytest.raises(LLMBackendError, match="429 Too Many Requests"):
        be.complete("p")
    assert len((bindir / "codex.calls").read_text().split()) == 3
    assert len(clock.sleeps) == 2 and all(s >= 2.5 for s in clock.sleeps)
    argv = (bindir / "codex.argv").read_text().split("\n")[:-1]
    assert argv.count("--sandbox") == 1 and "workspace-write" in argv


def test_codex_exit_zero_without_answer_is_an_error(tmp_path, bindir):
    write_fake_cli(bindir, "codex", stdout='{"type":"thread.started","thread_id":"t"}\n')
    be = make_backend(_cfg("codex", tmp_path), clock=FakeClock())
    with pytest.raises(LLMBackendError, match="no agent message"):
        be.complete("p")


def test_hanging_cli_is_killed_with_its_children(tmp_path, bindir):
    # The fake CLI would hang for an hour; the 1 s timeout must end the call long before that (the
    # 600 s bound leaves any machine, however loaded, room to start the process and kill its group).
    write_fake_cli(bindir, "codex", stdout=recorded("codex_ok.jsonl"), hang_s=3600, record_dir=tmp_path)
    be = make_backend(_cfg("codex", tmp_path, timeout_s=1.0), clock=FakeClock())
    t0 = time.monotonic()
    with pytest.raises(LLMTimeout, match="process group killed"):
        be.complete("p")
    assert time.monotonic() - t0 < 600
    child = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 600
    while pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(child)


def test_missing_executable_is_a_config_error(tmp_path, bindir):
    be = make_backend(_cfg("codex", tmp_path, command="codex-does-not-exist"), clock=FakeClock())
    with pytest.raises(LLMConfigError, match="not found on PATH"):
        be.complete("p")


def test_claude_success_usage_cost_and_system_prompt(tmp_path, bindir):
    write_fake_cli(bindir, "claude", stdout=recorded("claude_ok.json"))
    be = make_backend(_cfg("claude", tmp_path, model="sonnet"), clock=FakeClock())
    r = be.complete("Design a fee strategy.", system="You are a quant.")
    assert r.text == VALID and r.model == "claude-sonnet-4-5"
    assert (r.input_tokens, r.output_tokens) == (5000, 1100)
    assert r.cost_usd == pytest.approx(0.0421)  # reported by the CLI, no prices configured
    assert be.ledger.spent_usd == pytest.approx(0.0421)
    argv = (bindir / "claude.argv").read_text().split("\n")[:-1]
    assert argv == ["-p", "--output-format", "json", "--no-session-persistence", "--tools", ""] + [
        "--model",
        "sonnet",
        "--system-prompt",
        "You are a quant.",
    ]
    assert (bindir / "claude.stdin").read_text() == "Design a fee strategy."


def test_claude_event_list_output(tmp_path, bindir):
    events = [{"type": "system", "subtype": "init"}, json.loads(recorded("claude_ok.json"))]
    write_fake_cli(bindir, "claude", stdout=json.dumps(events))
    r = make_backend(_cfg("claude", tmp_path), clock=FakeClock()).complete("p")
    assert r.text == VALID


def test_claude_error_result_and_garbage(tmp_path, bindir):
    write_fake_cli(bindir, "claude", stdout=recorded("claude_auth_error.json"), exit_code=1)
    be = make_backend(_cfg("claude", tmp_path, max_retries=2), clock=FakeClock())
    with pytest.raises(LLMBackendError, match="401 invalid x-api-key") as ei:
        be.complete("p")
    assert not ei.value.retriable and len((bindir / "claude.calls").read_text().split()) == 1

    write_fake_cli(bindir, "claude", stdout="Welcome to Claude!\n")
    with pytest.raises(LLMBackendError, match="invalid JSON"):
        make_backend(_cfg("claude", tmp_path), clock=FakeClock()).complete("p")

    write_fake_cli(bindir, "claude", stderr="fatal: segfault\n", exit_code=139)
    with pytest.raises(LLMBackendError, match="segfault"):
        make_backend(_cfg("claude", tmp_path), clock=FakeClock()).complete("p")
