"""Every way a recurrence rule, its start or a calendar can be refused, and the words used."""

# Naive datetimes in this module are wall times (rule starts, wall clocks), not instants.
# ruff: noqa: DTZ001

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from tickwork.domain.calendars import parse_calendar
from tickwork.domain.rrule import parse_rrule, parse_rrule_start
from tickwork.domain.rrule_parse import parse_rule_text
from tickwork.domain.schedule import require_fires_after, rrule_schedule
from tickwork.errors import InvalidSchedule, ValidationError, ValidationErrors

START = datetime(2026, 1, 5, 9, 0)  # a Monday


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("", "rrule: is empty; give a rule such as FREQ=WEEKLY;BYDAY=MO"),
        ("   ", "rrule: is empty"),
        ("F" * 1001, "rrule: is longer than 1000 characters"),
        ("FREQ=DAILY;;BYHOUR=9", "rrule: empty part in 'FREQ=DAILY;;BYHOUR=9'"),
        ("FREQ=DAILY;", "rrule: empty part"),
        ("FREQ", "rrule: 'FREQ' is not a NAME=VALUE part (e.g. FREQ=DAILY)"),
        ("FREQ=DAILY;COLOR=RED", "rrule: unknown part 'COLOR' (known: FREQ, UNTIL, COUNT"),
        ("FREQ=DAILY;freq=weekly", "rrule: FREQ is given twice"),
        ("BYHOUR=9", "rrule: FREQ is required (e.g. FREQ=DAILY)"),
        ("FREQ=FORTNIGHTLY", "rrule: FREQ=FORTNIGHTLY is not one of SECONDLY, MINUTELY"),
        ("FREQ=DAILY;INTERVAL=0", "rrule: INTERVAL=0 must be at least 1"),
        ("FREQ=DAILY;INTERVAL=two", "rrule: INTERVAL=TWO is not a whole number"),
        ("FREQ=YEARLY;INTERVAL=101", "rrule: INTERVAL=101 is too long for FREQ=YEARLY"),
        ("FREQ=DAILY;COUNT=0", "rrule: COUNT=0 must be at least 1"),
        ("FREQ=DAILY;COUNT=1001", "rrule: COUNT=1001 is more than 1000; for a longer series"),
        ("FREQ=DAILY;COUNT=5;UNTIL=20261231T000000Z", "rrule: give COUNT or UNTIL, not both"),
        ("FREQ=DAILY;UNTIL=20261231", "rrule: UNTIL=20261231 is a date; give a date-time"),
        ("FREQ=DAILY;UNTIL=tomorrow", "rrule: UNTIL=TOMORROW is not a date-time such as"),
        ("FREQ=DAILY;UNTIL=20260230T000000Z", "rrule: UNTIL=20260230T000000Z is not a valid"),
        ("FREQ=DAILY;BYHOUR=24", "rrule: BYHOUR=24 is out of range 0 to 23"),
        ("FREQ=DAILY;BYHOUR=-1", "rrule: BYHOUR=-1 is out of range 0 to 23"),
        ("FREQ=DAILY;BYMINUTE=60", "rrule: BYMINUTE=60 is out of range 0 to 59"),
        ("FREQ=DAILY;BYSECOND=60", "rrule: BYSECOND=60 is out of range 0 to 59 (leap seconds"),
        ("FREQ=DAILY;BYHOUR=9,,10", "rrule: BYHOUR=9,,10 has an empty item"),
        ("FREQ=MONTHLY;BYMONTHDAY=0", "rrule: BYMONTHDAY=0 is out of range 1 to 31 or -31"),
        ("FREQ=MONTHLY;BYMONTHDAY=32", "rrule: BYMONTHDAY=32 is out of range"),
        ("FREQ=YEARLY;BYYEARDAY=367", "rrule: BYYEARDAY=367 is out of range 1 to 366"),
        ("FREQ=YEARLY;BYWEEKNO=54", "rrule: BYWEEKNO=54 is out of range 1 to 53"),
        ("FREQ=YEARLY;BYMONTH=13", "rrule: BYMONTH=13 is out of range 1 to 12"),
        ("FREQ=MONTHLY;BYDAY=XX", "rrule: BYDAY=XX is not a weekday (MO, TU"),
        ("FREQ=MONTHLY;BYDAY=0MO", "rrule: BYDAY=0MO: the position must be 1 to 53"),
        ("FREQ=YEARLY;BYDAY=54MO", "rrule: BYDAY=54MO: the position must be 1 to 53"),
        ("FREQ=MONTHLY;BYDAY=6MO", "rrule: BYDAY position 6 is out of range within a month"),
        ("FREQ=WEEKLY;BYDAY=1MO", "rrule: BYDAY=1MO: a position before the weekday needs"),
        (
            "FREQ=YEARLY;BYWEEKNO=1;BYDAY=1MO",
            "rrule: BYDAY=1MO: a position before the weekday cannot",
        ),
        ("FREQ=MONTHLY;WKST=XX", "rrule: WKST=XX is not a weekday (MO, TU"),
        ("FREQ=MONTHLY;BYSETPOS=1", "rrule: BYSETPOS requires another BYxxx part"),
        ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=0", "rrule: BYSETPOS=0 is out of range 1 to 366"),
        (
            "FREQ=MONTHLY;BYDAY=MO;BYSETPOS=" + ",".join(str(i) for i in range(1, 62)),
            "rrule: BYSETPOS lists 61 positions; at most 60",
        ),
        ("FREQ=MONTHLY;BYWEEKNO=1", "rrule: BYWEEKNO works only with FREQ=YEARLY"),
        ("FREQ=MONTHLY;BYYEARDAY=1", "rrule: BYYEARDAY cannot be used with FREQ=MONTHLY"),
        ("FREQ=WEEKLY;BYMONTHDAY=1", "rrule: BYMONTHDAY cannot be used with FREQ=WEEKLY"),
        ("FREQ=HOURLY;INTERVAL=5;BYHOUR=9", "rrule: INTERVAL=5 with FREQ=HOURLY does not divide"),
        ("FREQ=MINUTELY;INTERVAL=7;BYMINUTE=0", "rrule: INTERVAL=7 with FREQ=MINUTELY does not"),
        ("FREQ=SECONDLY;INTERVAL=7;BYSECOND=0", "rrule: INTERVAL=7 with FREQ=SECONDLY does not"),
    ],
)
def test_a_malformed_rule_is_refused_naming_the_part(rule: str, message: str) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        parse_rrule(rule, START)
    assert caught.value.field == "rrule"
    assert str(caught.value).startswith(message), str(caught.value)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
            "rrule: never fires: no date matches BYMONTH=2 with BYMONTHDAY=30 (check",
        ),
        ("FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=31", "rrule: never fires: no date matches"),
        ("FREQ=MONTHLY;BYMONTH=2;BYDAY=5MO;BYMONTHDAY=1", "rrule: never fires: no date"),
        ("FREQ=HOURLY;INTERVAL=2;BYHOUR=10", "rrule: never fires: no time of day matches"),
        ("FREQ=DAILY;BYHOUR=9;BYSETPOS=2", "rrule: never fires: no time of day matches"),
        # Every week is a Tuesday-free stride from a Monday start: no date ever comes.
        ("FREQ=DAILY;INTERVAL=7;BYDAY=TU", "rrule: never fires: no date and time matches it"),
        ("FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29", "rrule: never fires"),
    ],
)
def test_a_rule_that_never_fires_is_refused_as_such(rule: str, message: str) -> None:
    start = datetime(2027, 1, 4, 9) if "INTERVAL=4" in rule else START
    began = time.perf_counter()
    with pytest.raises(InvalidSchedule) as caught:
        parse_rrule(rule, start)
    assert str(caught.value).startswith(message), str(caught.value)
    assert time.perf_counter() - began < 1.0  # bounded, never a walk to year 9999


