"""SPEC §16's DST rule for recurrence rules, pinned with ISO-8601 instants and offsets.

The rule is cron's (SPEC §3): a fixed-time rule fires each wall time once (the first
copy of a repeated time; the first instant after a gap), a rule that fires every hour or
every minute follows elapsed time. Zones and changes:

=================== =====================================================================
America/New_York    2024-03-10 02:00 EST → 03:00 EDT; 2024-11-03 02:00 EDT → 01:00 EST
Europe/London       2024-03-31 01:00 GMT → 02:00 BST; 2024-10-27 02:00 BST → 01:00 GMT
Australia/Lord_Howe 2024-10-06 02:00 → 02:30 (+11:00); 2024-04-07 02:00 → 01:30 (+10:30)
Pacific/Apia        2011-12-29 23:59:59 (-10:00) → 2011-12-31 00:00 (+14:00);
                    2012-09-30 03:00 → 04:00 (+14:00)
=================== =====================================================================
"""

# Naive datetimes in this module are wall times (rule starts, wall clocks), not instants.
# ruff: noqa: DTZ001

from __future__ import annotations

from datetime import datetime

import pytest

from tickwork.domain.rrule import parse_rrule
from tickwork.domain.schedule import rrule_schedule
from tickwork.domain.slots import preview_slots


def _runs(rule: str, start: str, zone: str, after: str, count: int) -> list[str]:
    schedule = rrule_schedule(rule, start, zone)
    return [
        s.at.astimezone(schedule.zone).isoformat()
        for s in preview_slots(schedule, datetime.fromisoformat(after), count)
    ]


def _case(zone: str, rule: str, start: str, after: str, *expected: str) -> object:
    return pytest.param(zone, rule, start, after, list(expected), id=f"{zone}:{rule}")


