"""Which pending invocations a worker may claim next, when the next one is due, and the
statement that claims them.

The oldest due invocations come from the claimable index (every tenant's pending rows by
age). Fair share (SPEC §9) also asks for the oldest due invocations of the tenants
*other* than some: those at their share, or those that fill a claim's window with a
backlog. Filtering the claimable index would pass over every row of the excluded
tenants first, so one tenant's backlog of 40,000 would cost every claim of every worker
milliseconds, growing with it. Instead the tenants with pending work are walked in the
pending-tenant index (``tenant_id, not_before``), one probe each for the next tenant and
for its oldest row, and each chosen tenant's oldest due rows are read as a range of that
index: the cost grows with the number of tenants with pending work, never with the
length of anyone's backlog.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from tickwork.storage import tables as t
from tickwork.storage.records import PENDING, RUNNING, Candidate

# Tenants whose oldest due rows one statement reads (SQLite allows 500 branches in one
# compound SELECT).
TENANTS_PER_STATEMENT = 200


def claim_candidates(
    conn: sa.Connection,
    postgres: bool,
    now: datetime,
    limit: int,
    excluded: set[str],
    *,
    only: str | None = None,
    lock: bool = True,
) -> list[Candidate]:
    """Up to ``limit`` due pending invocations, oldest first, of tenants not
    ``excluded`` (or just the one with id ``only``); with ``lock``, locked on PostgreSQL
    for the transaction, skipping rows that other workers hold."""
    if excluded and only is None:
        return _of_others(conn, postgres, now, limit, excluded, lock)
    params: dict[str, Any] = {"now": now, "limit": limit}
    if only is not None:
        params["only"] = only
    q = _oldest_query(postgres and lock, only is not None)
    return [Candidate(*r) for r in conn.execute(q, params)]


def earliest_claimable(conn: sa.Connection, postgres: bool, excluded: set[str]) -> datetime | None:
    """When the oldest pending invocation of a tenant not ``excluded`` may start."""
    if excluded:
        oldest = [at for tenant, at in pending_tenants(conn, postgres) if tenant not in excluded]
        return min(oldest, default=None)
    row = conn.execute(_EARLIEST).first()
    return None if row is None else row[0]


def pending_tenants(conn: sa.Connection, postgres: bool) -> list[tuple[str, datetime]]:
    """Every tenant with a pending invocation, with when its oldest one may start."""
    return [(tenant, at) for tenant, at in conn.execute(_pending_tenants_query(postgres))]


def _of_others(
    conn: sa.Connection, postgres: bool, now: datetime, limit: int, excluded: set[str], lock: bool
) -> list[Candidate]:
    """The oldest due invocations of the tenants not ``excluded``: an equal share of
    ``limit`` from each tenant with due work, so that a claim locks at most about
    ``limit`` plus one row per such tenant, then the oldest ``limit`` of those."""
    tenants = [
        tenant
        for tenant, at in pending_tenants(conn, postgres)
        if at <= now and tenant not in excluded
    ]
    if not tenants:
        return []
    share = -(-limit // len(tenants))
    found: list[Candidate] = []
    for start in range(0, len(tenants), TENANTS_PER_STATEMENT):
        chunk = tenants[start : start + TENANTS_PER_STATEMENT]
        found += _oldest_of_each(conn, postgres, chunk, now, share, lock)
    found.sort(key=lambda candidate: candidate.not_before)
    return found[:limit]


def _oldest_of_each(
    conn: sa.Connection,
    postgres: bool,
    tenants: list[str],
    now: datetime,
    share: int,
    lock: bool,
) -> list[Candidate]:
    """Up to ``share`` due invocations of each of ``tenants``, each tenant's read as a
    range of the pending-tenant index."""
    if postgres:
        params: dict[str, Any] = {"tenants": tenants, "now": now, "share": share}
        return [Candidate(*r) for r in conn.execute(_oldest_of_each_query(lock), params)]
    # No LATERAL in SQLite: one compound SELECT, a branch per tenant.
    c = t.invocations.c
    branches = [
        sa.select(
            _due(now)
            .where(c.tenant_id == tenant)
            .order_by(c.tenant_id, c.not_before)
            .limit(share)
            .subquery()
        )
        for tenant in tenants
    ]
    union: sa.Executable = sa.union_all(*branches) if len(branches) > 1 else branches[0]
    return [Candidate(*r) for r in conn.execute(union)]


def _due(now: datetime | sa.BindParameter[Any]) -> sa.Select[Any]:
    """The due pending invocations, as :class:`Candidate` columns."""
    c = t.invocations.c
    return sa.select(c.id, c.tenant_id, c.project_id, c.ref, c.agent_id, c.not_before).where(
        c.status == PENDING, c.not_before <= now
    )


# When the oldest pending invocation may start (built once: every wake-up reads it).
_EARLIEST = (
    sa.select(t.invocations.c.not_before)
    .where(t.invocations.c.status == PENDING)
    .order_by(t.invocations.c.not_before)
    .limit(1)
)


@functools.cache
def _oldest_query(lock: bool, only: bool) -> sa.Select[Any]:
    """Up to ``:limit`` invocations due at ``:now``, oldest first (with ``only``, just
    the one with id ``:only``); with ``lock``, locked, skipping rows others hold."""
    c = t.invocations.c
    q = (
        _due(sa.bindparam("now", type_=c.not_before.type))
        .order_by(c.not_before)
        .limit(sa.bindparam("limit", type_=sa.Integer()))
    )
    if only:
        q = q.where(c.id == sa.bindparam("only", type_=c.id.type))
    return q.with_for_update(skip_locked=True) if lock else q


def _of_tenant(postgres: bool, tenant: Any) -> tuple[sa.ColumnElement[bool], ...]:
    """The rows of ``tenant`` (a column of an outer query). PostgreSQL is told a range
    one tenant wide rather than an equality: with an equality it drops the tenant from
    the wanted order, and may then read the claimable index filtered to this tenant,
    which costs the others' whole backlog whenever its estimate is off."""
    c = t.invocations.c
    if postgres:
        return (c.tenant_id >= tenant, c.tenant_id <= tenant)
    return (c.tenant_id == tenant,)