def test_a_leap_day_rule_started_in_a_leap_year_fires() -> None:
    rule = parse_rrule("FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29", datetime(2028, 1, 1))
    assert rule.next_after(datetime(2028, 1, 1, tzinfo=UTC), UTC) == datetime(
        2028, 2, 29, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("start", "message"),
    [
        ("next monday", "rrule_start: 'next monday' is not a wall time such as"),
        ("", "rrule_start: give a wall time such as 2026-01-05T09:00:00"),
        (None, "rrule_start: give a wall time"),
        ("2026-01-05T09:00:00+01:00", "rrule_start: 2026-01-05T09:00:00+01:00 has a UTC offset"),
        ("2026-01-05T09:00:00.5", "rrule_start: 2026-01-05T09:00:00.5 must be whole seconds"),
    ],
)
def test_a_bad_start_is_refused(start: object, message: str) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        parse_rrule_start(start)
    assert caught.value.field == "rrule_start"
    assert str(caught.value).startswith(message)


def test_the_rrule_prefix_lower_case_and_any_order_are_accepted_and_canonicalised() -> None:
    parts = parse_rule_text("RRULE:byday=tu;interval=2;freq=weekly;byhour=9;byminute=0")
    assert parts.text() == "FREQ=WEEKLY;INTERVAL=2;BYMINUTE=0;BYHOUR=9;BYDAY=TU"
    assert parse_rule_text(parts.text()) == parts


def test_a_rule_whose_series_is_over_never_fires_after_now() -> None:
    schedule = rrule_schedule("FREQ=DAILY;UNTIL=20261130T235959Z", "2026-11-01T09:00:00", "UTC")
    now = datetime(2026, 12, 1, tzinfo=UTC)
    with pytest.raises(InvalidSchedule) as caught:
        require_fires_after(schedule, now)
    assert str(caught.value).startswith("rrule: never fires after 2026-12-01T00:00:00Z")
    require_fires_after(schedule, datetime(2026, 11, 15, tzinfo=UTC))


