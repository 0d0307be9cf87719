"""Config, cache keys, atomic cache, cost ledger, and the resilience primitives."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from stratforge.explore.llm import (
    BudgetExceeded,
    CacheKeyParts,
    CircuitOpen,
    CostLedger,
    FakeClock,
    LLMConfig,
    LLMConfigError,
    LLMResponse,
    ResponseCache,
)
from stratforge.explore.llm.ledger import price_usd
from stratforge.explore.llm.resilience import Backoff, CircuitBreaker, RateLimiter, parse_retry_after


def _parts(**kw) -> CacheKeyParts:
    base = dict(kind="anthropic", model="m", prompt="p", system=None, temperature=0.7, max_tokens=100)
    base.update(kw)
    return CacheKeyParts(**base)


def _resp(text: str = "hello", **kw) -> LLMResponse:
    base = dict(
        text=text,
        model="m",
        input_tokens=10,
        output_tokens=5,
        cost_usd=0.01,
        latency_s=1.5,
        backend="anthropic",
    )
    base.update(kw)
    return LLMResponse(**base)


# ---- config -------------------------------------------------------------------------------------
def test_config_from_toml_table_and_overrides(tmp_path):
    f = tmp_path / "llm.toml"
    f.write_text(
        '[llm]\nbackend = "openai"\nmodel = "qwen2.5-coder"\nbase_url = "http://127.0.0.1:11434/v1"\n'
        "timeout_s = 90\nbudget_usd = 5.0\nextra_args = []\n"
    )
    cfg = LLMConfig.from_toml(f)
    assert (cfg.backend, cfg.model, cfg.timeout_s, cfg.budget_usd) == ("openai", "qwen2.5-coder", 90, 5.0)
    assert cfg.effective_base_url == "http://127.0.0.1:11434/v1"
    over = cfg.with_overrides(model="llama3", timeout_s=None, temperature=0.2)
    assert (over.model, over.timeout_s, over.temperature) == ("llama3", 90, 0.2)
    assert cfg.model == "qwen2.5-coder"  # original untouched


def test_config_top_level_toml_and_errors(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('backend = "claude"\nmodel = "sonnet"\n')
    assert LLMConfig.from_toml(f).backend == "claude"
    f.write_text('backend = "gpt"\n')
    with pytest.raises(LLMConfigError, match="unknown LLM backend"):
        LLMConfig.from_toml(f)
    f.write_text('backend = "codex"\nmodle = "x"\n')
    with pytest.raises(LLMConfigError, match="modle"):
        LLMConfig.from_toml(f)
    f.write_text("backend = [")
    with pytest.raises(LLMConfigError, match="invalid TOML"):
        LLMConfig.from_toml(f)
    with pytest.raises(LLMConfigError, match="not found"):
        LLMConfig.from_toml(tmp_path / "missing.toml")
    with pytest.raises(LLMConfigError, match="timeout_s"):
        LLMConfig(timeout_s=0)
    with pytest.raises(LLMConfigError, match="temperature"):
        LLMConfig(temperature=3.0)
    with pytest.raises(LLMConfigError, match="unknown LLM setting"):
        LLMConfig().with_overrides(nope=1)


# ---- cache keys ---------------------------------------------------------------------------------
def test_cache_key_changes_with_every_setting():
    base = _parts()
    variants = [
        _parts(kind="openai"),
        _parts(model="m2"),
        _parts(prompt="p2"),
        _parts(system="s"),
        _parts(temperature=0.70001),
        _parts(temperature=None),
        _parts(max_tokens=101),
        _parts(extra=(("base_url", "http://x"),)),
    ]
    keys = {v.key() for v in variants}
    assert base.key() not in keys and len(keys) == len(variants)
    assert _parts(system="").key() != _parts(system=None).key()
    # temperature 1 and 1.0 are the same setting
    assert _parts(temperature=1).key() == _parts(temperature=1.0).key()


def test_cache_key_is_stable_across_processes():
    """The key must not depend on hash randomisation or dict order: recompute in fresh interpreters."""
    code = (
        "from stratforge.explore.llm import CacheKeyParts;"
        "print(CacheKeyParts('codex','gpt-5','prompt é ✓','sys',0.2,8000,(('b','2'),('a','1'))).key())"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2")
    }
    here = CacheKeyParts("codex", "gpt-5", "prompt é ✓", "sys", 0.2, 8000, (("a", "1"), ("b", "2"))).key()
    assert outs == {here}
    assert len(here) == 64 and int(here, 16) >= 0


# ---- cache store --------------------------------------------------------------------------------
def test_cache_roundtrip_marks_cached_and_free(tmp_path):
    cache = ResponseCache(tmp_path)
    parts = _parts()
    key = parts.key()
    assert cache.get(key) is None and key not in cache
    path = cache.put(key, parts, _resp("answer ✓", raw="RAW", extra={"stop_reason": "end_turn"}))
    assert path.parent.name == key[:2]
    hit = cache.get(key)
    assert hit is not None and hit.cached and hit.cost_usd == 0.0
    assert (hit.text, hit.raw, hit.input_tokens, hit.output_tokens) == ("answer ✓", "RAW", 10, 5)
    assert hit.extra["original_cost_usd"] == 0.01 and hit.extra["stop_reason"] == "end_turn"
    record = json.loads(path.read_text())
    assert record["request"]["prompt"] == "p" and record["key"] == key
    assert cache.keys() == [key]


def test_cache_corrupt_entry_is_a_miss_and_no_temp_files_remain(tmp_path):
    cache = ResponseCache(tmp_path)
    parts = _parts()
    key = parts.key()
    cache.path_for(key).parent.mkdir(parents=True)
    cache.path_for(key).write_text('{"response": {"text": "trunc')
    assert cache.get(key) is None

    # many threads writing the same key: the file is always one complete record
    def writer(i: int) -> None:
        for _ in range(20):
            cache.put(key, parts, _resp(f"v{i}" * 200))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    hit = cache.get(key)
    assert hit is not None and hit.text in {f"v{i}" * 200 for i in range(4)}
    assert not list(tmp_path.rglob("*.tmp"))


# ---- ledger -------------------------------------------------------------------------------------
def test_price_and_budget_check(tmp_path):
    assert price_usd(1_000_000, 500_000, 3.0, 15.0) == pytest.approx(10.5)
    ledger = CostLedger(budget_usd=0.05, path=tmp_path / "ledger.jsonl")
    ledger.check()
    ledger.record(backend="anthropic", model="m", input_tokens=100, output_tokens=10, cost_usd=0.03)
    ledger.check()
    ledger.record(backend="openai", model="m", input_tokens=1, output_tokens=1, cost_usd=0.0, cached=True)
    ledger.record(backend="codex", model="m", input_tokens=200, output_tokens=20, cost_usd=0.025)
    with pytest.raises(BudgetExceeded, match="budget spent"):
        ledger.check()
    s = ledger.summary()
    assert s["calls"] == 2 and s["cache_hits"] == 1 and s["input_tokens"] == 300
    assert s["spent_usd"] == pytest.approx(0.055)
    # totals survive a restart (a resumed run cannot spend the budget twice)
    again = CostLedger(budget_usd=0.05, path=tmp_path / "ledger.jsonl")
    assert again.spent_usd == pytest.approx(0.055)
    with pytest.raises(BudgetExceeded):
        again.check()


# ---- resilience ---------------------------------------------------------------------------------
def test_parse_retry_after_seconds_date_and_garbage():
    now = 1_700_000_000.0
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(" 1.5 ", now) == 1.5
    assert parse_retry_after("-3", now) == 0.0
    date = format_datetime(datetime.fromtimestamp(now + 42, UTC), usegmt=True)
    assert parse_retry_after(date, now) == pytest.approx(42.0)
    past = format_datetime(datetime.fromtimestamp(now - 100, UTC), usegmt=True)
    assert parse_retry_after(past, now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None and parse_retry_after("", now) is None


def test_backoff_is_seeded_bounded_and_exponential():
    import random

    a = Backoff(2.0, 30.0, random.Random(7))
    b = Backoff(2.0, 30.0, random.Random(7))
    da = [a.delay(i) for i in range(8)]
    assert da == [b.delay(i) for i in range(8)]
    for i, d in enumerate(da):
        cap = min(30.0, 2.0 * 2**i)
        assert cap / 2 <= d <= cap
    assert max(da) <= 30.0


def test_rate_limiter_spaces_calls():
    clock = FakeClock()
    rl = RateLimiter(2.0, clock)
    assert rl.wait() == 0.0
    clock.advance(0.5)
    assert rl.wait() == pytest.approx(1.5)
    clock.advance(5.0)
    assert rl.wait() == 0.0


def test_circuit_breaker_open_half_open_close():
    clock = FakeClock()
    br = CircuitBreaker(threshold=3, cooldown_s=60, clock=clock)
    for _ in range(2):
        br.before_call()
        br.failure()
    assert br.state == "closed"
    br.failure()
    assert br.state == "open"
    with pytest.raises(CircuitOpen, match="3 consecutive"):
        br.before_call()
    clock.advance(60)
    assert br.state == "half-open"
    br.before_call()
    br.failure()  # the trial failed: open again for a full cool-down
    assert br.state == "open"
    clock.advance(61)
    br.before_call()
    br.success()
    assert br.state == "closed" and br.failures == 0
