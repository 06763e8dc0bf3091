from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickwork.domain.catchup import (
    MAX_MISSED_RECORDED,
    MAX_RUN_PER_PASS,
    CatchupPlan,
    OverlapDecision,
    jitter_offset,
    plan_catchup,
    plan_overlap,
    plan_overlap_many,
)
from tickwork.domain.schedule import (
    Schedule,
    cron_schedule,
    format_instant,
    next_run_after,
    once_schedule,
)
from tickwork.errors import ValidationError


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def iso(instants: list[datetime]) -> list[str]:
    return [format_instant(i) for i in instants]


def slots_between(schedule: Schedule, first: datetime, last: datetime) -> list[datetime]:
    """Brute force: ``first`` and every firing after it up to ``last``."""
    out = [first]
    cursor = next_run_after(schedule, first)
    while cursor is not None and cursor <= last:
        out.append(cursor)
        cursor = next_run_after(schedule, cursor)
    return out


def accounted(plan: CatchupPlan) -> int:
    return len(plan.run) + plan.missed_total


DAILY = cron_schedule("0 9 * * *")
HOURLY = cron_schedule("0 * * * *")
MINUTELY = cron_schedule("* * * * *")

# -- a three-day outage ------------------------------------------------------------------
# Down from just before 5 March 09:00Z; back at the moment given. The stored next_run_at
# is the 5 March 09:00Z slot.
OUTAGE_START = utc("2026-03-05T09:00:00Z")


@pytest.mark.parametrize(
    ("policy", "now", "run", "missed"),
    [
        # Back 10 minutes after the 8 March slot: within the hour-long window.
        (
            "latest",
            "2026-03-08T09:10:00Z",
            ["2026-03-08T09:00:00Z"],
            ["2026-03-05T09:00:00Z", "2026-03-06T09:00:00Z", "2026-03-07T09:00:00Z"],
        ),
        (
            "all",
            "2026-03-08T09:10:00Z",
            ["2026-03-08T09:00:00Z"],
            ["2026-03-05T09:00:00Z", "2026-03-06T09:00:00Z", "2026-03-07T09:00:00Z"],
        ),
        # none: ten minutes late is not on time.
        (
            "none",
            "2026-03-08T09:10:00Z",
            [],
            [
                "2026-03-05T09:00:00Z",
                "2026-03-06T09:00:00Z",
                "2026-03-07T09:00:00Z",
                "2026-03-08T09:00:00Z",
            ],
        ),
        # none: back within the grace, so the current slot is simply on time.
        (
            "none",
            "2026-03-08T09:00:30Z",
            ["2026-03-08T09:00:00Z"],
            ["2026-03-05T09:00:00Z", "2026-03-06T09:00:00Z", "2026-03-07T09:00:00Z"],
        ),
        # Back two hours after the last slot: outside the window, everything is missed.
        (
            "latest",
            "2026-03-08T11:00:00Z",
            [],
            [
                "2026-03-05T09:00:00Z",
                "2026-03-06T09:00:00Z",
                "2026-03-07T09:00:00Z",
                "2026-03-08T09:00:00Z",
            ],
        ),
    ],
)
def test_a_daily_trigger_after_three_days_down(
    policy: str, now: str, run: list[str], missed: list[str]
) -> None:
    plan = plan_catchup(DAILY, OUTAGE_START, utc(now), policy)
    assert iso(plan.run) == run
    assert iso(plan.missed) == missed
    assert plan.missed_uncounted == 0
    assert plan.next_run_at == utc("2026-03-09T09:00:00Z")


def test_a_daily_trigger_runs_every_missed_day_with_a_long_window() -> None:
    plan = plan_catchup(DAILY, OUTAGE_START, utc("2026-03-08T09:10:00Z"), "all", 4 * 86400)
    assert iso(plan.run) == [
        "2026-03-05T09:00:00Z",
        "2026-03-06T09:00:00Z",
        "2026-03-07T09:00:00Z",
        "2026-03-08T09:00:00Z",
    ]
    assert plan.missed == []


