"""An operator's control of scheduling: pause and resume a trigger or a whole project,
skip a trigger's coming slots (SPEC §10; the rules are in :mod:`tickwork.domain.control`).

``paused`` is the operator's and ``enabled`` the definition's: nothing here touches the
definition, so these writes keep the ref's revision, and a definition push keeps them.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from tickwork.domain import control
from tickwork.domain import schedule as sched
from tickwork.domain.slots import next_run_after
from tickwork.errors import ValidationError
from tickwork.logging import get_logger
from tickwork.services import audit, notifications
from tickwork.services.context import Context
from tickwork.services.resources import require_project
from tickwork.services.triggers import bounds_of, require_trigger, schedule_of, trigger_change
from tickwork.storage.ports import Store
from tickwork.storage.records import PENDING, Project, Trigger

log = get_logger("tickwork.control")

MAX_REASON = 1000
_CLEARED: dict[str, Any] = {
    "paused": False,
    "paused_reason": None,
    "paused_by": None,
    "paused_at": None,
    "paused_until": None,
}


def _check_pause(now: datetime, reason: object, until: datetime | None) -> str | None:
    if reason is not None:
        if not isinstance(reason, str):
            raise ValidationError("reason", "must be a string")
        if len(reason) > MAX_REASON:
            raise ValidationError(
                "reason", f"is {len(reason)} characters long; the limit is {MAX_REASON}"
            )
    if until is not None:
        if until.tzinfo is None or until.utcoffset() is None:
            raise ValidationError("until", "must be an instant with a UTC offset (e.g. ...Z)")
        if until <= now:
            raise ValidationError(
                "until",
                f"{sched.format_instant(until)} is not in the future; leave it out (or null) "
                f"to pause until resumed",
            )
    return reason


def _pause_values(
    now: datetime,
    before_paused_at: datetime | None,
    reason: str | None,
    until: datetime | None,
    by: str | None,
) -> dict[str, Any]:
    return {
        "paused": True,
        "paused_reason": reason,
        "paused_by": by,
        # Pausing a paused trigger changes its reason or end, not when it was paused.
        "paused_at": before_paused_at or now,
        "paused_until": None if until is None else until.astimezone(UTC),
    }


def pause_trigger(
    ctx: Context,
    tenant_id: str,
    project_id: str,
    agent_id: str | None,
    trigger_id: str,
    *,
    reason: str | None = None,
    until: datetime | None = None,
    cancel_pending: bool = False,
    paused_by: str | None = None,
) -> Trigger:
    """Pause: no slot is dispatched until the trigger is resumed, or until ``until``
    (then it resumes by itself). Running invocations go on; with ``cancel_pending``
    its pending ones are cancelled. Pausing a paused trigger updates its reason and end."""
    now = ctx.clock.now()
    reason = _check_pause(now, reason, until)
    cancelled: list[str] = []
    with ctx.db.write() as tx:
        current = require_trigger(tx, tenant_id, project_id, agent_id, trigger_id)
        updated = pause_in(tx, current, now, reason=reason, until=until, paused_by=paused_by)
        if cancel_pending:
            ids = tx.active_invocation_ids([current.id], statuses=[PENDING])
            cancelled = tx.cancel_invocations(ids, now, "cancelled: the trigger was paused")
    log.info(
        "trigger paused",
        tenant=tenant_id,
        project=project_id,
        trigger=trigger_id,
        until=updated.paused_until,
        cancelled=len(cancelled),
    )
    ctx.notifier.invocations_cancelled(cancelled)
    ctx.notifier.triggers_changed()
    return updated


def pause_in(
    tx: Store,
    current: Trigger,
    now: datetime,
    *,
    reason: str | None,
    until: datetime | None,
    paused_by: str | None,
) -> Trigger:
    """(write, inside the caller's transaction) Pause ``current`` as :func:`pause_trigger`
    does, and tell the project's notification targets (``trigger.paused``). The one way
    a trigger is paused, by an operator or by tickwork (``pause_after_failures``)."""
    values = _pause_values(now, current.paused_at, reason, until, paused_by)
    values |= {
        # The scheduler looks at it again only when the pause ends.
        "next_run_at": values["paused_until"] if current.enabled else None,
        "rearm": values["paused_until"] is not None and current.enabled,
        "updated_at": now,
    }
    tx.update_trigger(current.id, values)
    updated = replace(current, **values)
    notifications.trigger_event(tx, "trigger.paused", updated, now)
    # By tickwork itself when pause_after_failures pauses it (outside any request).
    audit.record(tx, now, trigger_change("trigger.pause", current, updated))
    return updated


def resume_trigger(
    ctx: Context, tenant_id: str, project_id: str, agent_id: str | None, trigger_id: str
) -> Trigger:
    """Resume a paused trigger from now on: the slots of the paused period are never
    run; the next one is its first slot after now (within its bounds). A trigger that
    is not paused is answered as it is."""
    now = ctx.clock.now()
    with ctx.db.read() as tx:
        before = require_trigger(tx, tenant_id, project_id, agent_id, trigger_id)
    if not before.paused:
        return before
    first = _first_after(before, now)  # computed outside the write transaction
    with ctx.db.write() as tx:
        current = require_trigger(tx, tenant_id, project_id, agent_id, trigger_id)
        if not current.paused:
            return current
        if current != before:
            first = _first_after(current, now)
        values = _CLEARED | {
            "next_run_at": first if current.enabled else None,
            "rearm": False,
            "updated_at": now,
        }
        tx.update_trigger(current.id, values)
        updated = replace(current, **values)
        audit.record(tx, now, trigger_change("trigger.resume", current, updated))
    log.info("trigger resumed", tenant=tenant_id, project=project_id, trigger=trigger_id)
    ctx.notifier.triggers_changed()
    return updated


def _first_after(trigger: Trigger, now: datetime) -> datetime | None:
    schedule = schedule_of(trigger)
    first = next_run_after(schedule, now)
    return control.bounded_first(schedule, first, bounds_of(trigger))


def skip_trigger(
    ctx: Context,
    tenant_id: str,
    project_id: str,
    agent_id: str | None,
    trigger_id: str,
    count: int,
) -> Trigger:
    """Record the trigger's next ``count`` slots ``skipped`` (reason ``skipped by
    request``) when their time comes, instead of running them. The count replaces any
    earlier one (0 cancels the skips), so asking twice skips ``count`` slots, not twice
    as many. Skipped slots count towards ``max_runs``."""
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= control.MAX_SKIP:
        raise ValidationError("count", f"must be an integer from 0 to {control.MAX_SKIP}")
    now = ctx.clock.now()
    with ctx.db.write() as tx:
        current = require_trigger(tx, tenant_id, project_id, agent_id, trigger_id)
        values: dict[str, Any] = {"skip_remaining": count, "updated_at": now}
        tx.update_trigger(current.id, values)
        updated = replace(current, **values)
        audit.record(tx, now, trigger_change("trigger.skip", current, updated))
    ctx.notifier.triggers_changed()
    return updated


# -- projects ------------------------------------------------------------------------------


def pause_project(
    ctx: Context,
    tenant_id: str,
    project_id: str,
    *,
    reason: str | None = None,
    until: datetime | None = None,
    cancel_pending: bool = False,
    paused_by: str | None = None,
) -> Project:
    """Pause a whole project: none of its triggers dispatches a slot while it is paused
    (the scheduler takes them off the schedule as they come due), and each keeps its own
    pause state. ``cancel_pending`` cancels the project's pending invocations."""
    now = ctx.clock.now()
    reason = _check_pause(now, reason, until)
    cancelled: list[str] = []
    with ctx.db.write() as tx:
        current = require_project(tx, tenant_id, project_id)
        values = _pause_values(now, current.paused_at, reason, until, paused_by)
        tx.set_project_pause(tenant_id, project_id, values)
        if cancel_pending:
            ids = tx.trigger_ids_in_scope(tenant_id, project_id)
            pending = tx.active_invocation_ids(ids, statuses=[PENDING])
            cancelled = tx.cancel_invocations(pending, now, "cancelled: the project was paused")
        updated = replace(current, **values)
        audit.record(tx, now, _project_change("project.pause", current, updated))
    log.info("project paused", tenant=tenant_id, project=project_id, until=values["paused_until"])
    ctx.notifier.invocations_cancelled(cancelled)
    ctx.notifier.triggers_changed()
    return updated


