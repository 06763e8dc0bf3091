"""Scheduled triggers: create, change, delete, preview, run now.

One module, longer than most: create, change, delete, preview and run now all go through
the trigger specification (``domain/trigger_spec.py``) and the same row conversions,
which this module holds once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from tickwork.domain import control, rate
from tickwork.domain import schedule as sched
from tickwork.domain.control import Bounds, Control
from tickwork.domain.health import HEALTHS
from tickwork.domain.ids import new_id
from tickwork.domain.invocations import Origin
from tickwork.domain.names import check_ref
from tickwork.domain.slots import CalendarSchedule, Slot, Timing, describe_timing
from tickwork.domain.trigger_spec import (
    BOUND_FIELDS,
    DEFAULTS,
    EDITABLE,
    KINDS,
    MAX_MESSAGE_BYTES,
    SCHEDULE_FIELDS,
    NextRuns,
    build_schedule,
    check_fields,
    check_payload,
    fill_rrule_start,
    validate_fields,
)
from tickwork.errors import Conflict, NameConflict, NotFound, ValidationError
from tickwork.services import audit, etags, quotas
from tickwork.services.context import Context
from tickwork.services.resources import cancel_for_triggers, require_agent, require_project
from tickwork.storage.ports import (
    Catalog,
    HealthFilter,
    NewInvocation,
    Store,
    TriggerFilter,
    UsageDay,
)
from tickwork.storage.records import PENDING, Invocation, Trigger


def bounds_of(trigger: Trigger) -> Bounds:
    return Bounds(trigger.starts_at, trigger.ends_at, trigger.remaining_runs)


def control_of(trigger: Trigger) -> Control:
    """The trigger's control state (pause, skips, bounds) as the scheduler reads it."""
    return Control(
        paused=trigger.paused,
        paused_until=trigger.paused_until,
        rearm=trigger.rearm,
        skip_remaining=trigger.skip_remaining,
        bounds=bounds_of(trigger),
    )


def armed(
    trigger: Trigger | None,
    schedule: Timing,
    first: datetime | None,
    bounds: Bounds,
    now: datetime,
) -> tuple[datetime | None, bool]:
    """``(next_run_at, rearm)`` for a trigger (re-)scheduled at ``now`` with ``first`` as
    its first run: moved into its bounds, and while it is paused the end of the pause (a
    wake-up; ``now`` when that has passed, so that nothing before now runs) or nothing."""
    if trigger is not None and trigger.paused:
        if trigger.paused_until is None:
            return None, False
        return max(trigger.paused_until, now), True
    return control.bounded_first(schedule, first, bounds), False


def schedule_of(trigger: Trigger) -> Timing:
    return build_schedule(
        {
            "cron_expression": trigger.cron_expression,
            "run_at": trigger.run_at,
            "rrule": trigger.rrule,
            "rrule_start": trigger.rrule_start,
            "calendar": trigger.calendar,
            "timezone": trigger.timezone,
            "starts_at": trigger.starts_at,
            "ends_at": trigger.ends_at,
        }
    )


def require_trigger(
    tx: Catalog, tenant_id: str, project_id: str, agent_id: str | None, trigger_id: str
) -> Trigger:
    trigger = tx.find_trigger(tenant_id, project_id, trigger_id, agent_id)
    if trigger is None:
        raise NotFound(f"scheduled trigger {trigger_id!r} not found")
    return trigger


