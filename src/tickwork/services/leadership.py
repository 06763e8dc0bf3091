"""Who may dispatch: the scheduler lease and its fencing generation (SPEC §4, §9).

The rules, all decided against the process registry (:mod:`tickwork.services.processes`):

- The *current* deployment is the newest one (by its first start) with a live process:
  for scheduling, with a live scheduler process, and for work, with a live worker
  process (so an API-only replica, or a release whose roles start one by one, never
  leaves the scheduler or the workers without a current deployment). Only its scheduler
  takes the lease and only its workers claim new attempts; older deployments drain.
- Within one deployment, one process holds the lease and the others stand by: a process
  of the same code starting, or restarting, never takes it from a live holder.
- The lease is taken when it is free or expired, or when its holder belongs to another
  deployment than the current one (a newer deployment supersedes the old one as it
  starts; an older one resumes once the newer one has no live process left).
- A graceful stop releases the lease and says so (in-process and by ``NOTIFY``), so a
  standby takes over at once instead of waiting for the lease to run out.

Every takeover raises the generation, which fences out the previous holder's next
dispatch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tickwork.services.context import Context
from tickwork.storage.ports import Leadership
from tickwork.storage.records import Deployment, Process, SchedulerState

SCHEDULER = "scheduler"


class Superseded(Exception):
    """This scheduler no longer holds the lease: another one took over."""


@dataclass(frozen=True)
class Fence:
    """The scheduler's claim on dispatch: its run id and fencing generation."""

    run_id: str
    generation: int
    lease_seconds: float


@dataclass(frozen=True, slots=True)
class Overview:
    """The scheduler lease, the current deployments and every recorded process, read in
    one transaction at ``now``."""

    now: datetime
    state: SchedulerState
    current: str | None
    scheduling: str | None
    deployments: list[Deployment]
    processes: list[Process]


def current_deployment(tx: Leadership, now: datetime, role: str = "worker") -> str | None:
    """The deployment whose processes of ``role`` take new work: the newest with a live
    process of that role (None: there is none)."""
    return tx.current_deployment_at(now, role)


def is_current(ctx: Context) -> bool:
    """Whether this process's deployment is the one whose workers take new work."""
    with ctx.db.read() as tx:
        current = current_deployment(tx, ctx.clock.now())
    return current in (None, ctx.settings.deployment_id)


def standing(ctx: Context) -> tuple[bool, bool]:
    """Whether this process's deployment is current (workers, scheduler)."""
    mine = ctx.settings.deployment_id
    now = ctx.clock.now()
    with ctx.db.read() as tx:
        work = current_deployment(tx, now)
        scheduling = current_deployment(tx, now, SCHEDULER)
    return work in (None, mine), scheduling in (None, mine)


def holds(state: SchedulerState, run_id: str, now: datetime) -> bool:
    """Whether ``run_id`` holds an unexpired lease."""
    return (
        state.run_id == run_id
        and state.lease_expires_at is not None
        and state.lease_expires_at > now
    )


def may_take(state: SchedulerState, now: datetime, mine: str, current: str | None) -> bool:
    """Whether a scheduler of deployment ``mine`` may take the lease from ``state``.

    ``current`` is the current deployment (None when no process is live).
    """
    if current not in (None, mine):
        return False  # a newer deployment is live: it schedules, this one drains
    free = state.run_id is None or state.lease_expires_at is None or state.lease_expires_at <= now
    # A live lease of this same deployment stays where it is (a standby); one of any
    # other deployment is taken over: that deployment is older, or has no live process.
    return free or state.deployment_id != mine


def acquire(ctx: Context, run_id: str, *, force: bool = False) -> Fence | None:
    """Become (or stay) the active scheduler if the rules allow; returns the fence to
    dispatch with. ``force`` (the restart call) takes the lease whoever holds it."""
    now = ctx.clock.now()
    mine = ctx.settings.deployment_id
    lease = ctx.settings.scheduler_lease_seconds
    if not force:
        # Standbys ask often: decide on a read, and write only to take or renew.
        with ctx.db.read() as tx:
            state = tx.scheduler_state()
            if not holds(state, run_id, now) and not may_take(
                state, now, mine, current_deployment(tx, now, SCHEDULER)
            ):
                return None
    with ctx.db.write() as tx:
        state = tx.scheduler_state(for_update=True)
        if holds(state, run_id, now):
            tx.write_scheduler_state(_renewed(state, now, lease))
            return Fence(run_id, state.generation, lease)
        if not force and not may_take(state, now, mine, current_deployment(tx, now, SCHEDULER)):
            return None
        generation = state.generation + 1
        tx.write_scheduler_state(
            SchedulerState(
                run_id=run_id,
                deployment_id=mine,
                generation=generation,
                lease_expires_at=now + timedelta(seconds=lease),
                heartbeat_at=now,
            )
        )
    return Fence(run_id, generation, lease)


def release(ctx: Context, fence: Fence) -> bool:
    """Give the lease up (a graceful stop) and wake the standbys, so one of them takes
    over at once. False when the lease was no longer ours."""
    now = ctx.clock.now()
    with ctx.db.write() as tx:
        state = tx.scheduler_state(for_update=True)
        if state.run_id != fence.run_id or state.generation != fence.generation:
            return False
        tx.write_scheduler_state(
            SchedulerState(
                run_id=None,
                deployment_id=state.deployment_id,
                generation=state.generation,
                lease_expires_at=None,
                heartbeat_at=now,
            )
        )
    ctx.notifier.leadership_changed()
    return True


def overview(ctx: Context) -> Overview:
    """What ``GET /api/v1/system/scheduler`` shows."""
    now = ctx.clock.now()
    with ctx.db.read() as tx:
        return Overview(
            now=now,
            state=tx.scheduler_state(),
            current=current_deployment(tx, now),
            scheduling=current_deployment(tx, now, SCHEDULER),
            deployments=tx.list_deployments(),
            processes=tx.list_processes(),
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
