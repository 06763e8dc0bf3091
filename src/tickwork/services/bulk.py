"""Bulk cancel and rerun of a project's invocations by filter (SPEC §10).

A bulk action matches at most ``limit`` (≤ 10,000) invocations, oldest first, and
changes them in transactions of at most :data:`CHUNK`, so a large action never holds
the write lock for long (SPEC §9). Each change is guarded like the single one: a cancel
changes only what is still pending or running when its transaction runs (a worker that
finished meanwhile keeps its outcome), a rerun repeats only final invocations whose
trigger still exists and is enabled. ``matched`` counts what the filter found,
``changed`` what was (or, in a dry run, would be) cancelled or rerun.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from tickwork.domain.ids import new_id
from tickwork.errors import ValidationError
from tickwork.logging import get_logger
from tickwork.services import audit
from tickwork.services.context import Context
from tickwork.services.resources import require_project
from tickwork.services.triggers import invocation_row
from tickwork.storage.ports import BulkFilter
from tickwork.storage.records import (
    ACTIVE_STATUSES,
    FAILED,
    FINAL_STATUSES,
    ORIGINS,
    STATUSES,
    Invocation,
)

log = get_logger("tickwork.bulk")

MAX_LIMIT = 10_000
DEFAULT_LIMIT = 1000
CHUNK = 500


@dataclass(frozen=True)
class BulkResult:
    matched: int
    changed: int


def _filter(
    action: str,
    statuses: Sequence[str] | None,
    allowed: frozenset[str],
    default: Sequence[str],
    agent_id: str | None,
    trigger_id: str | None,
    origins: Sequence[str] | None,
    scheduled_from: datetime | None,
    scheduled_to: datetime | None,
    limit: int,
) -> BulkFilter:
    for status in statuses or ():
        if status not in STATUSES:
            raise ValidationError("status", f"{status!r} is not one of {', '.join(STATUSES)}")
        if status not in allowed:
            names = ", ".join(s for s in STATUSES if s in allowed)
            raise ValidationError("status", f"{status!r}: only {names} invocations can be {action}")
    for origin in origins or ():
        if origin not in ORIGINS:
            raise ValidationError("origin", f"{origin!r} is not one of {', '.join(ORIGINS)}")
    for name, value in (("from", scheduled_from), ("to", scheduled_to)):
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise ValidationError(name, "must be an instant with a UTC offset (e.g. ...Z)")
    if scheduled_from is not None and scheduled_to is not None and scheduled_to <= scheduled_from:
        raise ValidationError("to", "must be after from")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError("limit", f"must be an integer from 1 to {MAX_LIMIT}")
    return BulkFilter(
        statuses=list(statuses or default),
        agent_id=agent_id,
        trigger_id=trigger_id,
        origins=list(origins) if origins else None,
        scheduled_from=scheduled_from,
        scheduled_to=scheduled_to,
    )


def _match(
    ctx: Context, tenant_id: str, project_id: str, where: BulkFilter, limit: int
) -> list[Invocation]:
    with ctx.db.read() as tx:
        require_project(tx, tenant_id, project_id)
        return tx.match_invocations(tenant_id, project_id, where, limit)


def _bulk_change(
    action: str, tenant_id: str, project_id: str, where: BulkFilter, ids: Sequence[str]
) -> audit.Change:
    """One event per batch of a bulk action: the filter it matched and what it changed."""
    return audit.Change(
        tenant_id,
        project_id,
        action,
        "project",
        project_id,
        None,
        {"filter": asdict(where), "invocation_ids": list(ids)},
    )


def bulk_cancel(
    ctx: Context,
    tenant_id: str,
    project_id: str,
    *,
    statuses: Sequence[str] | None = None,
    agent_id: str | None = None,
    trigger_id: str | None = None,
    origins: Sequence[str] | None = None,
    scheduled_from: datetime | None = None,
    scheduled_to: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
    dry_run: bool = False,
) -> BulkResult:
    """Cancel the matching pending and running invocations (``status`` may narrow it to
    one of the two); running attempts are stopped within about a second."""
    where = _filter(
        "cancelled",
        statuses,
        ACTIVE_STATUSES,
        sorted(ACTIVE_STATUSES),
        agent_id,
        trigger_id,
        origins,
        scheduled_from,
        scheduled_to,
        limit,
    )
    matched = _match(ctx, tenant_id, project_id, where, limit)
    if dry_run:
        return BulkResult(len(matched), len(matched))
    changed: list[str] = []
    for start in range(0, len(matched), CHUNK):
        ids = [inv.id for inv in matched[start : start + CHUNK]]
        with ctx.db.write() as tx:
            now = ctx.clock.now()
            done = tx.cancel_invocations(ids, now, "cancelled by request (bulk)")
            if done:
                change = _bulk_change("invocations.cancel", tenant_id, project_id, where, done)
                audit.record(tx, now, change)
        changed += done
        ctx.notifier.invocations_cancelled(done)
    log.info(
        "bulk cancel",
        tenant=tenant_id,
        project=project_id,
        matched=len(matched),
        changed=len(changed),
    )
    return BulkResult(len(matched), len(changed))


def bulk_rerun(
    ctx: Context,
    tenant_id: str,
    project_id: str,
    *,
    statuses: Sequence[str] | None = None,
    agent_id: str | None = None,
    trigger_id: str | None = None,
    origins: Sequence[str] | None = None,
    scheduled_from: datetime | None = None,
    scheduled_to: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
    dry_run: bool = False,
) -> BulkResult:
    """Rerun the matching final invocations (default: the failed ones), each as a new
    invocation of origin ``rerun`` naming its original in ``rerun_of``, with the same
    slot and payload. Those whose trigger is gone or disabled are matched, not rerun."""
    where = _filter(
        "rerun",
        statuses,
        FINAL_STATUSES,
        [FAILED],
        agent_id,
        trigger_id,
        origins,
        scheduled_from,
        scheduled_to,
        limit,
    )
    matched = _match(ctx, tenant_id, project_id, where, limit)
    changed = 0
    for start in range(0, len(matched), CHUNK):
        chunk = matched[start : start + CHUNK]
        now = ctx.clock.now()
        with ctx.db.read() if dry_run else ctx.db.write() as tx:
            owners = tx.get_triggers(inv.trigger_id for inv in chunk)
            rows = []
            for original in chunk:
                trigger = owners.get(original.trigger_id)
                if trigger is None or not trigger.enabled:
                    continue
                inv_id = new_id("inv", now)
                rows.append(
                    invocation_row(
                        trigger,
                        origin="rerun",
                        scheduled_for=original.scheduled_for,
                        key=f"rerun:{trigger.id}:{inv_id}",
                        now=now,
                        not_before=now,
                        invocation_id=inv_id,
                        payload=original.payload,
                        rerun_of=original.id,
                    )
                )
            if not dry_run:
                inserted = tx.insert_invocations(rows)
                if inserted:
                    change = _bulk_change(
                        "invocations.rerun", tenant_id, project_id, where, inserted
                    )
                    audit.record(tx, now, change)
        changed += len(rows)
    if changed and not dry_run:
        ctx.notifier.invocations_ready()
    log.info(
        "bulk rerun",
        tenant=tenant_id,
        project=project_id,
        matched=len(matched),
        changed=changed,
        dry_run=dry_run,
    )
    return BulkResult(len(matched), changed)