@pytest.mark.parametrize(
    ("policy", "window", "run", "missed_count", "last_missed"),
    [
        ("latest", 3600, ["2026-03-08T09:00:00Z"], 72, "2026-03-08T08:00:00Z"),
        ("all", 3600, ["2026-03-08T09:00:00Z"], 72, "2026-03-08T08:00:00Z"),
        (
            "all",
            3 * 3600,
            ["2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z", "2026-03-08T09:00:00Z"],
            70,
            "2026-03-08T06:00:00Z",
        ),
        ("none", 3600, [], 73, "2026-03-08T09:00:00Z"),
    ],
)
def test_an_hourly_trigger_after_three_days_down(
    policy: str, window: int, run: list[str], missed_count: int, last_missed: str
) -> None:
    plan = plan_catchup(HOURLY, OUTAGE_START, utc("2026-03-08T09:10:00Z"), policy, window)
    assert iso(plan.run) == run
    assert len(plan.missed) == missed_count
    assert plan.missed[0] == OUTAGE_START
    assert format_instant(plan.missed[-1]) == last_missed
    assert plan.missed_uncounted == 0
    assert plan.next_run_at == utc("2026-03-08T10:00:00Z")


@pytest.mark.parametrize(
    ("policy", "run_first", "run_count", "missed_total"),
    [
        ("latest", "2026-03-08T09:00:00Z", 1, 4320),
        # The hour before 09:00:30 holds the slots 08:01 to 09:00.
        ("all", "2026-03-08T08:01:00Z", 60, 4261),
        ("none", "2026-03-08T09:00:00Z", 1, 4320),
    ],
)
def test_a_per_minute_trigger_after_three_days_down(
    policy: str, run_first: str, run_count: int, missed_total: int
) -> None:
    now = utc("2026-03-08T09:00:30Z")
    plan = plan_catchup(MINUTELY, OUTAGE_START, now, policy)
    assert format_instant(plan.run[0]) == run_first
    assert len(plan.run) == run_count
    assert plan.run[-1] == utc("2026-03-08T09:00:00Z")
    # The oldest 100 are listed; the rest are counted (walked, then extrapolated at the
    # steady one-a-minute rate, which is exact here).
    assert len(plan.missed) == MAX_MISSED_RECORDED
    assert plan.missed[0] == OUTAGE_START
    assert plan.missed[-1] == OUTAGE_START + timedelta(minutes=99)
    assert plan.missed_total == missed_total
    assert plan.missed_estimated
    assert accounted(plan) == 3 * 1440 + 1
    assert plan.next_run_at == utc("2026-03-08T09:01:00Z")


# -- daylight saving time ---------------------------------------------------------------

NY_0230 = cron_schedule("30 2 * * *", "America/New_York")


def test_a_fixed_time_daily_across_the_spring_gap_runs_every_day_once() -> None:
    # 02:30 does not exist on 8 March 2026 in New York: that day it fires at 03:00 EDT.
    plan = plan_catchup(
        NY_0230, utc("2026-03-07T07:30:00Z"), utc("2026-03-09T06:40:00Z"), "all", 3 * 86400
    )
    assert iso(plan.run) == [
        "2026-03-07T07:30:00Z",  # 02:30 EST
        "2026-03-08T07:00:00Z",  # 03:00 EDT, the first instant after the gap
        "2026-03-09T06:30:00Z",  # 02:30 EDT
    ]
    assert plan.next_run_at == utc("2026-03-10T06:30:00Z")


def test_latest_after_the_spring_gap_runs_the_most_recent_day() -> None:
    plan = plan_catchup(NY_0230, utc("2026-03-07T07:30:00Z"), utc("2026-03-09T06:40:00Z"), "latest")
    assert iso(plan.run) == ["2026-03-09T06:30:00Z"]
    assert iso(plan.missed) == ["2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z"]


def test_the_gap_day_slot_is_on_time_at_0300_edt() -> None:
    plan = plan_catchup(
        NY_0230, utc("2026-03-08T07:00:00Z"), utc("2026-03-08T07:00:00.004Z"), "none"
    )
    assert iso(plan.run) == ["2026-03-08T07:00:00Z"]
    assert plan.missed == []
    # The next day is only 23.5 hours later.
    assert plan.next_run_at == utc("2026-03-09T06:30:00Z")


