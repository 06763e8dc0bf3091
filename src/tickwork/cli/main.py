"""The ``tickwork`` command line.

Each command lives in a module of its own that exposes ``register(app)``; this module
creates the app and registers them.
"""

from __future__ import annotations

import typer

from tickwork.cli import deploy, preview, secrets, serve

app = typer.Typer(
    name="tickwork",
    help="Durable scheduled triggers for AI agents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Durable scheduled triggers for AI agents."""
    # A callback makes the app a group even while it has a single command, so that
    # `tickwork preview ...` always names its command.


preview.register(app)
serve.register(app)
deploy.register(app)
secrets.register(app)


def main() -> None:
    app()
