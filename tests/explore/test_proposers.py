"""Offline proposer: determinism, bounded moves, learning, replay, starter seeding."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stratforge.amm.solidity import EXAMPLES_DIR, check_solidity
from stratforge.explore.candidate import CandidateResult, ProposalContext, Proposer
from stratforge.explore.proposers import (
    KIND_DEFAULT,
    KIND_MUTATE,
    KIND_RECOMBINE,
    OfflineProposer,
)
from stratforge.explore.store import STATUS_EVALUATED, STATUS_FAILED
from stratforge.explore.template_extract import extract_template
from stratforge.explore.templates import load_library

LIB = load_library()


def _fake_edge(template: str, params: dict[str, float]) -> float:
    """A deterministic objective with a known optimum: fair_price_skew at BASE_FEE 35 is best."""
    if template == "fair_price_skew":
        return 450.0 - abs(params["BASE_FEE"] - 35.0)
    return 360.0 + (len(template) % 7)


def _run(seed: int, n: int) -> list[tuple[str | None, dict[str, float], str]]:
    prop = OfflineProposer(LIB, seed=seed)
    out = []
    for i in range(1, n + 1):
        p = prop.draw(i)
        out.append((p.template, p.params, p.kind))
        prop.learn(p.template, p.params, _fake_edge(p.template or "", p.params))
    return out


def test_the_offline_proposer_is_a_proposer() -> None:
    assert isinstance(OfflineProposer(LIB), Proposer)
    generation = OfflineProposer(LIB, seed=1, generation_size=4).propose(ProposalContext(1, "H5_inventory", None))
    assert len(generation) == 4 and generation[0].template == "inventory_skew"
    assert len({c.template for c in generation}) == 4  # untried templates first, each once
    assert all(c.proposer == "offline" and c.spec is None and "{{" not in c.source for c in generation)


def test_same_seed_same_proposals_and_other_seed_differs() -> None:
    a, b, c = _run(3, 30), _run(3, 30), _run(4, 30)
    assert a == b
    assert a != c
    assert len({(t, tuple(sorted(p.items()))) for t, p, _ in a}) == len(a)  # no duplicates


def test_each_template_first_tried_at_defaults_preferring_the_hypothesis() -> None:
    first = OfflineProposer(LIB, seed=0).draw(1, hypothesis="H5_inventory")
    prop = OfflineProposer(LIB, seed=0)
    assert first.kind == KIND_DEFAULT and first.template == "inventory_skew"
    assert first.params == LIB["inventory_skew"].normalize()
    seen = set()
    for i in range(1, len(LIB) + 1):
        p = prop.draw(i)
        prop.learn(p.template, p.params, 370.0)
        seen.add(p.template)
        assert p.kind == KIND_DEFAULT
    assert seen == set(LIB)
    assert prop.draw(len(LIB) + 1).kind != KIND_DEFAULT


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), number=st.integers(1, 10_000))
def test_every_proposal_stays_inside_parameter_ranges(seed: int, number: int) -> None:
    prop = OfflineProposer(LIB, seed=seed)
    for name, t in sorted(LIB.items()):
        prop.learn(name, t.defaults(), 380.0 + len(name))
    p = prop.draw(number)
    t = LIB[p.template]
    for spec in t.params:
        assert spec.min <= p.params[spec.name] <= spec.max
    for a, _, b in t.constraints:
        assert p.params[a] <= p.params[b]
    assert "{{" not in p.source and p.rationale


def test_learning_concentrates_on_the_best_template_and_improves() -> None:
    prop = OfflineProposer(LIB, seed=11)
    edges = []
    counts: dict[str, int] = {}
    for i in range(1, 80):
        p = prop.draw(i)
        e = _fake_edge(p.template or "", p.params)
        edges.append(e)
        prop.learn(p.template, p.params, e)
        if i > len(LIB):
            counts[p.template or ""] = counts.get(p.template or "", 0) + 1
    assert max(counts, key=counts.__getitem__) == "fair_price_skew"
    best = prop.best()
    assert best is not None and best[1] == "fair_price_skew"
    assert best[0] > _fake_edge("fair_price_skew", LIB["fair_price_skew"].defaults())  # beat the defaults
    assert abs(best[2]["BASE_FEE"] - 35.0) < 3.0


def test_mutations_and_recombinations_appear_and_recombine_only_compatible_names() -> None:
    prop = OfflineProposer(LIB, seed=5, mutate_prob=0.3, recombine_prob=0.5)
    kinds = set()
    for i in range(1, 60):
        p = prop.draw(i)
        kinds.add(p.kind)
        if p.kind == KIND_RECOMBINE:
            t = LIB[p.template]
            assert set(p.params) == set(t.param_names)
        prop.learn(p.template, p.params, _fake_edge(p.template or "", p.params))
    assert {KIND_MUTATE, KIND_RECOMBINE} <= kinds


def test_snapshot_restores_everything_learned_including_added_templates() -> None:
    extra = extract_template(LIB["toxicity"].render(), "tox_copy")
    live = OfflineProposer(LIB, seed=2, generation_size=3)
    live.add_template(extra)
    for i in range(1, 8):
        generation = live.propose(ProposalContext(i, None, None, 8))
        results = []
        for j, c in enumerate(generation):
            failed = (i + j) % 5 == 0
            edges = np.full(8, _fake_edge(c.template or "", c.params or {}))
            results.append(
                CandidateResult(c, STATUS_FAILED if failed else STATUS_EVALUATED, range(8) if not failed else (),
                                edges if not failed else np.empty(0))
            )
        live.observe(results)
    restored = OfflineProposer(LIB, seed=2, generation_size=3)
    restored.restore(live.snapshot())
    assert restored.snapshot() == live.snapshot()
    assert "tox_copy" in restored.templates and restored.best() == live.best()
    assert sum(s.failed for s in restored.stats.values()) == sum(s.failed for s in live.stats.values()) > 0
    ctx = ProposalContext(8, "H4_toxicity", None, 8)
    nxt_live, nxt_restored = live.propose(ctx), restored.propose(ctx)
    assert [(c.template, c.params) for c in nxt_live] == [(c.template, c.params) for c in nxt_restored]
    assert len({(c.template, tuple(sorted((c.params or {}).items()))) for c in nxt_live}) == 3


def test_members_stopped_early_count_as_tried_not_as_failed_nor_as_edges() -> None:
    prop = OfflineProposer(LIB, seed=0, generation_size=2)
    a, b = prop.propose(ProposalContext(1, None, None, 8))
    prop.observe([
        CandidateResult(a, STATUS_EVALUATED, range(8), np.full(8, 400.0)),
        CandidateResult(b, STATUS_EVALUATED, range(4), np.full(4, 999.0)),  # dropped after 4 seeds
    ])
    assert prop.best() is not None and prop.best()[0] == 400.0
    stats_b = prop.stats[b.template or ""]
    assert stats_b.tried >= 1 and stats_b.failed == 0


def test_seeded_from_the_starter_proposes_valid_strategies() -> None:
    starter = extract_template((EXAMPLES_DIR / "StarterStrategy.sol").read_text(), "starter")
    prop = OfflineProposer({"starter": starter}, seed=0)
    prop.seed_champion(starter, edge=369.45)
    proposals = [prop.draw(i) for i in range(1, 4)]
    for p in proposals:
        assert p.template == "starter" and p.kind != KIND_DEFAULT
        assert 25 <= p.params["FEE"] <= 75 and p.params["FEE"] != 50
        assert check_solidity(p.source).spec.runtime_code
    # With the full library the starter's champion gets mutated while templates are tried.
    full = OfflineProposer(seed=0)
    full.seed_champion(starter, edge=369.45)
    assert full.draw(1).kind == KIND_DEFAULT  # untried library templates still come first
