"""Who may dispatch: the scheduler lease and its fencing generation (SPEC §4)."""

from __future__ import annotations

from datetime import datetime, timedelta

from tickwork.services.context import Context
from tickwork.services.dispatch import Fence
from tickwork.storage.records import SchedulerState
from tickwork.storage.sql import Tx

# A deployment whose processes have not beaten their heart for this long is gone: it no
# longer holds back older deployments (a new release whose processes all crashed lets
# the previous one carry on).
DEPLOYMENT_STALE = timedelta(seconds=30)
HEARTBEAT_SECONDS = 5.0


def register_deployment(ctx: Context) -> None:
    """Record this process's deployment (first start kept) and beat its heart."""
    with ctx.db.write() as tx:
        tx.upsert_deployment(ctx.settings.deployment_id, ctx.settings.version, ctx.clock.now())


def current_deployment(tx: Tx, now: datetime) -> str | None:
    return tx.current_deployment(now - DEPLOYMENT_STALE)


def is_current(ctx: Context) -> bool:
    """Whether this process's deployment is the one that takes new work."""
    with ctx.db.read() as tx:
        current = current_deployment(tx, ctx.clock.now())
    return current in (None, ctx.settings.deployment_id)


def acquire(ctx: Context, run_id: str, *, force: bool = False) -> Fence | None:
    """Become the active scheduler if allowed; returns the fence to dispatch with.

    Allowed when the lease is free or expired, when the holder belongs to an older
    deployment than this process's (a new deployment supersedes the old one as it
    starts), or when ``force`` (the restart call). Every takeover raises the generation,
    which fences out the previous holder's next dispatch.
    """
    now = ctx.clock.now()
    lease = ctx.settings.scheduler_lease_seconds
    with ctx.db.write() as tx:
        state = tx.scheduler_state(for_update=True)
        if state.run_id == run_id and state.lease_expires_at and state.lease_expires_at > now:
            tx.write_scheduler_state(_renewed(state, now, lease))
            return Fence(run_id, state.generation, lease)
        free = (
            state.run_id is None
            or state.lease_expires_at is None
            or (state.lease_expires_at <= now)
        )
        newer = False
        if not free and state.deployment_id != ctx.settings.deployment_id:
            starts = {d.id: d.started_at for d in tx.list_deployments()}
            holder = starts.get(state.deployment_id or "")
            mine = starts.get(ctx.settings.deployment_id)
            newer = holder is None or (mine is not None and mine > holder)
        # A superseded deployment never takes the lease back while a newer one is alive,
        # even when the lease is free (between a crash and the newer standby's takeover).
        current = current_deployment(tx, now)
        if current not in (None, ctx.settings.deployment_id) and not force:
            return None
        if not (free or newer or force):
            return None
        generation = state.generation + 1
        tx.write_scheduler_state(
            SchedulerState(
                run_id=run_id,
                deployment_id=ctx.settings.deployment_id,
                generation=generation,
                lease_expires_at=now + timedelta(seconds=lease),
                heartbeat_at=now,
            )
        )
    return Fence(run_id, generation, lease)


def renew(ctx: Context, fence: Fence) -> bool:
    """Extend the lease; False when another scheduler has taken over."""
    now = ctx.clock.now()
    with ctx.db.write() as tx:
        return tx.hold_fence(
            fence.run_id, fence.generation, now, now + timedelta(seconds=fence.lease_seconds)
        )


def release(ctx: Context, fence: Fence) -> None:
    """Give the lease up at shutdown, so a standby takes over at once."""
    now = ctx.clock.now()
    with ctx.db.write() as tx:
        state = tx.scheduler_state(for_update=True)
        if state.run_id == fence.run_id and state.generation == fence.generation:
            tx.write_scheduler_state(
                SchedulerState(
                    run_id=state.run_id,
                    deployment_id=state.deployment_id,
                    generation=state.generation,
                    lease_expires_at=now,
                    heartbeat_at=now,
                )
            )


def state(ctx: Context) -> SchedulerState:
    with ctx.db.read() as tx:
        return tx.scheduler_state()


def _renewed(state: SchedulerState, now: datetime, lease: float) -> SchedulerState:
    return SchedulerState(
        run_id=state.run_id,
        deployment_id=state.deployment_id,
        generation=state.generation,
        lease_expires_at=now + timedelta(seconds=lease),
        heartbeat_at=now,
    )