def test_an_hourly_trigger_has_no_slot_in_the_spring_gap() -> None:
    ny_hourly = cron_schedule("0 * * * *", "America/New_York")
    plan = plan_catchup(
        ny_hourly, utc("2026-03-08T06:00:00Z"), utc("2026-03-08T08:10:00Z"), "all", 3 * 3600
    )
    # 01:00 EST, then 03:00 and 04:00 EDT: no 02:00.
    assert iso(plan.run) == ["2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z"]


def test_a_fixed_time_daily_in_the_repeated_hour_runs_once() -> None:
    ny_0130 = cron_schedule("30 1 * * *", "America/New_York")
    plan = plan_catchup(
        ny_0130, utc("2026-10-31T05:30:00Z"), utc("2026-11-02T06:40:00Z"), "all", 3 * 86400
    )
    assert iso(plan.run) == [
        "2026-10-31T05:30:00Z",  # 01:30 EDT
        "2026-11-01T05:30:00Z",  # the first 01:30 (EDT); the second (EST) does not fire
        "2026-11-02T06:30:00Z",  # 01:30 EST
    ]


# -- one-time triggers ------------------------------------------------------------------

ONCE = once_schedule(utc("2026-03-08T07:00:00Z"))


@pytest.mark.parametrize(
    ("policy", "now", "ran"),
    [
        ("latest", "2026-03-08T07:30:00Z", True),
        ("all", "2026-03-08T07:30:00Z", True),
        ("latest", "2026-03-08T09:00:00Z", False),
        ("all", "2026-03-08T09:00:00Z", False),
        ("none", "2026-03-08T07:30:00Z", False),
        ("none", "2026-03-08T07:01:00Z", True),  # within the grace: on time
        ("none", "2026-03-08T07:00:00Z", True),
    ],
)
def test_a_one_time_trigger_due_during_an_outage(policy: str, now: str, ran: bool) -> None:
    plan = plan_catchup(ONCE, ONCE.run_at, utc(now), policy)
    assert plan.run == ([ONCE.run_at] if ran else [])
    assert plan.missed == ([] if ran else [ONCE.run_at])
    assert plan.next_run_at is None


def test_a_run_at_accepted_a_minute_late_runs_even_with_none() -> None:
    # Created at 07:01:00 for 07:00:00 (the most the API accepts), reached 30 s later.
    plan = plan_catchup(ONCE, ONCE.run_at, utc("2026-03-08T07:01:30Z"), "none")
    assert plan.run == [ONCE.run_at]


# -- caps -------------------------------------------------------------------------------

PER_SECOND = cron_schedule("* * * * * *")


def test_all_runs_at_most_1000_per_pass_and_the_next_pass_carries_on() -> None:
    due = utc("2026-03-08T10:00:00Z")
    now = utc("2026-03-08T10:30:00Z")
    first = plan_catchup(PER_SECOND, due, now, "all")
    assert len(first.run) == MAX_RUN_PER_PASS
    assert first.run[0] == due
    assert first.missed == []
    assert first.next_run_at == utc("2026-03-08T10:16:40Z")

    assert first.next_run_at is not None
    second = plan_catchup(PER_SECOND, first.next_run_at, now, "all")
    assert second.run[0] == first.next_run_at
    assert second.run[-1] == now
    assert second.next_run_at == utc("2026-03-08T10:30:01Z")
    # Every one of the 1801 slots ran exactly once.
    assert first.run + second.run == slots_between(PER_SECOND, due, now)


def test_slots_that_age_out_between_passes_are_missed_not_lost() -> None:
    due = utc("2026-03-08T10:00:00Z")
    first = plan_catchup(PER_SECOND, due, utc("2026-03-08T10:30:00Z"), "all", 1800)
    assert first.next_run_at is not None
    # The next pass comes 20 minutes later: part of what was left is now too old.
    later = utc("2026-03-08T10:50:00Z")
    second = plan_catchup(PER_SECOND, first.next_run_at, later, "all", 1800)
    assert second.missed[0] == first.next_run_at
    handled = len(first.run) + accounted(second)
    assert handled == len(slots_between(PER_SECOND, due, second.run[-1]))
    assert not second.missed_estimated


