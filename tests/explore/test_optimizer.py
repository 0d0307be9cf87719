"""The CMA-ES proposer: search-space transforms, ranking, IPOP restarts, exact snapshot/restore.

The objective here is a synthetic function of the parameters (no simulation), so these tests check
the optimizer's mechanics; the family's real scores are measured by benchmarks/explore_offline.py.
"""

from __future__ import annotations

import math
import pickle
import random

import numpy as np
import pytest

from stratforge.amm.twins import TwinSpec
from stratforge.explore.candidate import Candidate, CandidateResult, ProposalContext, Proposer
from stratforge.explore.optimizer import CmaesProposer, ParamSpace, rank_results
from stratforge.explore.templates import ParamSpec, Template, load_library

FAMILY = load_library()["frontier"]
CTX = ProposalContext(iteration=1, hypothesis=None, champion=None)
TARGET = np.random.default_rng(5).uniform(0.2, 0.8, ParamSpace(FAMILY).dim)


def _edge(space: ParamSpace, params: dict[str, float]) -> float:
    return 500.0 - 100.0 * float(np.sum((space.to_unit(params) - TARGET) ** 2))


def _results(prop: CmaesProposer, gen: list[Candidate], seeds: int = 3) -> list[CandidateResult]:
    out = []
    for c in gen:
        assert c.params is not None
        e = _edge(prop.space, c.params)
        out.append(CandidateResult(c, "evaluated", tuple(range(seeds)), np.full(seeds, e)))
    return out


def test_transforms_round_trip_and_respect_the_ranges() -> None:
    space = ParamSpace(FAMILY)
    rng = random.Random(1)
    for _ in range(50):
        params = {p.name: rng.uniform(p.min, p.max) for p in FAMILY.params}
        u = space.to_unit(params)
        assert np.all((u >= -1e-12) & (u <= 1 + 1e-12))
        back = space.from_unit(u, params)
        for name in space.names:
            assert math.isclose(back[name], params[name], rel_tol=1e-9, abs_tol=1e-12), name
    for a in space.axes:  # the ends of the cube are the ends of the range, inside is inside
        assert math.isclose(a.from_unit(0.0), a.spec.min, abs_tol=1e-12)
        assert math.isclose(a.from_unit(1.0), a.spec.max, rel_tol=1e-12)
        assert a.spec.min <= a.from_unit(0.37) <= a.spec.max
        assert a.from_unit(1.7) == a.spec.max and a.from_unit(-3) == a.spec.min


def test_log_and_decay_scales_spend_the_cube_where_they_should() -> None:
    space = ParamSpace(FAMILY)
    axes = {a.spec.name: a for a in space.axes}
    assert axes["TOX_K3"].scale == "log" and axes["LAMBDA_DECAY"].scale == "decay"
    # log: the middle of the cube is far below the middle of the range
    assert axes["TOX_K3"].from_unit(0.5) < 0.2 * FAMILY.spec("TOX_K3").max
    # log(1 - d): the middle of the cube is close to the top of a decay range
    lo, hi = FAMILY.spec("LAMBDA_DECAY").min, FAMILY.spec("LAMBDA_DECAY").max
    assert axes["LAMBDA_DECAY"].from_unit(0.5) > lo + 0.9 * (hi - lo)
    assert "USE_TAIL" not in space.names  # switches are not searched
    assert "BASE_FEE" not in ParamSpace(FAMILY, fixed=["BASE_FEE"]).names


def test_decay_with_a_range_reaching_one_falls_back_to_linear() -> None:
    t = Template("t", "{{D}}", (ParamSpec("D", "wad", 0.5, 0.0, 1.0),), meta={"scales": {"D": "decay"}})
    (axis,) = ParamSpace(t).axes
    assert axis.scale == "linear" and axis.from_unit(1.0) == 1.0


def test_ranking_puts_racing_survivors_first_and_failures_last() -> None:
    c = Candidate("src", "cmaes")
    results = [
        CandidateResult(c, "evaluated", (0, 1), np.array([600.0, 600.0])),  # dropped early, high
        CandidateResult(c, "evaluated", (0, 1, 2, 3), np.array([500.0, 500, 500, 500])),
        CandidateResult(c, "failed"),
        CandidateResult(c, "evaluated", (0, 1, 2, 3), np.array([510.0, 510, 510, 510])),
        CandidateResult(c, "evaluated", (0, 1), np.array([100.0, np.nan])),
    ]
    f = rank_results(results)
    assert list(np.argsort(f, kind="stable")) == [3, 1, 0, 2, 4]
    assert f[2] == f[4] == max(f)


def test_cmaes_proposer_is_a_proposer_and_improves_a_synthetic_objective() -> None:
    prop = CmaesProposer(FAMILY, seed=3, precompile=False)
    assert isinstance(prop, Proposer)
    first = prop.propose(CTX)
    assert len(first) == prop.popsize and all(c.spec is None and "{{" not in c.source for c in first)
    start = max(r.edge or 0 for r in _results(prop, first))
    prop.observe(_results(prop, first))
    for _ in range(30):
        gen = prop.propose(CTX)
        prop.observe(_results(prop, gen))
    assert prop.best is not None and prop.best.edge > start + 5
    for c in gen:  # every candidate is a valid, normalized parameter set of the template
        assert c.params == FAMILY.normalize(c.params)


