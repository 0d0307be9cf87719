"""Run simulations of the AMM fee-strategy challenge and aggregate their scores.

The market model and the random streams live in the compiled core (`_core.c`); this module draws
the per-simulation configurations exactly as the reference does, fans simulations out over worker
processes, and gathers per-simulation results into NumPy arrays. Results depend only on the seeds,
never on the number of workers: every simulation is independent and results are stored by seed.

    >>> from stratforge.amm.engine import run_batch
    >>> from stratforge.amm.strategy import FixedFee
    >>> result = run_batch(FixedFee(50), n_simulations=10)
    >>> round(result.mean_edge, 2)
    392.08
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any, Protocol

import numpy as np

from stratforge.amm import _core
from stratforge.amm.evm import EvmStrategySpec
from stratforge.amm.strategy import NORMALIZER, FixedFee, StrategySpec
from stratforge.amm.twins import TwinOutOfRange, TwinSpec
from stratforge.process import die_with_parent
from stratforge.stats import mean_ci

#: Version of the simulation semantics; bump when a change could alter any score.
SIMULATOR_VERSION = "1.0.0"


@dataclass(frozen=True)
class MarketParams:
    """The challenge's fixed market settings and the ranges per-simulation values are drawn from."""

    n_steps: int = 10_000
    initial_price: float = 100.0
    initial_x: float = 100.0
    initial_y: float = 10_000.0
    gbm_mu: float = 0.0
    gbm_dt: float = 1.0
    retail_buy_prob: float = 0.5
    retail_size_sigma: float = 1.2
    retail_mean_size_range: tuple[float, float] = (19.0, 21.0)
    retail_arrival_rate_range: tuple[float, float] = (0.6, 1.0)
    gbm_sigma_range: tuple[float, float] = (0.000882, 0.001008)


CHALLENGE = MarketParams()


@dataclass(frozen=True)
class SimConfig:
    """Everything that defines one simulation."""

    seed: int
    retail_mean_size: float
    retail_arrival_rate: float
    gbm_sigma: float
    market: MarketParams = CHALLENGE


def draw_config(seed: int, market: MarketParams = CHALLENGE) -> SimConfig:
    """The reference draws each simulation's parameters from numpy's default_rng(seed), in this order."""
    rng = np.random.default_rng(seed)
    mean_size = rng.uniform(*market.retail_mean_size_range)
    arrival_rate = rng.uniform(*market.retail_arrival_rate_range)
    sigma = rng.uniform(*market.gbm_sigma_range)
    return SimConfig(seed, float(mean_size), float(arrival_rate), float(sigma), market)


def _native_or_instance(spec: StrategySpec) -> Any:
    """Fixed fees never leave the compiled core; anything else gets a fresh instance."""
    if isinstance(spec, FixedFee):
        return spec.fees_wad
    return spec.create()


def simulate(
    config: SimConfig,
    submission: StrategySpec,
    normalizer: StrategySpec = NORMALIZER,
    *,
    history: bool = False,
) -> SimResult:
    """Run one simulation. With ``history=True`` the result carries per-step arrays."""
    m = config.market
    hist = np.zeros((m.n_steps, 8)) if history else None
    try:
        sub, norm = _run_core(config, submission, normalizer, hist)
    except TwinOutOfRange:
        if not isinstance(submission, TwinSpec):
            raise
        # the twin met what it does not model exactly: the contract decides, in the EVM
        return simulate(config, submission.exact, normalizer, history=history)
    return SimResult(config.seed, AmmResult(**sub), AmmResult(**norm), history=hist)


