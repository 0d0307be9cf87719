"""Template library, template engine, native twins and the template extractor."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from stratforge.amm.engine import MarketParams, run_batch
from stratforge.amm.solidity import EXAMPLES_DIR, check_solidity
from stratforge.amm.strategy import FixedFee
from stratforge.explore.prompts import load_hypotheses
from stratforge.explore.template_extract import (
    extract_template,
    find_parameter_literals,
    maybe_extract,
    write_extracted,
)
from stratforge.explore.templates import (
    ParamSpec,
    Template,
    TemplateError,
    load_library,
    load_template,
)
from stratforge.explore.templates.reference import REFERENCES

LIB = load_library()
#: Templates with a pure-Python twin (the frontier family has none: it runs patched in the EVM).
TWINNED = sorted(n for n in LIB if n in REFERENCES)
SHORT = MarketParams(n_steps=1500)  # short simulations: parity checks need equality, not realism


def test_library_covers_every_core_hypothesis_with_valid_schemas() -> None:
    hyp_ids = {h.id for h in load_hypotheses()}
    assert len(hyp_ids) == 6
    covered = {t.hypothesis for t in LIB.values()}
    assert covered == hyp_ids
    for t in LIB.values():
        assert t.hypothesis in hyp_ids
        for p in t.params:
            assert p.min <= p.default <= p.max
            if p.type == "bps":
                assert p.max <= 1000  # a fee can never exceed 10 %


def test_render_writes_wad_integers_and_fills_every_placeholder() -> None:
    t = LIB["fair_price_skew"]
    src = t.render({"BASE_FEE": 40, "ALPHA": 0.25}, strategy_name="my strat")
    assert "{{" not in src
    assert "uint256 constant BASE_FEE = 4000000000000000;" in src  # 40 bps in WAD
    assert "uint256 constant ALPHA = 250000000000000000;" in src
    assert 'return "my strat";' in src


def test_normalize_clips_and_repairs_constraints() -> None:
    t = LIB["fair_price_skew"]
    v = t.normalize({"BASE_FEE": 1e6, "FEE_FLOOR": 70, "ALPHA": -3})
    assert v["BASE_FEE"] == t.spec("BASE_FEE").max
    assert v["ALPHA"] == t.spec("ALPHA").min
    assert v["FEE_FLOOR"] <= v["BASE_FEE"] <= v["FEE_CAP"]
    with pytest.raises(TemplateError):
        t.normalize({"NOPE": 1})


def test_placeholders_must_match_schema() -> None:
    p = ParamSpec("A", "int", 5, 0, 10)
    with pytest.raises(TemplateError):
        Template("bad", "x = {{A}}; y = {{B}};", (p,))
    with pytest.raises(TemplateError):
        ParamSpec("A", "int", 50, 0, 10)  # default outside range


def test_every_template_renders_validates_and_compiles_with_defaults() -> None:
    for name, t in LIB.items():
        loaded = check_solidity(t.render())
        assert loaded.spec.runtime_code, name


def _evm_vs_native(t: Template, params: dict[str, float]) -> None:
    evm = check_solidity(t.render(params)).spec
    native = t.reference_spec(params)
    a = run_batch(evm, 1, seed_start=3, workers=1, market=SHORT)
    b = run_batch(native, 1, seed_start=3, workers=1, market=SHORT)
    assert a.columns["hook_failures"][0] == 0 and b.columns["hook_failures"][0] == 0
    assert a.mean_edge == b.mean_edge, t.name  # same integer arithmetic -> identical fees and edge


@pytest.mark.parametrize("name", TWINNED)
def test_native_twin_matches_evm_at_defaults(name: str) -> None:
    _evm_vs_native(LIB[name], LIB[name].defaults())


@pytest.mark.slow
@pytest.mark.parametrize("name", TWINNED)
def test_native_twin_matches_evm_at_random_params(name: str) -> None:
    t = LIB[name]
    rng = random.Random(name)
    _evm_vs_native(t, {p.name: rng.uniform(p.min, p.max) for p in t.params})


def test_fair_price_template_beats_the_starter_on_the_same_seeds() -> None:
    """The library is a useful starting point: fair-price inference beats fixed 50 bps (369 at 1000)."""
    starter = run_batch(FixedFee(50), 16, workers=1)
    fair = run_batch(LIB["fair_price_skew"].reference_spec(), 16, workers=1)
    assert fair.mean_edge > starter.mean_edge + 20


# -- extractor --------------------------------------------------------------------------------------

STARTER = (EXAMPLES_DIR / "StarterStrategy.sol").read_text()


def test_starter_extracts_its_fee_and_renders_back() -> None:
    t = extract_template(STARTER, "StarterStrategy")
    assert [(p.name, p.default, p.min, p.max) for p in t.params] == [("FEE", 50, 25, 75)]
    assert t.render(t.defaults()) == STARTER
    assert "50 * BPS" in t.render({"FEE": 50}) and "62 * BPS" in t.render({"FEE": 62})


SAMPLE = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
import {AMMStrategyBase} from "./AMMStrategyBase.sol";
import {IAMMStrategy, TradeInfo} from "./IAMMStrategy.sol";
/* 77 in a block comment */
contract Strategy is AMMStrategyBase {
    uint256 constant DECAY = 900000000000000000; // 0.9, also 55 here in a comment
    uint256 constant KNEE = 25e14;
    uint256 constant ODD = 250e13;
    uint256 constant UNIT = 1e18;
    function afterInitialize(uint256, uint256) external override returns (uint256, uint256) {
        slots[3] = 10 ** 18;
        writeSlot(7, 0);
        return (bpsToWad(45), 30 * BPS);
    }
    function afterSwap(TradeInfo calldata t) external override returns (uint256, uint256) {
        uint256 m = (slots[1] + t.amountY) / 2;
        for (uint256 i = 0; i < 8; i++) { m = wmul(m, DECAY); }
        return (clampFee(m * 3), 30 * BPS);
    }
    function getName() external pure override returns (string memory) { return "S 99"; }
}
"""


