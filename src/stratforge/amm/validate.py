"""Security checks for user Solidity strategies: the reference's source rules and bytecode rules.

Three layers, every problem reported in plain words with its line:

1. the file itself: at most ``MAX_SOURCE_BYTES``, valid UTF-8;
2. the source text (comments and string contents blanked first, so neither can hide or fake a
   construct): no low-level calls, assembly, contract creation, code introspection, ether
   transfers, coinbase, custom interfaces; only the two base imports; ``contract Strategy is
   AMMStrategyBase``; the three hooks; no redeclared base names;
3. the compiled contract: no forbidden opcode in the creation or runtime code (outside PUSH data and
   the metadata tail), and a storage layout holding nothing but the inherited ``slots``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from stratforge.amm.bytecode import find_opcodes

if TYPE_CHECKING:
    from stratforge.amm.compiler import CompiledContract

MAX_SOURCE_BYTES = 100_000
ALLOWED_IMPORTS = ("AMMStrategyBase.sol", "IAMMStrategy.sol")
RESERVED_NAMES = ("AMMStrategyBase", "IAMMStrategy", "TradeInfo")
FORBIDDEN_OPCODES = {
    0x31: "BALANCE",
    0x3B: "EXTCODESIZE",
    0x3C: "EXTCODECOPY",
    0x3F: "EXTCODEHASH",
    0xF0: "CREATE",
    0xF1: "CALL",
    0xF2: "CALLCODE",
    0xF4: "DELEGATECALL",
    0xF5: "CREATE2",
    0xFA: "STATICCALL",
    0xFF: "SELFDESTRUCT",
}

#: (pattern on comment- and string-blanked source, what the user is told)
SOURCE_RULES: tuple[tuple[str, str], ...] = (
    (r"\.\s*call\s*(?:\{|\()", "low-level external calls (.call) are not allowed"),
    (r"\.\s*delegatecall\s*\(", "delegatecall is not allowed"),
    (r"\.\s*staticcall\s*\(", "staticcall is not allowed"),
    (r"\.\s*callcode\s*\(", "callcode is not allowed"),
    (r"\bselfdestruct\s*\(", "selfdestruct is not allowed"),
    (r"\bsuicide\s*\(", "suicide (selfdestruct) is not allowed"),
    (r"\bassembly\b(?:\s*\([^)]*\))?\s*\{", "inline assembly is not allowed"),
    (r"\bnew\s+\w+\s*\(", "creating contracts with `new` is not allowed"),
    (r"\.\s*code(?:hash)?\b", "reading code of an address (.code / .codehash) is not allowed"),
    (r"\.\s*transfer\s*\(", "sending ether with .transfer() is not allowed"),
    (r"\.\s*send\s*\(", "sending ether with .send() is not allowed"),
    (r"\bcoinbase\b", "block.coinbase is not allowed"),
    (
        r"\binterface\s+[A-Za-z_]\w*",
        "declaring interfaces is not allowed (IAMMStrategy comes from the import)",
    ),
)
REQUIRED_HOOKS = (
    ("afterInitialize", "missing hook: function afterInitialize(uint256, uint256)"),
    ("afterSwap", "missing hook: function afterSwap(TradeInfo calldata)"),
    ("getName", "missing hook: function getName()"),
)


@dataclass(frozen=True)
class Problem:
    """One reason a strategy is rejected (or a warning)."""

    message: str
    line: int | None = None
    file: str | None = None

    def __str__(self) -> str:
        where = ":".join(p for p in (self.file, str(self.line) if self.line else None) if p)
        return f"{where}: {self.message}" if where else self.message


@dataclass
class ValidationReport:
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class StrategyRejected(ValueError):
    """A strategy failed validation or compilation; ``problems`` lists every reason."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("strategy rejected:\n" + "\n".join(f"  - {p}" for p in problems))


# --------------------------------------------------------------------------- the file


def decode_source(data: bytes) -> tuple[str | None, list[Problem]]:
    """Size and encoding checks; returns the text (None when unusable) and the problems."""
    problems = []
    if len(data) > MAX_SOURCE_BYTES:
        problems.append(Problem(f"file is {len(data):,} bytes; the limit is {MAX_SOURCE_BYTES:,} bytes"))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        problems.append(Problem(f"file is not valid UTF-8 (byte {exc.start})", line))
        return None, problems
    if "\x00" in text:
        problems.append(Problem("file contains NUL bytes", text.count("\n", 0, text.index("\x00")) + 1))
    return (None if problems else text), problems


# --------------------------------------------------------------------------- the source


def blank_source(source: str, strings: bool = True) -> str:
    """Replace comments (and, with ``strings``, string-literal contents) by spaces.

    Lengths and newlines are kept so that offsets still map to the right line.
    """
    out: list[str] = []
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        two = source[i : i + 2]
        if two == "//":
            end = source.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif two == "/*":
            end = source.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(re.sub(r"[^\n]", " ", source[i:end]))
            i = end
        elif c in "\"'":
            j = i + 1
            while j < n and source[j] != c and source[j] != "\n":
                j += 2 if source[j] == "\\" else 1
            j = min(j, n - 1)
            body = source[i + 1 : j]
            out.append(c + (re.sub(r"[^\n]", " ", body) if strings else body) + source[j])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _normalise_import(path: str) -> str | None:
    """The allowed base file an import names, or None (only ./ and ../ prefixes are accepted)."""
    if not path or "\\" in path or path.startswith("/"):
        return None
    parts = PurePosixPath(path).parts
    if not parts or any(p not in (".", "..") for p in parts[:-1]):
        return None
    return parts[-1] if parts[-1] in ALLOWED_IMPORTS else None


