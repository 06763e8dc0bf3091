"""The SQL store: one implementation for SQLite and PostgreSQL.

Every method runs inside a transaction opened by the caller (:meth:`Database.write` or
:meth:`Database.read`); services decide where transactions begin and end. The current
instant is always a bound parameter: the store never asks the database for the time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import fields
from datetime import datetime
from typing import Any, TypeVar

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from tickwork.errors import Conflict
from tickwork.storage import tables as t
from tickwork.storage.records import (
    ACTIVE_STATUSES,
    CANCELLED,
    FAILED,
    PENDING,
    RUNNING,
    Agent,
    ApiKey,
    Attempt,
    Candidate,
    Deployment,
    Invocation,
    Process,
    Project,
    Ref,
    SchedulerState,
    Trigger,
)

_R = TypeVar("_R")

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


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be reached or used (retry the same
    work later) rather than that it refused this work's values (never retry as is)."""
    if isinstance(exc, sa.exc.DBAPIError):
        return bool(exc.connection_invalidated) or (
            isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError)
            and not _refused_value(exc)
        )
    return isinstance(exc, sa.exc.DisconnectionError | sa.exc.TimeoutError)


def gave_way(exc: BaseException) -> bool:
    """Whether the database aborted this transaction in favour of a concurrent one (a
    deadlock or a serialization failure): the work itself may well succeed on retry."""
    # SQLSTATE class 40: transaction rollback (serialization failure, deadlock).
    orig = getattr(exc, "orig", None)
    return isinstance(orig, psycopg.Error) and str(orig.sqlstate or "").startswith("40")


def _refused_value(exc: sa.exc.DBAPIError) -> bool:
    # SQLite reports a value above its size limit as an OperationalError on some
    # versions of the driver: the value is at fault, not the database.
    return "too big" in str(exc.orig)


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


