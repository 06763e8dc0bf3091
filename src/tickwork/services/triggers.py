"""Scheduled triggers: create, change, delete, preview, run now."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from tickwork.domain import control, rate
from tickwork.domain import schedule as sched
from tickwork.domain.control import Bounds, Control
from tickwork.domain.ids import new_id
from tickwork.domain.limits import MAX_TEMPLATE_CHARS
from tickwork.domain.names import MAX_DESCRIPTION, MAX_NAME, check_ref, check_text
from tickwork.domain.template import rendered_size
from tickwork.errors import Conflict, InvalidSchedule, NotFound, ValidationError
from tickwork.services import quotas
from tickwork.services.context import Context
from tickwork.services.resources import cancel_for_triggers, require_agent, require_project
from tickwork.storage.records import PENDING, Invocation, Trigger
from tickwork.storage.sql import Tx

CATCHUP_POLICIES = ("latest", "all", "none")
OVERLAP_POLICIES = ("allow", "skip", "buffer_one", "cancel_previous")
MAX_PAYLOAD_BYTES = 256 * 1024
# The default cap on a rendered message (TICKWORK_MAX_MESSAGE_BYTES): a template may
# repeat a placeholder, so its size and the payload's say little about the message's.
MAX_MESSAGE_BYTES = 1024 * 1024

# Fields a client may set, with the default used on create and restored by an explicit
# null on update.
DEFAULTS: dict[str, Any] = {
    "description": "",
    "enabled": True,
    "timezone": "UTC",
    "payload": {},
    "message_template": None,
    "max_retries": 1,
    "retry_delay_seconds": 60,
    "timeout_seconds": 780,
    "catchup": "latest",
    "catchup_window_seconds": 3600,
    "overlap": "allow",
    "jitter_seconds": 0,
    "starts_at": None,
    "ends_at": None,
    "max_runs": None,
}
RANGES: dict[str, tuple[int, int]] = {
    "max_retries": (0, 10),
    "retry_delay_seconds": (1, 3600),
    "timeout_seconds": (1, 86400),
    "catchup_window_seconds": (0, 31 * 86400),
    "jitter_seconds": (0, 3600),
}
SCHEDULE_FIELDS = ("cron_expression", "run_at", "timezone")
# Fields that move where the trigger's slots may lie: changing one re-plans next_run_at.
BOUND_FIELDS = ("starts_at", "ends_at", "max_runs")
MAX_RUNS = 2**31 - 1
EDITABLE = ("name", "cron_expression", "run_at", *DEFAULTS)


class PayloadTooLarge(ValidationError):
    """A payload or template above the documented size limit (HTTP 413)."""


def _check_fields(values: dict[str, Any], max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
    """Check every field of a complete trigger definition (names as in the API)."""
    values["name"] = check_text(values.get("name"), "name", MAX_NAME, required=True)
    values["description"] = check_text(values.get("description"), "description", MAX_DESCRIPTION)
    if not isinstance(values["enabled"], bool):
        raise ValidationError("enabled", "must be true or false")
    for key, (low, high) in RANGES.items():
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValidationError(key, f"must be an integer from {low} to {high}")
    if values["catchup"] not in CATCHUP_POLICIES:
        raise ValidationError("catchup", f"must be one of {', '.join(CATCHUP_POLICIES)}")
    if values["overlap"] not in OVERLAP_POLICIES:
        raise ValidationError("overlap", f"must be one of {', '.join(OVERLAP_POLICIES)}")
    _check_bounds(values)
    payload = values["payload"]
    if not isinstance(payload, dict):
        raise ValidationError("payload", "must be a JSON object")
    size = len(json.dumps(payload, separators=(",", ":")).encode())
    if size > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge("payload", f"is {size} bytes; the limit is {MAX_PAYLOAD_BYTES}")
    template = values["message_template"]
    if template is not None:
        if not isinstance(template, str):
            raise ValidationError("message_template", "must be a string")
        if len(template) > MAX_TEMPLATE_CHARS:
            raise PayloadTooLarge(
                "message_template",
                f"is {len(template)} characters; the limit is {MAX_TEMPLATE_CHARS}",
            )
    rendered = rendered_size(template, payload)
    if rendered > max_message_bytes:
        raise PayloadTooLarge(
            "message_template",
            f"renders to {rendered} bytes against this trigger's payload; the limit on a "
            f"rendered message is {max_message_bytes} bytes",
        )


def _check_bounds(values: dict[str, Any]) -> None:
    for key in ("starts_at", "ends_at"):
        value = values[key]
        if isinstance(value, str):
            value = values[key] = sched.parse_instant(value, key)
        if value is not None and (
            not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None
        ):
            raise ValidationError(key, "must be an ISO-8601 instant with a UTC offset")
        if value is not None:
            values[key] = value.astimezone(UTC)
    starts_at, ends_at = values["starts_at"], values["ends_at"]
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise ValidationError(
            "ends_at",
            f"{sched.format_instant(ends_at)} is not after starts_at "
            f"{sched.format_instant(starts_at)}",
        )
    max_runs = values["max_runs"]
    if max_runs is not None and (
        isinstance(max_runs, bool) or not isinstance(max_runs, int) or not 1 <= max_runs <= MAX_RUNS
    ):
        raise ValidationError("max_runs", f"must be an integer from 1 to {MAX_RUNS}, or null")


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
    schedule: sched.Schedule,
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


def build_schedule(values: Mapping[str, Any]) -> sched.Schedule:
    cron, run_at = values.get("cron_expression"), values.get("run_at")
    if (cron is None) == (run_at is None):
        raise ValidationError("cron_expression", "give exactly one of cron_expression or run_at")
    timezone = values.get("timezone") or "UTC"
    if not isinstance(timezone, str):
        raise ValidationError("timezone", "must be an IANA time zone name")
    if cron is not None:
        if not isinstance(cron, str):
            raise ValidationError("cron_expression", "must be a string")
        return sched.cron_schedule(cron, timezone)
    if isinstance(run_at, str):
        run_at = sched.parse_instant(run_at)
    if not isinstance(run_at, datetime):
        raise ValidationError("run_at", "must be an ISO-8601 instant with a UTC offset")
    return sched.once_schedule(run_at, timezone)


def schedule_of(trigger: Trigger) -> sched.Schedule:
    return build_schedule(
        {
            "cron_expression": trigger.cron_expression,
            "run_at": trigger.run_at,
            "timezone": trigger.timezone,
        }
    )


def require_trigger(
    tx: Tx, tenant_id: str, project_id: str, agent_id: str | None, trigger_id: str
) -> Trigger:
    trigger = tx.find_trigger(tenant_id, project_id, trigger_id, agent_id)
    if trigger is None:
        raise NotFound(f"scheduled trigger {trigger_id!r} not found")
    return trigger


def validate_fields(
    fields: Mapping[str, Any], max_message_bytes: int = MAX_MESSAGE_BYTES
) -> tuple[dict[str, Any], sched.Schedule]:
    """Check a complete trigger definition; absent or null fields take their defaults.

    Returns every editable field's value and the schedule. Pure: reads neither the
    clock nor the database (whether a one-time instant is past is checked later).
    """
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise ValidationError(sorted(unknown)[0], "is not a scheduled trigger field")
    values = dict(DEFAULTS) | {k: v for k, v in fields.items() if v is not None}
    values.setdefault("cron_expression", None)
    values.setdefault("run_at", None)
    _check_fields(values, max_message_bytes)
    schedule = build_schedule(values)
    if isinstance(schedule, sched.OnceSchedule):
        values["run_at"] = schedule.run_at
    return values, schedule


class NextRuns:
    """First runs of schedules from one ``now``, each distinct schedule computed once.

    Finding a schedule's next instant can take milliseconds (a rare expression in a zone
    with daylight saving), so callers compute what they need before they open a write
    transaction, which on SQLite holds up every tenant's writes (SPEC §9).
    """

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._memo: dict[sched.Schedule, datetime | InvalidSchedule | None] = {}

    def of(self, schedule: sched.Schedule) -> datetime | None:
        """``next_run_at`` for a trigger (re-)scheduled now; a cron expression that never
        fires in its zone is refused."""
        found = self._memo.get(schedule, _UNSET)
        if found is _UNSET:
            found = self._memo[schedule] = _first_run(schedule, self.now)
        if isinstance(found, InvalidSchedule):
            raise found
        assert found is None or isinstance(found, datetime)
        return found


_UNSET: Any = object()


def _first_run(schedule: sched.Schedule, now: datetime) -> datetime | InvalidSchedule | None:
    first = sched.initial_next_run(schedule, now)
    if first is None and isinstance(schedule, sched.CronSchedule):
        why = (
            ": every time it names falls inside a daylight-saving gap, and an expression "
            "with a wildcard minute or hour skips wall times that do not occur"
            if schedule.expression.wildcard
            else ""
        )
        return InvalidSchedule(
            "cron_expression", f"never fires in time zone {schedule.timezone}{why}"
        )
    return first


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
    values, schedule = validate_fields(fields, max_message_bytes)
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
    schedule: sched.Schedule, first: datetime | None, bounds: Bounds, now: datetime
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
        adding = quotas.Change(triggers=1, slots_per_day=quotas.rate_of(trigger))
        quotas.check(ctx, tx, tenant_id, adding)
        tx.insert_trigger(trigger)
        # Triggers are part of the ref's definition: every write bumps its revision.
        tx.bump_ref(tenant_id, project_id, ref, trigger.created_at)
    ctx.notifier.triggers_changed()
    return trigger


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
) -> list[Trigger]:
    with ctx.db.read() as tx:
        require_project(tx, tenant_id, project_id)
        return tx.list_triggers(
            tenant_id, project_id, ref=ref, agent_id=agent_id, after=after, limit=limit
        )


def update_trigger(
    ctx: Context,
    tenant_id: str,
    project_id: str,
    agent_id: str | None,
    trigger_id: str,
    patch: Mapping[str, Any],
) -> Trigger:
    """Apply a partial update (see :func:`apply_update`)."""
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
        updated, cancelled = apply_update(ctx, tx, current, patch, now=now, next_runs=next_runs)
        added = quotas.rate_of(updated) - quotas.rate_of(current)
        if added > 0:
            quotas.check(ctx, tx, tenant_id, quotas.Change(slots_per_day=added), written=True)
        if updated is not current:
            tx.bump_ref(tenant_id, project_id, current.ref, ctx.clock.now())
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
    # Naming one kind of schedule replaces the other.
    if patch.get("cron_expression") is not None and "run_at" not in patch:
        values["run_at"] = None
    if patch.get("run_at") is not None and "cron_expression" not in patch:
        values["cron_expression"] = None
    return values


def prepare_update(current: Trigger, patch: Mapping[str, Any], next_runs: NextRuns) -> None:
    """Compute, into ``next_runs``, the first run that :func:`apply_update` will need
    for this patch; invalid input is left for :func:`apply_update` to report."""
    try:
        values = _merged(current, patch)
        schedule = build_schedule(values)
        if any(key in patch for key in SCHEDULE_FIELDS) or (
            values["enabled"] is True and not current.enabled
        ):
            next_runs.of(schedule)
    except ValidationError:
        return


def apply_update(
    ctx: Context,
    tx: Tx,
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
    _check_fields(values, ctx.settings.max_message_bytes)
    schedule = build_schedule(values)
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


def remove_trigger(ctx: Context, tx: Tx, trigger_id: str, reason: str) -> list[str]:
    """Delete a trigger inside ``tx`` and cancel its pending and running invocations
    (they stay as history); returns the ids cancelled."""
    cancelled = cancel_for_triggers(ctx, tx, [trigger_id], reason)
    tx.delete_trigger(trigger_id)
    return cancelled


def delete_trigger(
    ctx: Context, tenant_id: str, project_id: str, agent_id: str | None, trigger_id: str
) -> None:
    with ctx.db.write() as tx:
        current = require_trigger(tx, tenant_id, project_id, agent_id, trigger_id)
        cancelled = remove_trigger(ctx, tx, trigger_id, "trigger deleted")
        tx.bump_ref(tenant_id, project_id, current.ref, ctx.clock.now())
    ctx.notifier.invocations_cancelled(cancelled)
    ctx.notifier.triggers_changed()


def preview_trigger(
    ctx: Context,
    tenant_id: str,
    project_id: str,
    agent_id: str | None,
    trigger_id: str,
    count: int,
) -> tuple[list[datetime], list[datetime], str]:
    """The next ``count`` slots that will run (honouring the trigger's pause, skips,
    bounds and max_runs), the slots before them skipped by request, and the schedule's
    description."""
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
    runs, skipped = control.preview_runs(schedule, ctx.clock.now(), count, state)
    return runs, skipped, sched.describe(schedule)


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
) -> dict[str, Any]:
    """A new invocation of ``trigger``, with the trigger's payload as it is now unless
    ``payload`` is given."""
    final = status != PENDING
    return {
        "id": invocation_id or new_id("inv", now),
        "trigger_id": trigger.id,
        "trigger_name": trigger.name,
        "tenant_id": trigger.tenant_id,
        "project_id": trigger.project_id,
        "ref": trigger.ref,
        "agent_id": trigger.agent_id,
        "origin": origin,
        "scheduled_for": scheduled_for,
        "idempotency_key": key,
        "status": status,
        "status_reason": reason,
        "attempt": 0,
        "not_before": not_before or scheduled_for,
        "payload": trigger.payload if payload is None else payload,
        "created_at": now,
        "completed_at": now if final else None,
        "rerun_of": rerun_of,
        "backfill_id": backfill_id,
    }


def run_now(
    ctx: Context, tenant_id: str, project_id: str, agent_id: str | None, trigger_id: str
) -> Invocation:
    """Start an invocation at once, executed by the workers like any other."""
    now = ctx.clock.now()
    with ctx.db.write() as tx:
        trigger = require_trigger(tx, tenant_id, project_id, agent_id, trigger_id)
        require_enabled(trigger, "running it")
        inv_id = new_id("inv", now)
        row = invocation_row(
            trigger,
            origin="manual",
            scheduled_for=now,
            key=f"manual:{trigger.id}:{inv_id}",
            now=now,
            invocation_id=inv_id,
        )
        tx.insert_invocations([row])
        invocation = tx.get_invocation(inv_id)
        assert invocation is not None
    ctx.notifier.invocations_ready()
    return invocation
