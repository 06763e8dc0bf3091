from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from tickwork.assembly import assemble
from tickwork.errors import PermanentError, TransientError
from tickwork.runtime.node import Node
from tickwork.services import resources, tenants, triggers
from tickwork.services.context import Context
from tickwork.storage.ports import InvocationFilter
from tickwork.storage.records import Invocation, Trigger
from tickwork.targets.base import TargetCall
from tickwork.targets.python import HandlerRegistry
from tickwork.testing import FakeClock


@dataclass
class Recorder:
    """A python target whose behaviour each test scripts."""

    calls: list[TargetCall] = field(default_factory=list)
    fail_times: int = 0
    permanent: bool = False
    block: asyncio.Event | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: list[str] = field(default_factory=list)

    async def __call__(self, call: TargetCall) -> dict[str, Any]:
        self.calls.append(call)
        self.started.set()
        if self.permanent:
            raise PermanentError("the agent refused the message")
        if self.fail_times > 0:
            self.fail_times -= 1
            raise TransientError("upstream 503")
        if self.block is not None:
            try:
                await self.block.wait()
            except asyncio.CancelledError:
                self.cancelled.append(call.invocation_id)
                raise
        return {"conversation_id": f"conv-{call.invocation_id[-6:]}"}


@dataclass
class World:
    ctx: Context
    clock: FakeClock
    node: Node
    recorder: Recorder

    def trigger(self, **fields: Any) -> Trigger:
        fields.setdefault("name", "t")
        return triggers.create_trigger(self.ctx, "acme", "proj", "bot", fields)

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    async def dispatch(self) -> int:
        assert self.node.scheduler is not None
        return await self.node.scheduler.tick()

    async def work(self) -> None:
        """Claim what is due, run it, record the outcomes."""
        assert self.node.workers is not None
        while await self.node.workers.run_once():
            pass
        await self.node.workers.wait_idle()

    def invocations(self, trigger_id: str | None = None) -> list[Invocation]:
        with self.ctx.db.read() as tx:
            rows = tx.list_invocations("acme", "proj", InvocationFilter(trigger_id), limit=200)
        return sorted(rows, key=lambda i: (i.scheduled_for, i.id))


@pytest.fixture
def world(ctx: Context, clock: FakeClock) -> Callable[..., Coroutine[Any, Any, World]]:
    async def make(handler: str = "record") -> World:
        registry = HandlerRegistry()
        recorder = Recorder()
        registry.register(handler, recorder)
        parts = assemble(
            ctx.settings, ctx.db, ("scheduler", "worker"), clock=clock, registry=registry
        )
        here, node = parts.ctx, parts.node
        parts.notifier.bind(asyncio.get_running_loop())
        await node.register()  # its handlers are known from here on
        tenants.create_tenant(here, "acme")
        resources.put_project(here, "acme", "proj", None, None)
        resources.put_agent(
            here, "acme", "proj", "main", "bot", "Bot", {"type": "python", "handler": handler}
        )
        assert node.scheduler is not None
        await node.scheduler.take_over()
        return World(here, clock, node, recorder)

    return make


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)
