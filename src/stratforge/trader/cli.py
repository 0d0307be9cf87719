"""CLI commands of stratforge.trader."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)


@app.callback()
def _group() -> None:
    """Commands of this subsystem."""


from stratforge.trader import cli_ops  # noqa: E402,F401
