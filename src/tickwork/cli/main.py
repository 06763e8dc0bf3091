"""The ``tickwork`` command line."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="tickwork",
    help="Durable scheduled triggers for AI agents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def main() -> None:
    app()
