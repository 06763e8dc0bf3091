"""Recurrence rules and calendars checked against brute-force references.

The rule reference below shares no code with the adapter and does not use dateutil. It
decides whether a naive wall time is an occurrence by RFC 5545's definitions applied
literally: find the wall time's period (its year, month, week from WKST, day, hour,
minute or second), check the INTERVAL phase counted from ``rrule_start``'s period, list
the period's whole set (every day of the period that the BYxxx parts keep, times every
time of day they name, defaults taken from ``rrule_start``), apply BYSETPOS to that
sorted set, and drop what lies before ``rrule_start``. The walk then steps through UTC
instants minute by minute (second by second for rules that name seconds) and applies
SPEC §3's DST rule literally, exactly as the cron reference does (and with its helpers):
a wildcard rule fires whenever the wall time matches; a fixed-time rule fires at a wall
time above every earlier one that matches, or after a forward jump that skipped one.

The calendar reference takes the nominal firings and applies SPEC §16 literally, date by
date: a business day runs; an excluded date is skipped, or moved to the nearest business
day in the shift's direction unless that day has a slot of its own or an excluded date
nearer to it has slots (those move instead).
"""

# Naive datetimes in this module are wall times (rule starts, wall clocks), not instants.
# ruff: noqa: DTZ001

from __future__ import annotations

import calendar as cal
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from hypothesis import assume, example, given
from hypothesis import strategies as st

from tests.unit.domain.test_cron_reference import (
    _NAMED_CASES,
    _first_grid_instant_after,
    _highest_wall_before,
    _wall,
)
from tickwork.domain.calendars import Calendar, parse_calendar
from tickwork.domain.rrule_parse import RuleParts, parse_rule_text
from tickwork.domain.schedule import RRuleSchedule, cron_schedule, rrule_schedule
from tickwork.domain.slots import CalendarSchedule, Slot, slots_after
from tickwork.domain.walltime import fixed_instant
from tickwork.domain.zones import get_zone
from tickwork.errors import InvalidSchedule

# ---------------------------------------------------------------------------------------
# The rule reference
# ---------------------------------------------------------------------------------------

_UNIT = {"HOURLY": 3600, "MINUTELY": 60, "SECONDLY": 1}


