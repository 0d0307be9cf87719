"""A real `stratforge explore run` subprocess on tiny stages, and a peek at its store from outside."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path


def start_explore(run: Path, *extra: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    """``cwd``: where relative defaults land (an LLM backend's response cache), a temporary directory."""
    args = [sys.executable, "-m", "stratforge.cli", "explore", "run", "--state-dir", str(run)]
    args += ["--stages", "4,8", "--rescore-sims", "8", "--holdout-sims", "4", "--workers", "1"]
    args += ["--target-edge", "100000", *extra]  # the frontier family passes 527 on 8 seeds: end on the test's terms
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # its progress lines arrive as they are printed
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd, env=env)


def finished_iterations(run: Path) -> list[int]:
    """Numbers of the finished iterations, read while the explorer may still be writing."""
    db = run / "run.sqlite"
    if not db.exists():
        return []
    con = sqlite3.connect(db, timeout=60)
    try:
        rows = con.execute("SELECT number FROM iterations WHERE finished_at IS NOT NULL ORDER BY number")
        return [r[0] for r in rows]
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()
