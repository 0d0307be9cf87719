"""Staged test of a Solidity strategy: validate -> compile -> 10 -> 100 -> 1000 simulations.

Each stage extends the previous one with the next seeds (stage 100 reuses the 10 simulations of
stage 10 and runs seeds 10..99), so the whole pipeline costs the simulations of its last stage.
A stage whose mean edge is below its threshold stops the pipeline: cheap stages weed out weak
strategies before the expensive ones. The result is one JSON document, written atomically.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from stratforge.amm.engine import SIMULATOR_VERSION, BatchResult, run_batch, summarize
from stratforge.amm.strategy import StrategySpec
from stratforge.files import atomic_write_json

DEFAULT_STAGES = (10, 100, 1000)
RESULT_FORMAT = 1

__all__ = ["DEFAULT_STAGES", "PipelineResult", "StageResult", "run_pipeline"]


@dataclass
class StageResult:
    simulations: int
    mean_edge: float
    normalizer_mean_edge: float
    std_error: float
    edge_ci_low: float  # 95% interval of mean_edge (stratforge.stats.mean_ci)
    edge_ci_high: float
    wins: int
    losses: int
    draws: int
    p05: float
    p50: float
    p95: float
    mean_retail_volume_y: float
    mean_arb_volume_y: float
    avg_bid_fee_bps: float
    avg_ask_fee_bps: float
    hook_calls: int
    hook_failures: int
    evm_fallback_calls: int  # hook calls the core's EVM handed to pyrevm
    cpu_s: float
    elapsed_s: float
    threshold: float | None
    passed: bool


@dataclass
class PipelineResult:
    """Outcome of ``run_pipeline``: ``status`` is "passed", "stopped" (below a threshold),
    "rejected" (validation or compilation) or "failed" (the strategy could not run)."""

    status: str
    strategy: str
    source_path: str | None
    source_sha256: str | None
    stages: list[StageResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    compiler_version: str | None = None
    #: solc settings (optimizer, viaIR, evmVersion) and the deployed runtime code's hash
    compiler_settings: dict[str, Any] | None = None
    runtime_code_sha256: str | None = None
    simulator_version: str = SIMULATOR_VERSION
    runtime_s: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    output_path: str | None = None

    @property
    def final(self) -> StageResult | None:
        return self.stages[-1] if self.stages else None

    @property
    def edge(self) -> float | None:
        return self.final.mean_edge if self.final else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["format"] = RESULT_FORMAT
        d["edge"] = self.edge
        d["edge_per_stage"] = {str(s.simulations): s.mean_edge for s in self.stages}
        d["created_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        return d


def _thresholds(
    stages: Sequence[int], thresholds: Sequence[float | None] | float | None
) -> list[float | None]:
    if thresholds is None or isinstance(thresholds, int | float):
        return [thresholds] * len(stages)  # type: ignore[list-item]
    out = list(thresholds)
    if len(out) > len(stages):
        raise ValueError(f"{len(out)} thresholds for {len(stages)} stages")
    return out + [None] * (len(stages) - len(out))


def default_output_path(name: str, digest: str | None) -> Path:
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "strategy"
    return Path(".stratforge") / "results" / f"{stem}-{(digest or 'native')[:12]}.json"


def run_pipeline(
    path: str | Path | StrategySpec,
    stages: Sequence[int] = DEFAULT_STAGES,
    thresholds: Sequence[float | None] | float | None = None,
    workers: int | None = None,
    seed_start: int = 0,
    output: str | Path | None = None,
    write: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
    use_cache: bool = True,
    max_hook_failure_rate: float | None = None,
) -> PipelineResult:
    """Validate, compile and simulate in growing stages; see the module docstring.

    ``thresholds``: one minimum mean edge for every stage, or one per stage (None = no minimum).
    ``max_hook_failure_rate``: also stop when more than this fraction of hook calls failed (a
    strategy that mostly reverts or runs out of gas is broken, and out-of-gas calls are slow).
    ``progress(stage_label, done, total)`` is called as simulations finish.
    The JSON result goes to ``output`` (default ``.stratforge/results/<name>-<hash>.json``).
    """
    from stratforge.amm.compiler import SETTINGS
    from stratforge.amm.evm import StrategyError
    from stratforge.amm.solidity import CompilerUnavailable, check_solidity
    from stratforge.amm.validate import StrategyRejected

    stages = sorted({int(s) for s in stages})
    if not stages or stages[0] < 1:
        raise ValueError("stages must be positive simulation counts")
    limits = _thresholds(stages, thresholds)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}

    spec: StrategySpec
    if isinstance(path, str | Path):
        source_path = str(path)
        digest = None
        with contextlib.suppress(OSError):
            digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        try:
            loaded = check_solidity(Path(path), use_cache=use_cache)
        except StrategyRejected as exc:
            # A missing compiler is an environment failure, not a verdict on the strategy.
            status = "failed" if isinstance(exc, CompilerUnavailable) else "rejected"
            result = PipelineResult(
                status, Path(path).stem, source_path, digest, problems=[str(p) for p in exc.problems]
            )
            return _finish(result, t0, timings, output, write)
        timings["validate_compile_s"] = time.perf_counter() - t0
        spec = loaded.spec
        result = PipelineResult(
            "passed",
            spec.name,
            source_path,
            loaded.source_sha256,
            warnings=loaded.warnings,
            compiler_version=loaded.compiled.compiler_version,
            compiler_settings={k: v for k, v in SETTINGS.items() if k != "outputSelection"},
            runtime_code_sha256=hashlib.sha256(spec.runtime_code).hexdigest(),
        )
    else:
        spec = path
        result = PipelineResult("passed", spec.name, None, getattr(spec, "source_hash", None) or None)

    columns: dict[str, np.ndarray] = {}
    cpu = elapsed = 0.0
    done = 0
    for n, limit in zip(stages, limits, strict=True):
        label = f"{n} simulations"
        try:
            batch: BatchResult = run_batch(
                spec,
                n - done,
                seed_start=seed_start + done,
                workers=workers,
                progress=(lambda k, _l=label, _n=n: progress(_l, k, _n)) if progress else None,
            )
        except (StrategyError, ValueError) as exc:
            result.status = "failed"
            result.problems.append(f"stage {n}: {exc}")
            break
        for key, col in batch.columns.items():
            columns[key] = np.concatenate([columns[key], col]) if key in columns else col
        cpu += batch.cpu_s
        elapsed += batch.elapsed_s
        done = n
        stats = summarize(columns, cpu, elapsed)
        passed = limit is None or stats["mean_edge"] >= limit
        rate = stats["hook_failures"] / stats["hook_calls"] if stats["hook_calls"] else 0.0
        if max_hook_failure_rate is not None and rate > max_hook_failure_rate:
            passed = False
            result.problems.append(
                f"stage {n}: {rate:.1%} of hook calls failed (limit {max_hook_failure_rate:.1%})"
            )
        result.stages.append(StageResult(**stats, threshold=limit, passed=passed))
        timings[f"stage_{n}_s"] = batch.elapsed_s
        if not passed:
            result.status = "stopped"
            break
    return _finish(result, t0, timings, output, write)


def _finish(
    result: PipelineResult, t0: float, timings: dict[str, float], output: str | Path | None, write: bool
) -> PipelineResult:
    result.runtime_s = time.perf_counter() - t0
    result.timings = timings
    if write:
        out = (
            Path(output) if output is not None else default_output_path(result.strategy, result.source_sha256)
        )
        result.output_path = str(out)
        atomic_write_json(out, result.to_dict(), allow_nan=True)
    return result
