"""Cron expressions: validation, the DST rule of SPEC §3, and descriptions.

This is the only module that imports the cron library. cronsim does the calendar work on
*naive wall times* (no time zone at all); :mod:`tickwork.domain.walltime` maps wall times
to instants, so one rule holds for 5- and 6-field expressions (and for RFC 5545 rules)
alike:

* A *wildcard* expression (its minute or hour field begins with ``*``) follows elapsed
  time: it fires at every instant whose local wall time matches. Wall times inside a
  spring-forward gap never occur, so they never fire; both copies of a repeated
  fall-back hour fire.
* Every other expression is *fixed-time*: each matching wall time fires once, at its first
  occurrence when it occurs twice, and at the first instant after the gap when it does not
  occur at all (several matching times in one gap collapse into one firing).

Every answer is strictly after the instant asked about and has whole seconds.
"""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, tzinfo

from cronsim import CronSim, CronSimError

from tickwork.domain.walltime import next_instant
from tickwork.errors import InvalidSchedule

__all__ = ["CronExpression", "parse_cron"]

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
_MONTH_NAMES = [calendar.month_name[i] for i in range(13)]
_MAX_DAYS = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
# cronsim works on naive wall times here; this is one, not an instant.
_WALL_EPOCH = datetime(2000, 1, 1)  # noqa: DTZ001
_EXPRESSION_FIELD = "cron_expression"


@dataclass(frozen=True)
class _FieldSpec:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0


_SECOND = _FieldSpec("second", 0, 59)
_MINUTE = _FieldSpec("minute", 0, 59)
_HOUR = _FieldSpec("hour", 0, 23)
_DOM = _FieldSpec("day-of-month", 1, 31)
_MONTH = _FieldSpec("month", 1, 12, tuple(_MONTHS), 1)
_DOW = _FieldSpec("day-of-week", 0, 7, tuple(_DAYS), 0)


def _bad(spec: _FieldSpec, message: str) -> InvalidSchedule:
    return InvalidSchedule(_EXPRESSION_FIELD, f"{spec.name}: {message}")


def _is_number(text: str) -> bool:
    # str.isdigit alone accepts "²" and "١", which int() then rejects or reads as digits.
    return text.isascii() and text.isdigit()


def _value(spec: _FieldSpec, text: str) -> int:
    if spec.names and text.upper() in spec.names:
        return spec.names.index(text.upper()) + spec.name_base
    if not text:
        raise _bad(spec, "empty value")
    if not _is_number(text):
        hint = f" (names: {', '.join(spec.names)})" if spec.names else ""
        raise _bad(spec, f"{text!r} is not a number{hint}")
    value = int(text)
    if not spec.low <= value <= spec.high:
        raise _bad(spec, f"{value} is out of range {spec.low}-{spec.high}")
    return value


def _term(spec: _FieldSpec, term: str) -> set[int] | None:
    """Validate one comma-separated term; return its plain values (None for L/#/W forms).

    Names and ``L`` may be written in either case; messages quote the term as written.
    """
    key = term.upper()
    if spec is _DOM and key in ("L", "LW"):
        return None
    if spec is _DOW and key.endswith("L") and len(key) > 1:
        _value(spec, term[:-1]) if _is_number(term[:-1]) else _raise_last(spec, term)
        return None
    if spec is _DOW and "#" in term:
        day, _, nth = term.partition("#")
        _value(spec, day)
        if not _is_number(nth) or not 1 <= int(nth) <= 5:
            raise _bad(spec, f"'#{nth}' must be #1 to #5 in {term!r}")
        return None
    step = 1
    body = term
    if "/" in term:
        body, _, step_text = term.partition("/")
        if not _is_number(step_text):
            raise _bad(spec, f"step {step_text!r} in {term!r} is not a number")
        step = int(step_text)
        if step == 0:
            raise _bad(spec, f"step 0 in {term!r} is not allowed")
    if body == "*":
        low, high = spec.low, spec.high
    elif "-" in body:
        first, _, last = body.partition("-")
        if not first or not last:
            raise _bad(spec, f"range {body!r} is missing a bound")
        low, high = _value(spec, first), _value(spec, last)
        if high < low:
            raise _bad(spec, f"range {body!r} runs backwards")
    else:
        low = _value(spec, body)
        high = spec.high if "/" in term else low
    return set(range(low, high + 1, step))


def _raise_last(spec: _FieldSpec, term: str) -> None:
    raise _bad(spec, f"{term!r}: use a weekday number before L (5L = last Friday)")


def _field(spec: _FieldSpec, text: str) -> set[int] | None:
    """Validate a field; return the plain values it names (None if it uses L/#/W)."""
    values: set[int] = set()
    special = False
    for term in text.split(","):
        if not term:
            raise _bad(spec, f"empty list item in {text!r}")
        got = _term(spec, term)
        if got is None:
            special = True
        else:
            values |= got
    return None if special else values