def _run_core(
    config: SimConfig, submission: StrategySpec, normalizer: StrategySpec, hist: np.ndarray | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    m = config.market
    return _core.simulate(
        config.seed,
        m.n_steps,
        m.initial_price,
        m.initial_x,
        m.initial_y,
        m.gbm_mu,
        config.gbm_sigma,
        m.gbm_dt,
        config.retail_arrival_rate,
        config.retail_mean_size,
        m.retail_size_sigma,
        m.retail_buy_prob,
        _native_or_instance(submission),
        _native_or_instance(normalizer),
        hist,
    )


@dataclass(frozen=True)
class AmmResult:
    """One AMM's outcome in one simulation."""

    edge: float
    pnl: float
    arb_volume_y: float
    retail_volume_y: float
    avg_bid_fee: float
    avg_ask_fee: float
    arb_trades: int
    retail_trades: int
    hook_calls: int
    hook_failures: int
    #: hook calls the core's EVM handed to pyrevm (an opcode it does not implement); 0 otherwise
    evm_fallback_calls: int = 0


@dataclass(frozen=True)
class SimResult:
    seed: int
    submission: AmmResult
    normalizer: AmmResult
    #: per-step [fair price, submission spot, normalizer spot, bid, ask, sub pnl, norm pnl, cum edge]
    history: np.ndarray | None = None


# Columns kept per simulation in a batch (submission side unless prefixed).
_SUB_FIELDS = tuple(AmmResult.__dataclass_fields__)
_COUNT_FIELDS = ("arb_trades", "retail_trades", "hook_calls", "hook_failures", "evm_fallback_calls")
_NORM_FIELDS = ("edge", "pnl", "arb_volume_y", "retail_volume_y", "avg_bid_fee", "avg_ask_fee")


@dataclass
class BatchResult:
    """Per-simulation arrays (indexed like ``seeds``) and the aggregate scores."""

    strategy: str
    seeds: np.ndarray
    columns: dict[str, np.ndarray]
    elapsed_s: float = 0.0
    cpu_s: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> np.ndarray:
        columns = self.__dict__.get("columns", {})
        if name in columns:
            return columns[name]
        raise AttributeError(name)

    @property
    def n(self) -> int:
        return len(self.seeds)

    @property
    def mean_edge(self) -> float:
        return float(np.mean(self.columns["edge"]))

    @property
    def normalizer_mean_edge(self) -> float:
        return float(np.mean(self.columns["normalizer_edge"]))

    @property
    def std_error(self) -> float:
        edge = self.columns["edge"]
        return mean_ci(edge).std_error if len(edge) > 1 else math.nan

    def summary(self) -> dict[str, Any]:
        """Aggregate scores as plain JSON-able values: :func:`summarize` plus the batch's identity."""
        return {
            "strategy": self.strategy,
            "seed_start": int(self.seeds[0]) if self.n else None,
            **summarize(self.columns, self.cpu_s, self.elapsed_s),
            "mean_pnl": float(np.mean(self.columns["pnl"])),
            "simulator_version": SIMULATOR_VERSION,
            **self.meta,
        }

    def per_simulation(self) -> list[dict[str, float]]:
        cols = self.columns.items()
        return [{"seed": int(s), **{k: v[i].item() for k, v in cols}} for i, s in enumerate(self.seeds)]


def summarize(columns: dict[str, np.ndarray], cpu_s: float, elapsed_s: float) -> dict[str, Any]:
    """The aggregate scores of per-simulation columns (one definition for batches and test stages).

    ``std_error`` and the 95% interval ``edge_ci_low``/``edge_ci_high`` of the mean edge come from
    stratforge.stats.mean_ci (Student t); with one simulation they are NaN (nothing to estimate from).
    """
    edge, norm = columns["edge"], columns["normalizer_edge"]
    n = len(edge)
    ci = mean_ci(edge) if n > 1 else None
    return {
        "simulations": n,
        "mean_edge": float(np.mean(edge)),
        "normalizer_mean_edge": float(np.mean(norm)),
        "std_error": ci.std_error if ci else math.nan,
        "edge_ci_low": ci.low if ci else math.nan,
        "edge_ci_high": ci.high if ci else math.nan,
        "wins": int(np.sum(edge > norm)),
        "losses": int(np.sum(edge < norm)),
        "draws": int(np.sum(edge == norm)),
        "p05": float(np.percentile(edge, 5)),
        "p50": float(np.percentile(edge, 50)),
        "p95": float(np.percentile(edge, 95)),
        "mean_retail_volume_y": float(np.mean(columns["retail_volume_y"])),
        "mean_arb_volume_y": float(np.mean(columns["arb_volume_y"])),
        "avg_bid_fee_bps": float(np.mean(columns["avg_bid_fee"]) * 1e4),
        "avg_ask_fee_bps": float(np.mean(columns["avg_ask_fee"]) * 1e4),
        "hook_calls": int(np.sum(columns["hook_calls"])),
        "hook_failures": int(np.sum(columns["hook_failures"])),
        # hook calls the core's EVM handed to pyrevm (see stratforge.amm.evm)
        "evm_fallback_calls": int(np.sum(columns["evm_fallback_calls"]))
        if "evm_fallback_calls" in columns
        else 0,
        "cpu_s": cpu_s,
        "elapsed_s": elapsed_s,
    }


def run_chunk(
    seeds: Sequence[int], submission: StrategySpec, normalizer: StrategySpec, market: MarketParams
) -> tuple[np.ndarray, float]:
    """Worker entry point: run consecutive seeds, return a [len, n_columns] array and CPU seconds."""
    start = time.process_time()
    rows = np.empty((len(seeds), len(_SUB_FIELDS) + len(_NORM_FIELDS)))
    for i, seed in enumerate(seeds):
        r = simulate(draw_config(seed, market), submission, normalizer)
        rows[i, : len(_SUB_FIELDS)] = [getattr(r.submission, f) for f in _SUB_FIELDS]
        rows[i, len(_SUB_FIELDS) :] = [getattr(r.normalizer, f) for f in _NORM_FIELDS]
    return rows, time.process_time() - start


_POOLS: dict[int, ProcessPoolExecutor] = {}


def _pool(workers: int) -> ProcessPoolExecutor:
    """One long-lived pool per size: spawning workers costs far more than a 10-simulation batch.

    Workers exit when this process dies, however it dies (stratforge.process.die_with_parent). The
    kernel's parent-death signal is only asked for when the pool is made on the main thread: the
    kernel ties it to the spawning thread, and a pool outlives any other thread that first used it.
    """
    pool = _POOLS.get(workers)
    if pool is None:
        on_main = threading.current_thread() is threading.main_thread()
        pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=get_context("spawn"),
            initializer=die_with_parent,
            initargs=(os.getpid(), on_main),
        )
        _POOLS[workers] = pool
    return pool


