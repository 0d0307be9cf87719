"""CPU cost of Solidity strategies per simulation: the core's EVM and pyrevm, against native fees.

Measures, in one run and one worker:
  * the native fixed-fee engine (no hooks): the baseline a simulation costs;
  * the Solidity StarterStrategy, DynamicStrategy, a complex strategy of the leaderboard's kind
    (tests/amm/solidity/ComplexStrategy.sol: 14 slots read and written, ~85-97k gas per afterSwap)
    and the explorer's ``frontier`` family at its defaults (parameters patched into the compiled
    template as PUSH32 constants, the way the explorer runs every candidate)
    through the core's EVM (the default engine) and through pyrevm (the oracle engine, on fewer
    simulations: it is slow), on the same first seeds;
and prints CPU-seconds per simulation, hook calls per simulation, microseconds per hook (the
simulation's CPU time above the baseline, per hook call), the EVM's own time per call (a loop of
calls with ready calldata) and the ratio to the baseline. Targets: Starter <= 5x, complex <= 35x.

    python benchmarks/evm.py [--simulations 20] [--pyrevm-simulations 4]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from stratforge.amm.engine import run_batch
from stratforge.amm.evm import EvmStrategySpec, pack_after_swap
from stratforge.amm.solidity import EXAMPLES_DIR, load_solidity_strategy
from stratforge.amm.strategy import FixedFee
from stratforge.explore.templates.precompiled import PrecompiledTemplate
from stratforge.explore.templates.templates import load_library

WAD = 10**18
COMPLEX = Path(__file__).resolve().parents[1] / "tests" / "amm" / "solidity" / "ComplexStrategy.sol"
TARGETS = {"StarterStrategy": 5.0, "ComplexFixture": 35.0}


def _calldata(n: int) -> list[bytes]:
    """Plausible trades: small moves around the initial reserves, alternating sides, 2 per step."""
    return [
        pack_after_swap(
            i % 2 == 0,
            WAD + i,
            100 * WAD + i,
            i // 2,
            100 * WAD + (i % 97) * 10**15,
            10_000 * WAD - (i % 89) * 10**17,
        )
        for i in range(n)
    ]


def evm_call_us(spec: EvmStrategySpec, calls: list[bytes]) -> float:
    """The core's EVM alone: one machine, ready calldata, called from a Python loop (~0.1 us of it)."""
    machine = spec.create()
    machine.after_initialize(100 * WAD, 10_000 * WAD)
    call = machine.hook
    t = time.process_time()
    for cd in calls:
        call(cd)
    return (time.process_time() - t) / len(calls) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=20, help="simulations per strategy, core's EVM")
    parser.add_argument("--pyrevm-simulations", type=int, default=4, help="simulations per strategy, pyrevm")
    parser.add_argument("--calls", type=int, default=5000, help="calls for the EVM-alone measurement")
    args = parser.parse_args()
    console = Console(width=max(130, Console().width))
    n, n_py = args.simulations, args.pyrevm_simulations

    baseline = run_batch(FixedFee(50), n, workers=1)
    base_cpu = baseline.cpu_s / n
    calls = _calldata(args.calls)
    specs = [
        load_solidity_strategy(EXAMPLES_DIR / "StarterStrategy.sol"),
        load_solidity_strategy(EXAMPLES_DIR / "DynamicStrategy.sol"),
        load_solidity_strategy(COMPLEX),
    ]
    frontier = PrecompiledTemplate.build(load_library()["frontier"])
    specs.append(frontier.spec(name="frontier (explorer family)"))
    twin, _ = frontier.render(None, "frontier (explorer family)")

    table = Table(title=f"Solidity strategies, 1 worker, CPU time ({n} sims core EVM, {n_py} pyrevm)")
    for col in (
        "strategy",
        "engine",
        "CPU-s/sim",
        "hooks/sim",
        "us/hook in sim",
        "us/call EVM alone",
        "x native",
    ):
        table.add_column(col, justify="right")
    table.add_row("native fixed 50 bps (baseline)", "-", f"{base_cpu:.4f}", "0", "-", "-", "1.0")
    verdicts = []
    edges: dict[str, np.ndarray] = {}
    edges_cpu: dict[str, float] = {}
    for spec in specs:
        for engine, sims in (("native", n), ("pyrevm", n_py)):
            if sims < 1:
                continue
            s = spec.with_engine(engine)
            result = run_batch(s, sims, workers=1)
            cpu = result.cpu_s / sims
            if engine == "native":
                edges[spec.name], edges_cpu[spec.name] = result.edge, cpu
            hooks = float(result.columns["hook_calls"].mean())
            alone = f"{evm_call_us(s, calls):.2f}" if engine == "native" else "-"
            ratio = cpu / base_cpu
            table.add_row(
                spec.name,
                engine,
                f"{cpu:.4f}",
                f"{hooks:.0f}",
                f"{(cpu - base_cpu) / hooks * 1e6:.2f}",
                alone,
                f"{ratio:.1f}",
            )
            if engine == "native" and spec.name in TARGETS:
                ok = "meets" if ratio <= TARGETS[spec.name] else "MISSES"
                verdicts.append(
                    f"{spec.name}: {ratio:.1f}x native, {ok} the target <= {TARGETS[spec.name]:g}x"
                )
    # the explorer runs the family through its native twin (the EVM only where the twin gives up)
    result = run_batch(twin, n, workers=1)
    cpu = result.cpu_s / n
    hooks = float(result.columns["hook_calls"].mean())
    table.add_row(
        twin.name,
        "native twin",
        f"{cpu:.4f}",
        f"{hooks:.0f}",
        f"{(cpu - base_cpu) / hooks * 1e6:.2f}",
        "-",
        f"{cpu / base_cpu:.1f}",
    )
    same = np.array_equal(result.edge, edges[twin.name])
    verdicts.append(
        f"frontier: the twin is {edges_cpu[twin.name] / cpu:.1f}x faster than the core's EVM, per-seed edges "
        + ("bit-identical" if same else "DIFFERENT")
    )
    console.print(table)
    for v in verdicts:
        console.print(v)


if __name__ == "__main__":
    main()