def new_trigger(
    now: datetime,
    tenant_id: str,
    project_id: str,
    ref: str,
    agent_id: str,
    fields: Mapping[str, Any],
    created_by: str | None = None,
    *,
    next_runs: NextRuns | None = None,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
) -> Trigger:
    """A new trigger row, checked, with ``next_run_at`` computed from ``now``."""
    values, schedule = validate_fields(fields, max_message_bytes, created_at=now)
    if isinstance(schedule, sched.OnceSchedule):
        sched.check_run_at_not_past(schedule.run_at, now)
    first = (next_runs or NextRuns(now)).of(schedule)
    bounds = Bounds(values["starts_at"], values["ends_at"], values["max_runs"])
    _check_fires_within(schedule, first, bounds, now)
    first, _ = armed(None, schedule, first, bounds, now)
    return Trigger(
        id=new_id("trg", now),
        tenant_id=tenant_id,
        project_id=project_id,
        ref=ref,
        agent_id=agent_id,
        next_run_at=first if values["enabled"] else None,
        last_error=None,
        created_by=created_by,
        created_at=now,
        updated_at=now,
        slots_per_day=rate.slots_per_day(schedule),
        remaining_runs=values["max_runs"],
        **{k: values[k] for k in EDITABLE},
    )


def _check_fires_within(
    schedule: Timing, first: datetime | None, bounds: Bounds, now: datetime
) -> None:
    """A new trigger whose bounds leave it no slot is refused, naming the bound."""
    if bounds.ends_at is not None and bounds.ends_at <= now:
        raise ValidationError(
            "ends_at",
            f"{sched.format_instant(bounds.ends_at)} is in the past: the trigger would never fire",
        )
    if first is not None and control.bounded_first(schedule, first, bounds) is None:
        field = "run_at" if isinstance(schedule, sched.OnceSchedule) else "ends_at"
        raise ValidationError(field, "leaves no slot between starts_at and ends_at")


def create_trigger(
    ctx: Context,
    tenant_id: str,
    project_id: str,
    agent_id: str,
    fields: Mapping[str, Any],
    created_by: str | None = None,
) -> Trigger:
    fields = dict(fields)
    ref = check_ref(fields.pop("ref", None) or "main")
    trigger = new_trigger(
        ctx.clock.now(),
        tenant_id,
        project_id,
        ref,
        agent_id,
        fields,
        created_by,
        max_message_bytes=ctx.settings.max_message_bytes,
    )
    with ctx.db.write() as tx:
        require_project(tx, tenant_id, project_id)
        require_agent(tx, tenant_id, project_id, ref, agent_id)
        require_unique_name(tx, trigger)
        adding = quotas.Change(triggers=1, slots_per_day=quotas.rate_of(trigger))
        quotas.check(ctx, tx, tenant_id, adding)
        tx.insert_trigger(trigger)
        # Triggers are part of the ref's definition: every write bumps its revision.
        tx.bump_ref(tenant_id, project_id, ref, trigger.created_at)
        audit.record(tx, trigger.created_at, trigger_change("trigger.create", None, trigger))
    ctx.notifier.triggers_changed()
    return trigger


def require_unique_name(tx: Store, trigger: Trigger) -> None:
    """409 when another trigger of the agent on the ref has the name ``trigger`` has
    (SPEC §10: names are unique per agent and ref; an index holds it too, for races)."""
    other = tx.trigger_named(
        trigger.tenant_id, trigger.project_id, trigger.ref, trigger.agent_id, trigger.name
    )
    if other is not None and other.id != trigger.id:
        raise NameConflict(
            [
                ValidationError(
                    "name",
                    f"agent {trigger.agent_id!r} already has a scheduled trigger named "
                    f"{trigger.name!r} on ref {trigger.ref!r} ({other.id}); names are unique "
                    "per agent and ref",
                )
            ]
        )


def get_trigger(
    ctx: Context, tenant_id: str, project_id: str, agent_id: str | None, trigger_id: str
) -> Trigger:
    with ctx.db.read() as tx:
        return require_trigger(tx, tenant_id, project_id, agent_id, trigger_id)


