"""Walk-forward evaluation on recordings: split by time without leaks, train on the earlier part,
every baseline on the later part with paired CIs; recordings cut by a kill stay readable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from stratforge.trader.markets.messages import MarketResolved
from stratforge.trader.markets.replay import read_session, write_session
from stratforge.trader.markets.session import merge_sessions, split_by_time, walk_forward_split_time
from stratforge.trader.markets.synthetic import SyntheticConfig, generate_session

STRATFORGE = [sys.executable, "-c", "import sys; from stratforge.cli import main; sys.exit(main())"]
CFG = SyntheticConfig(assets=("BTC", "SOL"), n_windows=4, warmup_minutes=15)


def test_split_by_time_keeps_the_future_out_of_training() -> None:
    s = generate_session(3, CFG)
    t = walk_forward_split_time(s, 0.5)
    early, late = split_by_time(s, t)
    assert len(early.markets) == 4 and len(late.markets) == 4
    assert all(m.window_end <= t for m in early.markets) and all(m.window_start >= t for m in late.markets)
    assert max(m.ts for m in early.messages) < t  # nothing from the later part
    assert set(early.resolutions) == {m.condition_id for m in early.markets}
    assert len(late.messages) == len(s.messages)  # the earlier feed is the later part's warm-up history


def test_merge_sessions_of_consecutive_recordings(tmp_path: Path) -> None:
    s = generate_session(4, CFG)
    t = walk_forward_split_time(s, 0.5)
    early, late = split_by_time(s, t)
    write_session(early, tmp_path / "a.jsonl", "venue")
    late_only = type(late)(late.markets, [m for m in late.messages if m.ts >= t], late.resolutions)
    write_session(late_only, tmp_path / "b.jsonl", "venue")
    merged = merge_sessions([read_session(tmp_path / "a.jsonl"), read_session(tmp_path / "b.jsonl")])
    assert [m.condition_id for m in merged.markets] == [m.condition_id for m in s.markets]
    ts = [m.ts for m in merged.messages]
    assert ts == sorted(ts)


def test_cli_walk_forward_on_a_synthetic_recording_with_resolutions(tmp_path: Path) -> None:
    rec = tmp_path / "rec.jsonl"
    r = subprocess.run([*STRATFORGE, "trader", "synth", "--out", str(rec), "--seed", "9", "--windows", "4",
                        "--assets", "BTC,SOL", "--resolutions", "venue"],
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert sum(isinstance(m, MarketResolved) for m in read_session(rec).messages) == 8
    out = tmp_path / "wf"
    r = subprocess.run([*STRATFORGE, "trader", "eval", "--replay", str(rec), "--train-episodes", "2",
                        "--out", str(out)], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr
    ev = json.loads((out / "eval.json").read_text())
    assert ev["unit"] == "market" and ev["train_markets"] == 4 and ev["test_markets"] == 4
    assert set(ev["policies"]) == {"model", "random", "momentum", "mean_reversion", "spot_momentum"}
    assert set(ev["paired_difference"]) == {"random", "momentum", "mean_reversion", "spot_momentum"}
    d = ev["paired_difference"]["momentum"]
    assert d["n"] == 4 and d["low"] <= d["mean_diff"] <= d["high"]
    assert ev["training"]["episodes"] == 2 and (out / "train" / "model" / "rl_model.safetensors").exists()
    for trades in ev["trades"].values():
        assert all(t["settled_by"] in ("", "market_resolved") for t in trades)  # never the fallback


def test_recording_cut_by_a_kill_reads_up_to_its_last_complete_line(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl"
    session = generate_session(2, SyntheticConfig(assets=("BTC",), warmup_minutes=15))
    write_session(session, tmp_path / "src.jsonl", "venue")
    lines = (tmp_path / "src.jsonl").read_text().splitlines(keepends=True)
    # A writer process appending with ReplayWriter, killed with SIGKILL mid-way.
    script = (
        "import json, sys\n"
        "from stratforge.trader.live.recorder import ReplayWriter\n"
        "w = ReplayWriter(sys.argv[1])\n"
        "for line in open(sys.argv[2]):\n"
        "    rec = json.loads(line)\n"
        "    w.write(rec['src'], rec['data'], rec['t'] / 1000)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(path), str(tmp_path / "src.jsonl")],
                            env=os.environ | {"PYTHONUNBUFFERED": "1"})  # fmt: skip
    deadline = time.monotonic() + 600
    while (not path.exists() or path.stat().st_size < 200_000) and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # Whatever the kill left, plus a torn last line as a kill mid-write leaves it:
    with path.open("a") as fh:
        fh.write(lines[len(lines) // 2][:40])
    s = read_session(path)
    assert s.markets and s.messages
    # Appending (a restarted recorder) first drops the torn line; the file stays valid throughout.
    subprocess.run([sys.executable, "-c", script, str(path), str(tmp_path / "src.jsonl")], check=True,
                   timeout=300)  # fmt: skip
    again = read_session(path)
    assert len(again.messages) > len(s.messages)
