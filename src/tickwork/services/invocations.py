"""Reading, cancelling and rerunning invocations; what runs next in a project."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from tickwork.domain import control
from tickwork.domain.ids import new_id
from tickwork.domain.invocations import Origin
from tickwork.errors import Conflict, NotFound, ValidationError
from tickwork.services import audit
from tickwork.services.context import Context
from tickwork.services.resources import require_project
from tickwork.services.triggers import (
    control_of,
    invocation_row,
    require_enabled,
    require_trigger,
    schedule_of,
)
from tickwork.storage.ports import History, InvocationFilter
from tickwork.storage.records import (
    FINAL_STATUSES,
    ORIGINS,
    STATUSES,
    Attempt,
    Invocation,
    Trigger,
)

MAX_UPCOMING = 200


def require_invocation(
    tx: History, tenant_id: str, project_id: str, trigger_id: str | None, invocation_id: str
) -> Invocation:
    inv = tx.find_invocation(tenant_id, project_id, invocation_id, trigger_id)
    if inv is None:
        raise NotFound(f"invocation {invocation_id!r} not found")
    return inv


def list_invocations(
    ctx: Context,
    tenant_id: str,
    project_id: str,
    where: InvocationFilter,
    *,
    before: str | None = None,
    limit: int = 50,
) -> list[Invocation]:
    """The project's invocations, newest first, filtered. A status or origin that does
    not exist, or an agent or ref the project does not have, is an unknown filter value
    (422 naming it); a trigger id is not checked, since invocations outlive their
    trigger."""
    checks = (("status", where.statuses, STATUSES), ("origin", where.origins, ORIGINS))
    for name, given, known in checks:
        for value in given or ():
            if value not in known:
                raise ValidationError(
                    f"query.{name}", f"{value!r} is not one of {', '.join(known)}"
                )
    with ctx.db.read() as tx:
        require_project(tx, tenant_id, project_id)
        ref, agent_id = where.ref, where.agent_id
        if ref is not None and tx.get_ref(tenant_id, project_id, ref) is None:
            raise ValidationError("query.ref", f"project {project_id!r} has no ref {ref!r}")
        if agent_id is not None and not tx.agent_exists(tenant_id, project_id, agent_id, ref):
            on = f"on ref {ref!r}" if ref is not None else "on any ref"
            raise ValidationError(
                "query.agent", f"project {project_id!r} has no agent {agent_id!r} {on}"
            )
        return tx.list_invocations(tenant_id, project_id, where, before=before, limit=limit)


def get_invocation(
    ctx: Context, tenant_id: str, project_id: str, trigger_id: str | None, invocation_id: str
) -> tuple[Invocation, list[Attempt]]:
    with ctx.db.read() as tx:
        inv = require_invocation(tx, tenant_id, project_id, trigger_id, invocation_id)
        return inv, tx.list_attempts(inv.id)


def cancel_invocation(
    ctx: Context, tenant_id: str, project_id: str, trigger_id: str | None, invocation_id: str
) -> Invocation:
    """Pending: cancelled at once. Running: cancelled now, and its attempt is stopped
    within about a second. Already final: 409."""
    with ctx.db.write() as tx:
        inv = require_invocation(tx, tenant_id, project_id, trigger_id, invocation_id)
        if inv.status in FINAL_STATUSES:
            raise Conflict(f"invocation is already {inv.status}")
        tx.cancel_invocations([inv.id], ctx.clock.now(), "cancelled by request")
        updated = tx.get_invocation(inv.id)
        assert updated is not None
        change = audit.Change(
            tenant_id,
            project_id,
            "invocation.cancel",
            "invocation",
            inv.id,
            {"status": inv.status},
            {"status": updated.status},
        )
        audit.record(tx, ctx.clock.now(), change)
    ctx.notifier.invocations_cancelled([inv.id])
    return updated


def rerun_invocation(
    ctx: Context,
    tenant_id: str,
    project_id: str,
    agent_id: str | None,
    trigger_id: str,
    invocation_id: str,
) -> Invocation:
    """A new invocation (origin ``rerun``) that repeats a finished one: the same slot
    (``scheduled_for``) and payload snapshot, executed by the workers like any other run,
    with the trigger's retries and timeout and the agent as it is at the ref's head when
    it runs. Only a final invocation can be rerun, and only while its trigger is
    enabled (409 otherwise)."""
    now = ctx.clock.now()
    with ctx.db.write() as tx:
        trigger = require_trigger(tx, tenant_id, project_id, agent_id, trigger_id)
        original = require_invocation(tx, tenant_id, project_id, trigger_id, invocation_id)
        if original.status not in FINAL_STATUSES:
            *others, last = [s for s in STATUSES if s in FINAL_STATUSES]
            finals = f"{', '.join(others)} or {last}"
            raise Conflict(
                f"invocation {original.id} is {original.status}; only a finished "
                f"invocation ({finals}) can be rerun"
            )
        require_enabled(trigger, "rerunning its invocations")
        new_inv = new_id("inv", now)
        row = invocation_row(
            trigger,
            origin=Origin.RERUN,
            scheduled_for=original.scheduled_for,
            key=f"rerun:{trigger.id}:{new_inv}",
            now=now,
            not_before=now,
            invocation_id=new_inv,
            payload=original.payload,
            rerun_of=original.id,
        )
        tx.insert_invocations([row])
        created = tx.get_invocation(new_inv)
        assert created is not None
        change = audit.Change(
            tenant_id,
            project_id,
            "invocation.rerun",
            "invocation",
            original.id,
            None,
            {"invocation_id": new_inv},
        )
        audit.record(tx, now, change)
    ctx.notifier.invocations_ready()
    return created


@dataclass(frozen=True)
class UpcomingRun:
    """One run a project can expect. ``kind`` is ``scheduled`` (a slot the scheduler has
    yet to dispatch; ``invocation`` is None) or ``pending`` (an invocation waiting for a
    worker: a dispatched slot, a run now, a rerun or a retry) or ``excluded`` (a slot its
    calendar skips, with the ``reason``). ``at`` orders the list:
    the slot itself for a scheduled run (its jitter, if any, is drawn at dispatch), the
    invocation's ``not_before`` for a pending one."""

    kind: str
    at: datetime
    scheduled_for: datetime
    trigger: Trigger | None
    invocation: Invocation | None
    # Why its calendar skips (kind ``excluded``) or shifts a scheduled slot.
    reason: str | None = None

    @property
    def sort_key(self) -> tuple[datetime, str, str]:
        owner = self.invocation.id if self.invocation else ""
        return (self.at, self.trigger.id if self.trigger else "", owner)


