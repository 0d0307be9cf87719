"""Compile Solidity strategies with solcjs (npm ``solc``, pinned to 0.8.24), with an on-disk cache.

The compiler is the WebAssembly build of solc shipped in the npm package ``solc``; no native binary
is needed. One short-lived ``node`` process runs per compilation through a tiny driver shipped with
the package (``contracts/solc_driver.js``). The settings are the challenge's: optimizer on with 200
runs, ``viaIR`` and the ``paris`` EVM version, so the bytecode is the bytecode the reference runs.

Results are cached on disk keyed by a hash of the sources, the settings and the compiler version,
so compiling the same strategy twice costs a file read.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stratforge import process
from stratforge.files import atomic_write_text

SOLC_VERSION = "0.8.24"
CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"
DRIVER = CONTRACTS_DIR / "solc_driver.js"
BASE_FILES = ("IAMMStrategy.sol", "AMMStrategyBase.sol")
#: The reference's compiler settings (plus the outputs we need for the security checks).
SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "viaIR": True,
    "evmVersion": "paris",
    "outputSelection": {
        "*": {
            "": ["ast"],
            "*": [
                "abi",
                "evm.bytecode.object",
                "evm.bytecode.sourceMap",
                "evm.deployedBytecode.object",
                "evm.deployedBytecode.sourceMap",
                "evm.deployedBytecode.immutableReferences",
                "storageLayout",
            ],
        }
    },
}
#: Bumped when the cached record's shape changes.
_CACHE_FORMAT = 1
COMPILE_TIMEOUT_S = 120.0


class SolcNotFound(RuntimeError):
    """solcjs is not installed anywhere we look."""


class CompileError(RuntimeError):
    """The compiler rejected the source; ``messages`` holds its messages (with file and line)."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages


@dataclass(frozen=True)
class SourceMapEntry:
    """Where one instruction came from: a source file and a 1-based line (None when unknown)."""

    file: str | None
    line: int | None


@dataclass
class CompiledContract:
    """What the security checks and the EVM need from one compilation."""

    contract_name: str
    source_name: str
    creation_code: bytes
    runtime_code: bytes
    abi: list[dict[str, Any]]
    #: solc's storageLayout entries, each with an added ``line`` (1-based, in ``source_name``).
    storage: list[dict[str, Any]]
    creation_source_map: str
    runtime_source_map: str
    #: source id -> source unit name, to read the source maps.
    source_ids: dict[int, str]
    sources: dict[str, str]
    warnings: list[str] = field(default_factory=list)
    #: immutable variable name -> byte offsets of its 32-byte words in ``runtime_code`` (solc leaves
    #: them zero; the constructor fills them), so a compiled template can take new values unrecompiled.
    immutables: dict[str, tuple[int, ...]] = field(default_factory=dict)
    compiler_version: str = ""
    cache_key: str = ""
    from_cache: bool = False

    def instruction_origin(self, code: bytes, pc: int, runtime: bool = True) -> SourceMapEntry:
        """Source file and line of the instruction at byte offset ``pc`` (best effort)."""
        index = _instruction_index(code, pc)
        smap = self.runtime_source_map if runtime else self.creation_source_map
        entries = _decode_source_map(smap)
        if index >= len(entries):
            return SourceMapEntry(None, None)
        start, file_id = entries[index]
        name = self.source_ids.get(file_id)
        if name is None or start < 0:
            return SourceMapEntry(None, None)
        text = self.sources.get(name, "")
        return SourceMapEntry(name, text.count("\n", 0, start) + 1)


# --------------------------------------------------------------------------- locating solcjs


