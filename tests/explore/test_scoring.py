"""Racing a generation on common seeds: shared seed prefixes, successive halving, the champion gate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stratforge.amm.engine import run_batch
from stratforge.amm.strategy import FixedFee
from stratforge.explore.candidate import Candidate
from stratforge.explore.config import ExploreConfig
from stratforge.explore.scoring import Scoring
from stratforge.explore.templates import load_library

FEE = load_library()["fixed_fee"]


def fixed(bps: float) -> Candidate:
    return Candidate(FEE.render({"BID_FEE": bps, "ASK_FEE": bps}), "test", "fixed_fee", spec=FixedFee(bps))


def scoring(tmp: Path, **kw: object) -> Scoring:
    cfg = ExploreConfig(state_dir=tmp, stages=(8, 16, 48), workers=1, **kw)  # type: ignore[arg-type]
    return Scoring(cfg)


def test_seed_order_is_a_rotating_permutation_of_the_selection_seeds(tmp_path: Path) -> None:
    s = scoring(tmp_path)
    a, b = s.seed_order(1), s.seed_order(2)
    assert sorted(a) == sorted(b) == list(range(48))
    assert a[0] == 8 and b[0] == 16 and a != b
    assert s.seed_order(6) == s.seed_order(0)  # the window wraps around


def test_members_share_seeds_the_weak_stop_early_and_only_the_best_runs_everything(tmp_path: Path) -> None:
    s = scoring(tmp_path)
    fees = [50, 12, 90, 30, 65, 10]
    members = [s.prepare(fixed(f)) for f in fees]
    order = s.seed_order(3)
    s.race(members, order, champion=None)
    longest = max(members, key=lambda m: len(m.seeds))
    for m in members:
        assert m.seeds == longest.seeds[: len(m.seeds)]  # common random numbers: prefixes of one order
        assert len(m.seeds) >= 8
        np.testing.assert_array_equal(m.edges, run_batch(m.spec, len(m.seeds), seeds=m.seeds, workers=1).edge)  # type: ignore[arg-type]
    assert [len(m.seeds) for m in members].count(48) == 1 and longest.dropped is None
    after_first = [m for m in members if len(m.seeds) > 8]
    assert len(after_first) <= 3  # halving: at most half go on
    # the survivor of the second rung was the best there, and 10/12 bps (far below the others) stopped first
    second = [m for m in members if len(m.seeds) >= 16]
    assert longest is max(second, key=lambda m: m.edges[:16].mean())
    assert all(len(m.seeds) == 8 and m.dropped for m in members if m.candidate.spec.bid_bps <= 12)  # type: ignore[union-attr]


def test_a_generation_of_one_is_the_staged_gate_against_the_champion(tmp_path: Path) -> None:
    s = scoring(tmp_path)
    order = s.seed_order(1)
    champion = run_batch(FixedFee(50), 48, workers=1).edge  # indexed by seed
    weak = s.race([s.prepare(fixed(10))], order, champion)[0]
    assert len(weak.seeds) == 8 and "worse than the champion" in (weak.dropped or "")
    assert weak.stages["8"]["paired_vs_champion"]["high"] < 0
    close = s.race([s.prepare(fixed(50))], order, champion)[0]  # identical to the champion: never below
    assert len(close.seeds) == 48 and close.dropped is None
    assert close.stages["48"]["paired_vs_champion"]["mean_diff"] == 0.0


def test_failed_members_are_reported_and_do_not_race(tmp_path: Path) -> None:
    s = scoring(tmp_path)
    broken = Candidate("contract Nope {}", "test")
    members = [s.prepare(broken), s.prepare(fixed(50))]
    s.race(members, s.seed_order(0), None)
    assert members[0].status == "failed" and members[0].errors and members[0].seeds == []
    assert len(members[1].seeds) == 48
    result = members[0].result()
    assert result.edge is None and result.errors


@pytest.mark.parametrize("bad", [{"keep_fraction": 0.0}, {"stages": (10, 5)}, {"generation_size": 0}])
def test_config_rejects_nonsense(tmp_path: Path, bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ExploreConfig(state_dir=tmp_path, **bad).validate()  # type: ignore[arg-type]