def resume_project(ctx: Context, tenant_id: str, project_id: str) -> Project:
    """Resume a paused project from now on: its triggers carry on from their first slot
    after now (those paused on their own stay paused); nothing of the paused period runs.
    A project that is not paused is answered as it is."""
    now = ctx.clock.now()
    with ctx.db.write() as tx:
        current = require_project(tx, tenant_id, project_id)
        if not current.paused:
            return current
        updated = _resume_project(tx, current, now)
        audit.record(tx, now, _project_change("project.resume", current, updated))
    ctx.notifier.triggers_changed()
    return updated


def _project_change(action: str, before: Project, after: Project) -> audit.Change:
    return audit.Change(
        before.tenant_id,
        before.id,
        action,
        "project",
        before.id,
        audit.snapshot(before),
        audit.snapshot(after),
    )


def _resume_project(tx: Store, current: Project, now: datetime) -> Project:
    tx.set_project_pause(current.tenant_id, current.id, _CLEARED)
    woken = tx.rearm_project_triggers(current.tenant_id, current.id, now)
    log.info("project resumed", tenant=current.tenant_id, project=current.id, triggers=woken)
    return replace(current, **_CLEARED)


def resume_due_projects(ctx: Context, now: datetime, limit: int = 100) -> int:
    """Resume the projects whose pause ends by ``now`` (the scheduler's part); returns
    how many it resumed."""
    with ctx.db.read() as tx:
        due = tx.projects_to_resume(now, limit)
    resumed = 0
    for tenant_id, project_id in due:
        with ctx.db.write() as tx:
            current = tx.get_project(tenant_id, project_id)
            if current is None or not current.paused or current.paused_until is None:
                continue
            if current.paused_until > now:
                continue
            # From the end of the pause, not from now: a late scheduler does not lose
            # the slots after the pause (catch-up applies to them as usual).
            _resume_project(tx, current, current.paused_until)
            resumed += 1
    if resumed:
        ctx.notifier.triggers_changed()
    return resumed
