"""A replayed day of trading: memory stays flat, every position ends, a SIGKILL changes nothing.

Runs ``stratforge trader run --replay DAY`` (the worker as users run it: the replay streamed from
disk, paper broker, SQLite store) on a synthetic 24-hour session of four assets (96 windows each,
with recorded resolutions; ``--daily-loss-limit`` lifted so it trades all day), three times:

1. uninterrupted, sampling the worker's ``/proc/<pid>/status`` (VmRSS, VmHWM = peak RSS so far)
   together with the replay time it has reached (the checkpoint cursor in the store);
2. the same replay in memory (``read_session`` + ``run_replay``), the in-run baseline: what the
   worker's memory would be if it kept every message;
3. SIGKILLed at about 40% of the day with a position open, then restarted on the same data directory (it resumes).

Prints peak RSS at several points of the replayed day, the ratio of the final peak to the peak
after the first two hours (1.0 = flat) and to the in-memory baseline, the open positions after the
last resolution, and whether the killed-and-resumed trade list equals the uninterrupted one.

    python benchmarks/trader_long_session.py [--replay day.jsonl] [--windows 96] [--seed 3]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

CHECKPOINT_HOURS = (1, 2, 4, 8, 12, 16, 20, 24)


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process in KiB (empty once it is gone)."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def cursor(db: Path) -> float | None:
    """The replay time of the worker's last committed tick."""
    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute(
                "SELECT checkpoint_data FROM sessions ORDER BY started_at DESC LIMIT 1"
            ).fetchone()
    except sqlite3.Error:
        return None
    if not row or not row[0]:
        return None
    return float(json.loads(row[0])["engine"]["cursor"])


