"""A replayed day through the real worker: memory flat, nothing open at the end, SIGKILL-proof.

Slow (two to three full runs of a 24-hour, four-asset replay); ``STRATFORGE_LONG_WINDOWS`` sets the
length in 15-minute windows (default 96 = 24 h). The figures themselves are reported by
``benchmarks/trader_long_session.py``. Nothing here depends on how fast the machine is: the worker is
observed through its store (the checkpoint cursor) and ``/proc``, with deadlines of hours.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stratforge.trader.markets.replay import write_session
from stratforge.trader.markets.synthetic import SyntheticConfig, generate_session
from stratforge.trader.model import init_phase5

WINDOWS = int(os.environ.get("STRATFORGE_LONG_WINDOWS", "96"))
DEADLINE_S = 4 * 3600


def _worker(replay: Path, model: Path, data: Path) -> subprocess.Popen:
    args = [
        "trader",
        "run",
        "--replay",
        str(replay),
        "--model",
        str(model),
        "--data-dir",
        str(data),
        "--explore",
        "--daily-loss-limit",
        "1000000",  # trade the whole day (one UTC day: the default limit would stop entries early)
    ]
    return subprocess.Popen(
        [sys.executable, "-m", "stratforge.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _cursor(db: Path) -> float | None:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=60) as conn:
            row = conn.execute("SELECT checkpoint_data FROM sessions").fetchone()
    except sqlite3.Error:
        return None
    return float(json.loads(row[0])["engine"]["cursor"]) if row and row[0] else None


def _hwm_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except FileNotFoundError:
        return None
    return None


def _open(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=60) as conn:
        return int(conn.execute("SELECT count(*) FROM trades WHERE status = 'open'").fetchone()[0])


def _trades(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT trade_key, id, side, status, exit_reason, round(pnl, 9) FROM trades ORDER BY trade_key"
        ).fetchall()


@pytest.mark.slow
def test_replayed_day(tmp_path: Path) -> None:
    replay = tmp_path / "day.jsonl"
    session = generate_session(5, SyntheticConfig(n_windows=WINDOWS))
    start = min(m.window_start for m in session.markets)
    write_session(session, replay)
    del session
    model = tmp_path / "model"
    init_phase5(0).save(model)
    hours = WINDOWS * 900 / 3600

    # Uninterrupted: peak RSS (VmHWM) sampled against the replay time reached.
    ref = tmp_path / "ref"
    proc = _worker(replay, model, ref)
    peaks: list[tuple[float, int]] = []
    deadline = time.time() + DEADLINE_S
    while proc.poll() is None and time.time() < deadline:
        cur, hwm = _cursor(ref / "trader.db"), _hwm_kib(proc.pid)
        if cur is not None and hwm is not None:
            peaks.append(((cur - start) / 3600, hwm))
        time.sleep(0.5)
    out = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, out
    ref_trades = _trades(ref / "trader.db")
    assert ref_trades and all(t[3] == "closed" for t in ref_trades)  # nothing open after the last resolution
    early = max(h for t, h in peaks if t <= min(2.0, hours / 4))
    late = max(h for _, h in peaks)
    assert late <= 1.15 * early, f"peak RSS grew from {early} KiB (first 2 h) to {late} KiB"

    # SIGKILL at 40% of the replay, restart: the same trades, the ids recorded before the kill kept.
    crash = tmp_path / "crash"
    proc = _worker(replay, model, crash)
    deadline = time.time() + DEADLINE_S
    while time.time() < deadline:
        cur = _cursor(crash / "trader.db")
        if cur is not None and cur - start >= 0.4 * hours * 3600 and _open(crash / "trader.db"):
            os.kill(proc.pid, signal.SIGKILL)
            break
        assert proc.poll() is None, "the worker ended before it could be killed"
        time.sleep(0.2)
    proc.wait(timeout=600)
    assert proc.returncode == -signal.SIGKILL
    before = {t[0]: t for t in _trades(crash / "trader.db")}
    assert any(t[3] == "open" for t in before.values()) and len(before) < len(ref_trades)
    proc = _worker(replay, model, crash)
    out = proc.communicate(timeout=DEADLINE_S)[0]
    assert proc.returncode == 0 and "resumed" in out, out
    after = _trades(crash / "trader.db")
    assert [t[0:1] + t[2:] for t in after] == [t[0:1] + t[2:] for t in ref_trades]
    by_key = {t[0]: t for t in after}
    assert all(by_key[k][1] == t[1] for k, t in before.items())
