"""RFC 5545 recurrence rule text: parsing and validation, with messages that name the part.

This module only reads the text (``FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1``) into
:class:`RuleParts`; what the rule means is :mod:`tickwork.domain.rrule`'s business. Every
error is an :class:`InvalidSchedule` on the field ``rrule`` whose message names the part
at fault and says how to fix it. Beyond RFC 5545's own restrictions (§3.3.10), tickwork
refuses what it cannot compute in bounded time:

* ``COUNT`` at most :data:`MAX_COUNT` (longer series: ``UNTIL``, or the trigger's
  ``max_runs``);
* ``INTERVAL`` at most a century's worth of the frequency (:data:`MAX_INTERVAL`);
* ``BYSECOND=60`` (leap seconds do not exist in tzdata's clocks);
* with FREQ=HOURLY, MINUTELY or SECONDLY, an INTERVAL that does not divide a day combined
  with a BYxxx part that filters the same or a coarser clock unit (``FREQ=HOURLY;
  INTERVAL=5;BYHOUR=9``): which days such a rule fires on depends on where the interval
  falls each day, a pattern only a long walk could find;
* ``BYSETPOS`` lists longer than :data:`MAX_SETPOS`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from tickwork.errors import InvalidSchedule

__all__ = [
    "FREQUENCIES",
    "MAX_COUNT",
    "MAX_INTERVAL",
    "MAX_RULE_LENGTH",
    "MAX_SETPOS",
    "PARTS",
    "WEEKDAYS",
    "RuleParts",
    "parse_rule_text",
]

FIELD = "rrule"
FREQUENCIES = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY")
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
PARTS = (
    "FREQ",
    "UNTIL",
    "COUNT",
    "INTERVAL",
    "BYSECOND",
    "BYMINUTE",
    "BYHOUR",
    "BYDAY",
    "BYMONTHDAY",
    "BYYEARDAY",
    "BYWEEKNO",
    "BYMONTH",
    "BYSETPOS",
    "WKST",
)
MAX_RULE_LENGTH = 1000
MAX_COUNT = 1000
MAX_SETPOS = 60
# A century of each frequency: a rule repeats at least once in a hundred years.
MAX_INTERVAL = {
    "YEARLY": 100,
    "MONTHLY": 1200,
    "WEEKLY": 5217,
    "DAILY": 36524,
    "HOURLY": 876576,
    "MINUTELY": 52594560,
    "SECONDLY": 3155673600,
}
# Seconds in one period of each sub-daily frequency, and in a day.
UNIT_SECONDS = {"HOURLY": 3600, "MINUTELY": 60, "SECONDLY": 1}
DAY_SECONDS = 86400

_NUMBER = re.compile(r"[+-]?[0-9]{1,10}")
_DAY = re.compile(r"([+-]?[0-9]{1,2})?(MO|TU|WE|TH|FR|SA|SU)")
_UNTIL = re.compile(r"([0-9]{8})(?:T([0-9]{6})(Z?))?")
_ORDER = {name: i for i, name in enumerate(PARTS)}


@dataclass(frozen=True)
class RuleParts:
    """A rule as written, validated. Lists are sorted and free of repeats; weekdays are
    0 (Monday) to 6 (Sunday); ``byday`` holds (ordinal or 0, weekday) pairs; ``until`` is
    naive, in UTC when ``until_utc`` and otherwise a wall time of the trigger's zone."""

    freq: str
    interval: int = 1
    count: int | None = None
    until: datetime | None = None
    until_utc: bool = False
    bysecond: tuple[int, ...] | None = None
    byminute: tuple[int, ...] | None = None
    byhour: tuple[int, ...] | None = None
    byday: tuple[tuple[int, int], ...] | None = None
    bymonthday: tuple[int, ...] | None = None
    byyearday: tuple[int, ...] | None = None
    byweekno: tuple[int, ...] | None = None
    bymonth: tuple[int, ...] | None = None
    bysetpos: tuple[int, ...] | None = None
    wkst: int = 0

    def text(self) -> str:
        """The canonical text: parts in RFC 5545's order, upper case, lists sorted.

        Parsing it gives these same parts back.
        """
        items = [f"FREQ={self.freq}"]
        if self.until is not None:
            stamp = self.until.strftime("%Y%m%dT%H%M%S")
            items.append(f"UNTIL={stamp}{'Z' if self.until_utc else ''}")
        if self.count is not None:
            items.append(f"COUNT={self.count}")
        if self.interval != 1:
            items.append(f"INTERVAL={self.interval}")
        for name in ("bysecond", "byminute", "byhour"):
            values = getattr(self, name)
            if values is not None:
                items.append(f"{name.upper()}={_join(values)}")
        if self.byday is not None:
            days = ",".join(f"{n if n else ''}{WEEKDAYS[d]}" for n, d in self.byday)
            items.append(f"BYDAY={days}")
        for name in ("bymonthday", "byyearday", "byweekno", "bymonth", "bysetpos"):
            values = getattr(self, name)
            if values is not None:
                items.append(f"{name.upper()}={_join(values)}")
        if self.wkst != 0:
            items.append(f"WKST={WEEKDAYS[self.wkst]}")
        return ";".join(items)


