"""Bulk cancel and rerun by filter, racing the workers (fake clock, SPEC §10)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from tests.waiting import within
from tickwork.errors import ValidationError
from tickwork.services import bulk, triggers
from tickwork.storage.records import CANCELLED, COMPLETED, FAILED, PENDING, RUNNING

from .conftest import World

Make = Callable[..., Coroutine[Any, Any, World]]


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout=60))


def test_bulk_cancel_racing_the_workers_leaves_each_invocation_finished_once(
    world: Make,
) -> None:
    async def scenario() -> None:
        w = await world()
        t = w.trigger(cron_expression="0 0 1 1 *")
        for _ in range(30):
            triggers.run_now(w.ctx, "acme", "proj", "bot", t.id)
        # Workers and a bulk cancel at once: every invocation ends either completed (its
        # worker was first) or cancelled (the cancel was), never both.
        work = asyncio.create_task(w.work())
        result = await asyncio.to_thread(bulk.bulk_cancel, w.ctx, "acme", "proj")
        await work
        await w.work()
        rows = w.invocations(t.id)
        statuses = Counter(r.status for r in rows)
        assert set(statuses) <= {COMPLETED, CANCELLED}
        assert statuses[CANCELLED] == result.changed
        assert result.matched >= result.changed
        called = {c.invocation_id for c in w.recorder.calls}
        for row in rows:
            if row.status == COMPLETED:
                assert row.id in called
        # Nothing left to cancel.
        assert bulk.bulk_cancel(w.ctx, "acme", "proj") == bulk.BulkResult(0, 0)

    run(scenario())


def test_bulk_cancel_stops_running_attempts_and_filters_by_trigger_and_origin(
    world: Make,
) -> None:
    async def scenario() -> None:
        w = await world()
        w.recorder.block = asyncio.Event()
        a = w.trigger(name="a", cron_expression="0 0 1 1 *", timeout_seconds=3600)
        b = w.trigger(name="b", cron_expression="0 0 1 1 *")
        triggers.run_now(w.ctx, "acme", "proj", "bot", a.id)
        assert w.node.workers is not None
        await w.node.workers.run_once()
        await within(w.recorder.started.wait(), "the target being called")
        for _ in range(3):
            triggers.run_now(w.ctx, "acme", "proj", "bot", a.id)
            triggers.run_now(w.ctx, "acme", "proj", "bot", b.id)
        dry = bulk.bulk_cancel(w.ctx, "acme", "proj", trigger_id=a.id, dry_run=True)
        assert dry == bulk.BulkResult(4, 4)
        assert Counter(r.status for r in w.invocations(a.id)) == Counter({RUNNING: 1, PENDING: 3})
        only_pending = bulk.bulk_cancel(
            w.ctx, "acme", "proj", trigger_id=a.id, statuses=[PENDING], limit=2
        )
        assert only_pending == bulk.BulkResult(2, 2)
        rest = bulk.bulk_cancel(w.ctx, "acme", "proj", trigger_id=a.id, origins=["manual"])
        assert rest == bulk.BulkResult(2, 2)
        await w.node.workers.wait_idle()
        assert len(w.recorder.cancelled) == 1  # the running attempt was stopped
        assert {r.status for r in w.invocations(a.id)} == {CANCELLED}
        assert {r.status for r in w.invocations(b.id)} == {PENDING}
        assert all(r.status_reason == "cancelled by request (bulk)" for r in w.invocations(a.id))

    run(scenario())


def test_bulk_rerun_repeats_failed_invocations_naming_their_original(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        a = w.trigger(name="a", cron_expression="*/10 * * * *", max_retries=0)
        b = w.trigger(name="b", cron_expression="*/10 * * * *", max_retries=0)
        w.recorder.permanent = True
        w.advance(600)
        await w.dispatch()
        await w.work()
        w.recorder.permanent = False
        assert {r.status for r in w.invocations()} == {FAILED}
        triggers.update_trigger(w.ctx, "acme", "proj", "bot", b.id, {"enabled": False})
        assert bulk.bulk_rerun(w.ctx, "acme", "proj", dry_run=True) == bulk.BulkResult(2, 1)
        assert len(w.invocations()) == 2
        result = bulk.bulk_rerun(w.ctx, "acme", "proj")
        assert result == bulk.BulkResult(2, 1)
        (original,) = w.invocations(a.id)[:1]
        rerun = [r for r in w.invocations(a.id) if r.origin == "rerun"]
        assert len(rerun) == 1
        assert rerun[0].rerun_of == original.id
        assert rerun[0].scheduled_for == original.scheduled_for
        # Racing the workers: only what is final when the rerun's transaction runs.
        work = asyncio.create_task(w.work())
        again = await asyncio.to_thread(
            bulk.bulk_rerun, w.ctx, "acme", "proj", statuses=[COMPLETED], trigger_id=a.id
        )
        await work
        await w.work()
        reruns = [r for r in w.invocations(a.id) if r.origin == "rerun"]
        assert len(reruns) == 1 + again.changed
        assert all(r.status == COMPLETED for r in reruns)

    run(scenario())


@pytest.mark.parametrize(
    ("action", "kwargs", "field", "words"),
    [
        ("cancel", {"statuses": ["completed"]}, "status", "only pending, running"),
        ("cancel", {"statuses": ["done"]}, "status", "is not one of"),
        ("rerun", {"statuses": ["running"]}, "status", "can be rerun"),
        ("rerun", {"origins": ["cron"]}, "origin", "is not one of"),
        ("cancel", {"limit": 10_001}, "limit", "from 1 to 10000"),
        ("cancel", {"limit": 0}, "limit", "from 1 to 10000"),
    ],
)
def test_bulk_filters_are_checked_naming_the_field(
    world: Make, action: str, kwargs: dict[str, Any], field: str, words: str
) -> None:
    async def scenario() -> None:
        w = await world()
        fn = bulk.bulk_cancel if action == "cancel" else bulk.bulk_rerun
        with pytest.raises(ValidationError) as raised:
            fn(w.ctx, "acme", "proj", **kwargs)
        assert raised.value.field == field
        assert words in str(raised.value)

    run(scenario())
