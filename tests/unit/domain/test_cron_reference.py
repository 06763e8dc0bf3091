"""The cron adapter checked against a brute-force reference that walks real time.

The reference below shares no code with the adapter and does not use cronsim. It steps
through UTC instants (minute by minute for 5-field expressions, second by second for
6-field ones), turns each instant into the local wall time of the zone, matches that wall
time with its own small field matcher, and applies the DST rule of SPEC §3 literally:

* wildcard (minute or hour field begins with ``*``): fire whenever the wall time matches;
* fixed-time: fire at an instant when its wall time matches and no earlier instant had
  that wall time, and also at the first instant after a forward jump of the wall time
  when any wall time skipped by the jump matches.

"No earlier instant had this wall time" is tracked as "this wall time is above every
earlier one": wall time only ever moves forward continuously, jumps forward over a gap,
or jumps back, so every wall time at or below the highest one seen so far has already
happened or been skipped. The only shortcut the walk takes is to skip whole UTC days on
which no local date within reach matches the expression's day and month fields.

Hypothesis draws expressions biased toward the hours and minutes where clocks change,
zones (the ones SPEC §3 names plus random tzdata zones) and start instants around real
transitions; the adapter's successive ``next_after`` answers must equal the reference's
firings in the window exactly.
"""

from __future__ import annotations

import calendar
import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from importlib import resources

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from tickwork.domain.cron import parse_cron
from tickwork.domain.zones import get_zone
from tickwork.errors import InvalidSchedule

# ---------------------------------------------------------------------------------------
# The reference matcher
# ---------------------------------------------------------------------------------------

_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_SHORTHANDS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def _number(token: str, names: tuple[str, ...], first: int) -> int:
    if token in names:
        return names.index(token) + first
    return int(token)


def _plain_values(
    term: str, low: int, high: int, names: tuple[str, ...] = (), first: int = 0
) -> set[int]:
    """Numbers, names, ``*``, ``a-b`` and ``x/step`` (``a/step`` runs to the field's end)."""
    body, stepped, step_text = term.partition("/")
    step = int(step_text) if stepped else 1
    if body == "*":
        start, stop = low, high
    elif "-" in body:
        left, right = body.split("-")
        start, stop = _number(left, names, first), _number(right, names, first)
    else:
        start = _number(body, names, first)
        stop = high if stepped else start
    return set(range(start, stop + 1, step))


def _field_values(
    text: str, low: int, high: int, names: tuple[str, ...] = (), first: int = 0
) -> frozenset[int]:
    values: set[int] = set()
    for term in text.split(","):
        values |= _plain_values(term, low, high, names, first)
    return frozenset(values)


def _last_weekday_of_month(year: int, month: int) -> int:
    day = calendar.monthrange(year, month)[1]
    while calendar.weekday(year, month, day) >= 5:  # Saturday or Sunday
        day -= 1
    return day


