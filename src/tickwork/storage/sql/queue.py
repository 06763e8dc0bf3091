"""The invocation queue: inserting, claiming, settling, leases and cancellation."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields
from datetime import datetime

import sqlalchemy as sa

from tickwork.storage import tables as t
from tickwork.storage.ports import AttemptEnd, NewInvocation, Resolution, Settlement
from tickwork.storage.records import (
    ACTIVE_STATUSES,
    CANCELLED,
    FAILED,
    PENDING,
    RUNNING,
    Agent,
    Candidate,
    Invocation,
)
from tickwork.storage.sql import candidates, inserts
from tickwork.storage.sql.base import TxBase, bulk_update, param, record

_AGENT = tuple(f.name for f in fields(Agent))


# When the first lease of a running invocation ends (every worker's wake-up reads it).
_EARLIEST_LEASE_EXPIRY = (
    sa.select(t.invocations.c.lease_expires_at)
    .where(t.invocations.c.status == RUNNING)
    .order_by(t.invocations.c.lease_expires_at)
    .limit(1)
)


class QueueSql(TxBase):
    """The invocation queue."""

    def insert_invocations(self, rows: Sequence[NewInvocation]) -> list[str]:
        return inserts.insert_invocations(self.conn, self.postgres, rows)

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
        :meth:`claim_ids` can take any of them (:mod:`.candidates`)."""
        return candidates.claim_candidates(
            self.conn, self.postgres, now, limit, set(exclude_tenants), only=only, lock=lock
        )

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
        params = {
            "ids": list(ids),
            "worker_id": worker_id,
            "lease_until": lease_until,
            "deployment_id": deployment_id,
            "now": now,
        }
        if self.postgres:
            # One statement: the attempts are recorded by the claim itself.
            query = candidates.claim_statement(True)
            claimed = [record(Invocation, r) for r in self.conn.execute(query, params)]
        else:
            claimed = [
                record(Invocation, r)
                for r in self.conn.execute(candidates.claim_statement(False), params)
            ]
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

    def agents_at_head(
        self, keys: Iterable[tuple[str, str, str, str]]
    ) -> dict[tuple[str, str, str, str], tuple[Agent, int]]:
        wanted = sorted(set(keys))
        if not wanted:
            return {}
        a, r = t.agents.c, t.refs.c
        q = (
            sa.select(*(a[name] for name in _AGENT), r.revision)
            .join(
                t.refs,
                sa.and_(r.tenant_id == a.tenant_id, r.project_id == a.project_id, r.name == a.ref),
            )
            .where(sa.tuple_(a.tenant_id, a.project_id, a.ref, a.id).in_(wanted))
        )
        found: dict[tuple[str, str, str, str], tuple[Agent, int]] = {}
        for row in self.conn.execute(q):
            revision = row[-1]
            agent = Agent(*row[:-1])
            found[(agent.tenant_id, agent.project_id, agent.ref, agent.id)] = (agent, revision)
        return found

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

    def others_running(self, trigger_id: str, invocation_id: str) -> bool:
        c = t.invocations.c
        q = (
            sa.select(c.id)
            .where(c.trigger_id == trigger_id, c.status == RUNNING, c.id != invocation_id)
            .limit(1)
        )
        return self.conn.execute(q).first() is not None

    def release(self, invocation: Invocation, not_before: datetime) -> None:
        c = t.invocations.c
        self.conn.execute(
            t.invocations.update()
            .where(c.id == invocation.id)
            .values(
                status=PENDING,
                attempt=invocation.attempt - 1,
                not_before=not_before,
                lease_owner=None,
                lease_expires_at=None,
            )
        )
        a = t.invocation_attempts.c
        self.conn.execute(
            t.invocation_attempts.delete().where(
                a.invocation_id == invocation.id, a.attempt == invocation.attempt
            )
        )

    def record_resolutions(self, rows: Sequence[Resolution]) -> None:
        bulk_update(
            self.conn,
            t.invocations,
            rows,
            match=["id"],
            set_=["agent_name", "ref_revision"],
            name="record_resolutions",
        )

    def finish_attempts(self, rows: Sequence[AttemptEnd]) -> None:
        a = t.invocation_attempts.c
        bulk_update(
            self.conn,
            t.invocation_attempts,
            rows,
            match=["invocation_id", "attempt"],
            set_=["ended_at", "outcome", "error"],
            where=[a.ended_at.is_(None)],
            name="finish_attempts",
        )

    def settle_invocations(self, rows: Sequence[Settlement]) -> list[str]:
        if not rows:
            return []
        c = t.invocations.c
        set_ = ["status", "last_error", "result", "conversation_id", "completed_at"]
        values = {
            "lease_owner": None,
            "lease_expires_at": None,
            "not_before": sa.func.coalesce(param(c.not_before), c.not_before),
            "message": sa.func.coalesce(param(c.message), c.message),
        }
        if self.postgres:
            # One statement: it changes (and locks until commit) only the rows still
            # running under the settlement's worker, so a concurrent cancel waits and
            # then finds them final.
            held = c.lease_owner == param(c.lease_owner, "worker_id")
            done = bulk_update(
                self.conn,
                t.invocations,
                # In id order, as a cancel takes them: two writers of the same rows
                # never wait on each other in a cycle.
                sorted(rows, key=lambda r: r.id),
                match=["id"],
                where=[c.status == RUNNING, held],
                bound=["not_before", "message", "worker_id"],
                returning=[c.id],
                set_=set_,
                values=values,
                name="settle_invocations",
            )
            changed = {str(r.id) for r in done}
            return [r.id for r in rows if r.id in changed]
        # SQLite: this transaction holds the database's write lock.
        held_q = sa.select(c.id, c.lease_owner).where(
            c.id.in_([r.id for r in rows]), c.status == RUNNING
        )
        owners = {str(r.id): r.lease_owner for r in self.conn.execute(held_q)}
        keep = [r for r in rows if owners.get(r.id, object()) == r.worker_id]
        bulk_update(
            self.conn,
            t.invocations,
            keep,
            match=["id"],
            where=[c.status == RUNNING],
            bound=["not_before", "message"],
            set_=set_,
            values=values,
            name="settle_invocations",
        )
        return [r.id for r in keep]

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
        return [record(Invocation, r) for r in self.conn.execute(q)]

    def fail_invocations(self, ids: Sequence[str], now: datetime, error: str) -> list[str]:
        # Touches nothing else of them: for rows that cannot be processed as usual.
        return self._end_active(ids, now, FAILED, error, last_error=error)

    def cancel_invocations(self, ids: Sequence[str], now: datetime, reason: str) -> list[str]:
        return self._end_active(ids, now, CANCELLED, reason, status_reason=reason)

    def _end_active(
        self, ids: Sequence[str], now: datetime, status: str, error: str, **why: str
    ) -> list[str]:
        """End these pending or running invocations in ``status`` (saying ``why`` in
        its columns), and their open attempts with ``error``; returns the ids ended."""
        if not ids:
            return []
        c = t.invocations.c
        stmt = (
            t.invocations.update()
            .where(c.id.in_(list(ids)), c.status.in_(sorted(ACTIVE_STATUSES)))
            .values(status=status, completed_at=now, lease_owner=None, lease_expires_at=None, **why)
            .returning(c.id)
        )
        ended = [str(r.id) for r in self.conn.execute(stmt)]
        if ended:
            a = t.invocation_attempts.c
            self.conn.execute(
                t.invocation_attempts.update()
                .where(a.invocation_id.in_(ended), a.ended_at.is_(None))
                .values(ended_at=now, outcome=status, error=error)
            )
        return ended

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
        return candidates.earliest_claimable(self.conn, self.postgres, set(exclude_tenants))

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
        row = self.conn.execute(_EARLIEST_LEASE_EXPIRY).first()
        return None if row is None else row[0]
