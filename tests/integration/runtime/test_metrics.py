"""What the workers and the scheduler count, as ``/metrics`` shows it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.waiting import within
from tickwork import metrics
from tickwork.services import invocations

from .conftest import World

Make = Callable[..., Coroutine[Any, Any, World]]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def attempts_by_outcome() -> dict[str, float]:
    text, _ = metrics.exposition(None)
    return {
        s.labels["outcome"]: s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
        if s.name == "tickwork_attempts_total"
    }


def test_an_attempt_stopped_by_a_cancel_is_counted_as_cancelled(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        w.recorder.block = asyncio.Event()
        t = w.trigger(run_at=T0 + timedelta(seconds=1))
        w.advance(1)
        await w.dispatch()
        before = attempts_by_outcome()
        work = asyncio.create_task(w.work())
        await within(w.recorder.started.wait(), "the target being called")
        [inv] = w.invocations(t.id)
        await asyncio.to_thread(invocations.cancel_invocation, w.ctx, "acme", "proj", t.id, inv.id)
        await within(work, "the attempt ending")
        after = attempts_by_outcome()
        assert after["cancelled"] - before["cancelled"] == 1
        assert after["completed"] == before["completed"]

    asyncio.run(asyncio.wait_for(scenario(), timeout=30))
