"""Run store: round trips, resume semantics, and crash safety under SIGKILL."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from stratforge.explore.store import (
    STATUS_EVALUATED,
    STATUS_FAILED,
    NoRunError,
    RunExistsError,
    open_run,
    source_hash,
)


def test_iteration_round_trip_and_files(tmp_path: Path) -> None:
    with open_run(tmp_path, config={"budget": 3}, seed=7, versions={"sim": "a"}) as store:
        n = store.begin_iteration(hypothesis="H1_volatility", proposer="offline", params={"FEE": 40})
        assert n == 1
        assert store.in_flight() == [1]
        prompt_path = store.save_prompt(n, "# prompt\n")
        src_path = store.save_source(n, "contract Strategy {}\n")
        store.finish_iteration(
            n,
            status=STATUS_EVALUATED,
            edge=371.5,
            stage_results={"10": {"edge": 390.0}},
            tokens_in=10,
            tokens_out=20,
            cost_usd=0.01,
            timings={"eval": 1.5},
        )
        assert store.in_flight() == []
        it = store.iteration(n)
        assert it is not None and it.finished
        assert it.edge == 371.5 and it.params == {"FEE": 40}
        assert it.stage_results == {"10": {"edge": 390.0}}
        assert it.source_hash == source_hash("contract Strategy {}")
        assert prompt_path.read_text() == "# prompt\n" and prompt_path.name == "iter_0001.md"
        assert src_path.read_text() == "contract Strategy {}\n" and src_path.name == "iter_0001.sol"
        assert store.find_by_hash(it.source_hash) is not None
        info = store.run_info()
        assert info.seed == 7 and info.config == {"budget": 3} and info.versions == {"sim": "a"}
        with pytest.raises(ValueError):
            store.finish_iteration(n, status=STATUS_EVALUATED, edge=1.0)  # already finished
        with pytest.raises(ValueError):
            store.begin_iteration(n)  # finished work is never replaced


def test_new_run_refuses_existing_and_resume_needs_run(tmp_path: Path) -> None:
    with pytest.raises(NoRunError):
        open_run(tmp_path / "empty", resume=True)
    open_run(tmp_path).close()
    with pytest.raises(RunExistsError):
        open_run(tmp_path)
    with open_run(tmp_path, resume=True, versions={"sim": "b"}) as store:
        kinds = [e.kind for e in store.events()]
        assert "resume" in kinds and "versions_changed" in kinds
        assert store.run_info().versions == {"sim": "b"}


def test_in_flight_iteration_is_replaced_not_duplicated(tmp_path: Path) -> None:
    with open_run(tmp_path) as store:
        for _ in range(2):
            n = store.begin_iteration(hypothesis="H2")
            store.finish_iteration(n, status=STATUS_FAILED, errors=["compile error: x"])
        store.begin_iteration(hypothesis="H3")  # number 3, never finished: "killed"
    with open_run(tmp_path, resume=True) as store:
        assert store.in_flight() == [3]
        assert store.next_iteration_number() == 3
        n = store.begin_iteration(hypothesis="H3")
        assert n == 3
        store.finish_iteration(n, status=STATUS_EVALUATED, edge=380.0)
        rows = store.iterations()
        assert [r.number for r in rows] == [1, 2, 3]
        assert rows[2].attempt == 2
        assert store.next_iteration_number() == 4
        assert [f.number for f in store.recent_failures(5)] == [2, 1]
        assert store.recent_failures(5)[0].errors == ["compile error: x"]


def test_coverage_champions_templates_events(tmp_path: Path) -> None:
    with open_run(tmp_path) as store:
        for hyp, edge in [("A", 370.0), ("A", 380.0), ("B", None)]:
            n = store.begin_iteration(hypothesis=hyp)
            store.save_source(n, f"// {hyp} {edge}")
            if edge is None:
                store.finish_iteration(n, status=STATUS_FAILED, errors=["bad"])
            else:
                store.finish_iteration(n, status=STATUS_EVALUATED, edge=edge)
        cov = store.hypothesis_coverage(["A", "B", "C"])
        assert cov["A"] == {"iterations": 2, "evaluated": 2, "best_edge": 380.0}
        assert cov["B"] == {"iterations": 1, "evaluated": 0, "best_edge": None}
        assert cov["C"]["iterations"] == 0
        assert [t.edge for t in store.top_iterations(5)] == [380.0, 370.0]
        store.record_champion(1, 370.0, reason="first valid")
        store.record_champion(2, 380.0, reason="beats champion", stats={"p": 0.01}, holdout_edge=378.0)
        assert store.champion() is not None and store.champion().iteration == 2
        assert [c.iteration for c in store.champion_history()] == [1, 2]
        assert (tmp_path / "champion.sol").read_text() == "// A 380.0"
        store.add_template("fee_sweep", tmp_path / "t.sol.template", {"params": []}, edge=380.0)
        assert [t.name for t in store.templates()] == ["fee_sweep"]
        store.add_event("plateau", "no progress", level="alert", data={"window": 10})
        assert store.events(level="alert")[0].data == {"window": 10}
        assert store.totals()["evaluated"] == 2 and store.totals()["failed"] == 1


_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from stratforge.explore.store import open_run, RunExistsError, STATUS_EVALUATED

    run_dir, target = Path(sys.argv[1]), int(sys.argv[2])
    try:
        store = open_run(run_dir, seed=1)
    except RunExistsError:
        store = open_run(run_dir, resume=True)
    while True:
        n = store.next_iteration_number()
        if n > target:
            break
        store.begin_iteration(n, hypothesis=f"H{n % 3}", proposer="writer")
        store.save_prompt(n, f"prompt {n}\\n" * 50)
        store.save_source(n, f"// source {n}\\n" * 50)
        store.add_event("progress", f"iteration {n} evaluated", iteration=n)
        store.finish_iteration(n, status=STATUS_EVALUATED, edge=float(n), stage_results={"n": n})
        print(n, flush=True)
    store.close()
    """
)