def list_triggers(
    ctx: Context,
    tenant_id: str,
    project_id: str,
    agent_id: str | None,
    ref: str | None,
    after: str | None,
    limit: int,
    health: str | None = None,
) -> list[Trigger]:
    """The agent's triggers (of one ``health``, if given), in id order."""
    where_ = _health_filter(ctx, health)
    with ctx.db.read() as tx:
        require_project(tx, tenant_id, project_id)
        if agent_id is not None and not tx.agent_exists(tenant_id, project_id, agent_id, ref):
            where = f" on ref {ref!r}" if ref is not None else ""
            raise NotFound(f"agent {agent_id!r} not found{where}")
        if where_ is not None:
            found = TriggerFilter(agent_id, ref, health=where_)
            return tx.search_triggers(tenant_id, project_id, found, after=after, limit=limit)
        return tx.list_triggers(
            tenant_id, project_id, ref=ref, agent_id=agent_id, after=after, limit=limit
        )


def _health_filter(ctx: Context, health: str | None) -> HealthFilter | None:
    """The filter of one health, late judged against now (422 for an unknown one)."""
    if health is None:
        return None
    if health not in HEALTHS:
        raise ValidationError("query.health", f"{health!r} is not one of {', '.join(HEALTHS)}")
    late_before = ctx.clock.now() - timedelta(seconds=ctx.settings.late_grace)
    return HealthFilter(health, late_before)


