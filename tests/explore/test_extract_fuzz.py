"""Property tests: the extractor never raises and always returns code or a reason."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratforge.explore.extract import extract_response, parse_json_tolerant

from .fakes.llm_fakes import recorded

VALID = recorded("valid_response.md")
CODE_END = VALID.index("```", VALID.index("```solidity") + 3) + 3
CONTRACT = VALID.split("```solidity\n", 1)[1].split("```", 1)[0]

# STRATFORGE_FUZZ_EXAMPLES=5000 for a deeper local run; the default keeps the suite fast
FUZZ = settings(
    max_examples=int(os.environ.get("STRATFORGE_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# pieces that matter to the parser, so random text hits its edge cases often
_TOKENS = st.sampled_from(
    [
        "```",
        "```solidity\n",
        "```json\n",
        "~~~",
        "\n",
        "## ",
        "**",
        "DRAFT_STRATEGY_IDEA",
        "DESIGN_REVIEW",
        "REVISED_IMPLEMENTATION",
        "STRATEGY_METADATA",
        "contract Strategy {",
        "contract X is Y {\n",
        "}",
        "{",
        '"',
        "//",
        "/*",
        "*/",
        ",",
        ":",
        "[",
        "]",
        "pragma solidity ^0.8.24;\n",
        "1. ",
        "True",
        "\\",
        "\r\n",
    ]
)
_TEXT = st.lists(st.one_of(_TOKENS, st.text(max_size=12)), max_size=60).map("".join)


def _invariants(ex) -> None:
    assert (ex.code is None) != (ex.failure_reason is None)
    assert not (ex.failure_reason or "").startswith("extractor error"), ex.failure_reason
    assert ex.metadata is None or isinstance(ex.metadata, dict)
    assert ex.metadata is not None or ex.metadata_error
    assert ex.structure_ok == (ex.section_order == ["draft", "review", "revised", "metadata"])
    if ex.code is not None:
        assert "contract" in ex.code


@FUZZ
@given(_TEXT)
def test_random_text_never_raises(text):
    _invariants(extract_response(text))


@FUZZ
@given(st.text(max_size=400))
def test_arbitrary_unicode_never_raises(text):
    _invariants(extract_response(text))


@FUZZ
@given(st.integers(min_value=0, max_value=len(VALID)))
def test_truncation_of_a_valid_response(cut):
    ex = extract_response(VALID[:cut])
    _invariants(ex)
    if cut >= CODE_END:
        # everything after the code block may be lost, the code itself never is
        assert ex.code == CONTRACT
    if cut == len(VALID):
        assert ex.structure_ok and ex.metadata is not None and not ex.metadata_partial


@FUZZ
@given(
    st.integers(min_value=0, max_value=len(VALID)),
    st.integers(min_value=0, max_value=80),
    st.one_of(_TOKENS, st.text(max_size=20)),
)
def test_mutations_of_a_valid_response(pos, span, insert):
    mutated = VALID[:pos] + insert + VALID[pos + span :]
    _invariants(extract_response(mutated))


@FUZZ
@given(st.sampled_from(["upper", "lower", "title", "swap"]), st.booleans())
def test_case_and_line_ending_changes_keep_the_structure(mode, crlf):
    head, rest = VALID[: VALID.index("```solidity")], VALID[VALID.index("```solidity") :]
    head = {"upper": head.upper(), "lower": head.lower(), "title": head.title(), "swap": head.swapcase()}[
        mode
    ]
    text = head + rest
    if crlf:
        text = text.replace("\n", "\r\n")
    ex = extract_response(text)
    assert ex.structure_ok and ex.code == CONTRACT


@FUZZ
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4),
        max_leaves=15,
    ),
    st.data(),
)
def test_json_truncation_yields_a_prefix_or_a_reason(value, data):
    import json

    raw = json.dumps({"m": value})
    cut = data.draw(st.integers(min_value=0, max_value=len(raw)))
    parsed, partial, err = parse_json_tolerant(raw[:cut])
    assert (parsed is None) == (err is not None)
    if cut == len(raw):
        assert parsed == {"m": value} and not partial