def test_a_used_up_count_never_fires_after_now() -> None:
    schedule = rrule_schedule("FREQ=DAILY;COUNT=3", "2026-11-01T09:00:00", "Europe/Berlin")
    with pytest.raises(InvalidSchedule, match="never fires after 2026-11-03T08:00:00Z"):
        require_fires_after(schedule, datetime(2026, 11, 3, 8, tzinfo=UTC))


def test_an_unknown_zone_is_refused_on_the_timezone_field() -> None:
    with pytest.raises(InvalidSchedule) as caught:
        rrule_schedule("FREQ=DAILY", "2026-01-01T00:00:00", "Mars/Olympus")
    assert caught.value.field == "timezone"


# ---------------------------------------------------------------------------------------
# Calendars
# ---------------------------------------------------------------------------------------


def _errors(value: object) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        parse_calendar(value)
    error = caught.value
    found = error.errors if isinstance(error, ValidationErrors) else [error]
    return [str(e) for e in found]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("DE-BY", 'calendar: must be an object such as {"holidays": "DE-BY"'),
        ({"holiday": "DE"}, "calendar: unknown key 'holiday' (known: exclude_dates,"),
        ({"holidays": "XX"}, "calendar.holidays: unknown country 'XX' (known: AD, AE,"),
        ({"holidays": "DE-XX"}, "calendar.holidays: unknown subdivision 'XX' of DE (known: BB,"),
        ({"holidays": ""}, "calendar.holidays: must be a country code such as US or DE-BY"),
        ({"holidays": 49}, "calendar.holidays: must be a country code"),
        ({"exclude_dates": "2026-12-24"}, "calendar.exclude_dates: must be a list of dates"),
        ({"exclude_dates": ["24.12.2026"]}, "calendar.exclude_dates[0]: '24.12.2026' is not a"),
        (
            {"exclude_dates": ["2026-02-30"]},
            "calendar.exclude_dates[0]: '2026-02-30' is not a date that exists",
        ),
        ({"exclude_dates": [20261224]}, "calendar.exclude_dates[0]: 20261224 is not a date"),
        (
            {"exclude_dates": ["2026-01-01"] * 1001},
            "calendar.exclude_dates: has 1001 dates; at most 1000",
        ),
        (
            {"exclude_ranges": [["2026-08-15", "2026-08-01"]]},
            "calendar.exclude_ranges[0]: runs backwards (2026-08-15 is after",
        ),
        ({"exclude_ranges": [["2026-08-01"]]}, "calendar.exclude_ranges[0]: must be a [from, to]"),
        ({"exclude_ranges": ["2026-08-01"]}, "calendar.exclude_ranges[0]: must be a [from, to]"),
        ({"exclude_ranges": [["2026-08-01", "soon"]]}, "calendar.exclude_ranges[0][1]: 'soon'"),
        ({"exclude_ranges": {"a": 1}}, "calendar.exclude_ranges: must be a list of [from, to]"),
        (
            {"exclude_ranges": [["2026-01-01", "2026-01-02"]] * 201},
            "calendar.exclude_ranges: has 201 ranges; at most 200",
        ),
        ({"weekends": "skip"}, "calendar.weekends: 'skip' is not one of exclude, include"),
        (
            {"shift": "next"},
            "calendar.shift: 'next' is not one of skip, next_business_day, previous_business_day",
        ),
    ],
)
def test_a_bad_calendar_is_refused_naming_the_part(value: object, message: str) -> None:
    got = _errors(value)
    assert got[0].startswith(message), got[0]


def test_every_fault_of_a_calendar_is_reported_at_once() -> None:
    got = _errors({"holidays": "XX", "weekends": "no", "exclude_dates": ["x", "2026-13-01"]})
    fields = [g.split(":")[0] for g in got]
    assert fields == [
        "calendar.exclude_dates[0]",
        "calendar.exclude_dates[1]",
        "calendar.holidays",
        "calendar.weekends",
    ]


def test_a_calendar_round_trips_through_its_canonical_form() -> None:
    value = {
        "exclude_dates": ["2026-12-31", "2026-12-24", "2026-12-24"],
        "exclude_ranges": [["2026-08-01", "2026-08-15"]],
        "holidays": "de-by",
        "weekends": "exclude",
        "shift": "previous_business_day",
    }
    calendar = parse_calendar(value)
    assert calendar.holidays == "DE-BY"
    assert calendar.to_json()["exclude_dates"] == ["2026-12-24", "2026-12-31"]
    assert parse_calendar(calendar.to_json()) == calendar
