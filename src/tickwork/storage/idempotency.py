"""Stored answers of idempotent requests (table ``idempotency_keys``).

Functions over an open :class:`~tickwork.storage.sql.Tx`, like its methods: the caller
decides where the transaction begins and ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from tickwork.storage import tables as t
from tickwork.storage.sql import Tx

_c = t.idempotency_keys.c


@dataclass(frozen=True)
class StoredRequest:
    """A request seen with an ``Idempotency-Key``; ``status`` is None while the first
    one is still being handled."""

    tenant_id: str
    key: str
    fingerprint: str
    method: str
    path: str
    status: int | None
    headers: dict[str, str] | None
    body: str | None
    created_at: datetime
    expires_at: datetime


def claim(
    tx: Tx,
    tenant_id: str,
    key: str,
    *,
    fingerprint: str,
    method: str,
    path: str,
    now: datetime,
    expires_at: datetime,
) -> StoredRequest | None:
    """Record that a request with this key is being handled. Returns None when this
    caller now holds the key, else the request already recorded under it (an expired
    one is replaced). Of concurrent callers exactly one gets None: the insert is
    ``ON CONFLICT DO NOTHING`` on the primary key."""
    tx.conn.execute(
        t.idempotency_keys.delete().where(
            _c.tenant_id == tenant_id, _c.key == key, _c.expires_at <= now
        )
    )
    inserted = tx.conn.execute(
        tx._insert(t.idempotency_keys)
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
    found = get(tx, tenant_id, key)
    assert found is not None  # it conflicted, and only expired rows are deleted
    return found


def get(tx: Tx, tenant_id: str, key: str) -> StoredRequest | None:
    row = tx.conn.execute(
        sa.select(t.idempotency_keys).where(_c.tenant_id == tenant_id, _c.key == key)
    ).first()
    return None if row is None else StoredRequest(**row._mapping)


def complete(
    tx: Tx, tenant_id: str, key: str, status: int, headers: dict[str, str], body: str
) -> None:
    """Store the answer of the request that holds the key."""
    tx.conn.execute(
        t.idempotency_keys.update()
        .where(_c.tenant_id == tenant_id, _c.key == key)
        .values(status=status, headers=headers, body=body)
    )


def release(tx: Tx, tenant_id: str, key: str) -> None:
    """Forget a key whose request ended without an answer worth keeping (an error)."""
    tx.conn.execute(
        t.idempotency_keys.delete().where(
            _c.tenant_id == tenant_id, _c.key == key, _c.status.is_(None)
        )
    )


def prune(tx: Tx, now: datetime, limit: int) -> int:
    """Delete up to ``limit`` expired rows, oldest first (one range scan of the index
    on ``expires_at``); returns how many."""
    expired = (
        sa.select(_c.tenant_id, _c.key)
        .where(_c.expires_at <= now)
        .order_by(_c.expires_at)
        .limit(limit)
    )
    keys: list[Any] = [tuple(r) for r in tx.conn.execute(expired)]
    if not keys:
        return 0
    stmt = t.idempotency_keys.delete().where(sa.tuple_(_c.tenant_id, _c.key).in_(keys))
    return int(tx.conn.execute(stmt).rowcount)


def count(tx: Tx) -> int:
    return int(
        tx.conn.execute(sa.select(sa.func.count()).select_from(t.idempotency_keys)).scalar_one()
    )
