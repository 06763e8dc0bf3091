"""Retention of invocation history and the audit log (the
:class:`~tickwork.storage.ports.Retention` and :class:`~tickwork.storage.ports.Audit`
ports, SPEC §11).

Every read that chooses what to delete is a range scan of an index: finished
invocations by project and completion (``ix_invocations_retention``), by trigger and
completion (``ix_invocations_finished``), audit events by scope and id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from tickwork.storage import tables as t
from tickwork.storage.ports import AuditEvent, HistoryRow, RetentionScope, TriggerRetention
from tickwork.storage.records import COMPLETED, PENDING, Project
from tickwork.storage.sql.base import TxBase, record

_i = t.invocations.c
_a = t.invocation_attempts.c
_p = t.projects.c
_s = t.scheduled_triggers.c
_e = t.audit_events.c
_CHUNK = 500
_INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL


_BOUNDARY = (
    sa.select(_i.completed_at)
    .where(_i.trigger_id == sa.bindparam("trigger_id"), _i.completed_at.is_not(None))
    .order_by(_i.completed_at.desc())
    .offset(sa.bindparam("skip", type_=sa.Integer()))
    .limit(1)
)


def _with_history() -> sa.Select[Any]:
    """Up to ``:limit`` trigger ids after ``:after`` that have finished invocations, in id
    order, each with whether its trigger still exists and its project's count override:
    a walk of ``ix_invocations_finished`` from one trigger to the next (a recursive
    query, one probe a step). A trigger with no history costs nothing, however many
    there are (a million one-time triggers waiting for their day)."""

    def step(after: Any) -> sa.ScalarSelect[Any]:
        return (
            sa.select(sa.func.min(_i.trigger_id))
            .where(_i.completed_at.is_not(None), _i.trigger_id > after)
            .scalar_subquery()
        )

    walk = sa.select(
        step(sa.bindparam("after", type_=_i.trigger_id.type)).label("tid"),
        sa.literal(1, sa.Integer()).label("n"),
    ).cte("walk", recursive=True)
    walk = walk.union_all(
        sa.select(step(walk.c.tid), walk.c.n + 1).where(
            walk.c.tid.is_not(None), walk.c.n < sa.bindparam("limit", type_=sa.Integer())
        )
    )
    return (
        sa.select(walk.c.tid, _s.id.is_not(None), _p.history_max_per_trigger)
        .select_from(walk)
        .outerjoin(t.scheduled_triggers, _s.id == walk.c.tid)
        .outerjoin(t.projects, sa.and_(_p.tenant_id == _s.tenant_id, _p.id == _s.project_id))
        .where(walk.c.tid.is_not(None))
        .order_by(walk.c.tid)
    )


_WITH_HISTORY = _with_history()


class RetentionSql(TxBase):
    def lock_project(self, tenant_id: str, project_id: str) -> Project | None:
        q = sa.select(t.projects).where(_p.tenant_id == tenant_id, _p.id == project_id)
        if self.postgres:
            q = q.with_for_update()
        row = self.conn.execute(q).first()
        return None if row is None else record(Project, row)

    def set_project_retention(
        self, tenant_id: str, project_id: str, values: Mapping[str, int | None]
    ) -> None:
        unknown = set(values) - {"history_retention_days", "history_max_per_trigger"}
        if unknown:
            raise ValueError(f"not retention settings: {sorted(unknown)}")
        stmt = (
            t.projects.update()
            .where(_p.tenant_id == tenant_id, _p.id == project_id)
            .values(**values)
        )
        self.conn.execute(stmt)

    def retention_scopes(self, after: tuple[str, str] | None, limit: int) -> list[RetentionScope]:
        projects = sa.select(
            _p.tenant_id, _p.id, _p.history_retention_days, _p.history_max_per_trigger
        )
        tenants = sa.select(
            t.tenants.c.id,
            sa.literal("", sa.String()),
            sa.null().cast(sa.Integer()),
            sa.null().cast(sa.Integer()),
        )
        both = sa.union_all(projects, tenants).subquery()
        cols = list(both.c)
        q = sa.select(*cols)
        if after is not None:
            q = q.where(sa.tuple_(cols[0], cols[1]) > sa.tuple_(*after))
        q = q.order_by(cols[0], cols[1]).limit(limit)
        return [RetentionScope(*r) for r in self.conn.execute(q)]

    def longest_retention_days(self, default: int) -> int:
        q = sa.select(sa.func.max(_p.history_retention_days))
        found = self.conn.execute(q).scalar_one_or_none()
        return max(default, int(found)) if found is not None else default

    def expired_history(
        self,
        tenant_id: str,
        project_id: str,
        cutoff: datetime,
        after: datetime | None,
        limit: int,
    ) -> list[HistoryRow]:
        q = sa.select(_i.id, _i.trigger_id, _i.completed_at).where(
            _i.tenant_id == tenant_id,
            _i.project_id == project_id,
            _i.completed_at.is_not(None),
            _i.completed_at < cutoff,
        )
        if after is not None:
            q = q.where(_i.completed_at > after)
        q = q.order_by(_i.completed_at).limit(limit)
        return [record(HistoryRow, r) for r in self.conn.execute(q)]

    def triggers_for_retention(self, after: str | None, limit: int) -> list[TriggerRetention]:
        params = {"after": after or "", "limit": limit}
        return [TriggerRetention(*r) for r in self.conn.execute(_WITH_HISTORY, params)]

    def history_boundary(self, trigger_id: str, keep: int) -> datetime | None:
        # Reads the newest ``keep`` entries of the trigger's finished invocations from
        # the index, no row: the completion of the oldest one still kept.
        # One statement built once: a pass probes every trigger.
        params = {"trigger_id": trigger_id, "skip": keep - 1}
        found: datetime | None = self.conn.execute(_BOUNDARY, params).scalar_one_or_none()
        return found

    def history_before(self, trigger_id: str, boundary: datetime, limit: int) -> list[HistoryRow]:
        q = (
            sa.select(_i.id, _i.trigger_id, _i.completed_at)
            .where(
                _i.trigger_id == trigger_id,
                _i.completed_at.is_not(None),
                _i.completed_at < boundary,
            )
            .order_by(_i.completed_at)
            .limit(limit)
        )
        return [record(HistoryRow, r) for r in self.conn.execute(q)]

    def protected_history(self, trigger_ids: Iterable[str]) -> set[str]:
        ids = list(dict.fromkeys(trigger_ids))
        kept: set[str] = set()
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            # One statement per chunk: for each trigger that exists (only those show a
            # last run and hand one to their next run), its last run and its latest
            # completed run, each one probe of an index.
            inner = t.invocations.alias("kept")
            k = inner.c
            last = (
                sa.select(k.id)
                .where(
                    k.trigger_id == _s.id,
                    sa.or_(k.status != PENDING, k.started_at.is_not(None)),
                )
                .order_by(k.id.desc())
                .limit(1)
                .scalar_subquery()
            )
            previous = (
                sa.select(k.id)
                .where(k.trigger_id == _s.id, k.status == COMPLETED)
                .order_by(k.completed_at.desc(), k.id.desc())
                .limit(1)
                .scalar_subquery()
            )
            q = sa.select(last, previous).where(_s.id.in_(chunk))
            for row in self.conn.execute(q):
                kept.update(str(found) for found in row if found is not None)
        return kept

    def delete_history(self, ids: Sequence[str]) -> tuple[int, int]:
        invocations = attempts = 0
        for start in range(0, len(ids), _CHUNK):
            chunk = list(ids[start : start + _CHUNK])
            # Finished only, whatever the caller read: a row that went back to pending
            # meanwhile (a rerun reuses no row, but be sure) is never deleted.
            finished = sa.select(_i.id).where(_i.id.in_(chunk), _i.completed_at.is_not(None))
            attempts += int(
                self.conn.execute(
                    t.invocation_attempts.delete().where(_a.invocation_id.in_(finished))
                ).rowcount
            )
            invocations += int(
                self.conn.execute(
                    t.invocations.delete().where(_i.id.in_(chunk), _i.completed_at.is_not(None))
                ).rowcount
            )
        return invocations, attempts

    def oldest_finished(self, tenant_id: str, project_id: str) -> datetime | None:
        q = sa.select(sa.func.min(_i.completed_at)).where(
            _i.tenant_id == tenant_id, _i.project_id == project_id, _i.completed_at.is_not(None)
        )
        found: datetime | None = self.conn.execute(q).scalar_one_or_none()
        return found

    # -- audit ----------------------------------------------------------------------------

    def insert_audit(self, events: Sequence[AuditEvent]) -> None:
        if events:
            self.conn.execute(t.audit_events.insert(), [_audit_values(e) for e in events])

    def list_audit(
        self, tenant_id: str, project_id: str | None, before: str | None, limit: int
    ) -> list[AuditEvent]:
        q = sa.select(t.audit_events).where(_e.tenant_id == tenant_id)
        if project_id is not None:
            q = q.where(_e.project_id == project_id)
        if before is not None:
            q = q.where(_e.id < before)
        q = q.order_by(_e.id.desc()).limit(limit)
        return [record(AuditEvent, r) for r in self.conn.execute(q)]

    def delete_audit_before(
        self, tenant_id: str | None, project_id: str | None, before_id: str, limit: int
    ) -> int:
        q = sa.select(_e.id).where(_e.id < before_id)
        if tenant_id is not None:
            q = q.where(_e.tenant_id == tenant_id, _e.project_id == (project_id or ""))
        ids = [str(r[0]) for r in self.conn.execute(q.order_by(_e.id).limit(limit))]
        if not ids:
            return 0
        return int(self.conn.execute(t.audit_events.delete().where(_e.id.in_(ids))).rowcount)

    def reclaim_space(self, pages: int) -> int:
        if self.postgres:  # autovacuum returns PostgreSQL's space
            return 0
        mode = self.conn.exec_driver_sql("PRAGMA auto_vacuum").scalar_one()
        if int(mode) != _INCREMENTAL:
            return 0
        # The statement frees one page each time it is stepped: the DB-API cursor's
        # execute steps it once, executescript runs it to the end (and, the driver's
        # own transaction handling being off, commits nothing).
        raw = self.conn.connection.dbapi_connection
        assert raw is not None
        raw.executescript(f"PRAGMA incremental_vacuum({int(pages)});")
        return int(self.conn.exec_driver_sql("PRAGMA freelist_count").scalar_one())

    def oldest_audit(self) -> datetime | None:
        q = sa.select(_e.at).order_by(_e.id).limit(1)
        found: datetime | None = self.conn.execute(q).scalar_one_or_none()
        return found


def _audit_values(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "tenant_id": event.tenant_id,
        "project_id": event.project_id,
        "at": event.at,
        "actor": event.actor,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "before": event.before,
        "after": event.after,
    }
