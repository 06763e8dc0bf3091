"""The scheduler's unit of work: turn due triggers into invocations (SPEC §4).

One call of :func:`dispatch_batch` is ONE transaction: it checks the scheduler's fencing
token, locks a batch of due triggers, plans their slots (catch-up, overlap, jitter),
inserts the invocations with their canonical idempotency keys (a key that exists already
is skipped) and advances ``next_run_at``. Either all of that commits or none of it does,
so an invocation exists if and only if its slot was consumed.

One module, longer than most: the batch's transaction and the planning of each
trigger's slots are one unit of work, read together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tickwork import metrics, tracing
from tickwork.domain import catchup, control
from tickwork.domain.ids import schedule_key
from tickwork.domain.invocations import BUFFERED, Origin
from tickwork.domain.policies import OverlapPolicy
from tickwork.domain.schedule import OnceSchedule
from tickwork.domain.slots import Slot, Timing
from tickwork.logging import get_logger
from tickwork.services import notifications
from tickwork.services.context import Context
from tickwork.services.leadership import Fence, Superseded
from tickwork.services.triggers import control_of, invocation_row, schedule_of
from tickwork.storage.ports import Control, NewInvocation, NextRun, Queue, Store
from tickwork.storage.records import CANCELLED, MISSED, PENDING, SKIPPED, Trigger
from tickwork.storage.sql import is_outage

# The reason a slot is skipped once its trigger's daily_token_budget is used up.
BUDGET_EXCEEDED = "budget exceeded"

log = get_logger("tickwork.scheduler")


@dataclass
class DispatchResult:
    triggers: int = 0
    created: int = 0
    missed: int = 0
    skipped: int = 0
    disabled: int = 0
    cancelled: list[str] = field(default_factory=list)
    full_batch: bool = False
    planned: list[NewInvocation] = field(default_factory=list)


def dispatch_batch(
    ctx: Context, now: datetime, limit: int, fence: Fence | None = None
) -> DispatchResult:
    """Dispatch up to ``limit`` due triggers in one write transaction.

    The slots are planned first, outside any write transaction: computing schedules is
    per-trigger work, and on SQLite the write lock holds up every tenant (SPEC §9). The
    transaction then checks the fence, advances each trigger only if it is still as it
    was read (a trigger changed meanwhile is left for the next pass), and inserts the
    invocations of the triggers it advanced. Should the database refuse some trigger's
    invocations, the batch is written again trigger by trigger, and each trigger whose
    rows cannot be stored is disabled with the error: the rest dispatch as usual.
    """
    with ctx.db.read() as tx:
        due = tx.due_triggers(now, limit, lock=False)
        active = tx.active_counts(t.id for t in due if t.overlap != OverlapPolicy.ALLOW)
        held = tx.paused_projects({(t.tenant_id, t.project_id) for t in due})
        # Budgets are per UTC day: today's use decides whether today's slots run.
        used = tx.tokens_on(
            (t.id for t in due if t.daily_token_budget is not None), now.astimezone(UTC).date()
        )
    parked = [t for t in due if (t.tenant_id, t.project_id) in held]
    due = [t for t in due if (t.tenant_id, t.project_id) not in held]
    if not due:  # a pass with nothing due to run only renews the fence: no span
        return _dispatch(ctx, now, limit, fence, due, parked, active, used)
    with tracing.span(tracing.DISPATCH_SPAN, triggers=len(due)) as span:
        result = _dispatch(ctx, now, limit, fence, due, parked, active, used)
        tracing.set_attributes(
            span,
            created=result.created,
            missed=result.missed,
            skipped=result.skipped,
            disabled=result.disabled,
        )
    return result


def _dispatch(
    ctx: Context,
    now: datetime,
    limit: int,
    fence: Fence | None,
    due: list[Trigger],
    parked: list[Trigger],
    active: dict[str, int],
    used: dict[str, int],
) -> DispatchResult:
    plans = [
        _plan(trigger, now, active.get(trigger.id, 0), _over_budget(trigger, used))
        for trigger in due
    ]
    try:
        result = _write(ctx, now, fence, plans, careful=False, parked=parked)
    except Superseded:
        raise
    except Exception as exc:
        if is_outage(exc) or not plans:
            raise
        log.warning("dispatching a batch failed; dispatching its triggers one by one")
        result = _write(ctx, now, fence, plans, careful=True, parked=parked)
    result.triggers = len(due) + len(parked)
    result.full_batch = len(due) + len(parked) == limit
    for plan in plans:
        if plan.error is not None:
            log.error(
                "trigger disabled: its schedule cannot be computed",
                **_fields(plan.trigger),
                error=plan.error,
            )
    _report(ctx, result)
    return result


@dataclass
class _TriggerPlan:
    """What one due trigger's pass writes: its new row values and its invocations."""

    trigger: Trigger
    update: NextRun
    rows: list[NewInvocation]
    cancel_active: bool = False
    error: str | None = None
    # Control columns that change (skips and slots used up, a wake-up handled, the
    # end of a pause): written with the advance.
    control: dict[str, Any] = field(default_factory=dict)


