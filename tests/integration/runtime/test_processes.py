"""Processes and deployments, driven with a fake clock: standbys of one deployment, a
newer deployment superseding an older one, hand-over on a graceful stop, a dead process
detected within the lease, and python handlers known from the registry (SPEC §9)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from datetime import timedelta
from typing import Any

import pytest

from tests import waiting
from tickwork.errors import ValidationError
from tickwork.runtime.node import Node
from tickwork.runtime.notify import LocalNotifier
from tickwork.services import leadership, processes, resources, tenants
from tickwork.services.context import Context
from tickwork.settings import Settings
from tickwork.storage.sql import Database
from tickwork.targets.base import TargetCall
from tickwork.targets.python import HandlerRegistry
from tickwork.testing import FakeClock

LEASE = 10.0
# Longer than a standby's poll on either database (PostgreSQL: a third of the lease).
POLL = LEASE / 3 + 0.1


class Bus:
    """What NOTIFY does between processes: every notification reaches every process."""

    def __init__(self) -> None:
        self.members: list[LocalNotifier] = []

    def triggers_changed(self) -> None:
        for member in self.members:
            member.triggers_changed()

    def invocations_ready(self) -> None:
        for member in self.members:
            member.invocations_ready()

    def invocations_cancelled(self, ids: Iterable[str]) -> None:
        batch = list(ids)
        for member in self.members:
            member.invocations_cancelled(batch)

    def leadership_changed(self) -> None:
        for member in self.members:
            member.leadership_changed()


class Cluster:
    """Processes sharing one database, each with its own notifier and node."""

    def __init__(self, db: Database, clock: FakeClock, settings: Settings) -> None:
        self.db, self.clock, self.settings = db, clock, settings
        self.bus = Bus()
        self.nodes: list[Node] = []

    def ctx(self, deployment: str = "dep_a") -> Context:
        settings = self.settings.with_(deployment_id=deployment, scheduler_lease_seconds=LEASE)
        return Context(self.db, self.clock, settings, self.bus)

    async def start(
        self,
        deployment: str = "dep_a",
        roles: tuple[str, ...] = ("scheduler", "worker"),
        handlers: tuple[str, ...] = (),
    ) -> Node:
        notifier = LocalNotifier()
        self.bus.members.append(notifier)
        registry = HandlerRegistry()

        async def run(call: TargetCall) -> None:
            return None

        for name in handlers:
            registry.register(name, run)
        node = Node(self.ctx(deployment), notifier, roles, registry)
        await node.start()
        self.nodes.append(node)
        # Its loops have gone round once and sleep until the clock moves.
        sched = node.scheduler
        await until(lambda: node.checks >= 1 and (sched is None or sched.ticks >= 1), node)
        return node

    async def crash(self, node: Node) -> None:
        """The process dies: its loops stop, and it neither leaves the registry nor gives
        the lease up (as after SIGKILL, its rows stay until they expire)."""
        node.stop_event.set()
        for event in (node.notifier.triggers, node.notifier.invocations, node.notifier.leadership):
            event.set()
        for task in (node._watch_task, node._scheduler_task, node._worker_task):
            if task is not None:
                await task
        if node.targets is not None:
            await node.targets.close()
        self.nodes.remove(node)

    async def stop(self) -> None:
        for node in self.nodes:
            await node.stop()


async def until(condition: Callable[[], bool], *nodes: Node) -> None:
    """Wait until ``condition`` holds, woken by the nodes' loops as they go round."""
    loops = [n.checked for n in nodes] + [n.scheduler.ticked for n in nodes if n.scheduler]
    await waiting.until(condition, *loops, what="the processes getting there", seconds=5)


Scenario = Callable[[Cluster], Coroutine[Any, Any, None]]


@pytest.fixture
def cluster(db: Database, clock: FakeClock, settings: Settings) -> Callable[[Scenario], None]:
    def run(scenario: Scenario) -> None:
        async def main() -> None:
            c = Cluster(db, clock, settings)
            try:
                await waiting.within(scenario(c), "the scenario", 30)
            finally:
                await c.stop()

        asyncio.run(main())

    return run


