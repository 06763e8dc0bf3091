"""``tickwork preview``: the next fire instants of a cron expression or a recurrence rule,
with the slots a calendar skips or shifts, and what it means.

Each command module of the CLI exposes ``register(app)``; ``cli/main.py`` calls them.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Annotated

import typer

from tickwork.clock import SystemClock
from tickwork.domain.calendars import parse_calendar
from tickwork.domain.schedule import (
    CronSchedule,
    RRuleSchedule,
    cron_schedule,
    describe,
    format_instant,
    parse_instant,
    rrule_schedule,
)
from tickwork.domain.slots import CalendarSchedule, Slot, preview_slots
from tickwork.domain.zones import get_zone
from tickwork.errors import ValidationError

__all__ = ["register"]

# Exit status for input that cannot be used (the same status Click gives usage errors).
EXIT_INVALID = 2
DEFAULT_COUNT = 5


def register(app: typer.Typer) -> None:
    app.command("preview")(preview_command)


def preview_command(
    expression: Annotated[
        str | None,
        typer.Argument(
            metavar="[EXPR]",
            help="Cron expression: 5 fields, 6 with leading seconds, or an @alias; "
            "e.g. '0 9 * * 1-5'. Leave it out to preview --rrule instead.",
        ),
    ] = None,
    tz: Annotated[
        str, typer.Option("--tz", "--timezone", metavar="ZONE", help="IANA time zone.")
    ] = "UTC",
    after: Annotated[
        str | None,
        typer.Option(
            metavar="ISO",
            help="List instants strictly after this aware instant (default: now), "
            "e.g. 2026-03-08T07:00:00Z.",
        ),
    ] = None,
    count: Annotated[str, typer.Option(metavar="N", help="How many instants (1 to 1000).")] = str(
        DEFAULT_COUNT
    ),
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print only JSON: an array of UTC instants, or with a calendar an array of "
            '{"at", "status", "reason", "nominal"} objects.',
        ),
    ] = False,
    rrule: Annotated[
        str | None,
        typer.Option(
            metavar="RULE",
            help="An RFC 5545 rule instead of EXPR, e.g. 'FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;"
            "BYSETPOS=-1;BYHOUR=17;BYMINUTE=0' (default: none; EXPR is previewed).",
        ),
    ] = None,
    rrule_start: Annotated[
        str | None,
        typer.Option(
            metavar="WALL",
            help="Where the rule starts: a wall time in --tz, e.g. 2026-01-05T09:00:00 "
            "(default: the --after instant's wall time, to the second).",
        ),
    ] = None,
    holidays: Annotated[
        str | None,
        typer.Option(
            metavar="CODE",
            help="Skip public holidays of a country, e.g. US, DE-BY (default: none).",
        ),
    ] = None,
    exclude_date: Annotated[
        list[str] | None,
        typer.Option(
            metavar="DATE", help="Skip a local date, e.g. 2026-12-24 (repeatable; default: none)."
        ),
    ] = None,
    weekends: Annotated[
        str | None, typer.Option(metavar="POLICY", help="exclude or include (the default).")
    ] = None,
    shift: Annotated[
        str | None,
        typer.Option(
            metavar="POLICY",
            help="What happens to a slot on an excluded date: skip (the default), "
            "next_business_day or previous_business_day.",
        ),
    ] = None,
) -> None:
    """Show the next fire instants of a cron expression or a recurrence rule, the slots a
    calendar skips or shifts (with the reason), and describe it."""
    calendar_given = any(v is not None for v in (holidays, exclude_date, weekends, shift))
    try:
        base = SystemClock().now() if after is None else parse_instant(after, "after")
        schedule = _schedule(expression, rrule, rrule_start, tz, base)
        target: RRuleSchedule | CronSchedule | CalendarSchedule = schedule
        if calendar_given:
            value: dict[str, object] = {"exclude_dates": exclude_date or None}
            value.update(holidays=holidays, weekends=weekends, shift=shift)
            calendar = parse_calendar({k: v for k, v in value.items() if v is not None})
            target = CalendarSchedule(schedule, calendar)
        slots = preview_slots(target, base, _parse_count(count))
    except ValidationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_INVALID) from None

    if as_json:
        if calendar_given:
            typer.echo(json.dumps([_slot_json(slot) for slot in slots]))
        else:
            typer.echo(json.dumps([format_instant(slot.at) for slot in slots]))
        return
    for slot in slots:
        typer.echo(_human_line(slot.at, schedule) + _note(slot))
    if not slots:
        typer.echo("(no fire instants after that)")
    typer.echo(describe(schedule))
    if isinstance(target, CalendarSchedule):
        typer.echo(f"Calendar: {target.calendar.describe()}")


def _schedule(
    expression: str | None, rule: str | None, start: str | None, tz: str, base: datetime
) -> CronSchedule | RRuleSchedule:
    if (expression is None) == (rule is None):
        raise ValidationError("", "give a cron expression (EXPR) or --rrule RULE, not both")
    if rule is None:
        assert expression is not None
        if start is not None:
            raise ValidationError("rrule_start", "goes with --rrule only")
        return cron_schedule(expression, tz)
    if start is None:
        start = base.astimezone(get_zone(tz)).replace(tzinfo=None, microsecond=0).isoformat()
    return rrule_schedule(rule, start, tz)


def _note(slot: Slot) -> str:
    if slot.status == "skip":
        return f"  skipped: {slot.reason}"
    return f"  {slot.reason}" if slot.reason else ""


def _slot_json(slot: Slot) -> dict[str, object]:
    return {
        "at": format_instant(slot.at),
        "status": slot.status,
        "reason": slot.reason,
        "nominal": format_instant(slot.nominal),
    }


def _parse_count(text: str) -> int:
    value = text.strip()
    if not (value.isascii() and value.lstrip("-").isdigit()):
        raise ValidationError("count", f"{text!r} is not a whole number")
    return int(value)


def _human_line(instant: datetime, schedule: CronSchedule | RRuleSchedule) -> str:
    """``Sun 2026-03-08 03:00:00 -04:00 EDT  =  2026-03-08T07:00:00Z``."""
    local = instant.astimezone(schedule.zone)
    minutes = int((local.utcoffset() or timedelta(0)).total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    offset = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    name = local.tzname() or ""
    return f"{local:%a %Y-%m-%d %H:%M:%S} {offset} {name:<5} = {format_instant(instant)}"
