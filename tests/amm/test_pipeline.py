"""Staged pipeline, paired comparison and their CLI commands."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from _solidity_helpers import DYNAMIC, FIXTURES, STARTER, load
from scipy import stats as scipy_stats
from typer.testing import CliRunner

from stratforge.amm.cli import app
from stratforge.amm.compare import compare, resolve_spec
from stratforge.amm.engine import run_batch
from stratforge.amm.pipeline import run_pipeline
from stratforge.amm.strategy import FixedFee
from stratforge.stats import mean_ci

runner = CliRunner()


def test_pipeline_stages_extend_the_same_seeds(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    result = run_pipeline(STARTER, stages=(2, 3), workers=1, output=out)
    assert result.status == "passed" and [s.simulations for s in result.stages] == [2, 3]
    native = run_batch(FixedFee(50), 3, workers=1)
    assert result.stages[0].mean_edge == pytest.approx(float(np.mean(native.columns["edge"][:2])), abs=1e-9)
    assert result.stages[1].mean_edge == pytest.approx(native.mean_edge, abs=1e-9)
    assert result.stages[1].normalizer_mean_edge == pytest.approx(native.normalizer_mean_edge, abs=1e-9)
    assert result.stages[1].wins + result.stages[1].losses + result.stages[1].draws == 3
    assert result.stages[1].avg_bid_fee_bps == pytest.approx(50.0)
    ci = mean_ci(native.columns["edge"])  # the stage's interval is stratforge.stats' Student t interval
    assert (result.stages[1].edge_ci_low, result.stages[1].edge_ci_high) == pytest.approx((ci.low, ci.high))
    assert native.summary()["edge_ci_low"] == pytest.approx(ci.low)
    doc = json.loads(out.read_text())
    assert doc["status"] == "passed" and doc["edge"] == result.stages[1].mean_edge
    assert set(doc["edge_per_stage"]) == {"2", "3"}
    assert doc["source_sha256"] == load(STARTER).source_hash
    assert doc["compiler_version"].startswith("0.8.24") and doc["simulator_version"]
    assert doc["compiler_settings"] == {
        "optimizer": {"enabled": True, "runs": 200},
        "viaIR": True,
        "evmVersion": "paris",
    }
    assert doc["runtime_code_sha256"] == hashlib.sha256(load(STARTER).runtime_code).hexdigest()
    assert doc["stages"][0]["hook_calls"] > 0 and doc["stages"][0]["hook_failures"] == 0
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left nothing behind


def test_pipeline_stops_below_a_threshold(tmp_path: Path) -> None:
    result = run_pipeline(
        STARTER, stages=(1, 2, 3), thresholds=[0.0, 1e6], workers=1, output=tmp_path / "r.json"
    )
    assert result.status == "stopped"
    assert [(s.simulations, s.passed) for s in result.stages] == [(1, True), (2, False)]


def test_pipeline_stops_on_too_many_hook_failures(tmp_path: Path) -> None:
    result = run_pipeline(
        FIXTURES / "AlwaysReverts.sol",
        stages=(1, 2),
        workers=1,
        output=tmp_path / "r.json",
        max_hook_failure_rate=0.5,
    )
    assert result.status == "stopped" and len(result.stages) == 1
    assert result.stages[0].hook_failures == result.stages[0].hook_calls
    assert "100.0% of hook calls failed" in result.problems[0]


def test_pipeline_reports_rejections(tmp_path: Path) -> None:
    result = run_pipeline(FIXTURES / "StorageOutsideSlots.sol", workers=1, output=tmp_path / "r.json")
    assert result.status == "rejected" and not result.stages
    assert "counter" in result.problems[0]
    assert json.loads((tmp_path / "r.json").read_text())["problems"] == result.problems


def test_pipeline_reports_a_strategy_that_cannot_start(tmp_path: Path) -> None:
    result = run_pipeline(FIXTURES / "BadInit.sol", stages=(1,), workers=1, output=tmp_path / "r.json")
    assert result.status == "failed" and "afterInitialize failed" in result.problems[0]


# ------------------------------------------------------------------------------ statistics


def test_compare_same_strategy_is_a_tie_and_fee_levels_differ() -> None:
    same = compare(load(STARTER), "fixed:50", n=3, workers=1)
    assert same.mean_diff == 0.0 and same.ties == 3 and same.better == "neither"
    res = compare("fixed:50", FixedFee(30), n=6, workers=1)
    a, b = run_batch(FixedFee(50), 6, workers=1), run_batch(FixedFee(30), 6, workers=1)
    diff = a.columns["edge"] - b.columns["edge"]
    assert res.mean_diff == pytest.approx(float(np.mean(diff)))
    # the paired t-test and interval are scipy's (through stratforge.stats), exact degrees of freedom
    ref = scipy_stats.ttest_rel(a.columns["edge"], b.columns["edge"])
    assert (res.t_stat, res.p_value) == pytest.approx((ref.statistic, ref.pvalue), rel=1e-9)
    low, high = ref.confidence_interval(0.95)
    assert res.ci == pytest.approx((low, high), rel=1e-9)
    assert res.a_wins + res.b_wins + res.ties == 6
    expected = "neither" if res.p_value >= 0.05 else "A" if res.mean_diff > 0 else "B"
    assert res.to_dict()["better"] == res.better == expected
    wide = compare("fixed:50", FixedFee(30), n=6, workers=1, alpha=0.01)
    assert wide.ci[0] < res.ci[0] and wide.ci[1] > res.ci[1] and wide.to_dict()["confidence"] == 0.99


def test_resolve_spec() -> None:
    assert resolve_spec("fixed:50/45") == FixedFee(50, 45)
    with pytest.raises(ValueError):
        resolve_spec("fixed:abc")


# ------------------------------------------------------------------------------ CLI


def test_cli_validate() -> None:
    ok = runner.invoke(app, ["validate", str(DYNAMIC)])
    assert ok.exit_code == 0 and "OK" in ok.output
    bad = runner.invoke(app, ["validate", str(FIXTURES / "StorageOutsideSlots.sol")])
    assert bad.exit_code == 1 and "StorageOutsideSlots.sol:9" in bad.output and "Traceback" not in bad.output
    missing = runner.invoke(app, ["validate", "nope.sol"])
    assert missing.exit_code == 2


def test_cli_test_and_compare(tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    res = runner.invoke(app, ["test", str(STARTER), "--stages", "1,2", "-w", "1", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["status"] == "passed"
    bad = runner.invoke(app, ["test", str(STARTER), "--stages", "x"])
    assert bad.exit_code == 2
    cmp_out = tmp_path / "c.json"
    res = runner.invoke(
        app, ["compare", str(STARTER), "fixed:50", "-n", "2", "-w", "1", "--json", str(cmp_out)]
    )
    assert res.exit_code == 0, res.output
    assert "no significant difference" in res.output
    assert json.loads(cmp_out.read_text())["ties"] == 2