class ReferenceCron:
    """A deliberately plain matcher for the grammar the generators below produce."""

    def __init__(self, expression: str) -> None:
        parts = _SHORTHANDS.get(expression, expression).upper().split()
        self.has_seconds = len(parts) == 6
        if not self.has_seconds:
            parts = ["0", *parts]
        second, minute, hour, dom, month, dow = parts
        self.wildcard = minute.startswith("*") or hour.startswith("*")
        self.seconds = _field_values(second, 0, 59)
        self.minutes = _field_values(minute, 0, 59)
        self.hours = _field_values(hour, 0, 23)
        self.months = _field_values(month, 1, 12, _MONTH_NAMES, 1)
        self.dom_terms = dom.split(",")
        self.dow_terms = dow.split(",")
        # Vixie cron: when both day fields are restricted, either one may match.
        self.either_day = not dom.startswith("*") and not dow.startswith("*")
        self._days: dict[date, bool] = {}

    def _dom_matches(self, day: date) -> bool:
        last = calendar.monthrange(day.year, day.month)[1]
        for term in self.dom_terms:
            if term == "L":
                hit = day.day == last
            elif term == "LW":
                hit = day.day == _last_weekday_of_month(day.year, day.month)
            else:
                hit = day.day in _plain_values(term, 1, 31)
            if hit:
                return True
        return False

    def _dow_matches(self, day: date) -> bool:
        last = calendar.monthrange(day.year, day.month)[1]
        weekday = (day.weekday() + 1) % 7  # cron numbering: Sunday is 0
        for term in self.dow_terms:
            if term.endswith("L"):
                hit = int(term[:-1]) % 7 == weekday and day.day + 7 > last
            elif "#" in term:
                name, nth = term.split("#")
                wanted = _number(name, _DAY_NAMES, 0) % 7
                hit = wanted == weekday and (day.day - 1) // 7 + 1 == int(nth)
            else:
                hit = weekday in {v % 7 for v in _plain_values(term, 0, 7, _DAY_NAMES, 0)}
            if hit:
                return True
        return False

    def _day_matches(self, day: date) -> bool:
        known = self._days.get(day)
        if known is None:
            dom, dow = self._dom_matches(day), self._dow_matches(day)
            known = (dom or dow) if self.either_day else (dom and dow)
            self._days[day] = known
        return known

    def matches(self, wall: datetime) -> bool:
        return (
            wall.second in self.seconds
            and wall.minute in self.minutes
            and wall.hour in self.hours
            and self.date_matches(wall.date())
        )

    def date_matches(self, day: date) -> bool:
        return day.month in self.months and self._day_matches(day)

    def may_fire_during(self, utc_day: date) -> bool:
        """False when no instant of this UTC day can fire, so the walk may skip the day.

        Local dates lie within a day of the UTC date (offsets stay under 24 hours), and a
        wall time skipped by a gap lies at most a day before the wall time after the gap
        (Apia's skipped day is the longest gap).
        """
        return any(self.date_matches(utc_day + timedelta(days=k)) for k in range(-2, 2))


# ---------------------------------------------------------------------------------------
# The reference walk
# ---------------------------------------------------------------------------------------

_HISTORY = timedelta(hours=26)  # longer than any backward jump of a wall clock since 2000
_MINUTE = timedelta(minutes=1)
_MIDNIGHT = time(0, 0)