def test_snapshot_restore_gives_identical_next_generations() -> None:
    live = CmaesProposer(FAMILY, seed=11, precompile=False, max_generations=3)
    for _ in range(5):
        live.observe(_results(live, live.propose(CTX)))
    snap = live.snapshot()
    resumed = CmaesProposer(FAMILY, seed=999, precompile=False)  # different seed: restore must win
    resumed.restore(snap)
    np.random.seed(12345)  # numpy's global generator plays no part
    for _ in range(6):  # across a restart too (max_generations=3)
        a, b = live.propose(CTX), resumed.propose(CTX)
        assert [c.params for c in a] == [c.params for c in b]
        live.observe(_results(live, a))
        resumed.observe(_results(resumed, b))
    assert live.restarts == resumed.restarts and live.popsize == resumed.popsize


def test_restarts_grow_the_population_from_the_best_point() -> None:
    prop = CmaesProposer(FAMILY, seed=2, precompile=False, max_generations=2, incpopsize=2)
    first_pop = prop.popsize
    for _ in range(12):
        gen = prop.propose(CTX)
        # a flat objective: no new best ever, so every run stalls after max_generations
        prop.observe([CandidateResult(c, "evaluated", (0,), np.array([1.0])) for c in gen])
    assert prop.restarts >= 2
    assert prop.popsize == first_pop * 2**prop.restarts


def _raced(gen: list[Candidate], top_seeds: range, top_edge: float) -> list[CandidateResult]:
    """A racing outcome: the first member reached ``top_seeds``, the others stopped after 10."""
    out = [CandidateResult(gen[0], "evaluated", tuple(top_seeds), np.full(len(top_seeds), top_edge))]
    window = tuple(top_seeds)[:10]
    out += [CandidateResult(c, "evaluated", window, np.full(10, top_edge - 5.0)) for c in gen[1:]]
    return out


def test_a_lucky_racing_window_does_not_hide_later_improvements() -> None:
    # Racing windows rotate: a 100-seed mean on easy seeds (540) is not a better result than a
    # 1000-seed mean of 525. Steady gains on the full seeds are new bests and keep the run going.
    prop = CmaesProposer(FAMILY, seed=4, precompile=False, max_generations=3)
    prop.observe(_raced(prop.propose(CTX), range(200, 300), 540.0))
    for k in range(8):
        prop.observe(_raced(prop.propose(CTX), range(1000), 525.0 + 0.1 * k))
        assert prop.generations_without_gain == 0 and prop.restarts == 0
    assert prop.best is not None and prop.best.edge == pytest.approx(525.7) and len(prop.best.seeds) == 1000
    # A higher mean on another 1000-seed window, or on fewer seeds, is not comparable: no new best.
    for window in (range(7, 1007), range(300, 400)):
        prop.observe(_raced(prop.propose(CTX), window, 600.0))
    assert prop.generations_without_gain == 2 and prop.best.edge == pytest.approx(525.7)
    prop.observe(_raced(prop.propose(CTX), range(1000), 525.0))  # worse on the same seeds
    prop.propose(CTX)  # third generation without a new best: restart from the best point
    assert prop.restarts == 1
    assert prop.base == prop.best.params


def test_a_format_1_snapshot_resumes_with_fresh_records() -> None:
    live = CmaesProposer(FAMILY, seed=8, precompile=False)
    live.observe(_results(live, live.propose(CTX)))
    state = {k: v for k, v in live.__dict__.items() if k != "_precompiled"}
    state.update(_run_best=-520.0, best=(520.0, {}))  # how format 1 stored them
    resumed = CmaesProposer(FAMILY, seed=8, precompile=False)
    resumed.restore(pickle.dumps((1, state)))
    assert resumed.best is None and resumed.generations_without_gain == live.generations_without_gain
    assert [c.params for c in resumed.propose(CTX)] == [c.params for c in live.propose(CTX)]
    with pytest.raises(ValueError, match="format"):
        resumed.restore(pickle.dumps((99, state)))


def test_observe_rejects_a_mismatched_generation_and_snapshot_is_bytes() -> None:
    prop = CmaesProposer(FAMILY, seed=0, precompile=False)
    with pytest.raises(RuntimeError):
        prop.observe([])
    gen = prop.propose(CTX)
    with pytest.raises(ValueError):
        prop.observe(_results(prop, gen)[:-1])
    assert isinstance(prop.snapshot(), bytes) and pickle.loads(prop.snapshot())


def test_added_template_is_tuned_at_the_next_restart() -> None:
    other = load_library()["adaptive_combo"]
    prop = CmaesProposer(FAMILY, seed=4, precompile=False, max_generations=1)
    prop.add_template(other)
    for _ in range(4):
        gen = prop.propose(CTX)
        prop.observe([CandidateResult(c, "evaluated", (0,), np.array([1.0])) for c in gen])
    assert prop.template.name == "adaptive_combo" and {c.template for c in gen} == {"adaptive_combo"}


def test_precompiled_candidates_carry_patched_specs() -> None:
    prop = CmaesProposer(FAMILY, seed=0)
    gen = prop.propose(CTX)
    specs = [c.spec for c in gen]
    assert all(isinstance(s, TwinSpec) for s in specs)  # the frontier family has a native twin
    assert len({s.exact.runtime_code for s in specs}) == len(gen)  # type: ignore[union-attr]
