"""Reading and cancelling invocations."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from tickwork.errors import Conflict, NotFound
from tickwork.services.context import Context
from tickwork.services.resources import require_project
from tickwork.storage.records import FINAL_STATUSES, Attempt, Invocation
from tickwork.storage.sql import Tx


def require_invocation(
    tx: Tx, tenant_id: str, project_id: str, trigger_id: str | None, invocation_id: str
) -> Invocation:
    inv = tx.get_invocation(invocation_id)
    if (
        inv is None
        or inv.tenant_id != tenant_id
        or inv.project_id != project_id
        or (trigger_id is not None and inv.trigger_id != trigger_id)
    ):
        raise NotFound(f"invocation {invocation_id!r} not found")
    return inv


def list_invocations(
    ctx: Context,
    tenant_id: str,
    project_id: str,
    *,
    trigger_id: str | None = None,
    statuses: Sequence[str] | None = None,
    scheduled_from: datetime | None = None,
    scheduled_to: datetime | None = None,
    before: str | None = None,
    limit: int = 50,
) -> list[Invocation]:
    with ctx.db.read() as tx:
        require_project(tx, tenant_id, project_id)
        return tx.list_invocations(
            tenant_id,
            project_id,
            trigger_id=trigger_id,
            statuses=statuses,
            scheduled_from=scheduled_from,
            scheduled_to=scheduled_to,
            before=before,
            limit=limit,
        )


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
    ctx.notifier.invocations_cancelled([inv.id])
    return updated