def _wall(instant: datetime, zone: tzinfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _first_grid_instant_after(start: datetime, step: timedelta) -> datetime:
    utc = start.astimezone(UTC)
    floor = utc.replace(microsecond=0)
    if step == _MINUTE:
        floor = floor.replace(second=0)
    return floor + step


def _highest_wall_before(instant: datetime, zone: tzinfo, step: timedelta) -> datetime:
    """The highest wall time shown at any grid instant before ``instant``.

    Clocks change on whole minutes, so between two changes the wall time rises with real
    time and peaks one step before a whole minute (or just before ``instant``): looking
    one step before every whole minute of the recent past finds the peak.
    """
    highest = _wall(instant - step, zone)
    minute = instant.replace(second=0)
    stop = instant - _HISTORY
    while minute > stop:
        highest = max(highest, _wall(minute - step, zone))
        minute -= _MINUTE
    return highest


def reference_firings(
    expression: str, zone: tzinfo, start: datetime, end: datetime, limit: int
) -> list[datetime]:
    """Firings in (start, end] by walking real time, at most ``limit`` of them."""
    cron = ReferenceCron(expression)
    step = timedelta(seconds=1) if cron.has_seconds else _MINUTE
    instant = _first_grid_instant_after(start, step)
    highest = _highest_wall_before(instant, zone, step)
    firings: list[datetime] = []
    while instant <= end and len(firings) < limit:
        if instant.time() == _MIDNIGHT and not cron.may_fire_during(instant.date()):
            # Nothing can fire today: jump to the next day that might, and look back
            # from there for the highest wall time again.
            while instant <= end and not cron.may_fire_during(instant.date()):
                instant += timedelta(days=1)
            highest = _highest_wall_before(instant, zone, step)
            continue
        wall = _wall(instant, zone)
        assert wall.second == 0 or cron.has_seconds, "offsets are whole minutes here"
        if cron.wildcard:
            fires = cron.matches(wall)
        elif wall > highest:
            # A wall time above every earlier one happens now for the first time, and the
            # wall times jumped over on the way here never happen at all.
            fires = cron.matches(wall)
            skipped = highest + step
            while not fires and skipped < wall:
                fires = cron.matches(skipped)
                skipped += step
            highest = wall
        else:
            fires = False
        if fires:
            firings.append(instant)
        instant += step
    return firings


def adapter_firings(
    expression: str, zone: tzinfo, start: datetime, end: datetime, limit: int
) -> list[datetime]:
    cron = parse_cron(expression)
    firings: list[datetime] = []
    after = start
    while len(firings) < limit:
        got = cron.next_after(after, zone)
        if got is None or got > end:
            break
        assert got.tzinfo is UTC
        assert got.microsecond == 0
        assert got > after, f"{got} is not strictly after {after}"
        firings.append(got)
        after = got
    return firings


# ---------------------------------------------------------------------------------------
# What to test: zones, transitions, expressions
# ---------------------------------------------------------------------------------------

_NAMED_ZONES = {
    "America/New_York": (2021, 2024, 2026),
    "Europe/London": (2022, 2025),
    "Europe/Berlin": (2023, 2025),
    "Europe/Riga": (2023, 2024),
    "Australia/Lord_Howe": (2023, 2024, 2025),
    "Asia/Kolkata": (2024,),
    "Pacific/Chatham": (2023, 2024, 2025),
    "America/Sao_Paulo": (2017, 2018),
    "Pacific/Apia": (2011, 2012, 2020),
}
_ALL_ZONES = tuple(
    name
    for name in resources.files("tzdata").joinpath("zones").read_text().split()
    if name not in ("Factory",)
)


@functools.cache
def _anchors(zone_name: str, year: int) -> tuple[datetime, ...]:
    """Instants in ``year`` where the zone's offset changes, or two plain days if none.

    Probing daily finds every change that lasts a day or more, which is all this needs.
    """
    zone = get_zone(zone_name)
    found: list[datetime] = []
    probe = datetime(year, 1, 1, tzinfo=UTC)
    offset = probe.astimezone(zone).utcoffset()
    while probe.year == year:
        later = probe + timedelta(days=1)
        if later.astimezone(zone).utcoffset() != offset:
            low, high = probe, later
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                if middle.astimezone(zone).utcoffset() == offset:
                    low = middle
                else:
                    high = middle
            found.append(high.replace(microsecond=0))
            offset = later.astimezone(zone).utcoffset()
        probe = later
    return tuple(found) or (
        datetime(year, 3, 31, 1, tzinfo=UTC),
        datetime(year, 10, 27, 1, tzinfo=UTC),
    )


_NAMED_CASES = tuple(
    (zone_name, anchor)
    for zone_name, years in _NAMED_ZONES.items()
    for year in years
    for anchor in _anchors(zone_name, year)
)


@dataclass(frozen=True)
class Scenario:
    zone: str
    expression: str
    start: datetime
    hours: float  # length of the window after start

    def check(self, limit: int = 1000) -> None:
        zone = get_zone(self.zone)
        end = self.start + timedelta(hours=self.hours)
        expected = reference_firings(self.expression, zone, self.start, end, limit)
        if len(expected) == limit:
            end = expected[-1]  # the walk stopped early; compare the same stretch
        got = adapter_firings(self.expression, zone, self.start, end, limit)
        assert got == expected, _difference(self, zone, got, expected)


def _difference(
    scenario: Scenario, zone: tzinfo, got: list[datetime], expected: list[datetime]
) -> str:
    index = 0
    for index, (left, right) in enumerate(zip(got, expected, strict=False)):  # noqa: B007
        if left != right:
            break
    else:
        index = min(len(got), len(expected))

    def show(items: list[datetime]) -> str:
        window = items[max(0, index - 2) : index + 3]
        return ", ".join(i.astimezone(zone).isoformat() for i in window) or "(nothing)"

    return (
        f"{scenario}: first difference at firing #{index}\n"
        f"  adapter:   {show(got)}\n  reference: {show(expected)}"
    )


# fmt: off
_SECOND_CHOICES = [
    "0", "0", "30", "59", "*/20", "0,30", "15-17", "*", "*/7", "58-59", "5/25", "1",
]
_MINUTE_CHOICES = [
    "0", "15", "30", "45", "59", "1", "29", "44", "46", "14", "*/15", "*/30", "*",
    "0,15,30,45", "30,45", "0-30", "25-35", "40-50", "10/20", "45-59/5", "*/7", "0,59",
]
_HOUR_CHOICES = [
    "0", "1", "2", "3", "4", "23", "1-3", "2-4", "*/2", "*", "0,2", "1,2,3", "0-4/2",
    "22-23", "3/6", "0-2", "*/3", "12",
]
_MONTH_CHOICES = ["*", "*/2", "JAN-JUN", "JUL-DEC", "3,10", "MAR,OCT,NOV", "2", "9-12"]
_DOM_CHOICES = ["*", "L", "LW", "*/2", "1,15", "25-31", "8-14", "29", "30", "31", "*/10"]
_DOW_CHOICES = ["*", "7L", "MON-FRI", "SAT,SUN", "1-5", "*/2", "5-7", "0#1", "TUE,THU"]
# fmt: on


def _near(value: int, high: int) -> list[str]:
    """Ways of writing a field so that it matches ``value`` (and, usually, more)."""
    return [str(value), f"{max(0, value - 1)}-{value}", f"{value}-{min(high, value + 1)}",
            f"{value},{(value + 2) % (high + 1)}"]  # fmt: skip


def _fields_near(walls: list[datetime]) -> dict[str, list[str]]:
    """Field spellings that match the wall times on either side of a clock change."""
    near: dict[str, list[str]] = {"minute": [], "hour": [], "dom": [], "month": [], "dow": []}
    for wall in walls:
        weekday = (wall.weekday() + 1) % 7  # cron numbering: Sunday is 0
        nth = (wall.day - 1) // 7 + 1
        last = calendar.monthrange(wall.year, wall.month)[1]
        near["minute"] += _near(wall.minute, 59)
        near["hour"] += _near(wall.hour, 23)
        near["dom"] += [str(wall.day), f"{max(1, wall.day - 1)}-{wall.day}", f"{wall.day},L"]
        if wall.day + 7 > last:
            near["dow"].append(f"{weekday}L")
        near["month"] += [str(wall.month), _MONTH_NAMES[wall.month - 1]]
        near["dow"] += [
            str(weekday), _DAY_NAMES[weekday], f"{weekday}#{nth}",
            f"{_DAY_NAMES[weekday]}#{nth}", "7" if weekday == 0 else f"{weekday}-{weekday + 1}",
        ]  # fmt: skip
    return near


def _field(choices: list[str], near: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(choices), st.sampled_from(near))


@st.composite
def _expressions(draw: st.DrawFn, walls: list[datetime], seconds: bool) -> str:
    if not seconds and draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(sorted(_SHORTHANDS)))
    near = _fields_near(walls)
    always = st.just("*")
    fields = [
        draw(_field(_MINUTE_CHOICES, near["minute"])),
        draw(_field(_HOUR_CHOICES, near["hour"])),
        draw(st.one_of(always, _field(_DOM_CHOICES, near["dom"]))),
        draw(st.one_of(always, _field(_MONTH_CHOICES, near["month"]))),
        draw(st.one_of(always, _field(_DOW_CHOICES, near["dow"]))),
    ]
    if seconds:
        fields.insert(0, draw(st.sampled_from(_SECOND_CHOICES)))
    expression = " ".join(fields)
    try:
        parse_cron(expression)
    except InvalidSchedule:
        assume(False)  # an impossible date such as "31 FEB"; the validation tests cover it
    return expression


