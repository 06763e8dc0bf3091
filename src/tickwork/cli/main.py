"""The ``tickwork`` command line.

Each command lives in a module of its own that exposes ``register(app)``; this module
creates the app and registers them.

Help is Click's plain format (no boxes, readable when piped or logged): every option
shows a placeholder for its value (``--port PORT``), its default and the environment
variable it can also be set with. Shell completion comes from Typer
(``tickwork --install-completion``).
"""

from __future__ import annotations

from typing import Annotated

import typer

from tickwork import __version__
from tickwork.cli import (
    admin,
    definition,
    deploy,
    preview,
    projects,
    secrets,
    serving,
    sync,
    triggers,
)

app = typer.Typer(
    name="tickwork",
    help="Durable scheduled triggers for AI agents.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"tickwork {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print tickwork's version and exit.",
        ),
    ] = False,
) -> None:
    """Durable scheduled triggers for AI agents."""
    # A callback makes the app a group even while it has a single command, so that
    # `tickwork preview ...` always names its command.


preview.register(app)
serving.register(app)
admin.register(app)
deploy.register(app)
secrets.register(app)
projects.register(app)
triggers.register(app)
definition.register(app)
sync.register(app)


def main() -> None:
    app(prog_name="tickwork")
