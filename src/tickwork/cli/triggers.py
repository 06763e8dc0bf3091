"""``tickwork triggers`` and ``tickwork invocations``: scheduled triggers and their runs.

One module, longer than most: most of its length is the commands' option declarations
(each with its help text, shown by ``--help``), one command per API route of triggers
and invocations.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import RenderableType

from tickwork.cli.documents import read_document
from tickwork.cli.remote import Remote, UsageError, command, fields, parse_json_object, table
from tickwork.wire import InvocationOut, TriggerOut

__all__ = ["register"]

triggers_app = typer.Typer(
    help="Scheduled triggers: when an agent runs (cron in a time zone, or once).",
    no_args_is_help=True,
)
invocations_app = typer.Typer(
    help="Invocations: each run of a trigger, with its attempts.", no_args_is_help=True
)

TriggerArg = Annotated[
    str, typer.Argument(metavar="TRIGGER_ID", help="The trigger's id (trg_...).")
]
InvocationArg = Annotated[
    str, typer.Argument(metavar="INVOCATION_ID", help="The invocation's id (inv_...).")
]
AgentOpt = Annotated[
    str,
    typer.Option("--agent", metavar="AGENT", help="The agent the trigger belongs to (required)."),
]
TriggerOpt = Annotated[
    str,
    typer.Option(
        "--trigger", metavar="TRIGGER_ID", help="The trigger the invocation belongs to (required)."
    ),
]
RefOpt = Annotated[
    str | None,
    typer.Option("--ref", metavar="REF", help="The ref (branch) (default: main)."),
]

# The trigger fields create and update take; None = not given.
NameOpt = Annotated[
    str | None,
    typer.Option(
        "--name",
        metavar="NAME",
        help="The trigger's name, unique per agent and ref (no default: needed to create).",
    ),
]
CronOpt = Annotated[
    str | None,
    typer.Option(
        "--cron",
        metavar="EXPR",
        help="A cron expression: 5 fields, 6 with seconds, or @daily (no default; or --run-at).",
    ),
]
RunAtOpt = Annotated[
    str | None,
    typer.Option(
        "--run-at",
        metavar="ISO",
        help="Run once at this instant, with its offset: 2026-03-08T07:00:00Z (no default).",
    ),
]
ZoneOpt = Annotated[
    str | None,
    typer.Option("--tz", metavar="ZONE", help="IANA time zone of the schedule (default: UTC)."),
]
PayloadOpt = Annotated[
    str | None,
    typer.Option("--payload", metavar="JSON", help="The payload: a JSON object (default: {})."),
]
TemplateOpt = Annotated[
    str | None,
    typer.Option(
        "--template",
        metavar="TEXT",
        help="The message template, {{ path }} placeholders into the payload (default: the "
        "payload as JSON).",
    ),
]
DescriptionOpt = Annotated[
    str | None,
    typer.Option("--description", metavar="TEXT", help="What the trigger is for (default: none)."),
]
EnableOpt = Annotated[
    bool | None,
    typer.Option(
        "--enable/--disable", help="Enable or disable it (default: enabled).", show_default=False
    ),
]
MaxRetriesOpt = Annotated[
    int | None,
    typer.Option(
        "--max-retries", metavar="N", help="Retries after a failed attempt, 0-10 (default: 1)."
    ),
]
RetryDelayOpt = Annotated[
    int | None,
    typer.Option(
        "--retry-delay", metavar="SECONDS", help="First retry's delay, 1-3600 (default: 60)."
    ),
]
TimeoutOpt = Annotated[
    int | None,
    typer.Option(
        "--timeout", metavar="SECONDS", help="Each attempt's time limit, 1-86400 (default: 780)."
    ),
]
CatchupOpt = Annotated[
    str | None,
    typer.Option(
        "--catchup", metavar="POLICY", help="After downtime: latest, all or none (default: latest)."
    ),
]
OverlapOpt = Annotated[
    str | None,
    typer.Option(
        "--overlap",
        metavar="POLICY",
        help="While a run is going: allow, skip, buffer_one or cancel_previous (default: allow).",
    ),
]
JitterOpt = Annotated[
    int | None,
    typer.Option(
        "--jitter", metavar="SECONDS", help="Spread each run by up to this, 0-3600 (default: 0)."
    ),
]
ConversationOpt = Annotated[
    str | None,
    typer.Option(
        "--conversation",
        metavar="MODE",
        help="new: every run starts afresh; continue: each run continues the previous "
        "run's conversation (default: new).",
    ),
]
BudgetOpt = Annotated[
    int | None,
    typer.Option(
        "--daily-token-budget",
        metavar="TOKENS",
        help="Tokens per UTC day; past it, slots are skipped (default: no budget).",
    ),
]
RunAsOpt = Annotated[
    str | None,
    typer.Option(
        "--run-as",
        metavar="SUBJECT",
        help="The user or service of your system the runs act for (default: none).",
    ),
]
FileOpt = Annotated[
    Path | None,
    typer.Option(
        "--file",
        metavar="FILE",
        help="Trigger fields from a YAML or JSON file; the options above win (default: none).",
    ),
]


def register(app: typer.Typer) -> None:
    app.add_typer(triggers_app, name="triggers")
    app.add_typer(invocations_app, name="invocations")


def _schedule(t: TriggerOut) -> str:
    if t.cron_expression is not None:
        return t.cron_expression
    return f"once at {t.run_at.isoformat() if t.run_at else '-'}"


def _last_run(t: TriggerOut) -> str:
    return t.last_run.status if t.last_run is not None else "-"


def _triggers_table(items: Iterable[TriggerOut]) -> RenderableType:
    return table(
        None,
        ["id", "agent", "ref", "name", "schedule", "timezone", "enabled", "next run (UTC)",
         "last run", "health"],
        [
            (t.id, t.agent, t.ref, t.name, _schedule(t), t.timezone, t.enabled, t.next_run_at,
             _last_run(t), _health(t))
            for t in items
        ],
    )  # fmt: skip


def _health(t: TriggerOut) -> str:
    """The health, with the failures in a row while it fails."""
    if t.consecutive_failures and t.health in ("failing", "paused", "late"):
        return f"{t.health} ({t.consecutive_failures} failed)"
    return t.health


def _trigger_body(
    file: Path | None,
    name: str | None,
    cron: str | None,
    run_at: str | None,
    tz: str | None,
    payload: str | None,
    template: str | None,
    description: str | None,
    enable: bool | None,
    max_retries: int | None,
    retry_delay: int | None,
    timeout: int | None,
    catchup: str | None,
    overlap: str | None,
    jitter: int | None,
    conversation: str | None = None,
    budget: int | None = None,
    run_as: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if file is not None:
        document = read_document(file)
        if not isinstance(document.data, dict):
            raise UsageError(f"{file}: must hold the trigger's fields, as a mapping")
        body.update(document.data)
    given = {
        "name": name,
        "cron_expression": cron,
        "run_at": run_at,
        "timezone": tz,
        "payload": parse_json_object(payload, "--payload"),
        "message_template": template,
        "description": description,
        "enabled": enable,
        "max_retries": max_retries,
        "retry_delay_seconds": retry_delay,
        "timeout_seconds": timeout,
        "catchup": catchup,
        "overlap": overlap,
        "jitter_seconds": jitter,
        "conversation": conversation,
        "daily_token_budget": budget,
        "run_as": run_as,
    }
    body.update({k: v for k, v in given.items() if v is not None})
    return body


@command(triggers_app, "list")
def list_triggers(
    r: Remote,
    agent: Annotated[
        str | None,
        typer.Option("--agent", metavar="AGENT", help="Only this agent's (default: all)."),
    ] = None,
    ref: Annotated[
        str | None,
        typer.Option("--ref", metavar="REF", help="Only this ref's (default: every ref)."),
    ] = None,
    enabled: Annotated[
        bool | None,
        typer.Option(
            "--enabled/--disabled",
            help="Only enabled, or only disabled, triggers (default: both).",
            show_default=False,
        ),
    ] = None,
    paused: Annotated[
        bool | None,
        typer.Option(
            "--paused/--not-paused",
            help="Only triggers an operator paused, or only the others (default: both).",
            show_default=False,
        ),
    ] = None,
    health: Annotated[
        str | None,
        typer.Option(
            "--health",
            metavar="HEALTH",
            help="Only triggers of this health: ok, failing, late, paused or disabled "
            "(default: all).",
        ),
    ] = None,
    search: Annotated[
        str | None,
        typer.Option(
            "--search", metavar="TEXT", help="Only names containing TEXT, any case (default: all)."
        ),
    ] = None,
    limit: Annotated[
        int,
        typer.Option(
            "--limit",
            min=0,
            metavar="N",
            help="Show at most N, oldest first; 0 for all (default: all).",
        ),
    ] = 0,
) -> None:
    """List the project's triggers, across agents and refs, with their last run."""
    found = r.client.triggers.search(
        agent=agent,
        ref=ref,
        enabled=enabled,
        paused=paused,
        health=health,
        q=search,
        page_size=min(max(limit, 1), 200) if limit else 200,
    )
    items = list(found if limit == 0 else islice(found, limit))
    r.emit(items, lambda: _triggers_table(items))