def search_triggers(
    ctx: Context,
    tenant_id: str,
    project_id: str,
    *,
    agent_id: str | None = None,
    ref: str | None = None,
    enabled: bool | None = None,
    name_contains: str | None = None,
    paused: bool | None = None,
    health: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> list[Trigger]:
    """The project's triggers across agents and refs, filtered; an agent or ref that the
    project does not have is an unknown filter value (422 naming it), and so is a
    health that is not one of :data:`tickwork.domain.health.HEALTHS`."""
    health_ = _health_filter(ctx, health)
    with ctx.db.read() as tx:
        require_project(tx, tenant_id, project_id)
        if ref is not None and tx.get_ref(tenant_id, project_id, ref) is None:
            raise ValidationError("query.ref", f"project {project_id!r} has no ref {ref!r}")
        if agent_id is not None and not tx.agent_exists(tenant_id, project_id, agent_id, ref):
            where = f"on ref {ref!r}" if ref is not None else "on any ref"
            raise ValidationError(
                "query.agent", f"project {project_id!r} has no agent {agent_id!r} {where}"
            )
        where_ = TriggerFilter(agent_id, ref, enabled, name_contains, paused, health_)
        return tx.search_triggers(tenant_id, project_id, where_, after=after, limit=limit)


def last_runs(ctx: Context, triggers: list[Trigger]) -> dict[str, Invocation]:
    """Each trigger's last run (see :meth:`tickwork.storage.ports.Lookups.last_runs`)."""
    if not triggers:
        return {}
    with ctx.db.read() as tx:
        return tx.last_runs([t.id for t in triggers])


def update_trigger(
    ctx: Context,
    tenant_id: str,
    project_id: str,
    agent_id: str | None,
    trigger_id: str,
    patch: Mapping[str, Any],
    *,
    if_match: str | None = None,
) -> Trigger:
    """Apply a partial update (see :func:`apply_update`); with ``if_match``, only to the
    version of the trigger that ETag names (412 otherwise)."""
    now = ctx.clock.now()
    next_runs = NextRuns(now)
    with ctx.db.read() as tx:
        before = require_trigger(tx, tenant_id, project_id, agent_id, trigger_id)
    # The new schedule's first run, computed before the write transaction (a trigger
    # changed meanwhile is computed inside it, as a fallback).
    prepare_update(before, patch, next_runs)
    with ctx.db.write() as tx:
        if any(field in patch for field in quotas.RATE_FIELDS):
            quotas.lock(ctx, tx, tenant_id)  # before any row this update locks
        current = require_trigger(tx, tenant_id, project_id, agent_id, trigger_id)
        etags.require_match(if_match, etags.trigger_etag(current), f"trigger {trigger_id}")
        new_name = patch.get("name")
        if isinstance(new_name, str) and new_name != current.name:
            # An invalid field is reported first (422/413), then a name in use (409).
            check_fields(_merged(current, patch), ctx.settings.max_message_bytes)
            require_unique_name(tx, replace(current, name=new_name))
        updated, cancelled = apply_update(ctx, tx, current, patch, now=now, next_runs=next_runs)
        added = quotas.rate_of(updated) - quotas.rate_of(current)
        if added > 0:
            quotas.check(ctx, tx, tenant_id, quotas.Change(slots_per_day=added), written=True)
        if updated is not current:
            tx.bump_ref(tenant_id, project_id, current.ref, ctx.clock.now())
            audit.record(tx, now, trigger_change("trigger.update", current, updated))
    if updated is not current:
        ctx.notifier.invocations_cancelled(cancelled)
        ctx.notifier.triggers_changed()
    return updated


def _merged(current: Trigger, patch: Mapping[str, Any]) -> dict[str, Any]:
    """The editable fields of ``current`` with ``patch`` applied (null = the default)."""
    unknown = set(patch) - set(EDITABLE)
    if unknown:
        raise ValidationError(sorted(unknown)[0], "is not a field that can be changed")
    values = {k: getattr(current, k) for k in EDITABLE}
    for key, value in patch.items():
        values[key] = DEFAULTS.get(key) if value is None else value
    # Naming one kind of schedule replaces the others (and a rule's start goes with it).
    for kind in KINDS:
        if patch.get(kind) is not None:
            for other in KINDS:
                if other != kind and other not in patch:
                    values[other] = None
            if kind != "rrule" and "rrule_start" not in patch:
                values["rrule_start"] = None
    if patch.get("rrule") is not None and current.rrule is None and "rrule_start" not in patch:
        values["rrule_start"] = None  # the new rule starts at the trigger's creation
    fill_rrule_start(values, current.created_at)
    return values


def prepare_update(current: Trigger, patch: Mapping[str, Any], next_runs: NextRuns) -> None:
    """Compute, into ``next_runs``, the first run that :func:`apply_update` will need
    for this patch; invalid input is left for :func:`apply_update` to report."""
    try:
        values = _merged(current, patch)
        schedule = build_schedule(values)
        if any(key in patch for key in (*SCHEDULE_FIELDS, *BOUND_FIELDS)) or (
            values["enabled"] is True and not current.enabled
        ):
            next_runs.of(schedule)
    except ValidationError:
        return


def apply_update(
    ctx: Context,
    tx: Store,
    current: Trigger,
    patch: Mapping[str, Any],
    *,
    now: datetime | None = None,
    next_runs: NextRuns | None = None,
) -> tuple[Trigger, list[str]]:
    """Apply a partial update inside ``tx``. An explicit null restores a field's default.

    ``next_run_at`` is recomputed only when the schedule changes or the trigger is
    enabled, from now: re-enabling never runs the slots that passed while disabled.
    Disabling cancels the trigger's pending and running invocations. Returns the
    trigger as it now is (``current`` itself when nothing changed) and the ids of the
    invocations cancelled.
    """
    now = now or ctx.clock.now()
    next_runs = next_runs or NextRuns(now)
    values = _merged(current, patch)
    check_fields(values, ctx.settings.max_message_bytes)
    schedule = build_schedule(values)
    if isinstance(schedule, CalendarSchedule):
        values["calendar"] = schedule.calendar.to_json()
    values["slots_per_day"] = rate.slots_per_day(schedule)
    schedule_changed = any(
        key in patch and values[key] != getattr(current, key)
        for key in (*SCHEDULE_FIELDS, *BOUND_FIELDS)
    )
    if isinstance(schedule, sched.OnceSchedule):
        values["run_at"] = schedule.run_at
        if schedule_changed:
            sched.check_run_at_not_past(schedule.run_at, now)
    enabling = values["enabled"] and not current.enabled
    next_run_at, rearm = current.next_run_at, current.rearm
    if values["max_runs"] != current.max_runs:
        values["remaining_runs"] = control.remaining_after_change(
            current.max_runs, current.remaining_runs, values["max_runs"]
        )
    first = next_runs.of(schedule) if schedule_changed or enabling else None
    if not values["enabled"]:
        next_run_at, rearm = None, False
    elif schedule_changed or enabling:
        bounds = Bounds(
            values["starts_at"],
            values["ends_at"],
            values.get("remaining_runs", current.remaining_runs),
        )
        next_run_at, rearm = armed(current, schedule, first, bounds, now)
    changes = {k: v for k, v in values.items() if v != getattr(current, k)}
    if rearm != current.rearm:
        changes["rearm"] = rearm
    if not changes and next_run_at == current.next_run_at:
        return current, []
    cancelled: list[str] = []
    if current.enabled and not values["enabled"]:
        cancelled = cancel_for_triggers(ctx, tx, [current.id], "trigger disabled")
    changes |= {"next_run_at": next_run_at, "updated_at": now}
    if schedule_changed or enabling:
        changes["last_error"] = None
    tx.update_trigger(current.id, changes)
    return replace(current, **changes), cancelled


def trigger_change(
    action: str, old: Trigger | None, new: Trigger | None, **extra: Any
) -> audit.Change:
    """The audit event of a change to a trigger (``before=``/``after=`` in ``extra``
    replace the snapshots)."""
    trigger = new or old
    assert trigger is not None
    return audit.Change(
        trigger.tenant_id,
        trigger.project_id,
        action,
        "trigger",
        trigger.id,
        extra.get("before", audit.snapshot(old)),
        extra.get("after", audit.snapshot(new)),
    )


def remove_trigger(ctx: Context, tx: Store, trigger_id: str, reason: str) -> list[str]:
    """Delete a trigger inside ``tx`` and cancel its pending and running invocations
    (they stay as history); returns the ids cancelled."""
    cancelled = cancel_for_triggers(ctx, tx, [trigger_id], reason)
    tx.delete_trigger(trigger_id)
    return cancelled


def delete_trigger(
    ctx: Context,
    tenant_id: str,
    project_id: str,
    agent_id: str | None,
    trigger_id: str,
    *,
    if_match: str | None = None,
) -> None:
    with ctx.db.write() as tx:
        current = require_trigger(tx, tenant_id, project_id, agent_id, trigger_id)
        etags.require_match(if_match, etags.trigger_etag(current), f"trigger {trigger_id}")
        cancelled = remove_trigger(ctx, tx, trigger_id, "trigger deleted")
        tx.bump_ref(tenant_id, project_id, current.ref, ctx.clock.now())
        audit.record(tx, ctx.clock.now(), trigger_change("trigger.delete", current, None))
    ctx.notifier.invocations_cancelled(cancelled)
    ctx.notifier.triggers_changed()


def trigger_usage(
    ctx: Context,
    tenant_id: str,
    project_id: str,
    agent_id: str | None,
    trigger_id: str,
    before: date | None,
    limit: int,
) -> tuple[Trigger, list[UsageDay]]:
    """The tokens the trigger's runs used per UTC day, newest first (SPEC §13)."""
    with ctx.db.read() as tx:
        trigger = require_trigger(tx, tenant_id, project_id, agent_id, trigger_id)
        return trigger, tx.usage_days(trigger_id, before, limit)


def preview_trigger(
    ctx: Context,
    tenant_id: str,
    project_id: str,
    agent_id: str | None,
    trigger_id: str,
    count: int,
) -> tuple[list[datetime], list[datetime], list[Slot], str]:
    """The next ``count`` slots that will run (honouring the trigger's pause, skips,
    bounds and max_runs), the slots before them skipped by request, those its calendar
    skips or shifts (with the reason), and the schedule's description."""
    with ctx.db.read() as tx:
        trigger = require_trigger(tx, tenant_id, project_id, agent_id, trigger_id)
        project = require_project(tx, tenant_id, project_id)
    schedule = schedule_of(trigger)
    if isinstance(count, bool) or not 1 <= count <= sched.MAX_PREVIEW:
        raise ValidationError("count", f"must be between 1 and {sched.MAX_PREVIEW}")
    state = control_of(trigger)
    if project.paused:
        # The project's pause holds every trigger: it ends with the later of the two.
        untils = [project.paused_until, trigger.paused_until if trigger.paused else None]
        indefinite = project.paused_until is None or (
            trigger.paused and trigger.paused_until is None
        )
        until = None if indefinite else max(u for u in untils if u is not None)
        state = replace(state, paused=True, paused_until=until)
    runs, skipped, calendar = control.preview_runs(schedule, ctx.clock.now(), count, state)
    return runs, skipped, calendar, describe_timing(schedule)


def require_enabled(trigger: Trigger, action: str) -> None:
    """A disabled trigger starts no run of any kind: 409 naming the way out."""
    if not trigger.enabled:
        raise Conflict(
            f"scheduled trigger {trigger.id} is disabled; enable it "
            f'(PATCH {{"enabled": true}}) before {action}'
        )


def invocation_row(
    trigger: Trigger,
    *,
    origin: str,
    scheduled_for: datetime,
    key: str,
    now: datetime,
    status: str = PENDING,
    not_before: datetime | None = None,
    reason: str | None = None,
    invocation_id: str | None = None,
    payload: dict[str, Any] | None = None,
    rerun_of: str | None = None,
    backfill_id: str | None = None,
) -> NewInvocation:
    """A new invocation of ``trigger``, with the trigger's payload as it is now unless
    ``payload`` is given."""
    final = status != PENDING
    return NewInvocation(
        id=invocation_id or new_id("inv", now),
        trigger_id=trigger.id,
        trigger_name=trigger.name,
        tenant_id=trigger.tenant_id,
        project_id=trigger.project_id,
        ref=trigger.ref,
        agent_id=trigger.agent_id,
        origin=origin,
        scheduled_for=scheduled_for,
        idempotency_key=key,
        status=status,
        status_reason=reason,
        attempt=0,
        not_before=not_before or scheduled_for,
        payload=trigger.payload if payload is None else payload,
        created_at=now,
        completed_at=now if final else None,
        rerun_of=rerun_of,
        backfill_id=backfill_id,
    )


def run_now(
    ctx: Context,
    tenant_id: str,
    project_id: str,
    agent_id: str | None,
    trigger_id: str,
    payload: dict[str, Any] | None = None,
) -> Invocation:
    """Start an invocation at once, executed by the workers like any other.

    ``payload`` replaces the trigger's payload for this run only. It is checked against
    the trigger's message template before the write transaction (rendering costs time,
    and the write lock is everyone's), and again inside it should the template have
    changed in between."""
    if payload is not None:
        with ctx.db.read() as tx:
            seen = require_trigger(tx, tenant_id, project_id, agent_id, trigger_id)
        check_payload(payload, seen.message_template, ctx.settings.max_message_bytes)
    now = ctx.clock.now()
    with ctx.db.write() as tx:
        trigger = require_trigger(tx, tenant_id, project_id, agent_id, trigger_id)
        require_enabled(trigger, "running it")
        if payload is not None and trigger.message_template != seen.message_template:
            raise Conflict("the trigger's message template changed meanwhile: send it again")
        inv_id = new_id("inv", now)
        row = invocation_row(
            trigger,
            origin=Origin.MANUAL,
            scheduled_for=now,
            key=f"manual:{trigger.id}:{inv_id}",
            now=now,
            invocation_id=inv_id,
            payload=payload,
        )
        tx.insert_invocations([row])
        invocation = tx.get_invocation(inv_id)
        assert invocation is not None
        run = {"invocation_id": inv_id, "payload": payload}
        audit.record(tx, now, trigger_change("trigger.run", trigger, None, before=None, after=run))
    ctx.notifier.invocations_ready()
    return invocation