# fmt: off
CASES = [
    # New York, spring forward.
    _case("America/New_York", "FREQ=DAILY;BYHOUR=2;BYMINUTE=30", "2024-03-01T00:00:00",
          "2024-03-09T12:00:00-05:00",
          "2024-03-10T03:00:00-04:00", "2024-03-11T02:30:00-04:00"),
    _case("America/New_York", "FREQ=DAILY;BYHOUR=2;BYMINUTE=0,15,30,45", "2024-03-01T00:00:00",
          "2024-03-10T01:00:00-05:00",
          "2024-03-10T03:00:00-04:00", "2024-03-11T02:00:00-04:00"),
    _case("America/New_York", "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=30",
          "2024-03-01T00:00:00", "2024-03-01T00:00:00-05:00",
          "2024-03-03T02:30:00-05:00", "2024-03-10T03:00:00-04:00", "2024-03-17T02:30:00-04:00"),
    _case("America/New_York", "FREQ=HOURLY", "2024-03-10T00:00:00", "2024-03-10T00:30:00-05:00",
          "2024-03-10T01:00:00-05:00", "2024-03-10T03:00:00-04:00", "2024-03-10T04:00:00-04:00"),
    _case("America/New_York", "FREQ=MINUTELY;INTERVAL=15", "2024-03-10T00:00:00",
          "2024-03-10T01:40:00-05:00",
          "2024-03-10T01:45:00-05:00", "2024-03-10T03:00:00-04:00", "2024-03-10T03:15:00-04:00"),
    # New York, fall back.
    _case("America/New_York", "FREQ=DAILY;BYHOUR=1;BYMINUTE=30", "2024-11-01T00:00:00",
          "2024-11-02T12:00:00-04:00",
          "2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00"),
    _case("America/New_York", "FREQ=MINUTELY;INTERVAL=30", "2024-11-03T00:00:00",
          "2024-11-03T00:45:00-04:00",
          "2024-11-03T01:00:00-04:00", "2024-11-03T01:30:00-04:00", "2024-11-03T01:00:00-05:00",
          "2024-11-03T01:30:00-05:00", "2024-11-03T02:00:00-05:00"),
    _case("America/New_York", "FREQ=HOURLY", "2024-11-03T00:00:00", "2024-11-03T00:30:00-04:00",
          "2024-11-03T01:00:00-04:00", "2024-11-03T01:00:00-05:00", "2024-11-03T02:00:00-05:00"),
    # Every 7 minutes is fixed-time: counted in wall time, it skips the repeated hour.
    _case("America/New_York", "FREQ=MINUTELY;INTERVAL=7", "2024-11-03T00:58:00",
          "2024-11-03T01:50:00-04:00",
          "2024-11-03T01:54:00-04:00", "2024-11-03T02:01:00-05:00"),
    # Every 2 hours is fixed-time too (only an interval of 1 fires every hour).
    _case("America/New_York", "FREQ=HOURLY;INTERVAL=2", "2024-11-03T00:00:00",
          "2024-11-02T23:30:00-04:00",
          "2024-11-03T00:00:00-04:00", "2024-11-03T02:00:00-05:00"),
    # BYHOUR listing every hour makes a daily rule follow elapsed time.
    _case("America/New_York",
          "FREQ=DAILY;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23",
          "2024-11-03T00:00:00", "2024-11-03T00:30:00-04:00",
          "2024-11-03T01:00:00-04:00", "2024-11-03T01:00:00-05:00", "2024-11-03T02:00:00-05:00"),
    # London.
    _case("Europe/London", "FREQ=DAILY;BYHOUR=1;BYMINUTE=30", "2024-03-01T00:00:00",
          "2024-03-30T12:00:00+00:00",
          "2024-03-31T02:00:00+01:00", "2024-04-01T01:30:00+01:00"),
    _case("Europe/London", "FREQ=DAILY;BYHOUR=1;BYMINUTE=30", "2024-10-01T00:00:00",
          "2024-10-26T12:00:00+01:00",
          "2024-10-27T01:30:00+01:00", "2024-10-28T01:30:00+00:00"),
    _case("Europe/London", "FREQ=HOURLY", "2024-10-27T00:00:00", "2024-10-27T00:30:00+01:00",
          "2024-10-27T01:00:00+01:00", "2024-10-27T01:00:00+00:00", "2024-10-27T02:00:00+00:00"),
    _case("Europe/London", "FREQ=MONTHLY;BYDAY=-1SU;BYHOUR=1;BYMINUTE=0", "2024-01-01T00:00:00",
          "2024-02-01T00:00:00+00:00",
          "2024-02-25T01:00:00+00:00", "2024-03-31T02:00:00+01:00", "2024-04-28T01:00:00+01:00"),
    # Lord Howe Island: 30-minute changes.
    _case("Australia/Lord_Howe", "FREQ=DAILY;BYHOUR=2;BYMINUTE=0,15,30,45",
          "2024-10-01T00:00:00", "2024-10-05T12:00:00+10:30",
          "2024-10-06T02:30:00+11:00", "2024-10-06T02:45:00+11:00", "2024-10-07T02:00:00+11:00"),
    _case("Australia/Lord_Howe", "FREQ=DAILY;BYHOUR=1;BYMINUTE=45", "2024-04-01T00:00:00",
          "2024-04-06T12:00:00+11:00",
          "2024-04-07T01:45:00+11:00", "2024-04-08T01:45:00+10:30"),
    _case("Australia/Lord_Howe", "FREQ=MINUTELY;INTERVAL=15", "2024-04-07T00:00:00",
          "2024-04-07T01:20:00+11:00",
          "2024-04-07T01:30:00+11:00", "2024-04-07T01:45:00+11:00", "2024-04-07T01:30:00+10:30",
          "2024-04-07T01:45:00+10:30", "2024-04-07T02:00:00+10:30"),
    # Apia skipped Friday 30 December 2011.
    _case("Pacific/Apia", "FREQ=DAILY;BYHOUR=9;BYMINUTE=0", "2011-12-01T00:00:00",
          "2011-12-29T00:00:00-10:00",
          "2011-12-29T09:00:00-10:00", "2011-12-31T00:00:00+14:00", "2011-12-31T09:00:00+14:00"),
    _case("Pacific/Apia", "FREQ=MONTHLY;BYMONTHDAY=30;BYHOUR=12;BYMINUTE=0",
          "2011-11-01T00:00:00", "2011-11-01T00:00:00-10:00",
          "2011-11-30T12:00:00-10:00", "2011-12-31T00:00:00+14:00", "2012-01-30T12:00:00+14:00"),
    # Four wall times of the missing day and midnight of the next collapse into one.
    _case("Pacific/Apia", "FREQ=HOURLY;INTERVAL=6", "2011-12-29T00:00:00",
          "2011-12-29T13:00:00-10:00",
          "2011-12-29T18:00:00-10:00", "2011-12-31T00:00:00+14:00", "2011-12-31T06:00:00+14:00"),
    _case("Pacific/Apia", "FREQ=DAILY;BYHOUR=3;BYMINUTE=30", "2012-09-01T00:00:00",
          "2012-09-29T12:00:00+13:00",
          "2012-09-30T04:00:00+14:00", "2012-10-01T03:30:00+14:00"),
]
# fmt: on


