"""The scheduler lease, deployments and processes."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from tickwork.storage import tables as t
from tickwork.storage.records import (
    Deployment,
    Process,
    SchedulerState,
)
from tickwork.storage.sql.base import TxBase, record

# Every deployment with a live process at ``:now``, with the process's roles: read by
# every claim, so built once.
_LIVE_DEPLOYMENTS = (
    sa.select(t.deployments.c.id, t.deployments.c.started_at, t.processes.c.roles)
    .join(t.processes, t.processes.c.deployment_id == t.deployments.c.id)
    .where(t.processes.c.expires_at > sa.bindparam("now", type_=t.processes.c.expires_at.type))
)


class LeadershipSql(TxBase):
    """Scheduler lease, deployments and processes."""

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
        return record(SchedulerState, row)

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
        rows = self.conn.execute(_LIVE_DEPLOYMENTS, {"now": now}).all()
        fitting = [(r.started_at, r.id) for r in rows if role in (r.roles or ())]
        return str(max(fitting)[1]) if fitting else None

    def list_deployments(self) -> list[Deployment]:
        q = sa.select(t.deployments).order_by(t.deployments.c.started_at)
        return [record(Deployment, r) for r in self.conn.execute(q)]

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
        return [record(Process, r) for r in self.conn.execute(q)]