class Database:
    """An engine plus the transactions tickwork runs on it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """A read-write transaction (on SQLite it takes the write lock at BEGIN)."""
        if self._write_lock is None:
            with self.engine.connect() as conn, conn.begin():
                yield Tx(conn, self.is_postgres)
            return
        # SQLite has one writer at a time. Threads of this process queue here rather
        # than in SQLite's busy handler, which polls with sleeps of up to 100 ms.
        with self._write_lock, self.engine.connect() as conn, conn.begin():
            yield Tx(conn, self.is_postgres)

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """A transaction that only reads (never blocks writers on SQLite)."""
        with (
            self.engine.connect().execution_options(tickwork_readonly=True) as conn,
            conn.begin(),
        ):
            yield Tx(conn, self.is_postgres)

    def dispose(self) -> None:
        self.engine.dispose()


_POSITIONAL: dict[tuple[type[Any], tuple[str, ...]], bool] = {}


def _record(cls: type[_R], row: Any) -> _R:
    # Building from the row's positions is much cheaper than from a mapping; it is used
    # when the row's columns are exactly the record's fields, in order.
    key = (cls, tuple(row._fields))
    positional = _POSITIONAL.get(key)
    if positional is None:
        positional = _POSITIONAL[key] = tuple(f.name for f in fields(cls)) == key[1]  # type: ignore[arg-type]
    return cls(*row) if positional else cls(**row._mapping)


class Tx:
    """Queries and commands inside one transaction."""

    def __init__(self, conn: sa.Connection, postgres: bool) -> None:
        self.conn = conn
        self.postgres = postgres

    def _insert(self, table: sa.Table) -> Any:
        return postgresql.insert(table) if self.postgres else sqlite.insert(table)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: an exception inside undoes only what it did, and the
        enclosing transaction can go on (used to isolate one failing item of a batch)."""
        with self.conn.begin_nested():
            yield

    # -- tenants and keys ---------------------------------------------------------------

    def create_tenant(self, tenant_id: str, now: datetime) -> bool:
        stmt = (
            self._insert(t.tenants)
            .values(id=tenant_id, created_at=now)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(t.tenants.c.id)
        )
        # RETURNING, not rowcount: SQLAlchemy does not keep an INSERT's rowcount with
        # psycopg (it reads -1), so a conflict looked like a new tenant on PostgreSQL.
        return self.conn.execute(stmt).first() is not None

    def tenant_exists(self, tenant_id: str) -> bool:
        q = sa.select(t.tenants.c.id).where(t.tenants.c.id == tenant_id)
        return self.conn.execute(q).first() is not None

    def count_tenants(self) -> int:
        return int(
            self.conn.execute(sa.select(sa.func.count()).select_from(t.tenants)).scalar_one()
        )

    def lock_tenant(self, tenant_id: str) -> dict[str, int | None] | None:
        """The tenant's quota overrides (``quota_*`` columns; None = the default), or None
        when there is no such tenant. On PostgreSQL the row stays locked until commit, so
        writers that check a quota go one at a time per tenant (SQLite's write lock does
        that already). ``FOR NO KEY UPDATE`` leaves the foreign-key checks of inserts
        under the tenant unblocked."""
        return self._tenant_quotas(tenant_id, lock=True)

    def tenant_quotas(self, tenant_id: str) -> dict[str, int | None] | None:
        """As :meth:`lock_tenant`, without the lock."""
        return self._tenant_quotas(tenant_id, lock=False)

    def _tenant_quotas(self, tenant_id: str, *, lock: bool) -> dict[str, int | None] | None:
        columns = [c for c in t.tenants.c if c.name.startswith("quota_")]
        q = sa.select(*columns).where(t.tenants.c.id == tenant_id)
        if lock and self.postgres:
            q = q.with_for_update(key_share=True)
        row = self.conn.execute(q).first()
        if row is None:
            return None
        return {name.removeprefix("quota_"): value for name, value in row._mapping.items()}

    def set_tenant_quotas(self, tenant_id: str, values: Mapping[str, int | None]) -> bool:
        """Set overrides by quota name (``{"triggers": 500, "agents": None}``)."""
        stmt = (
            t.tenants.update()
            .where(t.tenants.c.id == tenant_id)
            .values({f"quota_{name}": value for name, value in values.items()})
        )
        return bool(self.conn.execute(stmt).rowcount)

    def tenant_usage(self, tenant_id: str, quota: str) -> int:
        """What the tenant uses of one quota, as one indexed aggregate: the number of its
        projects, agents (on every ref), triggers or live API keys, or for
        ``slots_per_day`` the summed rate of its enabled triggers."""
        s = t.scheduled_triggers.c
        queries = {
            "projects": sa.select(sa.func.count()).where(t.projects.c.tenant_id == tenant_id),
            "agents": sa.select(sa.func.count()).where(t.agents.c.tenant_id == tenant_id),
            "triggers": sa.select(sa.func.count()).where(s.tenant_id == tenant_id),
            "api_keys": sa.select(sa.func.count()).where(
                t.api_keys.c.tenant_id == tenant_id, t.api_keys.c.revoked_at.is_(None)
            ),
            "slots_per_day": sa.select(sa.func.coalesce(sa.func.sum(s.slots_per_day), 0)).where(
                # ``= true``, not ``IS TRUE``: only the former can use the index.
                s.tenant_id == tenant_id,
                s.enabled == sa.true(),
            ),
        }
        return int(self.conn.execute(queries[quota]).scalar_one())

    def insert_api_key(
        self,
        key_id: str,
        tenant_id: str,
        name: str,
        key_hash: str,
        prefix: str,
        now: datetime,
        scope: str = "write",
    ) -> None:
        self.conn.execute(
            t.api_keys.insert().values(
                id=key_id,
                tenant_id=tenant_id,
                name=name,
                key_hash=key_hash,
                prefix=prefix,
                created_at=now,
                scope=scope,
            )
        )

    def api_key_for_hash(self, key_hash: str) -> ApiKey | None:
        """The live key with this hash: one lookup of the unique index, whatever the key."""
        k = t.api_keys.c
        q = sa.select(k.id, k.tenant_id, k.scope).where(
            k.key_hash == key_hash, k.revoked_at.is_(None)
        )
        row = self.conn.execute(q).first()
        return None if row is None else _record(ApiKey, row)

    def list_api_keys(self, tenant_id: str) -> list[dict[str, Any]]:
        q = (
            sa.select(
                t.api_keys.c.id,
                t.api_keys.c.name,
                t.api_keys.c.prefix,
                t.api_keys.c.scope,
                t.api_keys.c.created_at,
                t.api_keys.c.revoked_at,
            )
            .where(t.api_keys.c.tenant_id == tenant_id)
            .order_by(t.api_keys.c.id)
        )
        return [dict(r._mapping) for r in self.conn.execute(q)]

    def revoke_api_key(self, tenant_id: str, key_id: str, now: datetime) -> bool:
        stmt = (
            t.api_keys.update()
            .where(
                t.api_keys.c.tenant_id == tenant_id,
                t.api_keys.c.id == key_id,
                t.api_keys.c.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )
        return bool(self.conn.execute(stmt).rowcount)

    # -- projects and refs --------------------------------------------------------------

    def get_project(self, tenant_id: str, project_id: str) -> Project | None:
        q = sa.select(t.projects).where(
            t.projects.c.tenant_id == tenant_id, t.projects.c.id == project_id
        )
        row = self.conn.execute(q).first()
        return None if row is None else _record(Project, row)

    def upsert_project(
        self, tenant_id: str, project_id: str, name: str, description: str, now: datetime
    ) -> tuple[Project, bool]:
        # INSERT ... ON CONFLICT: two writers creating the same project at once both
        # succeed, and exactly one of them created it.
        inserted = self.conn.execute(
            self._insert(t.projects)
            .values(
                tenant_id=tenant_id,
                id=project_id,
                name=name,
                description=description,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["tenant_id", "id"])
            .returning(t.projects.c.id)
        ).first()
        if inserted is not None:
            self.ensure_ref(tenant_id, project_id, "main", now)
        else:
            self.conn.execute(
                t.projects.update()
                .where(
                    t.projects.c.tenant_id == tenant_id,
                    t.projects.c.id == project_id,
                    sa.or_(t.projects.c.name != name, t.projects.c.description != description),
                )
                .values(name=name, description=description, updated_at=now)
            )
        project = self.get_project(tenant_id, project_id)
        if project is None:
            raise Conflict(f"project {project_id!r} was deleted while this request ran")
        return project, inserted is not None

    def list_projects(self, tenant_id: str, after: str | None, limit: int) -> list[Project]:
        q = sa.select(t.projects).where(t.projects.c.tenant_id == tenant_id)
        if after is not None:
            q = q.where(t.projects.c.id > after)
        q = q.order_by(t.projects.c.id).limit(limit)
        return [_record(Project, r) for r in self.conn.execute(q)]

    def delete_project_invocations(self, tenant_id: str, project_id: str) -> int:
        """Delete a project's invocation history (attempts go with it)."""
        c = t.invocations.c
        stmt = t.invocations.delete().where(c.tenant_id == tenant_id, c.project_id == project_id)
        return int(self.conn.execute(stmt).rowcount)

    def delete_project(self, tenant_id: str, project_id: str) -> bool:
        stmt = t.projects.delete().where(
            t.projects.c.tenant_id == tenant_id, t.projects.c.id == project_id
        )
        return bool(self.conn.execute(stmt).rowcount)

    def get_ref(
        self, tenant_id: str, project_id: str, name: str, *, for_update: bool = False
    ) -> Ref | None:
        """``for_update`` locks the row on PostgreSQL: writers of one ref go one at a time
        (on SQLite the write transaction already holds the database lock)."""
        q = sa.select(t.refs).where(
            t.refs.c.tenant_id == tenant_id,
            t.refs.c.project_id == project_id,
            t.refs.c.name == name,
        )
        if for_update and self.postgres:
            q = q.with_for_update()
        row = self.conn.execute(q).first()
        return None if row is None else _record(Ref, row)

    def ensure_ref(self, tenant_id: str, project_id: str, name: str, now: datetime) -> Ref:
        stmt = self._insert(t.refs).values(
            tenant_id=tenant_id,
            project_id=project_id,
            name=name,
            revision=0,
            created_at=now,
            updated_at=now,
        )
        self.conn.execute(stmt.on_conflict_do_nothing())
        ref = self.get_ref(tenant_id, project_id, name)
        assert ref is not None
        return ref

    def bump_ref(self, tenant_id: str, project_id: str, name: str, now: datetime) -> int:
        """Record a write to the ref: its revision goes up by one."""
        self.ensure_ref(tenant_id, project_id, name, now)
        stmt = (
            t.refs.update()
            .where(
                t.refs.c.tenant_id == tenant_id,
                t.refs.c.project_id == project_id,
                t.refs.c.name == name,
            )
            .values(revision=t.refs.c.revision + 1, updated_at=now)
            .returning(t.refs.c.revision)
        )
        return int(self.conn.execute(stmt).scalar_one())

    def list_refs(self, tenant_id: str, project_id: str) -> list[Ref]:
        q = (
            sa.select(t.refs)
            .where(t.refs.c.tenant_id == tenant_id, t.refs.c.project_id == project_id)
            .order_by(t.refs.c.name)
        )
        return [_record(Ref, r) for r in self.conn.execute(q)]

    def delete_ref(self, tenant_id: str, project_id: str, name: str) -> bool:
        stmt = t.refs.delete().where(
            t.refs.c.tenant_id == tenant_id,
            t.refs.c.project_id == project_id,
            t.refs.c.name == name,
        )
        return bool(self.conn.execute(stmt).rowcount)

    # -- agents -------------------------------------------------------------------------

    def get_agent(
        self,
        tenant_id: str,
        project_id: str,
        ref: str,
        agent_id: str,
        *,
        for_update: bool = False,
    ) -> Agent | None:
        q = sa.select(t.agents).where(
            t.agents.c.tenant_id == tenant_id,
            t.agents.c.project_id == project_id,
            t.agents.c.ref == ref,
            t.agents.c.id == agent_id,
        )
        if for_update and self.postgres:
            q = q.with_for_update()
        row = self.conn.execute(q).first()
        return None if row is None else _record(Agent, row)

    def upsert_agent(
        self,
        tenant_id: str,
        project_id: str,
        ref: str,
        agent_id: str,
        name: str,
        target: dict[str, Any],
        now: datetime,
        *,
        bump: bool = True,
        max_concurrency: int | None = None,
    ) -> tuple[Agent, bool]:
        """Create or change an agent; a real change bumps the ref's revision unless
        ``bump`` is false (a caller writing several things bumps once itself)."""
        existing = self.get_agent(tenant_id, project_id, ref, agent_id)
        if existing is None:
            self.ensure_ref(tenant_id, project_id, ref, now)
            # INSERT ... ON CONFLICT: of writers creating the same agent at once, one
            # creates it and the others change it as if it had existed.
            inserted = self.conn.execute(
                self._insert(t.agents)
                .values(
                    tenant_id=tenant_id,
                    project_id=project_id,
                    ref=ref,
                    id=agent_id,
                    name=name,
                    target=target,
                    max_concurrency=max_concurrency,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["tenant_id", "project_id", "ref", "id"])
                .returning(t.agents.c.id)
            ).first()
            if inserted is None:
                existing = self.get_agent(tenant_id, project_id, ref, agent_id, for_update=True)
        if existing is None:
            pass
        elif (existing.name, existing.target, existing.max_concurrency) != (
            name,
            target,
            max_concurrency,
        ):
            self.conn.execute(
                t.agents.update()
                .where(
                    t.agents.c.tenant_id == tenant_id,
                    t.agents.c.project_id == project_id,
                    t.agents.c.ref == ref,
                    t.agents.c.id == agent_id,
                )
                .values(name=name, target=target, max_concurrency=max_concurrency, updated_at=now)
            )
        else:
            return existing, False
        if bump:
            self.bump_ref(tenant_id, project_id, ref, now)
        agent = self.get_agent(tenant_id, project_id, ref, agent_id)
        if agent is None:
            raise Conflict(f"agent {agent_id!r} was deleted while this request ran")
        return agent, existing is None

    def list_agents(self, tenant_id: str, project_id: str, ref: str) -> list[Agent]:
        q = (
            sa.select(t.agents)
            .where(
                t.agents.c.tenant_id == tenant_id,
                t.agents.c.project_id == project_id,
                t.agents.c.ref == ref,
            )
            .order_by(t.agents.c.id)
        )
        return [_record(Agent, r) for r in self.conn.execute(q)]

    def agents_after(self, after: tuple[str, str, str, str] | None, limit: int) -> list[Agent]:
        """Every tenant's agents in key order, ``limit`` after the key ``after`` (for
        maintenance commands such as secret rotation)."""
        c = t.agents.c
        q = sa.select(t.agents).order_by(c.tenant_id, c.project_id, c.ref, c.id).limit(limit)
        if after is not None:
            q = q.where(sa.tuple_(c.tenant_id, c.project_id, c.ref, c.id) > sa.tuple_(*after))
        return [_record(Agent, r) for r in self.conn.execute(q)]

    def replace_agent_target(
        self,
        tenant_id: str,
        project_id: str,
        ref: str,
        agent_id: str,
        expected: dict[str, Any],
        target: dict[str, Any],
    ) -> bool:
        """Store ``target`` if the agent's target is still ``expected``; no revision bump
        and ``updated_at`` unchanged (the definition is the same, only stored otherwise)."""
        keys = (
            t.agents.c.tenant_id == tenant_id,
            t.agents.c.project_id == project_id,
            t.agents.c.ref == ref,
            t.agents.c.id == agent_id,
        )
        current = self.conn.execute(
            sa.select(t.agents.c.target).where(*keys).with_for_update()
        ).scalar_one_or_none()
        if current != expected:
            return False
        self.conn.execute(t.agents.update().where(*keys).values(target=target))
        return True

    def delete_agent(self, tenant_id: str, project_id: str, ref: str, agent_id: str) -> bool:
        stmt = t.agents.delete().where(
            t.agents.c.tenant_id == tenant_id,
            t.agents.c.project_id == project_id,
            t.agents.c.ref == ref,
            t.agents.c.id == agent_id,
        )
        return bool(self.conn.execute(stmt).rowcount)

    # -- triggers -----------------------------------------------------------------------

    def insert_trigger(self, trigger: Trigger) -> None:
        self.conn.execute(t.scheduled_triggers.insert().values(**trigger.__dict__))

    def get_trigger(self, trigger_id: str, *, for_update: bool = False) -> Trigger | None:
        q = sa.select(t.scheduled_triggers).where(t.scheduled_triggers.c.id == trigger_id)
        if for_update and self.postgres:
            q = q.with_for_update()
        row = self.conn.execute(q).first()
        return None if row is None else _record(Trigger, row)

    def find_trigger(
        self, tenant_id: str, project_id: str, trigger_id: str, agent_id: str | None = None
    ) -> Trigger | None:
        """The trigger if it belongs to this tenant and project (and agent, if given).
        The scope is in the WHERE clause, so another tenant's id costs exactly what a
        missing one does: one primary-key probe, no row sent back."""
        c = t.scheduled_triggers.c
        q = sa.select(t.scheduled_triggers).where(
            c.id == trigger_id, c.tenant_id == tenant_id, c.project_id == project_id
        )
        if agent_id is not None:
            q = q.where(c.agent_id == agent_id)
        row = self.conn.execute(q).first()
        return None if row is None else _record(Trigger, row)

    def get_triggers(self, trigger_ids: Iterable[str]) -> dict[str, Trigger]:
        ids = list(dict.fromkeys(trigger_ids))
        if not ids:
            return {}
        q = sa.select(t.scheduled_triggers).where(t.scheduled_triggers.c.id.in_(ids))
        return {str(r.id): _record(Trigger, r) for r in self.conn.execute(q)}

    def list_triggers(
        self,
        tenant_id: str,
        project_id: str,
        *,
        ref: str | None = None,
        agent_id: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> list[Trigger]:
        c = t.scheduled_triggers.c
        q = sa.select(t.scheduled_triggers).where(
            c.tenant_id == tenant_id, c.project_id == project_id
        )
        if ref is not None:
            q = q.where(c.ref == ref)
        if agent_id is not None:
            q = q.where(c.agent_id == agent_id)
        if after is not None:
            q = q.where(c.id > after)
        q = q.order_by(c.id).limit(limit)
        return [_record(Trigger, r) for r in self.conn.execute(q)]

    def trigger_ids_in_scope(
        self,
        tenant_id: str,
        project_id: str,
        ref: str | None = None,
        agent_id: str | None = None,
    ) -> list[str]:
        c = t.scheduled_triggers.c
        q = sa.select(c.id).where(c.tenant_id == tenant_id, c.project_id == project_id)
        if ref is not None:
            q = q.where(c.ref == ref)
        if agent_id is not None:
            q = q.where(c.agent_id == agent_id)
        return [str(r.id) for r in self.conn.execute(q)]

    def update_trigger(self, trigger_id: str, values: Mapping[str, Any]) -> None:
        self.conn.execute(
            t.scheduled_triggers.update()
            .where(t.scheduled_triggers.c.id == trigger_id)
            .values(**values)
        )

    def delete_trigger(self, trigger_id: str) -> bool:
        stmt = t.scheduled_triggers.delete().where(t.scheduled_triggers.c.id == trigger_id)
        return bool(self.conn.execute(stmt).rowcount)

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
        return [_record(Trigger, r) for r in self.conn.execute(q)]

    def set_next_runs(self, updates: Sequence[Mapping[str, Any]]) -> None:
        """Apply ``{"id", "next_run_at", "enabled", "last_error", "updated_at"}`` rows."""
        if not updates:
            return
        if self.postgres:
            # One statement for the whole batch rather than one per row.
            self.conn.execute(
                _PG_SET_NEXT_RUNS,
                {
                    "ids": [u["id"] for u in updates],
                    "next_run_ats": [u["next_run_at"] for u in updates],
                    "enableds": [u["enabled"] for u in updates],
                    "last_errors": [u["last_error"] for u in updates],
                    "updated_ats": [u["updated_at"] for u in updates],
                },
            )
            return
        c = t.scheduled_triggers.c
        stmt = (
            t.scheduled_triggers.update()
            .where(c.id == sa.bindparam("b_id"))
            .values(
                next_run_at=sa.bindparam("b_next_run_at"),
                enabled=sa.bindparam("b_enabled"),
                last_error=sa.bindparam("b_last_error"),
                updated_at=sa.bindparam("b_updated_at"),
            )
        )
        self.conn.execute(stmt, [{f"b_{k}": v for k, v in u.items()} for u in updates])

    def advance_triggers(
        self, updates: Sequence[Mapping[str, Any]], seen: Sequence[Trigger]
    ) -> set[str]:
        """Apply ``updates`` (as :meth:`set_next_runs`) to the triggers still exactly as
        ``seen`` (same ``next_run_at`` and ``updated_at``); returns the ids changed.

        A trigger edited since it was read keeps the edit and is left out.
        """
        if not updates:
            return set()
        before = {trigger.id: trigger for trigger in seen}
        if self.postgres:
            rows = self.conn.execute(
                _PG_ADVANCE,
                {
                    "ids": [u["id"] for u in updates],
                    "next_run_ats": [u["next_run_at"] for u in updates],
                    "enableds": [u["enabled"] for u in updates],
                    "last_errors": [u["last_error"] for u in updates],
                    "updated_ats": [u["updated_at"] for u in updates],
                    "seen_next_run_ats": [before[u["id"]].next_run_at for u in updates],
                    "seen_updated_ats": [before[u["id"]].updated_at for u in updates],
                },
            )
            return {str(r[0]) for r in rows}
        # SQLite: this transaction holds the database's write lock, so what it reads
        # now stays true until it commits.
        c = t.scheduled_triggers.c
        current = self.conn.execute(
            sa.select(c.id, c.next_run_at, c.updated_at).where(c.id.in_([u["id"] for u in updates]))
        )
        unchanged = {
            str(r.id)
            for r in current
            if (r.next_run_at, r.updated_at) == (before[r.id].next_run_at, before[r.id].updated_at)
        }
        self.set_next_runs([u for u in updates if u["id"] in unchanged])
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
        return [_record(Trigger, r) for r in self.conn.execute(q)]

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

    # -- invocations --------------------------------------------------------------------

    def insert_invocations(self, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        """Insert; a row whose idempotency key exists already is silently skipped.
        Returns the ids actually inserted."""
        if not rows:
            return []
        stmt = (
            self._insert(t.invocations)
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(t.invocations.c.id)
        )
        result = self.conn.execute(stmt, list(rows))
        return [str(r[0]) for r in result]

    def get_invocation(self, invocation_id: str) -> Invocation | None:
        q = sa.select(t.invocations).where(t.invocations.c.id == invocation_id)
        row = self.conn.execute(q).first()
        return None if row is None else _record(Invocation, row)

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
        return None if row is None else _record(Invocation, row)

    def get_invocation_by_key(self, key: str) -> Invocation | None:
        q = sa.select(t.invocations).where(t.invocations.c.idempotency_key == key)
        row = self.conn.execute(q).first()
        return None if row is None else _record(Invocation, row)

    def list_invocations(
        self,
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
        """Newest first; ``before`` is the cursor (an id from the previous page)."""
        c = t.invocations.c
        q = sa.select(t.invocations).where(c.tenant_id == tenant_id, c.project_id == project_id)
        if trigger_id is not None:
            q = q.where(c.trigger_id == trigger_id)
        if statuses:
            q = q.where(c.status.in_(list(statuses)))
        if scheduled_from is not None:
            q = q.where(c.scheduled_for >= scheduled_from)
        if scheduled_to is not None:
            q = q.where(c.scheduled_for < scheduled_to)
        if before is not None:
            q = q.where(c.id < before)
        q = q.order_by(c.id.desc()).limit(limit)
        return [_record(Invocation, r) for r in self.conn.execute(q)]

    def pending_invocations(self, tenant_id: str, project_id: str, limit: int) -> list[Invocation]:
        """The project's pending invocations, in the order workers may start them."""
        c = t.invocations.c
        q = (
            sa.select(t.invocations)
            .where(c.tenant_id == tenant_id, c.project_id == project_id, c.status == PENDING)
            .order_by(c.not_before, c.id)
            .limit(limit)
        )
        return [_record(Invocation, r) for r in self.conn.execute(q)]

    def list_attempts(self, invocation_id: str) -> list[Attempt]:
        q = (
            sa.select(t.invocation_attempts)
            .where(t.invocation_attempts.c.invocation_id == invocation_id)
            .order_by(t.invocation_attempts.c.attempt)
        )
        return [_record(Attempt, r) for r in self.conn.execute(q)]

    def claim_invocations(
        self,
        now: datetime,
        limit: int,
        worker_id: str,
        lease_until: datetime,
        deployment_id: str,
    ) -> list[Invocation]:
        """Take up to ``limit`` due pending invocations, oldest first (see
        :meth:`claim_candidates` and :meth:`claim_ids`)."""
        picked = [c.id for c in self.claim_candidates(now, limit)]
        return self.claim_ids(picked, now, worker_id, lease_until, deployment_id)

    def claim_candidates(
        self,
        now: datetime,
        limit: int,
        exclude_tenants: Iterable[str] = (),
        *,
        only: str | None = None,
        lock: bool = True,
    ) -> list[Candidate]:
        """Up to ``limit`` due pending invocations, oldest first, of tenants other than
        ``exclude_tenants`` (or just the one with id ``only``); with ``lock``, locked for
        this transaction on PostgreSQL (other workers skip them), so that
        :meth:`claim_ids` can take any of them."""
        c = t.invocations.c
        q = sa.select(c.id, c.tenant_id, c.project_id, c.ref, c.agent_id, c.not_before).where(
            c.status == PENDING, c.not_before <= now
        )
        excluded = sorted(set(exclude_tenants))
        if excluded:
            q = q.where(c.tenant_id.not_in(excluded))
        if only is not None:
            q = q.where(c.id == only)
        q = q.order_by(c.not_before).limit(limit)
        if self.postgres and lock:
            q = q.with_for_update(skip_locked=True)
        return [Candidate(*r) for r in self.conn.execute(q)]

    def claim_ids(
        self,
        ids: Sequence[str],
        now: datetime,
        worker_id: str,
        lease_until: datetime,
        deployment_id: str,
    ) -> list[Invocation]:
        """Claim these pending invocations: each becomes ``running`` under this worker's
        lease with its attempt number raised, and its attempt is recorded. Returns them
        oldest first; an id no longer pending is left out."""
        if not ids:
            return []
        c = t.invocations.c
        stmt = (
            t.invocations.update()
            .where(c.id.in_(list(ids)), c.status == PENDING)
            .values(
                status=RUNNING,
                attempt=c.attempt + 1,
                lease_owner=worker_id,
                lease_expires_at=lease_until,
                deployment_id=deployment_id,
                # A bare ``now`` inside a function would bind as a plain DateTime: on
                # SQLite that stores a non-UTC instant's wall time and accepts naive
                # ones. Typing it as the column keeps UTC at rest.
                started_at=sa.func.coalesce(c.started_at, sa.literal(now, c.started_at.type)),
            )
            .returning(*t.invocations.c)
        )
        claimed = [_record(Invocation, r) for r in self.conn.execute(stmt)]
        if claimed:
            self.conn.execute(
                t.invocation_attempts.insert(),
                [
                    {
                        "invocation_id": inv.id,
                        "attempt": inv.attempt,
                        "deployment_id": deployment_id,
                        "worker_id": worker_id,
                        "started_at": now,
                    }
                    for inv in claimed
                ],
            )
        claimed.sort(key=lambda inv: (inv.not_before, inv.id))
        return claimed

    def running_per_agent(
        self, agents: Iterable[tuple[str, str, str, str]], *, lock: bool = False
    ) -> dict[tuple[str, str, str, str], int]:
        """How many invocations of each agent (tenant, project, ref, agent) run now, in
        every process. ``lock`` locks those agents' rows on PostgreSQL, so that workers
        deciding on the same agent's cap go one after the other."""
        keys = sorted(set(agents))
        if not keys:
            return {}
        if lock and self.postgres:
            a = t.agents.c
            self.conn.execute(
                sa.select(a.id)
                .where(sa.tuple_(a.tenant_id, a.project_id, a.ref, a.id).in_(keys))
                .with_for_update()
            )
        c = t.invocations.c
        scope = (c.tenant_id, c.project_id, c.ref, c.agent_id)
        q = (
            sa.select(*scope, sa.func.count())
            .where(c.status == RUNNING, sa.tuple_(*scope).in_(keys))
            .group_by(*scope)
        )
        return {
            (str(r[0]), str(r[1]), str(r[2]), str(r[3])): int(r[4]) for r in self.conn.execute(q)
        }

    def record_resolutions(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Store what each attempt resolved: ``{"id", "agent_name", "ref_revision"}``."""
        if not rows:
            return
        c = t.invocations.c
        stmt = (
            t.invocations.update()
            .where(c.id == sa.bindparam("b_id"))
            .values(
                agent_name=sa.bindparam("b_agent_name"),
                ref_revision=sa.bindparam("b_ref_revision"),
            )
        )
        self.conn.execute(stmt, [{f"b_{k}": v for k, v in r.items()} for r in rows])

    def finish_attempts(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Close attempts: ``{"invocation_id", "attempt", "ended_at", "outcome", "error"}``."""
        if not rows:
            return
        c = t.invocation_attempts.c
        stmt = (
            t.invocation_attempts.update()
            .where(c.invocation_id == sa.bindparam("b_invocation_id"))
            .where(c.attempt == sa.bindparam("b_attempt"))
            .where(c.ended_at.is_(None))
            .values(
                ended_at=sa.bindparam("b_ended_at"),
                outcome=sa.bindparam("b_outcome"),
                error=sa.bindparam("b_error"),
            )
        )
        self.conn.execute(stmt, [{f"b_{k}": v for k, v in r.items()} for r in rows])

    def settle_invocations(self, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        """Move running invocations held by ``worker_id`` to their next state.

        Each row: ``id``, ``worker_id``, ``status``, ``not_before``, ``last_error``,
        ``result``, ``conversation_id``, ``completed_at`` and ``message`` (None keeps the
        stored one). A row whose invocation is no
        longer running under that worker (cancelled meanwhile, lease lost) is left as it
        is; returns the ids that were updated.
        """
        if not rows:
            return []
        c = t.invocations.c
        # Which of them this worker still holds; on PostgreSQL the rows stay locked until
        # commit, so a concurrent cancel waits and then finds them final.
        held_q = sa.select(c.id, c.lease_owner).where(
            c.id.in_([r["id"] for r in rows]), c.status == RUNNING
        )
        if self.postgres:
            held_q = held_q.with_for_update()
        owners = {str(r.id): r.lease_owner for r in self.conn.execute(held_q)}
        keep = [r for r in rows if owners.get(str(r["id"]), object()) == r["worker_id"]]
        if not keep:
            return []
        stmt = (
            t.invocations.update()
            .where(c.id == sa.bindparam("b_id"), c.status == RUNNING)
            .values(
                status=sa.bindparam("b_status"),
                lease_owner=None,
                lease_expires_at=None,
                last_error=sa.bindparam("b_last_error"),
                not_before=sa.func.coalesce(
                    sa.bindparam("b_not_before", type_=c.not_before.type), c.not_before
                ),
                result=sa.bindparam("b_result", type_=c.result.type),
                conversation_id=sa.bindparam("b_conversation_id"),
                completed_at=sa.bindparam("b_completed_at", type_=c.completed_at.type),
                message=sa.func.coalesce(
                    sa.bindparam("b_message", type_=c.message.type), c.message
                ),
            )
        )
        self.conn.execute(
            stmt,
            [
                {
                    "b_id": r["id"],
                    "b_status": r["status"],
                    "b_last_error": r.get("last_error"),
                    "b_not_before": r.get("not_before"),
                    "b_result": r.get("result"),
                    "b_conversation_id": r.get("conversation_id"),
                    "b_completed_at": r.get("completed_at"),
                    "b_message": r.get("message"),
                }
                for r in keep
            ],
        )
        return [str(r["id"]) for r in keep]

    def renew_leases(self, ids: Sequence[str], worker_id: str, until: datetime) -> list[str]:
        """Extend this worker's leases; returns the ids it still holds while running."""
        if not ids:
            return []
        c = t.invocations.c
        stmt = (
            t.invocations.update()
            .where(c.id.in_(list(ids)), c.status == RUNNING, c.lease_owner == worker_id)
            .values(lease_expires_at=until)
            .returning(c.id)
        )
        return [str(r.id) for r in self.conn.execute(stmt)]

    def expired_leases(self, now: datetime, limit: int) -> list[Invocation]:
        c = t.invocations.c
        q = (
            sa.select(t.invocations)
            .where(c.status == RUNNING, c.lease_expires_at < now)
            .order_by(c.lease_expires_at)
            .limit(limit)
        )
        if self.postgres:
            q = q.with_for_update(skip_locked=True)
        return [_record(Invocation, r) for r in self.conn.execute(q)]

    def fail_invocations(self, ids: Sequence[str], now: datetime, error: str) -> list[str]:
        """End these pending or running invocations ``failed`` with ``error``, touching
        nothing else of them (for rows that cannot be processed as usual)."""
        if not ids:
            return []
        c = t.invocations.c
        stmt = (
            t.invocations.update()
            .where(c.id.in_(list(ids)), c.status.in_(sorted(ACTIVE_STATUSES)))
            .values(
                status=FAILED,
                last_error=error,
                completed_at=now,
                lease_owner=None,
                lease_expires_at=None,
            )
            .returning(c.id)
        )
        failed = [str(r.id) for r in self.conn.execute(stmt)]
        if failed:
            a = t.invocation_attempts.c
            self.conn.execute(
                t.invocation_attempts.update()
                .where(a.invocation_id.in_(failed), a.ended_at.is_(None))
                .values(ended_at=now, outcome=FAILED, error=error)
            )
        return failed

    def cancel_invocations(self, ids: Sequence[str], now: datetime, reason: str) -> list[str]:
        """Cancel those still pending or running; returns the ids cancelled."""
        if not ids:
            return []
        c = t.invocations.c
        stmt = (
            t.invocations.update()
            .where(c.id.in_(list(ids)), c.status.in_(sorted(ACTIVE_STATUSES)))
            .values(
                status=CANCELLED,
                status_reason=reason,
                completed_at=now,
                lease_owner=None,
                lease_expires_at=None,
            )
            .returning(c.id)
        )
        cancelled = [str(r.id) for r in self.conn.execute(stmt)]
        if cancelled:
            a = t.invocation_attempts.c
            self.conn.execute(
                t.invocation_attempts.update()
                .where(a.invocation_id.in_(cancelled), a.ended_at.is_(None))
                .values(ended_at=now, outcome=CANCELLED, error=reason)
            )
        return cancelled

    def active_invocation_ids(
        self, trigger_ids: Sequence[str], statuses: Iterable[str] = ACTIVE_STATUSES
    ) -> list[str]:
        if not trigger_ids:
            return []
        c = t.invocations.c
        q = (
            sa.select(c.id)
            .where(c.trigger_id.in_(list(trigger_ids)), c.status.in_(sorted(statuses)))
            .order_by(c.id)
        )
        return [str(r.id) for r in self.conn.execute(q)]

    def not_running(self, ids: Sequence[str]) -> list[str]:
        """Of these ids, those no longer running (cancelled meanwhile, for example)."""
        if not ids:
            return []
        c = t.invocations.c
        q = sa.select(c.id).where(c.id.in_(list(ids)), c.status != RUNNING)
        return [str(r.id) for r in self.conn.execute(q)]

    def earliest_claimable(self, exclude_tenants: Iterable[str] = ()) -> datetime | None:
        c = t.invocations.c
        q = sa.select(c.not_before).where(c.status == PENDING)
        excluded = sorted(set(exclude_tenants))
        if excluded:
            q = q.where(c.tenant_id.not_in(excluded))
        row = self.conn.execute(q.order_by(c.not_before).limit(1)).first()
        return None if row is None else row[0]

    def count_active(self, status: str) -> int:
        """How many invocations are ``pending`` or ``running``: a count of the rows of
        that status's partial index, never a scan of the table."""
        if status not in ACTIVE_STATUSES:
            raise ValueError(f"only pending and running invocations are counted, not {status}")
        c = t.invocations.c
        return int(
            self.conn.execute(sa.select(sa.func.count()).where(c.status == status)).scalar_one()
        )

    def earliest_lease_expiry(self) -> datetime | None:
        c = t.invocations.c
        row = self.conn.execute(
            sa.select(c.lease_expires_at)
            .where(c.status == RUNNING)
            .order_by(c.lease_expires_at)
            .limit(1)
        ).first()
        return None if row is None else row[0]

    # -- scheduler state and deployments ------------------------------------------------

    def scheduler_state(self, *, for_update: bool = False) -> SchedulerState:
        q = sa.select(
            t.scheduler_state.c.run_id,
            t.scheduler_state.c.deployment_id,
            t.scheduler_state.c.generation,
            t.scheduler_state.c.lease_expires_at,
            t.scheduler_state.c.heartbeat_at,
        ).where(t.scheduler_state.c.id == 1)
        if for_update and self.postgres:
            q = q.with_for_update()
        row = self.conn.execute(q).first()
        if row is None:
            self.conn.execute(t.scheduler_state.insert().values(id=1, generation=0))
            return SchedulerState(None, None, 0, None, None)
        return _record(SchedulerState, row)

    def write_scheduler_state(self, state: SchedulerState) -> None:
        self.conn.execute(
            t.scheduler_state.update().where(t.scheduler_state.c.id == 1).values(**state.__dict__)
        )

    def hold_fence(
        self, run_id: str, generation: int, now: datetime, lease_until: datetime
    ) -> bool:
        """Renew the scheduler lease if ``run_id`` still holds ``generation``.

        Dispatch calls this first in its transaction: on PostgreSQL it locks the state
        row, so a takeover either happened before (and this returns False) or waits
        until the dispatch commits.
        """
        c = t.scheduler_state.c
        stmt = (
            t.scheduler_state.update()
            .where(c.id == 1, c.run_id == run_id, c.generation == generation)
            .values(heartbeat_at=now, lease_expires_at=lease_until)
        )
        return bool(self.conn.execute(stmt).rowcount)

    def upsert_deployment(self, deployment_id: str, version: str, now: datetime) -> None:
        stmt = self._insert(t.deployments).values(
            id=deployment_id, version=version, started_at=now, heartbeat_at=now
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"], set_={"heartbeat_at": now, "version": version}
        )
        self.conn.execute(stmt)

    def current_deployment_at(self, now: datetime, role: str = "worker") -> str | None:
        """The newest deployment (by first start) with a live process of ``role`` at
        ``now``: for ``worker``, the one whose workers claim new work; for
        ``scheduler``, the one whose scheduler takes the lease. (Processes of other
        roles, such as API-only replicas, never make a deployment current.)"""
        d = t.deployments.c
        p = t.processes.c
        rows = self.conn.execute(
            sa.select(d.id, d.started_at, p.roles)
            .join(t.processes, p.deployment_id == d.id)
            .where(p.expires_at > now)
        ).all()
        fitting = [(r.started_at, r.id) for r in rows if role in (r.roles or ())]
        return str(max(fitting)[1]) if fitting else None

    def list_deployments(self) -> list[Deployment]:
        q = sa.select(t.deployments).order_by(t.deployments.c.started_at)
        return [_record(Deployment, r) for r in self.conn.execute(q)]

    # -- processes ------------------------------------------------------------------------

    def upsert_process(self, process: Process) -> None:
        """Record a process, or renew its heartbeat (inserted again if it was removed)."""
        values = process.__dict__
        stmt = self._insert(t.processes).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={k: v for k, v in values.items() if k not in ("id", "started_at")},
        )
        self.conn.execute(stmt)

    def delete_process(self, process_id: str) -> bool:
        stmt = t.processes.delete().where(t.processes.c.id == process_id)
        return bool(self.conn.execute(stmt).rowcount)

    def delete_processes_expired_before(self, before: datetime) -> int:
        stmt = t.processes.delete().where(t.processes.c.expires_at < before)
        return int(self.conn.execute(stmt).rowcount)

    def list_processes(self, *, live_at: datetime | None = None) -> list[Process]:
        """Every recorded process (only those live at ``live_at`` when given), newest
        first."""
        p = t.processes.c
        q = sa.select(t.processes).order_by(p.started_at.desc(), p.id)
        if live_at is not None:
            q = q.where(p.expires_at > live_at)
        return [_record(Process, r) for r in self.conn.execute(q)]