def active(node: Node) -> bool:
    return node.scheduler is not None and node.scheduler.active


def test_a_second_process_of_the_same_deployment_stands_by_and_nobody_drains(
    cluster: Callable[[Scenario], None],
) -> None:
    async def scenario(c: Cluster) -> None:
        a = await c.start()
        b = await c.start()
        assert active(a)
        assert not active(b)
        assert b.describe() == {"scheduler": "standby", "workers": "taking new work"}
        c.clock.advance(POLL)
        await until(lambda: b.scheduler is not None and b.scheduler.ticks > 1, a, b)
        assert active(a)
        assert not active(b)
        assert not a.superseded
        assert not b.superseded

    cluster(scenario)


def test_a_graceful_stop_hands_the_lease_to_a_standby_at_once(
    cluster: Callable[[Scenario], None],
) -> None:
    async def scenario(c: Cluster) -> None:
        a = await c.start()
        b = await c.start()
        before = leadership.state(b.ctx).generation
        c.nodes.remove(a)
        await a.stop()
        # The clock does not move: the release itself wakes the standby.
        await until(lambda: active(b), b)
        assert leadership.state(b.ctx).generation == before + 1
        with b.ctx.db.read() as tx:
            assert [p.id for p in tx.list_processes()] == [b.process.id if b.process else ""]

    cluster(scenario)


def test_a_newer_deployment_takes_over_as_it_starts_and_the_older_one_drains(
    cluster: Callable[[Scenario], None],
) -> None:
    async def scenario(c: Cluster) -> None:
        old = await c.start("dep_old")
        c.clock.advance(1)
        new = await c.start("dep_new")
        assert active(new)
        c.clock.advance(1)
        await until(lambda: old.superseded and not active(old), old)
        assert old.workers is not None
        assert old.workers.superseded
        assert not new.superseded
        assert old.describe()["workers"].startswith("draining")

    cluster(scenario)


def test_a_dead_newest_deployment_lets_the_older_one_resume_within_the_lease(
    cluster: Callable[[Scenario], None],
) -> None:
    async def scenario(c: Cluster) -> None:
        old = await c.start("dep_old")
        c.clock.advance(1)
        new = await c.start("dep_new")
        died_at = c.clock.now()
        await c.crash(new)
        c.clock.advance(1)
        await until(lambda: old.superseded, old)
        # Until its last heartbeat has expired, the dead deployment still counts as live.
        checks = old.checks
        c.clock.advance(LEASE - 1.5)
        await until(lambda: old.checks > checks and not active(old), old)
        assert old.superseded
        assert not active(old)
        # Then the older deployment is current again: it schedules and takes new work.
        c.clock.advance(1.0)
        await until(lambda: not old.superseded, old)
        c.clock.advance(POLL)
        await until(lambda: active(old), old)
        assert c.clock.now() - died_at <= timedelta(seconds=LEASE + POLL + 1)
        assert old.workers is not None
        assert not old.workers.superseded

    cluster(scenario)


def test_a_graceful_stop_of_the_newest_deployments_last_process_resumes_the_older_at_once(
    cluster: Callable[[Scenario], None],
) -> None:
    async def scenario(c: Cluster) -> None:
        old = await c.start("dep_old")
        c.clock.advance(1)
        new = await c.start("dep_new")
        c.clock.advance(1)
        await until(lambda: old.superseded and not active(old), old)
        c.nodes.remove(new)
        await new.stop()
        # No time passes: leaving the registry and releasing the lease wake the older one.
        await until(lambda: active(old) and not old.superseded, old)

    cluster(scenario)


