"""``tickwork definition push FILE``: replace a ref's definition with a YAML or JSON file.

The server validates the file as it validates any push, and its field errors
(``agents[1].triggers[0].cron_expression: ...``) are printed with the line of the file
they are about.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import RenderableType

from tickwork.cli.documents import read_document
from tickwork.cli.remote import EXIT_API, Remote, UsageError, command, table
from tickwork.client import ApiError
from tickwork.wire import DefinitionOut

__all__ = ["push_and_report", "register", "summary_table"]

definition_app = typer.Typer(
    help="A ref's whole definition: its agents and their scheduled triggers.",
    no_args_is_help=True,
)
RefOpt = Annotated[
    str | None,
    typer.Option("--ref", metavar="REF", help="The ref (branch) to replace (default: main)."),
]


def register(app: typer.Typer) -> None:
    app.add_typer(definition_app, name="definition")


def summary_table(result: DefinitionOut) -> RenderableType:
    """What a push changed: created, updated, deleted and unchanged agents and triggers."""
    state = "changed" if result.changed else "no change"
    rows = [
        ("agents", result.summary.agents),
        ("triggers", result.summary.triggers),
    ]
    return table(
        f"ref {result.ref}: revision {result.revision} ({state})",
        ["", "created", "updated", "deleted", "unchanged"],
        [(what, c.created, c.updated, c.deleted, c.unchanged) for what, c in rows],
    )


def push_and_report(
    r: Remote, definition: dict[str, object], ref: str | None, where: Callable[[str], str]
) -> None:
    """Push, and print what changed; a refusal's field errors are printed one a line,
    each prefixed with ``where(field)`` (the file and line, or the decorator)."""
    try:
        result = r.client.definitions.push(definition, ref=ref)
    except ApiError as exc:
        if not exc.errors:
            raise
        typer.echo(f"error: {exc.status} {exc.title}: the definition was not pushed", err=True)
        for error in exc.errors:
            typer.echo(f"  {where(error.field)}: {error.field}: {error.message}", err=True)
        raise typer.Exit(EXIT_API) from None
    r.emit(result, lambda: summary_table(result))


@command(definition_app, "push")
def push_definition(
    r: Remote,
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="The definition: YAML, or JSON (.json), as PUT /definition takes it.",
        ),
    ],
    ref: RefOpt = None,
) -> None:
    """Replace the ref's agents and triggers with the file's, in one transaction: what
    the file leaves out is deleted. Prints what was created, updated, deleted and left
    unchanged."""
    document = read_document(file)
    if not isinstance(document.data, dict):
        raise UsageError(f"{file}: must be a mapping with an 'agents' list")
    push_and_report(r, document.data, ref, document.where)
