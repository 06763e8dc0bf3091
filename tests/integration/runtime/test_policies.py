"""Catch-up and overlap policies as the scheduler and workers apply them (fake clock)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.waiting import within
from tickwork.storage.records import CANCELLED, COMPLETED, MISSED, PENDING, RUNNING, SKIPPED

from .conftest import World

Make = Callable[..., Coroutine[Any, Any, World]]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout=60))


@pytest.mark.parametrize(
    ("cron", "policy", "runs", "missed_recorded"),
    [
        # Down for three days; the window is the default hour.
        ("0 9 * * *", "latest", 1, 2),
        ("0 9 * * *", "all", 1, 2),
        ("0 9 * * *", "none", 1, 2),
        ("0 * * * *", "latest", 1, 71),
        ("0 * * * *", "all", 2, 70),
        ("0 * * * *", "none", 1, 71),
        ("* * * * *", "latest", 1, 100),
        ("* * * * *", "all", 61, 100),
        ("* * * * *", "none", 1, 100),
    ],
)
def test_a_three_day_outage_is_caught_up_by_policy(
    world: Make, cron: str, policy: str, runs: int, missed_recorded: int
) -> None:
    async def scenario() -> None:
        w = await world()
        t = w.trigger(cron_expression=cron, catchup=policy)
        w.advance(3 * 86400)
        await w.dispatch()
        statuses = Counter(i.status for i in w.invocations(t.id))
        assert statuses == Counter({PENDING: runs, MISSED: missed_recorded})
        pending = [i for i in w.invocations(t.id) if i.status == PENDING]
        # The newest slot always runs, and only slots inside the window run.
        assert pending[-1].scheduled_for == w.clock.now()
        assert all(w.clock.now() - i.scheduled_for <= timedelta(hours=1) for i in pending)
        await w.dispatch()
        assert Counter(i.status for i in w.invocations(t.id)) == statuses

    run(scenario())


def test_catchup_none_after_a_short_outage_runs_only_the_current_slot(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        t = w.trigger(cron_expression="*/10 * * * *", catchup="none")
        w.advance(3600)
        await w.dispatch()
        rows = w.invocations(t.id)
        assert [r.status for r in rows] == [MISSED] * 5 + [PENDING]
        assert all(r.status_reason and "catchup=none" in r.status_reason for r in rows[:5])

    run(scenario())


async def _slow_world(world: Make, overlap: str) -> tuple[World, str]:
    w = await world()
    w.recorder.block = asyncio.Event()
    t = w.trigger(cron_expression="* * * * *", overlap=overlap, timeout_seconds=3600)
    w.advance(60)
    await w.dispatch()
    assert w.node.workers is not None
    await w.node.workers.run_once()
    await within(w.recorder.started.wait(), "the target being called")
    return w, t.id


def test_overlap_skip_records_the_slot_as_skipped_while_one_runs(world: Make) -> None:
    async def scenario() -> None:
        w, trigger_id = await _slow_world(world, "skip")
        w.advance(60)
        await w.dispatch()
        first, second = w.invocations(trigger_id)
        assert first.status == RUNNING
        assert second.status == SKIPPED
        assert second.status_reason is not None
        assert "overlap=skip" in second.status_reason
        w.recorder.block.set()  # type: ignore[union-attr]
        await w.work()

    run(scenario())


def test_overlap_buffer_one_queues_one_slot_and_skips_the_next(world: Make) -> None:
    async def scenario() -> None:
        w, trigger_id = await _slow_world(world, "buffer_one")
        w.advance(60)
        await w.dispatch()
        w.advance(60)
        await w.dispatch()
        first, buffered, third = w.invocations(trigger_id)
        assert (first.status, buffered.status, third.status) == (RUNNING, PENDING, SKIPPED)
        # The buffered one may not start while the first runs: a claim hands it back.
        assert w.node.workers is not None
        await w.node.workers.run_once()
        assert len(w.recorder.calls) == 1
        assert w.invocations(trigger_id)[1].status == PENDING
        w.recorder.block.set()  # type: ignore[union-attr]
        await w.node.workers.wait_idle()
        w.advance(2)
        await w.work()
        first, buffered, third = w.invocations(trigger_id)
        assert (first.status, buffered.status) == (COMPLETED, COMPLETED)
        assert [c.invocation_id for c in w.recorder.calls] == [first.id, buffered.id]
        assert buffered.attempt == 1

    run(scenario())


def test_overlap_cancel_previous_stops_the_running_one_for_the_new_slot(world: Make) -> None:
    async def scenario() -> None:
        w, trigger_id = await _slow_world(world, "cancel_previous")
        first_id = w.invocations(trigger_id)[0].id
        w.advance(60)
        await w.dispatch()
        first, second = w.invocations(trigger_id)
        assert first.id == first_id
        assert first.status == CANCELLED
        assert first.status_reason == "overlap=cancel_previous"
        assert second.status == PENDING
        assert w.node.workers is not None
        await within(w.node.workers.wait_idle(), "the cancelled attempt ending")
        assert w.recorder.cancelled == [first_id]

    run(scenario())
