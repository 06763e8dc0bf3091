"""Tenants and their API keys."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from tickwork.domain.ids import new_id
from tickwork.domain.names import check_slug, check_text
from tickwork.domain.scopes import DEFAULT_SCOPE, check_scope, covers
from tickwork.errors import Forbidden, NotFound
from tickwork.services import audit, quotas
from tickwork.services.context import Context
from tickwork.storage.records import ApiKey

KEY_PREFIX = "tw_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_tenant(ctx: Context, tenant_id: str) -> bool:
    """Create the tenant; False if it existed already."""
    check_slug(tenant_id, "tenant")
    with ctx.db.write() as tx:
        now = ctx.clock.now()
        created = tx.create_tenant(tenant_id, now)
        if created:
            change = audit.Change(
                tenant_id, audit.TENANT_WIDE, "tenant.create", "tenant", tenant_id
            )
            audit.record(tx, now, change)
        return created


def first_start(ctx: Context, tenant_id: str = "default") -> str | None:
    """On an empty database: create ``tenant_id`` and one key for it, and return the key
    (None when the database has a tenant already)."""
    with ctx.db.read() as tx:
        if tx.count_tenants():
            return None
    create_tenant(ctx, tenant_id)
    _, key = create_key(ctx, tenant_id, "created at first start")
    return key


def create_key(
    ctx: Context,
    tenant_id: str,
    name: str = "",
    scope: str = DEFAULT_SCOPE,
    *,
    granted_by: ApiKey | None = None,
) -> tuple[str, str]:
    """Mint an API key for the tenant: returns (key id, the key). Only the hash is kept.

    ``granted_by`` is the key asking for it (None: the admin token or the CLI, which may
    mint any scope); a key cannot mint a key of a wider scope than its own.
    """
    check_slug(tenant_id, "tenant")
    check_text(name, "name", 200)
    check_scope(scope)
    if granted_by is not None and not covers(granted_by.scope, scope):
        raise Forbidden(
            f"a {granted_by.scope!r} key cannot create a {scope!r} key: a key can only "
            "create keys of its own scope or a narrower one",
            required_scope=scope,
            key_scope=granted_by.scope,
        )
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    now = ctx.clock.now()
    key_id = new_id("key", now)
    with ctx.db.write() as tx:
        if not tx.tenant_exists(tenant_id):
            raise NotFound(f"tenant {tenant_id!r} does not exist")
        quotas.check(ctx, tx, tenant_id, quotas.Change(api_keys=1))
        tx.insert_api_key(key_id, tenant_id, name, hash_key(key), key[:10], now, scope)
        shown = {"id": key_id, "name": name, "scope": scope, "prefix": key[:10]}
        change = audit.Change(
            tenant_id, audit.TENANT_WIDE, "api_key.create", "api_key", key_id, None, shown
        )
        audit.record(tx, now, change)
    return key_id, key


def authenticate(ctx: Context, key: str) -> ApiKey | None:
    """The live key a bearer token is, or None for an unknown or revoked one.

    Every token costs the same, whatever its form: it is hashed and looked up once in
    the unique index, so the time of a refusal says nothing about how wrong it was.
    """
    with ctx.db.read() as tx:
        found = tx.api_key_for_hash(hash_key(key))
    return found if found is not None and key.startswith(KEY_PREFIX) else None


def list_keys(ctx: Context, tenant_id: str) -> list[dict[str, Any]]:
    with ctx.db.read() as tx:
        return tx.list_api_keys(tenant_id)


def revoke_key(ctx: Context, tenant_id: str, key_id: str) -> None:
    with ctx.db.write() as tx:
        now = ctx.clock.now()
        if not tx.revoke_api_key(tenant_id, key_id, now):
            raise NotFound(f"API key {key_id!r} not found")
        change = audit.Change(
            tenant_id,
            audit.TENANT_WIDE,
            "api_key.revoke",
            "api_key",
            key_id,
            {"revoked_at": None},
            {"revoked_at": now},
        )
        audit.record(tx, now, change)


def key_digest(key: str) -> str:
    """What a web UI session remembers of the key it signed in with: its digest, by
    which :func:`authenticate_digest` finds it while it is live (never the key)."""
    return hash_key(key)


def authenticate_digest(ctx: Context, digest: str) -> ApiKey | None:
    """The live key of this digest, or None once it is revoked."""
    with ctx.db.read() as tx:
        return tx.api_key_for_hash(digest)