@command(triggers_app, "get")
def get_trigger(r: Remote, trigger_id: TriggerArg, agent: AgentOpt) -> None:
    """Show a trigger."""
    found = r.client.triggers.get(agent, trigger_id)
    r.emit(found, lambda: fields(f"trigger {found.id}", found))


@command(triggers_app, "create")
def create_trigger(
    r: Remote,
    agent: AgentOpt,
    name: NameOpt = None,
    cron: CronOpt = None,
    run_at: RunAtOpt = None,
    tz: ZoneOpt = None,
    payload: PayloadOpt = None,
    template: TemplateOpt = None,
    description: DescriptionOpt = None,
    enable: EnableOpt = None,
    max_retries: MaxRetriesOpt = None,
    retry_delay: RetryDelayOpt = None,
    timeout: TimeoutOpt = None,
    catchup: CatchupOpt = None,
    overlap: OverlapOpt = None,
    jitter: JitterOpt = None,
    conversation: ConversationOpt = None,
    budget: BudgetOpt = None,
    run_as: RunAsOpt = None,
    file: FileOpt = None,
    ref: RefOpt = None,
) -> None:
    """Create a trigger: --name and --cron (or --run-at), and the fields to set."""
    body = _trigger_body(
        file, name, cron, run_at, tz, payload, template, description, enable,
        max_retries, retry_delay, timeout, catchup, overlap, jitter, conversation, budget, run_as,
    )  # fmt: skip
    created = r.client.triggers.create(agent, body, ref=ref)
    r.emit(created, lambda: fields(f"trigger {created.id}", created))


