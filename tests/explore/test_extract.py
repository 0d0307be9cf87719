"""Example-based tests of the response extractor: one per malformed shape models actually produce."""

from __future__ import annotations

import time

import pytest

from stratforge.explore.extract import extract_response, parse_json_tolerant

from .fakes.llm_fakes import recorded

VALID = recorded("valid_response.md")
CONTRACT = VALID.split("```solidity\n", 1)[1].split("```", 1)[0]
META = '{"name": "ShockDecay", "base_fee_bps": 35}'


def test_valid_response_all_parts():
    ex = extract_response(VALID)
    assert ex.ok and ex.structure_ok and ex.failure_reason is None and ex.warnings == []
    assert ex.code == CONTRACT and ex.contract_name == "Strategy"
    assert ex.metadata["name"] == "ShockDecay" and ex.metadata["parameters"]["decay"] == 0.25
    assert ex.sections["draft"].startswith("Widen the fee") and "Risk:" in ex.sections["review"]
    assert not ex.metadata_partial and ex.metadata_error is None


@pytest.mark.parametrize(
    "headings",
    [
        ["# DRAFT_STRATEGY_IDEA", "# DESIGN_REVIEW", "# REVISED_IMPLEMENTATION", "# STRATEGY_METADATA"],
        [
            "**Draft strategy idea**",
            "**Design review**",
            "**Revised implementation**",
            "**Strategy metadata**",
        ],
        ["1. DRAFT_STRATEGY_IDEA", "2. DESIGN_REVIEW", "3. REVISED_IMPLEMENTATION", "4. STRATEGY_METADATA"],
        [
            "### 1) Draft Strategy Idea:",
            "### 2) Design Review:",
            "### 3) Revised Implementation:",
            "### 4) Metadata",
        ],
        [
            "Step 1 - draft_strategy_idea",
            "Step 2 - design-review",
            "Step 3 - revised implementation",
            "Step 4 - strategy metadata",
        ],
        [
            "## **DRAFT_STRATEGY_IDEA**",
            "## **DESIGN_REVIEW**",
            "## **REVISED_IMPLEMENTATION** (final)",
            "## **STRATEGY_METADATA** ##",
        ],
        ["DRAFT_STRATEGY_IDEA:", "DESIGN_REVIEW:", "REVISED_IMPLEMENTATION:", "STRATEGY_METADATA:"],
    ],
)
def test_heading_variations(headings):
    body = [
        headings[0],
        "An idea.",
        "",
        headings[1],
        "A review.",
        "",
        headings[2],
        "```solidity",
        CONTRACT.rstrip("\n"),
        "```",
        "",
        headings[3],
        "```json",
        META,
        "```",
    ]
    ex = extract_response("\n".join(body))
    assert ex.structure_ok, (headings, ex.section_order)
    assert ex.code == CONTRACT and ex.metadata == {"name": "ShockDecay", "base_fee_bps": 35}
    assert ex.sections["draft"] == "An idea." and ex.sections["review"] == "A review."


def test_inline_heading_content_and_prose_not_taken_for_headings():
    text = (
        "**Draft:** widen after shocks.\n"
        "Review the fees carefully, this line is prose.\n"
        "**Design review:** too slow decay.\n"
        "## Revised implementation\n```sol\n" + CONTRACT + "```\n"
        "## Metadata\n```json\n" + META + "\n```\n"
    )
    ex = extract_response(text)
    assert ex.structure_ok and ex.sections["draft"].startswith("widen after shocks.")
    assert "prose" in ex.sections["draft"] and ex.sections["review"] == "too slow decay."


def test_sections_out_of_order_and_missing():
    text = "## DESIGN_REVIEW\nr\n## DRAFT_STRATEGY_IDEA\nd\n```solidity\n" + CONTRACT + "```\n"
    ex = extract_response(text)
    assert ex.ok and not ex.structure_ok and ex.section_order == ["review", "draft"]
    assert any("missing section(s): REVISED_IMPLEMENTATION, STRATEGY_METADATA" in w for w in ex.warnings)
    assert ex.metadata is None and ex.metadata_error == "no STRATEGY_METADATA JSON found"


def test_echoed_format_list_does_not_hide_real_sections():
    echo = (
        "I will answer in four parts:\n1. DRAFT_STRATEGY_IDEA\n2. DESIGN_REVIEW\n3. REVISED_IMPLEMENTATION\n"
    )
    echo += "4. STRATEGY_METADATA\n\n"
    ex = extract_response(echo + VALID)
    assert ex.structure_ok and ex.code == CONTRACT and ex.sections["draft"].startswith("Widen")