def _over_budget(trigger: Trigger, used: dict[str, int]) -> bool:
    budget = trigger.daily_token_budget
    return budget is not None and used.get(trigger.id, 0) >= budget


def _plan(trigger: Trigger, now: datetime, active: int, over_budget: bool = False) -> _TriggerPlan:
    """One due trigger's pass: its slots, the row of each slot it consumes, its advance
    and its control changes. A schedule that cannot be computed disables the trigger."""
    try:
        return _plan_trigger(trigger, now, active, over_budget)
    except Exception as exc:
        error = f"schedule cannot be computed: {exc}"
        return _TriggerPlan(trigger, _disable(trigger, now, error), [], error=error)


def _disable(trigger: Trigger, now: datetime, error: str) -> NextRun:
    return NextRun(trigger.id, next_run_at=None, enabled=False, last_error=error, updated_at=now)


def _write(
    ctx: Context,
    now: datetime,
    fence: Fence | None,
    plans: list[_TriggerPlan],
    *,
    careful: bool,
    parked: Sequence[Trigger] = (),
) -> DispatchResult:
    result = DispatchResult()
    with ctx.db.write() as tx:
        if fence is not None and not tx.hold_fence(
            fence.run_id, fence.generation, now, now + timedelta(seconds=fence.lease_seconds)
        ):
            raise Superseded(fence.run_id)
        # A paused project's triggers leave the schedule; its resume wakes them.
        tx.park_triggers([(t.id, t.next_run_at) for t in parked])
        if not plans:
            return result
        # Advanced only if unchanged since it was read: an edit in between wins.
        advanced = tx.advance_triggers([p.update for p in plans], [p.trigger for p in plans])
        kept = [p for p in plans if p.trigger.id in advanced]
        disabled_while_storing: dict[str, str] = {}
        _write_controls(tx, [p for p in kept if p.control])
        to_cancel = [p.trigger.id for p in kept if p.cancel_active]
        if to_cancel:
            ids = tx.active_invocation_ids(to_cancel)
            result.cancelled = tx.cancel_invocations(
                ids, now, f"overlap={OverlapPolicy.CANCEL_PREVIOUS}"
            )
        if not careful:
            _insert(tx, [row for p in kept for row in p.rows], result)
        else:
            for plan in kept:
                try:
                    with tx.savepoint():
                        _insert(tx, plan.rows, result)
                except Exception as exc:
                    if is_outage(exc):
                        raise
                    error = f"its invocations could not be stored ({_brief(exc)})"
                    log.error("trigger disabled", **_fields(plan.trigger), error=error)
                    tx.set_next_runs([_disable(plan.trigger, now, error)])
                    disabled_while_storing[plan.trigger.id] = error
                    result.disabled += 1
        result.disabled += sum(1 for p in kept if p.error is not None)
        _tell(tx, now, kept, disabled_while_storing)
    result.planned = [row for p in kept for row in p.rows]
    return result


def _tell(
    tx: Store, now: datetime, kept: list[_TriggerPlan], disabled_while_storing: dict[str, str]
) -> None:
    """Write the events of this pass (SPEC §11) in its transaction: ``trigger.disabled``
    for each trigger disabled, ``slot.missed`` for each trigger with slots recorded
    missed (one event per trigger and pass, with the count)."""
    for plan in kept:
        error = plan.error or disabled_while_storing.get(plan.trigger.id)
        if error is not None:
            shown = replace(plan.trigger, enabled=False, next_run_at=None, last_error=error)
            notifications.trigger_event(tx, "trigger.disabled", shown, now)
            continue
        missed = [r for r in plan.rows if r.status == MISSED]
        if missed:
            notifications.trigger_event(
                tx,
                "slot.missed",
                plan.trigger,
                now,
                count=len(missed),
                first=_iso(missed[0].scheduled_for),
                last=_iso(missed[-1].scheduled_for),
            )


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _write_controls(tx: Control, plans: list[_TriggerPlan]) -> None:
    # Grouped by the columns they set: one statement per shape.
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for plan in plans:
        shapes.setdefault(tuple(sorted(plan.control)), []).append(
            {"id": plan.trigger.id, **plan.control}
        )
    for rows in shapes.values():
        tx.set_trigger_controls(rows)


