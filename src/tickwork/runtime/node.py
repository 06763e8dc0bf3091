"""One tickwork process's background roles: the scheduler and the worker pool."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

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
    ) -> None:
        self.ctx = ctx
        self.notifier = notifier
        self.roles = set(roles)
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
