"""The `stratforge` command line: one sub-command group per subsystem."""

from __future__ import annotations

import typer

from stratforge.amm.cli import app as amm_app
from stratforge.explore.cli import app as explore_app
from stratforge.trader.cli import app as trader_app

app = typer.Typer(
    name="stratforge",
    help="Discover, test and run trading strategies.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(amm_app, name="amm", help="AMM fee-strategy lab: simulate, validate, test, compare.")
app.add_typer(explore_app, name="explore", help="Autonomous search for better AMM strategies.")
app.add_typer(trader_app, name="trader", help="Prediction-market RL trader: train, evaluate, run.")


def main() -> None:  # pragma: no cover - console entry point
    app()
