"""One tickwork process's background roles: the scheduler and the worker pool."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from tickwork import metrics
from tickwork.logging import get_logger
from tickwork.runtime.notify import LocalNotifier
from tickwork.runtime.scheduler import Scheduler
from tickwork.runtime.workers import Targets, WorkerPool
from tickwork.services import leadership
from tickwork.services.context import Context
from tickwork.targets.python import HandlerRegistry

log = get_logger("tickwork.runtime")

ROLES = ("api", "scheduler", "worker")


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
        self.exit_when_superseded = exit_when_superseded
        self.on_exit = on_exit
        self.superseded = False
        self.stop_event = asyncio.Event()
        self.scheduler = Scheduler(ctx, notifier.triggers) if "scheduler" in self.roles else None
        self.targets = Targets(ctx, registry) if "worker" in self.roles else None
        self.workers = WorkerPool(ctx, notifier, self.targets) if self.targets is not None else None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # Database calls and sync handlers both run in threads: size the pool so that
        # handlers which block (up to the worker concurrency) never starve the database.
        workers = self.ctx.settings.worker_concurrency if self.workers is not None else 0
        loop.set_default_executor(ThreadPoolExecutor(max_workers=workers + 16))
        self.notifier.bind(loop)
        await asyncio.to_thread(leadership.register_deployment, self.ctx)
        if self.scheduler is not None:
            self._tasks.append(asyncio.create_task(self.scheduler.run(self.stop_event)))
        if self.workers is not None:
            self._tasks.append(asyncio.create_task(self.workers.run(self.stop_event)))
        self._tasks.append(asyncio.create_task(self._watch()))

    async def _watch(self) -> None:
        """Beat the deployment's heart; notice when a newer deployment takes over."""
        clock = self.ctx.clock
        next_beat = clock.now()
        while not self.stop_event.is_set():
            now = clock.now()
            try:
                if now >= next_beat:
                    await asyncio.to_thread(leadership.register_deployment, self.ctx)
                    next_beat = now + timedelta(seconds=leadership.HEARTBEAT_SECONDS)
                current = await asyncio.to_thread(leadership.is_current, self.ctx)
            except Exception:
                log.exception("deployment heartbeat failed; retrying")
                current = not self.superseded
            if self.superseded != (not current):
                self.superseded = not current
                if self.superseded:
                    log.warning("a newer deployment took over: draining (no new attempts)")
                else:
                    log.info("this deployment takes new work again")
            metrics.superseded.set(1 if self.superseded else 0)
            if self.workers is not None:
                self.workers.superseded = self.superseded
            if self.superseded and self.exit_when_superseded and self._drained():
                log.info("drained after being superseded; exiting")
                if self.on_exit is not None:
                    self.on_exit()
                return
            await clock.sleep_until(now + timedelta(seconds=1), self.stop_event)

    def _drained(self) -> bool:
        busy_workers = self.workers is not None and bool(self.workers.inflight)
        active_scheduler = self.scheduler is not None and self.scheduler.active
        return not busy_workers and not active_scheduler

    async def stop(self) -> None:
        """Stop claiming; let running attempts finish; give the scheduler lease up."""
        self.stop_event.set()
        self.notifier.triggers.set()
        self.notifier.invocations.set()
        for task in self._tasks:
            try:
                await task
            except Exception:  # a crashed loop must not block shutdown
                log.exception("background task failed during shutdown")
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self.targets is not None:
            await self.targets.close()
