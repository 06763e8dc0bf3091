from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tickwork.domain.schedule import (
    CronSchedule,
    OnceSchedule,
    check_run_at_not_past,
    cron_schedule,
    describe,
    format_instant,
    initial_next_run,
    next_run_after,
    once_schedule,
    parse_instant,
    preview,
)
from tickwork.errors import InvalidSchedule, ValidationError


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def iso(instants: list[datetime]) -> list[str]:
    return [format_instant(i) for i in instants]


# -- construction ------------------------------------------------------------------------


def test_cron_schedule_keeps_the_expression_and_zone() -> None:
    s = cron_schedule("0 9 * * 1-5", "America/New_York")
    assert isinstance(s, CronSchedule)
    assert s.expression.source == "0 9 * * 1-5"
    assert s.timezone == "America/New_York"
    assert s.zone.key == "America/New_York"


def test_cron_schedule_defaults_to_utc() -> None:
    assert cron_schedule("@daily").timezone == "UTC"


def test_a_bad_expression_names_the_cron_expression_field() -> None:
    with pytest.raises(InvalidSchedule) as info:
        cron_schedule("61 * * * *")
    assert info.value.field == "cron_expression"
    assert "minute" in info.value.message


def test_an_unknown_zone_names_the_timezone_field() -> None:
    with pytest.raises(InvalidSchedule) as info:
        cron_schedule("0 9 * * *", "Mars/Olympus_Mons")
    assert info.value.field == "timezone"


def test_once_schedule_normalises_to_utc() -> None:
    s = once_schedule(datetime.fromisoformat("2026-03-08T08:00:00+01:00"), "Europe/Berlin")
    assert isinstance(s, OnceSchedule)
    assert s.run_at == datetime(2026, 3, 8, 7, tzinfo=UTC)
    assert s.run_at.tzinfo is UTC
    assert s.timezone == "Europe/Berlin"


def test_once_schedule_keeps_fractions_of_a_second() -> None:
    s = once_schedule(datetime(2026, 3, 8, 7, 0, 0, 250000, tzinfo=UTC))
    assert s.run_at.microsecond == 250000


def test_once_schedule_rejects_a_naive_instant() -> None:
    with pytest.raises(InvalidSchedule) as info:
        once_schedule(datetime(2026, 3, 8, 7))  # noqa: DTZ001 - naive on purpose
    assert info.value.field == "run_at"


def test_once_schedule_rejects_an_unknown_zone() -> None:
    with pytest.raises(InvalidSchedule) as info:
        once_schedule(datetime(2026, 3, 8, 7, tzinfo=UTC), "Nowhere/Special")
    assert info.value.field == "timezone"


# -- run_at in the past ------------------------------------------------------------------

NOW = datetime(2026, 3, 8, 12, tzinfo=UTC)


@pytest.mark.parametrize("seconds_ago", [-3600, 0, 30, 60])
def test_run_at_up_to_a_minute_in_the_past_is_accepted(seconds_ago: int) -> None:
    check_run_at_not_past(NOW - timedelta(seconds=seconds_ago), NOW)


@pytest.mark.parametrize("seconds_ago", [60.001, 61, 86400 * 3])
def test_run_at_further_in_the_past_is_rejected(seconds_ago: float) -> None:
    with pytest.raises(InvalidSchedule) as info:
        check_run_at_not_past(NOW - timedelta(seconds=seconds_ago), NOW)
    assert info.value.field == "run_at"
    assert "in the past" in info.value.message


def test_run_at_tolerance_can_be_changed() -> None:
    with pytest.raises(InvalidSchedule):
        check_run_at_not_past(NOW - timedelta(seconds=2), NOW, tolerance=timedelta(seconds=1))


# -- next run ---------------------------------------------------------------------------


def test_next_run_is_strictly_after_the_base() -> None:
    s = cron_schedule("0 * * * *")
    assert next_run_after(s, utc("2026-03-08T07:00:00Z")) == utc("2026-03-08T08:00:00Z")
    assert next_run_after(s, utc("2026-03-08T06:59:59Z")) == utc("2026-03-08T07:00:00Z")


def test_next_run_reads_wall_times_in_the_zone() -> None:
    s = cron_schedule("0 9 * * *", "America/New_York")
    # 09:00 EST is 14:00Z; after the spring change (8 March 2026) 09:00 EDT is 13:00Z.
    assert next_run_after(s, utc("2026-03-07T00:00:00Z")) == utc("2026-03-07T14:00:00Z")
    assert next_run_after(s, utc("2026-03-08T00:00:00Z")) == utc("2026-03-08T13:00:00Z")


def test_next_run_accepts_any_offset_for_the_base() -> None:
    s = cron_schedule("0 * * * *")
    base = datetime(2026, 3, 8, 9, 30, tzinfo=timezone(timedelta(hours=2)))
    assert next_run_after(s, base) == utc("2026-03-08T08:00:00Z")


def test_next_run_refuses_a_naive_base() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_run_after(cron_schedule("* * * * *"), datetime(2026, 1, 1))  # noqa: DTZ001


