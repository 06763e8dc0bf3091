"""Projects, refs, agents and triggers: what tenants define."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from tickwork.errors import Conflict
from tickwork.storage import tables as t
from tickwork.storage.records import (
    Agent,
    Project,
    Ref,
    Trigger,
)
from tickwork.storage.sql.base import TxBase, record

# Triggers by id, as claims and settlements read them: built once, bound per call.
_TRIGGERS = sa.select(t.scheduled_triggers).where(
    t.scheduled_triggers.c.id.in_(sa.bindparam("ids", expanding=True))
)


class CatalogSql(TxBase):
    """Projects, refs, agents and triggers."""

    def get_project(self, tenant_id: str, project_id: str) -> Project | None:
        q = sa.select(t.projects).where(
            t.projects.c.tenant_id == tenant_id, t.projects.c.id == project_id
        )
        row = self.conn.execute(q).first()
        return None if row is None else record(Project, row)

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
        return [record(Project, r) for r in self.conn.execute(q)]

    def delete_project_invocations(self, tenant_id: str, project_id: str) -> int:
        """Delete a project's invocation history (attempts go with it)."""
        c = t.invocations.c
        stmt = t.invocations.delete().where(c.tenant_id == tenant_id, c.project_id == project_id)
        return int(self.conn.execute(stmt).rowcount)

    def delete_project(self, tenant_id: str, project_id: str) -> bool:
        outbox = t.notification_outbox.c
        self.conn.execute(
            t.notification_outbox.delete().where(
                outbox.tenant_id == tenant_id, outbox.project_id == project_id
            )
        )
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
        return None if row is None else record(Ref, row)

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
        return [record(Ref, r) for r in self.conn.execute(q)]

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
        return None if row is None else record(Agent, row)

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
        return [record(Agent, r) for r in self.conn.execute(q)]

    def agents_after(self, after: tuple[str, str, str, str] | None, limit: int) -> list[Agent]:
        """Every tenant's agents in key order, ``limit`` after the key ``after`` (for
        maintenance commands such as secret rotation)."""
        c = t.agents.c
        q = sa.select(t.agents).order_by(c.tenant_id, c.project_id, c.ref, c.id).limit(limit)
        if after is not None:
            q = q.where(sa.tuple_(c.tenant_id, c.project_id, c.ref, c.id) > sa.tuple_(*after))
        return [record(Agent, r) for r in self.conn.execute(q)]

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
        return None if row is None else record(Trigger, row)

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
        return None if row is None else record(Trigger, row)

    def get_triggers(self, trigger_ids: Iterable[str]) -> dict[str, Trigger]:
        ids = list(dict.fromkeys(trigger_ids))
        if not ids:
            return {}
        return {str(r.id): record(Trigger, r) for r in self.conn.execute(_TRIGGERS, {"ids": ids})}

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
        return [record(Trigger, r) for r in self.conn.execute(q)]

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
