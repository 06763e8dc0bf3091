"""Stored answers of idempotent requests (the :class:`~tickwork.storage.ports.Idempotency`
port, table ``idempotency_keys``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from tickwork.storage import tables as t
from tickwork.storage.ports import StoredRequest
from tickwork.storage.sql.base import TxBase

_c = t.idempotency_keys.c


class IdempotencySql(TxBase):
    def claim_idempotency_key(
        self,
        tenant_id: str,
        key: str,
        *,
        fingerprint: str,
        method: str,
        path: str,
        now: datetime,
        expires_at: datetime,
    ) -> StoredRequest | None:
        self.conn.execute(
            t.idempotency_keys.delete().where(
                _c.tenant_id == tenant_id, _c.key == key, _c.expires_at <= now
            )
        )
        # ON CONFLICT DO NOTHING on the primary key: of concurrent claims, one inserts.
        inserted = self.conn.execute(
            self._insert(t.idempotency_keys)
            .values(
                tenant_id=tenant_id,
                key=key,
                fingerprint=fingerprint,
                method=method,
                path=path,
                created_at=now,
                expires_at=expires_at,
            )
            .on_conflict_do_nothing(index_elements=["tenant_id", "key"])
            .returning(_c.key)
        ).first()
        if inserted is not None:
            return None
        found = self.idempotency_key(tenant_id, key)
        assert found is not None  # it conflicted, and only expired rows are deleted
        return found

    def idempotency_key(self, tenant_id: str, key: str) -> StoredRequest | None:
        row = self.conn.execute(
            sa.select(t.idempotency_keys).where(_c.tenant_id == tenant_id, _c.key == key)
        ).first()
        return None if row is None else StoredRequest(**row._mapping)

    def complete_idempotency_key(
        self, tenant_id: str, key: str, status: int, headers: dict[str, str], body: str
    ) -> None:
        self.conn.execute(
            t.idempotency_keys.update()
            .where(_c.tenant_id == tenant_id, _c.key == key)
            .values(status=status, headers=headers, body=body)
        )

    def release_idempotency_key(self, tenant_id: str, key: str) -> None:
        self.conn.execute(
            t.idempotency_keys.delete().where(
                _c.tenant_id == tenant_id, _c.key == key, _c.status.is_(None)
            )
        )

    def prune_idempotency_keys(self, now: datetime, limit: int) -> int:
        # One range scan of the index on ``expires_at``.
        expired = (
            sa.select(_c.tenant_id, _c.key)
            .where(_c.expires_at <= now)
            .order_by(_c.expires_at)
            .limit(limit)
        )
        keys: list[Any] = [tuple(r) for r in self.conn.execute(expired)]
        if not keys:
            return 0
        stmt = t.idempotency_keys.delete().where(sa.tuple_(_c.tenant_id, _c.key).in_(keys))
        return int(self.conn.execute(stmt).rowcount)

    def count_idempotency_keys(self) -> int:
        q = sa.select(sa.func.count()).select_from(t.idempotency_keys)
        return int(self.conn.execute(q).scalar_one())
