"""``tickwork definition get|push|diff``: a ref's definition as a YAML or JSON file.

``get`` writes the ref's definition in the form ``push`` takes; ``push FILE`` replaces the
ref's definition with the file's; ``diff FILE`` (``push --dry-run``) says what a push
would change and writes nothing. The server validates the file as it validates any push,
and its field errors (``agents[1].triggers[0].cron_expression: ...``) are printed with
the line of the file they are about.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import RenderableType

from tickwork.cli.documents import read_document
from tickwork.cli.remote import EXIT_API, Remote, UsageError, command, table
from tickwork.client import ApiError
from tickwork.wire import DefinitionOut

__all__ = ["changes_table", "push_and_report", "register", "summary_table"]

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


DryRunOpt = Annotated[
    bool,
    typer.Option("--dry-run", help="Only print what the push would change; write nothing."),
]
AllowEmptyOpt = Annotated[
    bool,
    typer.Option(
        "--allow-empty",
        help="Allow a definition of no agents, which deletes every agent of the ref.",
    ),
]


def summary_table(result: DefinitionOut) -> RenderableType:
    """What a push changed: created, updated, deleted and unchanged agents and triggers."""
    state = "changed" if result.changed else "no change"
    if result.dry_run:
        state = "dry run: would change" if result.changed else "dry run: no change"
    rows = [
        ("agents", result.summary.agents),
        ("triggers", result.summary.triggers),
    ]
    return table(
        f"ref {result.ref}: revision {result.revision} ({state})",
        ["", "created", "updated", "deleted", "unchanged"],
        [(what, c.created, c.updated, c.deleted, c.unchanged) for what, c in rows],
    )


def changes_table(result: DefinitionOut) -> RenderableType:
    """Each agent and trigger the push creates, updates or deletes (what it leaves
    unchanged is counted in the summary only)."""
    rows = [
        (c.action, c.agent, c.trigger or "", ", ".join(c.fields))
        for c in result.changes
        if c.action != "unchanged"
    ]
    title = "would change" if result.dry_run else "changes"
    return table(title, ["action", "agent", "trigger", "fields"], rows)


def push_and_report(
    r: Remote,
    definition: dict[str, object],
    ref: str | None,
    where: Callable[[str], str],
    *,
    dry_run: bool = False,
    allow_empty: bool = False,
) -> None:
    """Push (or with ``dry_run`` only ask what a push would do), and print what changed;
    a refusal's field errors are printed one a line, each prefixed with ``where(field)``
    (the file and line, or the decorator)."""
    try:
        result = r.client.definitions.push(
            definition, ref=ref, dry_run=dry_run, allow_empty=allow_empty
        )
    except ApiError as exc:
        if exc.status == 409 and "allow_empty" in (exc.detail or ""):
            typer.echo(f"error: 409 {exc.title}: {exc.detail} (here: --allow-empty)", err=True)
            raise typer.Exit(EXIT_API) from None
        if not exc.errors:
            raise
        typer.echo(f"error: {exc.status} {exc.title}: the definition was not pushed", err=True)
        for error in exc.errors:
            typer.echo(f"  {where(error.field)}: {error.field}: {error.message}", err=True)
        raise typer.Exit(EXIT_API) from None
    r.emit(result, lambda: _report(result))


def _report(result: DefinitionOut) -> list[RenderableType]:
    shown = [summary_table(result)]
    if any(c.action != "unchanged" for c in result.changes):
        shown.append(changes_table(result))
    return shown


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
    dry_run: DryRunOpt = False,
    allow_empty: AllowEmptyOpt = False,
) -> None:
    """Replace the ref's agents and triggers with the file's, in one transaction: what
    the file leaves out is deleted. Prints what was created, updated, deleted and left
    unchanged."""
    document = read_document(file)
    if not isinstance(document.data, dict):
        raise UsageError(f"{file}: must be a mapping with an 'agents' list")
    push_and_report(r, document.data, ref, document.where, dry_run=dry_run, allow_empty=allow_empty)


@command(definition_app, "diff")
def diff_definition(
    r: Remote,
    file: Annotated[
        Path,
        typer.Argument(metavar="FILE", help="The definition: YAML, or JSON (.json)."),
    ],
    ref: RefOpt = None,
    allow_empty: AllowEmptyOpt = False,
) -> None:
    """What pushing the file would create, update and delete; writes nothing (the same
    as push --dry-run)."""
    document = read_document(file)
    if not isinstance(document.data, dict):
        raise UsageError(f"{file}: must be a mapping with an 'agents' list")
    push_and_report(r, document.data, ref, document.where, dry_run=True, allow_empty=allow_empty)


@command(definition_app, "get")
def get_definition(
    r: Remote,
    ref: RefOpt = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write it to FILE (JSON if it ends in .json, else YAML) (default: stdout).",
        ),
    ] = None,
) -> None:
    """The ref's definition in the form push takes (YAML; JSON with --json): pushed back
    unchanged, it changes nothing. Stored webhook secrets are written {keep: true}."""
    found = r.client.definitions.get(ref=ref)
    document = found.model_dump(mode="json", exclude_none=True)
    as_json = r.json or (output is not None and output.suffix.lower() == ".json")
    text = (
        json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        if as_json
        else yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    )
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
    r.say(f"wrote the definition of ref {ref or 'main'} to {output}")