def test_extractor_picks_parameters_and_skips_structure() -> None:
    values = [lit.text for lit in find_parameter_literals(SAMPLE)]
    # 900..0 decay, 25e14 knee, 250e13 (found but not re-writable), 45 bps, 30 bps, loop cap 8, 3, 30 bps
    assert values == ["900000000000000000", "25e14", "250e13", "45", "30", "8", "3", "30"]
    t = extract_template(SAMPLE, "Sample Strat!", hypothesis="H4_toxicity")
    assert t.name == "sample_strat"
    names = t.param_names
    assert names[:2] == ("DECAY", "KNEE") and len(names) == 7  # 250e13 stays a literal
    assert t.render(t.defaults()) == SAMPLE
    decay = t.spec("DECAY")
    assert decay.max < 1e18 and decay.min >= 5e16  # a decay factor stays a fraction
    assert t.spec("KNEE").format == "sci"
    assert "KNEE = 3e15" in t.render({"KNEE": 3e15})
    for p in t.params:
        assert p.min >= 0 and p.min <= p.default <= p.max


def test_write_and_reload_extracted_template(tmp_path: Path) -> None:
    t = extract_template(SAMPLE, "sample")
    path = write_extracted(t, tmp_path)
    again = load_template(path)
    assert again.text == t.text and again.params == t.params
    schema = json.loads((tmp_path / "sample.json").read_text())
    assert schema["name"] == "sample" and len(schema["params"]) == 7
    assert "| `DECAY` |" in (tmp_path / "sample.md").read_text()
    assert load_library([tmp_path])["sample"].text == t.text  # user dirs merge into the library


def test_maybe_extract_respects_threshold(tmp_path: Path) -> None:
    assert maybe_extract(SAMPLE, 380.0, "low", tmp_path) is None
    assert maybe_extract(SAMPLE, None, "none", tmp_path) is None
    t = maybe_extract(SAMPLE, 401.5, "high", tmp_path)
    assert t is not None and (tmp_path / "high.sol.template").exists()
    assert t.meta["source_edge"] == 401.5


def test_extracted_template_from_a_shipped_strategy_compiles_when_mutated() -> None:
    src = LIB["toxicity"].render()
    t = extract_template(src, "tox_copy")
    assert t.render(t.defaults()) == src
    rng = random.Random(0)
    mutated = {p.name: rng.uniform(p.min, p.max) for p in t.params}
    assert check_solidity(t.render(mutated)).spec.runtime_code