def _check_possible(dom: str, dom_values: set[int] | None, dow: str, months: set[int]) -> None:
    """Reject day-of-month values that no selected month has (``0 0 31 2 *``)."""
    if dom_values is None or not dom_values:
        return
    # With both day fields restricted, Vixie cron ORs them: the weekday can still fire.
    if not (dom.startswith("*") or dow.startswith("*")):
        return
    longest = max(_MAX_DAYS[m] for m in months)
    if min(dom_values) > longest:
        names = ", ".join(_MONTH_NAMES[m] for m in sorted(months))
        raise InvalidSchedule(
            _EXPRESSION_FIELD,
            f"day-of-month: {min(dom_values)} never occurs in {names}, so this never fires",
        )


@dataclass(frozen=True)
class CronExpression:
    """A validated cron expression. Build one with :func:`parse_cron`."""

    source: str
    expanded: str
    has_seconds: bool
    wildcard: bool

    def next_after(self, after: datetime, zone: tzinfo) -> datetime | None:
        """The first firing strictly after ``after`` (aware), as UTC; None if there is none.

        cronsim gives up after 50 years without a match, which ends the walls.
        """
        if after.tzinfo is None:
            raise ValueError("next_after needs an aware datetime")
        return next_instant(self._walls, after, zone, wildcard=self.wildcard)

    def describe(self) -> str:
        """A human-readable description, e.g. "At 09:30 on Monday through Friday"."""
        # cronsim writes every number with "th" ("the 31th day"): give each its suffix.
        return _NUMBERED.sub(_ordinal, str(CronSim(self.expanded, _WALL_EPOCH).explain()))

    # -- internals -------------------------------------------------------------------

    def _walls(self, after: datetime) -> Iterator[datetime]:
        """Matching naive wall times strictly after the naive ``after``, in order."""
        return CronSim(self.expanded, after)


@functools.lru_cache(maxsize=4096)
def parse_cron(expression: str) -> CronExpression:
    """Validate ``expression``; raise :class:`InvalidSchedule` naming the field at fault."""
    if not isinstance(expression, str):
        raise InvalidSchedule(_EXPRESSION_FIELD, "must be a string")
    source = expression.strip()
    if not source:
        raise InvalidSchedule(_EXPRESSION_FIELD, "is empty")
    text = source
    if text.startswith("@"):
        alias = text.lower()
        if alias not in ALIASES:
            raise InvalidSchedule(
                _EXPRESSION_FIELD,
                f"unknown alias {text!r} (known: {', '.join(ALIASES)})",
            )
        text = ALIASES[alias]
    # Validate the fields as written so that messages quote the user's own spelling.
    parts = text.split()
    if len(parts) not in (5, 6):
        raise InvalidSchedule(
            _EXPRESSION_FIELD,
            f"expected 5 fields (minute hour day-of-month month day-of-week) or 6 with a "
            f"leading second field, got {len(parts)}",
        )
    has_seconds = len(parts) == 6
    fields = parts if has_seconds else ["0", *parts]
    specs = (_SECOND, _MINUTE, _HOUR, _DOM, _MONTH, _DOW)
    values = [_field(spec, text) for spec, text in zip(specs, fields, strict=True)]
    months = values[4]
    assert months is not None
    _check_possible(fields[3], values[3], fields[5], months)
    expanded = " ".join(parts).upper()
    try:
        probe = CronSim(expanded, _WALL_EPOCH)
    except CronSimError as exc:  # pragma: no cover - the checks above are stricter
        raise InvalidSchedule(_EXPRESSION_FIELD, str(exc)) from exc
    try:
        next(probe)
    except StopIteration:
        raise InvalidSchedule(_EXPRESSION_FIELD, "this expression never fires") from None
    return CronExpression(
        source=source,
        expanded=expanded,
        has_seconds=has_seconds,
        wildcard=fields[1].startswith("*") or fields[2].startswith("*"),
    )


def fires_per_day(expression: CronExpression) -> int:
    """How many wall times the expression matches on a day it fires at all: the number
    of values of its second, minute and hour fields multiplied (a 5-field expression has
    the one second 0). Day-of-month, month and day-of-week only decide *which* days fire,
    so this is the expression's rate on its busiest days, counted on a 24-hour day."""
    parts = expression.expanded.split()
    if not expression.has_seconds:
        parts = ["0", *parts]
    count = 1
    for spec, text in zip((_SECOND, _MINUTE, _HOUR), parts[:3], strict=True):
        values = _field(spec, text)
        assert values is not None  # L, # and W exist only in the day fields
        count *= len(values)
    return count


_NUMBERED = re.compile(r"\b(\d+)th\b")


def _ordinal(match: re.Match[str]) -> str:
    """``21th`` → ``21st``; 11, 12 and 13 keep ``th``."""
    number = int(match.group(1))
    suffix = (
        "th" if number % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    )
    return f"{match.group(1)}{suffix}"
