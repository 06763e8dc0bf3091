"""The active scheduler's pruner (SPEC §11): history the scheduler and workers wrote goes
once past its retention, on the fake clock, while the trigger keeps its last run."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from tests.waiting import within
from tickwork.services import retention
from tickwork.storage.records import COMPLETED, PENDING

from .conftest import World

Make = Callable[..., Coroutine[Any, Any, World]]


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout=60))


def test_the_active_scheduler_prunes_what_it_dispatched_once_it_is_past_retention(
    world: Make,
) -> None:
    async def scenario() -> None:
        w = await world()
        retention.put_retention(w.ctx, "acme", "proj", {"history_retention_days": 1})
        trigger = w.trigger(cron_expression="*/10 * * * *")
        for _ in range(6):
            w.advance(600)
            await w.dispatch()
            await w.work()
        ran = w.invocations(trigger.id)
        assert [i.status for i in ran] == [COMPLETED] * 6
        w.advance(2 * 86_400)
        await w.dispatch()  # one more slot (catch-up: the latest), left pending
        pending = [i for i in w.invocations(trigger.id) if i.status == PENDING]
        assert len(pending) == 1
        assert w.node.pruner is not None
        assert w.node.scheduler is not None
        assert w.node.scheduler.active
        stop = asyncio.Event()
        task = asyncio.create_task(w.node.pruner.run(stop))
        await within(w.node.pruner.passed.wait(), "a pruner pass", 30)
        stop.set()
        await task
        left = {i.id for i in w.invocations(trigger.id)}
        # The runs of two days ago went but the last one (what last_run showed before
        # the pending slot runs); the pending slot and the slots just recorded missed
        # (recent) stay.
        assert not {i.id for i in ran[:-1]} & left
        assert {pending[0].id, ran[-1].id} <= left

    run(scenario())
