"""One entry point from a Solidity file (or source text) to a runnable strategy spec.

    >>> spec = load_solidity_strategy("Strategy.sol")   # validate -> compile -> check -> deploy
    >>> result = run_batch(spec, 10)

Every failure raises ``StrategyRejected`` carrying the full list of problems with their lines.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from stratforge.amm.compiler import CompiledContract, CompileError, SolcNotFound, compile_strategy
from stratforge.amm.evm import EvmStrategySpec, StrategyError
from stratforge.amm.validate import (
    Problem,
    StrategyRejected,
    ValidationReport,
    decode_source,
    validate_compiled,
    validate_source,
)

EXAMPLES_DIR = Path(__file__).resolve().parent / "contracts" / "examples"

__all__ = [
    "EXAMPLES_DIR",
    "CompilerUnavailable",
    "LoadedStrategy",
    "StrategyRejected",
    "check_solidity",
    "load_solidity_strategy",
]


class CompilerUnavailable(StrategyRejected):
    """The strategy could not be checked because node or solcjs is missing (not its fault)."""


@dataclass
class LoadedStrategy:
    """Everything known about a loaded strategy (the pipeline records it)."""

    spec: EvmStrategySpec
    source: str
    source_name: str
    source_sha256: str
    compiled: CompiledContract
    warnings: list[str]


def _read(path_or_source: str | Path) -> tuple[bytes, str]:
    """(raw bytes, file name) from a path, or from source text passed directly."""
    if isinstance(path_or_source, Path):
        return path_or_source.read_bytes(), path_or_source.name
    text = path_or_source
    looks_like_path = "\n" not in text and len(text) < 4096 and text.strip().endswith(".sol")
    if looks_like_path:
        path = Path(text).expanduser()
        if not path.is_file():
            raise StrategyRejected([Problem(f"no such file: {text}")])
        return path.read_bytes(), path.name
    return text.encode("utf-8"), "Strategy.sol"


def check_solidity(path_or_source: str | Path, use_cache: bool = True) -> LoadedStrategy:
    """Validate, compile and check; deploys once to get the runtime code. Raises StrategyRejected."""
    try:
        data, file_name = _read(path_or_source)
    except OSError as exc:
        raise StrategyRejected([Problem(f"cannot read {path_or_source}: {exc.strerror or exc}")]) from exc
    source, problems = decode_source(data)
    if source is None:
        raise StrategyRejected(problems)
    report: ValidationReport = validate_source(source)
    if not report.ok:
        raise StrategyRejected([_in_file(p, file_name) for p in report.problems])
    try:
        compiled = compile_strategy(source, file_name=file_name, use_cache=use_cache)
    except CompileError as exc:
        raise StrategyRejected([Problem(m) for m in exc.messages]) from exc
    except SolcNotFound as exc:
        raise CompilerUnavailable([Problem(f"Solidity compiler unavailable: {exc}")]) from exc
    problems = validate_compiled(compiled)
    if problems:
        raise StrategyRejected(problems)
    digest = hashlib.sha256(data).hexdigest()
    try:
        spec = EvmStrategySpec.from_creation_code(
            compiled.creation_code, source_hash=digest, compiler_version=compiled.compiler_version
        )
    except StrategyError as exc:
        raise StrategyRejected([Problem(str(exc))]) from exc
    warnings = [str(_in_file(w, file_name)) for w in report.warnings] + compiled.warnings
    return LoadedStrategy(spec, source, compiled.source_name, digest, compiled, warnings)


def load_solidity_strategy(path_or_source: str | Path, use_cache: bool = True) -> EvmStrategySpec:
    """validate + compile + build the spec; raises StrategyRejected with the list of problems."""
    return check_solidity(path_or_source, use_cache=use_cache).spec


def _in_file(problem: Problem, file_name: str) -> Problem:
    return problem if problem.file else Problem(problem.message, problem.line, file_name)
