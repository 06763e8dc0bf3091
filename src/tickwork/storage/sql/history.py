"""Invocations and attempts as they are read back (API, CLI, scheduler view)."""

from __future__ import annotations

import sqlalchemy as sa

from tickwork.storage import tables as t
from tickwork.storage.ports import EVERY_INVOCATION, InvocationFilter
from tickwork.storage.records import (
    PENDING,
    Attempt,
    Invocation,
)
from tickwork.storage.sql.base import TxBase, record


class HistorySql(TxBase):
    """Invocations and attempts, read back."""

    def get_invocation(self, invocation_id: str) -> Invocation | None:
        q = sa.select(t.invocations).where(t.invocations.c.id == invocation_id)
        row = self.conn.execute(q).first()
        return None if row is None else record(Invocation, row)

    def find_invocation(
        self, tenant_id: str, project_id: str, invocation_id: str, trigger_id: str | None = None
    ) -> Invocation | None:
        """The invocation if it belongs to this tenant and project (and trigger, if
        given), scoped in SQL like :meth:`find_trigger`."""
        c = t.invocations.c
        q = sa.select(t.invocations).where(
            c.id == invocation_id, c.tenant_id == tenant_id, c.project_id == project_id
        )
        if trigger_id is not None:
            q = q.where(c.trigger_id == trigger_id)
        row = self.conn.execute(q).first()
        return None if row is None else record(Invocation, row)

    def list_invocations(
        self,
        tenant_id: str,
        project_id: str,
        where: InvocationFilter = EVERY_INVOCATION,
        *,
        before: str | None = None,
        limit: int = 50,
    ) -> list[Invocation]:
        c = t.invocations.c
        q = sa.select(t.invocations).where(c.tenant_id == tenant_id, c.project_id == project_id)
        if where.trigger_id is not None:
            q = q.where(c.trigger_id == where.trigger_id)
        if where.agent_id is not None:
            q = q.where(c.agent_id == where.agent_id)
        if where.ref is not None:
            q = q.where(c.ref == where.ref)
        if where.statuses:
            q = q.where(c.status.in_(list(where.statuses)))
        if where.origins:
            q = q.where(c.origin.in_(list(where.origins)))
        if where.scheduled_from is not None:
            q = q.where(c.scheduled_for >= where.scheduled_from)
        if where.scheduled_to is not None:
            q = q.where(c.scheduled_for < where.scheduled_to)
        if before is not None:
            q = q.where(c.id < before)
        q = q.order_by(c.id.desc()).limit(limit)
        return [record(Invocation, r) for r in self.conn.execute(q)]

    def pending_invocations(self, tenant_id: str, project_id: str, limit: int) -> list[Invocation]:
        """The project's pending invocations, in the order workers may start them."""
        c = t.invocations.c
        q = (
            sa.select(t.invocations)
            .where(c.tenant_id == tenant_id, c.project_id == project_id, c.status == PENDING)
            .order_by(c.not_before, c.id)
            .limit(limit)
        )
        return [record(Invocation, r) for r in self.conn.execute(q)]

    def list_attempts(self, invocation_id: str) -> list[Attempt]:
        q = (
            sa.select(t.invocation_attempts)
            .where(t.invocation_attempts.c.invocation_id == invocation_id)
            .order_by(t.invocation_attempts.c.attempt)
        )
        return [record(Attempt, r) for r in self.conn.execute(q)]
