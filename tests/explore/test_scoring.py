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
from stratforge.stats import paired

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


def test_the_last_rung_stops_at_the_first_look_where_the_best_is_clearly_below_the_champion(
    tmp_path: Path,
) -> None:
    """With looks every 8 seeds, a best stops at the first look whose paired interval against the
    champion lies below zero, and runs to the end when there is none. The champion's per-seed edges
    are the member's own plus chosen offsets: even for the first two rungs (the staged gate keeps
    it), then a clear lead over the seeds of the last rung (or none)."""
    looked, plain = scoring(tmp_path, final_look_sims=8), scoring(tmp_path, final_look_sims=0)
    order = looked.seed_order(2)
    own = run_batch(FixedFee(50), 48, workers=1).edge  # indexed by seed
    wiggle = np.resize([1.0, -1.0], 48)
    for lead, expect_stop in ((0.8, True), (0.0, False)):
        offsets = wiggle.copy()
        offsets[16:] = lead + 0.5 * wiggle[16:]
        champion = own.copy()
        champion[np.asarray(order)] += offsets  # offsets[j] belongs to the j-th seed raced
        expected = next((n for n in (24, 32, 40, 48) if paired(-offsets[:n], np.zeros(n)).high < 0), 48)
        member = looked.race([looked.prepare(fixed(50))], order, champion)[0]
        assert len(member.seeds) == expected
        assert (expected < 48) is expect_stop  # the design: a stop inside the last rung, or a full run
        assert ("worse than the champion" in (member.dropped or "")) is expect_stop
        assert {str(n) for n in (24, 32, 40, 48) if n <= expected} <= set(member.stages)
        full = plain.race([plain.prepare(fixed(50))], order, champion)[0]  # without looks: every seed
        assert len(full.seeds) == 48
        np.testing.assert_array_equal(member.edges, full.edges[:expected])  # same seeds, same edges


def test_failed_members_are_reported_and_do_not_race(tmp_path: Path) -> None:
    s = scoring(tmp_path)
    broken = Candidate("contract Nope {}", "test")
    members = [s.prepare(broken), s.prepare(fixed(50))]
    s.race(members, s.seed_order(0), None)
    assert members[0].status == "failed" and members[0].errors and members[0].seeds == []
    assert len(members[1].seeds) == 48
    result = members[0].result()
    assert result.edge is None and result.errors


@pytest.mark.parametrize(
    "bad", [{"keep_fraction": 0.0}, {"stages": (10, 5)}, {"generation_size": 0}, {"final_look_sims": -1}]
)
def test_config_rejects_nonsense(tmp_path: Path, bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ExploreConfig(state_dir=tmp_path, **bad).validate()  # type: ignore[arg-type]
