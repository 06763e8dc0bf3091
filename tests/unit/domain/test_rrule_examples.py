"""RFC 5545's recurrence examples (§3.8.5.3) and python-dateutil's own rrule test cases.

Each row gives the rule, its start (a wall time) and the firings as ISO-8601 strings with
the offset in force, so the expected value says when (the instant) and what the clock
showed. The RFC's examples are in America/New_York (DTSTART;TZID=America/New_York);
dateutil's test cases use naive datetimes, read here in UTC.

Two deliberate differences from the RFC's text, both SPEC §16's:

* ``rrule_start`` fires only if it matches the rule, whereas DTSTART always counts as
  the first instance: the rows where the RFC lists a non-matching DTSTART (every other
  week on MO, WE, FR; Friday the 13th, which the RFC removes with EXDATE) omit it.
* The RFC's "every 3 hours from 9:00 AM to 5:00 PM" gives UNTIL=19970902T170000Z, which
  is 13:00 EDT, yet lists 15:00 EDT: UNTIL is an instant here, so 15:00 is not included.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tickwork.domain.schedule import rrule_schedule
from tickwork.domain.slots import preview_slots
from tickwork.domain.zones import get_zone

NY = "America/New_York"


def firings(rule: str, start: str, zone: str, count: int) -> list[str]:
    schedule = rrule_schedule(rule, start, zone)
    after = datetime.fromisoformat(start).replace(tzinfo=schedule.zone) - timedelta(days=1)
    return [
        s.at.astimezone(schedule.zone).isoformat() for s in preview_slots(schedule, after, count)
    ]


def _ny(day: str, clock: str = "09:00") -> str:
    """``1997-09-02`` → ``1997-09-02T09:00:00-04:00``: the wall time with New York's
    offset that day (EDT -04:00 or EST -05:00; none of these wall times is ambiguous)."""
    moment = datetime.fromisoformat(f"{day}T{clock}")
    edt = bool(moment.replace(tzinfo=get_zone(NY)).dst())
    return moment.isoformat() + ("-04:00" if edt else "-05:00")


def _days(prefix: str, *days: int) -> list[str]:
    return [_ny(f"{prefix}-{d:02d}") for d in days]


# fmt: off
RFC_EXAMPLES = [
    ("daily for 10 occurrences", "FREQ=DAILY;COUNT=10", "1997-09-02T09:00:00",
     _days("1997-09", *range(2, 12))),
    ("every other day", "FREQ=DAILY;INTERVAL=2", "1997-09-02T09:00:00",
     _days("1997-09", 2, 4, 6, 8, 10)),
    ("every 10 days, 5 occurrences", "FREQ=DAILY;INTERVAL=10;COUNT=5", "1997-09-02T09:00:00",
     [*_days("1997-09", 2, 12, 22), *_days("1997-10", 2, 12)]),
    ("every day in January, for 3 years (yearly form)",
     "FREQ=YEARLY;UNTIL=20000131T140000Z;BYMONTH=1;BYDAY=SU,MO,TU,WE,TH,FR,SA",
     "1998-01-01T09:00:00",
     [*_days("1998-01", *range(1, 32)), *_days("1999-01", *range(1, 32)),
      *_days("2000-01", *range(1, 32))]),
    ("every day in January, for 3 years (daily form)",
     "FREQ=DAILY;UNTIL=20000131T140000Z;BYMONTH=1", "1998-01-01T09:00:00",
     [*_days("1998-01", *range(1, 32)), *_days("1999-01", *range(1, 32)),
      *_days("2000-01", *range(1, 32))]),
    ("weekly for 10 occurrences", "FREQ=WEEKLY;COUNT=10", "1997-09-02T09:00:00",
     [*_days("1997-09", 2, 9, 16, 23, 30), *_days("1997-10", 7, 14, 21, 28),
      _ny("1997-11-04")]),
    ("weekly until December 24, 1997", "FREQ=WEEKLY;UNTIL=19971224T000000Z",
     "1997-09-02T09:00:00",
     [*_days("1997-09", 2, 9, 16, 23, 30), *_days("1997-10", 7, 14, 21, 28),
      *_days("1997-11", 4, 11, 18, 25), *_days("1997-12", 2, 9, 16, 23)]),
    ("every other week", "FREQ=WEEKLY;INTERVAL=2;WKST=SU", "1997-09-02T09:00:00",
     [*_days("1997-09", 2, 16, 30), *_days("1997-10", 14, 28), *_days("1997-11", 11, 25),
      *_days("1997-12", 9, 23), _ny("1998-01-06")]),
    ("weekly on Tuesday and Thursday for five weeks (UNTIL)",
     "FREQ=WEEKLY;UNTIL=19971007T000000Z;WKST=SU;BYDAY=TU,TH", "1997-09-02T09:00:00",
     [*_days("1997-09", 2, 4, 9, 11, 16, 18, 23, 25, 30), _ny("1997-10-02")]),
    ("weekly on Tuesday and Thursday for five weeks (COUNT)",
     "FREQ=WEEKLY;COUNT=10;WKST=SU;BYDAY=TU,TH", "1997-09-02T09:00:00",
     [*_days("1997-09", 2, 4, 9, 11, 16, 18, 23, 25, 30), _ny("1997-10-02")]),
    ("every other week on MO, WE, FR until December 24 (DTSTART omitted)",
     "FREQ=WEEKLY;INTERVAL=2;UNTIL=19971224T000000Z;WKST=SU;BYDAY=MO,WE,FR",
     "1997-09-01T09:00:00",
     [*_days("1997-09", 1, 3, 5, 15, 17, 19, 29), *_days("1997-10", 1, 3, 13, 15, 17, 27, 29,
      31), *_days("1997-11", 10, 12, 14, 24, 26, 28), *_days("1997-12", 8, 10, 12, 22)]),
    ("every other week on TU and TH, 8 occurrences",
     "FREQ=WEEKLY;INTERVAL=2;COUNT=8;WKST=SU;BYDAY=TU,TH", "1997-09-02T09:00:00",
     [*_days("1997-09", 2, 4, 16, 18, 30), *_days("1997-10", 2, 14, 16)]),
    ("monthly on the first Friday, 10 occurrences", "FREQ=MONTHLY;COUNT=10;BYDAY=1FR",
     "1997-09-05T09:00:00",
     [_ny("1997-09-05"), _ny("1997-10-03"), _ny("1997-11-07"), _ny("1997-12-05"),
      _ny("1998-01-02"), _ny("1998-02-06"), _ny("1998-03-06"), _ny("1998-04-03"),
      _ny("1998-05-01"), _ny("1998-06-05")]),
    ("monthly on the first Friday until December 24",
     "FREQ=MONTHLY;UNTIL=19971224T000000Z;BYDAY=1FR", "1997-09-05T09:00:00",
     [_ny("1997-09-05"), _ny("1997-10-03"), _ny("1997-11-07"), _ny("1997-12-05")]),
    ("every other month on the first and last Sunday",
     "FREQ=MONTHLY;INTERVAL=2;COUNT=10;BYDAY=1SU,-1SU", "1997-09-07T09:00:00",
     [_ny("1997-09-07"), _ny("1997-09-28"), _ny("1997-11-02"), _ny("1997-11-30"),
      _ny("1998-01-04"), _ny("1998-01-25"), _ny("1998-03-01"), _ny("1998-03-29"),
      _ny("1998-05-03"), _ny("1998-05-31")]),
    ("monthly on the second-to-last Monday for 6 months", "FREQ=MONTHLY;COUNT=6;BYDAY=-2MO",
     "1997-09-22T09:00:00",
     [_ny("1997-09-22"), _ny("1997-10-20"), _ny("1997-11-17"), _ny("1997-12-22"),
      _ny("1998-01-19"), _ny("1998-02-16")]),
    ("monthly on the third-to-the-last day", "FREQ=MONTHLY;BYMONTHDAY=-3",
     "1997-09-28T09:00:00",
     [_ny("1997-09-28"), _ny("1997-10-29"), _ny("1997-11-28"), _ny("1997-12-29"),
      _ny("1998-01-29"), _ny("1998-02-26")]),
    ("monthly on the 2nd and 15th, 10 occurrences", "FREQ=MONTHLY;COUNT=10;BYMONTHDAY=2,15",
     "1997-09-02T09:00:00",
     [*_days("1997-09", 2, 15), *_days("1997-10", 2, 15), *_days("1997-11", 2, 15),
      *_days("1997-12", 2, 15), *_days("1998-01", 2, 15)]),
    ("monthly on the first and last day, 10 occurrences",
     "FREQ=MONTHLY;COUNT=10;BYMONTHDAY=1,-1", "1997-09-30T09:00:00",
     [_ny("1997-09-30"), _ny("1997-10-01"), _ny("1997-10-31"), _ny("1997-11-01"),
      _ny("1997-11-30"), _ny("1997-12-01"), _ny("1997-12-31"), _ny("1998-01-01"),
      _ny("1998-01-31"), _ny("1998-02-01")]),
    ("every 18 months on the 10th to 15th, 10 occurrences",
     "FREQ=MONTHLY;INTERVAL=18;COUNT=10;BYMONTHDAY=10,11,12,13,14,15", "1997-09-10T09:00:00",
     [*_days("1997-09", 10, 11, 12, 13, 14, 15), *_days("1999-03", 10, 11, 12, 13)]),
    ("every Tuesday, every other month", "FREQ=MONTHLY;INTERVAL=2;BYDAY=TU",
     "1997-09-02T09:00:00",
     [*_days("1997-09", 2, 9, 16, 23, 30), *_days("1997-11", 4, 11, 18, 25),
      *_days("1998-01", 6, 13, 20, 27), *_days("1998-03", 3, 10, 17, 24, 31)]),
    ("yearly in June and July, 10 occurrences", "FREQ=YEARLY;COUNT=10;BYMONTH=6,7",
     "1997-06-10T09:00:00",
     [_ny(f"{y}-{m}-10") for y in range(1997, 2002) for m in ("06", "07")]),
    ("every other year in January to March, 10 occurrences",
     "FREQ=YEARLY;INTERVAL=2;COUNT=10;BYMONTH=1,2,3", "1997-03-10T09:00:00",
     [_ny("1997-03-10"), *[_ny(f"{y}-0{m}-10") for y in (1999, 2001, 2003) for m in (1, 2, 3)]]),
    ("every third year on days 1, 100 and 200, 10 occurrences",
     "FREQ=YEARLY;INTERVAL=3;COUNT=10;BYYEARDAY=1,100,200", "1997-01-01T09:00:00",
     [_ny("1997-01-01"), _ny("1997-04-10"), _ny("1997-07-19"), _ny("2000-01-01"),
      _ny("2000-04-09"), _ny("2000-07-18"), _ny("2003-01-01"), _ny("2003-04-10"),
      _ny("2003-07-19"), _ny("2006-01-01")]),
    ("every 20th Monday of the year", "FREQ=YEARLY;BYDAY=20MO", "1997-05-19T09:00:00",
     [_ny("1997-05-19"), _ny("1998-05-18"), _ny("1999-05-17")]),
    ("Monday of ISO week 20", "FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO", "1997-05-12T09:00:00",
     [_ny("1997-05-12"), _ny("1998-05-11"), _ny("1999-05-17")]),
    ("every Thursday in March", "FREQ=YEARLY;BYMONTH=3;BYDAY=TH", "1997-03-13T09:00:00",
     [*_days("1997-03", 13, 20, 27), *_days("1998-03", 5, 12, 19, 26),
      *_days("1999-03", 4, 11, 18, 25)]),
    ("every Thursday in June, July and August", "FREQ=YEARLY;BYDAY=TH;BYMONTH=6,7,8",
     "1997-06-05T09:00:00",
     [*_days("1997-06", 5, 12, 19, 26), *_days("1997-07", 3, 10, 17, 24, 31),
      *_days("1997-08", 7, 14, 21, 28), *_days("1998-06", 4, 11, 18, 25)]),
    ("every Friday the 13th (DTSTART omitted, as the RFC's EXDATE does)",
     "FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13", "1997-09-02T09:00:00",
     [_ny("1998-02-13"), _ny("1998-03-13"), _ny("1998-11-13"), _ny("1999-08-13"),
      _ny("2000-10-13")]),
    ("the first Saturday after the first Sunday of the month",
     "FREQ=MONTHLY;BYDAY=SA;BYMONTHDAY=7,8,9,10,11,12,13", "1997-09-13T09:00:00",
     [_ny("1997-09-13"), _ny("1997-10-11"), _ny("1997-11-08"), _ny("1997-12-13"),
      _ny("1998-01-10"), _ny("1998-02-07"), _ny("1998-03-07"), _ny("1998-04-11"),
      _ny("1998-05-09"), _ny("1998-06-13")]),
    ("US presidential election day",
     "FREQ=YEARLY;INTERVAL=4;BYMONTH=11;BYDAY=TU;BYMONTHDAY=2,3,4,5,6,7,8",
     "1996-11-05T09:00:00",
     [_ny("1996-11-05"), _ny("2000-11-07"), _ny("2004-11-02")]),
    ("the third of Tuesday, Wednesday or Thursday, for 3 months",
     "FREQ=MONTHLY;COUNT=3;BYDAY=TU,WE,TH;BYSETPOS=3", "1997-09-04T09:00:00",
     [_ny("1997-09-04"), _ny("1997-10-07"), _ny("1997-11-06")]),
    ("the second-to-last weekday of the month",
     "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-2", "1997-09-29T09:00:00",
     [_ny("1997-09-29"), _ny("1997-10-30"), _ny("1997-11-27"), _ny("1997-12-30"),
      _ny("1998-01-29"), _ny("1998-02-26"), _ny("1998-03-30")]),
    ("every 3 hours from 9:00 (UNTIL is 13:00 EDT; the RFC's 15:00 is past it)",
     "FREQ=HOURLY;INTERVAL=3;UNTIL=19970902T170000Z", "1997-09-02T09:00:00",
     [_ny("1997-09-02", "09:00"), _ny("1997-09-02", "12:00")]),
    ("every 15 minutes, 6 occurrences", "FREQ=MINUTELY;INTERVAL=15;COUNT=6",
     "1997-09-02T09:00:00",
     [_ny("1997-09-02", c) for c in ("09:00", "09:15", "09:30", "09:45", "10:00", "10:15")]),
    ("every hour and a half, 4 occurrences", "FREQ=MINUTELY;INTERVAL=90;COUNT=4",
     "1997-09-02T09:00:00",
     [_ny("1997-09-02", c) for c in ("09:00", "10:30", "12:00", "13:30")]),
    ("every 20 minutes from 9:00 to 16:40 (daily form)",
     "FREQ=DAILY;BYHOUR=9,10,11,12,13,14,15,16;BYMINUTE=0,20,40", "1997-09-02T09:00:00",
     [*[_ny("1997-09-02", f"{h:02d}:{m:02d}") for h in range(9, 17) for m in (0, 20, 40)],
      _ny("1997-09-03", "09:00")]),
    ("every 20 minutes from 9:00 to 16:40 (minutely form)",
     "FREQ=MINUTELY;INTERVAL=20;BYHOUR=9,10,11,12,13,14,15,16", "1997-09-02T09:00:00",
     [*[_ny("1997-09-02", f"{h:02d}:{m:02d}") for h in range(9, 17) for m in (0, 20, 40)],
      _ny("1997-09-03", "09:00")]),
    ("WKST=MO", "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO", "1997-08-05T09:00:00",
     _days("1997-08", 5, 10, 19, 24)),
    ("WKST=SU", "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU", "1997-08-05T09:00:00",
     _days("1997-08", 5, 17, 19, 31)),
    ("an invalid date (30 February) is ignored", "FREQ=MONTHLY;BYMONTHDAY=15,30;COUNT=5",
     "2007-01-15T09:00:00",
     [_ny("2007-01-15"), _ny("2007-01-30"), _ny("2007-02-15"), _ny("2007-03-15"),
      _ny("2007-03-30")]),
]
# fmt: on


@pytest.mark.parametrize(
    ("rule", "start", "expected"),
    [pytest.param(rule, start, expected, id=name) for name, rule, start, expected in RFC_EXAMPLES],
)
def test_the_rfc_5545_examples_fire_as_the_rfc_lists(
    rule: str, start: str, expected: list[str]
) -> None:
    assert firings(rule, start, NY, len(expected) + 1)[: len(expected)] == expected


def test_a_count_stops_the_series() -> None:
    assert len(firings("FREQ=DAILY;COUNT=10", "1997-09-02T09:00:00", NY, 20)) == 10


def test_a_long_until_series_ends_on_its_last_day() -> None:
    got = firings("FREQ=DAILY;UNTIL=19971224T000000Z", "1997-09-02T09:00:00", NY, 200)
    assert len(got) == 113
    assert got[0] == "1997-09-02T09:00:00-04:00"
    # Clocks went back on 26 October 1997: the wall time stays 09:00.
    assert got[54:56] == ["1997-10-26T09:00:00-05:00", "1997-10-27T09:00:00-05:00"]
    assert got[-1] == "1997-12-23T09:00:00-05:00"


# ---------------------------------------------------------------------------------------
# python-dateutil's test cases (dateutil/test/test_rrule.py), dtstart 1997-09-02 09:00
# ---------------------------------------------------------------------------------------


def _utc(*stamps: str) -> list[str]:
    return [datetime.fromisoformat(s).isoformat() + "+00:00" for s in stamps]


# fmt: off
DATEUTIL_CASES = [
    ("testYearly", "FREQ=YEARLY;COUNT=3",
     _utc("1997-09-02T09:00", "1998-09-02T09:00", "1999-09-02T09:00")),
    ("testYearlyInterval", "FREQ=YEARLY;COUNT=3;INTERVAL=2",
     _utc("1997-09-02T09:00", "1999-09-02T09:00", "2001-09-02T09:00")),
    ("testYearlyByMonth", "FREQ=YEARLY;COUNT=3;BYMONTH=1,3",
     _utc("1998-01-02T09:00", "1998-03-02T09:00", "1999-01-02T09:00")),
    ("testYearlyByMonthDay", "FREQ=YEARLY;COUNT=3;BYMONTHDAY=1,3",
     _utc("1997-09-03T09:00", "1997-10-01T09:00", "1997-10-03T09:00")),
    ("testYearlyByMonthAndMonthDay", "FREQ=YEARLY;COUNT=3;BYMONTH=1,3;BYMONTHDAY=5,7",
     _utc("1998-01-05T09:00", "1998-01-07T09:00", "1998-03-05T09:00")),
    ("testYearlyByWeekDay", "FREQ=YEARLY;COUNT=3;BYDAY=TU,TH",
     _utc("1997-09-02T09:00", "1997-09-04T09:00", "1997-09-09T09:00")),
    ("testYearlyByNWeekDay", "FREQ=YEARLY;COUNT=3;BYDAY=1TU,-1TH",
     _utc("1997-12-25T09:00", "1998-01-06T09:00", "1998-12-31T09:00")),
    ("testYearlyByNWeekDayLarge", "FREQ=YEARLY;COUNT=3;BYDAY=3TU,-3TH",
     _utc("1997-12-11T09:00", "1998-01-20T09:00", "1998-12-17T09:00")),
    ("testYearlyByMonthAndWeekDay", "FREQ=YEARLY;COUNT=3;BYMONTH=1,3;BYDAY=TU,TH",
     _utc("1998-01-01T09:00", "1998-01-06T09:00", "1998-01-08T09:00")),
    ("testYearlyByMonthAndNWeekDay", "FREQ=YEARLY;COUNT=3;BYMONTH=1,3;BYDAY=1TU,-1TH",
     _utc("1998-01-06T09:00", "1998-01-29T09:00", "1998-03-03T09:00")),
    ("testYearlyByMonthDayAndWeekDay", "FREQ=YEARLY;COUNT=3;BYMONTHDAY=1,3;BYDAY=TU,TH",
     _utc("1998-01-01T09:00", "1998-02-03T09:00", "1998-03-03T09:00")),
    ("testYearlyByYearDay", "FREQ=YEARLY;COUNT=4;BYYEARDAY=1,100,200,365",
     _utc("1997-12-31T09:00", "1998-01-01T09:00", "1998-04-10T09:00", "1998-07-19T09:00")),
    ("testYearlyByYearDayNeg", "FREQ=YEARLY;COUNT=4;BYYEARDAY=-365,-266,-166,-1",
     _utc("1997-12-31T09:00", "1998-01-01T09:00", "1998-04-10T09:00", "1998-07-19T09:00")),
    ("testYearlyByWeekNo", "FREQ=YEARLY;COUNT=3;BYWEEKNO=20",
     _utc("1998-05-11T09:00", "1998-05-12T09:00", "1998-05-13T09:00")),
    ("testYearlyByWeekNoAndWeekDay", "FREQ=YEARLY;COUNT=3;BYWEEKNO=1;BYDAY=MO",
     _utc("1997-12-29T09:00", "1999-01-04T09:00", "2000-01-03T09:00")),
    ("testYearlyByWeekNoAndWeekDayLast", "FREQ=YEARLY;COUNT=3;BYWEEKNO=-1;BYDAY=SU",
     _utc("1997-12-28T09:00", "1999-01-03T09:00", "2000-01-02T09:00")),
    ("testYearlyByWeekNoAndWeekDay53", "FREQ=YEARLY;COUNT=3;BYWEEKNO=53;BYDAY=MO",
     _utc("1998-12-28T09:00", "2004-12-27T09:00", "2009-12-28T09:00")),
    ("testYearlyByHour", "FREQ=YEARLY;COUNT=3;BYHOUR=6,18",
     _utc("1997-09-02T18:00", "1998-09-02T06:00", "1998-09-02T18:00")),
    ("testYearlyBySetPos", "FREQ=YEARLY;COUNT=3;BYMONTHDAY=15;BYHOUR=6,18;BYSETPOS=3,-3",
     _utc("1997-11-15T18:00", "1998-02-15T06:00", "1998-11-15T18:00")),
    ("testMonthly", "FREQ=MONTHLY;COUNT=3",
     _utc("1997-09-02T09:00", "1997-10-02T09:00", "1997-11-02T09:00")),
    ("testMonthlyIntervalLarge", "FREQ=MONTHLY;COUNT=3;INTERVAL=18",
     _utc("1997-09-02T09:00", "1999-03-02T09:00", "2000-09-02T09:00")),
    ("testMonthlyByNWeekDay", "FREQ=MONTHLY;COUNT=3;BYDAY=1TU,-1TH",
     _utc("1997-09-02T09:00", "1997-09-25T09:00", "1997-10-07T09:00")),
    ("testMonthlyByNWeekDayLarge", "FREQ=MONTHLY;COUNT=3;BYDAY=3TU,-3TH",
     _utc("1997-09-11T09:00", "1997-09-16T09:00", "1997-10-16T09:00")),
    ("testMonthlyBySetPos", "FREQ=MONTHLY;COUNT=3;BYMONTHDAY=13,17;BYHOUR=6,18;BYSETPOS=3,-3",
     _utc("1997-09-13T18:00", "1997-09-17T06:00", "1997-10-13T18:00")),
    ("testWeekly", "FREQ=WEEKLY;COUNT=3",
     _utc("1997-09-02T09:00", "1997-09-09T09:00", "1997-09-16T09:00")),
    ("testWeeklyByMonthAndWeekDay", "FREQ=WEEKLY;COUNT=3;BYMONTH=1,3;BYDAY=TU,TH",
     _utc("1998-01-01T09:00", "1998-01-06T09:00", "1998-01-08T09:00")),
    ("testWeeklyBySetPos", "FREQ=WEEKLY;COUNT=3;BYDAY=TU,TH;BYHOUR=6,18;BYSETPOS=3,-3",
     _utc("1997-09-02T18:00", "1997-09-04T06:00", "1997-09-09T18:00")),
    ("testDaily", "FREQ=DAILY;COUNT=3",
     _utc("1997-09-02T09:00", "1997-09-03T09:00", "1997-09-04T09:00")),
    ("testDailyIntervalLarge", "FREQ=DAILY;COUNT=3;INTERVAL=92",
     _utc("1997-09-02T09:00", "1997-12-03T09:00", "1998-03-05T09:00")),
    ("testDailyByMonthDayAndWeekDay", "FREQ=DAILY;COUNT=3;BYMONTHDAY=1,3;BYDAY=TU,TH",
     _utc("1998-01-01T09:00", "1998-02-03T09:00", "1998-03-03T09:00")),
    ("testDailyBySetPos", "FREQ=DAILY;COUNT=3;BYHOUR=6,18;BYMINUTE=15,45;BYSETPOS=3,-3",
     _utc("1997-09-02T18:15", "1997-09-03T06:45", "1997-09-03T18:15")),
    ("testHourly", "FREQ=HOURLY;COUNT=3",
     _utc("1997-09-02T09:00", "1997-09-02T10:00", "1997-09-02T11:00")),
    ("testHourlyIntervalLarge", "FREQ=HOURLY;COUNT=3;INTERVAL=769",
     _utc("1997-09-02T09:00", "1997-10-04T10:00", "1997-11-05T11:00")),
    ("testHourlyByMonth", "FREQ=HOURLY;COUNT=3;BYMONTH=1,3",
     _utc("1998-01-01T00:00", "1998-01-01T01:00", "1998-01-01T02:00")),
    ("testHourlyByMinute", "FREQ=HOURLY;COUNT=3;BYMINUTE=6,18",
     _utc("1997-09-02T09:06", "1997-09-02T09:18", "1997-09-02T10:06")),
    ("testMinutely", "FREQ=MINUTELY;COUNT=3",
     _utc("1997-09-02T09:00", "1997-09-02T09:01", "1997-09-02T09:02")),
    ("testMinutelyIntervalLarge", "FREQ=MINUTELY;COUNT=3;INTERVAL=1501",
     _utc("1997-09-02T09:00", "1997-09-03T10:01", "1997-09-04T11:02")),
    ("testMinutelyByHour", "FREQ=MINUTELY;COUNT=3;BYHOUR=6,18",
     _utc("1997-09-02T18:00", "1997-09-02T18:01", "1997-09-02T18:02")),
    ("testSecondly", "FREQ=SECONDLY;COUNT=3",
     _utc("1997-09-02T09:00:00", "1997-09-02T09:00:01", "1997-09-02T09:00:02")),
    ("testSecondlyIntervalLarge", "FREQ=SECONDLY;COUNT=3;INTERVAL=90061",
     _utc("1997-09-02T09:00:00", "1997-09-03T10:01:01", "1997-09-04T11:02:02")),
    ("testSecondlyByHourAndMinuteAndSecond",
     "FREQ=SECONDLY;COUNT=3;BYHOUR=6,18;BYMINUTE=6,18;BYSECOND=6,18",
     _utc("1997-09-02T18:06:06", "1997-09-02T18:06:18", "1997-09-02T18:18:06")),
    ("testUntilNotMatching", "FREQ=DAILY;UNTIL=19970905T080000Z",
     _utc("1997-09-02T09:00", "1997-09-03T09:00", "1997-09-04T09:00")),
    ("testUntilMatching", "FREQ=DAILY;UNTIL=19970904T090000Z",
     _utc("1997-09-02T09:00", "1997-09-03T09:00", "1997-09-04T09:00")),
]
# fmt: on


@pytest.mark.parametrize(
    ("rule", "expected"),
    [pytest.param(rule, expected, id=name) for name, rule, expected in DATEUTIL_CASES],
)
def test_python_dateutils_own_cases_fire_as_dateutil_lists(rule: str, expected: list[str]) -> None:
    assert firings(rule, "1997-09-02T09:00:00", "UTC", len(expected) + 1) == expected