@pytest.mark.parametrize(("zone", "rule", "start", "after", "expected"), CASES)
def test_rule_wall_times_follow_the_dst_rule(
    zone: str, rule: str, start: str, after: str, expected: list[str]
) -> None:
    assert _runs(rule, start, zone, after, len(expected)) == expected


@pytest.mark.parametrize(
    ("rule", "wildcard"),
    [
        ("FREQ=HOURLY", True),
        ("FREQ=HOURLY;INTERVAL=2", False),
        ("FREQ=HOURLY;BYHOUR=9,10,11", False),
        ("FREQ=MINUTELY;INTERVAL=15", True),
        ("FREQ=MINUTELY;INTERVAL=15;BYHOUR=9", True),
        ("FREQ=MINUTELY;INTERVAL=7", False),
        ("FREQ=SECONDLY;INTERVAL=120", True),
        ("FREQ=SECONDLY;INTERVAL=7", False),
        ("FREQ=DAILY;BYMINUTE=" + ",".join(str(m) for m in range(60)), True),
        ("FREQ=DAILY;BYHOUR=" + ",".join(str(h) for h in range(24)), True),
        ("FREQ=DAILY;BYHOUR=9;BYMINUTE=30", False),
        ("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", False),
    ],
)
def test_which_rules_follow_elapsed_time(rule: str, wildcard: bool) -> None:
    assert parse_rrule(rule, datetime(2026, 1, 1)).wildcard is wildcard


def test_a_rule_that_fires_only_in_gaps_is_refused_in_that_zone_only() -> None:
    rule = "FREQ=YEARLY;BYMONTH=3;BYDAY=2SU;BYHOUR=2;BYMINUTE=" + ",".join(map(str, range(60)))
    with pytest.raises(Exception, match="never fires in time zone America/New_York"):
        rrule_schedule(rule, "2024-01-01T00:00:00", "America/New_York")
    assert rrule_schedule(rule, "2024-01-01T00:00:00", "Europe/London").next_after(
        datetime.fromisoformat("2024-01-01T00:00:00+00:00")
    ) == datetime.fromisoformat("2024-03-10T02:00:00+00:00")


def test_a_local_until_is_read_by_the_fixed_time_rule() -> None:
    # UNTIL 01:30 on the fall-back day in New York: its first copy (EDT) ends the series.
    got = _runs(
        "FREQ=MINUTELY;INTERVAL=30;UNTIL=20241103T013000",
        "2024-11-03T00:00:00",
        "America/New_York",
        "2024-11-03T00:00:00-04:00",
        10,
    )
    assert got == ["2024-11-03T00:30:00-04:00", "2024-11-03T01:00:00-04:00",
                   "2024-11-03T01:30:00-04:00"]  # fmt: skip


def test_count_counts_firings_after_mapping() -> None:
    # Four wall times in the gap fire once, so COUNT=3 reaches into the next day.
    got = _runs(
        "FREQ=DAILY;BYHOUR=2;BYMINUTE=0,15,30,45;COUNT=3",
        "2024-03-10T00:00:00",
        "America/New_York",
        "2024-03-09T00:00:00-05:00",
        10,
    )
    assert got == ["2024-03-10T03:00:00-04:00", "2024-03-11T02:00:00-04:00",
                   "2024-03-11T02:15:00-04:00"]  # fmt: skip
