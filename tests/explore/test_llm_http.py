"""Anthropic and OpenAI-compatible backends against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from stratforge.explore.llm import (
    BudgetExceeded,
    CacheMiss,
    CircuitOpen,
    CostLedger,
    FakeClock,
    LLMBackendError,
    LLMConfig,
    LLMConfigError,
    LLMTimeout,
    RateLimited,
    make_backend,
)

from .fakes.llm_fakes import Reply, anthropic_body, openai_body, scripted_server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _cfg(kind: str, url: str, tmp_path, **kw) -> LLMConfig:
    base = dict(
        backend=kind,
        model="test-model",
        base_url=url,
        timeout_s=5.0,
        cache_dir=str(tmp_path / "cache"),
        max_retries=3,
        backoff_base_s=1.0,
        backoff_max_s=8.0,
        seed=1,
    )
    base.update(kw)
    return LLMConfig(**base)


def test_anthropic_request_shape_usage_and_cost(tmp_path, clock, monkeypatch):
    monkeypatch.setenv("TEST_ANTHROPIC_KEY", "sk-test-123")
    with scripted_server(Reply(body=anthropic_body("## DRAFT\nhi", tin=1200, tout=300))) as srv:
        cfg = _cfg(
            "anthropic",
            srv.url,
            tmp_path,
            api_key_env="TEST_ANTHROPIC_KEY",
            temperature=0.5,
            max_tokens=777,
            price_per_mtok_in=3.0,
            price_per_mtok_out=15.0,
        )
        be = make_backend(cfg, clock=clock)
        r = be.complete("the prompt", system="be terse")
    req = srv.requests[0]
    assert req.path == "/v1/messages"
    # the official SDK chooses the auth header and API version; the key is sent, and only once
    sent = [v for k, v in req.headers.items() if "sk-test-123" in v]
    assert sent in (["sk-test-123"], ["Bearer sk-test-123"]) and "anthropic-version" in req.headers
    assert req.headers["x-stainless-retry-count"] == "0"  # the SDK's own retries are off
    assert req.body == {
        "model": "test-model",
        "max_tokens": 777,
        "temperature": 0.5,
        "system": "be terse",
        "messages": [{"role": "user", "content": "the prompt"}],
    }
    assert r.text == "## DRAFT\nhi" and (r.input_tokens, r.output_tokens) == (1200, 300)
    assert r.cost_usd == pytest.approx((1200 * 3 + 300 * 15) / 1e6)
    assert r.model == "claude-test" and not r.cached and r.extra["stop_reason"] == "end_turn"
    assert be.ledger.spent_usd == pytest.approx(r.cost_usd)


def test_anthropic_without_key_is_a_config_error_and_sends_nothing(tmp_path, clock, monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_ENV", raising=False)
    with scripted_server() as srv:
        be = make_backend(_cfg("anthropic", srv.url, tmp_path, api_key_env="NO_SUCH_KEY_ENV"), clock=clock)
        with pytest.raises(LLMConfigError, match=r"\$NO_SUCH_KEY_ENV"):
            be.complete("p")
    assert srv.requests == [] and be.breaker.failures == 0


def test_openai_compat_optional_bearer_key(tmp_path, clock, monkeypatch):
    monkeypatch.delenv("LOCAL_KEY", raising=False)
    with scripted_server(Reply(body=openai_body("one")), Reply(body=openai_body("two"))) as srv:
        be = make_backend(_cfg("openai", srv.url + "/v1", tmp_path, api_key_env="LOCAL_KEY"), clock=clock)
        assert be.complete("p1", system="sys").text == "one"
        monkeypatch.setenv("LOCAL_KEY", "k-9")
        assert be.complete("p2").text == "two"
    first, second = srv.requests
    assert first.path == "/v1/chat/completions" and "authorization" not in first.headers
    assert first.body["messages"] == [{"role": "system", "content": "sys"}, {"role": "user", "content": "p1"}]
    assert second.headers["authorization"] == "Bearer k-9"
    assert second.body["messages"] == [{"role": "user", "content": "p2"}]


def test_429_retry_after_seconds_is_honoured(tmp_path, clock):
    replies = [
        Reply(status=429, headers={"Retry-After": "7"}, body={"error": {"message": "slow down"}}),
        Reply(body=openai_body("ok")),
    ]
    with scripted_server(*replies) as srv:
        be = make_backend(_cfg("openai", srv.url, tmp_path), clock=clock)
        assert be.complete("p").text == "ok"
    assert clock.sleeps == [7.0] and len(srv.requests) == 2


def test_429_retry_after_http_date(tmp_path, clock):
    when = format_datetime(datetime.fromtimestamp(clock.now() + 30, UTC), usegmt=True)
    replies = [Reply(status=429, headers={"Retry-After": when}), Reply(body=openai_body("ok"))]
    with scripted_server(*replies) as srv:
        be = make_backend(_cfg("openai", srv.url, tmp_path), clock=clock)
        assert be.complete("p").text == "ok"
    assert clock.sleeps == [pytest.approx(30.0, abs=1.0)]


def test_429_asking_for_a_huge_wait_fails_fast_instead_of_hanging(tmp_path, clock):
    with scripted_server(Reply(status=429, headers={"Retry-After": "3600"})) as srv:
        be = make_backend(_cfg("openai", srv.url, tmp_path, max_retry_after_s=120), clock=clock)
        t0 = time.monotonic()
        with pytest.raises(RateLimited, match="3600s"):
            be.complete("p")
    # nothing slept, on the fake clock or the real one (a real 3600 s wait would blow the 600 s bound)
    assert clock.sleeps == [] and len(srv.requests) == 1 and time.monotonic() - t0 < 600


def test_500s_back_off_with_seeded_jitter_then_succeed(tmp_path):
    def run() -> list[float]:
        clock = FakeClock()
        replies = [Reply(status=500), Reply(status=503), Reply(status=529), Reply(body=openai_body("ok"))]
        with scripted_server(*replies) as srv:
            be = make_backend(_cfg("openai", srv.url, tmp_path, use_cache=False), clock=clock)
            assert be.complete("p").text == "ok"
            assert len(srv.requests) == 4
        return clock.sleeps

    sleeps = run()
    assert sleeps == run()  # same seed, same delays
    assert len(sleeps) == 3
    for i, s in enumerate(sleeps):
        assert 2**i / 2 <= s <= 2**i  # base 1s doubling, equal jitter


def test_retries_are_bounded(tmp_path, clock):
    with scripted_server(default=Reply(status=502, body="bad gateway")) as srv:
        be = make_backend(_cfg("openai", srv.url, tmp_path, max_retries=2, breaker_threshold=10), clock=clock)
        with pytest.raises(LLMBackendError, match="HTTP 502"):
            be.complete("p")
    assert len(srv.requests) == 3 and len(clock.sleeps) == 2


def test_client_errors_are_not_retried(tmp_path, clock):
    with scripted_server(Reply(status=401, body={"error": {"message": "invalid x-api-key"}})) as srv:
        be = make_backend(_cfg("openai", srv.url, tmp_path), clock=clock)
        with pytest.raises(LLMBackendError, match="invalid x-api-key") as ei:
            be.complete("p")
    assert ei.value.status == 401 and not ei.value.retriable and len(srv.requests) == 1


def test_malformed_json_is_retried_then_reported(tmp_path, clock):
    with scripted_server(default=Reply(body='{"choices": [ {"message": ')) as srv:
        be = make_backend(_cfg("anthropic", srv.url, tmp_path, max_retries=1), clock=clock)
        be.config.api_key_env = "PATH"  # any set variable works as a key for the local server
        with pytest.raises(LLMBackendError, match="malformed JSON"):
            be.complete("p")
    assert len(srv.requests) == 2


def test_wrong_shape_openai_response(tmp_path, clock):
    with scripted_server(default=Reply(body={"object": "list", "data": []})) as srv:
        be = make_backend(_cfg("openai", srv.url, tmp_path, max_retries=0), clock=clock)
        with pytest.raises(LLMBackendError, match="no choices"):
            be.complete("p")


def test_slow_server_times_out(tmp_path, clock):
    # The server answers after an hour: only the 0.5 s timeout can end the call within the 600 s bound.
    with scripted_server(default=Reply(body=openai_body("late"), delay_s=3600.0)) as srv:
        be = make_backend(_cfg("openai", srv.url, tmp_path, timeout_s=0.5, max_retries=0), clock=clock)
        t0 = time.monotonic()
        with pytest.raises(LLMTimeout):
            be.complete("p")
        assert time.monotonic() - t0 < 600


def test_dripping_body_hits_the_total_deadline(tmp_path, clock):
    # each byte arrives well within the per-read timeout, but the whole body would take ~an hour:
    # only the 1 s total deadline can end the call within the 600 s bound
    body = openai_body("x" * 36000)
    with scripted_server(default=Reply(body=body, drip_s=0.1)) as srv:
        be = make_backend(_cfg("openai", srv.url, tmp_path, timeout_s=1.0, max_retries=0), clock=clock)
        t0 = time.monotonic()
        with pytest.raises(LLMTimeout, match="exceeded"):
            be.complete("p")
        assert time.monotonic() - t0 < 600


def test_connection_refused_is_retriable_and_bounded(tmp_path, clock):
    with scripted_server() as srv:
        url = srv.url
    be = make_backend(_cfg("openai", url, tmp_path, max_retries=2), clock=clock)
    with pytest.raises(LLMBackendError, match="connection failed"):
        be.complete("p")
    assert be.attempts == 3


def test_circuit_breaker_stops_sending(tmp_path, clock):
    with scripted_server(default=Reply(status=500)) as srv:
        be = make_backend(
            _cfg("openai", srv.url, tmp_path, max_retries=10, breaker_threshold=3, breaker_cooldown_s=60),
            clock=clock,
        )
        with pytest.raises(LLMBackendError, match="HTTP 500"):
            be.complete("p")  # three failures open the circuit mid-retry: no 10 retries, the real error
        assert len(srv.requests) == 3 and be.ready_in() == pytest.approx(60)
        with pytest.raises(CircuitOpen) as ei:
            be.complete("another")
        assert len(srv.requests) == 3  # refused without sending
        assert ei.value.retry_at == pytest.approx(clock.now() + 60)
        clock.advance(61)
        srv.script.append(Reply(body=openai_body("recovered")))
        assert be.complete("another").text == "recovered"  # half-open trial succeeds
        assert be.breaker.state == "closed"


def test_min_interval_between_calls(tmp_path, clock):
    with scripted_server(default=Reply(body=openai_body("ok"))) as srv:
        be = make_backend(_cfg("openai", srv.url, tmp_path, min_interval_s=2.0, use_cache=False), clock=clock)
        be.complete("a")
        be.complete("b")
        clock.advance(0.5)
        be.complete("c")
    assert clock.sleeps == [2.0, 1.5]


def test_shared_budget_stops_every_backend_before_sending(tmp_path, clock, monkeypatch):
    monkeypatch.setenv("K", "x")
    ledger = CostLedger(budget_usd=0.001)
    with scripted_server(default=Reply(body=openai_body("ok", tin=1000, tout=1000))) as srv:
        kw = dict(price_per_mtok_in=1.0, price_per_mtok_out=1.0, api_key_env="K")
        a = make_backend(_cfg("openai", srv.url, tmp_path, **kw), ledger=ledger, clock=clock)
        b = make_backend(_cfg("anthropic", srv.url, tmp_path, **kw), ledger=ledger, clock=clock)
        a.complete("first")  # spends $0.002, over the cap
        with pytest.raises(BudgetExceeded):
            b.complete("second")
        with pytest.raises(BudgetExceeded):
            a.complete("third")
        assert len(srv.requests) == 1
        assert a.complete("first").cached  # cache hits stay free and allowed


def test_cache_hit_skips_the_server_and_replay_is_bit_for_bit(tmp_path, clock):
    text = "## DRAFT_STRATEGY_IDEA\nidea ✓\n```solidity\ncontract Strategy {}\n```\n"
    with scripted_server(Reply(body=openai_body(text))) as srv:
        cfg = _cfg("openai", srv.url, tmp_path, temperature=0.3)
        live = make_backend(cfg, clock=clock)
        first = live.complete("prompt", system="sys")
        second = live.complete("prompt", system="sys")
        assert len(srv.requests) == 1
    assert second.cached and second.text == first.text and second.key == first.key
    assert live.ledger.summary()["cache_hits"] == 1

    replay_cfg = cfg.with_overrides(backend="replay", replay_of="openai", base_url=srv.url)
    replay = make_backend(replay_cfg, clock=clock)
    again = replay.complete("prompt", system="sys")
    assert again.text.encode() == first.text.encode() and again.cached
    assert (again.input_tokens, again.output_tokens) == (first.input_tokens, first.output_tokens)
    with pytest.raises(CacheMiss, match="no recorded openai response"):
        replay.complete("prompt", system="other system")
    with pytest.raises(CacheMiss):
        make_backend(cfg.with_overrides(backend="replay", replay_of="openai", temperature=0.4)).complete(
            "prompt", system="sys"
        )


def test_replay_needs_replay_of(tmp_path):
    be = make_backend(LLMConfig(backend="replay", cache_dir=str(tmp_path)))
    with pytest.raises(LLMConfigError, match="replay_of"):
        be.complete("p")


def test_unwritable_cache_keeps_the_answer(tmp_path, clock):
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache directory should be")
    with scripted_server(Reply(body=openai_body("paid for"))) as srv:
        be = make_backend(_cfg("openai", srv.url, tmp_path), clock=clock)
        r = be.complete("p")
    assert r.text == "paid for" and "cache_error" in r.extra and be.ledger.calls == 1