def _join(values: tuple[int, ...]) -> str:
    return ",".join(str(v) for v in values)


def _bad(message: str) -> InvalidSchedule:
    return InvalidSchedule(FIELD, message)


def parse_rule_text(text: object) -> RuleParts:
    """Read and validate a rule's text (an optional ``RRULE:`` prefix is accepted).

    Raises :class:`InvalidSchedule` (field ``rrule``) naming the part at fault.
    """
    if not isinstance(text, str):
        raise _bad("must be a string such as FREQ=WEEKLY;BYDAY=MO")
    source = text.strip()
    if not source:
        raise _bad("is empty; give a rule such as FREQ=WEEKLY;BYDAY=MO")
    if len(source) > MAX_RULE_LENGTH:
        raise _bad(f"is longer than {MAX_RULE_LENGTH} characters")
    if source[:6].upper() == "RRULE:":
        source = source[6:]
    raw: dict[str, str] = {}
    for item in source.split(";"):
        if not item.strip():
            raise _bad(f"empty part in {text.strip()!r}: separate NAME=VALUE parts with one ';'")
        name, equals, value = item.partition("=")
        name = name.strip().upper()
        if not equals:
            raise _bad(f"{item.strip()!r} is not a NAME=VALUE part (e.g. FREQ=DAILY)")
        if name not in _ORDER:
            raise _bad(f"unknown part {name!r} (known: {', '.join(PARTS)})")
        if name in raw:
            raise _bad(f"{name} is given twice")
        raw[name] = value.strip().upper()
    return _validate(raw)


def _validate(raw: dict[str, str]) -> RuleParts:
    if "FREQ" not in raw:
        raise _bad("FREQ is required (e.g. FREQ=DAILY)")
    freq = raw["FREQ"]
    if freq not in FREQUENCIES:
        raise _bad(f"FREQ={freq} is not one of {', '.join(reversed(FREQUENCIES))}")
    interval = _interval(freq, raw.get("INTERVAL"))
    count = None
    if "COUNT" in raw:
        count = _integer("COUNT", raw["COUNT"])
        if count < 1:
            raise _bad(f"COUNT={count} must be at least 1")
        if count > MAX_COUNT:
            raise _bad(
                f"COUNT={count} is more than {MAX_COUNT}; for a longer series give UNTIL, "
                f"or bound the trigger with max_runs"
            )
    until, until_utc = (None, False)
    if "UNTIL" in raw:
        if count is not None:
            raise _bad("give COUNT or UNTIL, not both (RFC 5545 §3.3.10)")
        until, until_utc = _until(raw["UNTIL"])
    parts = RuleParts(
        freq=freq,
        interval=interval,
        count=count,
        until=until,
        until_utc=until_utc,
        bysecond=_numbers(raw, "BYSECOND", 0, 59),
        byminute=_numbers(raw, "BYMINUTE", 0, 59),
        byhour=_numbers(raw, "BYHOUR", 0, 23),
        byday=_days(raw.get("BYDAY")),
        bymonthday=_numbers(raw, "BYMONTHDAY", 1, 31, signed=True),
        byyearday=_numbers(raw, "BYYEARDAY", 1, 366, signed=True),
        byweekno=_numbers(raw, "BYWEEKNO", 1, 53, signed=True),
        bymonth=_numbers(raw, "BYMONTH", 1, 12),
        bysetpos=_numbers(raw, "BYSETPOS", 1, 366, signed=True),
        wkst=_wkst(raw.get("WKST")),
    )
    _check_combinations(parts)
    return parts


def _integer(name: str, value: str) -> int:
    if not _NUMBER.fullmatch(value):
        raise _bad(f"{name}={value or '(empty)'} is not a whole number")
    return int(value)


def _interval(freq: str, value: str | None) -> int:
    if value is None:
        return 1
    interval = _integer("INTERVAL", value)
    if interval < 1:
        raise _bad(f"INTERVAL={interval} must be at least 1")
    if interval > MAX_INTERVAL[freq]:
        raise _bad(
            f"INTERVAL={interval} is too long for FREQ={freq} (at most {MAX_INTERVAL[freq]}: "
            f"a rule must repeat within a century)"
        )
    return interval


def _until(value: str) -> tuple[datetime, bool]:
    match = _UNTIL.fullmatch(value)
    example = "UNTIL=20261231T235959Z (UTC) or UNTIL=20261231T235959 (wall time)"
    if not match:
        raise _bad(f"UNTIL={value or '(empty)'} is not a date-time such as {example}")
    day, clock, zulu = match.groups()
    if clock is None:
        raise _bad(f"UNTIL={value} is a date; give a date-time such as {example}")
    try:
        until = datetime.strptime(day + clock, "%Y%m%d%H%M%S")  # noqa: DTZ007 - a wall time
    except ValueError:
        raise _bad(f"UNTIL={value} is not a valid date and time") from None
    return until, zulu == "Z"


