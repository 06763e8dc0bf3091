"""Recurrence rules in words, for previews and trigger listings."""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import datetime

from tickwork.domain.rrule_parse import UNIT_SECONDS, RuleParts

__all__ = ["describe_rule"]

_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTH_NAMES = tuple(calendar.month_name)

# ---------------------------------------------------------------------------------------

_UNITS = {
    "YEARLY": ("Yearly", "year"),
    "MONTHLY": ("Monthly", "month"),
    "WEEKLY": ("Weekly", "week"),
    "DAILY": ("Daily", "day"),
    "HOURLY": ("Hourly", "hour"),
    "MINUTELY": ("Every minute", "minute"),
    "SECONDLY": ("Every second", "second"),
}


def _ordinal(n: int) -> str:
    if n == -1:
        return "last"
    if n < 0:
        return f"{_ordinal(-n)} to last"
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def describe_rule(parts: RuleParts, times: Sequence[int], start: datetime) -> str:
    """Words for a rule, e.g. "Every 2 weeks on Tuesday at 09:00, from ...".

    ``times`` are the seconds of the day it fires at (shown when there are few).
    """
    word, unit = _UNITS[parts.freq]
    text = word if parts.interval == 1 else f"Every {parts.interval} {unit}s"
    if parts.bymonth:
        text += " in " + ", ".join(_MONTH_NAMES[m] for m in parts.bymonth)
    if parts.byweekno:
        text += " in week " + ", ".join(str(w) for w in parts.byweekno)
    if parts.byyearday:
        text += " on day " + ", ".join(str(d) for d in parts.byyearday) + " of the year"
    if parts.bymonthday:
        text += " on day " + ", ".join(_monthday(d) for d in parts.bymonthday) + " of the month"
    if parts.byday:
        text += " on " + ", ".join(
            f"the {_ordinal(n)} {_DAY_NAMES[d]}" if n else _DAY_NAMES[d] for n, d in parts.byday
        )
    elif parts.freq == "WEEKLY":
        text += f" on {_DAY_NAMES[start.weekday()]}"
    if parts.bysetpos:
        text += " (the " + ", ".join(_ordinal(p) for p in parts.bysetpos) + " of each " + unit
        text += ")"
    if parts.freq not in UNIT_SECONDS and len(times) <= 6:
        text += " at " + ", ".join(_clock(t) for t in times)
    elif parts.byhour and len(parts.byhour) < 24:
        text += " during hour " + ", ".join(f"{h:02d}" for h in parts.byhour)
    text += f", from {start.isoformat(sep=' ')}"
    if parts.count is not None:
        text += f", {parts.count} time{'s' if parts.count != 1 else ''}"
    if parts.until is not None:
        zone = " UTC" if parts.until_utc else ""
        text += f", until {parts.until.isoformat(sep=' ')}{zone}"
    return text


def _monthday(day: int) -> str:
    return str(day) if day > 0 else ("the last" if day == -1 else f"{-day}th to last")


def _clock(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")
