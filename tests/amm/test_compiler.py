"""solcjs compilation: settings, error messages, the bytecode cache and compiler lookup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _solidity_helpers import STARTER, strategy_source

from stratforge.amm import compiler
from stratforge.amm.compiler import (
    SETTINGS,
    SOLC_VERSION,
    CompileError,
    SolcNotFound,
    cache_key,
    compile_strategy,
    find_solc,
)


def test_settings_are_the_references() -> None:
    assert SOLC_VERSION == "0.8.24"
    assert SETTINGS["optimizer"] == {"enabled": True, "runs": 200}
    assert SETTINGS["viaIR"] is True and SETTINGS["evmVersion"] == "paris"


def test_compiles_the_starter_with_solc_0_8_24() -> None:
    out = compile_strategy(STARTER.read_text(), file_name="StarterStrategy.sol")
    assert out.compiler_version.startswith("0.8.24+commit.e11b9ed9")
    # The CBOR metadata tail names the compiler: "solc" followed by 0.8.24 (0x00 0x08 0x18).
    assert out.runtime_code.endswith(b"solcC\x00\x08\x18\x003")
    assert b"\x5f" not in out.runtime_code[:4]  # paris: no PUSH0 in the dispatcher prologue
    selectors = {bytes.fromhex(s) for s in ("837aef47", "c2babb57", "17d7de7c")}
    assert all(sel in out.runtime_code for sel in selectors)
    assert [e["label"] for e in out.storage] == ["slots"]
    assert {f["name"] for f in out.abi if f["type"] == "function"} >= {
        "afterInitialize",
        "afterSwap",
        "getName",
    }


def test_cache_hit_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = strategy_source()
    reference = compile_strategy(src)  # through the default cache
    monkeypatch.setenv("STRATFORGE_SOLC_CACHE", str(tmp_path))
    assert cache_key(src) == reference.cache_key
    # A damaged entry is recompiled (and replaced), never trusted.
    (tmp_path / f"{reference.cache_key}.json").write_text("{not json")
    fresh = compile_strategy(src)
    assert not fresh.from_cache and fresh.runtime_code == reference.runtime_code
    json.loads((tmp_path / f"{reference.cache_key}.json").read_text())
    again = compile_strategy(src)
    assert again.from_cache and again.runtime_code == reference.runtime_code
    assert again.storage == reference.storage and again.abi == reference.abi
    assert len(list(tmp_path.glob("*.json"))) == 1
    # Any change of the source, contract or file name is a different key.
    keys = {
        cache_key(src.replace("bpsToWad(30)", "bpsToWad(31)", 1)),
        cache_key(src, contract_name="Other"),
        cache_key(src, file_name="Other.sol"),
        reference.cache_key,
    }
    assert len(keys) == 4


def test_compile_errors_carry_file_line_and_column() -> None:
    src = strategy_source("    uint256 constant X = ;\n")
    with pytest.raises(CompileError) as err:
        compile_strategy(src, file_name="Mine.sol", use_cache=False)
    assert err.value.messages[0].startswith("Mine.sol:8:")
    assert "ParserError" in err.value.messages[0]
    src = strategy_source("    function f() external pure returns (uint256) { return undefinedThing; }\n")
    with pytest.raises(CompileError) as err:
        compile_strategy(src, use_cache=False)
    column = src.splitlines()[7].index("undefinedThing") + 1
    assert err.value.messages == [f"Strategy.sol:8:{column}: DeclarationError: Undeclared identifier."]


def test_find_solc_honours_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = find_solc()
    monkeypatch.setenv("STRATFORGE_SOLC_DIR", str(real))
    assert find_solc() == real
    # A directory holding another version is skipped and named in the error.
    fake = tmp_path / "node_modules" / "solc"
    fake.mkdir(parents=True)
    (fake / "package.json").write_text('{"version": "0.8.20"}')
    monkeypatch.setattr(compiler, "_candidate_dirs", lambda: [fake])
    with pytest.raises(SolcNotFound, match="0.8.20.*setup-solc"):
        find_solc()
