"""The one Solidity comment/string scanner and the three places that read code through it."""

from __future__ import annotations

from stratforge.amm import soltext
from stratforge.amm.validate import validate_source
from stratforge.explore.extract import _brace_scan
from stratforge.explore.template_extract import find_parameter_literals

TRICKY = 'a = "x // not a comment"; // it\'s a comment\nb = \'q\\\'{\'; /* { 7 "\n*/ c { 42 }\nd = "open\ne'


def test_segments_cover_the_source_in_order_with_solidity_rules() -> None:
    spans = list(soltext.segments(TRICKY))
    assert spans[0][0] == 0 and spans[-1][1] == len(TRICKY)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
    kinds = [(TRICKY[s:e], k) for s, e, k in spans if k != "code"]
    assert kinds == [
        ('"x // not a comment"', "string"),
        ("// it's a comment", "comment"),
        ("'q\\'{'", "string"),  # an escaped quote does not end the string
        ('/* { 7 "\n*/', "comment"),
        ('"open', "string"),  # unterminated: ends at the line end
    ]


def test_blank_keeps_offsets_quotes_and_code() -> None:
    out = soltext.blank(TRICKY)
    assert len(out) == len(TRICKY) and out.count("\n") == TRICKY.count("\n")
    assert "not a comment" not in out and "it's" not in out and "7" not in out
    assert "c { 42 }" in out and out.startswith('a = "')
    kept = soltext.blank(TRICKY, strings=False)
    assert '"x // not a comment"' in kept and "it's" not in kept


def test_the_three_readers_agree_on_what_is_code() -> None:
    assert _brace_scan(TRICKY) == (TRICKY.index("}") + 1, 0)  # only `c { 42 }` counts
    assert [lit.text for lit in find_parameter_literals(TRICKY)] == ["42"]
    hidden = 'contract Strategy { string s = "assembly {"; } // selfdestruct(x)'
    problems = " ".join(p.message for p in validate_source(hidden).problems)
    assert "assembly" not in problems and "selfdestruct" not in problems
