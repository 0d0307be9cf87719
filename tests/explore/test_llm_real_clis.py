"""The real `codex` and `claude` CLIs (pinned in package.json, installed by `npm ci` in
scripts/install.sh) against a local mock provider on 127.0.0.1, alone and inside the explore loop.

The CLIs are pointed at the mock with their own settings: codex gets a custom model provider
(``base_url`` -> ``-c model_providers...``), claude gets ``ANTHROPIC_BASE_URL``. HOME/CODEX_HOME are
throw-away directories, and every proxy variable points at a trap that refuses and records any
connection, so nothing can reach the internet. Waiting goes through a `FakeClock` and the loop's
runtime is measured on it: no assertion depends on how fast this machine is. The hang test's
timeout always expires (the mock never answers), and the success tests' timeout is far longer
than any answer from a local server takes.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stratforge.explore.llm import FakeClock, LLMBackendError, LLMConfig, LLMTimeout, make_backend
from stratforge.explore.llm_proposer import LLMProposer
from stratforge.explore.loop import ExploreConfig, Explorer, request_stop
from stratforge.explore.monitor import open_readonly

from .fakes.llm_fakes import recorded
from .fakes.mock_provider import Answer, Fail, Hang, MockProvider, mock_provider, trap_proxy

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "node_modules" / ".bin"
VALID = recorded("valid_response.md")
HIGH_DEMAND = "We're currently experiencing high demand, which may cause temporary errors."
SMALL = {"stages": (2, 4), "rescore_sims": 4, "holdout_sims": 2, "twin_check_sims": 2, "workers": 1}
MODELS = {"codex": "gpt-5.1-codex-mini", "claude": "claude-sonnet-4-5"}


def _cli(name: str) -> Path:
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the codex/claude CLIs come from npm (scripts/install.sh)")
    exe = BIN / name
    if not exe.exists():
        pytest.skip(f"{exe} missing: run `npm ci` (scripts/install.sh) to install the pinned {name} CLI")
    return exe


@pytest.fixture(params=["codex", "claude"])
def kind(request) -> str:
    _cli(request.param)
    return request.param


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """A home of its own and a trap for any connection that is not to 127.0.0.1."""
    for var in list(os.environ):
        if var.startswith(("ANTHROPIC_", "OPENAI_", "CODEX_", "CLAUDE_")) or var.lower().endswith("_proxy"):
            monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    (home / ".codex").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CODEX_HOME", str(home / ".codex"))
    monkeypatch.setenv("DISABLE_AUTOUPDATER", "1")
    monkeypatch.setenv("CODEX_API_KEY", "sk-mock-codex")
    monkeypatch.setenv("MOCK_ANTHROPIC_KEY", "sk-ant-mock")
    with trap_proxy() as trap:
        for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.setenv(var, trap.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
        yield trap  # whatever a CLI tries to reach besides the mock is refused there, never forwarded


def _config(kind: str, srv: MockProvider, tmp_path: Path, **kw) -> LLMConfig:
    base = dict(
        backend=kind,
        model=MODELS[kind],
        command=str(_cli(kind)),
        base_url=srv.url + ("/v1" if kind == "codex" else ""),
        api_key_env="MOCK_ANTHROPIC_KEY" if kind == "claude" else None,
        timeout_s=120.0,
        max_retries=2,
        backoff_base_s=4.0,
        breaker_threshold=5,
        breaker_cooldown_s=120.0,
        cache_dir=str(tmp_path / "cache"),
    )
    base.update(kw)
    return LLMConfig(**base)


def _explorer(kind: str, srv: MockProvider, tmp_path: Path, clock: FakeClock, **kw) -> Explorer:
    pytest.importorskip("pyrevm")  # scoring runs in the EVM
    llm_kw = {k: kw.pop(k) for k in list(kw) if k in LLMConfig.__dataclass_fields__}
    backend = make_backend(_config(kind, srv, tmp_path, **llm_kw), clock=clock)
    config = ExploreConfig(state_dir=tmp_path / "run", **{**SMALL, **kw})
    return Explorer(config, proposer=LLMProposer(backend), clock=clock.now)


def _iterations(tmp_path: Path):
    return [i for i in open_readonly(tmp_path / "run").iterations(finished_only=True) if i.number > 0]


# -- the backends alone -------------------------------------------------------------------------


def test_real_cli_answers_with_usage_and_cost(kind, isolated, tmp_path):
    with mock_provider(Answer(VALID, input_tokens=4000, output_tokens=1500)) as srv:
        be = make_backend(_config(kind, srv, tmp_path), clock=FakeClock())
        r = be.complete("Design a fee strategy.", system="You are a quant.")
        calls = srv.model_calls()
    assert r.text == VALID and (r.input_tokens, r.output_tokens) == (4000, 1500)
    assert len(calls) == 1  # no title call, no retries
    if kind == "codex":
        assert (
            calls[0].path == "/v1/responses" and calls[0].headers["authorization"] == "Bearer sk-mock-codex"
        )
        # codex reports no cost: the shipped price table prices gpt-5.1-codex-mini at $0.25/$2 per MTok
        assert r.cost_usd == pytest.approx((4000 * 0.25 + 1500 * 2.0) / 1e6)
        assert not list((Path(os.environ["CODEX_HOME"])).glob("sessions/**/*.jsonl"))  # --ephemeral
    else:
        body = calls[0].body
        assert calls[0].headers["x-api-key"] == "sk-ant-mock" and body["tools"] == []  # --tools ""
        assert (
            body["system"][-1]["text"].endswith("You are a quant.")
            if isinstance(body["system"], list)
            else True
        )
        # the CLI's own total_cost_usd, consistent with its token counts at $3/$15 per MTok
        assert r.cost_usd == pytest.approx((4000 * 3 + 1500 * 15) / 1e6)
        assert r.extra["cost_from"] == "reported"
        assert not (Path(os.environ["HOME"]) / ".claude" / "projects").exists()  # --no-session-persistence


def test_real_cli_persistent_500_is_transient_and_the_final_error_is_reported(kind, isolated, tmp_path):
    clock = FakeClock()
    with mock_provider(default=Fail(500, HIGH_DEMAND)) as srv:
        be = make_backend(_config(kind, srv, tmp_path, breaker_threshold=10), clock=clock)
        with pytest.raises(LLMBackendError) as ei:
            be.complete("p")
        calls = len(srv.model_calls())
    assert "high demand" in str(ei.value) and "Model metadata" not in str(ei.value)
    assert ei.value.retriable and not ei.value.fatal
    assert calls == 3 and len(clock.sleeps) == 2  # max_retries=2, the CLI's own retries are off


def test_real_cli_429_is_retried_after_a_wait(kind, isolated, tmp_path):
    clock = FakeClock()
    script = [
        Fail(429, "rate limited", headers={"retry-after": "7"}, error_type="rate_limit_error"),
        Answer(VALID),
    ]
    with mock_provider(*script) as srv:
        r = make_backend(_config(kind, srv, tmp_path), clock=clock).complete("p")
        calls = len(srv.model_calls())
    assert r.text == VALID and calls == 2
    # the CLIs do not pass Retry-After on, so the wait is our backoff: 4 s base, equal jitter
    assert len(clock.sleeps) == 1 and 2.0 <= clock.sleeps[0] <= 4.0


def test_real_cli_401_is_fatal_at_once(kind, isolated, tmp_path):
    clock = FakeClock()
    with mock_provider(default=Fail(401, "invalid x-api-key", error_type="authentication_error")) as srv:
        be = make_backend(_config(kind, srv, tmp_path), clock=clock)
        t0 = time.monotonic()
        with pytest.raises(LLMBackendError) as ei:
            be.complete("p")
        calls = len(srv.model_calls())
    assert ei.value.fatal and not ei.value.retriable and ei.value.status == 401
    assert calls == 1 and clock.sleeps == []
    assert time.monotonic() - t0 < 60  # not minutes of the CLI retrying a bad key


def test_real_cli_hang_is_cut_off_and_not_retried(kind, isolated, tmp_path):
    clock = FakeClock()
    with mock_provider(default=Hang()) as srv:
        be = make_backend(_config(kind, srv, tmp_path, timeout_s=3.0), clock=clock)
        with pytest.raises(LLMTimeout, match="process group killed"):
            be.complete("p")
        calls = len(srv.model_calls())
    assert calls == 1 and clock.sleeps == [] and be.breaker.failures == 1


def test_codex_without_credentials_fails_before_running(isolated, tmp_path, monkeypatch):
    monkeypatch.delenv("CODEX_API_KEY")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-ignored-by-codex-exec")
    with mock_provider(Answer(VALID)) as srv:
        cfg = _config("codex", srv, tmp_path, base_url=None)
        with pytest.raises(Exception, match="CODEX_API_KEY.*codex login"):
            make_backend(cfg, clock=FakeClock()).complete("p")
        assert srv.model_calls() == []


# -- inside the explore loop --------------------------------------------------------------------


def test_loop_one_scored_iteration(kind, isolated, tmp_path):
    clock = FakeClock(wall=time.time())
    with mock_provider(default=Answer(VALID, input_tokens=5000, output_tokens=2000)) as srv:
        reason = _explorer(kind, srv, tmp_path, clock, max_iterations=1).run()
        prompt_sent = srv.model_calls()[0].body
    assert "max iterations" in reason
    (it,) = _iterations(tmp_path)
    assert it.status == "evaluated" and it.edge is not None and it.edge > 0
    assert it.prompt and "DRAFT_STRATEGY_IDEA" in it.prompt and it.response == VALID
    assert (it.tokens_in, it.tokens_out) == (5000, 2000) and it.cost_usd > 0
    assert "DRAFT_STRATEGY_IDEA" in str(prompt_sent)


@pytest.mark.slow  # a whole explore run per CLI (EVM scoring, real CLI calls)
def test_loop_waits_out_a_dead_provider_and_never_spins(kind, isolated, tmp_path):
    clock = FakeClock(wall=time.time())
    with mock_provider(default=Fail(500, HIGH_DEMAND)) as srv:
        explorer = _explorer(
            kind,
            srv,
            tmp_path,
            clock,
            max_iterations=1000,
            max_runtime_s=600,
            max_retries=1,
            breaker_threshold=3,
        )
        reason = explorer.run()
        calls = len(srv.model_calls())
    assert "max runtime" in reason
    its = _iterations(tmp_path)
    waited = sum(clock.sleeps)
    # 10 (fake) minutes against a dead provider: two iterations open the breaker (2 + 1 attempts),
    # then one trial per 120 s cool-down: a handful of iterations, never hundreds
    assert 590 <= waited <= 700
    assert len(its) <= 2 + 600 / 120 + 1 and calls <= 3 + 600 / 120 + 1
    assert all(i.status == "failed" and "high demand" in i.errors[0] for i in its)
    store = open_readonly(tmp_path / "run")
    states = [e.data["state"] for e in store.events(kind="llm-provider")]
    assert states[:2] == ["open", "half-open"] and states.count("open") >= 3
    assert "closed" not in states


@pytest.mark.slow  # a whole explore run per CLI (EVM scoring, real CLI calls)
def test_loop_retries_a_429_then_scores(kind, isolated, tmp_path):
    clock = FakeClock(wall=time.time())
    script = [Fail(429, "slow down", headers={"retry-after": "5"}, error_type="rate_limit_error")]
    with mock_provider(*script, default=Answer(VALID)) as srv:
        reason = _explorer(kind, srv, tmp_path, clock, max_iterations=1).run()
        calls = len(srv.model_calls())
    (it,) = _iterations(tmp_path)
    assert "max iterations" in reason and it.status == "evaluated" and calls == 2
    assert len(clock.sleeps) == 1  # one backoff wait inside the iteration, no breaker wait


@pytest.mark.slow  # a whole explore run per CLI (EVM scoring, real CLI calls)
def test_loop_stops_on_a_bad_key_with_a_clear_reason(kind, isolated, tmp_path):
    clock = FakeClock(wall=time.time())
    with mock_provider(default=Fail(401, "invalid x-api-key", error_type="authentication_error")) as srv:
        reason = _explorer(kind, srv, tmp_path, clock, max_iterations=50).run()
        calls = len(srv.model_calls())
    assert "will not fix" in reason and "401" in reason or "Invalid API key" in reason
    assert calls == 1 and len(_iterations(tmp_path)) == 1 and clock.sleeps == []


@pytest.mark.slow  # a whole explore run per CLI (EVM scoring, real CLI calls)
def test_loop_hang_costs_one_timeout_then_goes_on(kind, isolated, tmp_path):
    clock = FakeClock(wall=time.time())
    with mock_provider(Hang(), default=Answer(VALID)) as srv:
        reason = _explorer(kind, srv, tmp_path, clock, max_iterations=2, timeout_s=3.0).run()
        calls = len(srv.model_calls())
    first, second = _iterations(tmp_path)
    assert "max iterations" in reason and calls == 2
    assert first.status == "failed" and "timeout" in first.errors[0]
    assert second.status == "evaluated"


@pytest.mark.slow  # a whole explore run per CLI (EVM scoring, real CLI calls)
def test_loop_answer_without_code_is_recorded_and_the_loop_goes_on(kind, isolated, tmp_path):
    clock = FakeClock(wall=time.time())
    prose = "I would widen the fee when volatility rises, but here is no code."
    with mock_provider(default=Answer(prose)) as srv:
        reason = _explorer(kind, srv, tmp_path, clock, max_iterations=2).run()
    its = _iterations(tmp_path)
    assert "max iterations" in reason and len(its) == 2 and clock.sleeps == []
    assert all(
        i.status == "failed" and "no Solidity code" in i.errors[0] and i.response == prose for i in its
    )
    assert all(i.prompt and "DRAFT_STRATEGY_IDEA" in i.prompt for i in its)  # it was sent: it is kept


def test_status_and_monitor_show_the_open_breaker_and_the_wait(isolated, tmp_path):
    from stratforge.explore.cli import app

    _cli("codex")
    clock = FakeClock(wall=time.time())
    seen: dict[str, str] = {}
    runner = CliRunner()
    run = tmp_path / "run"

    def on_event(kind: str, message: str) -> None:
        if kind == "llm-provider" and "status" not in seen and "waiting" in message:
            seen["status"] = runner.invoke(app, ["status", "--state-dir", str(run)]).output
            seen["monitor"] = runner.invoke(app, ["monitor", "--once", "--state-dir", str(run)]).output
            request_stop(run)

    with mock_provider(default=Fail(500, HIGH_DEMAND)) as srv:
        explorer = _explorer("codex", srv, tmp_path, clock, max_iterations=100)
        explorer.on_event = on_event
        reason = explorer.run()
    assert "stop requested" in reason
    for out in (seen["status"], seen["monitor"]):
        flat = " ".join(out.split())
        assert "open until" in flat and "s left" in flat and "circuit breaker" in flat
        assert "high demand" in flat
    # nothing was sent while waiting, and no prompt file exists for an iteration that sent nothing
    store = open_readonly(run)
    assert all(i.prompt for i in store.iterations(finished_only=True) if i.number > 0)
