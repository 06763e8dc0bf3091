"""RFC 5545 recurrence rules: expansion into wall times, and the DST rule of SPEC §3.

This is the only module that imports python-dateutil. A rule (``FREQ=MONTHLY;BYDAY=MO,
TU,WE,TH,FR;BYSETPOS=-1``) is anchored at ``start``, a naive wall time of the trigger's
zone, and names naive wall times from there on; :mod:`tickwork.domain.walltime` maps them
to instants with the rule cron uses:

* A rule that fires *every hour* (FREQ=HOURLY with INTERVAL=1 and no BYHOUR narrowing
  it, FREQ=MINUTELY or SECONDLY with an interval dividing the hour, or BYHOUR listing
  0-23) or *every minute* (BYMINUTE listing 0-59) is a *wildcard* rule: it follows
  elapsed time, fires both copies of a repeated hour and never fires inside a gap.
* Every other rule is *fixed-time*: each wall time fires once, at its first occurrence,
  or at the first instant after a gap.

``start`` fires only if it matches the rule (RFC 5545's DTSTART always counts as the
first instance; here it does not). COUNT and UNTIL are bounds on instants, applied after
mapping: see :meth:`RecurrenceRule.last_instant`.

How the wall times are found, in bounded time from any instant (no walk from ``start``):

* The calendar work of FREQ=YEARLY and FREQ=MONTHLY rules (BYWEEKNO, BYYEARDAY,
  BYMONTHDAY, BYDAY with positions, BYMONTH) is dateutil's: it expands one period (a
  year, a month) of a *representative year* at a time. A year's days depend only on its
  *type* (weekday of 1 January, leap or not, previous year leap or not), so each of the
  21 types is expanded at most once per rule and the tables are reused for every year.
  BYSETPOS then picks positions in the period's (day × time of day) set by index, as
  dateutil does, without listing the set.
* WEEKLY, DAILY and sub-daily rules only *filter* days (BYMONTH, BYMONTHDAY, BYYEARDAY,
  BYDAY without positions), so a day's status is a table lookup by year type too.
* Times of day are a sorted list of seconds (the BYHOUR × BYMINUTE × BYSECOND product,
  or, for FREQ=HOURLY/MINUTELY/SECONDLY with an interval dividing a day, the clock
  readings on the interval's grid that pass the filters); a sub-daily interval that does
  not divide a day is walked as a stride of periods, skipping filtered days at once.
* The search stops :data:`HORIZON` after the instant asked about (a Gregorian cycle:
  four hundred years): a rule that does not fire within it is treated as firing no more.

One module, longer than most: it is the only module that imports python-dateutil (an
import-linter contract), so the expansion, the DST rule and the per-year cache that keep
dateutil's objects behind this module's interface stay in it; parsing and describing
rules are modules of their own (``rrule_parse``, ``rrule_describe``).

One module, longer than most: expansion, the DST rule and the search for the next
instant share one representation of a rule and are read together.
"""

from __future__ import annotations

import bisect
import calendar
import functools
import itertools
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import MAXYEAR, UTC, date, datetime, time, timedelta, tzinfo

from dateutil import rrule as du

from tickwork.domain.rrule_describe import describe_rule
from tickwork.domain.rrule_parse import (
    DAY_SECONDS,
    UNIT_SECONDS,
    RuleParts,
    parse_rule_text,
)
from tickwork.domain.walltime import fixed_instant, next_instant
from tickwork.errors import InvalidSchedule

__all__ = ["HORIZON", "RecurrenceRule", "parse_rrule", "parse_rrule_start"]

FIELD = "rrule"
START_FIELD = "rrule_start"
# One Gregorian cycle (146,097 days: the calendar, weekdays included, repeats after it),
# plus a day on each side for offsets.
HORIZON = timedelta(days=146097 + 2)
_LAST_DAY = date(MAXYEAR, 12, 31)
_ONE_SECOND = timedelta(seconds=1)
_MIDNIGHT = time(0, 0)
_MONTH_NAMES = tuple(calendar.month_name)


def _year_key(year: int) -> tuple[int, bool, bool]:
    """What a year's calendar depends on: 1 January's weekday, leap, previous leap."""
    return date(year, 1, 1).weekday(), calendar.isleap(year), calendar.isleap(year - 1)


