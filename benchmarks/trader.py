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


def _time_calls(fn: Callable[[], object], calls: int, warmup: int = 50) -> np.ndarray:
    for _ in range(warmup):
        fn()
    out = np.empty(calls, dtype=np.float64)
    for i in range(calls):
        t = time.perf_counter_ns()
        fn()
        out[i] = (time.perf_counter_ns() - t) / 1e3
    return out


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
        chunk = max(1, calls // 10)
        for _ in range(0, calls, chunk):
            samples["MLX"].append(_time_calls(lambda f=f, h=h: policy.evaluate(f, h), chunk, warmup=5))
            progress.advance(task, chunk)
            samples["NumPy"].append(
                _time_calls(lambda f=f, h=h: numpy_forward(params, f, h), chunk, warmup=5)
            )
            progress.advance(task, chunk)
        for name, parts in samples.items():
            t = np.concatenate(parts)
            rows.append(Latency(name, batch, *np.percentile(t, [50, 99]), float(t.mean())))
    return rows


@dataclass
class UpdateTiming:
    label: str
    seconds: list[float]
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
        ("default (KL stop 1.5*0.02)", PPOConfig()),
        ("all 10 epochs (no KL stop)", PPOConfig(target_kl=None)),
    ):
        agent = PPOAgent(init_phase5(0), cfg, seed=0)
        rng = np.random.default_rng(1)
        secs, steps, samples = [], 0, 0
        for _ in range(updates):
            _fill_buffer(agent, rng)
            t = time.perf_counter()
            stats = agent.update()
            secs.append(time.perf_counter() - t)
            steps += stats.n_steps
            samples = stats.n_samples
            progress.advance(task)
        rows.append(UpdateTiming(label, secs, steps // updates, samples))
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

    table = Table(title=f"Decision latency (probs + value), {args.calls} calls each")
    for col in ("batch", "model", "p50 µs", "p99 µs", "mean µs", "p50 MLX/NumPy", "p99 MLX/NumPy"):
        table.add_column(col, justify="right")
    for batch in (1, 4):
        by = {r.name: r for r in latency if r.batch == batch}
        for name in ("MLX", "NumPy"):
            r = by[name]
            ratio50 = ratio99 = ""
            if name == "MLX":
                ratio50 = f"{r.p50_us / by['NumPy'].p50_us:.2f}x"
                ratio99 = f"{r.p99_us / by['NumPy'].p99_us:.2f}x"
            table.add_row(
                str(batch), name, f"{r.p50_us:.0f}", f"{r.p99_us:.0f}", f"{r.mean_us:.0f}", ratio50, ratio99
            )
    console.print(table)

    table = Table(title="PPO update, one full buffer (MLX, CPU)")
    for col in ("config", "samples", "minibatch steps", "median s", "ms / step"):
        table.add_column(col, justify="right")
    for u in updates:
        med = float(np.median(u.seconds))
        table.add_row(
            u.label, str(u.samples), str(u.steps), f"{med:.3f}", f"{1e3 * med / max(1, u.steps):.1f}"
        )
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
