"""`stratforge explore ...`: run, watch and analyse the autonomous strategy search."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from stratforge.explore.llm.cli import config_from_cli, llm_app
from stratforge.explore.llm.types import LLMConfigError
from stratforge.explore.monitor import open_readonly
from stratforge.explore.store import DEFAULT_RUN_DIR, NoRunError, RunExistsError

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(llm_app, name="llm")
console = Console()

STATE_DIR = typer.Option(
    DEFAULT_RUN_DIR, "--state-dir", help="Run directory (SQLite store, sources, report)."
)


@app.callback()
def _group() -> None:
    """Autonomous search for better AMM strategies (offline templates or an LLM)."""


def _parse_stages(text: str) -> tuple[int, ...]:
    try:
        stages = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise typer.BadParameter(
            f"--stages: expected comma-separated counts like 10,100,1000, got {text!r}"
        ) from None
    return stages


@app.command()
def run(
    state_dir: Path = STATE_DIR,
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --state-dir."),
    max_runtime: float = typer.Option(
        36000, "--max-runtime", help="Seconds before the loop exits (default 10 h)."
    ),
    target_edge: float = typer.Option(
        527.0, "--target-edge", help="Exit once the champion reaches this edge."
    ),
    max_iterations: int | None = typer.Option(
        None, "--max-iterations", help="Exit after this many iterations."
    ),
    budget_usd: float | None = typer.Option(None, "--budget-usd", help="Exit once LLM spend reaches this."),
    stages: str = typer.Option("10,100,1000", "--stages", help="Simulations per test stage."),
    final_look: int = typer.Option(
        100,
        "--final-look-sims",
        help="The last stage checks the champion gate every this many simulations (0: only at its end).",
    ),
    confidence: float = typer.Option(0.95, "--confidence", help="Confidence required to promote a champion."),
    rescore: int = typer.Option(
        1000, "--rescore-sims", help="Fresh simulations to confirm a would-be champion."
    ),
    holdout: int = typer.Option(
        2000, "--holdout-sims", help="Holdout simulations for the final champion and the reference."
    ),
    holdout_every: bool = typer.Option(
        False,
        "--holdout-every-champion",
        help="Score every champion on the holdout seeds at its promotion (default: only the final one).",
    ),
    generation: int = typer.Option(
        4, "--generation-size", help="Candidates per generation of --proposer templates (raced on common seeds)."
    ),
    proposer: str = typer.Option(
        "cmaes",
        "--proposer",
        help="Offline proposer (no LLM): cmaes (CMA-ES on the frontier family) or templates (the template library).",
    ),
    hypotheses_file: Path | None = typer.Option(
        None, "--hypotheses", help="JSON file of extra hypotheses (same id replaces a shipped one)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the proposer."),
    workers: int | None = typer.Option(
        None, "--workers", "-w", help="Worker processes (default: all cores)."
    ),
    executor: str = typer.Option(
        "local", "--executor", help="local (process pool) or ray (RAY_ADDRESS or local)."
    ),
    backend: str | None = typer.Option(
        None,
        "--backend",
        help="LLM backend: codex, claude, anthropic, openai, replay. Default: offline templates.",
    ),
    model: str | None = typer.Option(None, "--model", help="LLM model name."),
    base_url: str | None = typer.Option(
        None, "--base-url", help="LLM API base URL (OpenAI-compatible: Ollama, vLLM, OpenRouter)."
    ),
    llm_config: Path | None = typer.Option(None, "--llm-config", help="TOML file with an [llm] section."),
    timeout: float | None = typer.Option(
        None, "--timeout", help="Hard limit per LLM call in seconds (default 180; a timeout is not retried)."
    ),
) -> None:
    """Search for better strategies until an exit condition; prints the champion and writes the report."""
    from stratforge.explore.hypotheses import load_hypotheses
    from stratforge.explore.loop import ExploreConfig, Explorer

    llm = None
    if backend or llm_config:
        given = {"backend": backend, "model": model, "base_url": base_url, "timeout_s": timeout}
        options = {k: v for k, v in given.items() if v}
        llm = config_from_cli(llm_config, **options).to_dict()
    elif timeout is not None:
        raise typer.BadParameter("--timeout applies to LLM calls: give --backend or --llm-config too")
    config = ExploreConfig(
        state_dir=state_dir,
        max_runtime_s=max_runtime,
        target_edge=target_edge,
        max_iterations=max_iterations,
        budget_usd=budget_usd,
        stages=_parse_stages(stages),
        final_look_sims=final_look,
        confidence=confidence,
        rescore_sims=rescore,
        holdout_sims=holdout,
        holdout_every_champion=holdout_every,
        generation_size=generation,
        proposer=proposer,
        hypotheses_file=hypotheses_file,
        seed=seed,
        workers=workers,
        executor=executor,
        llm=llm,
    )
    try:
        config.validate()
        if hypotheses_file is not None:
            load_hypotheses([hypotheses_file])
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    start = time.time()

    def on_event(kind: str, message: str) -> None:
        style = {"champion": "bold green", "alert": "yellow", "exit": "bold", "signal": "yellow"}.get(
            kind, ""
        )
        console.print(
            f"[dim]{time.time() - start:7.1f}s[/dim] [{style}]{kind}[/{style}] {message}"
            if style
            else f"[dim]{time.time() - start:7.1f}s[/dim] {kind} {message}"
        )

    if llm is not None:
        _check_llm_budget(llm, budget_usd)
    try:
        explorer = Explorer(config, resume=resume, on_event=on_event)
    except LLMConfigError as e:
        raise typer.BadParameter(str(e)) from None
    except RunExistsError as e:
        raise typer.BadParameter(f"{e} (use --resume)") from None
    except NoRunError as e:
        raise typer.BadParameter(str(e)) from None
    reason = explorer.run()
    champ = explorer.store.champion()
    console.print(f"[bold]Exit:[/bold] {reason}")
    if champ is not None:
        holdout = "" if champ.holdout_edge is None else f", holdout {champ.holdout_edge:.2f}"
        console.print(f"[bold green]Champion[/bold green] #{champ.iteration}: edge {champ.edge:.2f}{holdout}")
        console.print(f"Source: {state_dir / 'champion.sol'} (submission file: stratforge explore export)")
    console.print(f"Report: {state_dir / 'REPORT.md'}")


def _check_llm_budget(llm: dict[str, object], budget_usd: float | None) -> None:
    """Refuse, before a run directory is created, a backend without credentials and a budget that
    the run's costs could never reach."""
    from stratforge.explore.llm import LLMConfig, make_backend
    from stratforge.explore.llm_proposer import budget_cost_problem

    try:
        backend = make_backend(LLMConfig.from_dict(dict(llm)))
        backend.check_setup()  # e.g. codex without CODEX_API_KEY or a login: say so before starting
    except LLMConfigError as e:
        raise typer.BadParameter(str(e)) from None
    problem = budget_cost_problem(backend, budget_usd)
    backend.close()
    if problem:
        raise typer.BadParameter(problem)


