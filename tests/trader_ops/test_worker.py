"""The worker end to end: a replayed hour of four markets, safety rules on replayed books, SIGKILL recovery."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from stratforge.trader.markets.replay import read_session, write_session
from stratforge.trader.markets.synthetic import SyntheticConfig, generate_session
from stratforge.trader.model import init_phase5
from stratforge.trader.replay_runner import run_replay
from stratforge.trader.safety import SafetyConfig, kill_switch_path
from stratforge.trader.storage import Store, Trade
from stratforge.trader.worker import WorkerConfig

SAFETY_EXITS = {"window_end", "max_age", "stale_book", "take_profit", "stop_loss"}
ALL_EXITS = SAFETY_EXITS | {"settlement", "signal", "shutdown"}


@pytest.fixture(scope="module")
def hour(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One hour (4 windows) of BTC/ETH/SOL/XRP as a replay file, and a model directory."""
    root = tmp_path_factory.mktemp("hour")
    replay = root / "hour.jsonl"
    write_session(generate_session(11, SyntheticConfig(n_windows=4)), replay)
    model = root / "model"
    init_phase5(0).save(model)
    return {"replay": replay, "model": model, "session": read_session(replay)}


class AlwaysUp:
    """Buys UP whenever flat and never sells: only safety rules and settlement can close."""

    def action_probs(self, features, history=None):
        n = len(np.atleast_2d(features))
        return np.tile(np.array([0.0, 1.0, 0.0], dtype=np.float32), (n, 1))