def shutdown_pools() -> None:
    for pool in _POOLS.values():
        pool.shutdown(cancel_futures=True)
    _POOLS.clear()


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class Executor(Protocol):
    """Where a batch's chunks run. ``run_batch`` uses its local process pool when given none; the
    Ray executor (:mod:`stratforge.amm.ray_executor`) runs them as Ray tasks."""

    def map_chunks(
        self,
        chunks: Sequence[Sequence[int]],
        spec: StrategySpec,
        normalizer: StrategySpec,
        market: MarketParams,
    ) -> Iterable[tuple[int, tuple[np.ndarray, float]]]:
        """``run_chunk`` over every chunk; yields ``(chunk index, result)`` as chunks finish."""
        ...


def run_batch(
    spec: StrategySpec,
    n_simulations: int,
    seed_start: int = 0,
    workers: int | None = None,
    normalizer: StrategySpec = NORMALIZER,
    progress: Callable[[int], None] | None = None,
    market: MarketParams = CHALLENGE,
    seeds: Sequence[int] | None = None,
    executor: Executor | None = None,
) -> BatchResult:
    """Run ``n_simulations`` on seeds ``seed_start ..`` (or explicit ``seeds``) and aggregate.

    ``progress(k)`` is called with the number of simulations finished since the last call.
    The result is identical for any ``workers`` and any ``executor``.
    """
    if seeds is None:
        if n_simulations < 1:
            raise ValueError("the number of simulations must be at least 1")
        if seed_start < 0:
            raise ValueError("seed_start must be >= 0")
        seeds = range(seed_start, seed_start + n_simulations)
    seed_list = [int(s) for s in seeds]
    if not seed_list:
        raise ValueError("no seeds to simulate")
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ValueError("workers must be at least 1")

    t0 = time.perf_counter()
    n = len(seed_list)
    # Chunks small enough for a live progress bar and load balance, large enough to amortise IPC.
    chunk = max(1, min(25, math.ceil(n / (workers * 4))))
    chunks = [seed_list[i : i + chunk] for i in range(0, n, chunk)]
    parts: list[tuple[np.ndarray, float] | None] = [None] * len(chunks)  # (rows, CPU-s) per chunk
    if executor is not None:
        for i, part in executor.map_chunks(chunks, spec, normalizer, market):
            parts[i] = part
            if progress:
                progress(len(chunks[i]))
    elif workers == 1 or len(chunks) == 1:
        for i, c in enumerate(chunks):
            parts[i] = run_chunk(c, spec, normalizer, market)
            if progress:
                progress(len(c))
    else:
        pool = _pool(workers)
        futures: dict[Future[tuple[np.ndarray, float]], int] = {
            pool.submit(run_chunk, c, spec, normalizer, market): i for i, c in enumerate(chunks)
        }
        try:
            for fut in as_completed(futures):
                i = futures[fut]
                parts[i] = fut.result()
                if progress:
                    progress(len(chunks[i]))
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
    done = [p for p in parts if p is not None]
    batch = assemble_batch(spec.name, seed_list, done, time.perf_counter() - t0)
    if isinstance(spec, EvmStrategySpec):  # which EVM ran it, so a fallback is never silent
        batch.meta.update(evm_engine=spec.engine, evm_engine_note=spec.engine_note)
    elif isinstance(spec, TwinSpec):
        batch.meta.update(evm_engine=f"native twin of {spec.family} (the EVM where it gives up)")
    return batch


def assemble_batch(
    strategy: str,
    seeds: Sequence[int],
    parts: Sequence[tuple[np.ndarray, float]],
    elapsed_s: float,
) -> BatchResult:
    """A BatchResult from ``run_chunk`` outputs given in seed order (any executor)."""
    table = np.vstack([rows for rows, _ in parts])
    columns: dict[str, np.ndarray] = {}
    for j, name in enumerate(_SUB_FIELDS):
        col = table[:, j]
        columns[name] = col.astype(np.int64) if name in _COUNT_FIELDS else col
    for j, name in enumerate(_NORM_FIELDS):
        columns[f"normalizer_{name}"] = table[:, len(_SUB_FIELDS) + j]
    return BatchResult(
        strategy=strategy,
        seeds=np.asarray(list(seeds), dtype=np.int64),
        columns=columns,
        elapsed_s=elapsed_s,
        cpu_s=sum(c for _, c in parts),
    )


__all__ = [
    "CHALLENGE",
    "SIMULATOR_VERSION",
    "AmmResult",
    "BatchResult",
    "Executor",
    "MarketParams",
    "SimConfig",
    "SimResult",
    "assemble_batch",
    "draw_config",
    "run_batch",
    "summarize",
    "run_chunk",
    "shutdown_pools",
    "simulate",
]
