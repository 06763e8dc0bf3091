"""Tenants and their API keys."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from tickwork.domain.ids import new_id
from tickwork.domain.names import check_slug, check_text
from tickwork.errors import NotFound
from tickwork.services.context import Context

KEY_PREFIX = "tw_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_tenant(ctx: Context, tenant_id: str) -> bool:
    """Create the tenant; False if it existed already."""
    check_slug(tenant_id, "tenant")
    with ctx.db.write() as tx:
        return tx.create_tenant(tenant_id, ctx.clock.now())


def create_key(ctx: Context, tenant_id: str, name: str = "") -> tuple[str, str]:
    """Mint an API key for the tenant: returns (key id, the key). Only the hash is kept."""
    check_slug(tenant_id, "tenant")
    check_text(name, "name", 200)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    now = ctx.clock.now()
    key_id = new_id("key", now)
    with ctx.db.write() as tx:
        if not tx.tenant_exists(tenant_id):
            raise NotFound(f"tenant {tenant_id!r} does not exist")
        tx.insert_api_key(key_id, tenant_id, name, hash_key(key), key[:10], now)
    return key_id, key


def authenticate(ctx: Context, key: str) -> str | None:
    """The tenant a bearer key belongs to, or None for an unknown or revoked key."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    with ctx.db.read() as tx:
        return tx.tenant_for_key(hash_key(key))


def list_keys(ctx: Context, tenant_id: str) -> list[dict[str, Any]]:
    with ctx.db.read() as tx:
        return tx.list_api_keys(tenant_id)


def revoke_key(ctx: Context, tenant_id: str, key_id: str) -> None:
    with ctx.db.write() as tx:
        if not tx.revoke_api_key(tenant_id, key_id, ctx.clock.now()):
            raise NotFound(f"API key {key_id!r} not found")