def test_at_most_100_missed_slots_are_listed_and_the_rest_counted() -> None:
    plan = plan_catchup(HOURLY, utc("2026-03-01T00:00:00Z"), utc("2026-03-11T00:00:10Z"), "latest")
    assert iso(plan.run) == ["2026-03-11T00:00:00Z"]
    assert len(plan.missed) == MAX_MISSED_RECORDED
    assert format_instant(plan.missed[-1]) == "2026-03-05T03:00:00Z"
    assert plan.missed_uncounted == 140
    assert not plan.missed_estimated
    assert plan.missed_total == 240


def test_a_per_second_trigger_down_for_a_year_is_planned_without_walking_the_year() -> None:
    schedule = cron_schedule("* * * * * *", "America/New_York")
    due = utc("2025-03-08T00:00:00Z")
    now = utc("2026-03-08T00:00:00.5Z")
    plan = plan_catchup(schedule, due, now, "latest")
    assert iso(plan.run) == ["2026-03-08T00:00:00Z"]
    assert plan.missed[0] == due
    assert len(plan.missed) == MAX_MISSED_RECORDED
    # A wildcard expression fires every real second, DST or not: 365 days of seconds.
    assert plan.missed_total == 365 * 86400
    assert plan.next_run_at == utc("2026-03-08T00:00:01Z")


def test_all_for_a_per_second_trigger_down_for_a_year_starts_at_the_window() -> None:
    due = utc("2025-03-08T00:00:00Z")
    now = utc("2026-03-08T00:00:00.5Z")
    plan = plan_catchup(PER_SECOND, due, now, "all")
    assert plan.run[0] == utc("2026-03-07T23:00:01Z")
    assert len(plan.run) == MAX_RUN_PER_PASS
    assert plan.next_run_at == utc("2026-03-07T23:16:41Z")
    assert plan.missed_total == 365 * 86400 - 3600 + 1


def test_a_bursty_schedule_is_estimated_close_to_the_truth() -> None:
    # Every minute of 09:00-09:59 on weekdays: the estimate uses the average spacing.
    schedule = cron_schedule("* 9 * * 1-5")
    due = utc("2026-01-05T09:00:00Z")  # a Monday
    now = utc("2026-03-02T12:00:00Z")  # a Monday, eight weeks on
    plan = plan_catchup(schedule, due, now, "latest")
    true_total = len(slots_between(schedule, due, now)) - 1
    assert plan.missed_estimated
    assert abs(plan.missed_total - true_total) <= true_total * 0.1


# -- general properties -----------------------------------------------------------------

EXPRESSIONS = [
    ("*/7 * * * *", "UTC"),
    ("0 */3 * * *", "Europe/Berlin"),
    ("30 2 * * *", "America/New_York"),
    ("15 1 * * *", "America/New_York"),
    ("0 0 * * *", "America/Sao_Paulo"),
    ("*/30 * * * *", "Australia/Lord_Howe"),
]


