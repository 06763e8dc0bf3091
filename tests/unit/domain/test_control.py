"""Pause, skip, bounds and max_runs over a trigger's slots (tickwork.domain.control)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest

from tickwork.domain.control import (
    Bounds,
    Control,
    SlotHistory,
    _plan_in_full,
    _single_slot,
    backfill_key,
    backfill_slots,
    bounded_first,
    coming_slots,
    first_slot_at_or_after,
    plan_dispatch,
    preview_runs,
    remaining_after_change,
)
from tickwork.domain.schedule import cron_schedule, format_instant, once_schedule
from tickwork.domain.slots import Timing
from tickwork.errors import ValidationError

HOURLY = cron_schedule("0 * * * *", "UTC")
# New York falls back on 2026-11-01: 01:00-01:59 happens twice (05:00Z EDT, 06:00Z EST).
NY_HOURLY = cron_schedule("0 * * * *", "America/New_York")  # wildcard hour: both copies
NY_0130 = cron_schedule("30 1 * * *", "America/New_York")  # fixed time: the first copy
NY_0230 = cron_schedule("30 2 * * *", "America/New_York")  # in the spring gap on 03-08


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def iso(values: list[datetime]) -> list[str]:
    return [format_instant(v) for v in values]


# -- pause -------------------------------------------------------------------------------


def test_a_pause_without_end_consumes_nothing_and_schedules_nothing() -> None:
    plan = plan_dispatch(
        HOURLY, at("2026-03-02T09:00:00Z"), at("2026-03-02T12:00:00Z"), Control(paused=True)
    )
    assert plan.run == []
    assert plan.recorded == []
    assert plan.consumed == 0
    assert plan.next_run_at is None
    assert not plan.resumed


def test_a_pause_with_an_end_to_come_waits_for_it() -> None:
    until = at("2026-03-02T15:00:00Z")
    plan = plan_dispatch(
        HOURLY,
        at("2026-03-02T09:00:00Z"),
        at("2026-03-02T12:00:00Z"),
        Control(True, until, rearm=True),
    )
    assert plan.run == []
    assert plan.next_run_at == until
    assert plan.rearm
    assert not plan.resumed


def test_the_end_of_a_pause_resumes_from_its_first_slot_never_the_paused_period() -> None:
    until = at("2026-03-02T12:30:00Z")
    control = Control(True, until, rearm=True)
    # Reached at the end itself: the next slot is 13:00, nothing of 09:00-12:00 runs.
    plan = plan_dispatch(HOURLY, until, until, control)
    assert plan.resumed
    assert plan.run == []
    assert plan.recorded == []
    assert plan.next_run_at == at("2026-03-02T13:00:00Z")
    assert not plan.rearm
    # Reached late (the scheduler was down): catch-up applies from the end of the pause.
    late = plan_dispatch(HOURLY, until, at("2026-03-02T15:10:00Z"), control, "latest")
    assert late.resumed
    assert iso(late.run) == ["2026-03-02T15:00:00Z"]
    assert iso(late.missed) == ["2026-03-02T13:00:00Z", "2026-03-02T14:00:00Z"]
    assert late.next_run_at == at("2026-03-02T16:00:00Z")


def test_a_pause_ending_on_a_slot_runs_that_slot() -> None:
    until = at("2026-03-02T13:00:00Z")
    plan = plan_dispatch(HOURLY, until, until, Control(True, until, rearm=True))
    assert iso(plan.run) == ["2026-03-02T13:00:00Z"]


def test_a_wake_up_carries_on_from_the_first_slot_at_or_after_it() -> None:
    wake = at("2026-03-02T12:10:00Z")
    plan = plan_dispatch(HOURLY, wake, wake, Control(rearm=True))
    assert plan.run == []
    assert plan.next_run_at == at("2026-03-02T13:00:00Z")


# -- skip ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "runs", "missed", "skipped"),
    [
        # 09:00..12:00 due at 12:00; the skip takes the two oldest consumed slots.
        ("latest", ["12:00"], ["11:00"], ["09:00", "10:00"]),
        ("all", ["11:00", "12:00"], [], ["09:00", "10:00"]),
        ("none", ["12:00"], ["11:00"], ["09:00", "10:00"]),
    ],
)
def test_skips_take_the_oldest_consumed_slots_under_every_policy(
    policy: str, runs: list[str], missed: list[str], skipped: list[str]
) -> None:
    plan = plan_dispatch(
        HOURLY,
        at("2026-03-02T09:00:00Z"),
        at("2026-03-02T12:00:00Z"),
        Control(skip_remaining=2),
        policy,
        3 * 3600,
    )

    def hours(instants: Iterable[datetime]) -> list[str]:
        return [x.strftime("%H:%M") for x in instants]

    assert (hours(plan.run), hours(plan.missed), hours(plan.skipped)) == (runs, missed, skipped)
    assert plan.skip_remaining == 0
    assert plan.consumed == 4


def test_a_skip_larger_than_the_slots_due_carries_over() -> None:
    plan = plan_dispatch(
        HOURLY, at("2026-03-02T09:00:00Z"), at("2026-03-02T09:00:00Z"), Control(skip_remaining=3)
    )
    assert plan.run == []
    assert iso(plan.skipped) == ["2026-03-02T09:00:00Z"]
    assert plan.skip_remaining == 2
    assert plan.next_run_at == at("2026-03-02T10:00:00Z")


# -- bounds and max_runs ---------------------------------------------------------------------


def test_max_runs_counts_every_consumed_slot_and_then_stops() -> None:
    control = Control(skip_remaining=1, bounds=Bounds(remaining_runs=3))
    plan = plan_dispatch(
        HOURLY, at("2026-03-02T09:00:00Z"), at("2026-03-02T14:00:00Z"), control, "all", 86400
    )
    # 09:00 skipped (consumed), 10:00 and 11:00 run: three slots, then nothing.
    assert iso(plan.skipped) == ["2026-03-02T09:00:00Z"]
    assert iso(plan.run) == ["2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z"]
    assert plan.remaining_runs == 0
    assert plan.next_run_at is None


def test_an_exhausted_trigger_consumes_nothing() -> None:
    plan = plan_dispatch(
        HOURLY,
        at("2026-03-02T09:00:00Z"),
        at("2026-03-02T09:00:00Z"),
        Control(bounds=Bounds(remaining_runs=0)),
    )
    assert plan.run == []
    assert plan.next_run_at is None


def test_ends_at_between_the_two_copies_of_a_repeated_hour() -> None:
    # 01:00 EDT (05:00Z) is a slot, 01:00 EST (06:00Z) is after ends_at.
    control = Control(bounds=Bounds(ends_at=at("2026-11-01T05:30:00Z")))
    plan = plan_dispatch(
        NY_HOURLY, at("2026-11-01T04:00:00Z"), at("2026-11-01T07:00:00Z"), control, "all", 86400
    )
    assert iso(plan.run) == ["2026-11-01T04:00:00Z", "2026-11-01T05:00:00Z"]
    assert plan.next_run_at is None


def test_max_runs_across_the_repeated_hour_counts_both_copies() -> None:
    control = Control(bounds=Bounds(remaining_runs=3))
    slots = [slot for slot, _ in coming_slots(NY_HOURLY, at("2026-11-01T04:00:00Z"), control)]
    # 00:00 EDT, 01:00 EDT, 01:00 EST: a wildcard hour fires in both copies.
    assert iso(slots) == ["2026-11-01T04:00:00Z", "2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z"]


def test_starts_at_moves_the_first_run_to_the_first_slot_at_or_after_it() -> None:
    bounds = Bounds(starts_at=at("2026-03-08T06:00:00Z"))
    # 02:30 does not exist on 2026-03-08 in New York: a fixed time fires at 03:00 EDT.
    first = bounded_first(NY_0230, at("2026-03-02T07:30:00Z"), bounds)
    assert first == at("2026-03-08T07:00:00Z")
    assert bounded_first(NY_0230, first, Bounds(ends_at=at("2026-03-08T06:59:59Z"))) is None


def test_a_one_time_trigger_outside_its_bounds_has_no_slot() -> None:
    once = once_schedule(at("2026-03-02T09:00:00Z"))
    assert (
        first_slot_at_or_after(
            once, at("2026-03-01T00:00:00Z"), Bounds(starts_at=at("2026-03-03T00:00:00Z"))
        )
        is None
    )
    assert first_slot_at_or_after(once, at("2026-03-01T00:00:00Z"), Bounds()) == at(
        "2026-03-02T09:00:00Z"
    )


@pytest.mark.parametrize(
    ("old_max", "old_remaining", "new_max", "expected"),
    [(None, None, 5, 5), (5, 2, 10, 7), (5, 2, 2, 0), (5, 2, None, None), (5, 5, 5, 5)],
)
def test_changing_max_runs_keeps_what_was_consumed(
    old_max: int | None, old_remaining: int | None, new_max: int | None, expected: int | None
) -> None:
    assert remaining_after_change(old_max, old_remaining, new_max) == expected


# -- preview ----------------------------------------------------------------------------------


def test_preview_shows_what_will_run_and_what_is_skipped() -> None:
    now = at("2026-03-02T09:30:00Z")
    control = Control(
        skip_remaining=2, bounds=Bounds(ends_at=at("2026-03-02T15:00:00Z"), remaining_runs=5)
    )
    runs, skipped, _ = preview_runs(HOURLY, now, 10, control)
    assert iso(skipped) == ["2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z"]
    assert iso(runs) == ["2026-03-02T12:00:00Z", "2026-03-02T13:00:00Z", "2026-03-02T14:00:00Z"]


def test_preview_of_a_paused_trigger_starts_at_the_end_of_the_pause() -> None:
    now = at("2026-03-02T09:30:00Z")
    runs, _, _ = preview_runs(HOURLY, now, 2, Control(True, at("2026-03-02T12:00:00Z")))
    assert iso(runs) == ["2026-03-02T12:00:00Z", "2026-03-02T13:00:00Z"]
    assert preview_runs(HOURLY, now, 2, Control(paused=True)) == ([], [], [])


# -- backfill ---------------------------------------------------------------------------------


def test_backfill_slots_across_fall_back_keep_each_slot_its_own_instant() -> None:
    slots = backfill_slots(
        NY_0130, at("2026-10-31T00:00:00Z"), at("2026-11-03T00:00:00Z"), Bounds()
    )
    # 01:30 EDT on Oct 31 and Nov 1 (the first copy of the repeated hour), EST after.
    assert iso(slots) == ["2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]
    wildcard = cron_schedule("*/30 1 * * *", "America/New_York")
    both = backfill_slots(
        wildcard, at("2026-11-01T04:00:00Z"), at("2026-11-01T07:00:00Z"), Bounds()
    )
    assert iso(both) == [
        "2026-11-01T05:00:00Z",
        "2026-11-01T05:30:00Z",
        "2026-11-01T06:00:00Z",
        "2026-11-01T06:30:00Z",
    ]


def test_backfill_slots_are_half_open_and_inside_the_bounds() -> None:
    slots = backfill_slots(
        HOURLY,
        at("2026-03-02T09:00:00Z"),
        at("2026-03-02T13:00:00Z"),
        Bounds(starts_at=at("2026-03-02T10:00:00Z"), remaining_runs=0),
    )
    assert iso(slots) == ["2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z", "2026-03-02T12:00:00Z"]


def test_a_backfill_of_too_many_slots_is_refused_naming_the_limit() -> None:
    every_second = cron_schedule("* * * * * *", "UTC")
    start = at("2026-03-02T00:00:00Z")
    assert (
        len(backfill_slots(every_second, start, start + timedelta(seconds=10_000), Bounds()))
        == 10_000
    )
    with pytest.raises(ValidationError, match="more than 10000 slots"):
        backfill_slots(every_second, start, start + timedelta(seconds=10_001), Bounds())
    with pytest.raises(ValidationError, match="after from"):
        backfill_slots(HOURLY, start, start, Bounds())


SLOT = at("2026-03-02T09:00:00Z")


@pytest.mark.parametrize(
    ("mode", "history", "expected"),
    [
        ("missing", SlotHistory(), "sched:trg_1:2026-03-02T09:00:00Z"),
        ("missing", SlotHistory(canonical="missed"), "backfill:trg_1:2026-03-02T09:00:00Z"),
        ("missing", SlotHistory(canonical="missed", backfilled=True), None),
        ("missing", SlotHistory(canonical="completed", latest="completed"), None),
        ("missing", SlotHistory(canonical="failed", latest="failed"), None),
        ("missing", SlotHistory(canonical="skipped"), None),
        (
            "failed",
            SlotHistory(canonical="failed", latest="failed"),
            "backfill:bf_1:2026-03-02T09:00:00Z",
        ),
        ("failed", SlotHistory(canonical="failed", latest="completed"), None),
        ("failed", SlotHistory(), None),
        (
            "all",
            SlotHistory(canonical="completed", latest="completed"),
            "backfill:bf_1:2026-03-02T09:00:00Z",
        ),
        ("all", SlotHistory(), "backfill:bf_1:2026-03-02T09:00:00Z"),
    ],
)
def test_each_backfill_mode_keys_the_slots_it_runs(
    mode: str, history: SlotHistory, expected: str | None
) -> None:
    assert backfill_key(mode, "trg_1", "bf_1", SLOT, history) == expected


# -- the single-slot plan ----------------------------------------------------------------

EVERY_SECOND = cron_schedule("* * * * * *", "UTC")
# Dues on ordinary hours, on both copies of New York's repeated 01:00 (2026-11-01) and
# on the slot after its spring gap (2026-03-08, 02:30 does not exist).
SINGLE_SLOT_CASES = [
    (HOURLY, "2026-03-02T09:00:00Z"),
    (NY_HOURLY, "2026-11-01T05:00:00Z"),
    (NY_HOURLY, "2026-11-01T06:00:00Z"),
    (NY_0130, "2026-11-01T05:30:00Z"),
    (NY_0230, "2026-03-08T07:30:00Z"),
    (EVERY_SECOND, "2026-03-02T09:00:00Z"),
    (once_schedule(at("2026-03-02T09:00:00.250000Z")), "2026-03-02T09:00:00.250000Z"),
]
# From the due instant itself to past the next firing and past every window.
LATENESS = [0, 0.5, 1, 59, 119, 120, 121, 3599, 3600, 3601, 7200, 86400]


@pytest.mark.parametrize(("schedule", "due"), SINGLE_SLOT_CASES)
@pytest.mark.parametrize("policy", ["latest", "all", "none"])
@pytest.mark.parametrize("window", [0, 60, 3600])
def test_the_single_slot_plan_is_the_full_plan_of_the_pass(
    schedule: Timing, due: str, policy: str, window: int
) -> None:
    # The common pass (one slot due, no control state in play) is planned without the
    # general walk: wherever that shortcut answers, its plan is the general one.
    for late in LATENESS:
        now = at(due) + timedelta(seconds=late)
        full = _plan_in_full(schedule, at(due), now, Control(), policy, window, 120)
        assert plan_dispatch(schedule, at(due), now, Control(), policy, window) == full


def test_a_pass_with_one_slot_due_takes_the_single_slot_plan() -> None:
    due, now = at("2026-03-02T09:00:00Z"), at("2026-03-02T09:00:00.200000Z")
    single = _single_slot(HOURLY, due, now, Control(), "latest", 3600, 120)
    assert single is not None
    assert iso(single.run) == ["2026-03-02T09:00:00Z"]
    assert iso([single.next_run_at] if single.next_run_at else []) == ["2026-03-02T10:00:00Z"]


@pytest.mark.parametrize(
    "control",
    [
        Control(paused=True),
        Control(rearm=True),
        Control(skip_remaining=1),
        Control(bounds=Bounds(remaining_runs=5)),
        Control(bounds=Bounds(ends_at=at("2026-03-02T12:00:00Z"))),
    ],
)
def test_a_pass_with_control_state_in_play_is_planned_in_full(control: Control) -> None:
    due, now = at("2026-03-02T09:00:00Z"), at("2026-03-02T09:00:00.200000Z")
    assert _single_slot(HOURLY, due, now, control, "latest", 3600, 120) is None


def test_a_pass_with_missed_slots_is_planned_in_full() -> None:
    due = at("2026-03-02T09:00:00Z")
    for now in (at("2026-03-02T10:00:00Z"), at("2026-03-02T09:00:00Z") + timedelta(hours=2)):
        assert _single_slot(HOURLY, due, now, Control(), "latest", 3600, 120) is None