@app.command()
def stop(state_dir: Path = STATE_DIR) -> None:
    """Ask a running exploration to finish its current iteration and exit."""
    from stratforge.explore.control import request_stop

    if request_stop(state_dir):
        console.print("Stop requested: the explorer exits after its current iteration.")
    else:
        console.print("Stop file written; no running explorer was found for this state directory.")


def _open(state_dir: Path):  # type: ignore[no-untyped-def]
    try:
        return open_readonly(state_dir)
    except NoRunError:
        raise typer.BadParameter(f"no exploration run in {state_dir}") from None


@app.command()
def status(state_dir: Path = STATE_DIR) -> None:
    """Iteration, best edge, time, rate, success rate and failure reasons."""
    from stratforge.explore.monitor import status_tables

    store = _open(state_dir)
    for table in status_tables(store):
        console.print(table)


@app.command()
def hypotheses(state_dir: Path = STATE_DIR) -> None:
    """Coverage and best edge per hypothesis."""
    from stratforge.explore.monitor import hypotheses_table

    console.print(hypotheses_table(_open(state_dir)))


@app.command("robustness-check")
def robustness_check(
    strategy: str = typer.Argument(..., help="A Strategy.sol file (or fixed:BPS)."),
    batches: int = typer.Option(3, "--batches", help="Disjoint seed batches."),
    simulations: int = typer.Option(1000, "--simulations", "-n", help="Simulations per batch."),
    seed_start: int = typer.Option(0, "--seed-start", help="First seed of the first batch."),
    workers: int | None = typer.Option(None, "--workers", "-w"),
) -> None:
    """Score a strategy on disjoint seed batches: mean per batch and spread."""
    from stratforge.amm.cli import run_with_progress, strategy_from_arg
    from stratforge.stats import mean_ci

    if batches < 1 or simulations < 1:
        raise typer.BadParameter("--batches and --simulations must be at least 1")
    spec = strategy_from_arg(strategy)
    table = Table(title=f"Robustness of {spec.name}")
    for col in ("batch", "seeds", "edge", "± 95%", "normalizer"):
        table.add_column(col, justify="right")
    means = []
    for b in range(batches):
        start = seed_start + b * simulations
        r = run_with_progress(spec, simulations, start, workers, f"batch {b + 1}/{batches}")
        means.append(r.mean_edge)
        ci = mean_ci(r.columns["edge"]) if simulations > 1 else None
        table.add_row(
            str(b + 1),
            f"{start}..{start + simulations - 1}",
            f"{r.mean_edge:.2f}",
            f"{ci.half_width:.2f}" if ci else "-",
            f"{r.normalizer_mean_edge:.2f}",
        )
    console.print(table)
    spread = max(means) - min(means)
    console.print(
        f"mean {np.mean(means):.2f}, spread (max - min) {spread:.2f}, std {np.std(means, ddof=1) if batches > 1 else 0:.2f}"
    )


