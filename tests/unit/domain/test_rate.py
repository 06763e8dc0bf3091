"""A schedule's firing rate, as the tenant quota counts it (SPEC §9)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tickwork.domain.rate import MAX_SLOTS_PER_DAY, MINUTES_PER_DAY, slots_per_day
from tickwork.domain.schedule import cron_schedule, next_run_after, once_schedule


@pytest.mark.parametrize(
    ("expression", "per_day"),
    [
        ("* * * * * *", 86_400),  # 60 per minute
        ("*/10 * * * * *", 8_640),
        ("0 * * * * *", 1_440),  # a 6-field every minute is a 5-field one
        ("* * * * *", 1_440),
        ("*/15 * * * *", 96),
        ("0 9 * * *", 1),
        ("0 9 * * 1-5", 1),  # counted on a day it fires
        ("0 9,17 1 * *", 2),
        ("30 0-23/6 * * *", 4),
        ("0,30 * 15 * *", 48),
        ("*/20 0-9 * * *", 30),
        ("0 0 L * *", 1),
        ("0 12 * * 5#2", 1),
        ("15,45 8-9 LW * *", 4),
        ("5-10/5 * * * * *", 2 * 1440),
        ("@hourly", 24),
        ("@daily", 1),
        ("@weekly", 1),
        ("@yearly", 1),
    ],
)
def test_it_counts_the_firings_of_a_day_that_fires(expression: str, per_day: int) -> None:
    assert slots_per_day(cron_schedule(expression, "Europe/Berlin")) == per_day


def test_every_second_is_60_per_minute_and_a_daily_one_is_1_in_1440() -> None:
    assert slots_per_day(cron_schedule("* * * * * *")) / MINUTES_PER_DAY == 60
    assert slots_per_day(cron_schedule("0 9 * * *")) / MINUTES_PER_DAY == 1 / 1440
    assert slots_per_day(cron_schedule("* * * * * *")) == MAX_SLOTS_PER_DAY


def test_a_one_time_trigger_adds_nothing_to_the_rate() -> None:
    assert slots_per_day(once_schedule(datetime(2026, 3, 8, 7, tzinfo=UTC))) == 0


@pytest.mark.parametrize(
    "expression", ["*/7 * * * *", "0 9 * * 1-5", "15,45 8-9 * * *", "*/20 * 9-10 * * *"]
)
def test_it_matches_the_firings_of_a_real_day_that_fires(expression: str) -> None:
    # Count the instants of one plain UTC day that fires (a Monday), one by one.
    schedule = cron_schedule(expression)
    day = datetime(2026, 3, 2, tzinfo=UTC)
    fired, instant = 0, next_run_after(schedule, day - timedelta(microseconds=1))
    while instant is not None and instant < day + timedelta(days=1):
        fired += 1
        instant = next_run_after(schedule, instant)
    assert fired == slots_per_day(schedule)