def cache_root() -> Path:
    """Root of stratforge's caches (``STRATFORGE_CACHE_DIR`` or the XDG cache dir)."""
    env = os.environ.get("STRATFORGE_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "stratforge"


def bytecode_cache_dir() -> Path:
    """Where compiled bytecode is cached (``STRATFORGE_SOLC_CACHE`` overrides)."""
    env = os.environ.get("STRATFORGE_SOLC_CACHE")
    return Path(env).expanduser() if env else cache_root() / "solc"


def npm_install_dir() -> Path:
    """Where ``stratforge amm setup-solc`` installs the pinned solcjs."""
    return cache_root() / "solc-npm"


def _package_version(pkg_dir: Path) -> str | None:
    try:
        return json.loads((pkg_dir / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def _candidate_dirs() -> list[Path]:
    out: list[Path] = []
    env = os.environ.get("STRATFORGE_SOLC_DIR")
    if env:
        base = Path(env).expanduser()
        out += [base, base / "node_modules" / "solc"]
    # A source checkout: the repository root (holding package.json) has node_modules/solc.
    for parent in Path(__file__).resolve().parents:
        if (parent / "package.json").is_file():
            out.append(parent / "node_modules" / "solc")
            break
    out.append(Path.cwd() / "node_modules" / "solc")
    out.append(npm_install_dir() / "node_modules" / "solc")
    return out


def find_solc() -> Path:
    """Directory of an installed solcjs package of the pinned version."""
    seen: list[str] = []
    for cand in _candidate_dirs():
        version = _package_version(cand)
        if version == SOLC_VERSION and (cand / "soljson.js").is_file():
            return cand
        if version is not None:
            seen.append(f"{cand} (version {version})")
    detail = f"; found other versions: {', '.join(seen)}" if seen else ""
    raise SolcNotFound(
        f"solcjs {SOLC_VERSION} not found{detail}. Run `stratforge amm setup-solc` "
        "(or `npm install` in the repository root, or set STRATFORGE_SOLC_DIR)."
    )


def find_node() -> str:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        raise SolcNotFound(
            "Node.js (`node`) is required to run solcjs; install it (e.g. apt-get install nodejs)."
        )
    return node


def setup_solc(force: bool = False) -> Path:
    """Install the pinned solcjs with npm into the user cache dir (no-op when already present)."""
    if not force:
        try:
            return find_solc()
        except SolcNotFound:
            pass
    npm = shutil.which("npm")
    if npm is None:
        raise SolcNotFound("npm is required to install solcjs; install Node.js and npm first.")
    target = npm_install_dir()
    target.mkdir(parents=True, exist_ok=True)
    proc = process.run(
        [npm, "install", "--prefix", str(target), "--no-audit", "--no-fund", f"solc@{SOLC_VERSION}"],
        text=True,
    )
    if proc.returncode != 0:
        raise SolcNotFound(f"npm install solc@{SOLC_VERSION} failed: {proc.stderr.strip()[-500:]}")
    return find_solc()


# --------------------------------------------------------------------------- compiling


def base_sources() -> dict[str, str]:
    """The interface and base contract, as shipped in the package."""
    return {name: (CONTRACTS_DIR / name).read_text(encoding="utf-8") for name in BASE_FILES}


def _source_unit_name(file_name: str | None) -> str:
    """A safe source unit name for the user's file (its base name), never clashing with a base file."""
    name = Path(file_name).name if file_name else "Strategy.sol"
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "Strategy.sol"
    if not name.endswith(".sol"):
        name += ".sol"
    if name in BASE_FILES:
        name = "User" + name
    return name


def _prepare(
    source: str, contract_name: str, file_name: str | None
) -> tuple[str, dict[str, str], dict[str, Any], str]:
    """Source unit name, all sources, the standard-JSON input and its cache key."""
    unit = _source_unit_name(file_name)
    sources = {**base_sources(), unit: source}
    std_input = {
        "language": "Solidity",
        "sources": {k: {"content": v} for k, v in sources.items()},
        "settings": SETTINGS,
    }
    key_material = json.dumps(
        {"input": std_input, "contract": contract_name, "solc": SOLC_VERSION, "format": _CACHE_FORMAT},
        sort_keys=True,
    )
    return unit, sources, std_input, hashlib.sha256(key_material.encode()).hexdigest()


def cache_key(source: str, contract_name: str = "Strategy", file_name: str | None = None) -> str:
    """The bytecode-cache key: a hash of every source, the settings and the compiler version."""
    return _prepare(source, contract_name, file_name)[3]


def compile_strategy(
    source: str,
    contract_name: str = "Strategy",
    file_name: str | None = None,
    use_cache: bool = True,
) -> CompiledContract:
    """Compile a strategy source against the shipped base files; raises CompileError on failure."""
    unit, sources, std_input, key = _prepare(source, contract_name, file_name)
    cache_file = bytecode_cache_dir() / f"{key}.json"
    if use_cache and cache_file.is_file():
        try:
            record = json.loads(cache_file.read_text())
            return _from_record(record, sources, key, from_cache=True)
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache entry is simply recompiled
    record = _run_solc(std_input, unit, contract_name, sources)
    if use_cache:
        atomic_write_text(cache_file, json.dumps(record))
    return _from_record(record, sources, key, from_cache=False)


def _run_solc(
    std_input: dict[str, Any], unit: str, contract_name: str, sources: dict[str, str]
) -> dict[str, Any]:
    solc_dir = find_solc()
    try:
        # via stratforge.process: node exits with us even if we are killed mid-compile
        proc = process.run(
            [find_node(), str(DRIVER), str(solc_dir)],
            input=json.dumps(std_input),
            text=True,
            timeout=COMPILE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        raise CompileError([f"compiler timed out after {COMPILE_TIMEOUT_S:.0f} s"]) from exc
    if proc.returncode != 0:
        raise CompileError([f"compiler process failed: {proc.stderr.strip()[-1000:]}"])
    payload = json.loads(proc.stdout)
    output = payload["output"]
    errors, warnings = [], []
    for err in output.get("errors", []):
        (errors if err.get("severity") == "error" else warnings).append(_format_error(err, sources))
    if errors:
        raise CompileError(errors)
    contracts = output.get("contracts", {}).get(unit, {})
    if contract_name not in contracts:
        found = ", ".join(sorted(contracts)) or "none"
        raise CompileError([f"{unit}: no contract named '{contract_name}' (found: {found})"])
    out = contracts[contract_name]
    source_ids = {int(v["id"]): k for k, v in output.get("sources", {}).items()}
    # Attach the declaring line to every storage variable, from the AST's source ranges.
    storage = out.get("storageLayout", {}).get("storage", [])
    wanted = {int(e["astId"]) for e in storage if "astId" in e}
    where: dict[int, tuple[str, int]] = {}
    for info in output.get("sources", {}).values():
        _find_nodes(info.get("ast", {}), wanted, where, source_ids, sources)
    for entry in storage:
        file, line = where.get(int(entry.get("astId", -1)), (None, None))
        entry["file"], entry["line"] = file, line
    immutables: dict[str, list[int]] = {}
    refs = out["evm"]["deployedBytecode"].get("immutableReferences", {})
    names = _declared_names(output.get("sources", {}).get(unit, {}).get("ast", {}), {int(k) for k in refs})
    for ast_id, words in refs.items():
        immutables[names.get(int(ast_id), f"#{ast_id}")] = sorted(int(w["start"]) for w in words)
    return {
        "contract_name": contract_name,
        "source_name": unit,
        "creation_code": out["evm"]["bytecode"]["object"],
        "runtime_code": out["evm"]["deployedBytecode"]["object"],
        "abi": out.get("abi", []),
        "storage": storage,
        "creation_source_map": out["evm"]["bytecode"].get("sourceMap", ""),
        "runtime_source_map": out["evm"]["deployedBytecode"].get("sourceMap", ""),
        "source_ids": {str(k): v for k, v in source_ids.items()},
        "warnings": warnings,
        "compiler_version": payload.get("version", SOLC_VERSION),
        "immutables": immutables,
    }


def _format_error(err: dict[str, Any], sources: dict[str, str]) -> str:
    """One line per compiler message: ``file:line:col: Kind: message``."""
    kind = err.get("type", "Error")
    text = f"{kind}: {err.get('message', 'unknown compiler error')}".strip()
    loc = err.get("sourceLocation") or {}
    name = loc.get("file")
    if name and loc.get("start", -1) >= 0:
        src = sources.get(name, "")
        start = int(loc["start"])
        line = src.count("\n", 0, start) + 1
        col = start - (src.rfind("\n", 0, start) + 1) + 1
        return f"{name}:{line}:{col}: {text}"
    return f"{name}: {text}" if name else text


def _find_nodes(
    node: Any,
    wanted: set[int],
    where: dict[int, tuple[str, int]],
    source_ids: dict[int, str],
    sources: dict[str, str],
) -> None:
    """Record (file, line) of AST nodes whose id is in ``wanted``."""
    if isinstance(node, dict):
        if node.get("id") in wanted and "src" in node:
            start, _length, file_id = (int(p) for p in node["src"].split(":"))
            name = source_ids.get(file_id, "?")
            where[node["id"]] = (name, sources.get(name, "").count("\n", 0, start) + 1)
        for value in node.values():
            if isinstance(value, dict | list):
                _find_nodes(value, wanted, where, source_ids, sources)
    elif isinstance(node, list):
        for item in node:
            _find_nodes(item, wanted, where, source_ids, sources)


def _declared_names(node: Any, wanted: set[int]) -> dict[int, str]:
    """AST id -> name of the variable declarations in ``wanted``."""
    found: dict[int, str] = {}
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("id") in wanted and item.get("nodeType") == "VariableDeclaration":
                found[item["id"]] = item.get("name", "")
            stack.extend(v for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _from_record(
    record: dict[str, Any], sources: dict[str, str], key: str, from_cache: bool
) -> CompiledContract:
    return CompiledContract(
        contract_name=record["contract_name"],
        source_name=record["source_name"],
        creation_code=bytes.fromhex(record["creation_code"]),
        runtime_code=bytes.fromhex(record["runtime_code"]),
        abi=record["abi"],
        storage=record["storage"],
        creation_source_map=record["creation_source_map"],
        runtime_source_map=record["runtime_source_map"],
        source_ids={int(k): v for k, v in record["source_ids"].items()},
        sources=sources,
        warnings=record["warnings"],
        compiler_version=record["compiler_version"],
        cache_key=key,
        from_cache=from_cache,
        immutables={k: tuple(v) for k, v in record.get("immutables", {}).items()},
    )


# --------------------------------------------------------------------------- bytecode helpers


def _instruction_index(code: bytes, pc: int) -> int:
    """Index of the instruction starting at byte ``pc`` (PUSH data is not an instruction)."""
    i = index = 0
    while i < pc and i < len(code):
        op = code[i]
        i += 1 + (op - 0x5F if 0x60 <= op <= 0x7F else 0)
        index += 1
    return index


def _decode_source_map(smap: str) -> list[tuple[int, int]]:
    """solc's compressed source map -> (start offset, file id) per instruction."""
    out: list[tuple[int, int]] = []
    start, file_id = -1, -1
    for item in smap.split(";") if smap else []:
        parts = item.split(":")
        if len(parts) > 0 and parts[0]:
            start = int(parts[0])
        if len(parts) > 2 and parts[2]:
            file_id = int(parts[2])
        out.append((start, file_id))
    return out