def _run_writer(run_dir: Path, target: int, kill_after: float | None) -> list[int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(run_dir), str(target)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if kill_after is None:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    else:
        time.sleep(kill_after)
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=600)
    return [int(x) for x in out.split()]


def test_sigkill_at_random_points_keeps_every_finished_iteration_once(tmp_path: Path) -> None:
    rng = random.Random(12345)
    target = 400
    reported: list[int] = []
    for _ in range(5):
        # Interpreter start takes ~0.1-0.3 s; kill somewhere in the middle of the write loop.
        reported += _run_writer(tmp_path, target, kill_after=rng.uniform(0.3, 1.0))
        conn = sqlite3.connect(tmp_path / "run.sqlite")
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        numbers = [r[0] for r in conn.execute("SELECT number FROM iterations ORDER BY number")]
        unfinished = [r[0] for r in conn.execute("SELECT number FROM iterations WHERE finished_at IS NULL")]
        conn.close()
        assert numbers == list(range(1, len(numbers) + 1))  # no gaps, no duplicates
        assert len(unfinished) <= 1  # at most the one iteration in flight at the kill
        assert set(reported) <= set(numbers) - set(unfinished)  # everything reported finished is there
    assert reported, "the writer never got going; kill window too early for this machine"
    reported += _run_writer(tmp_path, target, kill_after=None)
    assert sorted(reported) == sorted(set(reported))  # nothing was re-done after it was reported
    (tmp_path / "generated" / ".iter_0001.sol.x1.tmp").write_text("partial write of a killed process")
    with open_run(tmp_path, resume=True) as store:
        assert store.integrity_check() == "ok"
        rows = store.iterations()
        assert [r.number for r in rows] == list(range(1, target + 1))
        assert all(r.status == STATUS_EVALUATED and r.edge == float(r.number) for r in rows)
        assert store.in_flight() == []
        for r in rows[:: max(1, target // 20)]:
            assert store.generated_path(r.number).read_text() == r.source
    assert not list(tmp_path.glob("*/.*.tmp"))  # temporary files of interrupted writes are cleaned up


def test_write_iteration_stores_record_members_snapshot_champion_templates_and_events_at_once(
    tmp_path: Path,
) -> None:
    from stratforge.explore.store import ChampionChange, IterationRecord, Member, NewEvent, NewTemplate

    with open_run(tmp_path) as store:
        rec = IterationRecord(
            number=1,
            status=STATUS_EVALUATED,
            proposer="offline",
            hypothesis="H1_volatility",
            source="contract Strategy {}\n",
            template="vol_ema",
            params={"K": 1.5},
            edge=401.0,
            holdout_edge=398.0,
            stage_results={"10": {"summary": {"mean_edge": 401.0}}},
            proposer_state=b"\x00state",
            members=[
                Member(0, "contract Strategy {}\n", "vol_ema", {"K": 1.5}, STATUS_EVALUATED, 401.0, 10),
                Member(1, "", None, None, STATUS_FAILED, None, 0, ["does not compile"]),
            ],
            champion=ChampionChange(401.0, "beats #0", {"selection_edges": [401.0]}, 398.0),
            templates=[NewTemplate("t1", str(tmp_path / "t1.sol.template"), {"name": "t1"}, 401.0)],
            events=[NewEvent("champion", "new champion #1")],
        )
        store.write_iteration(rec)
        it = store.iteration(1)
        assert it is not None and it.finished and it.edge == 401.0 and it.prompt is None
        assert [m.status for m in store.members(1)] == [STATUS_EVALUATED, STATUS_FAILED]
        assert store.members(1)[1].errors == ["does not compile"]
        assert store.proposer_state() == b"\x00state"
        assert store.champion() is not None and store.champion().iteration == 1  # type: ignore[union-attr]
        assert [t.source_iteration for t in store.templates()] == [1]
        assert [e.iteration for e in store.events(kind="champion")] == [1]
        assert (tmp_path / "champion.sol").read_text() == "contract Strategy {}\n"
        assert (tmp_path / "generated" / "iter_0001.sol").exists()
        assert not (tmp_path / "prompts").exists()  # nothing was sent: no prompt file
        with pytest.raises(ValueError):
            store.write_iteration(rec)  # a finished iteration is never replaced
        # a failure inside the transaction leaves nothing behind (here: a duplicate member index)
        bad = IterationRecord(number=2, status=STATUS_FAILED, proposer="x",
                              members=[Member(0, "a", None, None, STATUS_FAILED, None, 0)] * 2,
                              events=[NewEvent("iteration", "never written")])
        with pytest.raises(sqlite3.IntegrityError):
            store.write_iteration(bad)
        assert store.iteration(2) is None and store.events(kind="iteration") == []
        assert store.proposer_state() == b"\x00state"
