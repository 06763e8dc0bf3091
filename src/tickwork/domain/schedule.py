"""Schedules: what a trigger's timing is, and the instants it fires at (SPEC §3).

A schedule is a cron expression or an RFC 5545 recurrence rule evaluated in an IANA time
zone, or a single instant. Everything here is a pure function of the instants it is
given; nothing reads the clock. Instants go in aware and come out as UTC.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tickwork.domain.cron import CronExpression, parse_cron
from tickwork.domain.rrule import RecurrenceRule, parse_rrule, parse_rrule_start
from tickwork.domain.walltime import fixed_instant
from tickwork.domain.zones import get_zone, is_utc
from tickwork.errors import InvalidSchedule, ValidationError

__all__ = [
    "MAX_PREVIEW",
    "RUN_AT_TOLERANCE",
    "CronSchedule",
    "OnceSchedule",
    "RRuleSchedule",
    "Schedule",
    "check_run_at_not_past",
    "cron_schedule",
    "describe",
    "format_instant",
    "initial_next_run",
    "next_run_after",
    "once_schedule",
    "parse_instant",
    "preview",
    "require_fires_after",
    "rrule_schedule",
]

# A one-time trigger may be created for an instant this far in the past: the request
# took a moment to arrive, and "run at 09:00" sent at 09:00:20 should still run.
RUN_AT_TOLERANCE = timedelta(seconds=60)
MAX_PREVIEW = 1000


@dataclass(frozen=True)
class CronSchedule:
    """A validated cron expression and the IANA zone its wall times are read in."""

    expression: CronExpression
    timezone: str

    @property
    def zone(self) -> ZoneInfo:
        return get_zone(self.timezone)


@dataclass(frozen=True)
class OnceSchedule:
    """A single instant (UTC). ``timezone`` is kept for display and for the target."""

    run_at: datetime
    timezone: str


@dataclass(frozen=True)
class RRuleSchedule:
    """A validated recurrence rule anchored at a wall time of ``timezone``.

    ``end`` is the last instant it may fire at (from COUNT or UNTIL; None for neither),
    computed once when the schedule is built.
    """

    rule: RecurrenceRule
    timezone: str
    end: datetime | None

    @property
    def zone(self) -> ZoneInfo:
        return get_zone(self.timezone)

    def next_after(self, after: datetime) -> datetime | None:
        if self.end is not None and after >= self.end:
            return None
        found = self.rule.next_after(after, self.zone)
        if found is None or (self.end is not None and found > self.end):
            return None
        return found


Schedule = CronSchedule | RRuleSchedule | OnceSchedule


def cron_schedule(expression: str, timezone: str = "UTC") -> CronSchedule:
    """Validate a cron expression and a zone name.

    Raises :class:`InvalidSchedule` with field ``cron_expression`` or ``timezone``.
    """
    parsed = parse_cron(expression)
    get_zone(timezone)
    return CronSchedule(expression=parsed, timezone=timezone)


def rrule_schedule(rule: str, rrule_start: str | datetime, timezone: str = "UTC") -> RRuleSchedule:
    """Validate a recurrence rule, its start (a wall time of ``timezone``) and the zone.

    Raises :class:`InvalidSchedule` with field ``rrule``, ``rrule_start`` or ``timezone``,
    including for a rule that never fires in that zone (every wall time it names falls in
    a daylight-saving gap and it follows elapsed time).
    """
    return _rrule_schedule(rule, parse_rrule_start(rrule_start), timezone)


@functools.lru_cache(maxsize=1024)
def _rrule_schedule(rule: str, start: datetime, timezone: str) -> RRuleSchedule:
    parsed = parse_rrule(rule, start)
    zone = get_zone(timezone)
    if parsed.next_after(fixed_instant(start, zone) - timedelta(days=2), zone) is None:
        raise InvalidSchedule(
            "rrule",
            f"never fires in time zone {timezone}: every wall time it names falls inside a "
            f"daylight-saving gap, and a rule that fires every hour or every minute skips "
            f"wall times that do not occur",
        )
    return RRuleSchedule(rule=parsed, timezone=timezone, end=parsed.last_instant(zone))


def require_fires_after(schedule: Schedule, now: datetime) -> None:
    """Reject a recurrence rule that has no firing after ``now`` (its COUNT or UNTIL is
    used up, or its rules' dates are all past): ``rrule: never fires after <now>``."""
    if isinstance(schedule, RRuleSchedule) and schedule.next_after(now) is None:
        raise InvalidSchedule(
            "rrule",
            f"never fires after {format_instant(now)}; move UNTIL, COUNT or rrule_start so "
            f"that it fires again",
        )


def once_schedule(run_at: datetime, timezone: str = "UTC") -> OnceSchedule:
    """Validate a one-time instant (aware; any offset) and normalise it to UTC.

    The instant is kept exactly, microseconds included. Whether it lies in the past is a
    separate question that depends on ``now``: see :func:`check_run_at_not_past`.
    """
    if not isinstance(run_at, datetime):
        raise InvalidSchedule("run_at", "must be a date and time with a UTC offset")
    if run_at.tzinfo is None or run_at.utcoffset() is None:
        raise InvalidSchedule(
            "run_at",
            "has no UTC offset; give an aware instant such as 2026-03-08T07:00:00Z",
        )
    get_zone(timezone)
    return OnceSchedule(run_at=run_at.astimezone(UTC), timezone=timezone)


def check_run_at_not_past(
    run_at: datetime, now: datetime, tolerance: timedelta = RUN_AT_TOLERANCE
) -> None:
    """Reject a one-time instant more than ``tolerance`` before ``now`` (SPEC §3)."""
    _require_aware(run_at, "run_at")
    _require_aware(now, "now")
    late = now - run_at
    if late > tolerance:
        raise InvalidSchedule(
            "run_at",
            f"{format_instant(run_at)} is {_human_duration(late)} in the past "
            f"(at most {int(tolerance.total_seconds())} s in the past is accepted)",
        )


def next_run_after(schedule: Schedule, after: datetime) -> datetime | None:
    """The first firing strictly after ``after``, as UTC; None when there is none.

    A one-time schedule fires once: at ``run_at`` when that is after ``after``.
    """
    _require_aware(after, "after")
    if isinstance(schedule, OnceSchedule):
        return schedule.run_at if schedule.run_at > after else None
    if isinstance(schedule, RRuleSchedule):
        return schedule.next_after(after)
    return schedule.expression.next_after(after, schedule.zone)


def initial_next_run(
    schedule: Schedule, now: datetime, tolerance: timedelta = RUN_AT_TOLERANCE
) -> datetime | None:
    """``next_run_at`` for a trigger that is created, re-scheduled or enabled at ``now``.

    A cron schedule fires next strictly after ``now``. A one-time schedule is armed at
    ``run_at`` even when that is up to ``tolerance`` in the past (the instant a create
    request was allowed to name), so that an accepted one-time trigger is never silently
    dropped; further in the past there is nothing to schedule (None).
    """
    _require_aware(now, "now")
    if isinstance(schedule, OnceSchedule):
        return schedule.run_at if now - schedule.run_at <= tolerance else None
    return next_run_after(schedule, now)


def preview(schedule: Schedule, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` (1 to 1000) firings strictly after ``after``, oldest first.

    Shorter when the schedule stops firing (a one-time schedule has at most one).
    """
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_PREVIEW:
        raise ValidationError("count", f"must be between 1 and {MAX_PREVIEW}, got {count!r}")
    instants: list[datetime] = []
    cursor = after
    while len(instants) < count:
        nxt = next_run_after(schedule, cursor)
        if nxt is None:
            break
        instants.append(nxt)
        cursor = nxt
    return instants


def describe(schedule: Schedule) -> str:
    """A human-readable description of when the schedule fires."""
    if isinstance(schedule, OnceSchedule):
        return f"Once at {format_instant(schedule.run_at)}"
    text = (
        schedule.rule.describe()
        if isinstance(schedule, RRuleSchedule)
        else schedule.expression.describe()
    )
    if not is_utc(schedule.zone):
        text += f" (time zone {schedule.timezone})"
    return text


def format_instant(instant: datetime) -> str:
    """The canonical text of an instant: ISO-8601 in UTC with a ``Z``.

    Whole seconds print as ``2026-03-08T07:00:00Z``; an instant with a fraction of a
    second keeps it (``2026-03-08T07:00:00.250000Z``) so that distinct instants never
    share a text (idempotency keys are built from this).
    """
    _require_aware(instant, "instant")
    utc = instant.astimezone(UTC)
    spec = "seconds" if utc.microsecond == 0 else "microseconds"
    return utc.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def parse_instant(text: str, field: str = "run_at") -> datetime:
    """Parse an aware ISO-8601 instant (a trailing ``Z`` is accepted) into UTC.

    Raises :class:`InvalidSchedule` naming ``field`` for unparsable or naive input.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidSchedule(field, "is empty; give an instant such as 2026-03-08T07:00:00Z")
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidSchedule(
            field, f"{text!r} is not an ISO-8601 instant (e.g. 2026-03-08T07:00:00Z)"
        ) from None
    if value.tzinfo is None:
        raise InvalidSchedule(
            field, f"{text!r} has no UTC offset; add Z or an offset such as +01:00"
        )
    return value.astimezone(UTC)


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime")


def _human_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"