# A representative year of each type, for dateutil to expand.
_REPRESENTATIVE: dict[tuple[int, bool, bool], int] = {}
for _year in range(2001, 2401):
    _REPRESENTATIVE.setdefault(_year_key(_year), _year)


def parse_rrule_start(value: object) -> datetime:
    """``rrule_start``: a wall time without offset, whole seconds (``2026-01-05T09:00:00``)."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidSchedule(
                START_FIELD,
                f"{value!r} is not a wall time such as 2026-01-05T09:00:00",
            ) from None
    else:
        raise InvalidSchedule(START_FIELD, "give a wall time such as 2026-01-05T09:00:00")
    if parsed.tzinfo is not None:
        raise InvalidSchedule(
            START_FIELD,
            f"{value!s} has a UTC offset; give the wall time alone (it is read in the "
            f"trigger's time zone), e.g. 2026-01-05T09:00:00",
        )
    if parsed.microsecond:
        raise InvalidSchedule(START_FIELD, f"{value!s} must be whole seconds")
    return parsed.replace(fold=0)


@functools.lru_cache(maxsize=1024)
def parse_rrule(text: str, start: datetime) -> RecurrenceRule:
    """Validate a rule and its naive ``start``; raise :class:`InvalidSchedule` naming the
    part at fault (field ``rrule``, or ``rrule_start``)."""
    start = parse_rrule_start(start)
    parts = parse_rule_text(text)
    rule = RecurrenceRule(parts, start)
    if rule.engine.never:
        raise InvalidSchedule(FIELD, f"never fires: {rule.engine.never}")
    if next(rule.walls(start - _ONE_SECOND), None) is None:
        raise InvalidSchedule(
            FIELD,
            f"never fires: no date and time matches it within {HORIZON.days // 365} years "
            f"of rrule_start {start.isoformat()}",
        )
    return rule


@dataclass(frozen=True, eq=False)
class RecurrenceRule:
    """A validated rule anchored at a naive ``start``. Build one with :func:`parse_rrule`."""

    parts: RuleParts
    start: datetime
    engine: _Engine = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "engine", _Engine(self.parts, self.start))

    @property
    def text(self) -> str:
        """The rule's canonical text (what an export writes back)."""
        return self.parts.text()

    @property
    def wildcard(self) -> bool:
        """True when the rule follows elapsed time (SPEC §3's wildcard rule)."""
        return self.engine.wildcard

    def fires_per_day(self) -> int:
        """How many wall times the rule names on a day it fires at all (its busiest days),
        for the firing-rate quota: the clock readings of one day, or for an interval that
        does not divide a day, the most its stride fits into one."""
        engine = self.engine
        if engine.stride_period:
            per_day = -(-DAY_SECONDS // engine.stride_period)  # rounded up
            return min(DAY_SECONDS, per_day * max(1, len(engine.offsets)))
        return min(DAY_SECONDS, len(engine.times))

    def walls(self, after: datetime) -> Iterator[datetime]:
        """The rule's naive wall times strictly after naive ``after`` (and at or after
        ``start``), in order, within :data:`HORIZON`; COUNT and UNTIL are not applied."""
        return self.engine.walls(after)

    def next_after(self, after: datetime, zone: tzinfo) -> datetime | None:
        """The first firing strictly after ``after`` (aware), as UTC, ignoring COUNT and
        UNTIL (see :meth:`last_instant`); None when there is none within the horizon."""
        if after.tzinfo is None:
            raise ValueError("next_after needs an aware datetime")
        return next_instant(self.engine.walls, after, zone, wildcard=self.wildcard, horizon=HORIZON)

    def last_instant(self, zone: tzinfo) -> datetime | None:
        """The last instant the rule may fire at in ``zone``: the COUNT-th firing (or the
        last one before the horizon, if fewer), or UNTIL, or None for neither.

        UNTIL with ``Z`` is an instant; without it, a wall time read in ``zone`` by the
        fixed-time rule (its first occurrence, or the end of its gap). Costs up to COUNT
        firings, so compute it once per schedule.
        """
        parts = self.parts
        if parts.until is not None:
            if parts.until_utc:
                return parts.until.replace(tzinfo=UTC)
            return fixed_instant(parts.until, zone)
        if parts.count is None:
            return None
        last: datetime | None = None
        cursor = fixed_instant(self.start, zone) - timedelta(microseconds=1)
        if self.wildcard:
            for _ in range(parts.count):
                found = self.next_after(cursor, zone)
                if found is None:
                    break
                last = cursor = found
            return last
        # Fixed-time: each wall time maps to its instant; several in one gap share one.
        seen = 0
        for wall in self.walls(self.start - _ONE_SECOND):
            try:
                instant = fixed_instant(wall, zone)
            except OverflowError:
                break
            if last is None or instant > last:
                last = instant
                seen += 1
                if seen == parts.count:
                    break
        return last

    def describe(self) -> str:
        """A human-readable description, e.g. "Every 2 weeks on Tuesday at 09:00"."""
        return describe_rule(self.parts, self.engine.times, self.start)


# ---------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------


class _DayFilter:
    """BYMONTH, BYMONTHDAY, BYYEARDAY and BYDAY (weekdays alone) as a per-day test."""

    def __init__(self, parts: RuleParts, weekdays: tuple[int, ...] | None) -> None:
        self.months = frozenset(parts.bymonth) if parts.bymonth else None
        self.monthdays = frozenset(parts.bymonthday) if parts.bymonthday else None
        self.yeardays = frozenset(parts.byyearday) if parts.byyearday else None
        self.weekdays = frozenset(weekdays) if weekdays is not None else None
        self._tables: dict[tuple[int, bool, bool], tuple[tuple[int, ...], bytes]] = {}

    def passes(self, day: date) -> bool:
        _, mask = self.table(day.year)
        return bool(mask[day.timetuple().tm_yday - 1])

    def table(self, year: int) -> tuple[tuple[int, ...], bytes]:
        """The days of ``year`` (0-based day of year) that pass, and a mask of them."""
        key = _year_key(year)
        found = self._tables.get(key)
        if found is None:
            found = self._build(_REPRESENTATIVE[key])
            self._tables[key] = found
        return found

    def _build(self, year: int) -> tuple[tuple[int, ...], bytes]:
        length = 366 if calendar.isleap(year) else 365
        first = date(year, 1, 1)
        passing = []
        for doy in range(length):
            day = first + timedelta(days=doy)
            if self.months is not None and day.month not in self.months:
                continue
            if self.monthdays is not None:
                last = calendar.monthrange(year, day.month)[1]
                if day.day not in self.monthdays and day.day - last - 1 not in self.monthdays:
                    continue
            if self.yeardays is not None and (
                doy + 1 not in self.yeardays and doy - length not in self.yeardays
            ):
                continue
            if self.weekdays is not None and day.weekday() not in self.weekdays:
                continue
            passing.append(doy)
        mask = bytearray(length)
        for doy in passing:
            mask[doy] = 1
        return tuple(passing), bytes(mask)

    def first_from(self, day: date, limit: date) -> date | None:
        """The first passing day at or after ``day`` and at or before ``limit``."""
        year = day.year
        doy = day.timetuple().tm_yday - 1
        while year <= limit.year:
            days, _ = self.table(year)
            i = bisect.bisect_left(days, doy)
            if i < len(days):
                found = date(year, 1, 1) + timedelta(days=days[i])
                return found if found <= limit else None
            year += 1
            doy = 0
        return None


@dataclass(frozen=True)
class _Occurrence:
    """One day of a rule and the seconds of that day it fires at (sorted)."""

    day: date
    times: Sequence[int]


def _select(
    days: Sequence[date], times: Sequence[int], positions: tuple[int, ...]
) -> list[_Occurrence]:
    """BYSETPOS over the (day × time) set of one period, by index (as dateutil does)."""
    total = len(days) * len(times)
    picked: set[tuple[date, int]] = set()
    for pos in positions:
        index = pos - 1 if pos > 0 else total + pos
        if 0 <= index < total:
            picked.add((days[index // len(times)], times[index % len(times)]))
    by_day: dict[date, list[int]] = {}
    for day, second in sorted(picked):
        by_day.setdefault(day, []).append(second)
    return [_Occurrence(day, tuple(seconds)) for day, seconds in by_day.items()]


def _pick(values: Sequence[int], positions: tuple[int, ...]) -> tuple[int, ...]:
    """BYSETPOS over one period's sorted values."""
    total = len(values)
    chosen = {values[p - 1 if p > 0 else total + p] for p in positions if -total <= p <= total}
    return tuple(sorted(chosen))


class _Engine:
    """Everything about a rule that does not depend on the instant asked about."""

    def __init__(self, parts: RuleParts, start: datetime) -> None:
        self.parts = parts
        self.start = start
        self.freq = parts.freq
        self.interval = parts.interval
        self.never: str | None = None
        self.setpos = parts.bysetpos
        self._coarse: dict[tuple[int, bool, bool], list[tuple[int, ...]]] = {}
        self._occurrences: dict[tuple[int, int], list[_Occurrence]] = {}
        self.stride_period = 0
        self.offsets: tuple[int, ...] = ()
        self.times: Sequence[int] = ()
        plain_days = tuple(sorted({d for n, d in parts.byday})) if parts.byday is not None else None
        coarse = self.freq in ("YEARLY", "MONTHLY")
        day_parts = (parts.byweekno, parts.byyearday, parts.bymonthday, parts.byday)
        self.bymonth = parts.bymonth
        self.bymonthday = parts.bymonthday
        self.byday = parts.byday
        if coarse and all(p is None for p in day_parts):
            # dateutil's (and RFC 5545's) implicit day: the start's day of the month, and
            # for a yearly rule its month too, unless BYMONTH says otherwise.
            self.bymonthday = (start.day,)
            if self.freq == "YEARLY" and self.bymonth is None:
                self.bymonth = (start.month,)
        if self.freq == "WEEKLY" and plain_days is None:
            plain_days = (start.weekday(),)
        self.filter: _DayFilter | None = None
        if not coarse:
            weekly = self.freq == "WEEKLY"
            candidate = _DayFilter(
                parts, plain_days if (weekly or parts.byday is not None) else None
            )
            if any(
                v is not None
                for v in (
                    candidate.months,
                    candidate.monthdays,
                    candidate.yeardays,
                    candidate.weekdays,
                )
            ):
                self.filter = candidate
        self._set_times()
        self.wildcard = self._is_wildcard()
        if not self.times and not self.offsets:
            self.never = "no time of day matches" + self._time_hint()
        elif self._no_day_matches():
            self.never = "no date matches " + self._day_hint()

    # -- times of day ------------------------------------------------------------------

    def _set_times(self) -> None:
        parts, start = self.parts, self.start
        hours = parts.byhour if parts.byhour is not None else (start.hour,)
        minutes = parts.byminute if parts.byminute is not None else (start.minute,)
        seconds = parts.bysecond if parts.bysecond is not None else (start.second,)
        freq, n = self.freq, self.interval
        if freq not in UNIT_SECONDS:
            product = [h * 3600 + m * 60 + s for h in hours for m in minutes for s in seconds]
            product.sort()
            if freq == "DAILY" and self.setpos is not None:
                self.times = _pick(product, self.setpos)
                self.setpos = None
            else:
                self.times = _compact(product)
            return
        unit = UNIT_SECONDS[freq]
        # What one period (an hour, a minute, a second) expands to, BYSETPOS applied.
        if freq == "HOURLY":
            inner = sorted(m * 60 + s for m in minutes for s in seconds)
        elif freq == "MINUTELY":
            inner = sorted(seconds)
        else:
            inner = [0]
        offsets = _pick(inner, self.setpos) if self.setpos is not None else tuple(inner)
        if DAY_SECONDS % (n * unit):
            self.stride_period = n * unit
            self.offsets = offsets
            return
        # The interval divides a day: every day has the same clock readings on its grid.
        anchor = (start.hour * 3600 + start.minute * 60 + start.second) // unit
        per_day = DAY_SECONDS // unit
        minute_filter = parts.byminute if unit < 3600 else None
        second_filter = parts.bysecond if unit == 1 else None
        unfiltered = parts.byhour is None and minute_filter is None and second_filter is None
        if unfiltered and len(offsets) == 1:
            self.times = range((anchor % n) * unit + offsets[0], DAY_SECONDS, n * unit)
            return
        hours_ok: Sequence[int] = parts.byhour if parts.byhour is not None else range(24)
        minutes_ok: Sequence[int] = minute_filter if minute_filter is not None else range(60)
        seconds_ok: Sequence[int] = second_filter if second_filter is not None else range(60)
        if unit == 3600:
            product = [h * 3600 for h in hours_ok]
        elif unit == 60:
            product = [h * 3600 + m * 60 for h in hours_ok for m in minutes_ok]
        elif len(hours_ok) * len(minutes_ok) * len(seconds_ok) <= per_day // n:
            product = [
                h * 3600 + m * 60 + s for h in hours_ok for m in minutes_ok for s in seconds_ok
            ]
        else:
            product = []
            for slot in range(anchor % n, per_day, n):
                begin = slot * unit
                hour, rest = divmod(begin, 3600)
                if (
                    (parts.byhour is None or hour in parts.byhour)
                    and (minute_filter is None or rest // 60 in minute_filter)
                    and (second_filter is None or rest % 60 in second_filter)
                ):
                    product.append(begin)
            anchor, n = 0, 1  # already on the grid
        begins = [b for b in product if (b // unit - anchor) % n == 0]
        self.times = _compact(sorted(b + o for b in begins for o in offsets))

    def _is_wildcard(self) -> bool:
        parts = self.parts
        every_hour_of_day = parts.byhour is not None and len(parts.byhour) == 24
        every_minute = parts.byminute is not None and len(parts.byminute) == 60
        if self.freq == "HOURLY":
            hourly = self.interval == 1 and parts.byhour is None
            return hourly or every_hour_of_day or every_minute
        if self.freq in ("MINUTELY", "SECONDLY"):
            divides_hour = 3600 % (self.interval * UNIT_SECONDS[self.freq]) == 0
            return divides_hour or every_hour_of_day or every_minute
        return every_hour_of_day or every_minute

    def _time_hint(self) -> str:
        parts = self.parts
        if parts.bysetpos is not None and not self.offsets and self.freq in UNIT_SECONDS:
            return ": BYSETPOS picks no position that exists in one period"
        if self.freq in UNIT_SECONDS and self.interval > 1:
            return (
                f": INTERVAL={self.interval} counted from rrule_start "
                f"{self.start.time().isoformat()} never reaches the clock readings that "
                f"BYHOUR/BYMINUTE/BYSECOND allow"
            )
        if parts.bysetpos is not None:
            return ": BYSETPOS picks no position that exists"
        return ""

    # -- days ----------------------------------------------------------------------------

    def _no_day_matches(self) -> bool:
        for year in _REPRESENTATIVE.values():
            if self.freq in ("YEARLY", "MONTHLY"):
                if any(self._periods(year)):
                    return False
            elif self.filter is None or self.filter.table(year)[0]:
                return False
        return True

    def _day_hint(self) -> str:
        parts = self.parts
        named = [
            f"{name.upper()}={','.join(str(v) for v in getattr(parts, name))}"
            for name in ("bymonth", "byweekno", "byyearday", "bymonthday")
            if getattr(parts, name) is not None
        ]
        if parts.byday is not None:
            named.append("BYDAY=" + parts.text().split("BYDAY=")[1].split(";")[0])
        if self.bymonthday != parts.bymonthday:
            named.append(f"the day of rrule_start ({self.start.day})")
        if self.bymonth != parts.bymonth:
            named.append(f"the month of rrule_start ({_MONTH_NAMES[self.start.month]})")
        return " with ".join(named) + " (check that those days exist in those months)"

    def _periods(self, year: int) -> list[tuple[int, ...]]:
        """For YEARLY/MONTHLY rules: the days (0-based day of year) of each period of
        ``year`` (one for a yearly rule, twelve for a monthly one), from dateutil."""
        key = _year_key(year)
        found = self._coarse.get(key)
        if found is None:
            found = self._expand(_REPRESENTATIVE[key])
            self._coarse[key] = found
        return found

    def _expand(self, year: int) -> list[tuple[int, ...]]:
        parts = self.parts
        # dateutil requires a day to match both BYDAY's plain weekdays and its positioned
        # ones (BYDAY=MO,4TU gives nothing), where RFC 5545 means either: expand each
        # group on its own and unite the days (BYSETPOS is applied afterwards, by us).
        groups: list[list[du.weekday] | None] = [None]
        if self.byday is not None:
            plain = [du.weekdays[d] for n, d in self.byday if not n]
            ordinal = [du.weekdays[d](n) for n, d in self.byday if n]
            groups = [g for g in (plain, ordinal) if g]
        first = date(year, 1, 1)
        if self.freq == "YEARLY":
            # dateutil works on naive wall times; these are period starts, not instants.
            starts, far = [datetime(year, 1, 1)], 10000  # noqa: DTZ001
        else:
            starts = [datetime(year, m, 1) for m in range(1, 13)]  # noqa: DTZ001
            far = 120000
        periods = []
        for begin in starts:
            days: set[int] = set()
            for weekdays in groups:
                # One period only: the next one would lie beyond year 9999, where
                # dateutil stops. Times are ours; dateutil gives the days.
                rule = du.rrule(
                    du.YEARLY if self.freq == "YEARLY" else du.MONTHLY,
                    dtstart=begin,
                    interval=far,
                    wkst=parts.wkst,
                    bymonth=self.bymonth,
                    bymonthday=self.bymonthday,
                    byyearday=parts.byyearday,
                    byweekno=parts.byweekno,
                    byweekday=weekdays,
                    byhour=0,
                    byminute=0,
                    bysecond=0,
                    cache=False,
                )
                days.update((found.date() - first).days for found in rule)
            periods.append(tuple(sorted(days)))
        return periods

    # -- walking ---------------------------------------------------------------------------

    def walls(self, after: datetime) -> Iterator[datetime]:
        start = self.start
        floor = after.replace(microsecond=0)
        limit = _add_days(after.date(), HORIZON.days)
        if self.stride_period:
            yield from self._stride(after, limit)
            return
        first_day = max(after.date(), start.date())
        for occurrence in self._days(first_day, limit):
            day, times = occurrence.day, occurrence.times
            begin = 0
            if day == floor.date():
                seconds = floor.hour * 3600 + floor.minute * 60 + floor.second
                begin = bisect.bisect_right(times, seconds)
            if day == start.date():
                seconds = start.hour * 3600 + start.minute * 60 + start.second
                begin = max(begin, bisect.bisect_left(times, seconds))
            midnight = datetime.combine(day, _MIDNIGHT)
            for i in range(begin, len(times)):
                yield midnight + timedelta(seconds=times[i])

    def _stride(self, after: datetime, limit: date) -> Iterator[datetime]:
        """Sub-daily periods every ``stride_period`` seconds (not dividing a day)."""
        unit = UNIT_SECONDS[self.freq]
        origin = _truncate(self.start, unit)
        period = self.stride_period
        last = self.offsets[-1]
        k = max(0, _ceil_div(_seconds_between(origin, after) - last, period))
        while True:
            begin = origin + timedelta(seconds=k * period)
            day = begin.date()
            if day > limit:
                return
            if self.filter is not None and not self.filter.passes(day):
                nxt = self.filter.first_from(_add_days(day, 1), limit)
                if nxt is None:
                    return
                seconds = _seconds_between(origin, datetime.combine(nxt, _MIDNIGHT))
                k = _ceil_div(seconds, period)
                continue
            for offset in self.offsets:
                wall = begin + timedelta(seconds=offset)
                if wall > after and wall >= self.start:
                    yield wall
            k += 1

    def _days(self, first: date, limit: date) -> Iterator[_Occurrence]:
        if self.freq == "YEARLY":
            return self._yearly(first, limit)
        if self.freq == "MONTHLY":
            return self._monthly(first, limit)
        if self.freq == "WEEKLY":
            return self._weekly(first, limit)
        step = self.interval if self.freq == "DAILY" else 1
        return self._daily(first, limit, step)

    def _in_period(self, days: Sequence[date], first: date) -> Iterator[_Occurrence]:
        if self.setpos is not None:
            for occurrence in _select(days, self.times, self.setpos):
                if occurrence.day >= first:
                    yield occurrence
            return
        for day in days:
            if day >= first:
                yield _Occurrence(day, self.times)

    def _period_occurrences(self, year: int, month0: int) -> list[_Occurrence]:
        """One period's occurrences (month0 is 0 for a yearly rule), remembered: the DST
        rule asks for the same period from several instants in one search."""
        key = (year, month0)
        found = self._occurrences.get(key)
        if found is None:
            doys = self._periods(year)[month0]
            base = date(year, 1, 1)
            found = list(self._in_period([base + timedelta(days=d) for d in doys], date.min))
            if len(self._occurrences) >= 64:
                self._occurrences.clear()
            self._occurrences[key] = found
        return found

    def _yearly(self, first: date, limit: date) -> Iterator[_Occurrence]:
        origin = self.start.year
        year = first.year
        year += -(year - origin) % self.interval
        while year <= limit.year:
            for occurrence in self._period_occurrences(year, 0):
                if occurrence.day >= first:
                    yield occurrence
            year += self.interval

    def _monthly(self, first: date, limit: date) -> Iterator[_Occurrence]:
        origin = self.start.year * 12 + self.start.month - 1
        index = first.year * 12 + first.month - 1
        index += -(index - origin) % self.interval
        while index <= limit.year * 12 + limit.month - 1:
            year, month0 = divmod(index, 12)
            if self._periods(year)[month0]:
                for occurrence in self._period_occurrences(year, month0):
                    if occurrence.day >= first:
                        yield occurrence
            index += self.interval

    def _weekly(self, first: date, limit: date) -> Iterator[_Occurrence]:
        wkst = self.parts.wkst
        origin = self.start.date()
        origin -= timedelta(days=(origin.weekday() - wkst) % 7)
        week = first - timedelta(days=(first.weekday() - wkst) % 7)
        step = 7 * self.interval
        week += timedelta(days=-(week - origin).days % step)
        assert self.filter is not None
        months = self.filter.months
        while week <= limit:
            days = [week + timedelta(days=i) for i in range(7)]
            if months is not None and not any(d.month in months for d in days):
                # Jump to the week holding the first day of the next month that counts.
                nxt = _next_month_start(days[-1], months)
                if nxt is None or nxt > limit:
                    return
                target = nxt - timedelta(days=(nxt.weekday() - wkst) % 7)
                week = target + timedelta(days=-(target - origin).days % step)
                continue
            passing = [d for d in days if self.filter.passes(d)]
            yield from self._in_period(passing, first)
            week += timedelta(days=step)

    def _daily(self, first: date, limit: date, step: int) -> Iterator[_Occurrence]:
        origin = self.start.toordinal()
        ordinal = first.toordinal()
        ordinal += -(ordinal - origin) % step
        day = date.fromordinal(ordinal)
        if self.filter is None:
            while day <= limit:
                yield _Occurrence(day, self.times)
                day += timedelta(days=step)
            return
        while day <= limit:
            year = day.year
            base = date(year, 1, 1)
            doys, mask = self.filter.table(year)
            start_doy = (day - base).days
            if step >= 8:
                # Few days of the year are on the interval's grid: test those.
                doy = start_doy
                while doy < len(mask):
                    if mask[doy]:
                        found = base + timedelta(days=doy)
                        if found > limit:
                            return
                        yield _Occurrence(found, self.times)
                    doy += step
            else:
                for doy in doys[bisect.bisect_left(doys, start_doy) :]:
                    if (base.toordinal() + doy - origin) % step == 0:
                        found = base + timedelta(days=doy)
                        if found > limit:
                            return
                        yield _Occurrence(found, self.times)
            if year >= MAXYEAR:
                return
            nxt = date(year + 1, 1, 1).toordinal()
            day = date.fromordinal(nxt + (-(nxt - origin) % step))


def _compact(values: list[int]) -> Sequence[int]:
    """A sorted list of seconds of the day, kept small: a range when evenly spaced."""
    if len(values) > 2:
        gap = values[1] - values[0]
        if all(b - a == gap for a, b in itertools.pairwise(values)):
            return range(values[0], values[-1] + 1, gap)
    return array("l", values) if len(values) > 64 else tuple(values)


def _add_days(day: date, days: int) -> date:
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return _LAST_DAY


def _truncate(wall: datetime, unit: int) -> datetime:
    seconds = wall.hour * 3600 + wall.minute * 60 + wall.second
    return datetime.combine(wall.date(), _MIDNIGHT) + timedelta(seconds=seconds - seconds % unit)


def _seconds_between(a: datetime, b: datetime) -> int:
    delta = b - a
    return delta.days * DAY_SECONDS + delta.seconds


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _next_month_start(after: date, months: frozenset[int]) -> date | None:
    year, month = after.year, after.month
    for _ in range(13):
        month += 1
        if month > 12:
            year, month = year + 1, 1
            if year > MAXYEAR:
                return None
        if month in months:
            return date(year, month, 1)
    return None
