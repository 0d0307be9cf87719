"""The exploration loop: promotion, racing end to end, stop requests, proposer signals, and resume
after SIGKILL writing the same store as a run that never stopped."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from stratforge.explore.candidate import (
    Candidate,
    CandidateResult,
    ProposalContext,
    ProposerFailed,
    ProposerUnavailable,
)
from stratforge.explore.control import request_stop
from stratforge.explore.loop import ExploreConfig, Explorer
from stratforge.explore.monitor import open_readonly
from stratforge.explore.report import write_report
from stratforge.explore.templates import Template, load_library

from .explore_process import finished_iterations, start_explore

pytest.importorskip("pyrevm")

# target edge out of reach: on 8 seeds the frontier family's defaults already score above 527, and
# these tests are about the loop's mechanics, which must run until their own exit condition
SMALL = {
    "stages": (4, 8),
    "rescore_sims": 8,
    "holdout_sims": 4,
    "spec_check_sims": 2,
    "workers": 1,
    "target_edge": 10_000.0,
    "proposer": "templates",  # generation sizes below are the template proposer's; CMA-ES has its own test
}


def small_config(tmp: Path, **kw: object) -> ExploreConfig:
    return ExploreConfig(state_dir=tmp, **{**SMALL, **kw})  # type: ignore[arg-type]


def store_content(run: Path) -> dict[str, object]:
    """Everything a run decided, without timestamps, timings, attempts or the event log."""
    store = open_readonly(run)
    con = sqlite3.connect(run / "run.sqlite")
    its = con.execute(
        "SELECT number, hypothesis, proposer, template, params_json, prompt, response, source_hash, errors_json,"
        " stage_results_json, edge, holdout_edge, status, proposer_state FROM iterations ORDER BY number"
    ).fetchall()
    content = {
        "iterations": its,
        "candidates": con.execute("SELECT * FROM candidates ORDER BY iteration, idx").fetchall(),
        "champions": con.execute(
            "SELECT iteration, edge, holdout_edge, stats_json, reason FROM champions ORDER BY id"
        ).fetchall(),
        "templates": con.execute(
            "SELECT name, schema_json, source_iteration, edge FROM templates ORDER BY name"
        ).fetchall(),
        "in_flight": store.in_flight(),
    }
    con.close()
    store.close()
    return content


def test_an_offline_run_races_generations_and_promotes_only_significant_improvements(tmp_path: Path) -> None:
    run = tmp_path / "run"
    reason = Explorer(small_config(run, max_iterations=3, generation_size=3)).run()
    assert "max iterations" in reason
    store = open_readonly(run)
    history = store.champion_history()
    assert history[0].iteration == 0 and "starter" in history[0].reason
    ref = history[0].stats["reference"]
    assert len(ref["holdout_edges"]) == 4 and len(ref["selection_edges"]) == 8
    assert history[0].stats["spec_check"]["identical"] is True  # FixedFee(50) == the compiled starter
    for newer in history[1:]:
        assert newer.stats["paired"]["p_greater"] < 0.05 and newer.stats["paired"]["mean_diff"] > 0
        assert len(newer.stats["selection_edges"]) == 8 and len(newer.stats["confirm_edges"]) == 8
    # only the champion the run ended with is scored on the holdout seeds
    assert len(history[-1].stats["holdout_edges"]) == 4 and history[-1].holdout_edge is not None
    assert all(c.holdout_edge is None and "holdout_edges" not in c.stats for c in history[:-1])
    final = store.iteration(history[-1].iteration)
    assert final is not None and final.holdout_edge == history[-1].holdout_edge
    assert [i.number for i in store.iterations(finished_only=True)] == [0, 1, 2, 3]
    for n in (1, 2, 3):
        members = store.members(n)
        assert len(members) == 3
        it = store.iteration(n)
        assert it is not None
        gen = it.stage_results["generation"]
        # common seeds: everybody ran the first rung; only one member ran the whole selection set
        assert all(g["sims"] >= 4 for g in gen if g["edge"] is not None)
        assert sum(g["sims"] == 8 for g in gen) <= 1
    assert all(row[-1] for row in store_content(run)["iterations"])  # type: ignore[union-attr]  # snapshots
    assert it.prompt is None and not (run / "prompts").exists()  # nothing was sent to a model
    assert (run / "REPORT.md").exists()
    assert (run / "plots" / "edge_over_iterations.png").stat().st_size > 1000


def test_every_champion_gets_a_holdout_edge_when_asked(tmp_path: Path) -> None:
    run = tmp_path / "run"
    Explorer(small_config(run, max_iterations=2, generation_size=3, holdout_every_champion=True)).run()
    history = open_readonly(run).champion_history()
    assert len(history) >= 2  # the starter and at least one promotion
    assert all(c.holdout_edge is not None and len(c.stats["holdout_edges"]) == 4 for c in history)


def test_a_champion_left_without_its_holdout_by_a_kill_is_scored_on_resume(tmp_path: Path) -> None:
    run = tmp_path / "run"
    Explorer(small_config(run, max_iterations=2, generation_size=3)).run()
    scored = open_readonly(run).champion()
    assert scored is not None and scored.holdout_edge is not None
    # what a kill between the last iteration's write and the holdout leaves behind
    con = sqlite3.connect(run / "run.sqlite")
    with con:
        stats = json.loads(con.execute("SELECT stats_json FROM champions WHERE id = ?", (scored.id,)).fetchone()[0])
        del stats["holdout_edges"], stats["holdout_seeds"]
        con.execute(
            "UPDATE champions SET holdout_edge = NULL, stats_json = ? WHERE id = ?", (json.dumps(stats), scored.id)
        )
        con.execute("UPDATE iterations SET holdout_edge = NULL")
    con.close()
    write_report(open_readonly(run))
    assert "not yet scored on the holdout seeds" in (run / "REPORT.md").read_text()
    Explorer(small_config(run, max_iterations=2), resume=True).run()
    again = open_readonly(run).champion()
    assert again is not None and again.id == scored.id  # no new iteration: max iterations already reached
    assert again.holdout_edge == scored.holdout_edge and again.stats == scored.stats


@pytest.mark.slow
def test_two_runs_with_the_same_seed_make_identical_stores(tmp_path: Path) -> None:
    for name in ("a", "b"):
        Explorer(small_config(tmp_path / name, max_iterations=3, seed=7)).run()
    assert store_content(tmp_path / "a") == store_content(tmp_path / "b")


def test_stop_request_ends_the_run_after_the_current_iteration(tmp_path: Path) -> None:
    run = tmp_path / "run"
    seen: list[str] = []

    def on_event(kind: str, message: str) -> None:
        seen.append(kind)
        if kind == "iteration":
            request_stop(run)

    reason = Explorer(small_config(run, max_iterations=10, generation_size=1), on_event=on_event).run()
    assert "stop requested" in reason
    assert seen.count("iteration") == 1
    assert len(finished_iterations(run)) == 2  # the starter and the iteration that was running


class ScriptedProposer:
    """A proposer that replays a script: a candidate generation, or an exception to raise."""

    name = "scripted"

    def __init__(self, script: Sequence[object]) -> None:
        self.script = list(script)
        self.calls = 0

    def propose(self, ctx: ProposalContext) -> list[Candidate]:
        step = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        if isinstance(step, Exception):
            raise step
        return list(step)  # type: ignore[call-overload]

    def observe(self, results: Sequence[CandidateResult]) -> None:
        pass

    def add_template(self, template: Template) -> None:
        pass

    def snapshot(self) -> bytes:
        return str(self.calls).encode()

    def restore(self, snapshot: bytes) -> None:
        self.calls = int(snapshot)


class FakeClock:
    def __init__(self) -> None:
        self.t = time.time()
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


def test_an_unavailable_proposer_is_waited_out_and_a_failed_one_stops_the_run(tmp_path: Path) -> None:
    clock = FakeClock()
    fee = load_library()["fixed_fee"]
    good = [Candidate(fee.render({"BID_FEE": 45, "ASK_FEE": 45}), "scripted", "fixed_fee")]
    proposer = ScriptedProposer(
        [
            ProposerUnavailable("cooling down", retry_at=clock.t + 120),
            good,
            ProposerFailed("API key rejected"),
        ]
    )
    explorer = Explorer(small_config(tmp_path / "run"), proposer=proposer, clock=clock, sleep=clock.sleep)
    reason = explorer.run()
    assert reason == "proposer failed: API key rejected"
    assert sum(clock.sleeps) == pytest.approx(120.0, abs=1e-6)  # waited out the cool-down, no spinning
    store = open_readonly(tmp_path / "run")
    assert [i.number for i in store.iterations()] == [0, 1]  # nothing recorded for the two refusals
    assert any("cooling down" in e.message for e in store.events(kind="waiting"))


def test_a_cool_down_beyond_the_runtime_limit_ends_the_run(tmp_path: Path) -> None:
    clock = FakeClock()
    proposer = ScriptedProposer([ProposerUnavailable("cooling down", retry_at=clock.t + 10_000)])
    cfg = small_config(tmp_path / "run", max_runtime_s=600)
    reason = Explorer(cfg, proposer=proposer, clock=clock, sleep=clock.sleep).run()
    assert reason.startswith("max runtime reached")
    assert sum(clock.sleeps) <= 600 + 1


def test_a_fast_spec_that_disagrees_with_its_source_is_judged_by_the_compiled_contract(
    tmp_path: Path,
) -> None:
    from stratforge.amm.strategy import FixedFee

    fee = load_library()["fixed_fee"]
    # the spec is 90 bps (beats the starter on these 8 seeds), the source says 35 bps (does not):
    # what would be promoted is what the source does
    liar = Candidate(fee.render({"BID_FEE": 35, "ASK_FEE": 35}), "scripted", "fixed_fee", spec=FixedFee(90))
    run = tmp_path / "run"
    Explorer(small_config(run, max_iterations=1), proposer=ScriptedProposer([[liar]])).run()
    store = open_readonly(run)
    alerts = [e.message for e in store.events(kind="alert")]
    assert any("disagree" in m for m in alerts), alerts
    assert [c.iteration for c in store.champion_history()] == [0]  # 35 bps does not beat the starter
    honest = Candidate(fee.render({"BID_FEE": 90, "ASK_FEE": 90}), "scripted", "fixed_fee", spec=FixedFee(90))
    Explorer(small_config(run, max_iterations=2), resume=True, proposer=ScriptedProposer([[honest]])).run()
    history = open_readonly(run).champion_history()
    assert [c.iteration for c in history] == [0, 2] and history[-1].stats["spec_check"]["identical"] is True


KILL_RUNNER = """
import os, signal, sys
from pathlib import Path
from stratforge.explore.loop import Explorer, ExploreConfig
run, kind, nth, resume, cfg = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5]
seen = 0
def on_event(k, message):
    global seen
    if k == kind:
        seen += 1
        if seen == nth:
            os.kill(os.getpid(), signal.SIGKILL)
