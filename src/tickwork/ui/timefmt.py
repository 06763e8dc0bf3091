"""Times as the pages show them: in the trigger's zone with its UTC offset, and
relative to now ("in 3 min", "2 h ago")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo


def zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        return None


def offset_of(instant: datetime) -> str:
    """``+02:00``, ``-05:00``, ``+05:45``; ``+00:00`` for UTC."""
    delta = instant.utcoffset() or timedelta(0)
    sign = "-" if delta < timedelta(0) else "+"
    minutes = abs(int(delta.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def local(instant: datetime, timezone: str) -> datetime:
    return instant.astimezone(zone(timezone) or UTC)


def in_zone(instant: datetime, timezone: str) -> str:
    """``2026-03-29 09:00:00 CEST (UTC+02:00)``."""
    shown = local(instant, timezone)
    name = shown.tzname() or ""
    label = f" {name}" if name and not name.startswith(("+", "-")) and name != "UTC" else ""
    return f"{shown:%Y-%m-%d %H:%M:%S}{label} (UTC{offset_of(shown)})"


def utc(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def relative(instant: datetime, now: datetime) -> str:
    """``in 3 min``, ``2 h 5 min ago``, ``now``: rounded to what a reader needs."""
    seconds = (instant - now).total_seconds()
    ahead = seconds >= 0
    left = abs(seconds)
    if left < 1:
        return "now"
    if left < 60:
        text = f"{int(left)} s"
    elif left < 3600:
        text = f"{int(left // 60)} min"
    elif left < 86400:
        hours, rest = divmod(int(left), 3600)
        text = f"{hours} h" + (f" {rest // 60} min" if rest >= 60 else "")
    else:
        days, rest = divmod(int(left), 86400)
        text = f"{days} d" + (f" {rest // 3600} h" if rest >= 3600 else "")
    return f"in {text}" if ahead else f"{text} ago"


@dataclass(frozen=True)
class PreviewRow:
    at: datetime
    shown: str
    offset: str
    relative: str
    offset_before: str | None  # the previous row's offset where this one differs: DST


def preview_rows(runs: list[datetime], timezone: str, now: datetime) -> list[PreviewRow]:
    """The coming runs in the trigger's zone, each that changes the UTC offset marked
    (a DST change falls between it and the run before; the first is compared with now)."""
    rows: list[PreviewRow] = []
    before = offset_of(local(now, timezone))
    for run in runs:
        offset = offset_of(local(run, timezone))
        changed = before if offset != before else None
        rows.append(PreviewRow(run, in_zone(run, timezone), offset, relative(run, now), changed))
        before = offset
    return rows
