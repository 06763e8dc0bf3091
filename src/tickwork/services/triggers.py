"""Scheduled triggers: create, change, delete, preview, run now."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from tickwork.domain import rate
from tickwork.domain import schedule as sched
from tickwork.domain.ids import new_id
from tickwork.domain.limits import MAX_TEMPLATE_CHARS
from tickwork.domain.names import MAX_DESCRIPTION, MAX_NAME, check_ref, check_text
from tickwork.domain.template import rendered_size
from tickwork.errors import Conflict, InvalidSchedule, NameConflict, NotFound, ValidationError
from tickwork.services import etags, quotas
from tickwork.services.context import Context
from tickwork.services.resources import cancel_for_triggers, require_agent, require_project
from tickwork.storage import search
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
}
RANGES: dict[str, tuple[int, int]] = {
    "max_retries": (0, 10),
    "retry_delay_seconds": (1, 3600),
    "timeout_seconds": (1, 86400),
    "catchup_window_seconds": (0, 31 * 86400),
    "jitter_seconds": (0, 3600),
}
SCHEDULE_FIELDS = ("cron_expression", "run_at", "timezone")
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
        **{k: values[k] for k in EDITABLE},
    )


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
    ctx.notifier.triggers_changed()
    return trigger


def require_unique_name(tx: Tx, trigger: Trigger) -> None:
    """409 when another trigger of the agent on the ref has the name ``trigger`` has
    (SPEC §10: names are unique per agent and ref; an index holds it too, for races)."""
    other = search.trigger_named(
        tx, trigger.tenant_id, trigger.project_id, trigger.ref, trigger.agent_id, trigger.name
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
) -> list[Trigger]:
    with ctx.db.read() as tx:
        require_project(tx, tenant_id, project_id)
        if agent_id is not None and not search.agent_exists(
            tx, tenant_id, project_id, agent_id, ref
        ):
            where = f" on ref {ref!r}" if ref is not None else ""
            raise NotFound(f"agent {agent_id!r} not found{where}")
        return tx.list_triggers(
            tenant_id, project_id, ref=ref, agent_id=agent_id, after=after, limit=limit
        )


def search_triggers(
    ctx: Context,
    tenant_id: str,
    project_id: str,
    *,
    agent_id: str | None = None,
    ref: str | None = None,
    enabled: bool | None = None,
    name_contains: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> list[Trigger]:
    """The project's triggers across agents and refs, filtered; an agent or ref that the
    project does not have is an unknown filter value (422 naming it)."""
    with ctx.db.read() as tx:
        require_project(tx, tenant_id, project_id)
        if ref is not None and tx.get_ref(tenant_id, project_id, ref) is None:
            raise ValidationError("query.ref", f"project {project_id!r} has no ref {ref!r}")
        if agent_id is not None and not search.agent_exists(
            tx, tenant_id, project_id, agent_id, ref
        ):
            where = f"on ref {ref!r}" if ref is not None else "on any ref"
            raise ValidationError(
                "query.agent", f"project {project_id!r} has no agent {agent_id!r} {where}"
            )
        return search.search_triggers(
            tx,
            tenant_id,
            project_id,
            agent_id=agent_id,
            ref=ref,
            enabled=enabled,
            name_contains=name_contains,
            after=after,
            limit=limit,
        )


def last_runs(ctx: Context, triggers: list[Trigger]) -> dict[str, Invocation]:
    """Each trigger's last run (see :func:`tickwork.storage.search.last_runs`)."""
    if not triggers:
        return {}
    with ctx.db.read() as tx:
        return search.last_runs(tx, [t.id for t in triggers])


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
            _check_fields(_merged(current, patch), ctx.settings.max_message_bytes)
            require_unique_name(tx, replace(current, name=new_name))
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
        key in patch and values[key] != getattr(current, key) for key in SCHEDULE_FIELDS
    )
    if isinstance(schedule, sched.OnceSchedule):
        values["run_at"] = schedule.run_at
        if schedule_changed:
            sched.check_run_at_not_past(schedule.run_at, now)
    enabling = values["enabled"] and not current.enabled
    next_run_at = current.next_run_at
    first = next_runs.of(schedule) if schedule_changed or enabling else None
    if not values["enabled"]:
        next_run_at = None
    elif schedule_changed or enabling:
        next_run_at = first
    changes = {k: v for k, v in values.items() if v != getattr(current, k)}
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
    ctx.notifier.invocations_cancelled(cancelled)
    ctx.notifier.triggers_changed()


def preview_trigger(
    ctx: Context,
    tenant_id: str,
    project_id: str,
    agent_id: str | None,
    trigger_id: str,
    count: int,
) -> tuple[list[datetime], str]:
    trigger = get_trigger(ctx, tenant_id, project_id, agent_id, trigger_id)
    schedule = schedule_of(trigger)
    return sched.preview(schedule, ctx.clock.now(), count), sched.describe(schedule)


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