def validate_source(source: str) -> ValidationReport:
    """All source-level rules; every violation is reported (not just the first)."""
    report = ValidationReport()
    code = blank_source(source)
    with_strings = blank_source(source, strings=False)
    add = report.problems.append

    if not re.search(r"\bpragma\s+solidity\b", code):
        add(Problem("missing `pragma solidity` directive"))
    if not re.search(r"SPDX-License-Identifier:", source):
        report.warnings.append(Problem("missing SPDX license identifier"))

    for pattern, message in SOURCE_RULES:
        for m in re.finditer(pattern, code, re.IGNORECASE):
            add(Problem(message, _line(code, m.start())))

    # The contract: exactly `contract Strategy is ..., AMMStrategyBase, ...`.
    decl = re.search(r"\bcontract\s+Strategy\b([^{]*)\{", code)
    if decl is None:
        names = re.findall(r"\bcontract\s+([A-Za-z_]\w*)", code)
        found = f" (found: {', '.join(names)})" if names else ""
        add(Problem(f"the contract must be named `Strategy`{found}"))
    else:
        bases = re.match(r"\s*is\s+(.*)", decl.group(1), re.DOTALL)
        names = [re.match(r"\s*([A-Za-z_]\w*)", b) for b in bases.group(1).split(",")] if bases else []
        if "AMMStrategyBase" not in [m.group(1) for m in names if m]:
            add(Problem("contract Strategy must inherit from AMMStrategyBase", _line(code, decl.start())))

    for hook, message in REQUIRED_HOOKS:
        if not re.search(rf"\bfunction\s+{hook}\s*\(", code):
            add(Problem(message))

    # Imports: only the two base files, both present.
    seen: set[str] = set()
    for m in re.finditer(r"\bimport\b[^;]*;?", code):
        stmt = with_strings[m.start() : m.end()]
        path = re.search(r"[\"']([^\"']*)[\"']", stmt)
        target = _normalise_import(path.group(1)) if path else None
        if target is None:
            shown = path.group(1) if path else stmt.strip()
            add(
                Problem(
                    f"import '{shown}' is not allowed; only './AMMStrategyBase.sol' and './IAMMStrategy.sol'",
                    _line(code, m.start()),
                )
            )
        else:
            seen.add(target)
    for missing in ALLOWED_IMPORTS:
        if missing not in seen:
            add(Problem(f"missing import of './{missing}'"))

    for m in re.finditer(
        r"\b(contract|interface|library|struct|enum|type|event|error)\s+([A-Za-z_]\w*)", code
    ):
        if m.group(2) in RESERVED_NAMES:
            add(Problem(f"redeclaring `{m.group(2)}` is not allowed", _line(code, m.start())))
    report.problems.sort(key=lambda p: p.line or 0)
    return report


# --------------------------------------------------------------------------- the bytecode


def scan_forbidden_opcodes(code: bytes) -> list[tuple[int, str]]:
    """(byte offset, opcode name) of each forbidden instruction, skipping PUSH data and metadata."""
    return [(pc, FORBIDDEN_OPCODES[op]) for pc, op in find_opcodes(code, frozenset(FORBIDDEN_OPCODES))]


def validate_compiled(compiled: CompiledContract) -> list[Problem]:
    """Bytecode rules (creation and runtime code) and the storage-layout rule."""
    problems = []
    # The creation code carries the runtime code as data; its hits are reported as runtime hits.
    embedded = compiled.creation_code.find(compiled.runtime_code) if compiled.runtime_code else -1
    skip = range(embedded, embedded + len(compiled.runtime_code)) if embedded >= 0 else range(0)
    for runtime, code, what in (
        (False, compiled.creation_code, "constructor code"),
        (True, compiled.runtime_code, "contract code"),
    ):
        for pc, name in scan_forbidden_opcodes(code):
            if not runtime and pc in skip:
                continue
            origin = compiled.instruction_origin(code, pc, runtime=runtime)
            problems.append(
                Problem(
                    f"{what} contains the forbidden instruction {name} (at byte 0x{pc:x}); "
                    "external calls, contract creation, balance and code introspection are not allowed",
                    origin.line,
                    origin.file,
                )
            )
    for entry in compiled.storage:
        if (
            entry.get("label") == "slots"
            and str(entry.get("slot")) == "0"
            and str(entry.get("offset")) == "0"
        ):
            continue
        problems.append(
            Problem(
                f"state variable `{entry.get('label')}` is not allowed: keep all state in "
                f"`slots[0..31]` (it would live at storage slot {entry.get('slot')})",
                entry.get("line"),
                entry.get("file"),
            )
        )
    # De-duplicate (viaIR can map several forbidden instructions to one statement).
    unique: dict[str, Problem] = {}
    for p in problems:
        unique.setdefault(f"{p.file}:{p.line}:{p.message.split(' (at byte')[0]}", p)
    return list(unique.values())
