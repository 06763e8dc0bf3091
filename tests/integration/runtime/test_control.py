"""Pause, skip, bounds and max_runs as the scheduler applies them (fake clock, SPEC §10).

The clock starts at 2026-03-02T09:00:00Z (a Monday); New York springs forward on
2026-03-08 and falls back on 2026-11-01.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.waiting import within
from tickwork.domain.schedule import format_instant
from tickwork.services import control, dispatch, triggers
from tickwork.storage.records import COMPLETED, MISSED, PENDING, RUNNING, SKIPPED, Invocation

from .conftest import World

Make = Callable[..., Coroutine[Any, Any, World]]


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout=60))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def slots(rows: list[Invocation], status: str | None = None) -> list[str]:
    return [format_instant(r.scheduled_for) for r in rows if status is None or r.status == status]


async def minute_by_minute(w: World, minutes: int) -> None:
    for _ in range(minutes):
        w.advance(60)
        await w.dispatch()


# -- pause -------------------------------------------------------------------------------


def test_a_paused_trigger_dispatches_nothing_across_its_slots_and_resume_skips_them(
    world: Make,
) -> None:
    async def scenario() -> None:
        w = await world()
        t = w.trigger(cron_expression="* * * * *", catchup="all", catchup_window_seconds=3600)
        await minute_by_minute(w, 2)  # 09:01, 09:02 run
        paused = control.pause_trigger(
            w.ctx, "acme", "proj", "bot", t.id, reason="upstream down", paused_by="api-key:k1"
        )
        assert paused.paused
        assert (paused.paused_reason, paused.paused_by) == ("upstream down", "api-key:k1")
        assert paused.paused_at == w.clock.now()
        assert paused.next_run_at is None
        await minute_by_minute(w, 5)  # 09:03..09:07 pass while paused
        assert slots(w.invocations(t.id)) == ["2026-03-02T09:01:00Z", "2026-03-02T09:02:00Z"]
        w.advance(30)  # 09:07:30
        resumed = control.resume_trigger(w.ctx, "acme", "proj", "bot", t.id)
        assert not resumed.paused
        assert resumed.paused_reason is None
        assert resumed.next_run_at == at("2026-03-02T09:08:00Z")
        await minute_by_minute(w, 1)
        # Neither run nor recorded: the paused period leaves no trace, even under "all".
        assert slots(w.invocations(t.id)) == [
            "2026-03-02T09:01:00Z",
            "2026-03-02T09:02:00Z",
            "2026-03-02T09:08:00Z",
        ]

    run(scenario())


def test_a_pause_with_an_end_resumes_by_itself_and_the_scheduler_wakes_for_it(
    world: Make,
) -> None:
    async def scenario() -> None:
        w = await world()
        t = w.trigger(cron_expression="*/10 * * * *")
        until = at("2026-03-02T09:25:00Z")
        paused = control.pause_trigger(w.ctx, "acme", "proj", "bot", t.id, until=until)
        assert paused.paused_until == until
        # The next deadline is the end of the pause, not the slots inside it.
        assert dispatch.earliest_due(w.ctx) == until
        assert w.node.scheduler is not None
        assert await w.node.scheduler._next_deadline() <= until
        await minute_by_minute(w, 24)  # up to 09:24: 09:10 and 09:20 pass
        assert w.invocations(t.id) == []
        assert triggers.get_trigger(w.ctx, "acme", "proj", "bot", t.id).paused
        w.advance(60)  # 09:25: the pause ends
        await w.dispatch()
        after = triggers.get_trigger(w.ctx, "acme", "proj", "bot", t.id)
        assert not after.paused
        assert after.paused_until is None
        assert after.next_run_at == at("2026-03-02T09:30:00Z")
        await minute_by_minute(w, 5)
        assert slots(w.invocations(t.id)) == ["2026-03-02T09:30:00Z"]

    run(scenario())


def test_a_pause_ending_while_the_scheduler_was_down_catches_up_only_after_its_end(
    world: Make,
) -> None:
    async def scenario() -> None:
        w = await world()
        t = w.trigger(cron_expression="*/10 * * * *", catchup="all")
        control.pause_trigger(w.ctx, "acme", "proj", "bot", t.id, until=at("2026-03-02T09:25:00Z"))
        w.advance(50 * 60)  # down until 09:50
        await w.dispatch()
        assert slots(w.invocations(t.id)) == [
            "2026-03-02T09:30:00Z",
            "2026-03-02T09:40:00Z",
            "2026-03-02T09:50:00Z",
        ]

    run(scenario())


def test_pause_can_cancel_pending_invocations_and_leaves_running_ones(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        w.recorder.block = asyncio.Event()
        t = w.trigger(cron_expression="* * * * *", timeout_seconds=3600)
        w.advance(60)
        await w.dispatch()
        assert w.node.workers is not None
        await w.node.workers.run_once()
        await within(w.recorder.started.wait(), "the target being called")
        w.advance(60)
        await w.dispatch()
        assert [r.status for r in w.invocations(t.id)] == [RUNNING, PENDING]
        control.pause_trigger(w.ctx, "acme", "proj", "bot", t.id, cancel_pending=True)
        first, second = w.invocations(t.id)
        assert first.status == RUNNING
        assert (second.status, second.status_reason) == (
            "cancelled",
            "cancelled: the trigger was paused",
        )
        w.recorder.block.set()
        await w.work()
        assert w.invocations(t.id)[0].status == COMPLETED

    run(scenario())


def test_a_definition_push_never_changes_paused(world: Make) -> None:
    async def scenario() -> None:
        from tickwork.services import definitions

        w = await world()
        agents: list[dict[str, Any]] = [
            {
                "id": "bot",
                "target": {"type": "python", "handler": "record"},
                "triggers": [{"name": "t", "cron_expression": "*/5 * * * *"}],
            }
        ]
        definitions.put_definition(w.ctx, "acme", "proj", "main", agents)
        (t,) = triggers.list_triggers(w.ctx, "acme", "proj", "bot", None, None, 10)
        control.pause_trigger(w.ctx, "acme", "proj", "bot", t.id, reason="maintenance")
        agents[0]["triggers"][0]["cron_expression"] = "*/7 * * * *"
        definitions.put_definition(w.ctx, "acme", "proj", "main", agents)
        after = triggers.get_trigger(w.ctx, "acme", "proj", "bot", t.id)
        assert after.cron_expression == "*/7 * * * *"
        assert after.paused
        assert after.paused_reason == "maintenance"
        assert after.next_run_at is None
        await minute_by_minute(w, 30)
        assert w.invocations(t.id) == []

    run(scenario())


def test_a_paused_project_dispatches_nothing_and_its_triggers_keep_their_own_pause(
    world: Make,
) -> None:
    async def scenario() -> None:
        w = await world()
        a = w.trigger(name="a", cron_expression="*/10 * * * *")
        b = w.trigger(name="b", cron_expression="*/10 * * * *")
        control.pause_trigger(w.ctx, "acme", "proj", "bot", b.id, reason="own")
        project = control.pause_project(w.ctx, "acme", "proj", reason="incident")
        assert (project.paused, project.paused_reason) == (True, "incident")
        await minute_by_minute(w, 35)  # 09:10, 09:20, 09:30 pass
        assert w.invocations() == []
        # The project's pause touches neither trigger's own pause state.
        assert not triggers.get_trigger(w.ctx, "acme", "proj", "bot", a.id).paused
        assert triggers.get_trigger(w.ctx, "acme", "proj", "bot", b.id).paused_reason == "own"
        control.resume_project(w.ctx, "acme", "proj")  # 09:35
        await minute_by_minute(w, 10)
        assert slots(w.invocations(a.id)) == ["2026-03-02T09:40:00Z"]
        assert w.invocations(b.id) == []  # still paused on its own

    run(scenario())


def test_a_project_paused_until_resumes_by_itself(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        t = w.trigger(cron_expression="*/10 * * * *")
        until = at("2026-03-02T09:15:00Z")
        control.pause_project(w.ctx, "acme", "proj", until=until)
        await minute_by_minute(w, 12)
        # Parked while paused; the scheduler's next deadline is the end of the pause.
        assert triggers.get_trigger(w.ctx, "acme", "proj", "bot", t.id).next_run_at is None
        assert dispatch.earliest_due(w.ctx) == until
        await minute_by_minute(w, 9)  # 09:21
        assert slots(w.invocations(t.id)) == ["2026-03-02T09:20:00Z"]

    run(scenario())


def test_a_trigger_pause_ending_inside_a_project_pause_runs_nothing_of_either(
    world: Make,
) -> None:
    async def scenario() -> None:
        w = await world()
        t = w.trigger(cron_expression="*/10 * * * *", catchup="all")
        control.pause_trigger(w.ctx, "acme", "proj", "bot", t.id, until=at("2026-03-02T09:15:00Z"))
        control.pause_project(w.ctx, "acme", "proj")
        await minute_by_minute(w, 33)
        control.resume_project(w.ctx, "acme", "proj")  # 09:33
        await minute_by_minute(w, 10)
        assert slots(w.invocations(t.id)) == ["2026-03-02T09:40:00Z"]
        assert not triggers.get_trigger(w.ctx, "acme", "proj", "bot", t.id).paused

    run(scenario())


# -- skip ----------------------------------------------------------------------------------


@pytest.mark.parametrize("catchup", ["latest", "all", "none"])
def test_skipped_slots_are_recorded_under_every_catchup_policy(world: Make, catchup: str) -> None:
    async def scenario() -> None:
        w = await world()
        t = w.trigger(cron_expression="*/10 * * * *", catchup=catchup, catchup_window_seconds=3600)
        control.skip_trigger(w.ctx, "acme", "proj", "bot", t.id, 2)
        w.advance(30 * 60)  # 09:10, 09:20, 09:30 due at once
        await w.dispatch()
        rows = w.invocations(t.id)
        assert slots(rows, SKIPPED) == ["2026-03-02T09:10:00Z", "2026-03-02T09:20:00Z"]
        assert all(r.status_reason == "skipped by request" for r in rows if r.status == SKIPPED)
        assert slots(rows, PENDING) == ["2026-03-02T09:30:00Z"]
        assert triggers.get_trigger(w.ctx, "acme", "proj", "bot", t.id).skip_remaining == 0
        await minute_by_minute(w, 10)
        assert slots(w.invocations(t.id), PENDING)[-1] == "2026-03-02T09:40:00Z"

    run(scenario())


@pytest.mark.parametrize("overlap", ["allow", "skip", "buffer_one", "cancel_previous"])
def test_a_skipped_slot_never_touches_what_runs_under_every_overlap_policy(
    world: Make, overlap: str
) -> None:
    async def scenario() -> None:
        w = await world()
        w.recorder.block = asyncio.Event()
        t = w.trigger(cron_expression="* * * * *", overlap=overlap, timeout_seconds=3600)
        await minute_by_minute(w, 1)
        assert w.node.workers is not None
        await w.node.workers.run_once()
        await within(w.recorder.started.wait(), "the target being called")
        control.skip_trigger(w.ctx, "acme", "proj", "bot", t.id, 1)
        await minute_by_minute(w, 1)  # 09:02 is skipped by request
        first, second = w.invocations(t.id)
        # The skip neither cancels the running one (cancel_previous) nor counts as one
        # more in flight (buffer_one, skip).
        assert first.status == RUNNING
        assert (second.status, second.status_reason) == (SKIPPED, "skipped by request")
        await minute_by_minute(w, 1)  # 09:03: the overlap policy applies again
        third = w.invocations(t.id)[2]
        expected = {
            "allow": PENDING,
            "skip": SKIPPED,
            "buffer_one": PENDING,
            "cancel_previous": PENDING,
        }[overlap]
        assert third.status == expected
        if overlap == "cancel_previous":
            assert w.invocations(t.id)[0].status == "cancelled"
        w.recorder.block.set()
        await w.work()

    run(scenario())


def test_skips_of_a_paused_trigger_apply_after_the_pause(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        t = w.trigger(cron_expression="*/10 * * * *")
        control.pause_trigger(w.ctx, "acme", "proj", "bot", t.id, until=at("2026-03-02T09:25:00Z"))
        control.skip_trigger(w.ctx, "acme", "proj", "bot", t.id, 1)
        await minute_by_minute(w, 45)
        rows = w.invocations(t.id)
        assert slots(rows, SKIPPED) == ["2026-03-02T09:30:00Z"]
        assert slots(rows, PENDING) == ["2026-03-02T09:40:00Z"]

    run(scenario())


# -- bounds and max_runs ---------------------------------------------------------------------


def test_starts_at_and_ends_at_across_the_spring_gap(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        # 02:30 New York does not exist on 2026-03-08: a fixed time fires at 03:00 EDT.
        t = w.trigger(
            cron_expression="30 2 * * *",
            timezone="America/New_York",
            starts_at="2026-03-07T00:00:00Z",
            ends_at="2026-03-09T06:00:00Z",
        )
        assert t.next_run_at == at("2026-03-07T07:30:00Z")
        for _ in range(8):
            w.advance(86400)
            await w.dispatch()
        assert slots(w.invocations(t.id)) == ["2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z"]
        # 2026-03-09 02:30 EDT (06:30Z) is after ends_at: nothing is scheduled any more.
        assert triggers.get_trigger(w.ctx, "acme", "proj", "bot", t.id).next_run_at is None

    run(scenario())


def test_max_runs_counts_both_copies_of_the_repeated_hour_and_skips(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        w.clock.set(at("2026-11-01T03:30:00Z"))  # 23:30 EDT on Oct 31
        t = w.trigger(cron_expression="0 * * * *", timezone="America/New_York", max_runs=4)
        assert t.remaining_runs == 4
        control.skip_trigger(w.ctx, "acme", "proj", "bot", t.id, 1)
        for _ in range(6):
            w.advance(3600)
            await w.dispatch()
        rows = w.invocations(t.id)
        # 00:00 EDT (skipped, consumed), 01:00 EDT, 01:00 EST, 02:00 EST: four slots.
        assert slots(rows) == [
            "2026-11-01T04:00:00Z",
            "2026-11-01T05:00:00Z",
            "2026-11-01T06:00:00Z",
            "2026-11-01T07:00:00Z",
        ]
        assert Counter(r.status for r in rows) == Counter({SKIPPED: 1, PENDING: 3})
        after = triggers.get_trigger(w.ctx, "acme", "proj", "bot", t.id)
        assert (after.remaining_runs, after.next_run_at) == (0, None)
        # Run now does not count and still works.
        assert triggers.run_now(w.ctx, "acme", "proj", "bot", t.id).origin == "manual"
        assert triggers.get_trigger(w.ctx, "acme", "proj", "bot", t.id).remaining_runs == 0
        # Raising max_runs keeps the count: one more slot, from now on.
        raised = triggers.update_trigger(w.ctx, "acme", "proj", "bot", t.id, {"max_runs": 5})
        assert raised.remaining_runs == 1
        assert raised.next_run_at == at("2026-11-01T10:00:00Z")

    run(scenario())


def test_missed_slots_count_towards_max_runs(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        t = w.trigger(cron_expression="*/10 * * * *", catchup="latest", max_runs=3)
        w.advance(2 * 3600)  # twelve slots due at once
        await w.dispatch()
        rows = w.invocations(t.id)
        assert [r.status for r in rows] == [MISSED, MISSED, MISSED]
        assert slots(rows)[0] == "2026-03-02T09:10:00Z"
        assert triggers.get_trigger(w.ctx, "acme", "proj", "bot", t.id).next_run_at is None

    run(scenario())


def test_upcoming_runs_and_preview_honour_pause_skip_and_bounds(world: Make) -> None:
    async def scenario() -> None:
        from tickwork.services import invocations

        w = await world()
        t = w.trigger(cron_expression="*/10 * * * *", max_runs=4)
        control.skip_trigger(w.ctx, "acme", "proj", "bot", t.id, 1)
        runs, skipped, _, _ = triggers.preview_trigger(w.ctx, "acme", "proj", "bot", t.id, 10)
        assert [format_instant(r) for r in skipped] == ["2026-03-02T09:10:00Z"]
        assert [format_instant(r) for r in runs] == [
            "2026-03-02T09:20:00Z",
            "2026-03-02T09:30:00Z",
            "2026-03-02T09:40:00Z",
        ]
        _, upcoming = invocations.upcoming_runs(w.ctx, "acme", "proj", 10)
        assert [format_instant(r.at) for r in upcoming] == [format_instant(r) for r in runs]
        control.pause_trigger(w.ctx, "acme", "proj", "bot", t.id, until=at("2026-03-02T09:35:00Z"))
        _, upcoming = invocations.upcoming_runs(w.ctx, "acme", "proj", 10)
        # Skips apply after the pause: 09:40 is skipped, 09:50 .. 10:10 run.
        assert [format_instant(r.at) for r in upcoming] == [
            "2026-03-02T09:50:00Z",
            "2026-03-02T10:00:00Z",
            "2026-03-02T10:10:00Z",
        ]
        control.pause_project(w.ctx, "acme", "proj")
        _, upcoming = invocations.upcoming_runs(w.ctx, "acme", "proj", 10)
        assert upcoming == []

    run(scenario())


def test_the_end_of_a_pause_moves_with_the_clock_not_with_wall_time(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        w.clock.set(at("2026-03-08T05:00:00Z"))  # 00:00 EST; clocks spring forward at 07:00Z
        t = w.trigger(cron_expression="30 * * * *", timezone="America/New_York")
        control.pause_trigger(w.ctx, "acme", "proj", "bot", t.id, until=at("2026-03-08T07:00:00Z"))
        w.clock.set(at("2026-03-08T07:40:00Z"))
        await w.dispatch()
        # 01:30 EST (06:30Z) was paused; 03:30 EDT (07:30Z) is the first slot after the end.
        assert slots(w.invocations(t.id)) == ["2026-03-08T07:30:00Z"]

    run(scenario())


def test_every_skip_and_run_counts_one_slot_over_a_long_run(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        t = w.trigger(cron_expression="* * * * *", max_runs=50)
        control.skip_trigger(w.ctx, "acme", "proj", "bot", t.id, 7)
        await minute_by_minute(w, 80)
        rows = w.invocations(t.id)
        assert len(rows) == 50
        assert Counter(r.status for r in rows) == Counter({SKIPPED: 7, PENDING: 43})
        assert rows[-1].scheduled_for == datetime(2026, 3, 2, 9, 50, tzinfo=UTC)
        assert triggers.get_trigger(w.ctx, "acme", "proj", "bot", t.id).remaining_runs == 0
        assert w.clock.now() - rows[-1].scheduled_for == timedelta(minutes=30)

    run(scenario())


def test_the_worked_timeline_in_docs_catchup(world: Make) -> None:
    """docs/catchup.md, "Pause, skip, bounds and backfill": the timeline, step by step."""

    async def scenario() -> None:
        from tickwork.services import backfills

        w = await world()
        t = w.trigger(cron_expression="*/15 * * * *", max_runs=6)

        async def minute_by_minute_until(text: str) -> None:
            """The clock moves a minute at a time to ``text``, dispatching each minute."""
            while w.clock.now() < at(text):
                w.advance(60)
                await w.dispatch()

        def trigger() -> Any:
            return triggers.get_trigger(w.ctx, "acme", "proj", "bot", t.id)

        await minute_by_minute_until("2026-03-02T09:05:00Z")
        control.skip_trigger(w.ctx, "acme", "proj", "bot", t.id, 1)
        await minute_by_minute_until("2026-03-02T09:20:00Z")
        assert slots(w.invocations(t.id), SKIPPED) == ["2026-03-02T09:15:00Z"]
        assert trigger().remaining_runs == 5
        control.pause_trigger(w.ctx, "acme", "proj", "bot", t.id, until=at("2026-03-02T10:00:00Z"))
        assert trigger().next_run_at == at("2026-03-02T10:00:00Z")
        await minute_by_minute_until("2026-03-02T10:05:00Z")
        assert slots(w.invocations(t.id), PENDING) == ["2026-03-02T10:00:00Z"]
        assert (trigger().paused, trigger().remaining_runs) == (False, 4)
        w.clock.set(at("2026-03-02T10:50:00Z"))  # the scheduler was down since 10:05
        await w.dispatch()
        assert slots(w.invocations(t.id), MISSED) == [
            "2026-03-02T10:15:00Z",
            "2026-03-02T10:30:00Z",
        ]
        assert slots(w.invocations(t.id), PENDING)[-1] == "2026-03-02T10:45:00Z"
        assert trigger().remaining_runs == 1
        await minute_by_minute_until("2026-03-02T11:10:00Z")
        assert slots(w.invocations(t.id), PENDING)[-1] == "2026-03-02T11:00:00Z"
        assert (trigger().remaining_runs, trigger().next_run_at) == (0, None)
        await w.work()
        _, plan = backfills.create_backfill(
            w.ctx,
            "acme",
            "proj",
            "bot",
            t.id,
            start=at("2026-03-02T09:00:00Z"),
            end=at("2026-03-02T11:00:00Z"),
        )
        assert (plan.slots, plan.created, plan.skipped) == (8, 5, 3)
        assert [format_instant(slot) for slot, _ in plan.plan] == [
            "2026-03-02T09:00:00Z",
            "2026-03-02T09:30:00Z",
            "2026-03-02T09:45:00Z",
            "2026-03-02T10:15:00Z",
            "2026-03-02T10:30:00Z",
        ]

    run(scenario())


def test_enabling_a_trigger_whose_pause_ended_meanwhile_runs_nothing_of_the_past(
    world: Make,
) -> None:
    async def scenario() -> None:
        w = await world()
        t = w.trigger(cron_expression="*/10 * * * *", catchup="all")
        control.pause_trigger(w.ctx, "acme", "proj", "bot", t.id, until=at("2026-03-02T09:15:00Z"))
        triggers.update_trigger(w.ctx, "acme", "proj", "bot", t.id, {"enabled": False})
        await minute_by_minute(w, 45)  # 09:45: the pause ended while it was disabled
        enabled = triggers.update_trigger(w.ctx, "acme", "proj", "bot", t.id, {"enabled": True})
        assert enabled.next_run_at == w.clock.now()
        await minute_by_minute(w, 10)
        # 09:20..09:40 passed while it was disabled: they never run.
        assert slots(w.invocations(t.id)) == ["2026-03-02T09:50:00Z"]
        assert not triggers.get_trigger(w.ctx, "acme", "proj", "bot", t.id).paused

    run(scenario())


def test_the_preview_of_a_trigger_in_a_paused_project_starts_when_both_pauses_end(
    world: Make,
) -> None:
    async def scenario() -> None:
        w = await world()
        t = w.trigger(cron_expression="*/10 * * * *")

        def preview() -> list[str]:
            runs, _, _, _ = triggers.preview_trigger(w.ctx, "acme", "proj", "bot", t.id, 2)
            return [format_instant(r) for r in runs]

        control.pause_project(w.ctx, "acme", "proj", until=at("2026-03-02T09:35:00Z"))
        assert preview() == ["2026-03-02T09:40:00Z", "2026-03-02T09:50:00Z"]
        control.pause_trigger(w.ctx, "acme", "proj", "bot", t.id, until=at("2026-03-02T09:55:00Z"))
        assert preview() == ["2026-03-02T10:00:00Z", "2026-03-02T10:10:00Z"]
        control.pause_project(w.ctx, "acme", "proj")
        assert preview() == []

    run(scenario())
