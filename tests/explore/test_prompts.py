"""Prompt builder: structure, context, adaptivity, determinism, size bound, saving."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stratforge.explore.prompts import (
    CONTRACTS_DIR,
    RESPONSE_HEADERS,
    Hypothesis,
    PromptConfig,
    build_and_save,
    build_prompt,
    diagnostics,
    least_explored,
    load_hypotheses,
)
from stratforge.explore.store import STATUS_EVALUATED, STATUS_FAILED, RunStore, open_run

HYPS = load_hypotheses()


def _populate(store: RunStore) -> None:
    rows = [
        ("H1_volatility", 380.0, None),
        ("H1_volatility", 395.5, None),
        ("H3_fair_price", 431.25, None),
        ("H2_asymmetric", None, "Compiler error: Undeclared identifier 'foo' at line 12"),
    ]
    for hyp, edge, err in rows:
        n = store.begin_iteration(hypothesis=hyp, template="fair_price_skew" if edge else None)
        store.save_source(n, f"// strategy {n}\ncontract Strategy is AMMStrategyBase {{}}\n")
        if err:
            store.finish_iteration(n, status=STATUS_FAILED, errors=[err])
        else:
            diag = {
                "avg_bid_fee_bps": 41.5,
                "avg_ask_fee_bps": 43.0,
                "mean_arb_volume_y": 9000.0,
                "simulations": 100,
            }
            store.finish_iteration(n, status=STATUS_EVALUATED, edge=edge, stage_results={"diagnostics": diag})
    store.record_champion(3, 431.25, reason="significantly better than #2", holdout_edge=428.0)


def test_structure_and_context(tmp_path: Path) -> None:
    with open_run(tmp_path) as store:
        _populate(store)
        built = build_prompt(store, HYPS)
    text = built.text
    for header in RESPONSE_HEADERS:
        assert text.count(header + "\n") == 1
    assert text.index(RESPONSE_HEADERS[0]) < text.index(RESPONSE_HEADERS[2]) < text.index(RESPONSE_HEADERS[3])
    assert "```solidity" in text and '"hypothesis"' in text
    if (CONTRACTS_DIR / "AMMStrategyBase.sol").exists():
        assert "uint256[32] public slots" in text  # the shipped base contract text
    assert "Iteration 3: edge 431.25, holdout edge 428.00" in text
    assert "// strategy 3" in text  # champion source
    assert "| 2 | 395.50 | 100 | H1_volatility |" in text  # a top strategy with diagnostics
    assert "avg bid fee (bps) 41.5" in text
    assert "Undeclared identifier 'foo'" in text  # a recent failure with its message
    # H1 has 2 iterations, H3 and H2 one each; H4, H5, H6 none -> the first of those in file order
    assert built.hypothesis.id == "H4_toxicity"
    assert "## Focus for this iteration: H4_toxicity" in text
    assert not built.truncated


def test_adapts_to_coverage_and_is_deterministic(tmp_path: Path) -> None:
    with open_run(tmp_path / "a") as a, open_run(tmp_path / "b") as b:
        _populate(a)
        _populate(b)
        assert build_prompt(a, HYPS).text == build_prompt(b, HYPS).text == build_prompt(a, HYPS).text
        for hyp in ("H4_toxicity", "H5_inventory"):
            n = a.begin_iteration(hypothesis=hyp)
            a.finish_iteration(n, status=STATUS_EVALUATED, edge=350.0)
        assert build_prompt(a, HYPS).hypothesis.id == "H6_regime"
        assert build_prompt(a, HYPS, focus="H2_asymmetric").hypothesis.id == "H2_asymmetric"
        with pytest.raises(ValueError):
            build_prompt(a, HYPS, focus="nope")


def test_diagnostics_from_the_loops_stage_results() -> None:
    stages = {
        "10": {"summary": {"avg_bid_fee_bps": 10.0}},
        "100": {"summary": {"avg_bid_fee_bps": 38.25, "mean_retail_volume_y": 5.0}, "vs_champion": {}},
    }
    assert diagnostics(stages) == {"avg_bid_fee_bps": 38.25, "mean_retail_volume_y": 5.0}
    assert diagnostics({"stages": [{"summary": {"x": 1}}]}) == {"x": 1}
    assert diagnostics({}) == {}


def test_least_explored_tie_breaks() -> None:
    hyps = [Hypothesis(i, i, "", "") for i in ("a", "b", "c")]
    cov = {"a": {"iterations": 1, "best_edge": 400.0}, "b": {"iterations": 1, "best_edge": 380.0}}
    assert least_explored(hyps, cov).id == "c"  # unexplored
    cov["c"] = {"iterations": 1, "best_edge": 380.0}
    assert least_explored(hyps, cov).id == "b"  # lowest best edge, then file order


def test_prompt_size_is_bounded_with_a_note(tmp_path: Path) -> None:
    with open_run(tmp_path) as store:
        n = store.begin_iteration(hypothesis="H1_volatility")
        store.save_source(n, "// filler line of a very long strategy\n" * 3000)
        store.finish_iteration(n, status=STATUS_EVALUATED, edge=400.0)
        store.record_champion(n, 400.0, reason="first")
        for _ in range(6):
            m = store.begin_iteration(hypothesis="H2_asymmetric")
            store.finish_iteration(m, status=STATUS_FAILED, errors=["error detail " * 200] * 5)
        cfg = PromptConfig(max_chars=20000)
        built = build_prompt(store, HYPS, config=cfg)
    assert len(built.text) <= cfg.max_chars
    assert built.truncated
    assert "truncated" in built.text and "older failures not shown" in built.text
    assert built.text.rstrip().endswith("```")  # the answer format is never cut


def test_user_hypotheses_merge(tmp_path: Path) -> None:
    extra = tmp_path / "mine.json"
    extra.write_text(
        json.dumps(
            {
                "hypotheses": [
                    {"id": "H1_volatility", "title": "Vol (mine)", "description": "d", "guidance": "g"},
                    {"id": "U1_time", "title": "Time of day", "description": "d2"},
                ]
            }
        )
    )
    merged = load_hypotheses([extra])
    assert [h.id for h in merged][:1] == ["H1_volatility"] and merged[0].title == "Vol (mine)"
    assert merged[-1].id == "U1_time" and len(merged) == 7
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"id": "x"}]))
    with pytest.raises(ValueError):
        load_hypotheses([bad])


def test_build_and_save_writes_store_and_file(tmp_path: Path) -> None:
    with open_run(tmp_path) as store:
        n = store.begin_iteration(hypothesis=None)
        built = build_and_save(store, n, HYPS)
        assert (tmp_path / "prompts" / "iter_0001.md").read_text() == built.text
        it = store.iteration(n)
        assert it is not None and it.prompt == built.text
