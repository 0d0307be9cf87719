"""The `stratforge` command line: one sub-command group per subsystem."""

from __future__ import annotations

import sys

import typer

try:  # recent Typer vendors its own copy of click
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover - older Typer uses click itself
    from click.exceptions import ClickException, UsageError

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


def main(argv: list[str] | None = None) -> int:
    """Console entry point: usage errors are one line on stderr (exit 2), never a traceback."""
    command = typer.main.get_command(app)
    try:
        # without standalone mode, click returns the code of a `typer.Exit` instead of raising it
        rv = command.main(args=argv, prog_name="stratforge", standalone_mode=False)
    except UsageError as e:
        if not e.format_message():  # a group called without a command: its help was shown
            return 0
        where = f"{e.ctx.command_path}: " if e.ctx is not None else ""
        print(f"Error: {where}{e.format_message()}", file=sys.stderr)
        return 2
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        print("Aborted.", file=sys.stderr)
        return 130
    except ClickException as e:
        print(f"Error: {e.format_message()}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
