"""`kill -9` of a running `stratforge explore run` leaves no process behind: pool workers, solc, LLM CLIs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from proc_tree import alive, assert_all_exit, descendants, linux_only, wait_until

from .explore_process import finished_iterations
from .fakes.llm_fakes import recorded, write_fake_cli

pytest.importorskip("pyrevm")


def _explore(run: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "stratforge.cli", "explore", "run", "--state-dir", str(run)]
    args += ["--stages", "4,8", "--rescore-sims", "8", "--holdout-sims", "4", *extra]
    return subprocess.Popen(
        args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=run.parent,
        env={**os.environ, **(env or {})},
    )


def _kill_and_check(proc: subprocess.Popen[str], children: set[int]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=600)
    assert_all_exit(children)


@linux_only
@pytest.mark.timeout(400)
def test_sigkilled_explorer_leaves_no_pool_worker(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = _explore(run, "--workers", "2")
    try:
        # The starter is scored on the pool: once an iteration has finished both workers exist.
        wait_until(
            lambda: len(finished_iterations(run)) >= 1 or proc.poll() is not None, "a finished iteration", 300
        )
        assert proc.poll() is None
        children = descendants(proc.pid)
        assert len(children) >= 2, children
        _kill_and_check(proc, children)
    finally:
        if proc.poll() is None:
            proc.kill()


@linux_only
@pytest.mark.timeout(400)
def test_sigkilled_explorer_leaves_no_llm_cli_behind(tmp_path: Path) -> None:
    # A fake `codex` that hangs in a child `sleep`, the way an agent CLI runs tools: the CLI, its child
    # and the supervisor around them must all go when the explorer is killed mid-call.
    bindir, rec = tmp_path / "bin", tmp_path / "rec"
    rec.mkdir()
    write_fake_cli(bindir, "codex", stdout=recorded("codex_ok.jsonl"), hang_s=600, record_dir=rec)
    run = tmp_path / "run"
    # CODEX_API_KEY: `explore run` refuses a codex backend without credentials before it starts
    env = {"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "CODEX_API_KEY": "sk-test"}
    proc = _explore(run, "--backend", "codex", env=env)
    try:
        wait_until(lambda: (rec / "child.pid").exists() or proc.poll() is not None, "the CLI's child", 300)
        assert proc.poll() is None
        cli_child = int((rec / "child.pid").read_text())
        children = descendants(proc.pid)
        assert cli_child in children
        _kill_and_check(proc, children)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not alive(cli_child)
