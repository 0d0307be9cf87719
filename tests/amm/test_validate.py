"""The validator: one rejection per forbidden construct (with its line), and what must pass."""

from __future__ import annotations

import pytest
from _solidity_helpers import DYNAMIC, FIXTURES, HEADER, HOOKS, STARTER, VANILLA, check, strategy_source

from stratforge.amm.compiler import compile_strategy
from stratforge.amm.validate import (
    MAX_SOURCE_BYTES,
    StrategyRejected,
    blank_source,
    decode_source,
    scan_forbidden_opcodes,
    validate_compiled,
    validate_source,
)

BODY_LINE = 8  # first line of the contract body in strategy_source()


def _fn(stmt: str) -> str:
    """A helper function whose first body statement is ``stmt`` (on BODY_LINE + 1)."""
    return f"    function helper() external {{\n        {stmt}\n    }}\n"


FORBIDDEN = [
    ('(bool ok, ) = address(this).call("");', "low-level external calls"),
    ('(bool ok, ) = address(this).call{gas: 1}("");', "low-level external calls"),
    ('(bool ok, ) = address(this).delegatecall("");', "delegatecall"),
    ('(bool ok, ) = address(this).staticcall("");', "staticcall"),
    ('(bool ok, ) = address(this).callcode("");', "callcode"),
    ("selfdestruct(payable(msg.sender));", "selfdestruct"),
    ("suicide(payable(msg.sender));", "suicide"),
    ("assembly { sstore(40, 1) }", "inline assembly"),
    ('assembly ("memory-safe") { }', "inline assembly"),
    ("Helper h = new Helper();", "`new`"),
    ("bytes memory c = address(this).code;", ".code"),
    ("bytes32 h = address(this).codehash;", ".code"),
    ("payable(msg.sender).transfer(1);", ".transfer()"),
    ("bool ok = payable(msg.sender).send(1);", ".send()"),
    ("address c = block.coinbase;", "coinbase"),
]


@pytest.mark.parametrize(
    ("stmt", "message"), FORBIDDEN, ids=[m + str(i) for i, (_, m) in enumerate(FORBIDDEN)]
)
def test_forbidden_statement_is_rejected_with_its_line(stmt: str, message: str) -> None:
    report = validate_source(strategy_source(_fn(stmt)))
    assert not report.ok
    hits = [p for p in report.problems if message in p.message]
    assert hits, report.problems
    assert hits[0].line == BODY_LINE + 1


def test_custom_interface_is_rejected() -> None:
    src = HEADER + "\ninterface IOracle {\n    function price() external view returns (uint256);\n}\n"
    src += "\ncontract Strategy is AMMStrategyBase {\n" + HOOKS + "}\n"
    report = validate_source(src)
    assert [(p.line, "interfaces" in p.message) for p in report.problems] == [(7, True)]


@pytest.mark.parametrize(
    ("old", "new", "message", "line"),
    [
        ('"./AMMStrategyBase.sol"', '"./Other.sol"', "import './Other.sol' is not allowed", 4),
        ('"./AMMStrategyBase.sol"', '"AMMStrategyBase.sol/../README.md"', "is not allowed", 4),
        ('"./AMMStrategyBase.sol"', '"lib/AMMStrategyBase.sol"', "is not allowed", 4),
        (
            'import {AMMStrategyBase} from "./AMMStrategyBase.sol";',
            "",
            "missing import of './AMMStrategyBase.sol'",
            None,
        ),
        ("pragma solidity ^0.8.24;", "", "missing `pragma solidity`", None),
        (
            "contract Strategy is AMMStrategyBase",
            "contract MyStrategy is AMMStrategyBase",
            "named `Strategy`",
            None,
        ),
        (
            "contract Strategy is AMMStrategyBase",
            "contract Strategy is IAMMStrategy",
            "inherit from AMMStrategyBase",
            7,
        ),
        ("function afterSwap(", "function afterSwapX(", "missing hook: function afterSwap", None),
        ("function getName(", "function name(", "missing hook: function getName", None),
        ("function afterInitialize(", "function init(", "missing hook: function afterInitialize", None),
    ],
)
def test_structural_rules(old: str, new: str, message: str, line: int | None) -> None:
    src = strategy_source()
    assert old in src
    report = validate_source(src.replace(old, new, 1))
    hits = [p for p in report.problems if message in p.message]
    assert hits, report.problems
    assert hits[0].line == line


@pytest.mark.parametrize(
    "decl", ["contract AMMStrategyBase {}", "struct TradeInfo { uint256 a; }", "library IAMMStrategy {}"]
)
def test_redeclaring_base_names_is_rejected(decl: str) -> None:
    src = HEADER + decl + "\n\ncontract Strategy is AMMStrategyBase {\n" + HOOKS + "}\n"
    report = validate_source(src)
    assert any("redeclaring" in p.message and p.line == 6 for p in report.problems), report.problems