def upcoming_runs(
    ctx: Context, tenant_id: str, project_id: str, limit: int
) -> tuple[datetime, list[UpcomingRun]]:
    """The next ``limit`` runs of the project, soonest first: the fire instants of every
    scheduled trigger merged with the pending invocations; with the instant they were
    computed at.

    Only the ``limit`` triggers that fire soonest can contribute (every other trigger's
    first slot comes after all of theirs), and each instant is computed only when it is
    the next one out of the merge, so the cost is bounded by ``limit`` whatever the
    number of triggers or how often they fire. A trigger behind schedule shows its due
    slot once, then slots after now (catch-up decides what happens to the ones between).
    """
    if isinstance(limit, bool) or not 1 <= limit <= MAX_UPCOMING:
        raise ValidationError("limit", f"must be between 1 and {MAX_UPCOMING}")
    now = ctx.clock.now()
    with ctx.db.read() as tx:
        project = require_project(tx, tenant_id, project_id)
        # While the project is paused none of its triggers dispatches a slot.
        triggers = [] if project.paused else tx.scheduled_triggers(tenant_id, project_id, limit)
        pending = tx.pending_invocations(tenant_id, project_id, limit)
    runs = [UpcomingRun("pending", inv.not_before, inv.scheduled_for, None, inv) for inv in pending]
    streams = [_slots(trigger, now) for trigger in triggers]
    merged = heapq.merge(*streams, key=lambda run: run.sort_key)
    scheduled = [run for _, run in zip(range(limit), merged, strict=False)]
    return now, sorted(runs + scheduled, key=lambda run: run.sort_key)[:limit]


def _slots(trigger: Trigger, now: datetime) -> Iterator[UpcomingRun]:
    """The trigger's coming slots that will run, lazily: its next slot (``next_run_at``,
    or for a wake-up the first slot at or after it), then the slots after
    ``max(next_run_at, now)``, leaving out those skipped by request and ending at its
    bounds (:func:`tickwork.domain.control.coming_slots`)."""
    assert trigger.next_run_at is not None
    try:
        schedule = schedule_of(trigger)
    except ValidationError:  # no longer computable: the scheduler will disable it
        if not (trigger.rearm or trigger.paused):
            yield _scheduled(trigger, trigger.next_run_at)
        return
    state = control_of(trigger)
    try:
        first = control.next_slot_of(schedule, trigger.next_run_at, state)
        for slot, skipped in control.coming(schedule, first, state, gap_until=now):
            if slot.status == "skip":
                yield UpcomingRun("excluded", slot.at, slot.at, trigger, None, slot.reason)
            elif not skipped:
                yield UpcomingRun("scheduled", slot.at, slot.at, trigger, None, slot.reason)
    except (ValidationError, ValueError, OverflowError):  # the end of representable time
        return


def _scheduled(trigger: Trigger, slot: datetime) -> UpcomingRun:
    return UpcomingRun("scheduled", slot, slot, trigger, None)


LOAD_MINUTES = 24 * 60
# A trigger firing more often than once a second would cost the chart more than it tells.
_MAX_SLOTS_PER_TRIGGER = LOAD_MINUTES * 60


def load_by_minute(
    ctx: Context, tenant_id: str, project_id: str, minutes: int = LOAD_MINUTES
) -> tuple[datetime, list[int]]:
    """How many slots the project's triggers have in each of the next ``minutes`` whole
    minutes (the first is the one now is in), with that minute's start: the herds at
    popular minutes (09:00, the top of the hour) stand out. A paused project has none."""
    if isinstance(minutes, bool) or not 1 <= minutes <= 7 * LOAD_MINUTES:
        raise ValidationError("minutes", f"must be between 1 and {7 * LOAD_MINUTES}")
    now = ctx.clock.now()
    start = now.replace(second=0, microsecond=0)
    end = start + timedelta(minutes=minutes)
    with ctx.db.read() as tx:
        project = require_project(tx, tenant_id, project_id)
        triggers = [] if project.paused else tx.scheduled_triggers(tenant_id, project_id, 100_000)
    counts = [0] * minutes
    for trigger in triggers:
        for seen, run in enumerate(_slots(trigger, now)):
            if run.at >= end or seen >= _MAX_SLOTS_PER_TRIGGER:
                break
            if run.at >= start:
                counts[int((run.at - start).total_seconds() // 60)] += 1
    return start, counts
