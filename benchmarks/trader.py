"""Speed of the RL trader's model and PPO update.

Measured in one run on the same inputs:

* decision latency (action probabilities + value for one decision) of the MLX model vs the NumPy
  reference forward pass (``stratforge.trader.model.numpy_forward``, the in-run baseline), batch 1
  and batch 4, p50/p99 over many calls, with the ratio MLX / NumPy;
* PPO update time for one full buffer (256 transitions, the seed's hyperparameters), with the default
  KL early stop and with all 10 epochs forced (the worst case);
* environment steps per second: ``bench_environment`` is the hook for the trading environment
  (markets engineer), reported as n/a until it is filled in.

Uses the published Phase 5 weights when ``../shared/data/cmsf-phase5`` is beside the repo, else a
freshly initialised network of the same shape (latency does not depend on the values).

    .venv/bin/python benchmarks/trader.py [--calls 2000] [--updates 3] [--weights DIR]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from stratforge.trader.model import Policy, init_phase5, load_policy, numpy_forward
from stratforge.trader.ppo import PPOAgent, PPOConfig

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cmsf-phase5"


@dataclass
class Latency:
    name: str
    batch: int
    p50_us: float
    p99_us: float
    mean_us: float
    cpu_us: float  # process CPU time per call: less sensitive to other load on the machine


def _time_calls(fn: Callable[[], object], calls: int, warmup: int = 50) -> tuple[np.ndarray, float]:
    """Wall time of each call in µs, and the total process CPU seconds of the timed calls."""
    for _ in range(warmup):
        fn()
    out = np.empty(calls, dtype=np.float64)
    cpu = time.process_time()
    for i in range(calls):
        t = time.perf_counter_ns()
        fn()
        out[i] = (time.perf_counter_ns() - t) / 1e3
    return out, time.process_time() - cpu


def bench_decision_latency(policy: Policy, calls: int, progress: Progress) -> list[Latency]:
    """p50/p99 per decision (probs + value) for MLX and NumPy, interleaved in chunks so that machine
    load affects both the same way."""
    params = policy.numpy_params()
    rng = np.random.default_rng(0)
    rows = []
    task = progress.add_task("decision latency", total=4 * calls)
    for batch in (1, 4):
        f = rng.uniform(-1, 1, (batch, 18)).astype(np.float32)
        h = rng.uniform(-1, 1, (batch, 90)).astype(np.float32)
        np.testing.assert_allclose(policy.evaluate(f, h)[0], numpy_forward(params, f, h)[0], atol=1e-5)
        samples: dict[str, list[np.ndarray]] = {"MLX": [], "NumPy": []}
        cpu = {"MLX": 0.0, "NumPy": 0.0}
        chunk = max(1, calls // 10)
        for _ in range(0, calls, chunk):
            for name, fn in (
                ("MLX", lambda f=f, h=h: policy.evaluate(f, h)),
                ("NumPy", lambda f=f, h=h: numpy_forward(params, f, h)),
            ):
                wall, cpu_s = _time_calls(fn, chunk, warmup=5)
                samples[name].append(wall)
                cpu[name] += cpu_s
                progress.advance(task, chunk)
        for name, parts in samples.items():
            t = np.concatenate(parts)
            p50, p99 = np.percentile(t, [50, 99])
            rows.append(Latency(name, batch, p50, p99, float(t.mean()), 1e6 * cpu[name] / len(t)))
    return rows


@dataclass
class UpdateTiming:
    label: str
    seconds: list[float]
    cpu_seconds: list[float]
    steps: int
    samples: int


def _fill_buffer(agent: PPOAgent, rng: np.random.Generator, markets: int = 8) -> None:
    """Synthetic ticks for ``markets`` interleaved markets with sparse rewards until the buffer is full."""
    tick = 0
    while not agent.ready():
        f = rng.uniform(-1, 1, (markets, 18)).astype(np.float32)
        h = rng.uniform(-1, 1, (markets, 90)).astype(np.float32)
        a, lp, v = agent.act(f, h)
        r = np.where(rng.random(markets) < 0.05, rng.normal(0, 20, markets), 0.0)
        agent.record(range(markets), f, h, a, lp, v, r, [tick % 60 == 59] * markets)
        tick += 1


def bench_ppo_update(updates: int, progress: Progress) -> list[UpdateTiming]:
    rows = []
    task = progress.add_task("PPO updates", total=2 * updates)
    for label, cfg in (
        ("default, KL stop", PPOConfig()),
        ("10 epochs, no KL stop", PPOConfig(target_kl=None)),
    ):
        agent = PPOAgent(init_phase5(0), cfg, seed=0)
        rng = np.random.default_rng(1)
        secs, cpu, steps, samples = [], [], 0, 0
        for _ in range(updates):
            _fill_buffer(agent, rng)
            t, c = time.perf_counter(), time.process_time()
            stats = agent.update()
            secs.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
            steps += stats.n_steps
            samples = stats.n_samples
            progress.advance(task)
        rows.append(UpdateTiming(label, secs, cpu, steps // updates, samples))
    return rows


def bench_environment(progress: Progress) -> list[tuple[str, float]] | None:
    """Hook for environment steps/s (markets engineer): return ``[(label, steps_per_second), ...]``.

    Not measured yet: returns None, shown as n/a.
    """
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="timed decisions per model and batch size")
    parser.add_argument("--updates", type=int, default=3, help="timed PPO updates per configuration")
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS, help="model dir or safetensors file")
    args = parser.parse_args(argv)
    console = Console()

    try:
        policy, source = load_policy(args.weights), str(args.weights.resolve())
    except FileNotFoundError:
        policy, source = init_phase5(0), "fresh Phase 5 init (published weights not found)"

    with Progress(console=console, transient=True) as progress:
        latency = bench_decision_latency(policy, args.calls, progress)
        updates = bench_ppo_update(args.updates, progress)
        env = bench_environment(progress)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    console.print(f"model: {policy.kind} from {source}; {os.cpu_count()} CPUs, load average {load:.1f}")

    table = Table(title=f"Decision latency (probs + value), {args.calls} calls each; ratio = MLX / NumPy")
    cols = (
        "batch",
        "model",
        "p50 µs",
        "p99 µs",
        "mean µs",
        "CPU µs",
        "p50 ratio",
        "p99 ratio",
        "CPU ratio",
    )
    for col in cols:
        table.add_column(col, justify="right")
    for batch in (1, 4):
        by = {r.name: r for r in latency if r.batch == batch}
        for name in ("MLX", "NumPy"):
            r, base = by[name], by["NumPy"]
            ratios = ["", "", ""]
            if name == "MLX":
                ratios = [
                    f"{r.p50_us / base.p50_us:.2f}x",
                    f"{r.p99_us / base.p99_us:.2f}x",
                    f"{r.cpu_us / base.cpu_us:.2f}x",
                ]
            cells = [f"{x:.0f}" for x in (r.p50_us, r.p99_us, r.mean_us, r.cpu_us)]
            table.add_row(str(batch), name, *cells, *ratios)
    console.print(table)

    table = Table(title="PPO update, one full buffer (MLX, CPU)")
    for col in ("config", "samples", "steps", "median s", "CPU s", "ms / step"):
        table.add_column(col, justify="right")
    for u in updates:
        med = float(np.median(u.seconds))
        per_step = f"{1e3 * med / max(1, u.steps):.1f}"
        cpu = f"{np.median(u.cpu_seconds):.3f}"
        table.add_row(u.label, str(u.samples), str(u.steps), f"{med:.3f}", cpu, per_step)
    console.print(table)

    if env:
        table = Table(title="Environment")
        table.add_column("what")
        table.add_column("steps/s", justify="right")
        for label, sps in env:
            table.add_row(label, f"{sps:,.0f}")
        console.print(table)
    else:
        console.print("environment steps/s: n/a (bench_environment not filled in yet)")


if __name__ == "__main__":
    main()