def _cli(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "stratforge.cli", "trader", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _trades(data_dir: Path) -> list[Trade]:
    store = Store(data_dir=data_dir)
    rows = store.trades()
    store.close()
    return sorted(rows, key=lambda t: t.trade_key)


def test_safety_rules_on_replayed_markets(hour: dict, tmp_path: Path) -> None:
    session = read_session(hour["replay"])
    # Starve one market of book updates half-way through its window: its position must go stale.
    victim = session.markets[5]
    cut = victim.window_start + 200
    tokens = {victim.up_token, victim.down_token}
    session.messages = [
        m
        for m in session.messages
        if not (getattr(m, "market", None) == victim.condition_id and m.ts > cut)
        and not (getattr(m, "asset_id", None) in tokens and m.ts > cut)
    ]
    last_book = max(
        m.ts
        for m in session.messages
        if getattr(m, "asset_id", None) == victim.up_token
        or (getattr(m, "market", None) == victim.condition_id and type(m).__name__ == "PriceChange")
    )
    cfg = WorkerConfig(replay=hour["replay"], data_dir=tmp_path, safety=SafetyConfig(max_positions=3))
    store = Store(data_dir=tmp_path)
    res = run_replay(cfg, session, AlwaysUp(), store=store)
    trades = store.trades(res.session_id)
    assert res.open_positions == 0 and trades and all(t.status == "closed" for t in trades)
    reasons = {t.exit_reason for t in trades}
    assert reasons <= SAFETY_EXITS | {"settlement"}, reasons
    assert {"window_end", "stale_book"} <= reasons
    for t in trades:
        left = (t.window_end - t.exit_time).total_seconds()
        if t.exit_reason == "window_end":
            assert 170 <= left < 180  # first safety pass with < 180 s left (10 s loop)
        if t.exit_reason == "take_profit":
            assert t.exit_price >= 1.75 * t.entry_price * 0.97  # bid vs average entry (fees)
        if t.exit_reason == "stop_loss":
            assert t.exit_price <= 0.65 * t.entry_price * 1.03
        if t.exit_reason == "stale_book":
            assert t.condition_id == victim.condition_id
            assert 60 < t.exit_time.timestamp() - last_book <= 60 + 10 + 5  # stale, caught by the next pass
    # max_positions=3 over four concurrent markets: never four open at once.
    events = sorted([(t.entry_time, 1) for t in trades] + [(t.exit_time, -1) for t in trades])
    level = peak = 0
    for _, d in events:
        level += d
        peak = max(peak, level)
    assert peak == 3
    # Stored totals equal the trades' PnL (nothing dropped on the way).
    sess = store.get_session(res.session_id)
    assert sess.trade_count == len(trades)
    assert sess.total_pnl == pytest.approx(sum(t.pnl for t in trades))


def test_kill_switch_blocks_entries(hour: dict, tmp_path: Path) -> None:
    kill_switch_path(tmp_path).touch()
    store = Store(data_dir=tmp_path)
    res = run_replay(
        WorkerConfig(replay=hour["replay"], data_dir=tmp_path), hour["session"], AlwaysUp(), store=store
    )
    assert res.trades == 0 and store.trades() == []


def test_paper_hour_via_cli_then_sigkill_recovery(hour: dict, tmp_path: Path) -> None:
    args = [
        "run",
        "--mode",
        "paper",
        "--replay",
        str(hour["replay"]),
        "--model",
        str(hour["model"]),
        "--explore",
    ]
    # 1. Uninterrupted reference run (in-process, same model, same seeded choices).
    from stratforge.trader.model import load_policy

    ref_dir = tmp_path / "ref"
    cfg = WorkerConfig(replay=hour["replay"], data_dir=ref_dir, explore=True)
    run_replay(cfg, read_session(hour["replay"]), load_policy(hour["model"]), store=Store(data_dir=ref_dir))
    ref = _trades(ref_dir)
    assert len(ref) >= 10
    assert all(t.status == "closed" and t.exit_reason in ALL_EXITS for t in ref)

    # 2. Same run, paced so it can be killed with positions open, then restarted.
    run_dir = tmp_path / "crash"
    proc = _cli(*args, "--data-dir", str(run_dir), "--pace", "0.02")
    db = run_dir / "trader.db"
    deadline = time.time() + 600
    before: list[Trade] = []
    while time.time() < deadline:
        time.sleep(0.3)
        if not db.exists():
            continue
        store = Store(data_dir=run_dir)
        with store.session() as s:
            n_open = s.scalar(select(func.count()).select_from(Trade).where(Trade.status == "open"))
            n_closed = s.scalar(select(func.count()).select_from(Trade).where(Trade.status == "closed"))
        store.close()
        if n_open >= 1 and n_closed >= 3:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=600)
            before = _trades(run_dir)
            break
    else:
        proc.kill()
        pytest.fail("the worker never had an open position to kill it on")
    assert proc.returncode == -signal.SIGKILL
    open_at_kill = {t.trade_key: t.id for t in before if t.status == "open"}
    assert open_at_kill

    proc = _cli(*args, "--data-dir", str(run_dir))
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert "resumed" in out and "positions restored" in out and "closed trades, 0 open" in out, out
    after = _trades(run_dir)
    # Nothing lost: every trade recorded before the kill is still there, same id; the positions open at
    # the kill were restored and closed later (same rows, not new ones).
    by_key = {t.trade_key: t for t in after}
    for t in before:
        assert by_key[t.trade_key].id == t.id
        if t.status == "closed":
            assert by_key[t.trade_key].pnl == pytest.approx(t.pnl)
    for key, tid in open_at_kill.items():
        assert by_key[key].status == "closed" and by_key[key].id == tid
    # Nothing duplicated, nothing left open, and the result equals the uninterrupted run exactly.
    assert len(by_key) == len(after)
    assert all(t.status == "closed" for t in after)
    assert [(t.trade_key, t.side, t.exit_reason) for t in after] == [
        (t.trade_key, t.side, t.exit_reason) for t in ref
    ]
    assert [t.pnl for t in after] == pytest.approx([t.pnl for t in ref])
    store = Store(data_dir=run_dir)
    sessions = {t.session_id for t in after}
    assert len(sessions) == 1  # resumed the same session
    assert any("resumed session" in e.message for e in store.health_events())
    assert [a.alert_type for a in store.alerts("recovery")] == ["recovery"]
