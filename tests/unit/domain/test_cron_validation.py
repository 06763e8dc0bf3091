"""What the cron grammar accepts and how it says no (SPEC §3).

Every rejection is an :class:`InvalidSchedule` whose ``field`` is the request field at
fault (``cron_expression`` or ``timezone``) and whose message begins with the part of
the expression that is wrong, so a user can fix it without reading the grammar.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickwork.domain.cron import parse_cron
from tickwork.domain.zones import get_zone
from tickwork.errors import InvalidSchedule

_MONTHS = "JAN, FEB, MAR, APR, MAY, JUN, JUL, AUG, SEP, OCT, NOV, DEC"
_DAYS = "SUN, MON, TUE, WED, THU, FRI, SAT"
_FIELD_NAMES = {"second", "minute", "hour", "day-of-month", "month", "day-of-week"}
_WHOLE_EXPRESSION_PROBLEMS = ("expected ", "is empty", "unknown alias")
_FIELD_COUNT = (
    "expected 5 fields (minute hour day-of-month month day-of-week) or 6 with a leading "
    "second field, got {}"
)


def _rejection(expression: str) -> str:
    with pytest.raises(InvalidSchedule) as caught:
        parse_cron(expression)
    assert caught.value.field == "cron_expression"
    return caught.value.message


def _next(expression: str, after: str, zone: str = "UTC") -> str:
    got = parse_cron(expression).next_after(datetime.fromisoformat(after), get_zone(zone))
    assert got is not None
    return got.astimezone(get_zone(zone)).isoformat()


# ---------------------------------------------------------------------------------------
# Rejections
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("61 * * * *", "minute: 61 is out of range 0-59"),
        ("60 * * * *", "minute: 60 is out of range 0-59"),
        ("* 24 * * *", "hour: 24 is out of range 0-23"),
        ("* * 0 * *", "day-of-month: 0 is out of range 1-31"),
        ("* * 32 * *", "day-of-month: 32 is out of range 1-31"),
        ("* * * 0 *", "month: 0 is out of range 1-12"),
        ("* * * 13 *", "month: 13 is out of range 1-12"),
        ("* * * * 8", "day-of-week: 8 is out of range 0-7"),
        ("60 * * * * *", "second: 60 is out of range 0-59"),
        ("0-61 * * * *", "minute: 61 is out of range 0-59"),
        ("* 20-25 * * *", "hour: 25 is out of range 0-23"),
        ("* * * * 8L", "day-of-week: 8 is out of range 0-7"),
        ("* * * * 9#2", "day-of-week: 9 is out of range 0-7"),
    ],
)
def test_values_outside_a_fields_range_are_rejected_by_field(expression: str, message: str) -> None:
    assert _rejection(expression) == message


def test_the_error_text_names_the_request_field_then_the_cron_field() -> None:
    with pytest.raises(InvalidSchedule, match=r"^cron_expression: minute: 61 is out of range"):
        parse_cron("61 * * * *")


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("*/0 * * * *", "minute: step 0 in '*/0' is not allowed"),
        ("1/0 * * * *", "minute: step 0 in '1/0' is not allowed"),
        ("* */0 * * *", "hour: step 0 in '*/0' is not allowed"),
        ("*/x * * * *", "minute: step 'x' in '*/x' is not a number"),
        ("*/ * * * *", "minute: step '' in '*/' is not a number"),
        ("*/1/2 * * * *", "minute: step '1/2' in '*/1/2' is not a number"),
        ("*/-5 * * * *", "minute: step '-5' in '*/-5' is not a number"),
        ("*/² * * * *", "minute: step '²' in '*/²' is not a number"),
        ("0 0 */١ * *", "day-of-month: step '١' in '*/١' is not a number"),
    ],
)
def test_bad_steps_are_rejected(expression: str, message: str) -> None:
    assert _rejection(expression) == message


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("5-1 * * * *", "minute: range '5-1' runs backwards"),
        ("* 23-1 * * *", "hour: range '23-1' runs backwards"),
        ("* * * DEC-JAN *", "month: range 'DEC-JAN' runs backwards"),
        ("* * * * FRI-MON", "day-of-week: range 'FRI-MON' runs backwards"),
        ("-1 * * * *", "minute: range '-1' is missing a bound"),
        ("1- * * * *", "minute: range '1-' is missing a bound"),
        ("1-2-3 * * * *", "minute: '2-3' is not a number"),
    ],
)
def test_backwards_and_broken_ranges_are_rejected(expression: str, message: str) -> None:
    assert _rejection(expression) == message


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * FOO *", f"month: 'FOO' is not a number (names: {_MONTHS})"),
        ("* * * jan-foo *", f"month: 'foo' is not a number (names: {_MONTHS})"),
        ("* * * * MONDAY", f"day-of-week: 'MONDAY' is not a number (names: {_DAYS})"),
        # Names belong to their own field only.
        ("* * * MON *", f"month: 'MON' is not a number (names: {_MONTHS})"),
        ("* * * * JAN", f"day-of-week: 'JAN' is not a number (names: {_DAYS})"),
        ("* * JAN * *", "day-of-month: 'JAN' is not a number"),
        ("a * * * *", "minute: 'a' is not a number"),
        ("* * ? * *", "day-of-month: '?' is not a number"),
        ("1,,2 * * * *", "minute: empty list item in '1,,2'"),
        ("0 0 * * *x", f"day-of-week: '*x' is not a number (names: {_DAYS})"),
    ],
)
def test_unknown_names_and_stray_characters_are_rejected(expression: str, message: str) -> None:
    assert _rejection(expression) == message


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * * MON#6", "day-of-week: '#6' must be #1 to #5 in 'MON#6'"),
        ("* * * * 1#0", "day-of-week: '#0' must be #1 to #5 in '1#0'"),
        ("* * * * 1#", "day-of-week: '#' must be #1 to #5 in '1#'"),
        ("* * * * MONL", "day-of-week: 'MONL': use a weekday number before L (5L = last Friday)"),
        ("* * * * L", f"day-of-week: 'L' is not a number (names: {_DAYS})"),
        ("* * 5L * *", "day-of-month: '5L' is not a number"),
        ("* * 15W * *", "day-of-month: '15W' is not a number"),
        ("* * * L *", f"month: 'L' is not a number (names: {_MONTHS})"),
        ("L * * * *", "minute: 'L' is not a number"),
    ],
)
def test_special_day_forms_are_rejected_outside_their_field(expression: str, message: str) -> None:
    assert _rejection(expression) == message


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * *", _FIELD_COUNT.format(4)),
        ("* * * * * * *", _FIELD_COUNT.format(7)),
        ("*", _FIELD_COUNT.format(1)),
        ("", "is empty"),
        ("   ", "is empty"),
    ],
)
def test_the_wrong_number_of_fields_is_rejected(expression: str, message: str) -> None:
    assert _rejection(expression) == message


@pytest.mark.parametrize("alias", ["@fortnightly", "@", "@reboot", "@every 5m"])
def test_unknown_aliases_are_rejected(alias: str) -> None:
    assert _rejection(alias) == (
        f"unknown alias {alias!r} "
        "(known: @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly)"
    )


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 0 31 2 *", "day-of-month: 31 never occurs in February, so this never fires"),
        ("0 0 30 2 *", "day-of-month: 30 never occurs in February, so this never fires"),
        ("0 0 30-31 FEB *", "day-of-month: 30 never occurs in February, so this never fires"),
        (
            "0 0 31 4,6,9,11 *",
            "day-of-month: 31 never occurs in April, June, September, November, "
            "so this never fires",
        ),
        ("0 0 0 31 2 *", "day-of-month: 31 never occurs in February, so this never fires"),
        # With the day-of-week a wildcard too, the days still have to exist.
        ("0 0 31 2 */2", "day-of-month: 31 never occurs in February, so this never fires"),
    ],
)
def test_dates_that_never_happen_are_rejected(expression: str, message: str) -> None:
    assert _rejection(expression) == message


@pytest.mark.parametrize("value", [None, 5, b"* * * * *"])
def test_an_expression_that_is_not_text_is_rejected(value: object) -> None:
    assert _rejection(value) == "must be a string"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name",
    [
        "Mars/Olympus",
        "America/Nowhere",
        "utc",
        "America/New York",
        "",
        "../../etc/passwd",
        "/etc/passwd",
        "America/../Europe/Berlin",
        "America/New_York/..",
        "America\\New_York",
        "Europe/Berlin\x00",
        "zone.tab",
        "tzdata.zi",
        "America",
    ],
)
def test_unknown_time_zones_and_paths_are_rejected(name: str) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        get_zone(name)
    assert caught.value.field == "timezone"
    assert caught.value.message.startswith(f"unknown time zone {name!r}")
    assert str(caught.value).startswith("timezone: unknown time zone ")


def test_the_zone_error_can_name_another_field() -> None:
    with pytest.raises(InvalidSchedule) as caught:
        get_zone("Mars/Olympus", field="display_timezone")
    assert caught.value.field == "display_timezone"


@given(
    st.lists(
        st.sampled_from(
            [*"0123456789*/-,#LW? ", "MON", "jan", "LW", "5L", "31", "60", "7", "²", "@daily"]
        ),
        max_size=40,
    ).map("".join)
)
def test_any_text_is_either_a_schedule_or_a_rejection_naming_the_field(text: str) -> None:
    rejected: InvalidSchedule | None = None
    try:
        cron = parse_cron(text)
    except InvalidSchedule as error:
        rejected = error
    if rejected is not None:
        assert rejected.field == "cron_expression"
        head = rejected.message.split(":")[0]
        assert head in _FIELD_NAMES or rejected.message.startswith(_WHOLE_EXPRESSION_PROBLEMS)
        return
    start = datetime(2024, 3, 10, 6, 59, 59, tzinfo=UTC)
    got = cron.next_after(start, get_zone("America/New_York"))
    assert got is None or got > start
    assert cron.describe()


# ---------------------------------------------------------------------------------------
# Acceptance: every grammar feature SPEC §3 lists
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # 29 February exists in leap years.
        ("0 0 29 2 *", "2024-03-01T00:00:00+00:00", "2028-02-29T00:00:00+00:00"),
        # Both day fields restricted: either may match (Vixie cron), so Mondays in February.
        ("0 0 31 2 MON", "2024-02-01T00:00:00+00:00", "2024-02-05T00:00:00+00:00"),
        ("0 0 30 2 1", "2024-02-01T00:00:00+00:00", "2024-02-05T00:00:00+00:00"),
    ],
)
def test_dates_that_can_happen_are_accepted(expression: str, after: str, expected: str) -> None:
    assert _next(expression, after) == expected


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # Plain numbers, lists, ranges and steps.
        ("5 4 * * *", "2024-05-01T12:00:00+00:00", "2024-05-02T04:05:00+00:00"),
        ("0,20,40 * * * *", "2024-05-01T12:21:00+00:00", "2024-05-01T12:40:00+00:00"),
        ("0 9-11 * * *", "2024-05-01T11:30:00+00:00", "2024-05-02T09:00:00+00:00"),
        ("*/25 * * * *", "2024-05-01T12:26:00+00:00", "2024-05-01T12:50:00+00:00"),
        ("1-10/3 * * * *", "2024-05-01T12:05:00+00:00", "2024-05-01T12:07:00+00:00"),
        ("10/20 * * * *", "2024-05-01T12:31:00+00:00", "2024-05-01T12:50:00+00:00"),
        # Month and day names, in either case.
        ("0 9 1 JAN,JUL *", "2024-02-01T00:00:00+00:00", "2024-07-01T09:00:00+00:00"),
        ("0 9 * jan-mar *", "2024-04-01T00:00:00+00:00", "2025-01-01T09:00:00+00:00"),
        ("0 9 * * MON-FRI", "2024-05-03T10:00:00+00:00", "2024-05-06T09:00:00+00:00"),
        ("0 9 * * sat,sun", "2024-05-01T00:00:00+00:00", "2024-05-04T09:00:00+00:00"),
        # 7 is Sunday, as is 0.
        ("0 9 * * 7", "2024-05-01T00:00:00+00:00", "2024-05-05T09:00:00+00:00"),
        ("0 9 * * 0", "2024-05-01T00:00:00+00:00", "2024-05-05T09:00:00+00:00"),
        ("0 9 * * 5-7", "2024-05-01T00:00:00+00:00", "2024-05-03T09:00:00+00:00"),
        # L: the last day of the month (29 February in 2024).
        ("0 0 L * *", "2024-02-01T00:00:00+00:00", "2024-02-29T00:00:00+00:00"),
        ("0 0 1,L * *", "2024-04-02T00:00:00+00:00", "2024-04-30T00:00:00+00:00"),
        # nL: the last given weekday of the month (29 March 2024 is the last Friday).
        ("0 0 * * 5L", "2024-03-01T00:00:00+00:00", "2024-03-29T00:00:00+00:00"),
        ("0 0 * * 7L", "2024-03-01T00:00:00+00:00", "2024-03-31T00:00:00+00:00"),
        # LW: the last weekday (31 August 2024 is a Saturday, so Friday the 30th).
        ("0 0 LW * *", "2024-08-01T00:00:00+00:00", "2024-08-30T00:00:00+00:00"),
        # #: the nth given weekday of the month.
        ("0 0 * * MON#2", "2024-09-01T00:00:00+00:00", "2024-09-09T00:00:00+00:00"),
        ("0 0 * * 5#5", "2024-04-01T00:00:00+00:00", "2024-05-31T00:00:00+00:00"),
        ("0 0 * * 7#1", "2024-09-02T00:00:00+00:00", "2024-10-06T00:00:00+00:00"),
        # Vixie OR: the 13th or any Friday; AND when one day field starts with "*".
        ("0 0 13 * FRI", "2024-09-07T00:00:00+00:00", "2024-09-13T00:00:00+00:00"),
        ("0 0 14 * FRI", "2024-09-07T00:00:00+00:00", "2024-09-13T00:00:00+00:00"),
        ("0 0 */2 * MON", "2024-09-01T00:00:00+00:00", "2024-09-09T00:00:00+00:00"),
        # Six fields: a leading seconds field.
        ("*/10 * * * * *", "2024-05-01T12:00:05+00:00", "2024-05-01T12:00:10+00:00"),
        ("30 0 9 * * MON", "2024-05-01T00:00:00+00:00", "2024-05-06T09:00:30+00:00"),
    ],
)
def test_every_grammar_feature_is_accepted(expression: str, after: str, expected: str) -> None:
    assert _next(expression, after) == expected


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("@yearly", "2025-01-01T00:00:00+00:00"),
        ("@annually", "2025-01-01T00:00:00+00:00"),
        ("@monthly", "2024-06-01T00:00:00+00:00"),
        ("@weekly", "2024-05-19T00:00:00+00:00"),
        ("@daily", "2024-05-16T00:00:00+00:00"),
        ("@midnight", "2024-05-16T00:00:00+00:00"),
        ("@hourly", "2024-05-15T13:00:00+00:00"),
        ("@DAILY", "2024-05-16T00:00:00+00:00"),
    ],
)
def test_every_alias_is_accepted(alias: str, expected: str) -> None:
    assert _next(alias, "2024-05-15T12:34:00+00:00") == expected  # a Wednesday


@pytest.mark.parametrize(
    ("expression", "expanded", "wildcard", "has_seconds"),
    [
        ("@hourly", "0 * * * *", True, False),
        ("@daily", "0 0 * * *", False, False),
        ("*/15 * * * *", "*/15 * * * *", True, False),
        ("30 2 * * *", "30 2 * * *", False, False),
        ("0 * 1 * *", "0 * 1 * *", True, False),
        ("0 30 2 * * *", "0 30 2 * * *", False, True),
        ("* 30 2 * * *", "* 30 2 * * *", False, True),
        ("0 */5 9 * * *", "0 */5 9 * * *", True, True),
        (" 0 9 * * mon ", "0 9 * * MON", False, False),
    ],
)
def test_the_classification_reads_only_the_minute_and_hour_fields(
    expression: str, expanded: str, wildcard: bool, has_seconds: bool
) -> None:
    cron = parse_cron(expression)
    assert cron.expanded == expanded
    assert cron.wildcard is wildcard
    assert cron.has_seconds is has_seconds
    assert cron.source == expression.strip()


@pytest.mark.parametrize(
    ("expression", "description"),
    [
        ("*/15 * * * *", "Every 15th minute of every hour"),
        ("0 9 * * MON-FRI", "At 09:00 on Monday through Friday"),
        ("0 0 L * *", "At 00:00 on the last day of every month"),
        ("@hourly", "At the start of every hour"),
        ("0 30 2 * * *", "At 02:30 every day"),
    ],
)
def test_every_expression_can_be_described(expression: str, description: str) -> None:
    assert parse_cron(expression).describe() == description