def open_trades(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM trades WHERE status = 'open'").fetchone()[0])
    except sqlite3.Error:
        return 0


def trades(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT trade_key, side, status, exit_reason, round(pnl, 9), id FROM trades ORDER BY trade_key"
        ).fetchall()


def worker(replay: Path, model: Path, data: Path) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "stratforge.cli",
        "trader",
        "run",
        "--replay",
        str(replay),
        "--model",
        str(model),
    ]
    return subprocess.Popen(
        [*cmd, "--data-dir", str(data), "--explore", "--daily-loss-limit", "1000000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def sample_run(proc: subprocess.Popen, db: Path, start: float, kill_at: float | None = None) -> list[tuple]:
    """(replay hours, VmRSS MiB, VmHWM MiB) every 0.5 s until the process ends (or is killed)."""
    samples = []
    while proc.poll() is None:
        st, cur = proc_status(proc.pid), cursor(db)
        if st and cur is not None:
            hours = (cur - start) / 3600
            samples.append((hours, st["VmRSS"] / 1024, st["VmHWM"] / 1024))
            if kill_at is not None and hours >= kill_at and open_trades(db):
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                break
        time.sleep(0.5)
    return samples


def at_hours(samples: list[tuple]) -> list[tuple[int, float, float]]:
    rows = []
    for h in CHECKPOINT_HOURS:
        first = next((s for s in samples if s[0] >= h - 1e-9), samples[-1] if samples else None)
        if first is not None:
            rows.append((h, first[1], first[2]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replay", type=Path, help="replay file (default: generate one)")
    parser.add_argument("--windows", type=int, default=96, help="15-minute windows to generate (96 = 24 h)")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--kill-at", type=float, default=0.4, help="fraction of the replay to SIGKILL at")
    parser.add_argument("--no-baseline", action="store_true", help="skip the in-memory baseline run")
    args = parser.parse_args()
    console = Console()
    tmp = Path(tempfile.mkdtemp(prefix="sf-day-"))
    from stratforge.trader.markets.replay import write_session
    from stratforge.trader.markets.synthetic import SyntheticConfig, generate_session
    from stratforge.trader.model import init_phase5

    replay = args.replay
    if replay is None:
        replay = tmp / "day.jsonl"
        console.print(f"generating {args.windows} windows x 4 assets (seed {args.seed}) -> {replay}")
        write_session(generate_session(args.seed, SyntheticConfig(n_windows=args.windows)), replay)
    model = tmp / "model"
    init_phase5(0).save(model)
    first_start = None
    with replay.open() as fh:
        for line in fh:
            rec = json.loads(line)
            if rec["src"] == "meta" and rec["data"].get("type") == "market":
                ws = rec["data"]["window_start"]
                first_start = ws if first_start is None else min(first_start, ws)
            else:
                break
    assert first_start is not None
    lines = sum(1 for _ in replay.open())
    console.print(f"replay: {lines:,} lines, {replay.stat().st_size / 1e6:.0f} MB")

    # 1. Uninterrupted, sampled.
    ref_dir = tmp / "ref"
    t0 = time.time()
    proc = worker(replay, model, ref_dir)
    samples = sample_run(proc, ref_dir / "trader.db", first_start)
    out = proc.communicate()[0]
    wall = time.time() - t0
    if proc.returncode != 0:
        raise SystemExit(f"worker failed:\n{out}")
    ref = trades(ref_dir / "trader.db")
    open_after = sum(1 for t in ref if t[2] == "open")

    # 2. In-memory baseline (every message held), peak RSS of that process.
    base_hwm = None
    if not args.no_baseline:
        code = textwrap.dedent(
            f"""
            import resource
            from pathlib import Path
            from stratforge.trader.markets.replay import read_session
            from stratforge.trader.model import load_policy
            from stratforge.trader.replay_runner import run_replay
            from stratforge.trader.safety import SafetyConfig
            from stratforge.trader.storage import Store
            from stratforge.trader.worker import WorkerConfig
            d = Path({str(tmp / "mem")!r})
            cfg = WorkerConfig(replay=Path({str(replay)!r}), data_dir=d, explore=True,
                               safety=SafetyConfig(daily_loss_limit=1e6))
            run_replay(cfg, read_session(cfg.replay), load_policy(Path({str(model)!r})), store=Store(data_dir=d))
            print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
            """
        )
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        base_hwm = int(res.stdout.strip().splitlines()[-1]) / 1024

    # 3. SIGKILL at kill_at of the day, then restart.
    crash_dir = tmp / "crash"
    span_h = args.windows * 900 / 3600
    proc = worker(replay, model, crash_dir)
    sample_run(proc, crash_dir / "trader.db", first_start, kill_at=args.kill_at * span_h)
    killed = proc.returncode == -signal.SIGKILL
    before = trades(crash_dir / "trader.db")
    proc = worker(replay, model, crash_dir)
    out2 = proc.communicate()[0]
    after = trades(crash_dir / "trader.db")
    same = [t[:5] for t in after] == [t[:5] for t in ref]
    kept_ids = {t[0]: t[5] for t in before} == {
        t[0]: t[5] for t in after if t[0] in dict((b[0], 0) for b in before)
    }

    table = Table(
        title=f"Worker memory over a replayed {span_h:.0f}-hour session ({len(ref)} trades, {wall:.0f} s)"
    )
    for col in ("replay hour", "RSS MiB", "peak RSS MiB"):
        table.add_column(col, justify="right")
    rows = at_hours(samples)
    for h, rss, hwm in rows:
        table.add_row(str(h), f"{rss:.1f}", f"{hwm:.1f}")
    console.print(table)
    two = next((r for r in rows if r[0] == 2), rows[0])
    console.print(f"peak RSS at the end / at hour {two[0]}: {rows[-1][2] / two[2]:.3f}  (1.0 = flat)")
    if base_hwm is not None:
        console.print(
            f"in-memory baseline (every message kept): peak RSS {base_hwm:.1f} MiB; "
            f"streaming worker / baseline: {rows[-1][2] / base_hwm:.3f}"
        )
    console.print(f"open positions after the last resolution: {open_after}")
    console.print(
        f"SIGKILL at {args.kill_at:.0%} ({'killed' if killed else 'NOT killed'}, {len(before)} trades recorded, "
        f"{sum(1 for t in before if t[2] == 'open')} open), restart: "
        f"{'resumed' if 'resumed' in out2 else 'NOT resumed'}; trade list identical to the uninterrupted run: "
        f"{same}; ids of trades recorded before the kill kept: {kept_ids}"
    )


if __name__ == "__main__":
    main()
