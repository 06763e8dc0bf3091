"""A scheduler and workers on a fake clock, with real agent servers on loopback."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.waiting import set_in_thread
from tickwork.assembly import assemble
from tickwork.runtime.node import Node
from tickwork.services import resources, tenants, triggers
from tickwork.services.context import Context
from tickwork.settings import Settings
from tickwork.storage.ports import InvocationFilter
from tickwork.storage.records import Invocation, Trigger
from tickwork.storage.sql import Database
from tickwork.targets.base import TargetCall
from tickwork.targets.python import HandlerRegistry
from tickwork.testing import FakeClock

from .servers import A2AAgent, ModelServer, a2a_agent, model_server


@pytest.fixture
def agent() -> Iterator[A2AAgent]:
    with a2a_agent() as served:
        yield served


@pytest.fixture
def models() -> Iterator[ModelServer]:
    with model_server() as served:
        yield served


@pytest.fixture
def settings(database_url: str) -> Settings:
    # The agents run on loopback, which the operator allows here.
    return Settings(
        database_url=database_url,
        deployment_id="dep_test",
        version="test",
        allowed_target_networks=("127.0.0.0/8",),
    )


@dataclass
class Calls:
    """A python handler that records what it is given."""

    seen: list[TargetCall] = field(default_factory=list)

    async def __call__(self, call: TargetCall) -> dict[str, Any]:
        self.seen.append(call)
        return {"conversation_id": f"conv-{len(self.seen)}", "said": call.message}


@dataclass
class World:
    ctx: Context
    clock: FakeClock
    node: Node
    calls: Calls
    closer: asyncio.Task[None] | None = None

    def agent(self, agent_id: str, target: dict[str, Any]) -> None:
        resources.put_agent(self.ctx, "acme", "proj", "main", agent_id, agent_id, target)

    def trigger(self, agent_id: str, **fields: Any) -> Trigger:
        fields.setdefault("name", "t")
        return triggers.create_trigger(self.ctx, "acme", "proj", agent_id, fields)

    async def dispatch(self) -> int:
        assert self.node.scheduler is not None
        return await self.node.scheduler.tick()

    async def work(self) -> None:
        """Claim what is due, run it, record the outcomes."""
        assert self.node.workers is not None
        while await self.node.workers.run_once():
            pass
        await self.node.workers.wait_idle()

    async def run_next(self, seconds: float) -> None:
        """Move the clock on, dispatch what came due and run it."""
        self.clock.advance(seconds)
        await self.dispatch()
        await self.work()

    def invocations(self, trigger_id: str) -> list[Invocation]:
        with self.ctx.db.read() as tx:
            rows = tx.list_invocations("acme", "proj", InvocationFilter(trigger_id), limit=200)
        return sorted(rows, key=lambda i: (i.scheduled_for, i.id))


@pytest.fixture
def world(
    world_with: Callable[[Settings], Coroutine[Any, Any, World]], settings: Settings
) -> Callable[[], Coroutine[Any, Any, World]]:
    async def make() -> World:
        return await world_with(settings)

    return make


@pytest.fixture
def world_with(db: Database, clock: FakeClock) -> Callable[[Settings], Coroutine[Any, Any, World]]:
    """A world whose processes run with these settings."""

    async def make(settings: Settings) -> World:
        registry = HandlerRegistry()
        calls = Calls()
        registry.register("record", calls)
        parts = assemble(settings, db, ("scheduler", "worker"), clock=clock, registry=registry)
        ctx, node = parts.ctx, parts.node
        parts.notifier.bind(asyncio.get_running_loop())
        await node.register()
        tenants.create_tenant(ctx, "acme")
        resources.put_project(ctx, "acme", "proj", None, None)
        assert node.scheduler is not None
        await node.scheduler.take_over()
        world = World(ctx, clock, node, calls)
        world.closer = asyncio.create_task(_close_when_the_loop_ends(node))
        return world

    return make


async def _close_when_the_loop_ends(node: Node) -> None:
    """Close the node's targets (their HTTP clients and pooled connections) when the
    test's event loop ends: ``asyncio.run`` cancels this task as the scenario returns,
    and the close runs before the loop does."""
    try:
        await asyncio.Event().wait()
    finally:
        if node.targets is not None:
            await node.targets.close()


async def wait_for(event: threading.Event) -> None:
    """Wait for a server-side event without blocking the loop (bounded)."""
    await set_in_thread(event, what="the agent getting there")
