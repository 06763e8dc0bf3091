"""The scheduler's unit of work: turn due triggers into invocations (SPEC §4).

One call of :func:`dispatch_batch` is ONE transaction: it checks the scheduler's fencing
token, locks a batch of due triggers, plans their slots (catch-up, overlap, jitter),
inserts the invocations with their canonical idempotency keys (a key that exists already
is skipped) and advances ``next_run_at``. Either all of that commits or none of it does,
so an invocation exists if and only if its slot was consumed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tickwork import metrics
from tickwork.domain import catchup
from tickwork.domain.ids import schedule_key
from tickwork.domain.schedule import OnceSchedule
from tickwork.logging import get_logger
from tickwork.services.context import Context
from tickwork.services.triggers import invocation_row, schedule_of
from tickwork.storage.records import CANCELLED, MISSED, PENDING, SKIPPED, Trigger

log = get_logger("tickwork.scheduler")

# Marks a pending invocation that must wait until its trigger has nothing running.
BUFFERED = "buffered: waits for the running invocation (overlap=buffer_one)"


class Superseded(Exception):
    """This scheduler no longer holds the lease: another one took over."""


@dataclass(frozen=True)
class Fence:
    """The scheduler's claim on dispatch: its run id and fencing generation."""

    run_id: str
    generation: int
    lease_seconds: float


@dataclass
class DispatchResult:
    triggers: int = 0
    created: int = 0
    missed: int = 0
    skipped: int = 0
    disabled: int = 0
    cancelled: list[str] = field(default_factory=list)
    full_batch: bool = False


def dispatch_batch(
    ctx: Context, now: datetime, limit: int, fence: Fence | None = None
) -> DispatchResult:
    """Dispatch up to ``limit`` due triggers in one transaction."""
    result = DispatchResult()
    with ctx.db.write() as tx:
        if fence is not None and not tx.hold_fence(
            fence.run_id, fence.generation, now, now + timedelta(seconds=fence.lease_seconds)
        ):
            raise Superseded(fence.run_id)
        due = tx.due_triggers(now, limit)
        result.triggers = len(due)
        result.full_batch = len(due) == limit
        if not due:
            return result
        active = tx.active_counts(t.id for t in due if t.overlap != "allow")
        rows: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        to_cancel: list[str] = []
        for trigger in due:
            try:
                update = _plan_trigger(trigger, now, active.get(trigger.id, 0), rows, to_cancel)
            except Exception as exc:
                log.exception(
                    "trigger disabled: its schedule cannot be computed",
                    **_fields(trigger),
                    error=str(exc),
                )
                result.disabled += 1
                update = {
                    "id": trigger.id,
                    "next_run_at": None,
                    "enabled": False,
                    "last_error": f"schedule cannot be computed: {exc}",
                    "updated_at": now,
                }
            updates.append(update)
        if to_cancel:
            ids = tx.active_invocation_ids(to_cancel)
            result.cancelled = tx.cancel_invocations(ids, now, "overlap=cancel_previous")
        result.created = len(tx.insert_invocations([r for r in rows if r["status"] == PENDING]))
        final = [r for r in rows if r["status"] != PENDING]
        tx.insert_invocations(final)
        result.missed = sum(1 for r in final if r["status"] == MISSED)
        result.skipped = sum(1 for r in final if r["status"] == SKIPPED)
        tx.set_next_runs(updates)
    for row in rows:
        if row["status"] == PENDING:
            log.debug("dispatched", **_row_fields(row))
    if result.triggers:
        log.info(
            "dispatch batch",
            triggers=result.triggers,
            created=result.created,
            missed=result.missed,
            skipped=result.skipped,
            disabled=result.disabled,
        )
    metrics.dispatched.inc(result.created)
    metrics.missed.inc(result.missed)
    metrics.skipped.inc(result.skipped)
    metrics.disabled.inc(result.disabled)
    if result.created:
        ctx.notifier.invocations_ready()
    if result.cancelled:
        ctx.notifier.invocations_cancelled(result.cancelled)
    return result


def _plan_trigger(
    trigger: Trigger,
    now: datetime,
    active: int,
    rows: list[dict[str, Any]],
    to_cancel: list[str],
) -> dict[str, Any]:
    schedule = schedule_of(trigger)
    assert trigger.next_run_at is not None
    plan = catchup.plan_catchup(
        schedule,
        trigger.next_run_at,
        now,
        trigger.catchup,
        trigger.catchup_window_seconds,
    )
    for slot in plan.missed:
        rows.append(
            invocation_row(
                trigger,
                origin="schedule",
                scheduled_for=slot,
                key=schedule_key(trigger.id, slot),
                now=now,
                status=MISSED,
                reason=f"missed: catchup={trigger.catchup} "
                f"(window {trigger.catchup_window_seconds} s)",
            )
        )
    if plan.missed_uncounted:
        log.warning(
            "slots missed without a record",
            **_fields(trigger),
            count=plan.missed_uncounted,
            estimated=plan.missed_estimated,
        )
    decisions = catchup.plan_overlap_many(trigger.overlap, active, len(plan.run))
    for index, (slot, decision) in enumerate(zip(plan.run, decisions, strict=True)):
        if decision.cancel_active:
            to_cancel.append(trigger.id)
        key = schedule_key(trigger.id, slot)
        if trigger.overlap == "cancel_previous" and index < len(plan.run) - 1:
            # A later slot of this same pass replaces it before it could start.
            rows.append(
                invocation_row(
                    trigger,
                    origin="schedule",
                    scheduled_for=slot,
                    key=key,
                    now=now,
                    status=CANCELLED,
                    reason="overlap=cancel_previous: replaced by a later slot",
                )
            )
            continue
        if decision.action == "skip":
            rows.append(
                invocation_row(
                    trigger,
                    origin="schedule",
                    scheduled_for=slot,
                    key=key,
                    now=now,
                    status=SKIPPED,
                    reason=decision.reason,
                )
            )
            continue
        jitter = catchup.jitter_offset(trigger.id, slot, trigger.jitter_seconds)
        rows.append(
            invocation_row(
                trigger,
                origin="schedule",
                scheduled_for=slot,
                key=key,
                now=now,
                not_before=slot + jitter,
                reason=BUFFERED if decision.action == "buffer" else None,
            )
        )
    next_run_at = None if isinstance(schedule, OnceSchedule) else plan.next_run_at
    return {
        "id": trigger.id,
        "next_run_at": next_run_at,
        "enabled": trigger.enabled,
        "last_error": trigger.last_error,
        "updated_at": trigger.updated_at,
    }


def earliest_due(ctx: Context) -> datetime | None:
    with ctx.db.read() as tx:
        return tx.earliest_next_run_at()


def _fields(trigger: Trigger) -> dict[str, Any]:
    return {
        "tenant": trigger.tenant_id,
        "project": trigger.project_id,
        "agent": trigger.agent_id,
        "trigger": trigger.id,
    }


def _row_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "tenant": row["tenant_id"],
        "project": row["project_id"],
        "agent": row["agent_id"],
        "trigger": row["trigger_id"],
        "invocation": row["id"],
        "scheduled_for": row["scheduled_for"],
    }