@given(
    which=st.sampled_from(EXPRESSIONS),
    policy=st.sampled_from(["latest", "all", "none"]),
    start=st.datetimes(
        min_value=datetime(2025, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
        max_value=datetime(2027, 1, 1),  # noqa: DTZ001
    ),
    outage=st.integers(min_value=0, max_value=4 * 86400),
    window=st.sampled_from([0, 600, 3600, 86400]),
)
def test_every_due_slot_is_run_or_missed_exactly_once(
    which: tuple[str, str], policy: str, start: datetime, outage: int, window: int
) -> None:
    schedule = cron_schedule(*which)
    due = next_run_after(schedule, start.replace(tzinfo=UTC))
    assert due is not None
    now = due + timedelta(seconds=outage)
    plan = plan_catchup(schedule, due, now, policy, window)

    expected = slots_between(schedule, due, now)
    limit = timedelta(seconds=120 if policy == "none" else max(window, 120))
    if policy == "all":
        run = [s for s in expected if now - s <= limit]
    else:
        run = [expected[-1]] if now - expected[-1] <= limit else []
    missed = [s for s in expected if s not in run]
    assert plan.run == run
    assert plan.missed == missed[:MAX_MISSED_RECORDED]
    assert plan.missed_total == len(missed)
    assert not plan.missed_estimated
    assert plan.next_run_at == next_run_after(schedule, expected[-1])


# -- edges ------------------------------------------------------------------------------


def test_nothing_is_due_before_next_run_at() -> None:
    due = utc("2026-03-08T09:00:00Z")
    plan = plan_catchup(DAILY, due, utc("2026-03-08T08:59:59Z"))
    assert plan == CatchupPlan(run=[], missed=[], missed_uncounted=0, next_run_at=due)


def test_a_slot_reached_on_time_just_runs() -> None:
    due = utc("2026-03-08T09:00:00Z")
    for policy in ("latest", "all", "none"):
        plan = plan_catchup(DAILY, due, due + timedelta(milliseconds=3), policy)
        assert plan.run == [due]
        assert plan.missed == []
        assert plan.next_run_at == utc("2026-03-09T09:00:00Z")


def test_the_grace_can_be_changed() -> None:
    due = utc("2026-03-08T09:00:00Z")
    plan = plan_catchup(DAILY, due, due + timedelta(seconds=5), "none", grace_seconds=1)
    assert plan.missed == [due]


def test_an_unknown_policy_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        plan_catchup(DAILY, OUTAGE_START, OUTAGE_START, "some")
    assert info.value.field == "catchup"


def test_a_negative_window_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        plan_catchup(DAILY, OUTAGE_START, OUTAGE_START, "latest", -1)
    assert info.value.field == "catchup_window_seconds"


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        plan_catchup(DAILY, OUTAGE_START, datetime(2026, 3, 8))  # noqa: DTZ001


# -- overlap ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "active", "action", "cancel"),
    [
        ("allow", 0, "run", False),
        ("allow", 5, "run", False),
        ("skip", 0, "run", False),
        ("skip", 1, "skip", False),
        ("buffer_one", 0, "run", False),
        ("buffer_one", 1, "buffer", False),
        ("buffer_one", 2, "skip", False),
        ("cancel_previous", 0, "run", False),
        ("cancel_previous", 3, "run", True),
    ],
)
def test_overlap_decisions(policy: str, active: int, action: str, cancel: bool) -> None:
    decision = plan_overlap(policy, active)
    assert decision.action == action
    assert decision.cancel_active is cancel
    assert (decision.reason is not None) == (action == "skip")


def test_an_unknown_overlap_policy_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        plan_overlap("queue", 0)
    assert info.value.field == "overlap"


def test_overlap_for_several_slots_in_one_pass_sees_the_earlier_ones() -> None:
    assert [d.action for d in plan_overlap_many("skip", 0, 3)] == ["run", "skip", "skip"]
    assert [d.action for d in plan_overlap_many("buffer_one", 0, 4)] == [
        "run",
        "buffer",
        "skip",
        "skip",
    ]
    assert plan_overlap_many("cancel_previous", 1, 2) == [
        OverlapDecision("run", cancel_active=True),
        OverlapDecision("run", cancel_active=True),
    ]
    assert [d.action for d in plan_overlap_many("allow", 2, 3)] == ["run"] * 3


# -- jitter -----------------------------------------------------------------------------


def test_jitter_is_the_same_for_the_same_trigger_and_slot() -> None:
    slot = utc("2026-03-08T07:00:00Z")
    assert jitter_offset("trg_a", slot, 300) == jitter_offset("trg_a", slot, 300)


def test_jitter_stays_within_bounds_and_spreads() -> None:
    start = utc("2026-03-08T00:00:00Z")
    offsets = [jitter_offset("trg_a", start + timedelta(minutes=i), 60) for i in range(500)]
    assert all(timedelta(0) <= o <= timedelta(seconds=60) for o in offsets)
    assert len(set(offsets)) > 400
    assert min(offsets) < timedelta(seconds=10)
    assert max(offsets) > timedelta(seconds=50)


def test_jitter_differs_between_triggers() -> None:
    slot = utc("2026-03-08T07:00:00Z")
    offsets = {jitter_offset(f"trg_{i}", slot, 3600) for i in range(50)}
    assert len(offsets) > 45


def test_no_jitter_means_no_offset() -> None:
    assert jitter_offset("trg_a", utc("2026-03-08T07:00:00Z"), 0) == timedelta(0)


def test_negative_jitter_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        jitter_offset("trg_a", utc("2026-03-08T07:00:00Z"), -1)
