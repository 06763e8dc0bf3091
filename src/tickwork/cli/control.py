"""An operator's control of scheduling from the command line (SPEC §10): ``tickwork
triggers pause|resume|skip``, ``tickwork projects pause|resume``, ``tickwork backfills
…`` and ``tickwork invocations cancel-many|rerun-many``."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated

import typer
from rich.console import RenderableType

from tickwork.cli.projects import ProjectArg, projects_app
from tickwork.cli.remote import Remote, UsageError, command, fields, table
from tickwork.cli.triggers import AgentOpt, TriggerArg, invocations_app, triggers_app
from tickwork.wire import BackfillMode, BackfillOut, BulkOut, ProjectOut, TriggerOut

__all__ = ["register"]

backfills_app = typer.Typer(
    help="Backfills: a trigger's own past slots, run on purpose.", no_args_is_help=True
)

ReasonOpt = Annotated[
    str | None,
    typer.Option("--reason", metavar="TEXT", help="Why, shown with the pause (default: none)."),
]
UntilOpt = Annotated[
    str | None,
    typer.Option(
        "--until",
        metavar="ISO",
        help="Resume by itself at this instant, with its offset: 2026-03-08T07:00:00Z "
        "(default: until resumed).",
    ),
]
CancelPendingOpt = Annotated[
    bool,
    typer.Option(
        "--cancel-pending", help="Also cancel the pending invocations (running ones go on)."
    ),
]
TriggerOpt = Annotated[
    str,
    typer.Option("--trigger", metavar="TRIGGER_ID", help="The trigger (trg_...)."),
]
BackfillArg = Annotated[
    str, typer.Argument(metavar="BACKFILL_ID", help="The backfill's id (bf_...).")
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Only count; change nothing.")]


def register(app: typer.Typer) -> None:
    # The commands join the groups of triggers, projects and invocations registered
    # by their own modules; backfills are a group of their own.
    app.add_typer(backfills_app, name="backfills")


def instant(value: str | None, option: str) -> datetime | None:
    """``--until 2026-03-08T07:00:00Z``: an aware instant, or a usage error."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option}: not an ISO-8601 instant: {value!r}") from None
    if parsed.tzinfo is None:
        raise UsageError(f"{option}: give the instant's offset (Z for UTC): {value!r}")
    return parsed


def _required(value: str, option: str) -> datetime:
    parsed = instant(value, option)
    if parsed is None:  # pragma: no cover - typer requires the option
        raise UsageError(f"{option} is required")
    return parsed


def _trigger(r: Remote, trigger: TriggerOut, said: str) -> None:
    r.emit(trigger, lambda: fields(f"trigger {trigger.id}: {said}", trigger))


def _project(r: Remote, project: ProjectOut, said: str) -> None:
    r.emit(project, lambda: fields(f"project {project.id}: {said}", project))


# --- a trigger -------------------------------------------------------------------------


@command(triggers_app, "pause")
def pause_trigger(
    r: Remote,
    trigger_id: TriggerArg,
    agent: AgentOpt,
    reason: ReasonOpt = None,
    until: UntilOpt = None,
    cancel_pending: CancelPendingOpt = False,
) -> None:
    """Pause a trigger: its slots pass without running until it is resumed."""
    paused = r.client.triggers.pause(
        agent,
        trigger_id,
        reason=reason,
        until=instant(until, "--until"),
        cancel_pending=cancel_pending,
    )
    _trigger(r, paused, "paused")


@command(triggers_app, "resume")
def resume_trigger(r: Remote, trigger_id: TriggerArg, agent: AgentOpt) -> None:
    """Resume a paused trigger from now on (the paused period is not run)."""
    _trigger(r, r.client.triggers.resume(agent, trigger_id), "resumed")


