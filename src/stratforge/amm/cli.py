"""`stratforge amm ...`: simulate strategies of the AMM fee-strategy challenge."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from stratforge.amm.engine import BatchResult, run_batch
from stratforge.amm.strategy import FixedFee, StrategySpec

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
console = Console()


@app.callback()
def _group() -> None:
    """Simulate, validate, test and compare AMM fee strategies."""


def strategy_from_arg(arg: str) -> StrategySpec:
    """A strategy named on the command line: ``fixed:50``, ``fixed:50/45`` (bid/ask bps) or a ``.sol`` file."""
    if arg.startswith("fixed:"):
        parts = arg.removeprefix("fixed:").split("/")
        try:
            fees = [float(p) for p in parts]
        except ValueError:
            raise typer.BadParameter(f"{arg!r}: expected fixed:BPS or fixed:BID/ASK") from None
        if len(fees) not in (1, 2):
            raise typer.BadParameter(f"{arg!r}: expected fixed:BPS or fixed:BID/ASK")
        try:
            return FixedFee(*fees)
        except ValueError as e:
            raise typer.BadParameter(str(e)) from None
    path = Path(arg)
    if not path.is_file():
        raise typer.BadParameter(f"strategy file not found: {arg}")
    from stratforge.amm.solidity import StrategyRejected, load_solidity_strategy

    try:
        return load_solidity_strategy(path)
    except StrategyRejected as e:
        console.print(f"[red]Strategy rejected:[/red] {path}")
        for problem in e.problems:
            console.print(f"  - {problem}")
        raise typer.Exit(1) from None


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def run_with_progress(
    spec: StrategySpec, n: int, seed_start: int, workers: int | None, label: str
) -> BatchResult:
    with progress_bar() as bar:
        task = bar.add_task(label, total=n)
        return run_batch(
            spec, n, seed_start=seed_start, workers=workers, progress=lambda k: bar.advance(task, k)
        )


def summary_table(result: BatchResult, title: str | None = None) -> Table:
    s = result.summary()
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows: list[tuple[str, str]] = [
        (
            "simulations",
            f"{s['simulations']} (seeds {s['seed_start']}..{s['seed_start'] + s['simulations'] - 1})",
        ),
        ("mean edge", f"{s['mean_edge']:.2f} ± {1.96 * s['std_error']:.2f} (95%)"),
        ("normalizer edge", f"{s['normalizer_mean_edge']:.2f}"),
        ("wins / losses / draws", f"{s['wins']} / {s['losses']} / {s['draws']}"),
        ("edge p05 / p50 / p95", f"{s['p05']:.2f} / {s['p50']:.2f} / {s['p95']:.2f}"),
        ("mean PnL", f"{s['mean_pnl']:.2f}"),
        ("retail / arb volume (Y)", f"{s['mean_retail_volume_y']:.0f} / {s['mean_arb_volume_y']:.0f}"),
        ("avg bid / ask fee", f"{s['avg_bid_fee_bps']:.2f} / {s['avg_ask_fee_bps']:.2f} bps"),
    ]
    if s["hook_calls"]:
        rows.append(("hook calls / failures", f"{s['hook_calls']} / {s['hook_failures']}"))
    rows.append(
        ("time", f"{s['elapsed_s']:.2f} s wall, {s['cpu_s'] / max(1, s['simulations']):.4f} CPU-s/sim")
    )
    for k, v in rows:
        table.add_row(k, v)
    return table


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON so that a crash never leaves a half-written file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@app.command()
def run(
    strategy: str | None = typer.Argument(
        None, help="A Strategy.sol file, or fixed:BPS / fixed:BID/ASK. Default: fixed fee from --fee-bps."
    ),
    fee_bps: float | None = typer.Option(None, "--fee-bps", help="Fixed fee in bps (0-1000) for both sides."),
    simulations: int = typer.Option(1000, "--simulations", "-n", help="Number of simulations."),
    seed_start: int = typer.Option(0, "--seed-start", help="First seed; simulations use consecutive seeds."),
    workers: int | None = typer.Option(
        None, "--workers", "-w", help="Worker processes (default: all cores)."
    ),
    json_out: Path | None = typer.Option(
        None, "--json", help="Write the summary and per-simulation results."
    ),
) -> None:
    """Run simulations of one strategy against the 30 bps normalizer and print its Edge."""
    if simulations < 1:
        raise typer.BadParameter("--simulations must be at least 1")
    if seed_start < 0:
        raise typer.BadParameter("--seed-start must be >= 0")
    if workers is not None and workers < 1:
        raise typer.BadParameter("--workers must be at least 1")
    if strategy is not None and fee_bps is not None:
        raise typer.BadParameter("give either a strategy or --fee-bps, not both")
    if strategy is None:
        fee = 50.0 if fee_bps is None else fee_bps
        if not 0 <= fee <= 1000:
            raise typer.BadParameter(f"--fee-bps must be between 0 and 1000, got {fee:g}")
        spec: StrategySpec = FixedFee(fee)
    else:
        spec = strategy_from_arg(strategy)

    result = run_with_progress(spec, simulations, seed_start, workers, f"Simulating {spec.name}")
    console.print(f"{spec.name} Edge: {result.mean_edge:.2f}")
    console.print(f"Normalizer Edge: {result.normalizer_mean_edge:.2f}")
    console.print(summary_table(result))
    if json_out is not None:
        write_json_atomic(json_out, {"summary": result.summary(), "simulations": result.per_simulation()})
        console.print(f"Wrote {json_out}")