@functools.cache
def _pending_tenants_query(postgres: bool) -> sa.Select[Any]:
    """The walk of the pending-tenant index from one tenant to the next (a recursive
    query), with each tenant's oldest row. Built once: the hot path builds no statement."""
    c = t.invocations.c
    walk = (
        sa.select(sa.func.min(c.tenant_id).label("tenant"))
        .where(c.status == PENDING)
        .cte("walk", recursive=True)
    )
    following = (
        sa.select(sa.func.min(c.tenant_id))
        .where(c.status == PENDING, c.tenant_id > walk.c.tenant)
        .scalar_subquery()
    )
    walk = walk.union_all(sa.select(following).where(walk.c.tenant.is_not(None)))
    # Ordered as the index is, so that the planner probes it once per tenant.
    oldest = (
        sa.select(c.not_before)
        .where(c.status == PENDING, *_of_tenant(postgres, walk.c.tenant))
        .order_by(c.tenant_id, c.not_before)
        .limit(1)
        .scalar_subquery()
    )
    return sa.select(walk.c.tenant, oldest).where(walk.c.tenant.is_not(None))


@functools.cache
def _oldest_of_each_query(lock: bool) -> sa.Select[Any]:
    """PostgreSQL: up to ``:share`` due invocations of each of ``:tenants`` at ``:now``,
    read (and, with ``lock``, locked, skipping rows other workers hold) as a range of
    the pending-tenant index per tenant."""
    c = t.invocations.c
    wanted = (
        sa.func.unnest(sa.bindparam("tenants", type_=postgresql.ARRAY(sa.Text())))
        .table_valued("tenant")
        .render_derived(name="wanted")
    )
    each = (
        _due(sa.bindparam("now", type_=c.not_before.type))
        .where(*_of_tenant(True, wanted.c.tenant))
        .order_by(c.tenant_id, c.not_before)
        .limit(sa.bindparam("share", type_=sa.Integer()))
    )
    if lock:
        each = each.with_for_update(skip_locked=True)
    lateral = each.lateral("oldest")
    return sa.select(lateral).select_from(wanted).join(lateral, sa.true())


@functools.cache
def claim_statement(postgres: bool) -> sa.Executable:
    """The claim of the pending invocations ``:ids``: running under ``:worker_id``'s
    lease until ``:lease_until``, for ``:deployment_id``, first started at ``:now`` if
    never before, attempt raised, every column returned. On PostgreSQL the statement
    also records the attempts (a data-modifying CTE). Built once: a claim builds no
    statement."""
    c = t.invocations.c
    now = sa.bindparam("now", type_=c.started_at.type)
    worker_id = sa.bindparam("worker_id", type_=c.lease_owner.type)
    deployment_id = sa.bindparam("deployment_id", type_=c.deployment_id.type)
    stmt = (
        t.invocations.update()
        .where(c.id.in_(sa.bindparam("ids", expanding=True)), c.status == PENDING)
        .values(
            status=RUNNING,
            attempt=c.attempt + 1,
            lease_owner=worker_id,
            lease_expires_at=sa.bindparam("lease_until", type_=c.lease_expires_at.type),
            deployment_id=deployment_id,
            # Typed as the column, so that UTC is kept at rest on SQLite too.
            started_at=sa.func.coalesce(c.started_at, now),
        )
        .returning(*t.invocations.c)
    )
    if not postgres:
        return stmt
    taken = stmt.cte("claimed")
    a = t.invocation_attempts.c
    attempts = t.invocation_attempts.insert().from_select(
        ["invocation_id", "attempt", "deployment_id", "worker_id", "started_at"],
        sa.select(
            taken.c.id,
            taken.c.attempt,
            sa.bindparam("deployment_id", type_=a.deployment_id.type),
            sa.bindparam("worker_id", type_=a.worker_id.type),
            sa.bindparam("now", type_=a.started_at.type),
        ),
    )
    return sa.select(taken).add_cte(attempts.cte("attempts"))