@command(triggers_app, "skip")
def skip_slots(
    r: Remote,
    trigger_id: TriggerArg,
    agent: AgentOpt,
    count: Annotated[
        int,
        typer.Option(
            "--count",
            min=0,
            max=10_000,
            metavar="N",
            help="How many of the next slots, 0-10000; replaces an earlier count, 0 "
            "cancels the skips.",
        ),
    ] = 1,
) -> None:
    """Record the trigger's next slots skipped instead of running them."""
    skipped = r.client.triggers.skip(agent, trigger_id, count)
    _trigger(r, skipped, f"the next {skipped.skip_remaining} slot(s) are skipped")


# --- a project -------------------------------------------------------------------------


@command(projects_app, "pause", project=False)
def pause_project(
    r: Remote,
    project: ProjectArg,
    reason: ReasonOpt = None,
    until: UntilOpt = None,
    cancel_pending: CancelPendingOpt = False,
) -> None:
    """Pause a project: none of its triggers runs a slot until it is resumed."""
    paused = r.client.projects.pause(
        project, reason=reason, until=instant(until, "--until"), cancel_pending=cancel_pending
    )
    _project(r, paused, "paused")


@command(projects_app, "resume", project=False)
def resume_project(r: Remote, project: ProjectArg) -> None:
    """Resume a paused project from now on (the paused period is not run)."""
    _project(r, r.client.projects.resume(project), "resumed")


# --- backfills -------------------------------------------------------------------------


def _backfills_table(items: Iterable[BackfillOut]) -> RenderableType:
    return table(
        None,
        ["id", "status", "mode", "from (UTC)", "to (UTC)", "slots", "runs", "dispatched"],
        [(b.id, b.status, b.mode, b.from_, b.to, b.slots, b.created, b.dispatched) for b in items],
    )


@command(backfills_app, "create")
def create_backfill(
    r: Remote,
    agent: AgentOpt,
    trigger: TriggerOpt,
    from_: Annotated[
        str,
        typer.Option("--from", metavar="ISO", help="The range's first instant."),
    ],
    to: Annotated[
        str,
        typer.Option("--to", metavar="ISO", help="The range's end, not included, in the past."),
    ],
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            metavar="MODE",
            help="missing: slots that never ran; failed: slots whose latest run failed; "
            "all: every slot.",
        ),
    ] = "missing",
    max_concurrency: Annotated[
        int,
        typer.Option(
            "--max-concurrency",
            min=1,
            max=1000,
            metavar="N",
            help="The most of its runs pending or running at once.",
        ),
    ] = 10,
    dry_run: DryRunOpt = False,
) -> None:
    """Run a trigger's slots in [--from, --to) as invocations of origin backfill."""
    start, end = _required(from_, "--from"), _required(to, "--to")
    if mode not in ("missing", "failed", "all"):
        raise UsageError(f"--mode: missing, failed or all, not {mode!r}")
    chosen: BackfillMode = mode  # type: ignore[assignment]  # checked just above
    if dry_run:
        plan = r.client.backfills.plan(agent, trigger, from_=start, to=end, mode=chosen)
        r.emit(
            plan,
            lambda: table(
                "a dry run: nothing was written",
                ["slots", "would run", "would leave"],
                [(plan.slots, plan.created, plan.skipped)],
            ),
        )
        return
    made = r.client.backfills.create(
        agent, trigger, from_=start, to=end, mode=chosen, max_concurrency=max_concurrency
    )
    r.emit(made, lambda: fields(f"backfill {made.id}", made))


@command(backfills_app, "list")
def list_backfills(r: Remote, agent: AgentOpt, trigger: TriggerOpt) -> None:
    """List a trigger's backfills, newest first."""
    items = list(r.client.backfills.list(agent, trigger, page_size=200))
    r.emit(items, lambda: _backfills_table(items))


@command(backfills_app, "get")
def get_backfill(r: Remote, backfill_id: BackfillArg, agent: AgentOpt, trigger: TriggerOpt) -> None:
    """Show a backfill and how far it got."""
    found = r.client.backfills.get(agent, trigger, backfill_id)
    r.emit(found, lambda: fields(f"backfill {found.id}", found))


