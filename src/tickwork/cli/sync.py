"""``tickwork sync --app MODULE --project P``: push the schedules declared in code.

The deploy step that keeps schedules next to their code: import the deployment's module
(as ``tickwork serve --app`` does), build the definition its ``@tickwork.handler`` and
``@tickwork.schedule`` decorators describe (one agent per handler) and push it to the
ref with ``PUT /definition``, printing what changed. Errors the server finds in a
schedule name the decorator's file and line.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from tickwork.cli.definition import push_and_report
from tickwork.cli.remote import Remote, UsageError, command

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    command(app, "sync")(sync)


def sync(
    r: Remote,
    app_module: Annotated[
        str | None,
        typer.Option(
            "--app",
            metavar="MODULE",
            envvar="TICKWORK_APP",
            show_envvar=True,
            help="Python module to import (required): its @tickwork.handler functions and "
            "their @tickwork.schedule decorators.",
        ),
    ] = None,
    ref: Annotated[
        str | None,
        typer.Option("--ref", metavar="REF", help="The ref (branch) to replace (default: main)."),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Only print what the sync would change; write nothing."),
    ] = False,
) -> None:
    """Push the definition the module's decorators describe: one agent per handler, with
    the triggers its schedules declare. The ref belongs to the code: agents and triggers
    the code no longer declares are deleted."""
    from tickwork.errors import ValidationError
    from tickwork.targets.python import AppLoadError, load_app
    from tickwork.targets.schedules import build_definition

    if not app_module:
        raise UsageError("--app (or TICKWORK_APP) is required: the module to sync")
    # Like `python -m` and `tickwork serve --app`, find the module in the current directory.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        load_app(app_module)
        found = build_definition()
    except (AppLoadError, ValidationError) as exc:
        raise UsageError(str(exc)) from None
    if not found.definition["agents"]:
        raise UsageError(
            f"{app_module} registers no @tickwork.handler: nothing to sync (an empty "
            "definition would delete every agent of the ref)"
        )
    push_and_report(
        r,
        found.definition,
        ref,
        lambda field: found.source_of(field) or app_module,
        dry_run=dry_run,
    )
