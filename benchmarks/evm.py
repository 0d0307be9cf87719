"""CPU cost of Solidity strategies run through the EVM, against in-run baselines.

Measures, in one run:
  * the native fixed-fee engine (no hooks): the floor a simulation costs;
  * a raw pyrevm hook call with ready calldata: the floor one EVM hook costs;
  * the Solidity StarterStrategy and DynamicStrategy through the engine (fast path), and the exact
    (fresh transaction per call) path on a sample of calls;
and prints CPU-seconds per simulation, hook calls per simulation, microseconds per hook and the
ratio to the public reference's 0.11 CPU-s per simulation (its Rust engine running both AMMs'
hooks in revm: 1000 StarterStrategy simulations = 109.8 CPU-s). Target ratio: <= 1.0.

    python benchmarks/evm.py [--simulations 20]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from rich.console import Console
from rich.table import Table

from stratforge.amm.engine import run_batch
from stratforge.amm.evm import (
    CALLER_ADDRESS,
    FAST_PATH_GAS,
    STRATEGY_ADDRESS,
    fresh_evm,
    pack_after_initialize,
    pack_after_swap,
)
from stratforge.amm.solidity import EXAMPLES_DIR, load_solidity_strategy
from stratforge.amm.strategy import FixedFee

REFERENCE_CPU_S_PER_SIM = 109.8 / 1000
WAD = 10**18


def _calldata(n: int) -> list[bytes]:
    """Plausible trades: small moves around the initial reserves, alternating sides."""
    return [
        pack_after_swap(
            i % 2 == 0, WAD + i, 100 * WAD + i, i // 3, 100 * WAD + i * 10**15, 10_000 * WAD - i * 10**17
        )
        for i in range(n)
    ]


def raw_call_us(spec, calls: list[bytes]) -> float:  # noqa: ANN001 - EvmStrategySpec
    """pyrevm message_call alone, calldata ready, one warm EVM."""
    instance = spec.create()
    evm = fresh_evm(instance._info, {})
    call = evm.message_call
    call(CALLER_ADDRESS, STRATEGY_ADDRESS, pack_after_initialize(100 * WAD, 10_000 * WAD), 0, FAST_PATH_GAS)
    t = time.process_time()
    for cd in calls:
        call(CALLER_ADDRESS, STRATEGY_ADDRESS, cd, 0, FAST_PATH_GAS)
    return (time.process_time() - t) / len(calls) * 1e6


def hook_us(spec, calls: list[bytes]) -> float:  # noqa: ANN001 - EvmStrategySpec
    """The strategy's own hook method (what the compiled core calls)."""
    instance = spec.create()
    instance.after_initialize(100 * WAD, 10_000 * WAD)
    hook = instance.after_swap_raw
    t = time.process_time()
    for cd in calls:
        hook(cd)
    return (time.process_time() - t) / len(calls) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=20, help="simulations per strategy (1 worker)")
    parser.add_argument("--calls", type=int, default=5000, help="calls for the per-hook measurements")
    args = parser.parse_args()
    console = Console(width=max(120, Console().width))
    n = args.simulations

    native = run_batch(FixedFee(50), n, workers=1)
    native_cpu = native.cpu_s / n
    calls = _calldata(args.calls)

    table = Table(title=f"EVM strategies: {n} simulations each, 1 worker (CPU time)", header_style="bold")
    for col in (
        "strategy",
        "CPU-s/sim",
        "hook calls/sim",
        "us/hook (engine)",
        "us/hook (method)",
        "ratio to ref 0.11",
    ):
        table.add_column(col, justify="right")
    table.add_row(
        "native fixed 50 bps (baseline)",
        f"{native_cpu:.4f}",
        "0",
        "-",
        "-",
        f"{native_cpu / REFERENCE_CPU_S_PER_SIM:.3f}",
    )

    raw = {}
    for file in ("StarterStrategy.sol", "DynamicStrategy.sol"):
        spec = load_solidity_strategy(EXAMPLES_DIR / file)
        result = run_batch(spec, n, workers=1)
        cpu = result.cpu_s / n
        hooks = float(result.columns["hook_calls"].mean())
        per_hook_engine = (cpu - native_cpu) / hooks * 1e6
        raw[file] = raw_call_us(spec, calls)
        table.add_row(
            f"{spec.name} (Solidity)",
            f"{cpu:.4f}",
            f"{hooks:.0f}",
            f"{per_hook_engine:.1f}",
            f"{hook_us(spec, calls):.1f}",
            f"{cpu / REFERENCE_CPU_S_PER_SIM:.3f}",
        )
        if file == "StarterStrategy.sol":
            starter_spec, starter_cpu, starter_hooks = spec, cpu, hooks
    console.print(table)

    exact = dataclasses.replace(starter_spec, always_exact=True)
    sample = calls[: max(200, args.calls // 10)]
    exact_us = hook_us(exact, sample)
    fast_us = hook_us(starter_spec, sample)
    console.print(
        f"raw pyrevm call (baseline, ready calldata): Starter {raw['StarterStrategy.sol']:.1f} us, "
        f"Dynamic {raw['DynamicStrategy.sol']:.1f} us"
    )
    console.print(
        f"Starter hook: fast path {fast_us:.1f} us, exact path {exact_us:.1f} us "
        f"(x{exact_us / fast_us:.1f}); engine overhead vs native: {starter_cpu / native_cpu:.1f}x"
    )
    console.print(
        f"Projected 1000 Starter simulations: {1000 * starter_cpu:.0f} CPU-s "
        f"= {1000 * starter_cpu / 2:.0f} s wall on 2 cores (reference: 109.8 CPU-s); "
        f"{starter_hooks:.0f} hooks/sim"
    )


if __name__ == "__main__":
    main()