def test_a_one_time_schedule_fires_once() -> None:
    s = once_schedule(utc("2026-03-08T07:00:00Z"))
    assert next_run_after(s, utc("2026-03-08T06:59:59Z")) == utc("2026-03-08T07:00:00Z")
    assert next_run_after(s, utc("2026-03-08T07:00:00Z")) is None
    assert next_run_after(s, utc("2026-03-09T00:00:00Z")) is None


def test_initial_next_run_of_cron_is_after_now() -> None:
    s = cron_schedule("*/15 * * * *")
    assert initial_next_run(s, utc("2026-03-08T07:15:00Z")) == utc("2026-03-08T07:30:00Z")


def test_initial_next_run_arms_a_run_at_that_just_passed() -> None:
    # A create request may name an instant up to a minute ago: it must still be armed.
    s = once_schedule(utc("2026-03-08T07:00:00Z"))
    assert initial_next_run(s, utc("2026-03-08T07:00:40Z")) == utc("2026-03-08T07:00:00Z")
    assert initial_next_run(s, utc("2026-03-08T06:00:00Z")) == utc("2026-03-08T07:00:00Z")
    assert initial_next_run(s, utc("2026-03-08T07:05:00Z")) is None


# -- preview ----------------------------------------------------------------------------


def test_preview_lists_the_next_instants_in_order() -> None:
    s = cron_schedule("30 2 * * *", "America/New_York")
    got = preview(s, utc("2026-03-06T12:00:00Z"), 4)
    # 02:30 does not exist on 8 March in New York: fixed-time fires at 03:00 EDT.
    assert iso(got) == [
        "2026-03-07T07:30:00Z",
        "2026-03-08T07:00:00Z",
        "2026-03-09T06:30:00Z",
        "2026-03-10T06:30:00Z",
    ]


def test_preview_of_a_one_time_schedule_has_at_most_one_instant() -> None:
    s = once_schedule(utc("2026-03-08T07:00:00Z"))
    assert preview(s, utc("2026-03-01T00:00:00Z"), 5) == [utc("2026-03-08T07:00:00Z")]
    assert preview(s, utc("2026-03-09T00:00:00Z"), 5) == []


@pytest.mark.parametrize("count", [0, -1, 1001, True])
def test_preview_count_must_be_between_1_and_1000(count: int) -> None:
    with pytest.raises(ValidationError) as info:
        preview(cron_schedule("* * * * *"), NOW, count)
    assert info.value.field == "count"


def test_preview_of_1000_instants_is_allowed() -> None:
    got = preview(cron_schedule("* * * * *"), NOW, 1000)
    assert len(got) == 1000
    assert got[-1] - got[0] == timedelta(minutes=999)


# -- describe ---------------------------------------------------------------------------


def test_describe_a_utc_cron_schedule() -> None:
    s = cron_schedule("0 9 * * 1-5")
    assert describe(s) == s.expression.describe()
    assert "(time zone" not in describe(s)


def test_describe_names_a_zone_other_than_utc() -> None:
    s = cron_schedule("0 9 * * 1-5", "America/New_York")
    assert describe(s) == s.expression.describe() + " (time zone America/New_York)"


def test_describe_treats_etc_utc_as_utc() -> None:
    assert "(time zone" not in describe(cron_schedule("0 9 * * *", "Etc/UTC"))


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("0 9 31 * *", "the 31st day"),
        ("0 9 21,22,23 * *", "the 21st, the 22nd, and the 23rd day"),
        ("0 9 11,12,13 * *", "the 11th, the 12th, and the 13th day"),
        ("0 9 */10 * *", "every 10th day"),
    ],
)
def test_describe_gives_each_number_its_ordinal_suffix(expression: str, words: str) -> None:
    assert words in describe(cron_schedule(expression))


def test_describe_a_one_time_schedule() -> None:
    s = once_schedule(datetime.fromisoformat("2026-03-08T08:00:00+01:00"), "Europe/Berlin")
    assert describe(s) == "Once at 2026-03-08T07:00:00Z"


# -- instants as text -------------------------------------------------------------------


def test_format_instant_is_utc_with_a_z() -> None:
    berlin = datetime.fromisoformat("2026-03-08T08:00:00+01:00")
    assert format_instant(berlin) == "2026-03-08T07:00:00Z"
    assert format_instant(datetime(2026, 3, 8, 7, 0, 0, 5, tzinfo=UTC)) == (
        "2026-03-08T07:00:00.000005Z"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-08T07:00:00Z", "2026-03-08T07:00:00Z"),
        ("2026-03-08T08:00:00+01:00", "2026-03-08T07:00:00Z"),
        (" 2026-03-08 07:00Z ", "2026-03-08T07:00:00Z"),
    ],
)
def test_parse_instant_accepts_aware_iso_text(text: str, expected: str) -> None:
    assert format_instant(parse_instant(text)) == expected
    assert parse_instant(text).tzinfo is UTC


@pytest.mark.parametrize("text", ["2026-03-08T07:00:00", "tomorrow", "", "2026-13-01T00:00Z"])
def test_parse_instant_rejects_naive_or_unparsable_text(text: str) -> None:
    with pytest.raises(InvalidSchedule) as info:
        parse_instant(text, "after")
    assert info.value.field == "after"