def test_no_fences_code_in_prose():
    text = (
        "## REVISED_IMPLEMENTATION\nHere is the final contract, it keeps fees adaptive.\n\n"
        + CONTRACT
        + "\nThis should beat the 30 bps normalizer.\n## STRATEGY_METADATA\n"
        + META
        + "\n"
    )
    ex = extract_response(text)
    assert ex.code == CONTRACT and ex.metadata == {"name": "ShockDecay", "base_fee_bps": 35}
    assert "code was not fenced; took it from the prose" in ex.warnings


@pytest.mark.parametrize("fence", ["```sol", "```solidity", "```", "~~~solidity", "````Solidity"])
def test_fence_flavours(fence):
    close = fence[: len(fence) - len(fence.lstrip("`~"))]
    text = f"## REVISED_IMPLEMENTATION\n{fence}\n{CONTRACT}{close}\n"
    ex = extract_response(text)
    assert ex.code == CONTRACT, fence


def test_several_blocks_prefers_revised_strategy():
    draft_code = "contract Draft {\n    uint256 x;\n}\n"
    other_strategy = "contract Strategy {\n    // early sketch\n}\n"
    text = (
        "## DRAFT_STRATEGY_IDEA\n```solidity\n" + draft_code + "```\n"
        "```solidity\n" + other_strategy + "```\n"
        "## DESIGN_REVIEW\n```solidity\nuint256 constant FEE = 30;\n```\n"
        "## REVISED_IMPLEMENTATION\n```solidity\n" + CONTRACT + "```\n"
        "```json\n" + META + "\n```\n"
    )
    ex = extract_response(text)
    assert ex.code == CONTRACT
    assert any("3 code blocks contain a contract" in w for w in ex.warnings)
    assert ex.metadata == {"name": "ShockDecay", "base_fee_bps": 35}  # json fence found outside its section


def test_strategy_contract_outside_revised_still_beats_other_names():
    text = (
        "## REVISED_IMPLEMENTATION\n```solidity\ncontract Helper {\n}\n```\n```solidity\n"
        + CONTRACT
        + "```\n"
    )
    ex = extract_response(text)
    assert ex.code == CONTRACT and ex.contract_name == "Strategy"


def test_unterminated_fence_before_metadata_heading():
    text = (
        "## REVISED_IMPLEMENTATION\n```solidity\n"
        + CONTRACT
        + "\n## STRATEGY_METADATA\n```json\n"
        + META
        + "\n```\n"
    )
    ex = extract_response(text)
    assert ex.code == CONTRACT and "the code fence is not closed" in ex.warnings
    assert ex.metadata == {"name": "ShockDecay", "base_fee_bps": 35}


def test_truncated_code_is_returned_with_a_warning():
    cut = CONTRACT[: CONTRACT.index("function getName")]
    ex = extract_response("## REVISED_IMPLEMENTATION\n```solidity\n" + cut)
    assert ex.ok and ex.code.startswith("// SPDX") and "getName" not in ex.code
    assert any("truncated: 1 unclosed brace" in w for w in ex.warnings)


def test_prose_inside_the_fence_is_trimmed():
    text = "```solidity\nHere is my contract:\n\n" + CONTRACT + "\nHope this helps!\n```\n"
    ex = extract_response(text)
    assert ex.code == CONTRACT
    assert "dropped 2 line(s) of prose before the code" in ex.warnings
    assert "dropped text after the contract's closing brace" in ex.warnings


def test_braces_in_strings_and_comments_do_not_confuse_trimming():
    code = 'contract Strategy {\n    // a } in a comment\n    string s = "}{";\n    /* } */\n}\n'
    ex = extract_response("```\n" + code + "trailing words\n```")
    assert ex.code == code


def test_other_contract_name_warns():
    ex = extract_response("```solidity\ncontract MyFees {\n}\n```")
    assert ex.code == "contract MyFees {\n}\n" and ex.contract_name == "MyFees"
    assert "no contract named Strategy (found MyFees)" in ex.warnings


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty response"),
        ("   \n\t ", "empty response"),
        (
            "I think a 35 bps fee is good. The contract should widen on shocks.",
            "the word 'contract' appears but no contract declaration was found",
        ),
        ("Just some thoughts about fees.", "no Solidity code found: the response is prose only"),
        ("```python\nprint('hi')\n```\n```\nuint x;\n```", "no contract found in 2 code block(s)"),
        (
            '## REVISED_IMPLEMENTATION\n```json\n{"a": 1}\n```',
            "no Solidity code found: the response is prose only",
        ),
    ],
)
def test_failure_reasons(text, reason):
    ex = extract_response(text)
    assert ex.code is None and ex.failure_reason == reason


