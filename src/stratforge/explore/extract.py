"""Pull the Solidity strategy and its metadata out of an LLM answer, whatever shape it came in.

The prompt asks for DRAFT_STRATEGY_IDEA -> DESIGN_REVIEW -> REVISED_IMPLEMENTATION (a ```solidity
block) -> STRATEGY_METADATA (a ```json block). Models drift: headings change case or markup, fences
lose their language or their end, prose leaks into code, JSON gets trailing commas or is cut off.
`extract_response` never raises: it returns either code or a `failure_reason`, plus warnings.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from stratforge.amm import soltext

SECTIONS = ("draft", "review", "revised", "metadata")
CANONICAL = {
    "draft": "DRAFT_STRATEGY_IDEA",
    "review": "DESIGN_REVIEW",
    "revised": "REVISED_IMPLEMENTATION",
    "metadata": "STRATEGY_METADATA",
}

_S = r"[\s_\-]*"  # separators between words of a heading: space, underscore, hyphen
_NAME_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (
        "draft",
        re.compile(
            rf"(?:initial{_S})?draft(?:{_S}(?:strategy|strat))?(?:{_S}idea)?|(?:initial{_S})?strategy{_S}idea"
            rf"|initial{_S}idea",
            re.I,
        ),
    ),
    ("review", re.compile(rf"(?:(?:design|self|critical){_S})?review|(?:design{_S})?critique", re.I)),
    (
        "revised",
        re.compile(
            rf"(?:(?:revised|final|improved|updated){_S})?(?:solidity{_S})?(?:strategy{_S})?"
            rf"(?:implementation|code|contract)|revised(?:{_S}(?:version|strategy|design))?",
            re.I,
        ),
    ),
    ("metadata", re.compile(rf"(?:strategy{_S})?meta{_S}data(?:{_S}json)?", re.I)),
]
_NUMBERING = re.compile(
    r"^(?:(?:step|part|section|phase)\b\s*\d*\s*[.):\-\u2013\u2014]?\s*|\d+\s*[.):\-\u2013\u2014]\s*|\d+\s+"
    r"|[ivx]+[.)]\s*|[a-d][.)]\s*)",
    re.I,
)
_FENCE = re.compile(r"^\s*+(?P<fence>`{3,}+|~{3,}+)\s*+(?P<info>[^\s`]*+)[^`]*+$")
_CODE_START = re.compile(
    r"^\s*(?://|/\*|\*|pragma\b|import\b|(?:abstract\s+)?contract\b|library\b|interface\b|struct\b|enum\b"
    r"|using\b|error\b|event\b|function\b|uint|int\d|address\b|bytes|bool\b|@)"
)
_CONTRACT = re.compile(r"\b(?:abstract\s+)?contract\s+([A-Za-z_]\w*)")
# a real declaration: at a line start and opening a body ("contract Strategy is Base {")
# possessive quantifiers (*+) keep these linear on very long lines: no backtracking
_DECL = re.compile(r"(?m)^[ \t]*(?:abstract[ \t]+)?contract[ \t]+([A-Za-z_]\w*)[^;{}\n]*+\n?[^;{}\n]*+\{")
_JSON_TOKEN = re.compile(r"[-+0-9.eE]+|true|false|null")
_SOL_LANGS = {"solidity", "sol"}
_JSON_LANGS = {"json", "jsonc", "json5"}
_MAX_JSON = 50_000  # metadata is small; bound the repair work on pathological input
_MAX_DEPTH = 64


@dataclass
class Extraction:
    """What could be read from one response. ``code is None`` exactly when ``failure_reason`` is set."""

    code: str | None = None
    contract_name: str | None = None
    metadata: dict[str, Any] | None = None
    metadata_partial: bool = False
    metadata_error: str | None = None
    sections: dict[str, str] = field(default_factory=dict)
    section_order: list[str] = field(default_factory=list)
    structure_ok: bool = False
    failure_reason: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.code is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Block:
    start: int  # line index of the opening fence
    end: int  # line index after the last content line
    lang: str
    text: str
    terminated: bool


@dataclass
class _Heading:
    line: int
    name: str
    inline: str
    strong: bool


def _strip_emphasis(s: str) -> tuple[str, bool]:
    m = re.match(r"^(\*\*|__|\*|_)+", s)
    if not m:
        return s, False
    return s[m.end() :].lstrip(), True


def _parse_heading(line: str) -> _Heading | None:
    """Recognise a section heading in one line; None for ordinary text."""
    s = line.strip()
    if not s or len(s) > 200:
        return None
    s = s.lstrip(">").strip()
    strong = False
    m = re.match(r"#{1,6}\s*", s)
    if m:
        strong = True
        s = s[m.end() :]
    decorated = strong
    for _ in range(2):  # "**1. Draft**", "1. **Draft**", "Step 1: Draft"
        s2 = _NUMBERING.sub("", s, count=1)
        s2, emph = _strip_emphasis(s2)
        decorated = decorated or emph or s2 != s
        s = s2
    for name, pat in _NAME_PATTERNS:
        m = pat.match(s)
        if not m or (m.end() < len(s) and (s[m.end()].isalnum())):
            continue
        rest = s[m.end() :]
        closer = had_sep = False
        for _ in range(2):  # "**Draft:** x", "**Draft**: x", "Revised implementation (final):"
            c = re.match(r"^\s*(\*\*|__|\*|_)+", rest)
            if c:
                rest, closer = rest[c.end() :], True
            rest = re.sub(r"^\s*\([^)]{0,60}\)", "", rest)
            sep = re.match(r"^\s*(?::|-|\u2013|\u2014)\s*", rest)
            if sep:
                rest, had_sep = rest[sep.end() :], True
        decorated = decorated or closer
        rest = rest.strip()
        if not rest.strip("*_#: "):
            rest = ""  # only closing decoration left ("## Draft ##", "**Review:**")
        if rest and not (had_sep or (decorated and closer)):
            return None  # a sentence that merely starts with the word ("Review the fees ...")
        return _Heading(line=0, name=name, inline=rest, strong=strong or (decorated and closer))
    return None


def _scan(lines: list[str]) -> tuple[list[_Block], list[_Heading]]:
    """Fenced blocks and headings; headings inside fences are ignored unless they are strong (#)."""
    blocks: list[_Block] = []
    headings: list[_Heading] = []
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        fm = _FENCE.match(line)
        if fm:
            fence = fm.group("fence")
            lang = fm.group("info").strip().lower()
            j = i + 1
            terminated = False
            while j < n:
                close = re.match(r"^\s*(`{3,}|~{3,})\s*$", lines[j])
                if close and close.group(1)[0] == fence[0] and len(close.group(1)) >= len(fence):
                    terminated = True
                    break
                h = _parse_heading(lines[j]) if lines[j].lstrip().startswith("#") else None
                if h is not None and h.strong and lang not in ("python", "py", "bash", "sh", "shell"):
                    break  # an unterminated fence runs into the next section: close it there
                j += 1
            blocks.append(_Block(i, j, lang, "\n".join(lines[i + 1 : j]), terminated))
            i = j + 1 if terminated else j
            continue
        h = _parse_heading(line)
        if h is not None:
            h.line = i
            headings.append(h)
        i += 1
    return blocks, headings


def _section_spans(headings: list[_Heading], n_lines: int) -> dict[str, tuple[int, int, str]]:
    """For each section name, the (start, end, inline) span chosen among its occurrences.

    A model that echoes the format list before answering produces empty duplicates; the occurrence
    with the most content wins.
    """
    spans: dict[str, tuple[int, int, str]] = {}
    for k, h in enumerate(headings):
        end = headings[k + 1].line if k + 1 < len(headings) else n_lines
        size = (end - h.line) + (1 if h.inline else 0)
        best = spans.get(h.name)
        if best is None or size > (best[1] - best[0]) + (1 if best[2] else 0):
            spans[h.name] = (h.line, end, h.inline)
    return spans


def _brace_scan(code: str) -> tuple[int, int]:
    """(index just past the last top-level closing brace or -1, final depth), outside comments/strings."""
    depth = 0
    last_close = -1
    for start, end, kind in soltext.segments(code):
        if kind != "code":
            continue
        for i in range(start, end):
            c = code[i]
            if c == "{":
                depth += 1
            elif c == "}" and depth > 0:
                depth -= 1
                if depth == 0:
                    last_close = i + 1
    return last_close, depth


def _trim_code(code: str, warnings: list[str]) -> str:
    """Drop prose before the first code-looking line and after the last top-level closing brace."""
    lines = code.split("\n")
    first = next((k for k, ln in enumerate(lines) if _CODE_START.match(ln)), 0)
    if first:
        warnings.append(f"dropped {first} line(s) of prose before the code")
    code = "\n".join(lines[first:])
    last_close, depth = _brace_scan(code)
    if depth > 0:
        warnings.append(f"code appears truncated: {depth} unclosed brace(s)")
        return code.rstrip() + "\n"
    if last_close > 0:
        tail = code[last_close:]
        looks_like_code = any(_CODE_START.match(ln) for ln in tail.split("\n")) or any(
            c in tail for c in ";{"
        )
        if looks_like_code:
            warnings.append("code appears truncated: it ends inside a declaration")
        elif tail.strip():
            warnings.append("dropped text after the contract's closing brace")
            code = code[:last_close]
    return code.strip("\n") + "\n"


def _unfenced_code(text: str) -> str | None:
    """Solidity written without fences: from its header lines to the contract's closing brace."""
    matches = list(_DECL.finditer(text))
    if not matches:
        return None
    target = next((m for m in matches if m.group(1) == "Strategy"), matches[0])
    decl_start = target.start() + (len(target.group(0)) - len(target.group(0).lstrip()))
    lines = text[:decl_start].split("\n")
    # the declaration's own line start, then walk back over header lines (pragma, imports, comments)
    k = len(lines) - 1
    while k > 0:
        prev = lines[k - 1].strip()
        if prev == "" or re.match(r"^(//|/\*|\*|pragma\b|import\b)", prev):
            k -= 1
        else:
            break
    start = len("\n".join(lines[:k])) + (1 if k else 0)
    chunk = text[start:]
    while chunk.startswith("\n"):
        chunk = chunk[1:]
    return chunk


def _strip_json_noise(s: str) -> str:
    """Remove // and /* */ comments and trailing commas outside strings; map Python literals."""
    out: list[str] = []
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == '"':
            j = i + 1
            while j < n and s[j] != '"':
                j += 2 if s[j] == "\\" else 1
            out.append(s[i : j + 1])
            i = j + 1
            continue
        if c == "/" and i + 1 < n and s[i + 1] == "/":
            j = s.find("\n", i)
            i = n if j < 0 else j
            continue
        if c == "/" and i + 1 < n and s[i + 1] == "*":
            j = s.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        if c == ",":
            j = i + 1
            while j < n and s[j].isspace():
                j += 1
            if j < n and s[j] in "}]":
                i += 1
                continue
        m = re.match(r"(True|False|None)\b", s[i : i + 6]) if c in "TFN" else None
        if m and (not out or not (out[-1][-1:].isalnum() or out[-1][-1:] == "_")):
            out.append({"True": "true", "False": "false", "None": "null"}[m.group(1)])
            i += len(m.group(1))
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _truncation_cuts(s: str) -> list[tuple[int, str]]:
    """Positions after complete values inside containers, with the closers that would balance them."""
    cuts: list[tuple[int, str]] = []
    stack: list[list[str]] = []  # [bracket, state]; objects track whether a key or a value is due
    i = 0
    n = len(s)

    def value_done(pos: int) -> None:
        if stack:
            if stack[-1][0] == "{":
                stack[-1][1] = "comma"
            closers = "".join("}" if b == "{" else "]" for b, _ in reversed(stack))
            cuts.append((pos, closers))

    while i < n:
        c = s[i]
        if c.isspace() or c == ",":
            if c == "," and stack and stack[-1][0] == "{":
                stack[-1][1] = "key"
            i += 1
        elif c in "{[":
            if len(stack) >= _MAX_DEPTH:
                break  # metadata is shallow; deeper nesting is garbage and would make this quadratic
            stack.append([c, "key"])
            i += 1
        elif c in "}]":
            if not stack:
                break
            stack.pop()
            i += 1
            value_done(i)
            if not stack:
                break
        elif c == ":":
            if stack and stack[-1][0] == "{":
                stack[-1][1] = "value"
            i += 1
        elif c == '"':
            j = i + 1
            while j < n and s[j] != '"':
                j += 2 if s[j] == "\\" else 1
            if j >= n:
                break  # unterminated string: cut before it
            i = j + 1
            if stack and stack[-1][0] == "{" and stack[-1][1] == "key":
                stack[-1][1] = "colon"
            else:
                value_done(i)
        else:
            m = _JSON_TOKEN.match(s, i)
            if not m:
                break
            i = m.end()
            if i < n:  # a number at the very end may itself be cut short
                value_done(i)
    return cuts


def parse_json_tolerant(s: str) -> tuple[Any, bool, str | None]:
    """(value, partial, error). Tolerates fences' leftovers, comments, trailing commas, truncation."""
    start = min((k for k in (s.find("{"), s.find("[")) if k >= 0), default=-1)
    if start < 0:
        return None, False, "no JSON object found"
    s = s[start : start + _MAX_JSON]
    decoder = json.JSONDecoder()
    for candidate in (s, _strip_json_noise(s)):
        try:
            value, _ = decoder.raw_decode(candidate)
            return value, False, None
        except (ValueError, RecursionError):
            continue
    cleaned = _strip_json_noise(s)
    for tries, (pos, closers) in enumerate(reversed(_truncation_cuts(cleaned))):
        if tries >= 60:
            break
        try:
            return json.loads(cleaned[:pos] + closers), True, None
        except (ValueError, RecursionError):
            continue
    return None, False, "metadata JSON could not be parsed"


def _extract_metadata(
    lines: list[str], blocks: list[_Block], spans: dict[str, tuple[int, int, str]], ex: Extraction
) -> None:
    candidates: list[str] = []
    span = spans.get("metadata")
    if span is not None:
        inside = [b for b in blocks if span[0] < b.start < span[1]]
        inside.sort(key=lambda b: (b.lang not in _JSON_LANGS, b.start))
        candidates += [b.text for b in inside if b.lang not in _SOL_LANGS]
        fenced = {ln for b in inside for ln in range(b.start, b.end + 1)}
        loose = "\n".join([span[2]] + [lines[k] for k in range(span[0] + 1, span[1]) if k not in fenced])
        if "{" in loose:
            candidates.append(loose)
    candidates += [b.text for b in reversed(blocks) if b.lang in _JSON_LANGS and b.text not in candidates]
    if not candidates:
        ex.metadata_error = "no STRATEGY_METADATA JSON found"
        return
    last_error = None
    for cand in candidates:
        value, partial, err = parse_json_tolerant(cand)
        if err is not None:
            last_error = err
            continue
        if isinstance(value, list) and value and isinstance(value[0], dict):
            value = value[0]
            ex.warnings.append("metadata was a JSON list; used its first object")
        if not isinstance(value, dict):
            last_error = "metadata JSON is not an object"
            continue
        ex.metadata = value
        ex.metadata_partial = partial
        if partial:
            ex.warnings.append("metadata JSON was truncated; kept the complete fields only")
        return
    ex.metadata_error = last_error or "metadata JSON could not be parsed"


def _choose_code(
    text: str, lines: list[str], blocks: list[_Block], spans: dict[str, tuple[int, int, str]], ex: Extraction
) -> None:
    revised = spans.get("revised")

    def in_revised(b: _Block) -> bool:
        return revised is not None and revised[0] < b.start < revised[1]

    scored = []
    for b in blocks:
        if b.lang in _JSON_LANGS:
            continue
        names = _CONTRACT.findall(b.text)
        if not names:
            continue
        declared = _DECL.findall(b.text)
        score = (
            "Strategy" in declared,
            "Strategy" in names,
            in_revised(b),
            bool(declared),
            b.lang in _SOL_LANGS or b.lang == "",
            b.terminated,
            b.start,
        )
        scored.append((score, b, names))
    if scored:
        scored.sort(key=lambda t: t[0])
        _, best, names = scored[-1]
        if len(scored) > 1:
            ex.warnings.append(
                f"{len(scored)} code blocks contain a contract; used the one at line {best.start + 1}"
            )
        if not best.terminated:
            ex.warnings.append("the code fence is not closed")
        if revised is not None and not in_revised(best):
            ex.warnings.append("code taken from outside REVISED_IMPLEMENTATION")
        ex.code = _trim_code(best.text, ex.warnings)
    else:
        fenced = {ln for b in blocks for ln in range(b.start, min(b.end + 1, len(lines)))}
        outside = "\n".join(ln for k, ln in enumerate(lines) if k not in fenced)
        if revised is not None:
            region = "\n".join(lines[revised[0] + 1 : revised[1]])
            chunk = _unfenced_code(region) or _unfenced_code(outside)
        else:
            chunk = _unfenced_code(outside)
        if chunk is None:
            code_blocks = [b for b in blocks if b.lang not in _JSON_LANGS]
            if code_blocks:
                ex.failure_reason = f"no contract found in {len(code_blocks)} code block(s)"
            elif re.search(r"\bcontract\b", text):
                ex.failure_reason = "the word 'contract' appears but no contract declaration was found"
            else:
                ex.failure_reason = "no Solidity code found: the response is prose only"
            return
        ex.warnings.append("code was not fenced; took it from the prose")
        ex.code = _trim_code(chunk, ex.warnings)
    names = _CONTRACT.findall(ex.code or "")
    ex.contract_name = "Strategy" if "Strategy" in names else (names[-1] if names else None)
    if ex.contract_name != "Strategy":
        ex.warnings.append(f"no contract named Strategy (found {ex.contract_name})")


def extract_response(text: Any) -> Extraction:
    """Parse one LLM answer. Never raises; see `Extraction`."""
    ex = Extraction()
    try:
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
        if not text.strip():
            ex.failure_reason = "empty response"
            ex.metadata_error = "empty response"
            return ex
        lines = text.split("\n")
        blocks, headings = _scan(lines)
        spans = _section_spans(headings, len(lines))
        for name in SECTIONS:
            if name in spans:
                s0, s1, inline = spans[name]
                body = "\n".join(lines[s0 + 1 : s1]).strip("\n")
                ex.sections[name] = (inline + "\n" + body).strip() if inline else body.strip()
        ex.section_order = [name for name in sorted(spans, key=lambda k: spans[k][0])]
        ex.structure_ok = ex.section_order == list(SECTIONS)
        missing = [CANONICAL[s] for s in SECTIONS if s not in spans]
        if missing:
            ex.warnings.append(f"missing section(s): {', '.join(missing)}")
        elif not ex.structure_ok:
            order = " -> ".join(CANONICAL[s] for s in ex.section_order)
            ex.warnings.append(f"sections are out of order: {order}")
        _choose_code(text, lines, blocks, spans, ex)
        _extract_metadata(lines, blocks, spans, ex)
    except Exception as exc:  # noqa: BLE001 - the contract of this function is "never raises"
        ex.code = None
        ex.failure_reason = f"extractor error: {type(exc).__name__}: {exc}"
    if ex.code is None and ex.failure_reason is None:
        ex.failure_reason = "no Solidity code found"
    return ex
