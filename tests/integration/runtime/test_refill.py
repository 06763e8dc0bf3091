"""Under a backlog the worker pool refills each slot as it frees (SPEC §5): in-flight
attempts stay at the concurrency instead of swinging down to half of it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tickwork.runtime.notify import LocalNotifier
from tickwork.runtime.workers import Targets, WorkerPool
from tickwork.services import resources, tenants, triggers
from tickwork.services.context import Context
from tickwork.targets.base import TargetCall
from tickwork.targets.python import HandlerRegistry
from tickwork.testing import register_handlers

CONCURRENCY = 4
BACKLOG = 12


WAIT_SECONDS = 10.0


async def _until(changed: asyncio.Event, check: Callable[[], bool]) -> None:
    """Wait (bounded) until ``check()`` holds, rechecking each time ``changed`` is set."""
    async with asyncio.timeout(WAIT_SECONDS):
        while not check():
            changed.clear()
            await changed.wait()


def test_a_freed_slot_is_refilled_at_once_under_a_backlog(ctx: Context) -> None:
    tenants.create_tenant(ctx, "acme")
    resources.put_project(ctx, "acme", "p", None, None)
    register_handlers(ctx, ["gated"])
    resources.put_agent(
        ctx, "acme", "p", "main", "bot", None, {"type": "python", "handler": "gated"}
    )
    trigger = triggers.create_trigger(
        ctx, "acme", "p", "bot", {"name": "t", "cron_expression": "0 3 * * *"}
    )
    for _ in range(BACKLOG):
        triggers.run_now(ctx, "acme", "p", "bot", trigger.id)
    # One tenant may use every slot here: the backlog is what fills them.
    ctx.settings = ctx.settings.with_(
        worker_concurrency=CONCURRENCY, tenant_concurrency=CONCURRENCY
    )

    started: list[str] = []
    gates: dict[str, asyncio.Event] = {}
    changed = asyncio.Event()

    async def gated(call: TargetCall) -> None:
        gate = gates.setdefault(call.invocation_id, asyncio.Event())
        started.append(call.invocation_id)
        changed.set()
        await gate.wait()

    async def scenario() -> None:
        registry = HandlerRegistry()
        registry.register("gated", gated)
        notifier = LocalNotifier()
        notifier.bind(asyncio.get_running_loop())
        targets = Targets(ctx, registry)
        workers = WorkerPool(ctx, notifier, targets)
        stop = asyncio.Event()
        running = asyncio.create_task(workers.run(stop))
        try:
            await _until(changed, lambda: len(started) == CONCURRENCY)
            # One attempt ends: its slot is claimed again at once, not when half free.
            gates.setdefault(started[0], asyncio.Event()).set()
            await _until(changed, lambda: len(started) == CONCURRENCY + 1)
            assert len(workers.inflight) == CONCURRENCY
            # And so on, one slot at a time, until the backlog is done.
            while len(started) < BACKLOG:
                count = len(started)
                waiting = next(i for i in started if not gates[i].is_set())
                gates[waiting].set()
                await _until(changed, lambda count=count: len(started) == count + 1)  # type: ignore[misc]
                assert len(workers.inflight) == CONCURRENCY
        finally:
            stop.set()
            for invocation_id in started:
                gates.setdefault(invocation_id, asyncio.Event()).set()
            await asyncio.wait_for(running, timeout=10)
            await targets.close()
        assert len(set(started)) == BACKLOG

    asyncio.run(asyncio.wait_for(scenario(), timeout=60))
