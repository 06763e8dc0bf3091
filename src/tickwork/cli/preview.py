"""``tickwork preview``: the next fire instants of a cron expression, and what it means.

Each command module of the CLI exposes ``register(app)``; ``cli/main.py`` calls them.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Annotated

import typer

from tickwork.clock import SystemClock
from tickwork.domain.schedule import (
    CronSchedule,
    cron_schedule,
    describe,
    format_instant,
    parse_instant,
    preview,
)
from tickwork.errors import ValidationError

__all__ = ["register"]

# Exit status for input that cannot be used (the same status Click gives usage errors).
EXIT_INVALID = 2
DEFAULT_COUNT = 5


def register(app: typer.Typer) -> None:
    app.command("preview")(preview_command)


def preview_command(
    expression: Annotated[
        str,
        typer.Argument(
            metavar="EXPR",
            help="Cron expression: 5 fields, 6 with leading seconds, or an @alias; "
            "e.g. '0 9 * * 1-5'.",
        ),
    ],
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
        bool, typer.Option("--json", help="Print only a JSON array of UTC instants.")
    ] = False,
) -> None:
    """Show the next fire instants of a cron expression and describe it."""
    try:
        schedule = cron_schedule(expression, tz)
        base = SystemClock().now() if after is None else parse_instant(after, "after")
        instants = preview(schedule, base, _parse_count(count))
    except ValidationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_INVALID) from None

    if as_json:
        typer.echo(json.dumps([format_instant(i) for i in instants]))
        return
    for instant in instants:
        typer.echo(_human_line(instant, schedule))
    if not instants:
        typer.echo("(no fire instants after that)")
    typer.echo(describe(schedule))


def _parse_count(text: str) -> int:
    value = text.strip()
    if not (value.isascii() and value.lstrip("-").isdigit()):
        raise ValidationError("count", f"{text!r} is not a whole number")
    return int(value)


def _human_line(instant: datetime, schedule: CronSchedule) -> str:
    """``Sun 2026-03-08 03:00:00 -04:00 EDT  =  2026-03-08T07:00:00Z``."""
    local = instant.astimezone(schedule.zone)
    minutes = int((local.utcoffset() or timedelta(0)).total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    offset = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    name = local.tzname() or ""
    return f"{local:%a %Y-%m-%d %H:%M:%S} {offset} {name:<5} = {format_instant(instant)}"