class ReferenceRule:
    def __init__(self, text: str, start: datetime) -> None:
        self.p: RuleParts = parse_rule_text(text)
        self.start = start
        p = self.p
        self.wildcard = (
            (p.freq == "HOURLY" and p.interval == 1 and p.byhour is None)
            or (p.freq in ("MINUTELY", "SECONDLY") and 3600 % (p.interval * _UNIT[p.freq]) == 0)
            or (p.byhour is not None and len(p.byhour) == 24)
            or (p.byminute is not None and len(p.byminute) == 60)
        )
        self._periods: dict[object, frozenset[datetime]] = {}

    # -- periods ---------------------------------------------------------------------------

    def _period(self, wall: datetime) -> tuple[object, int]:
        """A key for the wall time's period, and the period's index from start's."""
        f, s = self.p.freq, self.start
        if f == "YEARLY":
            return wall.year, wall.year - s.year
        if f == "MONTHLY":
            key = wall.year * 12 + wall.month - 1
            return key, key - (s.year * 12 + s.month - 1)
        if f == "WEEKLY":
            week = self._week_start(wall.date())
            return week, (week - self._week_start(s.date())).days // 7
        if f == "DAILY":
            return wall.date(), (wall.date() - s.date()).days
        unit = _UNIT[f]
        index = int((wall - datetime(2000, 1, 1)).total_seconds()) // unit
        return index, index - int((s - datetime(2000, 1, 1)).total_seconds()) // unit

    def _week_start(self, day: date) -> date:
        return day - timedelta(days=(day.weekday() - self.p.wkst) % 7)

    def matches(self, wall: datetime) -> bool:
        if wall < self.start:
            return False
        key, index = self._period(wall)
        if index < 0 or index % self.p.interval:
            return False
        if key not in self._periods:
            self._periods[key] = frozenset(self._expand(key))
        return wall in self._periods[key]

    def _expand(self, key: object) -> list[datetime]:
        p, s, f = self.p, self.start, self.p.freq
        if f in _UNIT:
            assert isinstance(key, int)
            begin = datetime(2000, 1, 1) + timedelta(seconds=key * _UNIT[f])
            if not self._day_passes(begin.date()):
                return []
            if p.byhour is not None and begin.hour not in p.byhour:
                return []
            if f != "HOURLY" and p.byminute is not None and begin.minute not in p.byminute:
                return []
            if f == "SECONDLY" and p.bysecond is not None and begin.second not in p.bysecond:
                return []
            minutes = (p.byminute or (s.minute,)) if f == "HOURLY" else (begin.minute,)
            seconds = (p.bysecond or (s.second,)) if f != "SECONDLY" else (begin.second,)
            found = [begin.replace(minute=m, second=x) for m in minutes for x in seconds]
        else:
            days = [d for d in self._days_of(key) if self._day_passes(d)]
            hours = p.byhour or (s.hour,)
            minutes = p.byminute or (s.minute,)
            seconds = p.bysecond or (s.second,)
            clocks = [time(h, m, x) for h in hours for m in minutes for x in seconds]
            found = [datetime.combine(d, c) for d in days for c in clocks]
        found.sort()
        if p.bysetpos is not None:
            n = len(found)
            found = sorted({found[q - 1 if q > 0 else n + q] for q in p.bysetpos if -n <= q <= n})
        return found

    def _days_of(self, key: object) -> list[date]:
        f = self.p.freq
        if f == "YEARLY":
            assert isinstance(key, int)
            first, last = date(key, 1, 1), date(key, 12, 31)
        elif f == "MONTHLY":
            assert isinstance(key, int)
            year, month = divmod(key, 12)
            first = date(year, month + 1, 1)
            last = date(year, month + 1, cal.monthrange(year, month + 1)[1])
        elif f == "WEEKLY":
            assert isinstance(key, date)
            first, last = key, key + timedelta(days=6)
        else:
            assert isinstance(key, date)
            first = last = key
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]

    def _day_passes(self, day: date) -> bool:
        p, s, f = self.p, self.start, self.p.freq
        months, monthdays, byday = p.bymonth, p.bymonthday, p.byday
        if f in ("YEARLY", "MONTHLY") and not (p.byyearday or p.bymonthday or p.byday):
            monthdays = (s.day,)
            if f == "YEARLY" and months is None:
                months = (s.month,)
        if f == "WEEKLY" and byday is None:
            byday = ((0, s.weekday()),)
        if months is not None and day.month not in months:
            return False
        month_length = cal.monthrange(day.year, day.month)[1]
        if monthdays is not None and not (
            day.day in monthdays or day.day - month_length - 1 in monthdays
        ):
            return False
        year_length = 366 if cal.isleap(day.year) else 365
        yearday = day.timetuple().tm_yday
        if p.byyearday is not None and not (
            yearday in p.byyearday or yearday - year_length - 1 in p.byyearday
        ):
            return False
        if byday is not None:
            return any(self._weekday_matches(day, n, w) for n, w in byday)
        return True

    def _weekday_matches(self, day: date, n: int, weekday: int) -> bool:
        if day.weekday() != weekday:
            return False
        if n == 0:
            return True
        if self.p.freq == "MONTHLY" or self.p.bymonth is not None:
            first = day.replace(day=1)
            last = day.replace(day=cal.monthrange(day.year, day.month)[1])
        else:
            first, last = date(day.year, 1, 1), date(day.year, 12, 31)
        if n > 0:
            return (day - first).days // 7 + 1 == n
        return -((last - day).days // 7 + 1) == n


def reference_firings(
    rule: ReferenceRule, zone: tzinfo, start: datetime, end: datetime, step: timedelta
) -> list[datetime]:
    """SPEC §3's rule applied literally by walking real time (as the cron reference)."""
    instant = _first_grid_instant_after(start, step)
    highest = _highest_wall_before(instant, zone, step)
    firings: list[datetime] = []
    while instant <= end:
        wall = _wall(instant, zone)
        if rule.wildcard:
            fires = rule.matches(wall)
        elif wall > highest:
            fires = rule.matches(wall)
            skipped = highest + step
            while not fires and skipped < wall:
                fires = rule.matches(skipped)
                skipped += step
            highest = wall
        else:
            fires = False
        if fires:
            firings.append(instant)
        instant += step
    return firings


def adapter_firings(schedule: RRuleSchedule, start: datetime, end: datetime) -> list[datetime]:
    found: list[datetime] = []
    after = start
    while True:
        got = schedule.next_after(after)
        if got is None or got > end:
            return found
        assert got > after
        assert got.tzinfo is UTC
        assert got.microsecond == 0
        found.append(got)
        after = got


# ---------------------------------------------------------------------------------------
# Generated rules
# ---------------------------------------------------------------------------------------

_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def _values(items: list[int]) -> str:
    return ",".join(str(v) for v in sorted(set(items)))


@st.composite
def _rules(draw: st.DrawFn, walls: list[datetime], seconds: bool) -> str:
    freqs = ["YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY"]
    freq = draw(st.sampled_from([*freqs, "SECONDLY"] if seconds else freqs))
    parts = [f"FREQ={freq}"]
    intervals = {
        "YEARLY": [1, 1, 2],
        "MONTHLY": [1, 1, 2, 3],
        "WEEKLY": [1, 1, 2],
        "DAILY": [1, 1, 2, 3],
        "HOURLY": [1, 1, 2, 3, 5],
        "MINUTELY": [1, 5, 7, 15, 30, 90],
        "SECONDLY": [1, 7, 20, 30],
    }[freq]
    interval = draw(st.sampled_from(intervals))
    if interval > 1:
        parts.append(f"INTERVAL={interval}")
    stride = freq in _UNIT and 86400 % (interval * _UNIT[freq]) != 0
    hours = sorted({w.hour for w in walls} | {(w.hour + 1) % 24 for w in walls})
    minutes = sorted({w.minute for w in walls} | {0, 15, 30, 45})
    if not stride and draw(st.integers(0, 2)) > 0:
        if draw(st.integers(0, 9)) == 0:
            parts.append("BYHOUR=" + _values(list(range(24))))
        else:
            parts.append("BYHOUR=" + _values(draw(st.lists(st.sampled_from(hours), min_size=1,
                                                            max_size=3))))  # fmt: skip
    if not (stride and freq != "HOURLY") and draw(st.booleans()):
        if draw(st.integers(0, 9)) == 0:
            parts.append("BYMINUTE=" + _values(list(range(60))))
        else:
            chosen = draw(st.lists(st.sampled_from(minutes), min_size=1, max_size=4))
            parts.append("BYMINUTE=" + _values(chosen))
    if seconds and not (stride and freq == "SECONDLY") and draw(st.booleans()):
        parts.append("BYSECOND=" + _values(draw(st.lists(st.sampled_from([0, 10, 30, 59]),
                                                          min_size=1, max_size=3))))  # fmt: skip
    day = walls[-1].date()
    if draw(st.integers(0, 3)) == 0:
        parts.append(f"BYMONTH={_values([day.month, draw(st.integers(1, 12))])}")
    if freq != "WEEKLY" and draw(st.integers(0, 3)) == 0:
        last = cal.monthrange(day.year, day.month)[1]
        parts.append(f"BYMONTHDAY={_values([day.day, day.day - last - 1])}")
    if draw(st.integers(0, 2)) == 0:
        days = [_WEEKDAYS[day.weekday()], draw(st.sampled_from(_WEEKDAYS))]
        if freq in ("MONTHLY", "YEARLY") and draw(st.booleans()):
            nth = (day.day - 1) // 7 + 1
            days[0] = f"{draw(st.sampled_from([nth, nth - 6]))}{days[0]}"
        parts.append("BYDAY=" + ",".join(sorted(set(days))))
    if len(parts) > 1 + (interval > 1) and draw(st.integers(0, 4)) == 0:
        parts.append(f"BYSETPOS={draw(st.sampled_from(['1', '-1', '2', '1,-1', '-2']))}")
    if freq == "WEEKLY" and draw(st.booleans()):
        parts.append(f"WKST={draw(st.sampled_from(_WEEKDAYS))}")
    return ";".join(parts)


@st.composite
def _scenarios(draw: st.DrawFn, seconds: bool) -> tuple[str, str, datetime, datetime, datetime]:
    zone_name, anchor = draw(st.sampled_from(_NAMED_CASES))
    zone = get_zone(zone_name)
    walls = [_wall(anchor - timedelta(seconds=1), zone), _wall(anchor, zone)]
    text = draw(_rules(walls, seconds))
    back = timedelta(days=draw(st.integers(0, 60)), minutes=draw(st.integers(0, 1439)))
    rule_start = (walls[0] - back).replace(second=0 if not seconds else draw(st.integers(0, 59)))
    span = timedelta(hours=3) if seconds else timedelta(hours=36)
    start = anchor + timedelta(seconds=draw(st.integers(-int(span.total_seconds()) // 2, 600)))
    if draw(st.integers(0, 4)) == 0:
        start += timedelta(microseconds=draw(st.integers(1, 999_999)))
    return zone_name, text, rule_start, start, start + span


def _check(zone_name: str, text: str, rule_start: datetime, start: datetime, end: datetime) -> None:
    try:
        schedule = rrule_schedule(text, rule_start, zone_name)
    except InvalidSchedule:
        assume(False)
        return
    seconds = "SECONDLY" in text or "BYSECOND" in text or rule_start.second
    step = timedelta(seconds=1) if seconds else timedelta(minutes=1)
    reference = ReferenceRule(text, rule_start)
    expected = reference_firings(reference, schedule.zone, start, end, step)
    got = adapter_firings(schedule, start, end)
    zone = schedule.zone
    assert got == expected, (
        f"{zone_name} {text} from {rule_start}:\n"
        f"  adapter:   {[g.astimezone(zone).isoformat() for g in got[:8]]}\n"
        f"  reference: {[e.astimezone(zone).isoformat() for e in expected[:8]]}"
    )


_NY = "America/New_York"


@given(scenario=_scenarios(seconds=False))
@example(
    scenario=(
        _NY,
        "FREQ=DAILY;BYHOUR=2;BYMINUTE=0,15,30,45",
        datetime(2024, 3, 1),
        datetime(2024, 3, 10, 5, tzinfo=UTC),
        datetime(2024, 3, 11, 12, tzinfo=UTC),
    )
)
@example(
    scenario=(
        _NY,
        "FREQ=MINUTELY;INTERVAL=7",
        datetime(2024, 11, 3, 0, 58),
        datetime(2024, 11, 3, 5, tzinfo=UTC),
        datetime(2024, 11, 3, 9, tzinfo=UTC),
    )
)
@example(
    scenario=(
        _NY,
        "FREQ=HOURLY",
        datetime(2024, 11, 3),
        datetime(2024, 11, 3, 5, 10, tzinfo=UTC),
        datetime(2024, 11, 3, 9, tzinfo=UTC),
    )
)
@example(
    scenario=(
        "Pacific/Apia",
        "FREQ=HOURLY;INTERVAL=6",
        datetime(2011, 12, 29),
        datetime(2011, 12, 29, 12, tzinfo=UTC),
        datetime(2011, 12, 31, tzinfo=UTC),
    )
)
@example(scenario=("Australia/Lord_Howe", "FREQ=MONTHLY;BYDAY=1SU;BYHOUR=2;BYMINUTE=0,15,30",
                   datetime(2024, 9, 1), datetime(2024, 10, 5, 12, tzinfo=UTC),
                   datetime(2024, 10, 6, 12, tzinfo=UTC)))  # fmt: skip
def test_rules_fire_where_the_reference_says(
    scenario: tuple[str, str, datetime, datetime, datetime],
) -> None:
    _check(*scenario)


@given(scenario=_scenarios(seconds=True))
@example(scenario=(_NY, "FREQ=SECONDLY;INTERVAL=20;BYHOUR=2;BYMINUTE=30", datetime(2024, 3, 1),
                   datetime(2024, 3, 10, 6, 30, tzinfo=UTC),
                   datetime(2024, 3, 10, 8, tzinfo=UTC)))  # fmt: skip
def test_rules_with_seconds_fire_where_the_reference_says(
    scenario: tuple[str, str, datetime, datetime, datetime],
) -> None:
    _check(*scenario)


def test_the_reference_applies_bysetpos_over_the_whole_period() -> None:
    # The last weekday of the month, from a start in the middle of January 2026.
    rule = ReferenceRule("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", datetime(2026, 1, 15))
    assert rule.matches(datetime(2026, 1, 30))
    assert not rule.matches(datetime(2026, 1, 29))
    assert not rule.matches(datetime(2026, 1, 30, 0, 1))


# ---------------------------------------------------------------------------------------
# The calendar reference
# ---------------------------------------------------------------------------------------


def reference_slots(
    nominal: list[datetime], calendar: Calendar, zone: tzinfo
) -> list[tuple[datetime, str, datetime]]:
    """(instant, status, nominal) for every nominal firing, SPEC §16 applied literally."""

    def local(instant: datetime) -> date:
        return instant.astimezone(zone).date()

    dates = {local(n) for n in nominal}
    out: list[tuple[datetime, str, datetime]] = []
    for n in nominal:
        day = local(n)
        if calendar.is_business_day(day):
            out.append((n, "run", n))
            continue
        if calendar.shift == "skip":
            out.append((n, "skip", n))
            continue
        step = timedelta(days=1 if calendar.shift == "next_business_day" else -1)
        target = day + step
        between: list[date] = []
        while not calendar.is_business_day(target):
            between.append(target)
            target += step
        if target in dates or any(d in dates for d in between):
            out.append((n, "skip", n))
            continue
        wall = n.astimezone(zone).replace(tzinfo=None).time()
        out.append((fixed_instant(datetime.combine(target, wall), zone), "run", n))
    out.sort()
    deduplicated: list[tuple[datetime, str, datetime]] = []
    for item in out:
        if not deduplicated or item[0] > deduplicated[-1][0]:
            deduplicated.append(item)
    return deduplicated


_CALENDAR_RULES = (
    ("cron", "0 9 * * *"),
    ("cron", "30 2 * * *"),
    ("cron", "0 9 * * 1-5"),
    ("cron", "0 9 * * 6,0"),
    ("cron", "0 9,17 15 * *"),
    ("cron", "*/30 1 * * *"),
    ("rrule", "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;BYHOUR=18;BYMINUTE=0"),
    ("rrule", "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR,SA;BYHOUR=9;BYMINUTE=0"),
    ("rrule", "FREQ=MONTHLY;BYMONTHDAY=1,-1;BYHOUR=2;BYMINUTE=30"),
    ("rrule", "FREQ=DAILY;INTERVAL=3;BYHOUR=23;BYMINUTE=30"),
)


@st.composite
def _calendars(draw: st.DrawFn, around: date) -> dict[str, object]:
    near = [around + timedelta(days=d) for d in range(-6, 8)]
    value: dict[str, object] = {
        "weekends": draw(st.sampled_from(["exclude", "include"])),
        "shift": draw(st.sampled_from(["skip", "next_business_day", "previous_business_day"])),
    }
    if draw(st.booleans()):
        value["holidays"] = draw(st.sampled_from(["US", "DE-BY", "GB-ENG", "AU-NSW", "SA"]))
    dates = draw(st.lists(st.sampled_from(near), max_size=3))
    if dates:
        value["exclude_dates"] = [d.isoformat() for d in dates]
    if draw(st.integers(0, 3)) == 0:
        first = draw(st.sampled_from(near))
        value["exclude_ranges"] = [[first.isoformat(), (first + timedelta(days=2)).isoformat()]]
    return value


@st.composite
def _calendar_scenarios(
    draw: st.DrawFn,
) -> tuple[str, str, str, dict[str, object], datetime]:
    zone_name, anchor = draw(st.sampled_from(_NAMED_CASES))
    kind, text = draw(st.sampled_from(_CALENDAR_RULES))
    around = draw(st.sampled_from([anchor.date(), date(anchor.year, 12, 27), date(2024, 2, 28)]))
    value = draw(_calendars(around))
    after = datetime.combine(around, time(0), UTC) + timedelta(
        hours=draw(st.integers(-72, 72)), minutes=draw(st.integers(0, 59))
    )
    return zone_name, kind, text, value, after


@given(scenario=_calendar_scenarios())
@example(
    scenario=(
        "Europe/London",
        "rrule",
        "FREQ=MONTHLY;BYMONTHDAY=25;BYHOUR=9;BYMINUTE=0",
        {"holidays": "GB-ENG", "weekends": "exclude", "shift": "next_business_day"},
        datetime(2026, 12, 26, tzinfo=UTC),
    )
)
@example(
    scenario=(
        "America/New_York",
        "cron",
        "0 9 * * 6,0",
        {"weekends": "exclude", "shift": "previous_business_day"},
        datetime(2024, 3, 8, 13, 59, tzinfo=UTC),
    )
)
@example(scenario=("America/New_York", "cron", "30 2 * * *",
                   {"exclude_dates": ["2024-03-09"], "shift": "next_business_day"},
                   datetime(2024, 3, 9, 5, tzinfo=UTC)))  # fmt: skip
def test_calendars_give_the_slots_the_reference_says(
    scenario: tuple[str, str, str, dict[str, object], datetime],
) -> None:
    zone_name, kind, text, value, after = scenario
    calendar = parse_calendar(value)
    if kind == "cron":
        base: object = cron_schedule(text, zone_name)
    else:
        base = rrule_schedule(text, "2000-01-01T00:00:00", zone_name)
    assert not isinstance(base, str)
    schedule = CalendarSchedule(base, calendar)  # type: ignore[arg-type]
    zone = schedule.zone
    end = after + timedelta(days=12)
    nominal: list[datetime] = []
    cursor = after - timedelta(days=30)
    while True:
        got = (
            base.next_after(cursor)
            if isinstance(base, RRuleSchedule)
            else (
                base.expression.next_after(cursor, zone)  # type: ignore[attr-defined]
            )
        )
        if got is None or got > end + timedelta(days=30):
            break
        nominal.append(got)
        cursor = got
    expected = [e for e in reference_slots(nominal, calendar, zone) if after < e[0] <= end]
    actual: list[Slot] = []
    for slot in slots_after(schedule, after):
        if slot.at > end:
            break
        actual.append(slot)
    assert [(s.at, s.status, s.nominal) for s in actual] == expected, (
        f"{zone_name} {text} {value} after {after}:\n"
        f"  adapter:   {[(s.at.isoformat(), s.status, s.reason) for s in actual[:6]]}\n"
        f"  reference: {[(e[0].isoformat(), e[1]) for e in expected[:6]]}"
    )
