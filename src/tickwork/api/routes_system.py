"""Health, tenants and API keys."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from tickwork import metrics
from tickwork.api.deps import Admin, Caller, Ctx, ReadTenant, TenantId, WriteTenant
from tickwork.api.problems import problem
from tickwork.api.schemas import KeyCreated, KeyIn, KeyOut, TenantIn, TenantOut
from tickwork.services import tenants
from tickwork.storage import migrate

router = APIRouter()

KeyId = Annotated[str, Path(pattern=r"^key_[0-9a-z]{26}$")]


@router.get("/healthz", tags=["health"])
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", tags=["health"], responses={503: {"description": "not ready"}})
def readyz(ctx: Ctx) -> JSONResponse:
    """The database answers and its schema is at the version this release expects."""
    try:
        current = migrate.is_current(ctx.db.engine)
    except Exception:  # the database is unreachable: not ready, and say so
        return problem(503, "the database is not reachable")
    if not current:
        return problem(503, "the database schema is not current: run `tickwork db upgrade`")
    return JSONResponse({"status": "ready"})


@router.get("/metrics", tags=["health"], response_class=PlainTextResponse)
def metrics_text() -> PlainTextResponse:
    """Prometheus metrics of this process."""
    return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")


@router.post(
    "/api/v1/admin/tenants",
    status_code=201,
    tags=["admin"],
    dependencies=[Admin],
    response_model=TenantOut,
    responses={200: {"model": TenantOut, "description": "The tenant existed already."}},
)
def create_tenant(body: TenantIn, ctx: Ctx, response: Response) -> TenantOut:
    created = tenants.create_tenant(ctx, body.id)
    response.status_code = 201 if created else 200
    return TenantOut(id=body.id)


KEY_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "The key asking cannot create a key of a wider scope than its own."},
    429: {"description": "The tenant's quota of live API keys is reached."},
}


@router.post(
    "/api/v1/admin/tenants/{tenant}/api-keys",
    status_code=201,
    tags=["admin"],
    dependencies=[Admin],
    response_model=KeyCreated,
    responses={429: KEY_RESPONSES[429]},
)
def admin_create_key(tenant: TenantId, ctx: Ctx, body: KeyIn | None = None) -> KeyCreated:
    """Mint a key of any scope for the tenant (the admin token may grant every scope)."""
    body = body or KeyIn()
    key_id, key = tenants.create_key(ctx, tenant, body.name or "", body.scope)
    return KeyCreated(id=key_id, key=key, scope=body.scope)


@router.get("/api/v1/tenants/{tenant}/api-keys", tags=["api keys"], response_model=list[KeyOut])
def list_keys(tenant: ReadTenant, ctx: Ctx) -> list[KeyOut]:
    return [KeyOut(**k) for k in tenants.list_keys(ctx, tenant)]


@router.post(
    "/api/v1/tenants/{tenant}/api-keys",
    status_code=201,
    tags=["api keys"],
    response_model=KeyCreated,
    responses=KEY_RESPONSES,
)
def create_key(
    tenant: WriteTenant, caller: Caller, ctx: Ctx, body: KeyIn | None = None
) -> KeyCreated:
    """Mint another key of the tenant, of the caller's scope or a narrower one."""
    body = body or KeyIn()
    key_id, key = tenants.create_key(ctx, tenant, body.name or "", body.scope, granted_by=caller)
    return KeyCreated(id=key_id, key=key, scope=body.scope)


@router.delete("/api/v1/tenants/{tenant}/api-keys/{key_id}", status_code=204, tags=["api keys"])
def revoke_key(tenant: WriteTenant, key_id: KeyId, ctx: Ctx) -> Response:
    tenants.revoke_key(ctx, tenant, key_id)
    return Response(status_code=204)
