"""SPEC §3's daylight-saving rule, pinned with ISO-8601 instants that carry their offsets.

Each row starts from an instant and lists the next firings as local wall times with the
offset in force, so the expected value says both *when* (the instant) and *what the clock
showed*. The zones are the ones SPEC §3 names:

=================== =========================================================== ==========
zone                spring forward / fall back (local wall time)                 shift
=================== =========================================================== ==========
America/New_York    2024-03-10 02:00 EST → 03:00 EDT; 2024-11-03 02:00 → 01:00   1 h
Europe/London       2024-03-31 01:00 GMT → 02:00 BST; 2024-10-27 02:00 → 01:00   1 h
Europe/Berlin       2024-03-31 02:00 CET → 03:00 CEST; 2024-10-27 03:00 → 02:00  1 h
Europe/Riga         2024-03-31 03:00 EET → 04:00 EEST; 2024-10-27 04:00 → 03:00  1 h
Australia/Lord_Howe 2024-10-06 02:00 → 02:30 (+11); 2024-04-07 02:00 → 01:30     30 min
Asia/Kolkata        none (+05:30 all year)                                       —
Pacific/Chatham     2024-09-29 02:45 → 03:45 (+13:45); 2024-04-07 03:45 → 02:45  1 h
America/Sao_Paulo   2018-11-04 00:00 → 01:00 (-02); 2018-02-18 00:00 → 02-17 23:00  1 h
Pacific/Apia        2011-12-29 23:59:59 (-10) → 2011-12-31 00:00 (+14);           24 h
                    2012-09-30 03:00 → 04:00 (+14); 2012-04-01 04:00 → 03:00     1 h
=================== =========================================================== ==========
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

import pytest

from tickwork.domain.cron import parse_cron
from tickwork.domain.zones import get_zone


def _runs(expression: str, zone_name: str, start: str, count: int) -> list[str]:
    """The next ``count`` firings after ``start``, as local ISO strings with offsets."""
    zone = get_zone(zone_name)
    cron = parse_cron(expression)
    after = datetime.fromisoformat(start)
    found: list[str] = []
    for _ in range(count):
        got = cron.next_after(after, zone)
        assert got is not None
        assert got.tzinfo is UTC
        assert got > after
        found.append(got.astimezone(zone).isoformat())
        after = got
    return found


def _case(zone: str, expression: str, start: str, *expected: str) -> object:
    return pytest.param(zone, expression, start, list(expected), id=f"{zone}:{expression}")


def _check(zone: str, expression: str, start: str, expected: list[str]) -> None:
    assert _runs(expression, zone, start, len(expected)) == expected


# ---------------------------------------------------------------------------------------
# Fixed-time expressions
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "expression", "start", "expected"),
    [
        _case("America/New_York", "30 2 * * *", "2024-03-09T12:00:00-05:00",
              "2024-03-10T03:00:00-04:00", "2024-03-11T02:30:00-04:00"),
        _case("Europe/London", "30 1 * * *", "2024-03-30T12:00:00+00:00",
              "2024-03-31T02:00:00+01:00", "2024-04-01T01:30:00+01:00"),
        _case("Europe/Berlin", "30 2 * * *", "2024-03-30T12:00:00+01:00",
              "2024-03-31T03:00:00+02:00", "2024-04-01T02:30:00+02:00"),
        _case("Europe/Riga", "15 3 * * *", "2024-03-30T12:00:00+02:00",
              "2024-03-31T04:00:00+03:00", "2024-04-01T03:15:00+03:00"),
        _case("Australia/Lord_Howe", "15 2 * * *", "2024-10-05T12:00:00+10:30",
              "2024-10-06T02:30:00+11:00", "2024-10-07T02:15:00+11:00"),
        _case("Pacific/Chatham", "0 3 * * *", "2024-09-28T12:00:00+12:45",
              "2024-09-29T03:45:00+13:45", "2024-09-30T03:00:00+13:45"),
        _case("America/Sao_Paulo", "30 0 * * *", "2018-11-03T12:00:00-03:00",
              "2018-11-04T01:00:00-02:00", "2018-11-05T00:30:00-02:00"),
        _case("Pacific/Apia", "30 3 * * *", "2012-09-29T12:00:00+13:00",
              "2012-09-30T04:00:00+14:00", "2012-10-01T03:30:00+14:00"),
    ],
)  # fmt: skip
def test_fixed_time_in_the_spring_gap_fires_at_the_end_of_the_gap(
    zone: str, expression: str, start: str, expected: list[str]
) -> None:
    _check(zone, expression, start, expected)


@pytest.mark.parametrize(
    ("zone", "expression", "start", "expected"),
    [
        _case("America/New_York", "30 1 * * *", "2024-11-02T12:00:00-04:00",
              "2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00"),
        _case("Europe/London", "30 1 * * *", "2024-10-26T12:00:00+01:00",
              "2024-10-27T01:30:00+01:00", "2024-10-28T01:30:00+00:00"),
        _case("Europe/Berlin", "30 2 * * *", "2024-10-26T12:00:00+02:00",
              "2024-10-27T02:30:00+02:00", "2024-10-28T02:30:00+01:00"),
        _case("Europe/Riga", "15 3 * * *", "2024-10-26T12:00:00+03:00",
              "2024-10-27T03:15:00+03:00", "2024-10-28T03:15:00+02:00"),
        _case("Australia/Lord_Howe", "45 1 * * *", "2024-04-06T12:00:00+11:00",
              "2024-04-07T01:45:00+11:00", "2024-04-08T01:45:00+10:30"),
        _case("Pacific/Chatham", "15 3 * * *", "2024-04-06T12:00:00+13:45",
              "2024-04-07T03:15:00+13:45", "2024-04-08T03:15:00+12:45"),
        _case("America/Sao_Paulo", "30 23 * * *", "2018-02-17T12:00:00-02:00",
              "2018-02-17T23:30:00-02:00", "2018-02-18T23:30:00-03:00"),
        _case("Pacific/Apia", "30 3 * * *", "2012-03-31T12:00:00+14:00",
              "2012-04-01T03:30:00+14:00", "2012-04-02T03:30:00+13:00"),
    ],
)  # fmt: skip
def test_fixed_time_in_the_repeated_hour_fires_once_in_the_first_copy(
    zone: str, expression: str, start: str, expected: list[str]
) -> None:
    _check(zone, expression, start, expected)


@pytest.mark.parametrize(
    ("zone", "expression", "start", "expected"),
    [
        # Times that exist once on the change days are not moved.
        _case("America/New_York", "0 3 * * *", "2024-03-09T12:00:00-05:00",
              "2024-03-10T03:00:00-04:00", "2024-03-11T03:00:00-04:00"),
        _case("America/New_York", "0 2 * * *", "2024-11-02T12:00:00-04:00",
              "2024-11-03T02:00:00-05:00", "2024-11-04T02:00:00-05:00"),
        _case("Australia/Lord_Howe", "45 2 * * *", "2024-10-05T12:00:00+10:30",
              "2024-10-06T02:45:00+11:00", "2024-10-07T02:45:00+11:00"),
        _case("Pacific/Chatham", "30 2 * * *", "2024-09-28T12:00:00+12:45",
              "2024-09-29T02:30:00+12:45", "2024-09-30T02:30:00+13:45"),
        # @daily is "0 0 * * *": fixed-time, so São Paulo's missing midnight runs at 01:00
        # and its repeated 23:00 hour (before the midnight that happens once) changes nothing.
        _case("America/Sao_Paulo", "@daily", "2018-11-03T12:00:00-03:00",
              "2018-11-04T01:00:00-02:00", "2018-11-05T00:00:00-02:00"),
        _case("America/Sao_Paulo", "@daily", "2018-02-17T12:00:00-02:00",
              "2018-02-18T00:00:00-03:00", "2018-02-19T00:00:00-03:00"),
        # Kolkata has no daylight-saving time: the days other zones change are plain days.
        _case("Asia/Kolkata", "30 2 * * *", "2024-03-09T12:00:00+05:30",
              "2024-03-10T02:30:00+05:30", "2024-03-11T02:30:00+05:30"),
        _case("Asia/Kolkata", "30 1 * * *", "2024-11-02T12:00:00+05:30",
              "2024-11-03T01:30:00+05:30", "2024-11-04T01:30:00+05:30"),
    ],
)  # fmt: skip
def test_fixed_time_that_exists_once_is_left_alone(
    zone: str, expression: str, start: str, expected: list[str]
) -> None:
    _check(zone, expression, start, expected)


def test_several_matching_times_in_one_gap_collapse_into_one_firing() -> None:
    assert _runs("0,15,30,45 2 * * *", "America/New_York", "2024-03-09T12:00:00-05:00", 3) == [
        "2024-03-10T03:00:00-04:00",
        "2024-03-11T02:00:00-04:00",
        "2024-03-11T02:15:00-04:00",
    ]


def test_lord_howe_collapses_the_first_half_hour_into_the_wall_time_that_follows_it() -> None:
    # 02:00 and 02:15 do not exist; 02:30 does, and it is the first instant after the gap,
    # so the three share a single firing.
    assert _runs("0,15,30,45 2 * * *", "Australia/Lord_Howe", "2024-10-05T12:00:00+10:30", 3) == [
        "2024-10-06T02:30:00+11:00",
        "2024-10-06T02:45:00+11:00",
        "2024-10-07T02:00:00+11:00",
    ]


# ---------------------------------------------------------------------------------------
# Wildcard expressions
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "expression", "start", "expected"),
    [
        _case("America/New_York", "*/15 * * * *", "2024-03-10T01:30:00-05:00",
              "2024-03-10T01:45:00-05:00", "2024-03-10T03:00:00-04:00",
              "2024-03-10T03:15:00-04:00"),
        _case("Europe/London", "*/15 * * * *", "2024-03-31T00:40:00+00:00",
              "2024-03-31T00:45:00+00:00", "2024-03-31T02:00:00+01:00",
              "2024-03-31T02:15:00+01:00"),
        _case("Europe/Berlin", "*/15 * * * *", "2024-03-31T01:40:00+01:00",
              "2024-03-31T01:45:00+01:00", "2024-03-31T03:00:00+02:00"),
        _case("Europe/Riga", "*/20 * * * *", "2024-03-31T02:50:00+02:00",
              "2024-03-31T04:00:00+03:00", "2024-03-31T04:20:00+03:00"),
        _case("Australia/Lord_Howe", "*/15 * * * *", "2024-10-06T01:40:00+10:30",
              "2024-10-06T01:45:00+10:30", "2024-10-06T02:30:00+11:00",
              "2024-10-06T02:45:00+11:00"),
        _case("Pacific/Chatham", "*/15 * * * *", "2024-09-29T02:20:00+12:45",
              "2024-09-29T02:30:00+12:45", "2024-09-29T03:45:00+13:45",
              "2024-09-29T04:00:00+13:45"),
        _case("America/Sao_Paulo", "*/15 * * * *", "2018-11-03T23:40:00-03:00",
              "2018-11-03T23:45:00-03:00", "2018-11-04T01:00:00-02:00",
              "2018-11-04T01:15:00-02:00"),
        _case("Pacific/Apia", "*/15 * * * *", "2012-09-30T02:40:00+13:00",
              "2012-09-30T02:45:00+13:00", "2012-09-30T04:00:00+14:00"),
        _case("Asia/Kolkata", "*/15 * * * *", "2024-03-10T01:50:00+05:30",
              "2024-03-10T02:00:00+05:30", "2024-03-10T02:15:00+05:30"),
    ],
)  # fmt: skip
def test_every_fifteen_minutes_skips_the_wall_times_of_the_spring_gap(
    zone: str, expression: str, start: str, expected: list[str]
) -> None:
    _check(zone, expression, start, expected)


@pytest.mark.parametrize(
    ("zone", "expression", "start", "expected"),
    [
        _case("America/New_York", "*/15 * * * *", "2024-11-03T01:40:00-04:00",
              "2024-11-03T01:45:00-04:00", "2024-11-03T01:00:00-05:00",
              "2024-11-03T01:15:00-05:00"),
        _case("Europe/London", "*/30 * * * *", "2024-10-27T00:45:00+01:00",
              "2024-10-27T01:00:00+01:00", "2024-10-27T01:30:00+01:00",
              "2024-10-27T01:00:00+00:00", "2024-10-27T01:30:00+00:00",
              "2024-10-27T02:00:00+00:00"),
        _case("Europe/Berlin", "*/30 * * * *", "2024-10-27T02:10:00+02:00",
              "2024-10-27T02:30:00+02:00", "2024-10-27T02:00:00+01:00",
              "2024-10-27T02:30:00+01:00", "2024-10-27T03:00:00+01:00"),
        _case("Europe/Riga", "*/30 * * * *", "2024-10-27T03:40:00+03:00",
              "2024-10-27T03:00:00+02:00", "2024-10-27T03:30:00+02:00",
              "2024-10-27T04:00:00+02:00"),
        _case("Australia/Lord_Howe", "*/15 * * * *", "2024-04-07T01:20:00+11:00",
              "2024-04-07T01:30:00+11:00", "2024-04-07T01:45:00+11:00",
              "2024-04-07T01:30:00+10:30", "2024-04-07T01:45:00+10:30",
              "2024-04-07T02:00:00+10:30"),
        # Chatham's wall clock goes back from 03:45 to 02:45, so 02:45 follows 03:30.
        _case("Pacific/Chatham", "*/15 * * * *", "2024-04-07T03:20:00+13:45",
              "2024-04-07T03:30:00+13:45", "2024-04-07T02:45:00+12:45",
              "2024-04-07T03:00:00+12:45"),
        _case("America/Sao_Paulo", "*/30 * * * *", "2018-02-17T23:10:00-02:00",
              "2018-02-17T23:30:00-02:00", "2018-02-17T23:00:00-03:00",
              "2018-02-17T23:30:00-03:00", "2018-02-18T00:00:00-03:00"),
        _case("Pacific/Apia", "*/30 * * * *", "2012-04-01T03:10:00+14:00",
              "2012-04-01T03:30:00+14:00", "2012-04-01T03:00:00+13:00",
              "2012-04-01T03:30:00+13:00", "2012-04-01T04:00:00+13:00"),
        _case("Asia/Kolkata", "*/30 * * * *", "2024-11-03T00:50:00+05:30",
              "2024-11-03T01:00:00+05:30", "2024-11-03T01:30:00+05:30",
              "2024-11-03T02:00:00+05:30"),
    ],
)  # fmt: skip
def test_every_few_minutes_fires_in_both_copies_of_the_repeated_hour(
    zone: str, expression: str, start: str, expected: list[str]
) -> None:
    _check(zone, expression, start, expected)


@pytest.mark.parametrize("hourly", ["0 * * * *", "@hourly"])
@pytest.mark.parametrize(
    ("zone", "start", "expected"),
    [
        pytest.param("America/New_York", "2024-03-10T00:30:00-05:00",
                     ["2024-03-10T01:00:00-05:00", "2024-03-10T03:00:00-04:00",
                      "2024-03-10T04:00:00-04:00"], id="New_York-spring"),
        pytest.param("America/New_York", "2024-11-03T00:30:00-04:00",
                     ["2024-11-03T01:00:00-04:00", "2024-11-03T01:00:00-05:00",
                      "2024-11-03T02:00:00-05:00"], id="New_York-autumn"),
        pytest.param("Europe/London", "2024-03-30T23:30:00+00:00",
                     ["2024-03-31T00:00:00+00:00", "2024-03-31T02:00:00+01:00",
                      "2024-03-31T03:00:00+01:00"], id="London-spring"),
        pytest.param("Europe/Berlin", "2024-10-27T01:30:00+02:00",
                     ["2024-10-27T02:00:00+02:00", "2024-10-27T02:00:00+01:00",
                      "2024-10-27T03:00:00+01:00"], id="Berlin-autumn"),
        pytest.param("Europe/Riga", "2024-03-31T02:30:00+02:00",
                     ["2024-03-31T04:00:00+03:00", "2024-03-31T05:00:00+03:00"],
                     id="Riga-spring"),
        # Lord Howe: 02:00 is gone in spring; in autumn only 01:30-01:59 repeats, so the
        # hours on either side fire once each, 90 minutes apart.
        pytest.param("Australia/Lord_Howe", "2024-10-06T01:30:00+10:30",
                     ["2024-10-06T03:00:00+11:00", "2024-10-06T04:00:00+11:00"],
                     id="Lord_Howe-spring"),
        pytest.param("Australia/Lord_Howe", "2024-04-07T00:30:00+11:00",
                     ["2024-04-07T01:00:00+11:00", "2024-04-07T02:00:00+10:30"],
                     id="Lord_Howe-autumn"),
        pytest.param("Pacific/Chatham", "2024-09-29T01:30:00+12:45",
                     ["2024-09-29T02:00:00+12:45", "2024-09-29T04:00:00+13:45"],
                     id="Chatham-spring"),
        pytest.param("Pacific/Chatham", "2024-04-07T02:30:00+13:45",
                     ["2024-04-07T03:00:00+13:45", "2024-04-07T03:00:00+12:45",
                      "2024-04-07T04:00:00+12:45"], id="Chatham-autumn"),
        pytest.param("America/Sao_Paulo", "2018-11-03T22:30:00-03:00",
                     ["2018-11-03T23:00:00-03:00", "2018-11-04T01:00:00-02:00",
                      "2018-11-04T02:00:00-02:00"], id="Sao_Paulo-spring"),
        pytest.param("America/Sao_Paulo", "2018-02-17T22:30:00-02:00",
                     ["2018-02-17T23:00:00-02:00", "2018-02-17T23:00:00-03:00",
                      "2018-02-18T00:00:00-03:00"], id="Sao_Paulo-autumn"),
        pytest.param("Pacific/Apia", "2011-12-29T22:30:00-10:00",
                     ["2011-12-29T23:00:00-10:00", "2011-12-31T00:00:00+14:00",
                      "2011-12-31T01:00:00+14:00"], id="Apia-skipped-day"),
        pytest.param("Asia/Kolkata", "2024-03-31T00:30:00+05:30",
                     ["2024-03-31T01:00:00+05:30", "2024-03-31T02:00:00+05:30",
                      "2024-03-31T03:00:00+05:30"], id="Kolkata"),
    ],
)  # fmt: skip
def test_hourly_skips_the_missing_hour_and_repeats_the_repeated_one(
    hourly: str, zone: str, start: str, expected: list[str]
) -> None:
    _check(zone, hourly, start, expected)


@pytest.mark.parametrize(
    ("zone", "expression", "start", "expected"),
    [
        _case("America/New_York", "30 * * * *", "2024-03-10T00:45:00-05:00",
              "2024-03-10T01:30:00-05:00", "2024-03-10T03:30:00-04:00"),
        _case("America/New_York", "30 * * * *", "2024-11-03T00:45:00-04:00",
              "2024-11-03T01:30:00-04:00", "2024-11-03T01:30:00-05:00",
              "2024-11-03T02:30:00-05:00"),
        _case("Europe/London", "30 * * * *", "2024-03-31T00:00:00+00:00",
              "2024-03-31T00:30:00+00:00", "2024-03-31T02:30:00+01:00"),
        _case("Europe/Riga", "30 * * * *", "2024-10-27T02:45:00+03:00",
              "2024-10-27T03:30:00+03:00", "2024-10-27T03:30:00+02:00",
              "2024-10-27T04:30:00+02:00"),
        # Lord Howe's 02:30 is the first wall time after its spring gap: it exists.
        _case("Australia/Lord_Howe", "30 * * * *", "2024-10-06T01:45:00+10:30",
              "2024-10-06T02:30:00+11:00", "2024-10-06T03:30:00+11:00"),
        _case("Australia/Lord_Howe", "30 * * * *", "2024-04-07T00:45:00+11:00",
              "2024-04-07T01:30:00+11:00", "2024-04-07T01:30:00+10:30",
              "2024-04-07T02:30:00+10:30"),
        _case("Pacific/Chatham", "30 * * * *", "2024-09-29T02:00:00+12:45",
              "2024-09-29T02:30:00+12:45", "2024-09-29T04:30:00+13:45"),
        _case("Pacific/Chatham", "30 * * * *", "2024-04-07T02:15:00+13:45",
              "2024-04-07T02:30:00+13:45", "2024-04-07T03:30:00+13:45",
              "2024-04-07T03:30:00+12:45", "2024-04-07T04:30:00+12:45"),
        _case("America/Sao_Paulo", "30 * * * *", "2018-11-03T23:00:00-03:00",
              "2018-11-03T23:30:00-03:00", "2018-11-04T01:30:00-02:00"),
        _case("Pacific/Apia", "30 * * * *", "2011-12-29T23:00:00-10:00",
              "2011-12-29T23:30:00-10:00", "2011-12-31T00:30:00+14:00"),
    ],
)  # fmt: skip
def test_half_past_every_hour_follows_elapsed_time(
    zone: str, expression: str, start: str, expected: list[str]
) -> None:
    _check(zone, expression, start, expected)


# ---------------------------------------------------------------------------------------
# Six-field expressions: the seconds field never changes the classification
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "expression", "start", "expected"),
    [
        _case("America/New_York", "0 30 2 * * *", "2024-03-09T12:00:00-05:00",
              "2024-03-10T03:00:00-04:00", "2024-03-11T02:30:00-04:00"),
        _case("America/New_York", "0 30 1 * * *", "2024-11-02T12:00:00-04:00",
              "2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00"),
        _case("Europe/London", "15 30 1 * * *", "2024-03-30T12:00:00+00:00",
              "2024-03-31T02:00:00+01:00", "2024-04-01T01:30:15+01:00"),
        _case("Europe/London", "0 0 1 * * *", "2024-10-26T12:00:00+01:00",
              "2024-10-27T01:00:00+01:00", "2024-10-28T01:00:00+00:00"),
        _case("Europe/Berlin", "0 0 2 * * *", "2024-03-30T12:00:00+01:00",
              "2024-03-31T03:00:00+02:00", "2024-04-01T02:00:00+02:00"),
        _case("Europe/Berlin", "0 0 2 * * *", "2024-10-26T12:00:00+02:00",
              "2024-10-27T02:00:00+02:00", "2024-10-28T02:00:00+01:00"),
        _case("Europe/Riga", "30 30 3 * * *", "2024-10-26T12:00:00+03:00",
              "2024-10-27T03:30:30+03:00", "2024-10-28T03:30:30+02:00"),
        _case("Australia/Lord_Howe", "30 10 2 * * *", "2024-10-05T12:00:00+10:30",
              "2024-10-06T02:30:00+11:00", "2024-10-07T02:10:30+11:00"),
        _case("Australia/Lord_Howe", "0 45 1 * * *", "2024-04-06T12:00:00+11:00",
              "2024-04-07T01:45:00+11:00", "2024-04-08T01:45:00+10:30"),
        _case("Asia/Kolkata", "0 30 2 * * *", "2024-03-09T12:00:00+05:30",
              "2024-03-10T02:30:00+05:30", "2024-03-11T02:30:00+05:30"),
        _case("Pacific/Chatham", "30 15 3 * * *", "2024-09-28T12:00:00+12:45",
              "2024-09-29T03:45:00+13:45", "2024-09-30T03:15:30+13:45"),
        _case("Pacific/Chatham", "0 0 3 * * *", "2024-04-06T12:00:00+13:45",
              "2024-04-07T03:00:00+13:45", "2024-04-08T03:00:00+12:45"),
        _case("America/Sao_Paulo", "0 0 0 * * *", "2018-11-03T12:00:00-03:00",
              "2018-11-04T01:00:00-02:00", "2018-11-05T00:00:00-02:00"),
        _case("America/Sao_Paulo", "0 30 23 * * *", "2018-02-17T12:00:00-02:00",
              "2018-02-17T23:30:00-02:00", "2018-02-18T23:30:00-03:00"),
        _case("Pacific/Apia", "0 0 9 * * *", "2011-12-29T12:00:00-10:00",
              "2011-12-31T00:00:00+14:00", "2011-12-31T09:00:00+14:00"),
    ],
)  # fmt: skip
def test_six_field_fixed_time_follows_the_same_rule_as_five_fields(
    zone: str, expression: str, start: str, expected: list[str]
) -> None:
    _check(zone, expression, start, expected)


@pytest.mark.parametrize(
    ("six", "five"),
    [
        ("0 30 2 * * *", "30 2 * * *"),
        ("0 0 1 * * *", "0 1 * * *"),
        ("0 */15 * * * *", "*/15 * * * *"),
    ],
)
@pytest.mark.parametrize(
    ("zone", "start"),
    [
        ("America/New_York", "2024-03-09T20:00:00-05:00"),
        ("America/New_York", "2024-11-02T20:00:00-04:00"),
        ("Australia/Lord_Howe", "2024-10-05T20:00:00+10:30"),
        ("Pacific/Chatham", "2024-04-06T20:00:00+13:45"),
    ],
)  # fmt: skip
def test_a_zero_seconds_field_behaves_exactly_like_the_five_field_expression(
    six: str, five: str, zone: str, start: str
) -> None:
    assert _runs(six, zone, start, 12) == _runs(five, zone, start, 12)


def test_six_field_seconds_inside_the_gap_collapse_into_one_firing() -> None:
    # 02:30:00, 02:30:10 ... 02:30:50 do not exist; together they fire once, at 03:00:00.
    assert _runs("*/10 30 2 * * *", "America/New_York", "2024-03-09T12:00:00-05:00", 3) == [
        "2024-03-10T03:00:00-04:00",
        "2024-03-11T02:30:00-04:00",
        "2024-03-11T02:30:10-04:00",
    ]


def test_six_field_seconds_in_the_repeated_hour_fire_in_the_first_copy_only() -> None:
    assert _runs("*/20 30 1 * * *", "America/New_York", "2024-11-03T01:00:00-04:00", 4) == [
        "2024-11-03T01:30:00-04:00",
        "2024-11-03T01:30:20-04:00",
        "2024-11-03T01:30:40-04:00",
        "2024-11-04T01:30:00-05:00",
    ]


@pytest.mark.parametrize(
    ("zone", "expression", "start", "expected"),
    [
        _case("America/New_York", "30 */30 * * * *", "2024-03-10T01:00:00-05:00",
              "2024-03-10T01:00:30-05:00", "2024-03-10T01:30:30-05:00",
              "2024-03-10T03:00:30-04:00"),
        _case("America/New_York", "0 30 * * * *", "2024-11-03T00:45:00-04:00",
              "2024-11-03T01:30:00-04:00", "2024-11-03T01:30:00-05:00"),
        _case("Europe/Berlin", "0 0 * * * *", "2024-10-27T01:30:00+02:00",
              "2024-10-27T02:00:00+02:00", "2024-10-27T02:00:00+01:00"),
        _case("Australia/Lord_Howe", "0 */15 * * * *", "2024-04-07T01:50:00+11:00",
              "2024-04-07T01:30:00+10:30", "2024-04-07T01:45:00+10:30"),
        _case("Pacific/Chatham", "0 0 * * * *", "2024-09-29T01:30:00+12:45",
              "2024-09-29T02:00:00+12:45", "2024-09-29T04:00:00+13:45"),
        _case("Pacific/Apia", "0 */20 * * * *", "2011-12-29T23:30:00-10:00",
              "2011-12-29T23:40:00-10:00", "2011-12-31T00:00:00+14:00",
              "2011-12-31T00:20:00+14:00"),
        _case("Asia/Kolkata", "45 59 * * * *", "2024-03-31T01:00:00+05:30",
              "2024-03-31T01:59:45+05:30", "2024-03-31T02:59:45+05:30"),
    ],
)  # fmt: skip
def test_six_field_wildcards_follow_elapsed_time(
    zone: str, expression: str, start: str, expected: list[str]
) -> None:
    _check(zone, expression, start, expected)


# ---------------------------------------------------------------------------------------
# Apia skipped a whole day
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # 09:00 on the 30th never happened: it fires as the 31st begins, then 09:00 as usual.
        ("0 9 * * *", ["2011-12-31T00:00:00+14:00", "2011-12-31T09:00:00+14:00"]),
        ("0 0 30 12 *", ["2011-12-31T00:00:00+14:00", "2012-12-30T00:00:00+14:00"]),
        # 30 December 2011 was a Friday.
        ("0 12 * * FRI", ["2011-12-31T00:00:00+14:00", "2012-01-06T12:00:00+14:00"]),
        # Midnight of the 30th and of the 31st share one instant, so one firing.
        ("@daily", ["2011-12-31T00:00:00+14:00", "2012-01-01T00:00:00+14:00"]),
    ],
)
def test_apia_runs_the_fixed_times_of_its_skipped_day_as_the_next_day_begins(
    expression: str, expected: list[str]
) -> None:
    assert _runs(expression, "Pacific/Apia", "2011-12-29T12:00:00-10:00", 2) == expected


def test_apia_wildcards_skip_the_missing_day() -> None:
    assert _runs("0 */6 * * *", "Pacific/Apia", "2011-12-29T12:00:00-10:00", 3) == [
        "2011-12-29T18:00:00-10:00",
        "2011-12-31T00:00:00+14:00",
        "2011-12-31T06:00:00+14:00",
    ]


# ---------------------------------------------------------------------------------------
# The start instant
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "start", "expected"),
    [
        # 01:10 EST is the second copy of 01:10: 01:30 EDT is already behind it.
        ("30 1 * * *", "2024-11-03T01:10:00-05:00", "2024-11-04T01:30:00-05:00"),
        ("0,15,30,45 1 * * *", "2024-11-03T01:50:00-05:00", "2024-11-04T01:00:00-05:00"),
        ("0 30 1 * * *", "2024-11-03T01:10:00-05:00", "2024-11-04T01:30:00-05:00"),
        ("0 2 * * *", "2024-11-03T01:10:00-05:00", "2024-11-03T02:00:00-05:00"),
        ("* 1 * * *", "2024-11-03T01:59:30-05:00", "2024-11-04T01:00:00-05:00"),
    ],
)
def test_a_start_in_the_second_copy_of_the_repeated_hour_never_goes_back(
    expression: str, start: str, expected: str
) -> None:
    got = _runs(expression, "America/New_York", start, 1)
    assert got == [expected]
    assert datetime.fromisoformat(got[0]) > datetime.fromisoformat(start)


@pytest.mark.parametrize(
    ("expression", "start", "expected"),
    [
        # Starting exactly at a firing returns the one after it.
        ("30 2 * * *", "2024-03-10T03:00:00-04:00", "2024-03-11T02:30:00-04:00"),
        ("*/15 * * * *", "2024-03-10T03:00:00-04:00", "2024-03-10T03:15:00-04:00"),
        ("30 1 * * *", "2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00"),
        ("30 * * * *", "2024-11-03T01:30:00-04:00", "2024-11-03T01:30:00-05:00"),
        # A microsecond either side of a firing.
        ("30 2 * * *", "2024-03-10T01:59:59.999999-05:00", "2024-03-10T03:00:00-04:00"),
        ("30 2 * * *", "2024-03-10T03:00:00.000001-04:00", "2024-03-11T02:30:00-04:00"),
        ("*/15 * * * *", "2024-03-10T01:45:00.000001-05:00", "2024-03-10T03:00:00-04:00"),
        ("* * * * * *", "2024-03-10T01:59:59.500000-05:00", "2024-03-10T03:00:00-04:00"),
        ("* * * * * *", "2024-03-10T03:00:00.000001-04:00", "2024-03-10T03:00:01-04:00"),
        ("0 0 * * *", "2024-03-10T00:00:00.000001-05:00", "2024-03-11T00:00:00-04:00"),
    ],
)
def test_the_next_run_is_strictly_after_the_start(
    expression: str, start: str, expected: str
) -> None:
    assert _runs(expression, "America/New_York", start, 1) == [expected]


@pytest.mark.parametrize("zone", [UTC, get_zone("UTC"), get_zone("Etc/UTC")])
@pytest.mark.parametrize(
    ("expression", "start", "expected"),
    [
        ("0 0 * * *", "2024-03-10T00:00:00+00:00", "2024-03-11T00:00:00+00:00"),
        ("0 0 * * *", "2024-03-09T23:59:59.999999+00:00", "2024-03-10T00:00:00+00:00"),
        ("* * * * * *", "2024-03-10T06:59:59.250000-05:00", "2024-03-10T12:00:00+00:00"),
    ],
)
def test_utc_has_no_transitions_and_the_same_strictness(
    zone: tzinfo, expression: str, start: str, expected: str
) -> None:
    got = parse_cron(expression).next_after(datetime.fromisoformat(start), zone)
    assert got is not None
    assert got.isoformat() == expected


def test_a_start_given_in_another_zone_is_the_same_instant() -> None:
    zone = get_zone("America/New_York")
    cron = parse_cron("30 1 * * *")
    second_copy = datetime(2024, 11, 3, 1, 10, tzinfo=zone, fold=1)
    same_in_tokyo = second_copy.astimezone(get_zone("Asia/Tokyo"))
    assert cron.next_after(second_copy, zone) == cron.next_after(same_in_tokyo, zone)
    assert cron.next_after(second_copy, zone) == datetime(2024, 11, 4, 6, 30, tzinfo=UTC)


def test_a_naive_start_is_rejected() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse_cron("* * * * *").next_after(datetime(2024, 1, 1), UTC)  # noqa: DTZ001


# ---------------------------------------------------------------------------------------
# Offsets that change and change back within a week
# ---------------------------------------------------------------------------------------


def test_a_change_reversed_within_a_week_is_not_missed() -> None:
    # Gaza's predicted rules leave summer time on 20 October 2040 and return to it less
    # than seven days later; 01:00 on the 27th happens first at +03:00 before the clocks
    # go back. (Brazil's north-east did the same in October 2000.)
    assert _runs("* 1 27 10 *", "Asia/Gaza", "2040-10-19T23:30:00+00:00", 2) == [
        "2040-10-27T01:00:00+03:00",
        "2040-10-27T01:01:00+03:00",
    ]
    assert _runs("* 0 14 10 *", "America/Recife", "2000-10-08T02:30:00+00:00", 1) == [
        "2000-10-14T00:00:00-02:00"
    ]


def test_a_firing_beyond_the_last_representable_year_is_none() -> None:
    late = datetime(9999, 12, 31, 23, 59, 30, tzinfo=UTC)
    assert parse_cron("* * * * *").next_after(late, UTC) is None
    assert parse_cron("0 0 * * *").next_after(late, get_zone("America/New_York")) is None
    assert parse_cron("*/15 * * * *").next_after(late - timedelta(days=1), UTC) is not None