@command(triggers_app, "update")
def update_trigger(
    r: Remote,
    trigger_id: TriggerArg,
    agent: AgentOpt,
    name: NameOpt = None,
    cron: CronOpt = None,
    run_at: RunAtOpt = None,
    tz: ZoneOpt = None,
    payload: PayloadOpt = None,
    template: TemplateOpt = None,
    description: DescriptionOpt = None,
    enable: EnableOpt = None,
    max_retries: MaxRetriesOpt = None,
    retry_delay: RetryDelayOpt = None,
    timeout: TimeoutOpt = None,
    catchup: CatchupOpt = None,
    overlap: OverlapOpt = None,
    jitter: JitterOpt = None,
    conversation: ConversationOpt = None,
    budget: BudgetOpt = None,
    run_as: RunAsOpt = None,
    file: FileOpt = None,
) -> None:
    """Change the fields given; the others stay (a file's null restores a default)."""
    body = _trigger_body(
        file, name, cron, run_at, tz, payload, template, description, enable,
        max_retries, retry_delay, timeout, catchup, overlap, jitter, conversation, budget, run_as,
    )  # fmt: skip
    if not body:
        raise UsageError("nothing to change: give at least one field (see --help)")
    updated = r.client.triggers.update(agent, trigger_id, body)
    r.emit(updated, lambda: fields(f"trigger {updated.id}", updated))


@command(triggers_app, "delete")
def delete_trigger(r: Remote, trigger_id: TriggerArg, agent: AgentOpt) -> None:
    """Delete a trigger; its pending and running invocations are cancelled."""
    r.client.triggers.delete(agent, trigger_id)
    r.say(f"deleted trigger {trigger_id}")


@command(triggers_app, "run")
def run_trigger(
    r: Remote,
    trigger_id: TriggerArg,
    agent: AgentOpt,
    payload: Annotated[
        str | None,
        typer.Option(
            "--payload",
            metavar="JSON",
            help="The payload of this run only: a JSON object (default: the trigger's).",
        ),
    ] = None,
) -> None:
    """Run a trigger now, as a new invocation; prints it."""
    invocation = r.client.triggers.run(
        agent,
        trigger_id,
        payload=None if payload is None else parse_json_object(payload, "--payload"),
    )
    r.emit(invocation, lambda: _invocation_tables(invocation))