@app.command()
def monitor(
    state_dir: Path = STATE_DIR,
    refresh: float = typer.Option(5.0, "--refresh", help="Seconds between refreshes."),
    once: bool = typer.Option(False, "--once", help="Render one frame and exit."),
) -> None:
    """Live dashboard: iteration, best edge, time left, activity, last results, templates, alerts."""
    from stratforge.explore.monitor import run_monitor

    run_monitor(_open(state_dir), refresh=refresh, once=once, console=console)


@app.command()
def report(state_dir: Path = STATE_DIR) -> None:
    """Write the Markdown report with plots for a run (also written when a run exits)."""
    from stratforge.explore.report import write_report

    path = write_report(_open(state_dir))
    console.print(f"Report: {path}")


@app.command()
def export(
    state_dir: Path = STATE_DIR,
    out: Path = typer.Option(Path("Strategy.sol"), "--out", "-o", help="Where to write the submission."),
    name: str | None = typer.Option(None, "--name", help="What getName returns (default: the champion's number)."),
) -> None:
    """Write the champion as a submission-ready Strategy.sol (validated, named, scores in its header)."""
    from stratforge.amm.solidity import StrategyRejected
    from stratforge.explore.export import ExportError, export_champion

    try:
        done = export_champion(_open(state_dir), out, name)
    except ExportError as e:
        raise typer.BadParameter(str(e)) from None
    except StrategyRejected as e:
        problems = "; ".join(str(p) for p in e.problems)
        raise typer.BadParameter(f"the exported strategy fails the challenge's rules: {problems}") from None
    holdout = "" if done.holdout_edge is None else f", holdout {done.holdout_edge:.2f}"
    console.print(f"Wrote {done.path}: {done.name!r}, edge {done.edge:.2f}{holdout}")
