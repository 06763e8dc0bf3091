"""Finding things across a project (the :class:`~tickwork.storage.ports.Lookups` port):
triggers by name and by filter, agents on any ref, each trigger's last run."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from tickwork.storage import tables as t
from tickwork.storage.ports import TriggerFilter
from tickwork.storage.records import PENDING, Invocation, Trigger
from tickwork.storage.sql.base import TxBase, record
from tickwork.storage.sql.health import health_clause

_s = t.scheduled_triggers.c
_i = t.invocations.c
_a = t.agents.c
_CHUNK = 500


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class LookupsSql(TxBase):
    def trigger_named(
        self, tenant_id: str, project_id: str, ref: str, agent_id: str, name: str
    ) -> Trigger | None:
        q = sa.select(t.scheduled_triggers).where(
            _s.tenant_id == tenant_id,
            _s.project_id == project_id,
            _s.ref == ref,
            _s.agent_id == agent_id,
            _s.name == name,
        )
        row = self.conn.execute(q).first()
        return None if row is None else record(Trigger, row)

    def agent_exists(
        self, tenant_id: str, project_id: str, agent_id: str, ref: str | None = None
    ) -> bool:
        q = sa.select(_a.id).where(
            _a.tenant_id == tenant_id, _a.project_id == project_id, _a.id == agent_id
        )
        if ref is not None:
            q = q.where(_a.ref == ref)
        return self.conn.execute(q.limit(1)).first() is not None

    def search_triggers(
        self,
        tenant_id: str,
        project_id: str,
        where: TriggerFilter,
        *,
        after: str | None = None,
        limit: int = 50,
    ) -> list[Trigger]:
        q = sa.select(t.scheduled_triggers).where(
            _s.tenant_id == tenant_id, _s.project_id == project_id
        )
        if where.agent_id is not None:
            q = q.where(_s.agent_id == where.agent_id)
        if where.ref is not None:
            q = q.where(_s.ref == where.ref)
        if where.enabled is not None:
            # ``= true``/``= false``, not ``IS``: only those can use an index.
            q = q.where(_s.enabled == (sa.true() if where.enabled else sa.false()))
        if where.paused is not None:
            q = q.where(_s.paused == (sa.true() if where.paused else sa.false()))
        if where.health is not None:
            q = q.where(health_clause(where.health))
        if where.name_contains:
            pattern = f"%{_like_escaped(where.name_contains.lower())}%"
            q = q.where(sa.func.lower(_s.name).like(pattern, escape="\\"))
        if after is not None:
            q = q.where(_s.id > after)
        q = q.order_by(_s.id).limit(limit)
        return [record(Trigger, r) for r in self.conn.execute(q)]

    def last_runs(self, trigger_ids: Iterable[str]) -> dict[str, Invocation]:
        ids = list(dict.fromkeys(trigger_ids))
        if not ids:
            return {}
        # A correlated subquery per trigger: ``invocations (trigger_id, id)`` read
        # backwards from the newest until one that ran or ended.
        latest = (
            sa.select(_i.id)
            .where(
                _i.trigger_id == _s.id,
                sa.or_(_i.status != PENDING, _i.started_at.is_not(None)),
            )
            .order_by(_i.id.desc())
            .limit(1)
            .correlate(t.scheduled_triggers)
            .scalar_subquery()
        )
        found: dict[str, str] = {}
        for start in range(0, len(ids), _CHUNK):
            q = sa.select(_s.id, latest).where(_s.id.in_(ids[start : start + _CHUNK]))
            found.update({str(r[0]): str(r[1]) for r in self.conn.execute(q) if r[1] is not None})
        by_id: dict[str, Invocation] = {}
        wanted = list(found.values())
        for start in range(0, len(wanted), _CHUNK):
            q = sa.select(t.invocations).where(_i.id.in_(wanted[start : start + _CHUNK]))
            by_id.update({str(r.id): record(Invocation, r) for r in self.conn.execute(q)})
        return {trigger: by_id[inv] for trigger, inv in found.items() if inv in by_id}
