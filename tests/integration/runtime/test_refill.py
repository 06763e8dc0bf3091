"""Under a backlog the worker pool refills each slot as it frees (SPEC §5): in-flight
attempts stay at the concurrency instead of swinging down to half of it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.waiting import until, within
from tickwork.runtime.notify import LocalNotifier
from tickwork.runtime.workers import Targets, WorkerPool
from tickwork.services import resources, tenants, triggers
from tickwork.services.context import Context
from tickwork.targets.base import TargetCall
from tickwork.targets.python import HandlerRegistry
from tickwork.testing import register_handlers

CONCURRENCY = 4
BACKLOG = 12


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

    def gate(invocation_id: str) -> asyncio.Event:
        return gates.setdefault(invocation_id, asyncio.Event())

    async def gated(call: TargetCall) -> None:
        started.append(call.invocation_id)
        await gate(call.invocation_id).wait()

    def refilled(workers: WorkerPool, ending: str) -> Callable[[], bool]:
        """``ending`` has left the pool and another attempt has its slot."""
        return lambda: ending not in workers.inflight and len(workers.inflight) == CONCURRENCY

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
            await until(
                lambda: len(workers.inflight) == CONCURRENCY,
                workers.changed,
                what="the first claim filling every slot",
            )
            # One attempt ends at a time: its slot is claimed again at once, not when
            # half the slots are free, until the backlog is done.
            for _ in range(BACKLOG - CONCURRENCY):
                ending = next(iter(workers.inflight))
                gate(ending).set()
                await until(
                    refilled(workers, ending), workers.changed, what="the freed slot claimed again"
                )
        finally:
            stop.set()
            for invocation_id in list(gates) + list(workers.inflight):
                gate(invocation_id).set()
            await within(running, "the pool stopping")
            await targets.close()
        assert len(set(started)) == BACKLOG

    asyncio.run(within(scenario(), "the scenario", 60))
