"""Lifecycle and control (SPEC §10): project pauses, the scheduler's bookkeeping of a
trigger's control state, backfills and their plans, bulk selections of invocations."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from tickwork.storage import tables as t
from tickwork.storage.ports import BulkFilter, SlotRow
from tickwork.storage.records import (
    ACTIVE_STATUSES,
    BACKFILL_RUNNING,
    PENDING,
    Backfill,
    Invocation,
)
from tickwork.storage.sql.base import TxBase


class ControlSql(TxBase):
    """Project pauses, trigger control state, backfills, bulk selections."""

    # -- projects --------------------------------------------------------------------------

    def set_project_pause(self, tenant_id: str, project_id: str, values: Mapping[str, Any]) -> bool:
        """Write a project's pause columns; False when there is no such project."""
        c = t.projects.c
        stmt = (
            t.projects.update().where(c.tenant_id == tenant_id, c.id == project_id).values(**values)
        )
        return bool(self.conn.execute(stmt).rowcount)

    def paused_projects(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Of these (tenant, project) pairs, those paused now."""
        wanted = sorted(set(keys))
        if not wanted:
            return set()
        c = t.projects.c
        q = sa.select(c.tenant_id, c.id).where(
            c.paused.is_(True), sa.tuple_(c.tenant_id, c.id).in_(wanted)
        )
        return {(str(r[0]), str(r[1])) for r in self.conn.execute(q)}

    def projects_to_resume(self, now: datetime, limit: int) -> list[tuple[str, str]]:
        """Paused projects whose pause ends by ``now``."""
        c = t.projects.c
        q = (
            sa.select(c.tenant_id, c.id)
            .where(c.paused_until.is_not(None), c.paused_until <= now, c.paused.is_(True))
            .order_by(c.paused_until)
            .limit(limit)
        )
        return [(str(r[0]), str(r[1])) for r in self.conn.execute(q)]

    def earliest_project_resume(self) -> datetime | None:
        c = t.projects.c
        row = self.conn.execute(
            sa.select(c.paused_until)
            .where(c.paused_until.is_not(None))
            .order_by(c.paused_until)
            .limit(1)
        ).first()
        return None if row is None else row[0]

    def rearm_project_triggers(self, tenant_id: str, project_id: str, at: datetime) -> int:
        """Wake the project's triggers at ``at``: those the pause parked (or that came due
        during it) carry on from their first slot at or after ``at``. Triggers paused on
        their own without an end, and disabled ones, stay as they are."""
        c = t.scheduled_triggers.c
        stmt = (
            t.scheduled_triggers.update()
            .where(
                c.tenant_id == tenant_id,
                c.project_id == project_id,
                c.enabled.is_(True),
                sa.or_(c.next_run_at.is_(None), c.next_run_at < at),
                sa.not_(sa.and_(c.paused.is_(True), c.paused_until.is_(None))),
                sa.or_(c.remaining_runs.is_(None), c.remaining_runs > 0),
            )
            .values(next_run_at=at, rearm=True)
        )
        return int(self.conn.execute(stmt).rowcount)

    # -- triggers, as the scheduler keeps them -----------------------------------------------

    def park_triggers(self, seen: Sequence[tuple[str, datetime | None]]) -> set[str]:
        """Take the triggers of a paused project off the schedule (``next_run_at`` None)
        when still as seen (same ``next_run_at``); returns the ids parked."""
        parked: set[str] = set()
        c = t.scheduled_triggers.c
        for trigger_id, next_run_at in seen:
            stmt = (
                t.scheduled_triggers.update()
                .where(c.id == trigger_id, c.next_run_at == next_run_at)
                .values(next_run_at=None, rearm=False)
            )
            if self.conn.execute(stmt).rowcount:
                parked.add(trigger_id)
        return parked

    def set_trigger_controls(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Apply ``{"id", ...control columns}`` rows (each with the same columns)."""
        if not rows:
            return
        columns = [k for k in rows[0] if k != "id"]
        c = t.scheduled_triggers.c
        stmt = (
            t.scheduled_triggers.update()
            .where(c.id == sa.bindparam("b_id"))
            .values(**{k: sa.bindparam(f"b_{k}") for k in columns})
        )
        self.conn.execute(stmt, [{f"b_{k}": v for k, v in row.items()} for row in rows])

    # -- backfills ---------------------------------------------------------------------------

    def insert_backfill(self, backfill: Backfill, plan: Sequence[tuple[datetime, str]]) -> None:
        """Store a backfill with its plan (``(slot, kind)``, oldest first)."""
        self.conn.execute(t.backfills.insert().values(**backfill.__dict__))
        if plan:
            self.conn.execute(
                t.backfill_slots.insert(),
                [
                    {"backfill_id": backfill.id, "position": i, "slot": slot, "kind": kind}
                    for i, (slot, kind) in enumerate(plan)
                ],
            )

    def planned_slots(
        self, backfill_id: str, position: int, limit: int
    ) -> list[tuple[datetime, str]]:
        """The backfill's planned slots from ``position`` on, at most ``limit``."""
        c = t.backfill_slots.c
        q = (
            sa.select(c.slot, c.kind)
            .where(c.backfill_id == backfill_id, c.position >= position)
            .order_by(c.position)
            .limit(limit)
        )
        return [(r[0], str(r[1])) for r in self.conn.execute(q)]

    @staticmethod
    def _backfill(row: Any) -> Backfill:
        return Backfill(**row._mapping)

    def get_backfill(self, backfill_id: str) -> Backfill | None:
        row = self.conn.execute(
            sa.select(t.backfills).where(t.backfills.c.id == backfill_id)
        ).first()
        return None if row is None else self._backfill(row)

    def find_backfill(
        self, tenant_id: str, project_id: str, trigger_id: str, backfill_id: str
    ) -> Backfill | None:
        c = t.backfills.c
        q = sa.select(t.backfills).where(
            c.id == backfill_id,
            c.tenant_id == tenant_id,
            c.project_id == project_id,
            c.trigger_id == trigger_id,
        )
        row = self.conn.execute(q).first()
        return None if row is None else self._backfill(row)

    def list_backfills(self, trigger_id: str, before: str | None, limit: int) -> list[Backfill]:
        """Newest first; ``before`` is the cursor (an id from the previous page)."""
        c = t.backfills.c
        q = sa.select(t.backfills).where(c.trigger_id == trigger_id)
        if before is not None:
            q = q.where(c.id < before)
        return [self._backfill(r) for r in self.conn.execute(q.order_by(c.id.desc()).limit(limit))]

    def running_backfills(self, limit: int) -> list[Backfill]:
        """Backfills still running, oldest first."""
        c = t.backfills.c
        q = (
            sa.select(t.backfills)
            .where(c.status == BACKFILL_RUNNING)
            .order_by(c.created_at, c.id)
            .limit(limit)
        )
        return [self._backfill(r) for r in self.conn.execute(q)]

    def any_running_backfill(self) -> bool:
        c = t.backfills.c
        q = sa.select(c.id).where(c.status == BACKFILL_RUNNING).limit(1)
        return self.conn.execute(q).first() is not None

    def update_backfill(
        self, backfill_id: str, values: Mapping[str, Any], *, position: int | None = None
    ) -> bool:
        """Write a running backfill's columns, if it is still running (and, with
        ``position``, still at that position); False otherwise."""
        c = t.backfills.c
        stmt = t.backfills.update().where(c.id == backfill_id, c.status == BACKFILL_RUNNING)
        if position is not None:
            stmt = stmt.where(c.position == position)
        return bool(self.conn.execute(stmt.values(**values)).rowcount)

    def active_per_backfill(self, backfill_ids: Iterable[str]) -> dict[str, int]:
        ids = sorted(set(backfill_ids))
        if not ids:
            return {}
        c = t.invocations.c
        q = (
            sa.select(c.backfill_id, sa.func.count())
            .where(c.backfill_id.in_(ids), c.status.in_(sorted(ACTIVE_STATUSES)))
            .group_by(c.backfill_id)
        )
        return {str(r[0]): int(r[1]) for r in self.conn.execute(q)}

    def pending_of_backfill(self, backfill_id: str) -> list[str]:
        c = t.invocations.c
        q = sa.select(c.id).where(c.backfill_id == backfill_id, c.status == PENDING)
        return [str(r[0]) for r in self.conn.execute(q.order_by(c.id))]

    def slot_rows(self, trigger_id: str, start: datetime, end: datetime) -> list[SlotRow]:
        """The trigger's invocations with ``scheduled_for`` in [start, end)."""
        c = t.invocations.c
        q = sa.select(c.id, c.scheduled_for, c.idempotency_key, c.status, c.created_at).where(
            c.trigger_id == trigger_id, c.scheduled_for >= start, c.scheduled_for < end
        )
        return [SlotRow(*r) for r in self.conn.execute(q)]

    # -- bulk ----------------------------------------------------------------------------------

    def match_invocations(
        self, tenant_id: str, project_id: str, where: BulkFilter, limit: int
    ) -> list[Invocation]:
        """The project's invocations that match, oldest first, at most ``limit``."""
        c = t.invocations.c
        q = sa.select(t.invocations).where(
            c.tenant_id == tenant_id, c.project_id == project_id, c.status.in_(list(where.statuses))
        )
        if where.agent_id is not None:
            q = q.where(c.agent_id == where.agent_id)
        if where.trigger_id is not None:
            q = q.where(c.trigger_id == where.trigger_id)
        if where.origins:
            q = q.where(c.origin.in_(list(where.origins)))
        if where.scheduled_from is not None:
            q = q.where(c.scheduled_for >= where.scheduled_from)
        if where.scheduled_to is not None:
            q = q.where(c.scheduled_for < where.scheduled_to)
        rows = self.conn.execute(q.order_by(c.id).limit(limit))
        return [Invocation(**r._mapping) for r in rows]