def test_every_violation_is_reported_not_just_the_first() -> None:
    body = _fn("assembly { }") + _fn('(bool ok, ) = address(this).call("");')
    problems = validate_source(strategy_source(body)).problems
    assert [p.line for p in problems] == [BODY_LINE + 1, BODY_LINE + 4]


def test_comments_and_strings_neither_hide_nor_fake_constructs() -> None:
    harmless = (
        "    // assembly { } and address(this).call() in a comment\n"
        "    /* selfdestruct(x); new Foo(); */\n"
        '    string constant NOTE = "assembly { } .call( coinbase";\n'
    )
    assert validate_source(strategy_source(harmless)).ok
    # a hook that only exists in a comment does not count
    src = strategy_source().replace("function getName(", "// function getName(\n    function other(")
    assert any("getName" in p.message for p in validate_source(src).problems)
    # a spoofed declaration in a comment does not satisfy the inheritance rule
    spoof = strategy_source().replace(
        "contract Strategy is AMMStrategyBase",
        "// contract Strategy is AMMStrategyBase\ncontract Strategy is IAMMStrategy",
    )
    assert any("inherit from AMMStrategyBase" in p.message for p in validate_source(spoof).problems)


def test_blank_source_keeps_offsets() -> None:
    src = 'a // x\n/* y\n z */ "s\\"t" b'
    out = blank_source(src)
    assert len(out) == len(src) and out.count("\n") == src.count("\n")
    assert "x" not in out and "y" not in out and "t" not in out and out.endswith(" b")


def test_parent_relative_base_imports_are_accepted() -> None:
    src = strategy_source().replace('"./', '"../')
    assert validate_source(src).ok


def test_file_size_and_encoding() -> None:
    text, problems = decode_source(b"x" * (MAX_SOURCE_BYTES + 1))
    assert text is None and "limit is 100,000 bytes" in problems[0].message
    text, problems = decode_source(b"line1\nline2 \xff\xfe\n")
    assert text is None and problems[0].line == 2 and "UTF-8" in problems[0].message
    assert decode_source("// ok \u00e9\n".encode())[0] is not None


def test_examples_pass() -> None:
    for path in (STARTER, VANILLA, DYNAMIC):
        loaded = check(path)
        assert loaded.warnings == []
        assert loaded.spec.runtime_code


# ------------------------------------------------------------------------------ bytecode rules


def test_opcode_scan_skips_push_data_and_the_metadata_tail() -> None:
    # PUSH2 0xf1f1 | CALL | STOP | metadata "\xf4\xf4" with its length 2
    code = bytes([0x61, 0xF1, 0xF1, 0xF1, 0x00, 0xF4, 0xF4, 0x00, 0x02])
    assert scan_forbidden_opcodes(code) == [(3, "CALL")]
    assert scan_forbidden_opcodes(bytes([0x31, 0x3B, 0x3C, 0x3F, 0xF0, 0xF5, 0xFA, 0xFF, 0xF2])) != []


def test_state_variable_is_rejected_from_the_storage_layout() -> None:
    with pytest.raises(StrategyRejected) as err:
        check(FIXTURES / "StorageOutsideSlots.sol")
    (problem,) = err.value.problems
    assert "`counter`" in problem.message and problem.line == 9 and problem.file == "StorageOutsideSlots.sol"


def test_balance_of_another_address_is_rejected_by_the_bytecode_rule() -> None:
    # `.balance` passes the source rules; the compiled BALANCE opcode does not.
    hooks = HOOKS.replace(
        "return (bpsToWad(30), bpsToWad(30));\n    }\n\n    function afterSwap",
        "return (bpsToWad(30) + address(0x1234).balance, bpsToWad(30));\n    }\n\n    function afterSwap",
    )
    src = strategy_source(hooks=hooks)
    assert validate_source(src).ok
    problems = validate_compiled(compile_strategy(src))
    assert len(problems) == 1
    assert "BALANCE" in problems[0].message and problems[0].line == 10 and problems[0].file == "Strategy.sol"


def test_external_call_in_constructor_is_rejected_in_creation_code() -> None:
    body = "    constructor() {\n        IAMMStrategy(address(0x4)).getName();\n    }\n"
    src = strategy_source(body)
    assert validate_source(src).ok  # an interface call looks harmless in the source
    problems = validate_compiled(compile_strategy(src))
    assert [(p.line, "constructor code" in p.message, "STATICCALL" in p.message) for p in problems] == [
        (BODY_LINE + 1, True, True)
    ]
