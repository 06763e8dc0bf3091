"""Effective slots: skips and shifts with their reasons, over year ends, leap days and DST."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from tickwork.domain.calendars import parse_calendar
from tickwork.domain.schedule import cron_schedule, once_schedule, rrule_schedule
from tickwork.domain.slots import (
    MAX_SHIFT_DAYS,
    CalendarSchedule,
    Slot,
    next_slot,
    preview_slots,
)
from tickwork.errors import ValidationError


def _show(slots: list[Slot], zone: str) -> list[str]:
    from tickwork.domain.zones import get_zone

    tz = get_zone(zone)
    return [
        f"{s.at.astimezone(tz).isoformat()} {s.status}" + (f" ({s.reason})" if s.reason else "")
        for s in slots
    ]


def _cron(
    expr: str, zone: str, calendar: dict[str, object], **bounds: datetime
) -> CalendarSchedule:
    return CalendarSchedule(cron_schedule(expr, zone), parse_calendar(calendar), **bounds)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_it_skips_holidays_and_weekends_with_the_reason() -> None:
    schedule = _cron("0 9 * * *", "Europe/Berlin", {"holidays": "DE-BY", "weekends": "exclude"})
    got = _show(preview_slots(schedule, _at("2026-12-23T12:00:00Z"), 6), "Europe/Berlin")
    assert got == [
        "2026-12-24T09:00:00+01:00 run",
        "2026-12-25T09:00:00+01:00 skip (holiday: Christmas Day)",
        "2026-12-26T09:00:00+01:00 skip (holiday: Second Day of Christmas)",
        "2026-12-27T09:00:00+01:00 skip (weekend: Sunday)",
        "2026-12-28T09:00:00+01:00 run",
        "2026-12-29T09:00:00+01:00 run",
    ]


def test_a_shift_over_the_year_end_lands_in_the_new_year() -> None:
    # New Year's Day 2028 is a Saturday; the 31st of December 2027 is a Friday.
    schedule = _cron(
        "0 9 1 * *",
        "America/New_York",
        {"holidays": "US", "weekends": "exclude", "shift": "next_business_day"},
    )
    got = _show(preview_slots(schedule, _at("2027-12-15T00:00:00Z"), 2), "America/New_York")
    assert got == [
        "2028-01-03T09:00:00-05:00 run (shifted from 2028-01-01 (holiday: New Year's Day))",
        "2028-02-01T09:00:00-05:00 run",
    ]


def test_a_previous_business_day_shift_crosses_back_over_the_year_end() -> None:
    # 1 January 2028 (Saturday, a holiday) moves back to Friday 31 December 2027 — which
    # the US observes as New Year's Day, so on to Thursday the 30th.
    schedule = _cron(
        "0 9 1 * *",
        "America/New_York",
        {"holidays": "US", "weekends": "exclude", "shift": "previous_business_day"},
    )
    got = _show(preview_slots(schedule, _at("2027-12-15T00:00:00Z"), 2), "America/New_York")
    assert got == [
        "2027-12-30T09:00:00-05:00 run (shifted from 2028-01-01 (holiday: New Year's Day))",
        "2028-02-01T09:00:00-05:00 run",
    ]


def test_a_leap_day_slot_shifts_to_the_first_of_march() -> None:
    # 29 February 2032 is a Sunday.
    schedule = CalendarSchedule(
        rrule_schedule(
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYHOUR=12", "2024-01-01T00:00:00", "Europe/London"
        ),
        parse_calendar({"weekends": "exclude", "shift": "next_business_day"}),
    )
    got = _show(preview_slots(schedule, _at("2024-03-01T00:00:00Z"), 2), "Europe/London")
    assert got == [
        "2028-02-29T12:00:00+00:00 run",
        "2032-03-01T12:00:00+00:00 run (shifted from 2032-02-29 (weekend: Sunday))",
    ]


def test_the_last_day_of_february_moves_back_from_a_weekend() -> None:
    # 28 February 2027 is a Sunday; 29 February 2028 a Tuesday.
    schedule = CalendarSchedule(
        rrule_schedule(
            "FREQ=MONTHLY;BYMONTH=2;BYMONTHDAY=-1;BYHOUR=9", "2026-01-01T00:00:00", "UTC"
        ),
        parse_calendar({"weekends": "exclude", "shift": "previous_business_day"}),
    )
    got = _show(preview_slots(schedule, _at("2026-12-01T00:00:00Z"), 2), "UTC")
    assert got == [
        "2027-02-26T09:00:00+00:00 run (shifted from 2027-02-28 (weekend: Sunday))",
        "2028-02-29T09:00:00+00:00 run",
    ]


def test_a_shift_never_lands_on_a_date_that_has_a_slot() -> None:
    schedule = _cron("0 9 * * *", "UTC", {"exclude_dates": ["2026-07-01"],
                                          "shift": "next_business_day"})  # fmt: skip
    got = _show(preview_slots(schedule, _at("2026-07-01T00:00:00Z"), 2), "UTC")
    assert got == [
        "2026-07-01T09:00:00+00:00 skip (excluded date 2026-07-01; 2026-07-02 already has a slot)",
        "2026-07-02T09:00:00+00:00 run",
    ]


def test_of_two_excluded_days_only_the_nearer_ones_slots_move() -> None:
    schedule = _cron("0 9 * * 6,0", "UTC", {"weekends": "exclude", "shift": "next_business_day"})
    got = _show(preview_slots(schedule, _at("2026-03-06T00:00:00Z"), 2), "UTC")
    assert got == [
        "2026-03-07T09:00:00+00:00 skip (weekend: Saturday; 2026-03-09 takes the slots of "
        "2026-03-08 instead)",
        "2026-03-09T09:00:00+00:00 run (shifted from 2026-03-08 (weekend: Sunday))",
    ]


def test_every_slot_of_an_excluded_day_moves_together() -> None:
    schedule = _cron("0 9,17 * * 6", "UTC", {"weekends": "exclude", "shift": "next_business_day"})
    got = _show(preview_slots(schedule, _at("2026-03-06T00:00:00Z"), 2), "UTC")
    assert got == [
        "2026-03-09T09:00:00+00:00 run (shifted from 2026-03-07 (weekend: Saturday))",
        "2026-03-09T17:00:00+00:00 run (shifted from 2026-03-07 (weekend: Saturday))",
    ]


def test_a_slot_shifted_earlier_comes_in_order_before_the_next_nominal_one() -> None:
    # The 15th, or the business day before it: 15 March 2026 is a Sunday.
    schedule = _cron("0 9 15 * *", "UTC", {"weekends": "exclude",
                                           "shift": "previous_business_day"})  # fmt: skip
    after = _at("2026-03-12T12:00:00Z")
    slot = next_slot(schedule, after)
    assert slot == Slot(
        at=_at("2026-03-13T09:00:00Z"),
        status="run",
        nominal=_at("2026-03-15T09:00:00Z"),
        reason="shifted from 2026-03-15 (weekend: Sunday)",
    )
    assert slot.shifted
    # Asked from after the moved slot, the sequence carries on, never repeating it.
    assert next_slot(schedule, slot.at) == Slot(
        _at("2026-04-15T09:00:00Z"), "run", _at("2026-04-15T09:00:00Z")
    )
    following = next_slot(schedule, _at("2026-03-13T09:00:01Z"))
    assert following is not None
    assert following.at == _at("2026-04-15T09:00:00Z")


def test_a_slot_from_before_the_instant_asked_about_that_moves_after_it_is_found() -> None:
    schedule = _cron("0 9 * * 6", "UTC", {"weekends": "exclude", "shift": "next_business_day"})
    # Saturday 7 March 09:00 has passed; its slot moves to Monday 9 March.
    slot = next_slot(schedule, _at("2026-03-08T12:00:00Z"))
    assert slot is not None
    assert (slot.at, slot.nominal) == (_at("2026-03-09T09:00:00Z"), _at("2026-03-07T09:00:00Z"))


def test_a_shift_across_a_dst_change_keeps_the_wall_time() -> None:
    # Sunday 8 March 2026 09:00 EST would move to Monday 09:00, which is EDT by then.
    schedule = _cron("0 9 * * 0", "America/New_York", {"weekends": "exclude",
                                                       "shift": "next_business_day"})  # fmt: skip
    slot = next_slot(schedule, _at("2026-03-07T00:00:00Z"))
    assert slot is not None
    assert slot.nominal == _at("2026-03-08T13:00:00Z")  # 09:00 EDT: the change is at 02:00
    assert slot.at == _at("2026-03-09T13:00:00Z")


def test_a_moved_wall_time_in_a_gap_fires_at_the_end_of_the_gap() -> None:
    # 02:30 on Saturday 7 March moves to Sunday 8 March, when 02:30 does not exist.
    schedule = _cron("30 2 * * 6", "America/New_York", {"exclude_dates": ["2026-03-07"],
                                                        "shift": "next_business_day"})  # fmt: skip
    slot = next_slot(schedule, _at("2026-03-06T00:00:00Z"))
    assert slot is not None
    assert slot.at == _at("2026-03-08T07:00:00Z")  # 03:00 EDT


def test_a_shift_never_crosses_ends_at() -> None:
    schedule = _cron(
        "0 9 * * 6",
        "UTC",
        {"weekends": "exclude", "shift": "next_business_day"},
        ends_at=_at("2026-03-08T00:00:00Z"),
    )
    got = preview_slots(schedule, _at("2026-03-03T00:00:00Z"), 5)
    assert _show(got, "UTC") == [
        "2026-03-07T09:00:00+00:00 skip (weekend: Saturday; moving to 2026-03-09 would fall "
        "after ends_at)",
    ]


def test_nothing_before_starts_at_counts() -> None:
    schedule = _cron(
        "0 9 * * *", "UTC", {"weekends": "exclude"}, starts_at=_at("2026-03-05T00:00:00Z")
    )
    got = preview_slots(schedule, _at("2026-03-01T00:00:00Z"), 1)
    assert got[0].at == _at("2026-03-05T09:00:00Z")


def test_a_long_exclusion_with_no_business_day_skips_with_the_reason() -> None:
    schedule = _cron(
        "0 9 1 1 *",
        "UTC",
        {"exclude_ranges": [["2026-01-01", "2027-12-31"]], "shift": "next_business_day"},
    )
    got = preview_slots(schedule, _at("2025-12-31T00:00:00Z"), 1)
    assert got[0].status == "skip"
    assert got[0].reason == (
        f"excluded range 2026-01-01 to 2027-12-31; no business day within {MAX_SHIFT_DAYS} days"
    )


def test_a_country_weekend_comes_from_the_holiday_calendar() -> None:
    # Saudi Arabia's weekend is Friday and Saturday.
    schedule = _cron("0 9 * * *", "Asia/Riyadh", {"holidays": "SA", "weekends": "exclude"})
    got = preview_slots(schedule, _at("2026-03-12T00:00:00Z"), 3)
    assert [(s.at.date(), s.status) for s in got] == [
        (date(2026, 3, 12), "run"),
        (date(2026, 3, 13), "skip"),
        (date(2026, 3, 14), "skip"),
    ]
    assert got[1].reason == "weekend: Friday"


def test_without_a_calendar_every_firing_is_a_run() -> None:
    schedule = cron_schedule("0 9 * * *", "UTC")
    assert next_slot(schedule, _at("2026-03-01T00:00:00Z")) == Slot(
        _at("2026-03-01T09:00:00Z"), "run", _at("2026-03-01T09:00:00Z")
    )
    once = once_schedule(_at("2026-03-01T09:00:00Z"))
    assert len(preview_slots(once, _at("2026-01-01T00:00:00Z"), 5)) == 1


def test_preview_counts_are_bounded() -> None:
    with pytest.raises(ValidationError, match="count: must be between 1 and 1000"):
        preview_slots(cron_schedule("* * * * *"), datetime(2026, 1, 1, tzinfo=UTC), 1001)


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_slot(cron_schedule("* * * * *"), datetime(2026, 1, 1))  # noqa: DTZ001


def test_overlapping_ranges_are_crossed_to_their_far_end() -> None:
    calendar = parse_calendar(
        {
            "exclude_ranges": [["2026-08-01", "2026-08-10"], ["2026-08-05", "2026-08-20"]],
            "exclude_dates": ["2026-08-21"],
        }
    )
    assert calendar.nearest_business_day(date(2026, 7, 31), 1, 366) == date(2026, 8, 22)
    assert calendar.nearest_business_day(date(2026, 8, 21), -1, 366) == date(2026, 7, 31)
    assert calendar.nearest_business_day(date(2026, 7, 31), 1, 10) is None
    assert calendar.exclusion(date(2026, 8, 15)) == "excluded range 2026-08-05 to 2026-08-20"
