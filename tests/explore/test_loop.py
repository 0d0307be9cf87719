"""The exploration loop: promotion statistics, determinism, stop requests and crash recovery."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from stratforge.explore.loop import ExploreConfig, Explorer, paired_stats, request_stop
from stratforge.explore.monitor import open_readonly

from .explore_process import finished_iterations, start_explore

pytest.importorskip("pyrevm")

SMALL = {"stages": (4, 8), "rescore_sims": 8, "holdout_sims": 4, "twin_check_sims": 2, "workers": 1}


def small_config(tmp: Path, **kw: object) -> ExploreConfig:
    return ExploreConfig(state_dir=tmp, **{**SMALL, **kw})  # type: ignore[arg-type]


def test_paired_stats_match_a_hand_computation() -> None:
    rng = np.random.default_rng(0)
    champ = rng.normal(400, 50, 200)
    cand = champ + rng.normal(1.0, 2.0, 200)
    s = paired_stats(cand, champ)
    d = cand - champ
    assert s.mean_diff == pytest.approx(d.mean())
    assert s.std_error == pytest.approx(d.std(ddof=1) / np.sqrt(200))
    assert s.ci_low < s.mean_diff < s.ci_high
    assert s.p_better < 1e-6
    # pure noise around the champion is not significant
    noise = paired_stats(champ + rng.normal(0, 2.0, 200), champ)
    assert noise.p_better > 0.01 or abs(noise.mean_diff) < 0.5


def test_an_offline_run_promotes_only_significant_improvements(tmp_path: Path) -> None:
    explorer = Explorer(small_config(tmp_path / "run", max_iterations=4))
    reason = explorer.run()
    assert "max iterations" in reason
    store = open_readonly(tmp_path / "run")
    history = store.champion_history()
    assert history[0].iteration == 0 and "starter" in history[0].reason
    for newer in history[1:]:
        assert newer.stats["paired"]["p_better"] < 0.05
        assert newer.stats["paired"]["mean_diff"] > 0
    assert all(c.holdout_edge is not None for c in history)
    assert (tmp_path / "run" / "REPORT.md").exists()
    assert (tmp_path / "run" / "plots" / "edge_over_iterations.png").stat().st_size > 1000
    assert [i.number for i in store.iterations(finished_only=True)] == list(range(5))


def _snapshot(run: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    store = open_readonly(run)
    its = [
        (i.number, i.template, i.source_hash, i.edge, i.status) for i in store.iterations(finished_only=True)
    ]
    champs = [(c.iteration, c.edge, c.holdout_edge) for c in store.champion_history()]
    return its, champs


@pytest.mark.slow
def test_two_runs_with_the_same_seed_make_identical_stores(tmp_path: Path) -> None:
    for name in ("a", "b"):
        Explorer(small_config(tmp_path / name, max_iterations=3, seed=7)).run()
    assert _snapshot(tmp_path / "a") == _snapshot(tmp_path / "b")


def test_stop_request_ends_the_run_after_the_current_iteration(tmp_path: Path) -> None:
    run = tmp_path / "run"
    seen: list[str] = []

    def on_event(kind: str, message: str) -> None:
        seen.append(kind)
        if kind == "iteration":
            request_stop(run)

    reason = Explorer(small_config(run, max_iterations=10), on_event=on_event).run()
    assert "stop requested" in reason
    assert seen.count("iteration") == 1


@pytest.mark.timeout(400)
def test_sigkill_mid_iteration_then_resume_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = start_explore(run, "--max-iterations", "50")
    deadline = time.time() + 240
    while len(finished_iterations(run)) < 3 and time.time() < deadline:
        time.sleep(0.2)
    before = finished_iterations(run)
    assert len(before) >= 3, proc.stdout.read() if proc.poll() is not None else "too slow"
    time.sleep(0.7)  # land somewhere inside the next iteration
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = _snapshot(run)
    con = sqlite3.connect(run / "run.sqlite")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()

    target = len(killed[0]) + 2  # two more iterations beyond the starter + finished ones
    resumed = start_explore(run, "--resume", "--max-iterations", str(target - 1))
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    its, champs = _snapshot(run)
    numbers = [n for n, *_ in its]
    assert numbers == list(range(len(numbers))), "iterations are contiguous, none duplicated"
    assert its[: len(killed[0])] == killed[0], "every finished iteration survived unchanged"
    assert champs[: len(killed[1])] == killed[1]
    assert len(its) == target


@pytest.mark.slow
def test_replay_runs_over_recorded_responses_make_identical_stores(tmp_path: Path) -> None:
    from .fakes.llm_fakes import Reply, openai_body, recorded, scripted_server

    cache = tmp_path / "cache"
    text = recorded("valid_response.md")
    with scripted_server(default=Reply(body=openai_body(text))) as srv:
        url = srv.url if isinstance(srv.url, str) else srv.url()
        llm = {"backend": "openai", "base_url": url, "model": "local-model", "cache_dir": str(cache)}
        Explorer(small_config(tmp_path / "live", max_iterations=2, llm=llm)).run()
        assert len(srv.requests) >= 1
    replay = {**llm, "backend": "replay", "replay_of": "openai"}
    for name in ("r1", "r2"):
        Explorer(small_config(tmp_path / name, max_iterations=2, llm=replay)).run()
    live, r1, r2 = (_snapshot(tmp_path / n) for n in ("live", "r1", "r2"))
    assert r1 == r2 == live
    store = open_readonly(tmp_path / "r1")
    it = store.iteration(1)
    assert it is not None and it.prompt and "DRAFT_STRATEGY_IDEA" in it.prompt and it.response == text


def test_a_missing_compiler_stops_the_run_instead_of_failing_every_candidate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    explorer = Explorer(small_config(tmp_path / "run", max_iterations=5))
    explorer.run()  # starter + 5 iterations with the compiler present
    monkeypatch.setenv("STRATFORGE_SOLC_DIR", str(tmp_path / "no-solc"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no node either
    import stratforge.amm.compiler as compiler

    monkeypatch.setattr(compiler, "bytecode_cache_dir", lambda: tmp_path / "empty-cache")
    resumed = Explorer(small_config(tmp_path / "run", max_iterations=8), resume=True)
    reason = resumed.run()
    assert "compiler unavailable" in reason
    store = open_readonly(tmp_path / "run")
    assert store.totals()["failed"] == 0  # nothing was blamed on the candidates
    assert len(store.in_flight()) == 1  # the interrupted iteration is re-run on resume
