"""Tenants, their quota overrides and their API keys."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from tickwork.storage import tables as t
from tickwork.storage.records import (
    ApiKey,
)
from tickwork.storage.sql.base import TxBase, record


class TenancySql(TxBase):
    """Tenants and keys."""

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
        return None if row is None else record(ApiKey, row)

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