def test_non_string_input_never_raises():
    for value in (None, 42, b"```solidity\ncontract Strategy {}\n```", ["x"]):
        ex = extract_response(value)  # type: ignore[arg-type]
        assert (ex.code is None) != (ex.failure_reason is None)


# ---- metadata -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected", "partial"),
    [
        ('{"a": 1, "b": [1, 2,],}', {"a": 1, "b": [1, 2]}, False),
        ('{"a": 1, // comment\n "b": True, "c": None /* x */}', {"a": 1, "b": True, "c": None}, False),
        ('Here you go: {"a": "x,}"} and some trailing prose', {"a": "x,}"}, False),
        ('{"a": 1, "b": {"c": [1, 2, 3], "d": "trunc', {"a": 1, "b": {"c": [1, 2, 3]}}, True),
        ('{"a": 1, "b": 2.5, "c"', {"a": 1, "b": 2.5}, True),
        ('{"a": 1, "b": [1, 2', {"a": 1, "b": [1]}, True),
        ('{"name": "x", "params": {"k": 3', {"name": "x"}, True),
    ],
)
def test_tolerant_json(raw, expected, partial):
    value, was_partial, err = parse_json_tolerant(raw)
    assert err is None and value == expected and was_partial == partial


def test_tolerant_json_failures():
    assert parse_json_tolerant("no json here")[2] == "no JSON object found"
    assert parse_json_tolerant('{"unterminated')[2] == "metadata JSON could not be parsed"


def test_truncated_metadata_in_response_is_partial_with_warning():
    text = VALID[: VALID.index('"max_fee_bps"') + 5]
    ex = extract_response(text)
    assert ex.ok and ex.metadata_partial
    assert ex.metadata == {"name": "ShockDecay", "hypothesis": "H2_volatility_regime", "base_fee_bps": 35}
    assert "metadata JSON was truncated; kept the complete fields only" in ex.warnings


def test_metadata_without_fence_and_non_object_metadata():
    ex = extract_response(VALID.split("## STRATEGY_METADATA")[0] + "## STRATEGY_METADATA\n" + META)
    assert ex.metadata == {"name": "ShockDecay", "base_fee_bps": 35}
    ex = extract_response(
        VALID.split("## STRATEGY_METADATA")[0] + "## STRATEGY_METADATA\n```json\n[1, 2]\n```"
    )
    assert ex.metadata is None and ex.metadata_error == "metadata JSON is not an object"
    ex = extract_response(VALID.split("## STRATEGY_METADATA")[0] + "## STRATEGY_METADATA\nname: ShockDecay\n")
    assert ex.metadata is None and ex.metadata_error == "no STRATEGY_METADATA JSON found"


@pytest.mark.parametrize(
    "text",
    [
        "contract X " + "a" * 200_000,
        "contract X is" + " " * 200_000,
        "```" + "a" * 200_000 + "`",
        "```solidity\n" + "{" * 100_000,
        '## STRATEGY_METADATA\n{"a": ' + "[" * 50_000,
        "## STRATEGY_METADATA\n```json\n" + '{"k": 1, ' * 20_000,
        "\n".join(["```"] * 20_000),
        "\n".join(["## DESIGN_REVIEW", "contract Strategy {"] * 20_000),
    ],
)
def test_pathological_input_stays_fast(text):
    # Linear-time extraction takes well under a second on these inputs; catastrophic backtracking or a
    # quadratic scan over 200 000 characters / 40 000 lines would take hours. The 60 s bound separates
    # the two on any machine, loaded or idle, instead of measuring how fast this one is.
    t0 = time.perf_counter()
    ex = extract_response(text)
    assert time.perf_counter() - t0 < 60.0
    assert (ex.code is None) != (ex.failure_reason is None)


def test_deeply_nested_json_does_not_blow_the_stack():
    value, partial, err = parse_json_tolerant("[" * 100_000 + "]" * 100_000)
    assert value is None and err == "metadata JSON could not be parsed"
    ex = extract_response("```solidity\ncontract Strategy {}\n```\n## STRATEGY_METADATA\n" + '{"a": ' * 5000)
    assert ex.ok and ex.metadata_error == "metadata JSON could not be parsed"
