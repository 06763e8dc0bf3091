"""One tickwork process's background roles: the scheduler and the worker pool, and the
process's entry in the registry (SPEC §9, Processes)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from tickwork import metrics
from tickwork.logging import get_logger
from tickwork.runtime.notifications import NotificationSender
from tickwork.runtime.notify import LocalNotifier
from tickwork.runtime.pruner import Pruner
from tickwork.runtime.scheduler import Scheduler
from tickwork.runtime.workers import Targets, WorkerPool
from tickwork.services import leadership, processes
from tickwork.services.context import Context
from tickwork.services.processes import ProcessInfo
from tickwork.targets.python import HandlerRegistry, default_registry

log = get_logger("tickwork.runtime")

ROLES = ("api", "scheduler", "worker")
# How often a process checks whether its deployment is still the current one.
CURRENT_CHECK_SECONDS = 1.0


class Node:
    def __init__(
        self,
        ctx: Context,
        notifier: LocalNotifier,
        roles: Iterable[str] = ROLES,
        registry: HandlerRegistry | None = None,
        *,
        exit_when_superseded: bool = False,
        on_exit: Callable[[], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.notifier = notifier
        self.roles = set(roles)
        self.registry = registry if registry is not None else default_registry
        self.exit_when_superseded = exit_when_superseded
        self.on_exit = on_exit
        self.superseded = False
        self.stop_event = asyncio.Event()
        # Counted and set after each look at the registry (the heartbeat loop going round).
        self.checks = 0
        self.checked = asyncio.Event()
        self.process: ProcessInfo | None = None
        self.scheduler = (
            Scheduler(ctx, notifier.triggers, notifier.leadership)
            if "scheduler" in self.roles
            else None
        )
        self.pruner = Pruner(ctx, self.scheduler) if self.scheduler is not None else None
        self.targets = Targets(ctx, self.registry) if "worker" in self.roles else None
        self.workers = WorkerPool(ctx, notifier, self.targets) if self.targets is not None else None
        # Notifications go out with the workers, through the same egress policy.
        self.sender = (
            NotificationSender(ctx, self.targets.client) if self.targets is not None else None
        )
        self._sender_task: asyncio.Task[None] | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._scheduler_task: asyncio.Task[None] | None = None
        self._pruner_task: asyncio.Task[None] | None = None
        self._worker_task: asyncio.Task[None] | None = None

    async def register(self) -> ProcessInfo:
        """Record this process in the registry with its roles and the python handlers it
        can run (from then on the API accepts agents naming them)."""
        if self.process is None:
            self.process = processes.new_process(self.ctx, self.roles, self.registry.names())
        await asyncio.to_thread(processes.beat, self.ctx, self.process)
        return self.process

    async def start(self) -> None:
        """Register, try the scheduler lease once, then run the roles. Call it only when
        the process is fully up: from here on it counts as a live process of its
        deployment."""
        loop = asyncio.get_running_loop()
        # Database calls and sync handlers both run in threads: size the pool so that
        # handlers which block (up to the worker concurrency) never starve the database.
        workers = self.ctx.settings.worker_concurrency if self.workers is not None else 0
        loop.set_default_executor(ThreadPoolExecutor(max_workers=workers + 16))
        self.notifier.bind(loop)
        await self.register()
        self.superseded = not await asyncio.to_thread(leadership.is_current, self.ctx)
        if self.workers is not None:
            self.workers.superseded = self.superseded
        if self.scheduler is not None:
            try:
                await self.scheduler.take_over()
            except Exception:  # the loop tries again
                log.exception("could not take the scheduler lease; retrying")
            self._scheduler_task = asyncio.create_task(self.scheduler.run(self.stop_event))
        if self.pruner is not None:
            self._pruner_task = asyncio.create_task(self.pruner.run(self.stop_event))
        if self.workers is not None:
            self._worker_task = asyncio.create_task(self.workers.run(self.stop_event))
        if self.sender is not None:
            self._sender_task = asyncio.create_task(self.sender.run(self.stop_event))
        self._watch_task = asyncio.create_task(self._watch())

    def describe(self) -> dict[str, str]:
        """The role each part of this process plays right now, for the start banner."""
        roles: dict[str, str] = {}
        if self.scheduler is not None:
            roles["scheduler"] = "active" if self.scheduler.active else "standby"
        if self.workers is not None:
            roles["workers"] = (
                "draining (a newer deployment takes new work)"
                if self.superseded
                else "taking new work"
            )
        return roles

    async def _watch(self) -> None:
        """Beat the process's heart; notice when a newer deployment takes over, or when
        this one is current again."""
        assert self.process is not None
        clock = self.ctx.clock
        beat_every = timedelta(seconds=processes.heartbeat_seconds(self.ctx.settings))
        next_beat = clock.now() + beat_every
        changed = self.notifier.leadership
        while not self.stop_event.is_set():
            now = clock.now()
            changed.clear()
            try:
                if now >= next_beat:
                    await asyncio.to_thread(processes.beat, self.ctx, self.process)
                    next_beat = now + beat_every
                current, scheduling = await asyncio.to_thread(leadership.standing, self.ctx)
            except Exception:
                log.exception("process heartbeat failed; retrying")
                current, scheduling = not self.superseded, True
            if self.superseded != (not current):
                self.superseded = not current
                if self.superseded:
                    log.warning("a newer deployment took over: draining (no new attempts)")
                else:
                    log.info("this deployment takes new work again")
                    self.notifier.invocations.set()
            if not scheduling and self.scheduler is not None and self.scheduler.active:
                self.notifier.triggers.set()  # its next dispatch finds it fenced out
            metrics.superseded.set(1 if self.superseded else 0)
            if self.workers is not None:
                self.workers.superseded = self.superseded
            self.checks += 1
            self.checked.set()
            if self.superseded and self.exit_when_superseded and self._drained():
                log.info("drained after being superseded; exiting")
                if self.on_exit is not None:
                    self.on_exit()
                return
            deadline = min(now + timedelta(seconds=CURRENT_CHECK_SECONDS), next_beat)
            await clock.sleep_until(deadline, changed)

    def _drained(self) -> bool:
        busy_workers = self.workers is not None and bool(self.workers.inflight)
        active_scheduler = self.scheduler is not None and self.scheduler.active
        return not busy_workers and not active_scheduler

    async def stop(self) -> None:
        """A graceful stop: hand the scheduler over and leave the registry at once, then
        let running attempts finish."""
        self.stop_event.set()
        self.notifier.triggers.set()
        self.notifier.invocations.set()
        self.notifier.leadership.set()
        if self.sender is not None:
            self.sender.wake.set()
        # The heartbeat stops before the process leaves the registry (a late beat would
        # put it back), and the scheduler loop before the lease is given up.
        await _finish(self._watch_task, "the heartbeat")
        await _finish(self._scheduler_task, "the scheduler loop")
        await _finish(self._pruner_task, "the pruner")
        # Leave the registry first: when this was the last process of the newest
        # deployment, an older one is current the moment the lease is free.
        if self.process is not None:
            try:
                await asyncio.to_thread(processes.deregister, self.ctx, self.process.id)
            except Exception:  # its row expires by itself
                log.exception("could not leave the process registry")
        if self.scheduler is not None:
            await self.scheduler.stop()
        await _finish(self._worker_task, "the worker pool")
        await _finish(self._sender_task, "the notification sender")
        if self.targets is not None:
            await self.targets.close()


async def _finish(task: asyncio.Task[None] | None, what: str) -> None:
    if task is None:
        return
    try:
        await task
    except Exception:  # a crashed loop must not block shutdown
        log.exception(f"{what} failed during shutdown")
