"""The scheduler loop: sleep until the earliest ``next_run_at`` or a wake-up, then
dispatch everything due (SPEC §4)."""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime, timedelta

from tickwork import metrics
from tickwork.clock import pause
from tickwork.logging import get_logger
from tickwork.services import backfills, control, dispatch, health, leadership
from tickwork.services.context import Context
from tickwork.services.leadership import Fence, Superseded

log = get_logger("tickwork.scheduler")

ERROR_BACKOFF_SECONDS = (0.5, 1, 2, 5, 10)
# Processes sharing one SQLite file have no NOTIFY between them: a standby reads the lease
# this often, so a released lease is taken within about this long. (On PostgreSQL the
# release wakes standbys at once; their poll is only the fallback.)
SQLITE_STANDBY_POLL_SECONDS = 0.5
# How often the active scheduler looks for triggers that became late (SPEC §11).
LATE_CHECK_SECONDS = 5.0


class Scheduler:
    """One scheduler per process; at most one of them is active per database."""

    def __init__(
        self, ctx: Context, wake: asyncio.Event, became_active: asyncio.Event | None = None
    ) -> None:
        self.ctx = ctx
        self.wake = wake
        # Set whenever this scheduler takes the lease (its deployment is current then).
        self.became_active = became_active or asyncio.Event()
        self.run_id = "run_" + secrets.token_hex(8)
        self.fence: Fence | None = None
        self.ticks = 0
        self.ticked = asyncio.Event()
        self._restart_lock = asyncio.Lock()
        self._late_checked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.fence is not None

    async def take_over(self, *, force: bool = False) -> Fence | None:
        self.fence = await asyncio.to_thread(leadership.acquire, self.ctx, self.run_id, force=force)
        if self.fence is not None:
            log.info("scheduler active", run_id=self.run_id, generation=self.fence.generation)
            self.became_active.set()
            self.wake.set()
        return self.fence

    async def restart(self) -> tuple[str, str | None]:
        """Take the lease at once under a new run id, whoever holds it (the deploy
        restart call). Returns the new run id and the one it replaced."""
        async with self._restart_lock:
            previous = await asyncio.to_thread(leadership.state, self.ctx)
            self.run_id = "run_" + secrets.token_hex(8)
            self.fence = await asyncio.to_thread(
                leadership.acquire, self.ctx, self.run_id, force=True
            )
            assert self.fence is not None
            log.info(
                "scheduler restarted",
                run_id=self.run_id,
                previous_run_id=previous.run_id,
                generation=self.fence.generation,
            )
            self.wake.set()
            return self.run_id, previous.run_id

    async def tick(self, now: datetime | None = None) -> int:
        """Dispatch everything due at ``now``, batch by batch. Returns invocations created."""
        if self.fence is None:
            return 0
        now = now or self.ctx.clock.now()
        # Pauses of projects that end now first: their triggers dispatch in this tick.
        await asyncio.to_thread(control.resume_due_projects, self.ctx, now)
        created = 0
        while True:
            result = await asyncio.to_thread(
                dispatch.dispatch_batch,
                self.ctx,
                now,
                self.ctx.settings.scheduler_batch_size,
                self.fence,
            )
            created += result.created
            if not result.full_batch:
                break
        # Backfills after the schedule: a due slot never waits for a backfill's batch.
        created += await asyncio.to_thread(backfills.dispatch_backfills, self.ctx, now, self.fence)
        await self._check_late(now)
        return created

    async def _check_late(self, now: datetime) -> None:
        """Tell late triggers (after dispatch, at most every LATE_CHECK_SECONDS); its
        failure never stops dispatch."""
        last = self._late_checked_at
        if last is not None and now - last < timedelta(seconds=LATE_CHECK_SECONDS):
            return
        self._late_checked_at = now
        try:
            await asyncio.to_thread(health.check_late, self.ctx, now)
        except Exception:
            log.exception("checking for late triggers failed; checking again later")

    async def run(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            self.wake.clear()
            fence = self.fence
            try:
                if fence is None:
                    fence = await self.take_over()
                await self.tick()
                deadline = await self._next_deadline()
                failures = 0
            except Superseded:
                # A restart in this process may have replaced the fence meanwhile.
                if self.fence is fence:
                    log.warning("scheduler superseded; standing by", run_id=self.run_id)
                    self.fence = None
                deadline = self._standby_deadline()
            except Exception:  # the loop must outlive a database outage
                delay = ERROR_BACKOFF_SECONDS[min(failures, len(ERROR_BACKOFF_SECONDS) - 1)]
                failures += 1
                log.exception("scheduler tick failed; retrying", retry_in_seconds=delay)
                await pause(delay)
                continue
            self.ticks += 1
            metrics.ticks.inc()
            metrics.scheduler_active.set(1 if self.fence is not None else 0)
            self.ticked.set()
            if stop.is_set():
                break
            # Whoever sets ``stop`` sets ``wake`` too.
            await self.ctx.clock.sleep_until(deadline, self.wake)

    async def _next_deadline(self) -> datetime:
        now = self.ctx.clock.now()
        settings = self.ctx.settings
        cap = now + timedelta(seconds=settings.scheduler_max_sleep_seconds)
        if self.fence is None:
            return self._standby_deadline()
        # Renew the lease well before it runs out, even when nothing is due.
        cap = min(cap, now + timedelta(seconds=settings.scheduler_lease_seconds / 3))
        earliest = await asyncio.to_thread(dispatch.earliest_due, self.ctx)
        if await asyncio.to_thread(backfills.wants_poll, self.ctx):
            cap = min(cap, now + timedelta(seconds=backfills.POLL_SECONDS))
        return cap if earliest is None else min(cap, earliest)

    def _standby_deadline(self) -> datetime:
        poll = max(self.ctx.settings.scheduler_lease_seconds / 3, 0.2)
        if not self.ctx.db.is_postgres:
            poll = min(poll, SQLITE_STANDBY_POLL_SECONDS)
        return self.ctx.clock.now() + timedelta(seconds=poll)

    async def stop(self) -> None:
        """Give the lease up, so a standby takes over at once."""
        if self.fence is not None:
            fence, self.fence = self.fence, None
            try:
                released = await asyncio.to_thread(leadership.release, self.ctx, fence)
            except Exception:  # shutting down; the lease just expires
                log.exception("could not release the scheduler lease")
                return
            if released:
                log.info("scheduler lease released", run_id=self.run_id)
