"""Request dependencies: the context, authentication, pagination."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tickwork.domain.names import SLUG_PATTERN
from tickwork.errors import NotFound
from tickwork.services import tenants
from tickwork.services.context import Context

bearer = HTTPBearer(auto_error=False, description="an API key of the tenant")
admin_bearer = HTTPBearer(
    auto_error=False, scheme_name="AdminToken", description="TICKWORK_ADMIN_TOKEN"
)

TenantId = Annotated[str, Path(pattern=SLUG_PATTERN, max_length=64)]
ProjectId = Annotated[str, Path(pattern=SLUG_PATTERN, max_length=64)]
AgentId = Annotated[str, Path(pattern=SLUG_PATTERN, max_length=64)]
ObjectId = Annotated[str, Path(pattern=r"^[a-z]{1,16}_[0-9a-z]{26}$", max_length=64)]


def secret_matches(given: str, expected: str) -> bool:
    """Constant-time comparison of SHA-256 digests: neither content nor length leaks."""
    return hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )


def get_ctx(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


Ctx = Annotated[Context, Depends(get_ctx)]


def caller(request: Request) -> str | None:
    """Who made the request, as recorded in ``created_by``: the key's public prefix."""
    auth = request.headers.get("authorization", "")
    return "api-key:" + auth[7:17] if auth.lower().startswith("bearer ") else None


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def tenant_scope(
    tenant: TenantId,
    ctx: Ctx,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """The tenant in the path, after checking the bearer key belongs to it. A key of
    another tenant gets 404, as if the resource did not exist."""
    if credentials is None:
        raise _unauthorized("an API key is required: Authorization: Bearer <key>")
    owner = tenants.authenticate(ctx, credentials.credentials)
    if owner is None:
        raise _unauthorized("the API key is not valid")
    if owner != tenant:
        raise NotFound(f"tenant {tenant!r} not found")
    return tenant


Tenant = Annotated[str, Depends(tenant_scope)]


def require_admin(
    ctx: Ctx,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(admin_bearer)],
) -> None:
    token = ctx.settings.admin_token
    if not token:
        raise HTTPException(503, "admin routes are off: set TICKWORK_ADMIN_TOKEN to use them")
    if credentials is None or not secret_matches(credentials.credentials, token):
        raise _unauthorized("the admin token is not valid")


Admin = Depends(require_admin)
