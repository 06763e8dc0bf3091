"""The pruner: retention (SPEC §11) on the active scheduler, one bounded step at a time.

It runs beside the scheduler loop in the same process and prunes only while that
scheduler holds the lease. Each step is one short transaction of at most
``retention_batch_size`` deletions chosen by an index range scan, and the loop hands the
event loop back between steps, so dispatch waits at most one step for the database
(SQLite) and never on PostgreSQL. Once a pass finds nothing more to delete the pruner
rests ``retention_interval_seconds``.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tickwork.logging import get_logger
from tickwork.runtime.scheduler import Scheduler
from tickwork.services import retention
from tickwork.services.context import Context

log = get_logger("tickwork.retention")

ERROR_BACKOFF_SECONDS = 5.0
# How soon a standby that became the active scheduler starts pruning.
STANDBY_POLL = timedelta(seconds=1)


class Pruner:
    def __init__(self, ctx: Context, scheduler: Scheduler) -> None:
        self.ctx = ctx
        self.scheduler = scheduler
        self.state = retention.PruneState()
        # Set after each pass (tests wait on it).
        self.passed = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        clock = self.ctx.clock
        rest = timedelta(seconds=self.ctx.settings.retention_interval_seconds)
        while not stop.is_set():
            if not self.scheduler.active:
                # A standby prunes nothing; a new leader starts a pass of its own.
                self.state = retention.PruneState()
                await clock.sleep_until(clock.now() + min(rest, STANDBY_POLL), stop)
                continue
            try:
                step = await asyncio.to_thread(
                    retention.prune_step, self.ctx, self.state, clock.now()
                )
            except Exception:  # an outage: the scheduler loop reports it too
                log.exception("retention step failed; retrying")
                self.state = retention.PruneState()
                await clock.sleep_until(
                    clock.now() + timedelta(seconds=ERROR_BACKOFF_SECONDS), stop
                )
                continue
            if step.invocations or step.audit_events:
                log.debug(
                    "history pruned",
                    invocations=step.invocations,
                    attempts=step.attempts,
                    audit_events=step.audit_events,
                )
            if step.more:
                # Each step ran in a thread of its own: the event loop (and dispatch,
                # waiting for the write lock) had its turn meanwhile.
                continue
            self.passed.set()
            await clock.sleep_until(clock.now() + rest, stop)
