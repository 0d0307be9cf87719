"""Prices, reported costs, budgets that must be knowable, request shapes per model family, errors
that will not heal, and settings that must (not) reach the cache key. Local peers only."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from stratforge.explore.llm import FakeClock, LLMBackendError, LLMConfig, LLMConfigError, make_backend
from stratforge.explore.llm.cli_backends import classify_cli_error
from stratforge.explore.llm.prices import Price, load_prices
from stratforge.explore.llm_proposer import LLMProposer, budget_cost_problem

from .fakes.llm_fakes import prepend_path, recorded, write_fake_cli
from .fakes.mock_provider import Answer, Fail, mock_provider


def _http(kind: str, url: str, tmp_path: Path, **kw) -> LLMConfig:
    base = dict(backend=kind, model="test-model", base_url=url, timeout_s=30.0, max_retries=0)
    base["cache_dir"] = str(tmp_path / "cache")
    base.update(kw)
    return LLMConfig(**base)


def test_price_table_is_dated_and_matches_provider_spellings(tmp_path):
    table = load_prices()
    assert table.as_of == "2026-12-01"
    sonnet = table.lookup("claude-sonnet-4-5")
    assert sonnet == Price(3.0, 15.0, 0.3, 3.75)
    assert table.lookup("claude-sonnet-4-5-20250929") == sonnet  # dated release id
    assert table.lookup("anthropic/claude-sonnet-4-5") == sonnet  # OpenRouter prefix
    assert table.lookup("gpt-4o-2024-08-06") == table.lookup("gpt-4o")
    assert table.lookup("llama3:8b") is None
    # 1M input of which 400k cache reads, 100k output
    assert sonnet.cost_usd(1_000_000, 100_000, cache_read_tokens=400_000) == pytest.approx(
        (600_000 * 3 + 400_000 * 0.3 + 100_000 * 15) / 1e6
    )
    override = tmp_path / "prices.toml"
    override.write_text('as_of = "2027-01-01"\n[models."claude-sonnet-4-5"]\ninput = 1.0\noutput = 2.0\n')
    mine = load_prices(str(override))
    assert mine.lookup("claude-sonnet-4-5") == Price(1.0, 2.0) and mine.lookup("gpt-5") is not None
    with pytest.raises(LLMConfigError, match="price file not found"):
        load_prices(str(tmp_path / "missing.toml"))


def test_cost_from_the_price_table_when_nothing_is_configured(tmp_path, monkeypatch):
    monkeypatch.setenv("K", "sk")
    with mock_provider(Answer("hi", input_tokens=2000, output_tokens=1000)) as srv:
        cfg = _http("anthropic", srv.url, tmp_path, model="claude-haiku-4-5-20251001", api_key_env="K")
        r = make_backend(cfg, clock=FakeClock()).complete("p")
    assert (
        r.cost_usd == pytest.approx((2000 * 1.0 + 1000 * 5.0) / 1e6) and r.extra["cost_from"] == "price table"
    )


def test_a_reported_cost_is_taken_as_is(tmp_path):
    with mock_provider(Answer("hi", input_tokens=10, output_tokens=10, cost=0.0123)) as srv:
        r = make_backend(_http("openai", srv.url + "/v1", tmp_path), clock=FakeClock()).complete("p")
    assert r.cost_usd == pytest.approx(0.0123) and r.extra["cost_from"] == "reported"


def test_gpt5_and_o_series_get_max_completion_tokens_local_models_max_tokens(tmp_path):
    with mock_provider(default=Answer("ok")) as srv:
        for model in ["gpt-5.1", "o3", "qwen2.5-coder:14b"]:
            cfg = _http("openai", srv.url + "/v1", tmp_path, model=model, max_tokens=1234, use_cache=False)
            make_backend(cfg, clock=FakeClock()).complete("p")
        bodies = [s.body for s in srv.model_calls()]
    assert [b.get("max_completion_tokens") for b in bodies] == [1234, 1234, None]
    assert [b.get("max_tokens") for b in bodies] == [None, None, 1234]


def test_an_empty_model_is_a_clear_error_not_an_empty_string_on_the_wire():
    for kind in ("openai", "anthropic"):
        with pytest.raises(LLMConfigError, match="needs a model name"):
            LLMConfig(backend=kind, model="  ")


def test_anthropic_honours_anthropic_base_url(tmp_path, monkeypatch):
    monkeypatch.setenv("K", "sk")
    with mock_provider(Answer("via the proxy")) as srv:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", srv.url)
        cfg = _http("anthropic", None, tmp_path, api_key_env="K")  # type: ignore[arg-type]
        assert make_backend(cfg, clock=FakeClock()).complete("p").text == "via the proxy"
        assert [s.path for s in srv.model_calls()] == ["/v1/messages"]


def test_401_403_404_are_fatal_and_400_on_every_request_becomes_fatal(tmp_path):
    for status in (401, 403, 404):
        with mock_provider(default=Fail(status, "model `nope` does not exist")) as srv:
            be = make_backend(_http("openai", srv.url + "/v1", tmp_path, max_retries=3), clock=FakeClock())
            with pytest.raises(LLMBackendError) as ei:
                be.complete("p")
            assert ei.value.fatal and len(srv.model_calls()) == 1
    with mock_provider(default=Fail(400, "max_tokens is not supported")) as srv:
        be = make_backend(_http("openai", srv.url + "/v1", tmp_path, breaker_threshold=3), clock=FakeClock())
        outcomes = []
        for i in range(3):
            with pytest.raises(LLMBackendError) as ei:
                be.complete(f"p{i}")
            outcomes.append(ei.value.fatal)
    assert outcomes == [False, False, True] and "all refused" in str(ei.value)


def test_cli_error_wording_is_classified():
    high = classify_cli_error(
        "codex failed (exit code 1): We’re currently experiencing high demand, which may "
        "cause temporary errors."
    )
    assert high.retriable and not high.fatal
    auth = classify_cli_error("codex failed: unexpected status 401 Unauthorized: invalid key, url: http://x")
    assert auth.fatal and auth.status == 401 and not auth.retriable
    limit = classify_cli_error("codex failed: exceeded retry limit, last status: 429 Too Many Requests")
    assert limit.retriable and limit.status == 429
    login = classify_cli_error("codex failed (exit code 2): Error: Not logged in. Run codex login.")
    assert login.fatal
    flag = classify_cli_error("codex failed (exit code 2): error: unexpected argument '--foo' found")
    assert not flag.retriable and not flag.fatal


def test_budgeted_runs_need_a_knowable_cost(tmp_path, monkeypatch):
    monkeypatch.setenv("CODEX_API_KEY", "x")

    def problem(**kw):
        return budget_cost_problem(make_backend(LLMConfig(**kw)), 5.0)

    assert "price table has no entry for mystery-model" in problem(backend="codex", model="mystery-model")
    assert "CLI's default model" in problem(backend="codex")
    assert problem(backend="codex", model="gpt-5.1-codex-mini") is None  # priced
    assert problem(backend="claude") is None  # the CLI reports total_cost_usd
    assert problem(backend="openai", model="llama3", base_url="http://127.0.0.1:1/v1") is not None
    assert problem(backend="openai", model="llama3", base_url="http://x/v1", price_per_mtok_in=0.1) is None
    assert problem(backend="openai", model="any", base_url="https://openrouter.ai/api/v1") is None
    assert budget_cost_problem(make_backend(LLMConfig(backend="codex", model="mystery")), None) is None


def test_explore_run_refuses_an_unknowable_budget_before_creating_the_run(tmp_path, monkeypatch):
    from stratforge.explore.cli import app

    monkeypatch.setenv("CODEX_API_KEY", "x")
    run = tmp_path / "run"
    args = ["run", "--state-dir", str(run), "--backend", "codex", "--model", "mystery-model"]
    res = CliRunner().invoke(app, [*args, "--budget-usd", "2", "--timeout", "30"])
    assert res.exit_code == 2 and "needs a known cost" in " ".join(res.output.split())
    assert "Traceback" not in res.output and not run.exists()
    res = CliRunner().invoke(app, ["run", "--state-dir", str(run), "--timeout", "30"])
    assert res.exit_code == 2 and "--timeout applies to LLM calls" in " ".join(res.output.split())


def test_cli_backends_keep_ignored_sampling_settings_out_of_the_cache_key():
    a = make_backend(LLMConfig(backend="claude", max_tokens=100, temperature=0.1))
    b = make_backend(LLMConfig(backend="claude", max_tokens=9000, temperature=0.9))
    assert a.cache_key("p") == b.cache_key("p")
    c = make_backend(LLMConfig(backend="openai", model="m", base_url="http://h/v1", max_tokens=100))
    d = make_backend(LLMConfig(backend="openai", model="m", base_url="http://h/v1", max_tokens=9000))
    assert c.cache_key("p") != d.cache_key("p")
    e = make_backend(LLMConfig(backend="codex", model="m", base_url="http://one/v1"))
    f = make_backend(LLMConfig(backend="codex", model="m", base_url="http://two/v1"))
    assert e.cache_key("p") != f.cache_key("p")  # a model name is relative to its server


def test_the_llm_cache_and_ledger_live_in_the_runs_state_directory(tmp_path, monkeypatch):
    from stratforge.explore.loop import ExploreConfig

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CODEX_API_KEY", "x")
    config = ExploreConfig(state_dir=tmp_path / "run", llm={"backend": "codex", "model": "gpt-5.1-codex"})
    proposer = LLMProposer.from_config(config, store=None)  # type: ignore[arg-type]
    assert (
        proposer.backend.cache is not None and proposer.backend.cache.root == tmp_path / "run" / "llm_cache"
    )
    assert proposer.backend.ledger.path == tmp_path / "run" / "llm_ledger.jsonl"
    assert LLMConfig().cache_dir is None and not (tmp_path / ".stratforge").exists()


def test_codex_sandbox_given_as_one_argument_is_recognised(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    prepend_path(monkeypatch, bindir)
    monkeypatch.setenv("CODEX_API_KEY", "x")
    write_fake_cli(bindir, "codex", stdout=recorded("codex_ok.jsonl"))
    cfg = LLMConfig(backend="codex", extra_args=["--sandbox=workspace-write"], cache_dir=None)
    make_backend(cfg, clock=FakeClock()).complete("p")
    argv = (bindir / "codex.argv").read_text().split("\n")[:-1]
    assert "--sandbox" not in argv and "--sandbox=workspace-write" in argv and "--ephemeral" in argv


def test_explore_run_without_codex_credentials_fails_before_starting(tmp_path, monkeypatch):
    from stratforge.explore.cli import app

    monkeypatch.delenv("CODEX_API_KEY", raising=False)
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "empty-codex-home"))
    run = tmp_path / "run"
    res = CliRunner().invoke(
        app, ["run", "--state-dir", str(run), "--backend", "codex", "--model", "gpt-5.1"]
    )
    flat = " ".join(res.output.split())
    assert res.exit_code == 2 and "CODEX_API_KEY" in flat and "codex login" in flat and not run.exists()
