"""The learning-engine commands over a real (small) run, signals, and the monitor's alerts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from stratforge.explore.loop import ExploreConfig, Explorer
from stratforge.explore.monitor import open_readonly, summary
from stratforge.explore.store import STATUS_EVALUATED, STATUS_FAILED, open_run

from .explore_process import start_explore
from .fakes.llm_fakes import Reply, openai_body, recorded, scripted_server

pytest.importorskip("pyrevm")


def stratforge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stratforge.cli", *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("explore") / "run"
    cfg = ExploreConfig(
        state_dir=run,
        stages=(4, 8),
        rescore_sims=8,
        holdout_sims=4,
        spec_check_sims=2,
        generation_size=2,
        workers=1,
        max_iterations=3,
        target_edge=10_000.0,  # the frontier family passes 527 on 8 seeds; this run ends on iterations
    )
    Explorer(cfg).run()
    return run


def test_status_hypotheses_report_and_monitor(small_run: Path) -> None:
    status = stratforge("explore", "status", "--state-dir", str(small_run))
    assert status.returncode == 0, status.stderr
    assert "3 finished" in status.stdout and "max iterations reached" in status.stdout
    hyps = stratforge("explore", "hypotheses", "--state-dir", str(small_run))
    assert hyps.returncode == 0 and "H3_fair_price" in hyps.stdout
    report = stratforge("explore", "report", "--state-dir", str(small_run))
    assert report.returncode == 0
    text = (small_run / "REPORT.md").read_text()
    for heading in ("## Champion", "## Hypothesis coverage", "## Top strategies", "## Recommendations"):
        assert heading in text
    for plot in ("edge_over_iterations", "champion_history", "edge_distribution", "hypothesis_coverage"):
        assert (small_run / "plots" / f"{plot}.png").stat().st_size > 1000
    assert "fixed 50 bps (the starter)" in text and "| holdout (4 seeds) |" in text
    assert "vs champion (95% CI)" in text
    monitor = stratforge("explore", "monitor", "--once", "--state-dir", str(small_run))
    assert monitor.returncode == 0 and "champion" in monitor.stdout and "Last 5 results" in monitor.stdout


def test_export_writes_a_submission_that_passes_the_rules(small_run: Path, tmp_path: Path) -> None:
    from stratforge.amm.solidity import check_solidity

    out = tmp_path / "Strategy.sol"
    proc = stratforge("explore", "export", "--state-dir", str(small_run), "--out", str(out), "--name", "My Champ")
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    champ = open_readonly(small_run).champion()
    assert champ is not None
    assert text.startswith("// SPDX-License-Identifier")
    assert f"selection edge {champ.edge:.2f} over 8 simulations" in text
    assert f"holdout edge {champ.holdout_edge:.2f} over 4 simulations" in text
    loaded = check_solidity(text)
    assert loaded.spec.name == "My Champ" and "contract Strategy is AMMStrategyBase" in text
    missing = stratforge("explore", "export", "--state-dir", str(tmp_path / "none"), "--out", str(out))
    assert missing.returncode == 2 and "no exploration run" in missing.stderr


def test_commands_refuse_a_directory_without_a_run(tmp_path: Path) -> None:
    proc = stratforge("explore", "status", "--state-dir", str(tmp_path / "nothing"))
    assert proc.returncode == 2 and "no exploration run" in proc.stderr


def test_run_refuses_bad_racing_settings_before_creating_the_run(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = stratforge("explore", "run", "--state-dir", str(run), "--final-look-sims", "-1")
    assert proc.returncode == 2 and "final look sims must be 0 (off) or positive" in proc.stderr
    assert "Traceback" not in proc.stderr and not run.exists()


def test_robustness_check_uses_disjoint_batches() -> None:
    proc = stratforge("explore", "robustness-check", "fixed:50", "--batches", "3", "-n", "4", "-w", "1")
    assert proc.returncode == 0, proc.stderr
    for seeds in ("0..3", "4..7", "8..11"):
        assert seeds in proc.stdout
    assert "spread" in proc.stdout


def test_monitor_alerts_on_failure_rate_and_plateau(tmp_path: Path) -> None:
    store = open_run(tmp_path / "run", config={"max_runtime_s": 100})
    for n in range(12):
        store.begin_iteration(n)
        if n < 5:
            store.finish_iteration(n, status=STATUS_FAILED, errors=["compile error: x"])
        else:
            store.finish_iteration(n, status=STATUS_EVALUATED, edge=400.0 + 0.1 * n)
    # 12 finished: 5 failed (42%) and the last 10 edges barely move
    s = summary(store)
    assert any("failure rate" in a for a in s["alerts"])
    assert not any("plateau" in a for a in s["alerts"])  # failed ones have no edge: only 7 values
    for n in range(12, 16):
        store.begin_iteration(n)
        store.finish_iteration(n, status=STATUS_EVALUATED, edge=401.0)
    assert any("plateau" in a for a in summary(store)["alerts"])


def _wait_for(condition, what: str, timeout_s: float = 600.0) -> None:
    """Poll ``condition`` until true; the deadline only turns a hang into a clear failure."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.mark.timeout(400)
@pytest.mark.parametrize("signals", [1, 2])
def test_sigterm_finishes_the_iteration_and_a_second_stops_at_once(tmp_path: Path, signals: int) -> None:
    # The proposer's LLM call is held by the local server until the test releases it, so the signals
    # land inside an iteration on every machine, however fast or slow it runs.
    gate = threading.Event()
    run = tmp_path / "run"
    reply = Reply(body=openai_body(recorded("valid_response.md")), gate=gate)
    with scripted_server(default=reply) as srv:
        llm = ["--backend", "openai", "--base-url", srv.url, "--model", "local-model"]
        proc = start_explore(run, *llm, cwd=tmp_path)
        lines: list[str] = []

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()

        def said(text: str) -> bool:
            return text in " ".join("".join(lines).split())  # rich may wrap long lines

        try:
            _wait_for(lambda: len(srv.requests) >= 1 or proc.poll() is not None, "the first LLM call")
            assert proc.poll() is None, "".join(lines)
            os.kill(proc.pid, signal.SIGTERM)
            _wait_for(lambda: said("signal again to stop now"), "the first signal's notice")
            if signals == 2:
                os.kill(proc.pid, signal.SIGTERM)
            else:
                gate.set()  # the iteration in flight finishes, then the loop stops
            proc.wait(timeout=300)
        finally:
            gate.set()
            if proc.poll() is None:
                proc.kill()
        reader.join(60)
    out = "".join(lines)
    assert proc.returncode == 0, out
    store = open_readonly(run)
    assert store.integrity_check() == "ok"
    status = store.run_info().status
    if signals == 1:
        assert "signal SIGTERM" in status and store.in_flight() == []
    else:
        assert "stopped at once" in status
