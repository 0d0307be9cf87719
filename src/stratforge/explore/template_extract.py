"""Turn a strong strategy's source into a reusable parameterized template.

The extractor scans the code (comments and strings skipped) for numeric literals that behave like
tunable parameters - fee constants and bps counts, WAD-scaled constants, decay factors, thresholds,
loop caps - and replaces each with a named ``{{PARAM}}`` placeholder. It leaves alone what is
structure rather than tuning: 0 and 1, the WAD unit (1e18) and exponents of ``10 **``, slot
indices and array sizes (anything inside ``[...]`` or a ``readSlot``/``writeSlot`` argument), the
pragma and imports, and halving (``/ 2``).

Each parameter gets a range of +-50 % around the literal (``spread``), clamped to sensible bounds:
never negative, bps counts (``N * BPS``, ``bpsToWad(N)``) at most 1000 (the 10 % fee cap), fee
constants in WAD at most 1e17, and WAD fractions in [0.1, 1) (decays, weights) kept below 1e18.
The result is written as ``<name>.sol.template`` + ``<name>.json`` (schema) + ``<name>.md``
(human-readable schema), after checking that the template rendered with its defaults gives back
the original source byte for byte.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from stratforge.amm import soltext
from stratforge.explore.templates import ParamSpec, Template, save_template

DEFAULT_THRESHOLD = 390.0
WAD = 10**18
MAX_FEE_WAD = 10**17
MAX_FEE_BPS = 1000

_NUMBER = re.compile(r"(?<![\w.])(\d+(?:e\d+)?)(?![\w.])")
_CONST_DECL = re.compile(r"constant\s+([A-Za-z_]\w*)\s*=\s*$")


@dataclass(frozen=True)
class Literal:
    start: int
    end: int
    text: str
    value: int
    name_hint: str | None
    bps_count: bool


_DIRECTIVE = re.compile(r"(?m)^[ \t]*(?:pragma|import)\b[^\n]*")


def _code_mask(source: str) -> list[bool]:
    """True for characters that are code: not in a comment or string, nor on a pragma/import line."""
    mask = soltext.code_mask(source)
    for m in _DIRECTIVE.finditer(source):
        if mask[m.start()]:  # a directive starts in code, not inside a block comment
            mask[m.start() : m.end()] = [False] * (m.end() - m.start())
    return mask


def _inside_brackets(source: str, pos: int) -> bool:
    """Is ``pos`` inside ``[...]`` or the first argument of readSlot/writeSlot on the same line?"""
    line_start = source.rfind("\n", 0, pos) + 1
    before = source[line_start:pos]
    if before.count("[") > before.count("]"):
        return True
    return re.search(r"(readSlot|writeSlot)\s*\(\s*$", before) is not None


def find_parameter_literals(source: str) -> list[Literal]:
    """Numeric literals in ``source`` that look like tunable parameters, in source order."""
    mask = _code_mask(source)
    found: list[Literal] = []
    for m in _NUMBER.finditer(source):
        start, end, text = m.start(1), m.end(1), m.group(1)
        if not mask[start]:
            continue
        mant, _, exp = text.partition("e")
        value = int(mant) * 10 ** int(exp or 0)
        if value in (0, 1) or value == WAD:
            continue
        before = source[:start].rstrip()
        after = source[end:].lstrip()
        if before.endswith("**") or after.startswith("**"):
            continue  # 10 ** 18 style units
        if value == 2 and before.endswith("/"):
            continue  # halving
        if _inside_brackets(source, start):
            continue
        line_start = source.rfind("\n", 0, start) + 1
        decl = _CONST_DECL.search(source[line_start:start])
        bps_count = after.startswith("* BPS") or re.search(r"bpsToWad\s*\(\s*$", before) is not None
        found.append(Literal(start, end, text, value, decl.group(1) if decl else None, bool(bps_count)))
    return found


def _param_range(lit: Literal, spread: float) -> tuple[int, int]:
    v = lit.value
    lo, hi = int(v * (1 - spread)), int(round(v * (1 + spread)))
    if lit.bps_count and v <= MAX_FEE_BPS:
        hi = min(hi, MAX_FEE_BPS)
    elif lit.name_hint and "FEE" in lit.name_hint.upper() and v <= MAX_FEE_WAD:
        hi = min(hi, MAX_FEE_WAD)
    elif WAD // 10 <= v < WAD:
        lo, hi = max(lo, WAD // 20), min(hi, v + (WAD - v) // 2)  # fractions stay in (0, 1)
    lo = max(0, min(lo, v))
    return lo, max(hi, v)


def _placeholder_name(lit: Literal, used: set[str], index: int) -> str:
    base = re.sub(r"[^A-Z0-9_]", "_", (lit.name_hint or f"P{index}").upper())
    if not base[0].isalpha():
        base = "P_" + base
    name, k = base, 2
    while name in used or name == "STRATEGY_NAME":
        name, k = f"{base}_{k}", k + 1
    used.add(name)
    return name


def extract_template(
    source: str,
    name: str,
    *,
    hypothesis: str = "",
    spread: float = 0.5,
    description: str = "",
    meta: dict | None = None,
) -> Template:
    """Build a template from ``source``; raises ValueError if nothing is parameterizable or it does not
    render back to ``source`` with its defaults."""
    literals = find_parameter_literals(source)
    if not literals:
        raise ValueError("no parameter-like numeric literals found")
    used: set[str] = set()
    pieces: list[str] = []
    params: list[ParamSpec] = []
    pos = 0
    for i, lit in enumerate(literals, 1):
        pname = _placeholder_name(lit, used, i)
        lo, hi = _param_range(lit, spread)
        fmt = "sci" if "e" in lit.text else "plain"
        spec = ParamSpec(pname, "int", float(lit.value), float(lo), float(hi), _describe(lit), fmt)
        if spec.render(spec.default) != lit.text:
            # a form we cannot write back identically (250e13, or beyond float precision): keep it
            used.discard(pname)
            continue
        pieces.append(source[pos : lit.start])
        pieces.append("{{" + pname + "}}")
        pos = lit.end
        params.append(spec)
    pieces.append(source[pos:])
    if not params:
        raise ValueError("no parameter-like numeric literals could be templated")
    clean = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_") or "extracted"
    template = Template(
        name=clean,
        text="".join(pieces),
        params=tuple(params),
        hypothesis=hypothesis,
        title=f"Extracted from {name}",
        description=description or f"{len(params)} numeric constants of {name} turned into parameters",
        meta=dict(meta or {}),
    )
    rendered = template.render(template.defaults())
    if rendered != source:
        raise ValueError("template does not render back to the original source")
    return template


def _describe(lit: Literal) -> str:
    if lit.bps_count:
        return f"fee in bps (literal {lit.text} * BPS)"
    if WAD // 10 <= lit.value < WAD:
        return f"WAD fraction {lit.value / WAD:g}"
    if lit.value >= 10**9:
        return f"WAD-scaled constant {lit.value / WAD:g}"
    return f"integer constant {lit.text}"


def schema_markdown(template: Template) -> str:
    """Human-readable schema of a template."""
    lines = [
        f"# Template `{template.name}`",
        "",
        template.description,
        "",
        f"Hypothesis: `{template.hypothesis or '-'}`",
        "",
        "| parameter | type | default | min | max | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for p in template.params:
        lines.append(f"| `{p.name}` | {p.type} | {p.default:g} | {p.min:g} | {p.max:g} | {p.description} |")
    if template.meta:
        lines += ["", "```json", json.dumps(template.meta, indent=2, sort_keys=True), "```"]
    return "\n".join(lines) + "\n"


def write_extracted(template: Template, directory: Path | str) -> Path:
    """Write template, JSON schema and Markdown schema doc into ``directory``; returns the template path."""
    from stratforge.explore.store import atomic_write_text

    path = save_template(template, directory)
    atomic_write_text(Path(directory) / f"{template.name}.md", schema_markdown(template))
    return path


def maybe_extract(
    source: str,
    edge: float | None,
    name: str,
    directory: Path | str,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    hypothesis: str = "",
) -> Template | None:
    """Extract and write a template when ``edge`` is above ``threshold``; None otherwise or if nothing
    in the source is parameterizable."""
    if edge is None or edge <= threshold:
        return None
    try:
        template = extract_template(
            source, name, hypothesis=hypothesis, meta={"source_edge": edge, "threshold": threshold}
        )
    except ValueError:
        return None
    write_extracted(template, directory)
    return template