def _numbers(
    raw: dict[str, str], name: str, low: int, high: int, *, signed: bool = False
) -> tuple[int, ...] | None:
    value = raw.get(name)
    if value is None:
        return None
    found: set[int] = set()
    for item in value.split(","):
        number = _integer(name, item) if item else None
        if number is None:
            raise _bad(f"{name}={value} has an empty item")
        magnitude = abs(number) if signed else number
        if (not signed and item.startswith(("+", "-"))) or not low <= magnitude <= high:
            span = f"{low} to {high} or -{high} to -{low}" if signed else f"{low} to {high}"
            extra = (
                " (leap seconds are not supported)" if name == "BYSECOND" and number == 60 else ""
            )
            raise _bad(f"{name}={item} is out of range {span}{extra}")
        found.add(number)
    if name == "BYSETPOS" and len(found) > MAX_SETPOS:
        raise _bad(f"BYSETPOS lists {len(found)} positions; at most {MAX_SETPOS}")
    return tuple(sorted(found))


def _days(value: str | None) -> tuple[tuple[int, int], ...] | None:
    if value is None:
        return None
    found: set[tuple[int, int]] = set()
    for item in value.split(","):
        match = _DAY.fullmatch(item)
        if not match:
            raise _bad(
                f"BYDAY={item or '(empty)'} is not a weekday (MO, TU, WE, TH, FR, SA, SU, "
                f"optionally with a position such as 1MO or -1FR)"
            )
        ordinal_text, day = match.groups()
        ordinal = int(ordinal_text) if ordinal_text else 0
        if ordinal_text and not 1 <= abs(ordinal) <= 53:
            raise _bad(f"BYDAY={item}: the position must be 1 to 53 or -1 to -53")
        found.add((ordinal, WEEKDAYS.index(day)))
    return tuple(sorted(found, key=lambda pair: (pair[1], pair[0])))


def _wkst(value: str | None) -> int:
    if value is None:
        return 0
    if value not in WEEKDAYS:
        raise _bad(f"WKST={value or '(empty)'} is not a weekday ({', '.join(WEEKDAYS)})")
    return WEEKDAYS.index(value)


def _check_combinations(parts: RuleParts) -> None:
    freq = parts.freq
    if parts.bysetpos is not None and not any(
        getattr(parts, name) is not None
        for name in (
            "bysecond",
            "byminute",
            "byhour",
            "byday",
            "bymonthday",
            "byyearday",
            "byweekno",
            "bymonth",
        )
    ):
        raise _bad("BYSETPOS requires another BYxxx part")
    if parts.byweekno is not None and freq != "YEARLY":
        raise _bad(f"BYWEEKNO works only with FREQ=YEARLY, not FREQ={freq}")
    if parts.byyearday is not None and freq in ("MONTHLY", "WEEKLY", "DAILY"):
        raise _bad(f"BYYEARDAY cannot be used with FREQ={freq} (RFC 5545 §3.3.10)")
    if parts.bymonthday is not None and freq == "WEEKLY":
        raise _bad("BYMONTHDAY cannot be used with FREQ=WEEKLY; use BYDAY")
    if parts.byday is not None:
        ordinals = [f"{n}{WEEKDAYS[d]}" for n, d in parts.byday if n]
        if ordinals and freq not in ("MONTHLY", "YEARLY"):
            raise _bad(
                f"BYDAY={ordinals[0]}: a position before the weekday needs FREQ=MONTHLY or "
                f"FREQ=YEARLY (with FREQ={freq} write the weekday alone)"
            )
        if ordinals and freq == "YEARLY" and parts.byweekno is not None:
            raise _bad(
                f"BYDAY={ordinals[0]}: a position before the weekday cannot be combined "
                f"with BYWEEKNO"
            )
        too_far = [n for n, _ in parts.byday if abs(n) > 5]
        if too_far and (freq == "MONTHLY" or parts.bymonth is not None):
            raise _bad(
                f"BYDAY position {too_far[0]} is out of range within a month (1 to 5 or -1 to -5)"
            )
    if freq in UNIT_SECONDS and parts.interval > 1:
        period = parts.interval * UNIT_SECONDS[freq]
        if DAY_SECONDS % period:
            filters = {
                "HOURLY": ("byhour",),
                "MINUTELY": ("byhour", "byminute"),
                "SECONDLY": ("byhour", "byminute", "bysecond"),
            }[freq]
            used = [name.upper() for name in filters if getattr(parts, name) is not None]
            if used:
                raise _bad(
                    f"INTERVAL={parts.interval} with FREQ={freq} does not divide a day, so it "
                    f"cannot be combined with {used[0]}: use an INTERVAL that divides a day "
                    f"(e.g. {_divisor_hint(freq)}), or drop {used[0]}"
                )


def _divisor_hint(freq: str) -> str:
    return {"HOURLY": "1, 2, 3, 4, 6, 8 or 12", "MINUTELY": "5, 10, 15, 30, 60 or 90"}.get(
        freq, "10, 15, 30 or 60"
    )
