"""`stratforge amm ...`: simulate strategies of the AMM fee-strategy challenge."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from stratforge.amm.engine import BatchResult, run_batch
from stratforge.amm.strategy import FixedFee, StrategySpec
from stratforge.files import atomic_write_json

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
console = Console()


@app.callback()
def _group() -> None:
    """Simulate, validate, test and compare AMM fee strategies."""


def strategy_from_arg(arg: str) -> StrategySpec:
    """A strategy named on the command line: ``fixed:50``, ``fixed:50/45`` (bid/ask bps) or a .sol file."""
    from stratforge.amm.compare import resolve_spec
    from stratforge.amm.solidity import StrategyRejected

    if not arg.startswith("fixed:") and not Path(arg).is_file():
        raise typer.BadParameter(f"strategy file not found: {arg}")
    try:
        return resolve_spec(arg)
    except StrategyRejected as e:
        console.print(f"[red]Strategy rejected:[/red] {arg}")
        for problem in e.problems:
            console.print(f"  - {problem}")
        raise typer.Exit(1) from None
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


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


def _edge_with_ci(mean: float, low: float, high: float) -> str:
    """``mean ± half-width (95%)`` of a Student-t interval (stratforge.stats); the mean alone for n = 1."""
    return f"{mean:.2f}" if math.isnan(low) else f"{mean:.2f} ± {(high - low) / 2:.2f} (95%)"


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
        ("mean edge", _edge_with_ci(s["mean_edge"], s["edge_ci_low"], s["edge_ci_high"])),
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
        atomic_write_json(json_out, {"summary": result.summary(), "simulations": result.per_simulation()})
        console.print(f"Wrote {json_out}")


# ----------------------------------------------------------------------------------------------
# Solidity strategies: validate, staged test, paired comparison, compiler setup
# ----------------------------------------------------------------------------------------------


@app.command()
def validate(
    file: Path = typer.Argument(..., help="A Strategy.sol file."),
) -> None:
    """Check a Solidity strategy against the security rules, compile it, and check the bytecode."""
    from stratforge.amm.solidity import StrategyRejected, check_solidity

    if not file.is_file():
        raise typer.BadParameter(f"strategy file not found: {file}")
    try:
        loaded = check_solidity(file)
    except StrategyRejected as e:
        console.print(f"[red]Rejected[/red] {file}: {len(e.problems)} problem(s)")
        for problem in e.problems:
            console.print(f"  - {problem}", highlight=False)
        raise typer.Exit(1) from None
    for warning in loaded.warnings:
        console.print(f"[yellow]warning[/yellow] {warning}", highlight=False)
    console.print(
        f"[green]OK[/green] {file}: '{loaded.spec.name}', {len(loaded.spec.runtime_code)} bytes of code, "
        f"sha256 {loaded.source_sha256[:12]}"
    )


def _parse_floats(text: str | None, what: str) -> list[float | None] | None:
    if text is None:
        return None
    out: list[float | None] = []
    for part in text.split(","):
        part = part.strip()
        try:
            out.append(None if part in ("", "-", "none") else float(part))
        except ValueError:
            raise typer.BadParameter(f"{what}: {part!r} is not a number") from None
    return out


@app.command("test")
def test_strategy(
    file: Path = typer.Argument(..., help="A Strategy.sol file."),
    stages: str = typer.Option("10,100,1000", "--stages", help="Simulation counts of the stages."),
    thresholds: str | None = typer.Option(
        None,
        "--thresholds",
        help="Minimum mean edge to continue after each stage, comma-separated ('-' = none); "
        "a single value applies to every stage.",
    ),
    workers: int | None = typer.Option(
        None, "--workers", "-w", help="Worker processes (default: all cores)."
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="JSON result path."),
    max_failures: float | None = typer.Option(
        None,
        "--max-hook-failure-rate",
        help="Also stop when more than this fraction (0-1) of hook calls fail.",
    ),
) -> None:
    """Staged test: validate -> compile -> 10 -> 100 -> 1000 simulations, stopping below a threshold."""
    from stratforge.amm.pipeline import run_pipeline

    if not file.is_file():
        raise typer.BadParameter(f"strategy file not found: {file}")
    try:
        stage_list = [int(s) for s in stages.split(",") if s.strip()]
    except ValueError:
        raise typer.BadParameter(f"--stages: expected comma-separated integers, got {stages!r}") from None
    if not stage_list or min(stage_list) < 1:
        raise typer.BadParameter("--stages must be positive integers")
    limits = _parse_floats(thresholds, "--thresholds")
    if limits is not None and len(limits) == 1:
        limits = limits * len(stage_list)
    if limits is not None and len(limits) > len(stage_list):
        raise typer.BadParameter(f"--thresholds has {len(limits)} values for {len(stage_list)} stages")
    if workers is not None and workers < 1:
        raise typer.BadParameter("--workers must be at least 1")
    if max_failures is not None and not 0 <= max_failures <= 1:
        raise typer.BadParameter("--max-hook-failure-rate must be between 0 and 1")

    with progress_bar() as bar:
        tasks: dict[str, Any] = {}

        def on_progress(label: str, k: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(f"Stage {label}", total=total, completed=_done(total))
            bar.advance(tasks[label], k)

        def _done(total: int) -> int:
            # Each stage extends the previous one: its first simulations are already done.
            earlier = [n for n in stage_list if n < total]
            return max(earlier) if earlier else 0

        result = run_pipeline(
            file,
            stages=stage_list,
            thresholds=limits,
            workers=workers,
            output=out,
            progress=on_progress,
            max_hook_failure_rate=max_failures,
        )

    if result.status == "rejected":
        console.print(f"[red]Rejected[/red] {file}: {len(result.problems)} problem(s)")
        for problem in result.problems:
            console.print(f"  - {problem}", highlight=False)
        console.print(f"Wrote {result.output_path}")
        raise typer.Exit(1)
    table = Table(title=f"{result.strategy}: staged test", header_style="bold")
    table.add_column("metric")
    for st in result.stages:
        table.add_column(f"{st.simulations} sims", justify="right")
    rows: dict[str, list[str]] = {}
    for st in result.stages:
        gate = "-" if st.threshold is None else f"{'pass' if st.passed else 'STOP'} >= {st.threshold:g}"
        for key, value in (
            ("edge (95%)", _edge_with_ci(st.mean_edge, st.edge_ci_low, st.edge_ci_high).removesuffix(" (95%)")),
            ("normalizer edge", f"{st.normalizer_mean_edge:.2f}"),
            ("wins / losses / draws", f"{st.wins} / {st.losses} / {st.draws}"),
            ("edge p05 / p50 / p95", f"{st.p05:.1f} / {st.p50:.1f} / {st.p95:.1f}"),
            ("retail / arb volume (Y)", f"{st.mean_retail_volume_y:.0f} / {st.mean_arb_volume_y:.0f}"),
            ("avg bid / ask fee (bps)", f"{st.avg_bid_fee_bps:.2f} / {st.avg_ask_fee_bps:.2f}"),
            ("hook failures / calls", f"{st.hook_failures} / {st.hook_calls}"),
            ("CPU-s per simulation", f"{st.cpu_s / st.simulations:.3f}"),
            ("gate", gate),
        ):
            rows.setdefault(key, []).append(value)
    for key, values in rows.items():
        table.add_row(key, *values)
    if result.stages:
        console.print(table)
    for problem in result.problems:
        console.print(f"[red]{problem}[/red]", highlight=False)
    colour = {"passed": "green", "stopped": "yellow"}.get(result.status, "red")
    console.print(
        f"[{colour}]{result.status}[/{colour}] {result.strategy} edge {result.edge:.2f} "
        f"in {result.runtime_s:.1f} s; wrote {result.output_path}"
        if result.edge is not None
        else f"[{colour}]{result.status}[/{colour}]; wrote {result.output_path}"
    )
    if result.status == "failed":
        raise typer.Exit(1)


@app.command("compare")
def compare_cmd(
    strategy_a: str = typer.Argument(..., help="A: a .sol file or fixed:BPS / fixed:BID/ASK."),
    strategy_b: str = typer.Argument(..., help="B: a .sol file or fixed:BPS / fixed:BID/ASK."),
    simulations: int = typer.Option(
        1000, "--simulations", "-n", help="Number of simulations (same seeds for both)."
    ),
    seed_start: int = typer.Option(0, "--seed-start", help="First seed."),
    workers: int | None = typer.Option(
        None, "--workers", "-w", help="Worker processes (default: all cores)."
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Write the comparison as JSON."),
) -> None:
    """Paired comparison on the same seeds: mean edge difference, 95% CI, p-value, the better one."""
    from stratforge.amm.compare import compare

    if simulations < 2:
        raise typer.BadParameter("--simulations must be at least 2 for a paired test")
    if seed_start < 0:
        raise typer.BadParameter("--seed-start must be >= 0")
    if workers is not None and workers < 1:
        raise typer.BadParameter("--workers must be at least 1")
    spec_a, spec_b = strategy_from_arg(strategy_a), strategy_from_arg(strategy_b)
    with progress_bar() as bar:
        task = bar.add_task(f"{spec_a.name} vs {spec_b.name}", total=2 * simulations)
        res = compare(
            spec_a, spec_b, simulations, seed_start, workers, progress=lambda k: bar.advance(task, k)
        )
    table = Table(
        title=f"Paired comparison on seeds {seed_start}..{seed_start + simulations - 1}", header_style="bold"
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row(f"A: {res.name_a}", f"{res.mean_a:.2f}")
    table.add_row(f"B: {res.name_b}", f"{res.mean_b:.2f}")
    table.add_row("A - B", f"{res.mean_diff:+.3f}")
    table.add_row(f"{1 - res.alpha:.0%} CI", f"[{res.ci[0]:+.3f}, {res.ci[1]:+.3f}]")
    table.add_row("t / p-value", f"{res.t_stat:.2f} / {res.p_value:.3g}")
    table.add_row("seeds A better / B better / tie", f"{res.a_wins} / {res.b_wins} / {res.ties}")
    console.print(table)
    verdict = {"A": f"A ({res.name_a}) is better", "B": f"B ({res.name_b}) is better"}.get(
        res.better, "no significant difference"
    )
    console.print(f"Verdict: {verdict} (alpha {res.alpha:g})")
    if json_out is not None:
        atomic_write_json(json_out, res.to_dict())
        console.print(f"Wrote {json_out}")


@app.command("setup-solc")
def setup_solc_cmd(
    force: bool = typer.Option(False, "--force", help="Reinstall even when a copy is found."),
) -> None:
    """Install the pinned Solidity compiler (npm solc) into the user cache if it is missing."""
    from stratforge.amm.compiler import SOLC_VERSION, SolcNotFound, setup_solc

    try:
        path = setup_solc(force=force)
    except SolcNotFound as e:
        console.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2) from None
    console.print(f"solcjs {SOLC_VERSION} ready at {path}")
