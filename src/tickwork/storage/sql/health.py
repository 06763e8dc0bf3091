"""Triggers' health and the notification outbox (the
:class:`~tickwork.storage.ports.Health` and :class:`~tickwork.storage.ports.Notifications`
ports)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from tickwork.storage import tables as t
from tickwork.storage.ports import (
    HealthChange,
    HealthFilter,
    NotificationConfig,
    OutboxRow,
    RunEnd,
)
from tickwork.storage.records import PENDING, Invocation, Trigger
from tickwork.storage.sql.base import TxBase, bulk_update, record

_s = t.scheduled_triggers.c
_i = t.invocations.c
_o = t.notification_outbox.c
_n = t.project_notifications.c
_CHUNK = 500
# The most pending invocations one late check reads (oldest first).
PENDING_WINDOW = 5000


def pending_before(before: datetime) -> sa.ColumnElement[bool]:
    """The trigger has a pending invocation that may start before ``before``."""
    return sa.exists(
        sa.select(_i.id).where(_i.trigger_id == _s.id, _i.status == PENDING, _i.not_before < before)
    ).correlate(t.scheduled_triggers)


def health_clause(where: HealthFilter) -> sa.ColumnElement[bool]:
    """The SQL of :func:`tickwork.domain.health.health_of` for one health."""
    enabled = _s.enabled == sa.true()
    unpaused = _s.paused == sa.false()
    late = sa.or_(_s.next_run_at < where.late_before, pending_before(where.late_before))
    if where.health == "disabled":
        return _s.enabled == sa.false()
    if where.health == "paused":
        return sa.and_(enabled, _s.paused == sa.true())
    if where.health == "late":
        return sa.and_(enabled, unpaused, late)
    failing = _s.consecutive_failures > 0
    if where.health == "failing":
        return sa.and_(enabled, unpaused, failing, sa.not_(late))
    return sa.and_(enabled, unpaused, sa.not_(failing), sa.not_(late))


# The health counts of triggers by id, as every settlement reads them (built once).
_COUNTS = (
    sa.select(_s.id, _s.consecutive_failures, _s.last_success_at, _s.last_failure_at)
    .where(_s.id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(_s.id)
)
_COUNTS_LOCKED = _COUNTS.with_for_update()


@dataclass(frozen=True, slots=True)
class _Counts:
    """A trigger's health counts, as :meth:`HealthSql.record_run_ends` keeps them."""

    id: str
    consecutive_failures: int
    last_success_at: datetime | None
    last_failure_at: datetime | None


