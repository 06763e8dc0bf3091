"""What the scheduler reads and writes: due triggers and their next runs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from tickwork.storage import tables as t
from tickwork.storage.ports import NextRun
from tickwork.storage.records import (
    ACTIVE_STATUSES,
    Trigger,
)
from tickwork.storage.sql.base import SQLITE_MAX_PARAMETERS, TxBase, records
from tickwork.storage.types import sqlite_instant

_NEXT_RUN = ("next_run_at", "enabled", "last_error", "updated_at")


def _arrays(updates: Sequence[NextRun]) -> dict[str, list[Any]]:
    """The batch as the array parameters of the PostgreSQL statements below."""
    arrays: dict[str, list[Any]] = {"ids": [u.id for u in updates]}
    for name in _NEXT_RUN:
        arrays[f"{name}s"] = [getattr(u, name) for u in updates]
    return arrays


_PG_SET_NEXT_RUNS = sa.text(
    """
    UPDATE scheduled_triggers AS s
    SET next_run_at = v.next_run_at, enabled = v.enabled,
        last_error = v.last_error, updated_at = v.updated_at
    FROM unnest(:ids, :next_run_ats, :enableds, :last_errors, :updated_ats)
        AS v(id, next_run_at, enabled, last_error, updated_at)
    WHERE s.id = v.id
    """
).bindparams(
    sa.bindparam("ids", type_=postgresql.ARRAY(sa.Text())),
    sa.bindparam("next_run_ats", type_=postgresql.ARRAY(sa.DateTime(timezone=True))),
    sa.bindparam("enableds", type_=postgresql.ARRAY(sa.Boolean())),
    sa.bindparam("last_errors", type_=postgresql.ARRAY(sa.Text())),
    sa.bindparam("updated_ats", type_=postgresql.ARRAY(sa.DateTime(timezone=True))),
)


_PG_ADVANCE = sa.text(
    """
    UPDATE scheduled_triggers AS s
    SET next_run_at = v.next_run_at, enabled = v.enabled,
        last_error = v.last_error, updated_at = v.updated_at
    FROM unnest(:ids, :next_run_ats, :enableds, :last_errors, :updated_ats,
                :seen_next_run_ats, :seen_updated_ats)
        AS v(id, next_run_at, enabled, last_error, updated_at, seen_next_run_at,
             seen_updated_at)
    WHERE s.id = v.id AND s.next_run_at = v.seen_next_run_at
        AND s.updated_at = v.seen_updated_at
    RETURNING s.id
    """
).bindparams(
    sa.bindparam("ids", type_=postgresql.ARRAY(sa.Text())),
    sa.bindparam("next_run_ats", type_=postgresql.ARRAY(sa.DateTime(timezone=True))),
    sa.bindparam("enableds", type_=postgresql.ARRAY(sa.Boolean())),
    sa.bindparam("last_errors", type_=postgresql.ARRAY(sa.Text())),
    sa.bindparam("updated_ats", type_=postgresql.ARRAY(sa.DateTime(timezone=True))),
    sa.bindparam("seen_next_run_ats", type_=postgresql.ARRAY(sa.DateTime(timezone=True))),
    sa.bindparam("seen_updated_ats", type_=postgresql.ARRAY(sa.DateTime(timezone=True))),
)


_SQLITE_SET_NEXT_RUNS = """
    WITH v(id, next_run_at, enabled, last_error, updated_at) AS (VALUES {values})
    UPDATE scheduled_triggers
    SET next_run_at = v.next_run_at, enabled = v.enabled,
        last_error = v.last_error, updated_at = v.updated_at
    FROM v
    WHERE scheduled_triggers.id = v.id
    """
_SQLITE_ROWS = SQLITE_MAX_PARAMETERS // 5


class SchedulingSql(TxBase):
    """Due triggers and their next runs."""

    def due_triggers(self, now: datetime, limit: int, *, lock: bool = True) -> list[Trigger]:
        """Enabled triggers whose next run is due, oldest first; with ``lock``, locked for
        this transaction (other schedulers skip them on PostgreSQL)."""
        c = t.scheduled_triggers.c
        q = (
            sa.select(t.scheduled_triggers)
            .where(c.next_run_at.is_not(None), c.next_run_at <= now)
            .order_by(c.next_run_at)
            .limit(limit)
        )
        if self.postgres and lock:
            q = q.with_for_update(skip_locked=True)
        return records(Trigger, self.conn.execute(q))

    def set_next_runs(self, updates: Sequence[NextRun]) -> None:
        if not updates:
            return
        if self.postgres:
            # One statement for the whole batch rather than one per row.
            self.conn.execute(_PG_SET_NEXT_RUNS, _arrays(updates))
            return
        # SQLite: one UPDATE ... FROM (VALUES ...) per chunk, its values bound in the
        # stored form (the dispatch pass of a burst advances thousands of triggers).
        for start in range(0, len(updates), _SQLITE_ROWS):
            chunk = updates[start : start + _SQLITE_ROWS]
            flat: list[Any] = []
            for u in chunk:
                flat += (
                    u.id,
                    sqlite_instant(u.next_run_at),
                    u.enabled,
                    u.last_error,
                    sqlite_instant(u.updated_at),
                )
            values = ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk))
            self.conn.exec_driver_sql(_SQLITE_SET_NEXT_RUNS.format(values=values), tuple(flat))

    def advance_triggers(self, updates: Sequence[NextRun], seen: Sequence[Trigger]) -> set[str]:
        if not updates:
            return set()
        before = {trigger.id: trigger for trigger in seen}
        if self.postgres:
            arrays = _arrays(updates)
            arrays["seen_next_run_ats"] = [before[u.id].next_run_at for u in updates]
            arrays["seen_updated_ats"] = [before[u.id].updated_at for u in updates]
            return {str(r[0]) for r in self.conn.execute(_PG_ADVANCE, arrays)}
        # SQLite: this transaction holds the database's write lock, so what it reads
        # now stays true until it commits.
        c = t.scheduled_triggers.c
        current = self.conn.execute(
            sa.select(c.id, c.next_run_at, c.updated_at).where(c.id.in_([u.id for u in updates]))
        )
        unchanged = {
            str(r.id)
            for r in current
            if (r.next_run_at, r.updated_at) == (before[r.id].next_run_at, before[r.id].updated_at)
        }
        self.set_next_runs([u for u in updates if u.id in unchanged])
        return unchanged

    def earliest_next_run_at(self) -> datetime | None:
        c = t.scheduled_triggers.c
        row = self.conn.execute(
            sa.select(c.next_run_at)
            .where(c.next_run_at.is_not(None))
            .order_by(c.next_run_at)
            .limit(1)
        ).first()
        return None if row is None else row[0]

    def scheduled_triggers(self, tenant_id: str, project_id: str, limit: int) -> list[Trigger]:
        """The project's triggers that have a next run, soonest first (ties by id)."""
        c = t.scheduled_triggers.c
        q = (
            sa.select(t.scheduled_triggers)
            .where(
                c.tenant_id == tenant_id,
                c.project_id == project_id,
                c.next_run_at.is_not(None),
            )
            .order_by(c.next_run_at, c.id)
            .limit(limit)
        )
        return records(Trigger, self.conn.execute(q))

    def active_counts(self, trigger_ids: Iterable[str]) -> dict[str, int]:
        ids = list(trigger_ids)
        if not ids:
            return {}
        c = t.invocations.c
        q = (
            sa.select(c.trigger_id, sa.func.count())
            .where(c.trigger_id.in_(ids), c.status.in_(sorted(ACTIVE_STATUSES)))
            .group_by(c.trigger_id)
        )
        return {str(r[0]): int(r[1]) for r in self.conn.execute(q)}