config = ExploreConfig(state_dir=run, **{k: tuple(v) if k == "stages" else v for k, v in eval(cfg).items()})
Explorer(config, resume=resume, on_event=on_event).run()
"""
RESUME_CFG = {**SMALL, "generation_size": 3, "max_iterations": 3, "seed": 3}


def _runner(
    run: Path, kind: str, nth: int, resume: bool, cfg: dict[str, object] = RESUME_CFG
) -> subprocess.CompletedProcess[str]:
    args = [
        sys.executable,
        "-c",
        KILL_RUNNER,
        str(run),
        kind,
        str(nth),
        "1" if resume else "0",
        repr(cfg),
    ]
    return subprocess.run(args, capture_output=True, text=True, timeout=600, env={**os.environ})


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    run = tmp_path_factory.mktemp("whole") / "run"
    cfg = dict(RESUME_CFG)
    Explorer(ExploreConfig(state_dir=run, **cfg)).run()  # type: ignore[arg-type]
    return store_content(run)


@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    ("kind", "nth"),
    [("iteration", 2), ("champion", 2)],
    ids=["mid-iteration-after-racing", "during-promotion"],
)
def test_sigkill_then_resume_writes_the_same_store_as_never_stopping(
    tmp_path: Path, uninterrupted: dict[str, object], kind: str, nth: int
) -> None:
    run = tmp_path / "run"
    killed = _runner(run, kind, nth, resume=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr  # it really died at that point
    partial = store_content(run)
    assert partial["in_flight"] == []  # whole iterations only
    assert len(partial["iterations"]) < len(uninterrupted["iterations"])  # type: ignore[arg-type]
    assert partial["iterations"] == uninterrupted["iterations"][: len(partial["iterations"])]  # type: ignore[index,arg-type]
    resumed = _runner(run, "never", 1, resume=True)
    assert resumed.returncode == 0, resumed.stderr
    assert store_content(run) == uninterrupted


CMAES_CFG = {**SMALL, "proposer": "cmaes", "max_iterations": 3, "seed": 5}


@pytest.mark.timeout(900)
def test_cmaes_default_resumes_after_sigkill_exactly_as_never_stopping(tmp_path: Path) -> None:
    """The default offline proposer (CMA-ES on the frontier family, parameters patched into one compiled
    contract): a generation is its population, and its pickled state makes resume exact."""
    whole = tmp_path / "whole"
    Explorer(ExploreConfig(state_dir=whole, **CMAES_CFG)).run()  # type: ignore[arg-type]
    expected = store_content(whole)
    members = open_readonly(whole).members(1)
    assert len(members) > 4 and {m.template for m in members} == {"frontier"}
    run = tmp_path / "run"
    killed = _runner(run, "iteration", 2, resume=False, cfg=CMAES_CFG)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    partial = store_content(run)
    assert 0 < len(partial["iterations"]) < len(expected["iterations"])  # type: ignore[arg-type]
    resumed = _runner(run, "never", 1, resume=True, cfg=CMAES_CFG)
    assert resumed.returncode == 0, resumed.stderr
    got = store_content(run)
    # every decision is identical; the pickled CMA-ES snapshots are compared by what they do next
    # (their bytes differ in pickle's string sharing and cma's wall-clock timer, not in the search)
    assert _without_snapshots(got) == _without_snapshots(expected)
    assert _next_generation(got) == _next_generation(expected)


def _without_snapshots(content: dict[str, object]) -> dict[str, object]:
    return {**content, "iterations": [row[:-1] for row in content["iterations"]]}  # type: ignore[attr-defined]


def _next_generation(content: dict[str, object]) -> list[dict[str, float] | None]:
    from stratforge.explore.candidate import ProposalContext
    from stratforge.explore.loop import make_proposer

    proposer = make_proposer(ExploreConfig(state_dir=Path("unused"), **CMAES_CFG), None, [])  # type: ignore[arg-type]
    proposer.restore(content["iterations"][-1][-1])  # type: ignore[index]
    return [c.params for c in proposer.propose(ProposalContext(iteration=99, hypothesis=None, champion=None))]


@pytest.mark.timeout(400)
def test_sigkill_of_the_cli_then_resume_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = start_explore(run, "--max-iterations", "50")
    deadline = time.time() + 600
    while len(finished_iterations(run)) < 2 and time.time() < deadline:
        time.sleep(0.2)
    before = finished_iterations(run)
    assert len(before) >= 2, proc.stdout.read() if proc.poll() is not None and proc.stdout else "too slow"
    time.sleep(0.7)  # land somewhere inside the next iteration
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = store_content(run)
    target = len(killed["iterations"]) + 1  # type: ignore[arg-type]
    resumed = start_explore(run, "--resume", "--max-iterations", str(target - 1))
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    after = store_content(run)
    numbers = [row[0] for row in after["iterations"]]  # type: ignore[union-attr]
    assert numbers == list(range(target)), "iterations are contiguous, none duplicated"
    assert after["iterations"][: len(killed["iterations"])] == killed["iterations"]  # type: ignore[index,arg-type]


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
    live, r1, r2 = (store_content(tmp_path / n) for n in ("live", "r1", "r2"))
    assert r1 == r2 == live
    store = open_readonly(tmp_path / "r1")
    it = store.iteration(1)
    assert it is not None and it.prompt and "DRAFT_STRATEGY_IDEA" in it.prompt and it.response == text
    assert (tmp_path / "r1" / "prompts" / "iter_0001.md").read_text() == it.prompt


def test_a_missing_compiler_stops_the_run_instead_of_failing_every_candidate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Explorer(small_config(tmp_path / "run", max_iterations=1, generation_size=1)).run()
    monkeypatch.setenv("STRATFORGE_SOLC_DIR", str(tmp_path / "no-solc"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no node either
    import stratforge.amm.compiler as compiler

    monkeypatch.setattr(compiler, "bytecode_cache_dir", lambda: tmp_path / "empty-cache")
    resumed = Explorer(small_config(tmp_path / "run", max_iterations=8), resume=True)
    reason = resumed.run()
    assert "compiler unavailable" in reason
    store = open_readonly(tmp_path / "run")
    assert store.totals()["failed"] == 0  # nothing was blamed on the candidates
    assert [i.number for i in store.iterations()] == [0, 1]  # the interrupted iteration is simply re-run


def test_the_run_config_and_its_hypotheses_file_are_what_status_and_prompts_use(tmp_path: Path) -> None:
    extra = tmp_path / "hyps.json"
    extra.write_text(json.dumps([{"id": "H7_custom", "title": "Custom idea", "description": "d"}]))
    run = tmp_path / "run"
    Explorer(small_config(run, max_iterations=1, generation_size=1, hypotheses_file=extra)).run()
    from rich.console import Console

    from stratforge.explore.hypotheses import run_hypotheses
    from stratforge.explore.monitor import hypotheses_table

    store = open_readonly(run)
    assert [h.id for h in run_hypotheses(store)][-1] == "H7_custom"
    console = Console(record=True, width=200)
    console.print(hypotheses_table(store))
    text = console.export_text()
    assert "H7_custom" in text and "Custom idea" in text