@command(triggers_app, "preview")
def preview_trigger(
    r: Remote,
    trigger_id: TriggerArg,
    agent: AgentOpt,
    count: Annotated[
        int,
        typer.Option(
            "--count", min=1, max=1000, metavar="N", help="How many fire instants, 1-1000."
        ),
    ] = 10,
) -> None:
    """The trigger's next fire instants, and its schedule in words."""
    preview = r.client.triggers.preview(agent, trigger_id, count=count)
    r.emit(
        preview,
        lambda: table(
            f"{preview.description}",
            ["next runs (UTC)"],
            [(instant,) for instant in preview.next_runs],
        ),
    )


# --- invocations -----------------------------------------------------------------------


def _invocations_table(items: Iterable[InvocationOut]) -> RenderableType:
    return table(
        None,
        ["id", "trigger", "agent", "origin", "status", "scheduled for (UTC)", "attempt"],
        [
            (i.id, i.trigger_name, i.agent, i.origin, i.status, i.scheduled_for, i.attempt)
            for i in items
        ],
    )


def _invocation_tables(invocation: InvocationOut) -> Iterator[RenderableType]:
    yield fields(f"invocation {invocation.id}", invocation, skip=("attempts",))
    if invocation.attempts:
        yield table(
            "attempts",
            ["attempt", "started", "ended", "outcome", "deployment", "error"],
            [
                (a.attempt, a.started_at, a.ended_at, a.outcome, a.deployment_id, a.error)
                for a in invocation.attempts
            ],
        )


@command(invocations_app, "list")
def list_invocations(
    r: Remote,
    agent: Annotated[
        str | None,
        typer.Option("--agent", metavar="AGENT", help="Only this agent's (default: all)."),
    ] = None,
    trigger: Annotated[
        str | None,
        typer.Option("--trigger", metavar="TRIGGER_ID", help="Only this trigger's (default: all)."),
    ] = None,
    ref: Annotated[
        str | None,
        typer.Option("--ref", metavar="REF", help="Only this ref's (default: every ref)."),
    ] = None,
    origin: Annotated[
        list[str] | None,
        typer.Option(
            "--origin",
            metavar="ORIGIN",
            help="Only this origin (repeat for several): schedule, manual, rerun or backfill "
            "(default: all).",
        ),
    ] = None,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            metavar="STATUS",
            help="Only this status (repeat for several): pending, running, completed, failed, "
            "cancelled, missed or skipped (default: all).",
        ),
    ] = None,
    from_: Annotated[
        str | None,
        typer.Option("--from", metavar="ISO", help="Scheduled at or after (default: any)."),
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", metavar="ISO", help="Scheduled before (default: any).")
    ] = None,
    limit: Annotated[
        int,
        typer.Option(
            "--limit", min=0, metavar="N", help="Show at most N, newest first; 0 for all."
        ),
    ] = 50,
) -> None:
    """List the project's invocations, newest first, filtered."""
    found = r.client.invocations.list(
        agent=agent,
        trigger_id=trigger,
        ref=ref,
        origin=origin,
        status=status,
        from_=from_,
        to=to,
        page_size=min(max(limit, 1), 200),
    )
    items = list(found if limit == 0 else islice(found, limit))
    r.emit(items, lambda: _invocations_table(items))


@command(invocations_app, "get")
def get_invocation(r: Remote, invocation_id: InvocationArg) -> None:
    """Show an invocation of the project with its attempts (also one whose trigger was
    deleted)."""
    found = r.client.invocations.get(invocation_id)
    r.emit(found, lambda: _invocation_tables(found))


@command(invocations_app, "cancel")
def cancel_invocation(
    r: Remote, invocation_id: InvocationArg, agent: AgentOpt, trigger: TriggerOpt
) -> None:
    """Cancel a pending or running invocation."""
    found = r.client.invocations.cancel(invocation_id, agent=agent, trigger_id=trigger)
    r.emit(found, lambda: _invocation_tables(found))


@command(invocations_app, "rerun")
def rerun_invocation(
    r: Remote, invocation_id: InvocationArg, agent: AgentOpt, trigger: TriggerOpt
) -> None:
    """Run a finished invocation again, as a new one; prints the new one."""
    found = r.client.invocations.rerun(invocation_id, agent=agent, trigger_id=trigger)
    r.emit(found, lambda: _invocation_tables(found))