def _insert(tx: Queue, rows: list[NewInvocation], result: DispatchResult) -> None:
    # One statement for the pass; a slot whose key exists already is not created again.
    inserted = set(tx.insert_invocations(rows))
    result.created += sum(1 for r in rows if r.status == PENDING and r.id in inserted)
    result.missed += sum(1 for r in rows if r.status == MISSED)
    result.skipped += sum(1 for r in rows if r.status == SKIPPED)


def _brief(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    first_line = (str(original).strip().splitlines() or [""])[0]
    return f"{type(original).__name__}: {first_line}"[:300]


def _report(ctx: Context, result: DispatchResult) -> None:
    for row in result.planned:
        if row.status == PENDING:
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


def _plan_trigger(trigger: Trigger, now: datetime, active: int, over_budget: bool) -> _TriggerPlan:
    """:func:`_plan`'s steps: plan the slots (catch-up, pause, skips, bounds, calendar),
    record the slots that do not run, stop the runs a spent budget forbids, decide each
    run under the overlap policy, then the control changes and the advance."""
    schedule = schedule_of(trigger)
    assert trigger.next_run_at is not None
    plan = control.plan_dispatch(
        schedule,
        trigger.next_run_at,
        now,
        control_of(trigger),
        trigger.catchup,
        trigger.catchup_window_seconds,
    )
    if plan.missed_uncounted:
        log.warning(
            "slots missed without a record",
            **_fields(trigger),
            count=plan.missed_uncounted,
            estimated=plan.missed_estimated,
        )
    rows = _recorded_rows(trigger, plan, now)
    run = plan.run
    if over_budget:
        # Never silent (SPEC §2): each slot the budget stops is recorded, with the reason.
        rows += [_row(trigger, slot, now, status=SKIPPED, reason=BUDGET_EXCEEDED) for slot in run]
        run = []
    cancel_active = _add_runs(rows, trigger, run, plan.slots, active, now)
    return _TriggerPlan(
        trigger,
        _advance(trigger, schedule, plan),
        rows,
        cancel_active=cancel_active,
        control=_control_changes(trigger, plan),
    )


def _recorded_rows(
    trigger: Trigger, plan: control.DispatchPlan, now: datetime
) -> list[NewInvocation]:
    """The rows of the consumed slots that do not run: missed, skipped by request, or
    skipped by the trigger's calendar (with its reason: "holiday: Christmas Day")."""
    rows = []
    for recorded in plan.recorded:
        slot = recorded.at
        if recorded.status == "excluded":
            reason = plan.slots[slot].reason
        elif recorded.status == "missed":
            reason = (
                f"missed: catchup={trigger.catchup} (window {trigger.catchup_window_seconds} s)"
            )
        else:
            reason = control.SKIPPED_BY_REQUEST
        status = MISSED if recorded.status == "missed" else SKIPPED
        rows.append(
            _row(
                trigger, slot, now, status=status, reason=_with_shift(reason, plan.slots.get(slot))
            )
        )
    return rows


def _add_runs(
    rows: list[NewInvocation],
    trigger: Trigger,
    run: list[datetime],
    slots: dict[datetime, Slot],
    active: int,
    now: datetime,
) -> bool:
    """Add the rows of the slots to run, as the overlap policy decides for each (run,
    buffer, skip; under ``cancel_previous`` only the last slot of the pass runs); whether
    the trigger's active invocations are to be cancelled first."""
    if len(run) == 1 and (
        trigger.overlap == OverlapPolicy.ALLOW
        or (active == 0 and trigger.overlap in catchup.OVERLAP_POLICIES)
    ):
        # The common pass: one slot, nothing in its way.
        [slot] = run
        rows.append(_pending(trigger, slot, now, None, slots.get(slot)))
        return False
    cancel_active = False
    last = len(run) - 1
    decisions = catchup.plan_overlap_many(trigger.overlap, active, len(run))
    for index, (slot, decision) in enumerate(zip(run, decisions, strict=True)):
        cancel_active = cancel_active or decision.cancel_active
        shift = slots.get(slot)
        if trigger.overlap == OverlapPolicy.CANCEL_PREVIOUS and index < last:
            # A later slot of this same pass replaces it before it could start.
            reason = _with_shift("overlap=cancel_previous: replaced by a later slot", shift)
            rows.append(_row(trigger, slot, now, status=CANCELLED, reason=reason))
        elif decision.action == "skip":
            reason = _with_shift(decision.reason, shift)
            rows.append(_row(trigger, slot, now, status=SKIPPED, reason=reason))
        else:
            buffered = BUFFERED if decision.action == "buffer" else None
            rows.append(_pending(trigger, slot, now, buffered, shift))
    return cancel_active


def _pending(
    trigger: Trigger, slot: datetime, now: datetime, reason: str | None, shift: Slot | None
) -> NewInvocation:
    """The pending invocation of a slot to run, from its jittered ``not_before``."""
    jitter = catchup.jitter_offset(trigger.id, slot, trigger.jitter_seconds)
    return _row(trigger, slot, now, not_before=slot + jitter, reason=_with_shift(reason, shift))


def _row(
    trigger: Trigger,
    slot: datetime,
    now: datetime,
    *,
    status: str = PENDING,
    reason: str | None = None,
    not_before: datetime | None = None,
) -> NewInvocation:
    """The invocation of one of the trigger's slots, keyed by the slot (SPEC §4)."""
    return invocation_row(
        trigger,
        origin=Origin.SCHEDULE,
        scheduled_for=slot,
        key=schedule_key(trigger.id, slot),
        now=now,
        status=status,
        not_before=not_before,
        reason=reason,
    )


def _control_changes(trigger: Trigger, plan: control.DispatchPlan) -> dict[str, Any]:
    """The control columns this pass changes (skips and slots used up, a wake-up
    handled, the end of a pause)."""
    changes: dict[str, Any] = {}
    if plan.rearm != trigger.rearm:
        changes["rearm"] = plan.rearm
    if plan.skip_remaining != trigger.skip_remaining:
        changes["skip_remaining"] = plan.skip_remaining
    if plan.remaining_runs != trigger.remaining_runs:
        changes["remaining_runs"] = plan.remaining_runs
    if plan.resumed:
        changes.update(
            paused=False, paused_reason=None, paused_by=None, paused_at=None, paused_until=None
        )
        log.info("trigger resumed: its pause ended", **_fields(trigger))
    return changes


def _advance(trigger: Trigger, schedule: Timing, plan: control.DispatchPlan) -> NextRun:
    """The trigger's next run after this pass (a one-time trigger's is gone once its
    slot is consumed); the rest of its row as it was read."""
    next_run_at = None if isinstance(schedule, OnceSchedule) and plan.consumed else plan.next_run_at
    return NextRun(
        trigger.id,
        next_run_at=next_run_at,
        enabled=trigger.enabled,
        last_error=trigger.last_error,
        updated_at=trigger.updated_at,
    )


def _with_shift(reason: str | None, slot: Slot | None) -> str | None:
    """``reason`` with a shifted slot's own (``shifted from 2026-12-25 (holiday: …)``):
    a shifted slot keeps its instant as its key and records the date it comes from."""
    if slot is None or not slot.shifted or slot.status != "run":
        return reason
    return slot.reason if reason is None else f"{reason}; {slot.reason}"


def earliest_due(ctx: Context) -> datetime | None:
    """The earliest instant the scheduler has something to do at: a trigger's
    ``next_run_at`` (a slot or a wake-up) or the end of a project's pause."""
    with ctx.db.read() as tx:
        found = [tx.earliest_next_run_at(), tx.earliest_project_resume()]
    instants = [instant for instant in found if instant is not None]
    return min(instants) if instants else None


def _fields(trigger: Trigger) -> dict[str, Any]:
    return {
        "tenant": trigger.tenant_id,
        "project": trigger.project_id,
        "agent": trigger.agent_id,
        "trigger": trigger.id,
    }


def _row_fields(row: NewInvocation) -> dict[str, Any]:
    return {
        "tenant": row.tenant_id,
        "project": row.project_id,
        "agent": row.agent_id,
        "trigger": row.trigger_id,
        "invocation": row.id,
        "scheduled_for": row.scheduled_for,
    }