class HealthSql(TxBase):
    def record_run_ends(self, ends: Sequence[RunEnd]) -> list[HealthChange]:
        if not ends:
            return []
        # Invocations are read back only when their trigger is not given, or when they
        # failed (their event describes them).
        wanted = [e.invocation_id for e in ends if e.trigger_id is None or not e.succeeded]
        invocations = self._invocations(wanted)
        trigger_of: dict[str, str] = {}
        for end in ends:
            inv = invocations.get(end.invocation_id)
            if inv is not None:
                trigger_of[end.invocation_id] = inv.trigger_id
            elif end.succeeded and end.trigger_id is not None:
                trigger_of[end.invocation_id] = end.trigger_id
        counts = self._health_counts(sorted(set(trigger_of.values())))
        counted: list[tuple[RunEnd, str, int, _Counts]] = []
        for end in ends:
            trigger_id = trigger_of.get(end.invocation_id)
            now = None if trigger_id is None else counts.get(trigger_id)
            if trigger_id is None or now is None:
                continue
            before = now.consecutive_failures
            if end.succeeded:
                now = _Counts(trigger_id, 0, end.at, now.last_failure_at)
            else:
                now = _Counts(trigger_id, before + 1, now.last_success_at, end.at)
            counts[trigger_id] = now
            counted.append((end, trigger_id, before, now))
        # The whole trigger only where an event follows (read before the update below,
        # and brought to each change's counts).
        eventful = {tid for end, tid, before, _ in counted if not end.succeeded or before > 0}
        triggers = self._triggers(sorted(eventful))
        changed = dict.fromkeys(tid for _, tid, _, _ in counted)
        bulk_update(
            self.conn,
            t.scheduled_triggers,
            [counts[trigger_id] for trigger_id in changed],
            match=["id"],
            set_=["consecutive_failures", "last_success_at", "last_failure_at"],
            name="record_run_ends",
        )
        changes: list[HealthChange] = []
        for end, trigger_id, before, now in counted:
            whole = triggers.get(trigger_id) if not end.succeeded or before > 0 else None
            if whole is not None:
                whole = replace(
                    whole,
                    consecutive_failures=now.consecutive_failures,
                    last_success_at=now.last_success_at,
                    last_failure_at=now.last_failure_at,
                )
            changes.append(
                HealthChange(
                    trigger_id,
                    end.invocation_id,
                    end.succeeded,
                    before,
                    now.consecutive_failures,
                    whole,
                    None if end.succeeded else invocations.get(end.invocation_id),
                )
            )
        return changes

    def _invocations(self, ids: Sequence[str]) -> dict[str, Invocation]:
        wanted = list(dict.fromkeys(ids))
        found: dict[str, Invocation] = {}
        for start in range(0, len(wanted), _CHUNK):
            q = sa.select(t.invocations).where(_i.id.in_(wanted[start : start + _CHUNK]))
            found.update({str(r.id): record(Invocation, r) for r in self.conn.execute(q)})
        return found

    def _health_counts(self, trigger_ids: list[str]) -> dict[str, _Counts]:
        found: dict[str, _Counts] = {}
        for start in range(0, len(trigger_ids), _CHUNK):
            # Locked in id order, so two settling workers never wait on each other in a
            # cycle.
            q = _COUNTS_LOCKED if self.postgres else _COUNTS
            chunk = {"ids": trigger_ids[start : start + _CHUNK]}
            found.update({str(r.id): _Counts(*r) for r in self.conn.execute(q, chunk)})
        return found

    def _triggers(self, trigger_ids: list[str]) -> dict[str, Trigger]:
        found: dict[str, Trigger] = {}
        for start in range(0, len(trigger_ids), _CHUNK):
            q = sa.select(t.scheduled_triggers).where(
                _s.id.in_(trigger_ids[start : start + _CHUNK])
            )
            found.update({str(r.id): record(Trigger, r) for r in self.conn.execute(q)})
        return found

    def oldest_pending(self, trigger_ids: Iterable[str]) -> dict[str, datetime]:
        ids = list(dict.fromkeys(trigger_ids))
        found: dict[str, datetime] = {}
        # Per trigger: the first entry of ix_invocations_pending_trigger.
        oldest = (
            sa.select(_i.not_before)
            .where(_i.trigger_id == _s.id, _i.status == PENDING)
            .order_by(_i.not_before)
            .limit(1)
            .correlate(t.scheduled_triggers)
            .scalar_subquery()
        )
        for start in range(0, len(ids), _CHUNK):
            q = sa.select(_s.id, oldest.label("oldest")).where(
                _s.id.in_(ids[start : start + _CHUNK])
            )
            found.update(
                {str(row.id): row.oldest for row in self.conn.execute(q) if row.oldest is not None}
            )
        return found

    def late_triggers(self, before: datetime, limit: int) -> list[Trigger]:
        told = _s.late_notified_at.is_(None)
        on_time = (_s.enabled == sa.true(), _s.paused == sa.false(), told)
        # Two range scans, each bounded: the due index up to ``before``, and the oldest
        # pending invocations (at most PENDING_WINDOW of them) up to ``before``.
        due = (
            sa.select(t.scheduled_triggers)
            .where(_s.next_run_at < before, *on_time)
            .order_by(_s.next_run_at)
            .limit(limit)
        )
        found = {str(r.id): record(Trigger, r) for r in self.conn.execute(due)}
        waiting = (
            sa.select(_i.trigger_id)
            .where(_i.status == PENDING, _i.not_before < before)
            .order_by(_i.not_before)
            .limit(PENDING_WINDOW)
        )
        ids = [i for i in dict.fromkeys(str(r[0]) for r in self.conn.execute(waiting))]
        ids = [i for i in ids if i not in found][:limit]
        for start in range(0, len(ids), _CHUNK):
            q = sa.select(t.scheduled_triggers).where(
                _s.id.in_(ids[start : start + _CHUNK]), *on_time
            )
            found.update({str(r.id): record(Trigger, r) for r in self.conn.execute(q)})
        return [found[k] for k in sorted(found)][:limit]

    def told_late(self, limit: int) -> list[Trigger]:
        q = (
            sa.select(t.scheduled_triggers)
            .where(_s.late_notified_at.is_not(None))
            .order_by(_s.id)
            .limit(limit)
        )
        return [record(Trigger, r) for r in self.conn.execute(q)]

    def set_late_notified(self, trigger_ids: Sequence[str], at: datetime | None) -> None:
        ids = list(trigger_ids)
        for start in range(0, len(ids), _CHUNK):
            self.conn.execute(
                t.scheduled_triggers.update()
                .where(_s.id.in_(ids[start : start + _CHUNK]))
                .values(late_notified_at=at)
            )