@st.composite
def _starts(draw: st.DrawFn, anchor: datetime, spread: timedelta) -> datetime:
    """An instant near ``anchor``: usually just before it, sometimes well before or after."""
    seconds = int(spread.total_seconds())
    anywhere = st.integers(-seconds, seconds // 3)
    close = st.integers(-3 * 3600, 3600)
    shift = draw(st.one_of(close, anywhere) if seconds > 4 * 3600 else anywhere)
    start = anchor + timedelta(seconds=shift)
    if draw(st.integers(0, 4)) == 0:
        start += timedelta(microseconds=draw(st.integers(1, 999_999)))
    return start


@st.composite
def _scenarios(draw: st.DrawFn, seconds: bool, random_zone: bool = False) -> Scenario:
    if random_zone:
        zone_name = draw(st.sampled_from(_ALL_ZONES))
        anchor = draw(st.sampled_from(_anchors(zone_name, draw(st.integers(2005, 2030)))))
    else:
        zone_name, anchor = draw(st.sampled_from(_NAMED_CASES))
    zone = get_zone(zone_name)
    walls = [_wall(anchor - timedelta(seconds=1), zone), _wall(anchor, zone)]
    if seconds:
        start = draw(_starts(anchor, timedelta(minutes=90)))
        hours = draw(st.sampled_from([1.5, 2.0, 2.5]))
    else:
        start = draw(_starts(anchor, timedelta(hours=30)))
        hours = draw(st.sampled_from([30.0, 36.0, 48.0]))
    return Scenario(zone_name, draw(_expressions(walls, seconds)), start, hours)


@st.composite
def _far_scenarios(draw: st.DrawFn) -> Scenario:
    """A rare expression (one month, one day) started weeks or months before it fires."""
    if draw(st.booleans()):
        zone_name = draw(st.sampled_from(_ALL_ZONES))
        anchor = draw(st.sampled_from(_anchors(zone_name, draw(st.integers(2005, 2030)))))
    else:
        zone_name, anchor = draw(st.sampled_from(_NAMED_CASES))
    zone = get_zone(zone_name)
    walls = [_wall(anchor - timedelta(seconds=1), zone), _wall(anchor, zone)]
    near = _fields_near(walls)
    # Days that occur once a month at most keep the reference walk short.
    once_a_month = [d for d in near["dow"] if "#" in d or d.endswith("L")]
    day_of_month, day_of_week = draw(
        st.one_of(
            st.tuples(st.sampled_from(near["dom"]), st.just("*")),
            st.tuples(st.just("*"), st.sampled_from(once_a_month)),
        )
    )
    fields = [
        draw(_field(_MINUTE_CHOICES, near["minute"])),
        draw(_field(_HOUR_CHOICES, near["hour"])),
        day_of_month,
        draw(st.sampled_from(near["month"])),
        day_of_week,
    ]
    expression = " ".join(fields)
    try:
        parse_cron(expression)
    except InvalidSchedule:
        assume(False)
    start = anchor - timedelta(days=draw(st.integers(3, 400)), seconds=draw(st.integers(0, 86399)))
    hours = (anchor - start).total_seconds() / 3600 + 48
    return Scenario(zone_name, expression, start, hours)


# ---------------------------------------------------------------------------------------
# The properties
# ---------------------------------------------------------------------------------------

_NY = get_zone("America/New_York")


@given(scenario=_scenarios(seconds=False))
# Start inside the second copy of New York's repeated 01:00 hour.
@example(
    scenario=Scenario(
        "America/New_York", "30 1 * * *", datetime(2024, 11, 3, 6, 10, tzinfo=UTC), 30
    )
)
@example(
    scenario=Scenario(
        "America/New_York", "*/15 1 * * *", datetime(2024, 11, 3, 6, 10, tzinfo=UTC), 3
    )
)
@example(
    scenario=Scenario(
        "America/New_York",
        "0,15,30,45 1 * * *",
        datetime(2024, 11, 3, 1, 20, tzinfo=_NY).replace(fold=1),
        26,
    )
)
# Start exactly at a transition.
@example(
    scenario=Scenario("America/New_York", "30 2 * * *", datetime(2024, 3, 10, 7, tzinfo=UTC), 30)
)
@example(
    scenario=Scenario("America/New_York", "0 3 * * *", datetime(2024, 3, 10, 7, tzinfo=UTC), 30)
)
@example(scenario=Scenario("Europe/London", "@hourly", datetime(2024, 10, 27, 1, tzinfo=UTC), 6))
@example(scenario=Scenario("Europe/Berlin", "0 2 * * *", datetime(2025, 3, 30, 1, tzinfo=UTC), 30))
# Start given as a wall time inside the gap, and just before the gap.
@example(
    scenario=Scenario(
        "America/New_York", "45 2 * * *", datetime(2024, 3, 10, 2, 30, tzinfo=_NY), 30
    )
)
@example(
    scenario=Scenario(
        "America/New_York",
        "0,15,30,45 2 * * *",
        datetime(2024, 3, 10, 6, 59, 59, 999_999, tzinfo=UTC),
        30,
    )
)
# São Paulo's midnight gap and its repeated 23:00 hour.
@example(
    scenario=Scenario("America/Sao_Paulo", "@daily", datetime(2018, 11, 3, 12, tzinfo=UTC), 40)
)
@example(
    scenario=Scenario("America/Sao_Paulo", "30 23 * * *", datetime(2018, 2, 17, 12, tzinfo=UTC), 40)
)
# Apia skipped 30 December 2011 entirely.
@example(scenario=Scenario("Pacific/Apia", "0 9 * * *", datetime(2011, 12, 29, 12, tzinfo=UTC), 48))
@example(
    scenario=Scenario("Pacific/Apia", "0 0 30 12 *", datetime(2011, 12, 29, 12, tzinfo=UTC), 48)
)
@example(
    scenario=Scenario("Pacific/Apia", "*/30 * * * *", datetime(2011, 12, 30, 8, tzinfo=UTC), 6)
)
@example(
    scenario=Scenario("Pacific/Apia", "0 12 * * FRI", datetime(2011, 12, 29, 12, tzinfo=UTC), 48)
)
# Lord Howe moves its clocks by 30 minutes.
@example(
    scenario=Scenario(
        "Australia/Lord_Howe", "0,15,30,45 2 * * *", datetime(2024, 10, 5, 14, tzinfo=UTC), 30
    )
)
@example(
    scenario=Scenario("Australia/Lord_Howe", "45 1 * * *", datetime(2024, 4, 6, 14, tzinfo=UTC), 30)
)
@example(
    scenario=Scenario(
        "Australia/Lord_Howe", "*/15 * * * *", datetime(2024, 4, 6, 14, tzinfo=UTC), 3
    )
)
# Chatham changes at 02:45 standard time, between +12:45 and +13:45.
@example(
    scenario=Scenario("Pacific/Chatham", "0 3 * * *", datetime(2024, 9, 28, 12, tzinfo=UTC), 30)
)
@example(
    scenario=Scenario("Pacific/Chatham", "15 3 * * *", datetime(2024, 4, 6, 12, tzinfo=UTC), 30)
)
@example(
    scenario=Scenario("Pacific/Chatham", "0 * * * *", datetime(2024, 9, 28, 12, tzinfo=UTC), 4)
)
# A change and its reversal less than a week apart (Gaza's Ramadan rule, Brazil in 2000).
@example(
    scenario=Scenario("Asia/Gaza", "* 1 27 10 *", datetime(2040, 10, 19, 23, 30, tzinfo=UTC), 190)
)
@example(
    scenario=Scenario(
        "America/Recife", "* 0 14 10 *", datetime(2000, 10, 8, 2, 30, tzinfo=UTC), 190
    )
)
def test_five_field_expressions_fire_where_the_reference_says(scenario: Scenario) -> None:
    scenario.check()


@given(scenario=_scenarios(seconds=True))
@example(
    scenario=Scenario("America/New_York", "0 30 2 * * *", datetime(2024, 3, 10, 6, tzinfo=UTC), 2)
)
@example(
    scenario=Scenario(
        "America/New_York", "*/10 30 2 * * *", datetime(2024, 3, 10, 6, tzinfo=UTC), 2
    )
)
@example(
    scenario=Scenario(
        "America/New_York", "0 30 1 * * *", datetime(2024, 11, 3, 6, 10, tzinfo=UTC), 1.5
    )
)
@example(
    scenario=Scenario(
        "America/New_York", "15 */20 * * * *", datetime(2024, 11, 3, 5, 10, tzinfo=UTC), 2.5
    )
)
@example(
    scenario=Scenario(
        "Australia/Lord_Howe", "30 10 2 * * *", datetime(2024, 10, 5, 15, tzinfo=UTC), 1.5
    )
)
@example(
    scenario=Scenario(
        "Pacific/Chatham", "59 59 2 * * *", datetime(2024, 4, 6, 12, 30, tzinfo=UTC), 2.5
    )
)
@example(
    scenario=Scenario("Pacific/Apia", "0 0 0 * * *", datetime(2011, 12, 30, 9, 30, tzinfo=UTC), 1)
)
def test_six_field_expressions_fire_where_the_reference_says(scenario: Scenario) -> None:
    scenario.check()


@given(scenario=_scenarios(seconds=False, random_zone=True))
def test_any_tzdata_zone_fires_where_the_reference_says(scenario: Scenario) -> None:
    scenario.check()


@given(scenario=_scenarios(seconds=True, random_zone=True))
def test_any_tzdata_zone_fires_where_the_reference_says_to_the_second(
    scenario: Scenario,
) -> None:
    scenario.check()


@given(scenario=_far_scenarios())
@example(
    scenario=Scenario("America/New_York", "* 1 3 11 *", datetime(2024, 1, 5, tzinfo=UTC), 7500)
)
@example(
    scenario=Scenario("America/New_York", "*/30 * 10 3 *", datetime(2023, 9, 1, tzinfo=UTC), 4700)
)
@example(scenario=Scenario("Pacific/Apia", "0 * 30 12 *", datetime(2011, 1, 1, tzinfo=UTC), 8800))
@example(scenario=Scenario("Asia/Gaza", "15 * 26-27 10 *", datetime(2040, 9, 1, tzinfo=UTC), 1500))
def test_rare_expressions_started_long_before_they_fire_match_the_reference(
    scenario: Scenario,
) -> None:
    scenario.check()


# ---------------------------------------------------------------------------------------
# The reference itself, on cases worked out by hand
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # New York, 10 March 2024: 02:00 EST becomes 03:00 EDT at 07:00 UTC.
        ("30 2 * * *", ["2024-03-10T03:00:00-04:00"]),
        ("0,15,30,45 2 * * *", ["2024-03-10T03:00:00-04:00"]),
        ("30 * * * *", ["2024-03-10T01:30:00-05:00", "2024-03-10T03:30:00-04:00"]),
    ],
)
def test_the_reference_applies_the_rule_in_the_spring_gap(
    expression: str, expected: list[str]
) -> None:
    start = datetime(2024, 3, 10, 6, tzinfo=UTC)
    got = reference_firings(expression, _NY, start, start + timedelta(hours=2), 10)
    assert [g.astimezone(_NY).isoformat() for g in got] == expected


def test_the_reference_fires_both_copies_of_the_repeated_hour_for_wildcards_only() -> None:
    start = datetime(2024, 11, 3, 5, tzinfo=UTC)  # 01:00 EDT
    end = start + timedelta(hours=2)
    wildcard = reference_firings("30 * * * *", _NY, start, end, 10)
    fixed = reference_firings("30 1 * * *", _NY, start, end, 10)
    assert [w.astimezone(_NY).isoformat() for w in wildcard] == [
        "2024-11-03T01:30:00-04:00",
        "2024-11-03T01:30:00-05:00",
    ]
    assert [f.astimezone(_NY).isoformat() for f in fixed] == ["2024-11-03T01:30:00-04:00"]