def test_the_heartbeat_keeps_a_process_live_and_a_stopped_one_is_gone(
    cluster: Callable[[Scenario], None],
) -> None:
    async def scenario(c: Cluster) -> None:
        a = await c.start()
        assert a.process is not None
        for _ in range(8):  # two lease lengths, in heartbeat steps
            checks = a.checks
            c.clock.advance(processes.heartbeat_seconds(a.ctx.settings))
            await until(lambda n=checks: a.checks > n, a)  # type: ignore[misc]
        with a.ctx.db.read() as tx:
            [row] = tx.list_processes(live_at=c.clock.now())
            assert row.id == a.process.id
            assert row.expires_at > c.clock.now()
            assert leadership.current_deployment(tx, c.clock.now()) == "dep_a"
        c.nodes.remove(a)
        await a.stop()
        with a.ctx.db.read() as tx:
            assert tx.list_processes() == []
            assert leadership.current_deployment(tx, c.clock.now()) is None

    cluster(scenario)


def _agent(ctx: Context, handler: str) -> None:
    resources.put_agent(
        ctx, "acme", "p", "main", "bot", None, {"type": "python", "handler": handler}
    )


def test_the_api_accepts_only_handlers_a_live_worker_registered(
    cluster: Callable[[Scenario], None],
) -> None:
    async def scenario(c: Cluster) -> None:
        ctx = c.ctx()
        tenants.create_tenant(ctx, "acme")
        resources.put_project(ctx, "acme", "p", None, None)
        with pytest.raises(ValidationError, match="no tickwork worker process is running") as e:
            _agent(ctx, "reports.daily")
        assert e.value.field == "target.handler"
        # An API-only process knows the handlers of the workers, not its own.
        await c.start(roles=("api",), handlers=("api.only",))
        with pytest.raises(ValidationError, match="no tickwork worker process is running"):
            _agent(ctx, "api.only")
        worker = await c.start(roles=("worker",), handlers=("reports.daily",))
        _agent(ctx, "reports.daily")
        with pytest.raises(ValidationError, match=r"registered: reports\.daily"):
            _agent(ctx, "os.system")
        c.nodes.remove(worker)
        await worker.stop()
        with pytest.raises(ValidationError, match="no tickwork worker process is running"):
            _agent(ctx, "reports.daily")

    cluster(scenario)


def test_a_dead_workers_handlers_are_forgotten_once_its_heartbeat_expires(
    cluster: Callable[[Scenario], None],
) -> None:
    async def scenario(c: Cluster) -> None:
        ctx = c.ctx()
        tenants.create_tenant(ctx, "acme")
        resources.put_project(ctx, "acme", "p", None, None)
        worker = await c.start(handlers=())
        assert worker.process is not None
        dead = processes.new_process(ctx, ["worker"], ["reports.daily"])
        processes.beat(ctx, dead)  # a worker process that dies right after this beat
        await c.crash(worker)
        c.clock.advance(LEASE - 0.5)
        _agent(ctx, "reports.daily")
        c.clock.advance(1)
        with pytest.raises(ValidationError, match="no tickwork worker process is running"):
            _agent(ctx, "reports.daily")

    cluster(scenario)


def test_an_api_only_replica_of_a_newer_release_makes_nobody_drain(
    cluster: Callable[[Scenario], None],
) -> None:
    async def scenario(c: Cluster) -> None:
        old = await c.start("dep_old")
        c.clock.advance(1)
        await c.start("dep_new", roles=("api",))
        checks = old.checks
        c.clock.advance(POLL)
        await until(lambda: old.checks > checks, old)
        assert active(old)
        assert not old.superseded
        # Its scheduler process starts next: scheduling moves, the work stays until the
        # new release's workers are up.
        scheduler = await c.start("dep_new", roles=("scheduler",))
        assert active(scheduler)
        checks = old.checks
        c.clock.advance(1)
        await until(lambda: old.checks > checks and not active(old), old)
        assert not old.superseded
        await c.start("dep_new", roles=("worker",))
        c.clock.advance(1)
        await until(lambda: old.superseded, old)

    cluster(scenario)