@command(backfills_app, "cancel")
def cancel_backfill(
    r: Remote, backfill_id: BackfillArg, agent: AgentOpt, trigger: TriggerOpt
) -> None:
    """Stop a backfill: nothing more is dispatched, its pending runs are cancelled."""
    found = r.client.backfills.cancel(agent, trigger, backfill_id)
    r.emit(found, lambda: fields(f"backfill {found.id}", found))


# --- invocations in bulk ---------------------------------------------------------------

BulkAgentOpt = Annotated[
    str | None, typer.Option("--agent", metavar="AGENT", help="Only this agent's (default: all).")
]
BulkTriggerOpt = Annotated[
    str | None,
    typer.Option("--trigger", metavar="TRIGGER_ID", help="Only this trigger's (default: all)."),
]
BulkOriginOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--origin",
        metavar="ORIGIN",
        help="Only this origin (repeat for several): schedule, manual, rerun or backfill "
        "(default: all).",
    ),
]
BulkFromOpt = Annotated[
    str | None,
    typer.Option("--from", metavar="ISO", help="Scheduled at or after (default: any)."),
]
BulkToOpt = Annotated[
    str | None, typer.Option("--to", metavar="ISO", help="Scheduled before (default: any).")
]
BulkLimitOpt = Annotated[
    int,
    typer.Option(
        "--limit", min=1, max=10_000, metavar="N", help="The most invocations, oldest first."
    ),
]
YesOpt = Annotated[bool, typer.Option("--yes", help="Confirm (not needed with --dry-run).")]


def _bulk_done(r: Remote, result: BulkOut, verb: str) -> None:
    would = f"would be {verb}" if result.dry_run else verb
    r.emit(
        result,
        lambda: f"{result.matched} invocation(s) matched, {result.changed} {would}",
    )


def _confirmed(yes: bool, dry_run: bool, what: str) -> None:
    if not (yes or dry_run):
        raise UsageError(f"{what}: pass --yes to confirm, or --dry-run to count them first")


@command(invocations_app, "cancel-many")
def cancel_many(
    r: Remote,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            metavar="STATUS",
            help="Only this status: pending or running (repeat for both) (default: both).",
        ),
    ] = None,
    agent: BulkAgentOpt = None,
    trigger: BulkTriggerOpt = None,
    origin: BulkOriginOpt = None,
    from_: BulkFromOpt = None,
    to: BulkToOpt = None,
    limit: BulkLimitOpt = 1000,
    dry_run: DryRunOpt = False,
    yes: YesOpt = False,
) -> None:
    """Cancel the project's matching pending and running invocations."""
    _confirmed(yes, dry_run, "this cancels every matching pending and running invocation")
    result = r.client.invocations.cancel_many(
        status=status,
        agent=agent,
        trigger_id=trigger,
        origin=origin,
        from_=instant(from_, "--from"),
        to=instant(to, "--to"),
        limit=limit,
        dry_run=dry_run,
    )
    _bulk_done(r, result, "cancelled")


@command(invocations_app, "rerun-many")
def rerun_many(
    r: Remote,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            metavar="STATUS",
            help="Only this final status (repeat for several): completed, failed, cancelled, "
            "missed or skipped (default: failed).",
        ),
    ] = None,
    agent: BulkAgentOpt = None,
    trigger: BulkTriggerOpt = None,
    origin: BulkOriginOpt = None,
    from_: BulkFromOpt = None,
    to: BulkToOpt = None,
    limit: BulkLimitOpt = 1000,
    dry_run: DryRunOpt = False,
    yes: YesOpt = False,
) -> None:
    """Rerun the project's matching finished invocations as new ones."""
    _confirmed(yes, dry_run, "this reruns every matching finished invocation")
    result = r.client.invocations.rerun_many(
        status=status,
        agent=agent,
        trigger_id=trigger,
        origin=origin,
        from_=instant(from_, "--from"),
        to=instant(to, "--to"),
        limit=limit,
        dry_run=dry_run,
    )
    _bulk_done(r, result, "rerun")
