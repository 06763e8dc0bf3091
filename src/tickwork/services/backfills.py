"""Backfills: a trigger's past slots run on request, as durable data (SPEC §10).

Creating a backfill decides, once, which slots of the range it runs and under which key
(:func:`tickwork.domain.control.backfill_kind`), and stores that plan. The active
scheduler then dispatches it (:func:`dispatch_backfills`) in batches of at most
:data:`BATCH` invocations, never more than the backfill's ``max_concurrency`` pending or
running at once; each batch is one transaction that checks the scheduler's fence. The
counts ``created`` and ``skipped`` are the plan's, corrected as it runs: a slot whose
key was taken meanwhile (by the normal schedule or another backfill) moves from one to
the other, so no slot runs twice.

Slots at or after the trigger's ``next_run_at`` are the normal schedule's: a backfill
leaves them alone. A backfill waits while its trigger is disabled or its project paused,
and proceeds while the trigger itself is paused (a backfill is a request of its own).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from tickwork.domain import control
from tickwork.domain import schedule as sched
from tickwork.domain.ids import new_id, schedule_key
from tickwork.errors import Conflict, NotFound, ValidationError
from tickwork.logging import get_logger
from tickwork.services import audit
from tickwork.services.context import Context
from tickwork.services.leadership import Fence, Superseded
from tickwork.services.triggers import (
    bounds_of,
    invocation_row,
    require_enabled,
    require_trigger,
    schedule_of,
)
from tickwork.storage.ports import Control, Leadership, SlotRow
from tickwork.storage.records import (
    BACKFILL_CANCELLED,
    BACKFILL_COMPLETED,
    BACKFILL_RUNNING,
    Backfill,
    Trigger,
)

log = get_logger("tickwork.backfill")

BATCH = 100
RUNNING_PER_PASS = 50
DEFAULT_MAX_CONCURRENCY = 10
MAX_CONCURRENCY = 1000
# While a backfill runs, the scheduler looks at it this often (its invocations end on
# the workers, which do not wake the scheduler).
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class BackfillPlan:
    """What a backfill request amounts to: the slots in the range, those it creates an
    invocation for (``plan``: ``(slot, kind)``, oldest first) and those it leaves."""

    slots: int
    plan: list[tuple[datetime, str]]

    @property
    def created(self) -> int:
        return len(self.plan)

    @property
    def skipped(self) -> int:
        return self.slots - len(self.plan)


def _check(now: datetime, start: datetime, end: datetime, mode: str, max_concurrency: int) -> None:
    for name, value in (("from", start), ("to", end)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValidationError(name, "must be an instant with a UTC offset (e.g. ...Z)")
    if end > now:
        raise ValidationError(
            "to",
            f"{sched.format_instant(end)} is in the future; a backfill covers past slots "
            f"(up to {sched.format_instant(now)}), the schedule runs the coming ones",
        )
    if end <= start:
        raise ValidationError("to", "must be after from")
    if mode not in control.BACKFILL_MODES:
        raise ValidationError("mode", f"must be one of {', '.join(control.BACKFILL_MODES)}")
    if (
        isinstance(max_concurrency, bool)
        or not isinstance(max_concurrency, int)
        or not 1 <= max_concurrency <= MAX_CONCURRENCY
    ):
        raise ValidationError("max_concurrency", f"must be an integer from 1 to {MAX_CONCURRENCY}")


def _histories(rows: list[SlotRow], trigger_id: str) -> dict[datetime, control.SlotHistory]:
    by_slot: dict[datetime, list[SlotRow]] = {}
    for row in rows:
        by_slot.setdefault(row.scheduled_for, []).append(row)
    found: dict[datetime, control.SlotHistory] = {}
    for slot, group in by_slot.items():
        canonical = next(
            (r.status for r in group if r.idempotency_key == schedule_key(trigger_id, slot)),
            None,
        )
        missed_key = control.missed_backfill_key(trigger_id, slot)
        latest = max(group, key=lambda r: (r.created_at, r.id))
        found[slot] = control.SlotHistory(
            canonical=canonical,
            backfilled=any(r.idempotency_key == missed_key for r in group),
            latest=latest.status,
        )
    return found


def _plan(trigger: Trigger, slots: list[datetime], rows: list[SlotRow], mode: str) -> BackfillPlan:
    histories = _histories(rows, trigger.id)
    # The normal schedule's own: from its next run (or wake-up) on.
    theirs = trigger.next_run_at
    plan: list[tuple[datetime, str]] = []
    for slot in slots:
        if theirs is not None and slot >= theirs:
            continue
        kind = control.backfill_kind(mode, histories.get(slot, control.SlotHistory()))
        if kind is not None:
            plan.append((slot, kind))
    return BackfillPlan(slots=len(slots), plan=plan)


def create_backfill(
    ctx: Context,
    tenant_id: str,
    project_id: str,
    agent_id: str | None,
    trigger_id: str,
    *,
    start: datetime,
    end: datetime,
    mode: str = "missing",
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    dry_run: bool = False,
    created_by: str | None = None,
) -> tuple[Backfill | None, BackfillPlan]:
    """Backfill the trigger's slots in [``start``, ``end``) (at most 10,000), as
    invocations of origin ``backfill`` with their own ``scheduled_for``. A dry run
    answers the counts and writes nothing (None for the backfill)."""
    now = ctx.clock.now()
    _check(now, start, end, mode, max_concurrency)
    with ctx.db.read() as tx:
        trigger = require_trigger(tx, tenant_id, project_id, agent_id, trigger_id)
    require_enabled(trigger, "backfilling it")
    # The slots are computed outside any transaction (per-trigger work, SPEC §9).
    slots = control.backfill_slots(schedule_of(trigger), start, end, bounds_of(trigger))
    with ctx.db.read() as tx:
        rows = tx.slot_rows(trigger.id, start, end)
    plan = _plan(trigger, slots, rows, mode)
    if dry_run:
        return None, plan
    backfill = Backfill(
        id=new_id("bf", now),
        trigger_id=trigger.id,
        tenant_id=tenant_id,
        project_id=project_id,
        ref=trigger.ref,
        agent_id=trigger.agent_id,
        range_from=start,
        range_to=end,
        mode=mode,
        max_concurrency=max_concurrency,
        schedule={
            "cron_expression": trigger.cron_expression,
            "run_at": None if trigger.run_at is None else sched.format_instant(trigger.run_at),
            "timezone": trigger.timezone,
            **{
                key: value
                for key, value in (
                    ("rrule", trigger.rrule),
                    ("rrule_start", trigger.rrule_start),
                    ("calendar", trigger.calendar),
                )
                if value is not None
            },
        },
        status=BACKFILL_RUNNING if plan.plan else BACKFILL_COMPLETED,
        slots=plan.slots,
        created=plan.created,
        skipped=plan.skipped,
        dispatched=0,
        planned=plan.created,
        position=0,
        created_by=created_by,
        created_at=now,
        updated_at=now,
        completed_at=None if plan.plan else now,
    )
    with ctx.db.write() as tx:
        require_trigger(tx, tenant_id, project_id, agent_id, trigger_id)
        tx.insert_backfill(backfill, plan.plan)
        audit.record(tx, now, _backfill_change("backfill.create", None, backfill))
    log.info(
        "backfill created",
        tenant=tenant_id,
        project=project_id,
        trigger=trigger_id,
        backfill=backfill.id,
        slots=plan.slots,
        created=plan.created,
    )
    ctx.notifier.triggers_changed()
    return backfill, plan


def _backfill_change(action: str, before: Backfill | None, after: Backfill) -> audit.Change:
    return audit.Change(
        after.tenant_id,
        after.project_id,
        action,
        "backfill",
        after.id,
        audit.snapshot(before),
        audit.snapshot(after),
    )


def get_backfill(
    ctx: Context,
    tenant_id: str,
    project_id: str,
    agent_id: str | None,
    trigger_id: str,
    backfill_id: str,
) -> Backfill:
    with ctx.db.read() as tx:
        return _require(tx, tenant_id, project_id, agent_id, trigger_id, backfill_id)


def _require(
    tx: Control,
    tenant_id: str,
    project_id: str,
    agent_id: str | None,
    trigger_id: str,
    backfill_id: str,
) -> Backfill:
    found = tx.find_backfill(tenant_id, project_id, trigger_id, backfill_id)
    if found is None or (agent_id is not None and found.agent_id != agent_id):
        raise NotFound(f"backfill {backfill_id!r} not found")
    return found


def list_backfills(
    ctx: Context,
    tenant_id: str,
    project_id: str,
    agent_id: str | None,
    trigger_id: str,
    before: str | None,
    limit: int,
) -> list[Backfill]:
    with ctx.db.read() as tx:
        require_trigger(tx, tenant_id, project_id, agent_id, trigger_id)
        return tx.list_backfills(trigger_id, before, limit)


def cancel_backfill(
    ctx: Context,
    tenant_id: str,
    project_id: str,
    agent_id: str | None,
    trigger_id: str,
    backfill_id: str,
) -> Backfill:
    """Stop a running backfill: it dispatches nothing more and its pending invocations
    are cancelled; those already running go on. A finished one answers 409."""
    now = ctx.clock.now()
    with ctx.db.write() as tx:
        current = _require(tx, tenant_id, project_id, agent_id, trigger_id, backfill_id)
        if current.status != BACKFILL_RUNNING:
            raise Conflict(f"backfill {backfill_id} is already {current.status}")
        values = {"status": BACKFILL_CANCELLED, "updated_at": now, "completed_at": now}
        tx.update_backfill(current.id, values)
        pending = tx.pending_of_backfill(current.id)
        cancelled = tx.cancel_invocations(pending, now, "cancelled: the backfill was cancelled")
        updated = replace(current, **values)  # type: ignore[arg-type]
        audit.record(tx, now, _backfill_change("backfill.cancel", current, updated))
    ctx.notifier.invocations_cancelled(cancelled)
    return updated


# -- the scheduler's part -----------------------------------------------------------------


def dispatch_backfills(ctx: Context, now: datetime, fence: Fence | None = None) -> int:
    """Dispatch the running backfills' next slots, within each one's
    ``max_concurrency``; complete those with every slot dispatched and every invocation
    final. Returns the invocations created."""
    with ctx.db.read() as tx:
        running = tx.running_backfills(RUNNING_PER_PASS)
        if not running:
            return 0
        active = tx.active_per_backfill([b.id for b in running])
        owners = tx.get_triggers(b.trigger_id for b in running)
        held = tx.paused_projects({(b.tenant_id, b.project_id) for b in running})
    created = 0
    for backfill in running:
        trigger = owners.get(backfill.trigger_id)
        in_flight = active.get(backfill.id, 0)
        if trigger is None:
            _finish(ctx, now, fence, backfill, BACKFILL_CANCELLED)
            continue
        if not trigger.enabled or (backfill.tenant_id, backfill.project_id) in held:
            continue
        if backfill.position >= backfill.planned:
            if in_flight == 0:
                _finish(ctx, now, fence, backfill, BACKFILL_COMPLETED)
            continue
        room = min(backfill.max_concurrency - in_flight, BATCH)
        if room > 0:
            created += _dispatch_one(ctx, now, fence, backfill, trigger, room)
    if created:
        ctx.notifier.invocations_ready()
    return created


def _hold(tx: Leadership, fence: Fence | None, now: datetime) -> None:
    if fence is not None and not tx.hold_fence(
        fence.run_id, fence.generation, now, now + timedelta(seconds=fence.lease_seconds)
    ):
        raise Superseded(fence.run_id)


def _finish(
    ctx: Context, now: datetime, fence: Fence | None, backfill: Backfill, status: str
) -> None:
    with ctx.db.write() as tx:
        _hold(tx, fence, now)
        values = {"status": status, "updated_at": now, "completed_at": now}
        tx.update_backfill(backfill.id, values, position=backfill.position)
    log.info("backfill " + status, backfill=backfill.id, trigger=backfill.trigger_id)


def _dispatch_one(
    ctx: Context,
    now: datetime,
    fence: Fence | None,
    backfill: Backfill,
    trigger: Trigger,
    room: int,
) -> int:
    with ctx.db.read() as tx:
        batch = tx.planned_slots(backfill.id, backfill.position, room)
    rows = []
    for slot, kind in batch:
        rows.append(
            invocation_row(
                trigger,
                origin="backfill",
                scheduled_for=slot,
                key=control.backfill_key_of(kind, trigger.id, backfill.id, slot),
                now=now,
                not_before=now,
                backfill_id=backfill.id,
            )
        )
    with ctx.db.write() as tx:
        _hold(tx, fence, now)
        # Locks the row, and checks nobody moved or cancelled the backfill meanwhile.
        if not tx.update_backfill(backfill.id, {"updated_at": now}, position=backfill.position):
            return 0
        inserted = len(tx.insert_invocations(rows))
        taken = len(rows) - inserted  # keys taken meanwhile: those slots are not run again
        values: dict[str, Any] = {
            "position": backfill.position + len(batch),
            "dispatched": backfill.dispatched + inserted,
            "created": backfill.created - taken,
            "skipped": backfill.skipped + taken,
        }
        tx.update_backfill(backfill.id, values)
    return inserted


def wants_poll(ctx: Context) -> bool:
    """Whether a backfill is running (the scheduler then looks again soon)."""
    with ctx.db.read() as tx:
        return tx.any_running_backfill()
