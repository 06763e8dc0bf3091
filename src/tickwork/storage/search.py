"""Finding things across a project (SPEC §10 "Finding things"): triggers by agent, ref,
state and name, each trigger's last run, invocations by every filter, names in use.

Functions over an open :class:`~tickwork.storage.sql.Tx`, like its methods.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import sqlalchemy as sa

from tickwork.storage import tables as t
from tickwork.storage.records import PENDING, Invocation, Trigger
from tickwork.storage.sql import Tx, _record

_s = t.scheduled_triggers.c
_i = t.invocations.c
_a = t.agents.c


def trigger_named(
    tx: Tx, tenant_id: str, project_id: str, ref: str, agent_id: str, name: str
) -> Trigger | None:
    """The agent's trigger with this name on this ref (names are unique there)."""
    q = sa.select(t.scheduled_triggers).where(
        _s.tenant_id == tenant_id,
        _s.project_id == project_id,
        _s.ref == ref,
        _s.agent_id == agent_id,
        _s.name == name,
    )
    row = tx.conn.execute(q).first()
    return None if row is None else _record(Trigger, row)


def agent_exists(
    tx: Tx, tenant_id: str, project_id: str, agent_id: str, ref: str | None = None
) -> bool:
    """Whether the project has this agent on ``ref`` (None: on any ref)."""
    q = sa.select(_a.id).where(
        _a.tenant_id == tenant_id, _a.project_id == project_id, _a.id == agent_id
    )
    if ref is not None:
        q = q.where(_a.ref == ref)
    return tx.conn.execute(q.limit(1)).first() is not None


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_triggers(
    tx: Tx,
    tenant_id: str,
    project_id: str,
    *,
    agent_id: str | None = None,
    ref: str | None = None,
    enabled: bool | None = None,
    name_contains: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> list[Trigger]:
    """The project's triggers matching every filter given, in id order (the order they
    were created), ``limit`` after the id ``after``. ``name_contains`` matches a part of
    the name, ignoring the case of ASCII letters."""
    q = sa.select(t.scheduled_triggers).where(
        _s.tenant_id == tenant_id, _s.project_id == project_id
    )
    if agent_id is not None:
        q = q.where(_s.agent_id == agent_id)
    if ref is not None:
        q = q.where(_s.ref == ref)
    if enabled is not None:
        q = q.where(_s.enabled == sa.true() if enabled else _s.enabled == sa.false())
    if name_contains:
        pattern = f"%{_like_escaped(name_contains.lower())}%"
        q = q.where(sa.func.lower(_s.name).like(pattern, escape="\\"))
    if after is not None:
        q = q.where(_s.id > after)
    q = q.order_by(_s.id).limit(limit)
    return [_record(Trigger, r) for r in tx.conn.execute(q)]


def last_runs(tx: Tx, trigger_ids: Iterable[str]) -> dict[str, Invocation]:
    """Each trigger's newest invocation that ran or ended (a pending invocation no
    worker has started yet is not a run); triggers without one are left out. One index
    probe per trigger (``invocations (trigger_id, id)`` read backwards)."""
    ids = list(dict.fromkeys(trigger_ids))
    if not ids:
        return {}
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
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        q = sa.select(_s.id, latest).where(_s.id.in_(chunk))
        found.update({str(r[0]): str(r[1]) for r in tx.conn.execute(q) if r[1] is not None})
    if not found:
        return {}
    by_id: dict[str, Invocation] = {}
    values = list(found.values())
    for start in range(0, len(values), 500):
        q = sa.select(t.invocations).where(_i.id.in_(values[start : start + 500]))
        by_id.update({str(r.id): _record(Invocation, r) for r in tx.conn.execute(q)})
    return {trigger: by_id[inv] for trigger, inv in found.items() if inv in by_id}


def invocations(
    tx: Tx,
    tenant_id: str,
    project_id: str,
    *,
    trigger_id: str | None = None,
    agent_id: str | None = None,
    ref: str | None = None,
    statuses: Sequence[str] | None = None,
    origins: Sequence[str] | None = None,
    scheduled_from: datetime | None = None,
    scheduled_to: datetime | None = None,
    before: str | None = None,
    limit: int = 50,
) -> list[Invocation]:
    """The project's invocations matching every filter given, newest first; ``before``
    is the cursor (an id from the previous page)."""
    q = sa.select(t.invocations).where(_i.tenant_id == tenant_id, _i.project_id == project_id)
    if trigger_id is not None:
        q = q.where(_i.trigger_id == trigger_id)
    if agent_id is not None:
        q = q.where(_i.agent_id == agent_id)
    if ref is not None:
        q = q.where(_i.ref == ref)
    if statuses:
        q = q.where(_i.status.in_(list(statuses)))
    if origins:
        q = q.where(_i.origin.in_(list(origins)))
    if scheduled_from is not None:
        q = q.where(_i.scheduled_for >= scheduled_from)
    if scheduled_to is not None:
        q = q.where(_i.scheduled_for < scheduled_to)
    if before is not None:
        q = q.where(_i.id < before)
    q = q.order_by(_i.id.desc()).limit(limit)
    return [_record(Invocation, r) for r in tx.conn.execute(q)]