class NotificationsSql(TxBase):
    def notification_config(self, tenant_id: str, project_id: str) -> NotificationConfig | None:
        q = sa.select(t.project_notifications).where(
            _n.tenant_id == tenant_id, _n.project_id == project_id
        )
        row = self.conn.execute(q).first()
        return None if row is None else record(NotificationConfig, row)

    def put_notification_config(
        self, tenant_id: str, project_id: str, targets: list[dict[str, Any]], now: datetime
    ) -> NotificationConfig:
        stmt = self._insert(t.project_notifications).values(
            tenant_id=tenant_id, project_id=project_id, targets=targets, revision=1, updated_at=now
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["tenant_id", "project_id"],
            set_={
                "targets": stmt.excluded.targets,
                "revision": t.project_notifications.c.revision + 1,
                "updated_at": stmt.excluded.updated_at,
            },
        )
        self.conn.execute(stmt)
        stored = self.notification_config(tenant_id, project_id)
        assert stored is not None
        return stored

    def enqueue_notifications(self, rows: Sequence[OutboxRow]) -> None:
        if rows:
            values = [{f.name: getattr(r, f.name) for f in fields(r)} for r in rows]
            self.conn.execute(t.notification_outbox.insert(), values)

    def claim_notifications(
        self, now: datetime, limit: int, lease_until: datetime
    ) -> list[OutboxRow]:
        q = (
            sa.select(t.notification_outbox)
            .where(_o.status == PENDING, _o.next_attempt_at <= now)
            .order_by(_o.next_attempt_at, _o.id)
            .limit(limit)
        )
        if self.postgres:
            q = q.with_for_update(skip_locked=True)
        rows = [record(OutboxRow, r) for r in self.conn.execute(q)]
        claimed = []
        for row in rows:
            attempts = row.attempts + 1
            self.conn.execute(
                t.notification_outbox.update()
                .where(_o.id == row.id)
                .values(attempts=attempts, next_attempt_at=lease_until)
            )
            claimed.append(replace(row, attempts=attempts, next_attempt_at=lease_until))
        return claimed

    def finish_notification(
        self,
        row_id: str,
        attempts: int,
        *,
        status: str,
        next_attempt_at: datetime,
        last_error: str | None,
        delivered_at: datetime | None,
    ) -> bool:
        stmt = (
            t.notification_outbox.update()
            .where(_o.id == row_id, _o.attempts == attempts, _o.status == PENDING)
            .values(
                status=status,
                next_attempt_at=next_attempt_at,
                last_error=last_error,
                delivered_at=delivered_at,
            )
        )
        return bool(self.conn.execute(stmt).rowcount)

    def list_notifications(
        self, tenant_id: str, project_id: str, before: str | None, limit: int
    ) -> list[OutboxRow]:
        q = sa.select(t.notification_outbox).where(
            _o.tenant_id == tenant_id, _o.project_id == project_id
        )
        if before is not None:
            q = q.where(_o.id < before)
        q = q.order_by(_o.id.desc()).limit(limit)
        return [record(OutboxRow, r) for r in self.conn.execute(q)]

    def earliest_notification(self) -> datetime | None:
        q = (
            sa.select(_o.next_attempt_at)
            .where(_o.status == PENDING)
            .order_by(_o.next_attempt_at)
            .limit(1)
        )
        row = self.conn.execute(q).first()
        return None if row is None else row[0]
