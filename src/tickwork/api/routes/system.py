"""Health, tenants and API keys."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from tickwork import metrics
from tickwork.api.conventions import REPLAY_HEADER, Idempotent, respond
from tickwork.api.deps import Admin, Caller, Ctx, ReadTenant, TenantId, WriteKey, WriteTenant
from tickwork.api.problems import problem
from tickwork.services import backlog, tenants
from tickwork.storage import migrate
from tickwork.wire import HealthOut, KeyCreated, KeyIn, KeyOut, ReadyOut, TenantIn, TenantOut

router = APIRouter()

# The body may be left out (an unnamed key); when sent, it is a KeyIn, never null.
OptionalKeyIn = Annotated[KeyIn, Body(default_factory=KeyIn)]


# Health and metrics answer anyone: no credentials (an empty security requirement).
PUBLIC: dict[str, Any] = {"security": []}


@router.get("/healthz", tags=["health"], response_model=HealthOut, openapi_extra=PUBLIC)
def healthz() -> HealthOut:
    """The process is alive."""
    return HealthOut(status="ok")


@router.get(
    "/readyz",
    tags=["health"],
    response_model=ReadyOut,
    openapi_extra=PUBLIC,
    responses={
        503: {"description": "Not ready: the database is unreachable or its schema is behind."}
    },
)
def readyz(ctx: Ctx) -> ReadyOut | JSONResponse:
    """The database answers and its schema is at the version this release expects."""
    try:
        current = migrate.is_current(ctx.db.engine)
    except Exception:  # the database is unreachable: not ready, and say so
        return problem(503, "the database is not reachable")
    if not current:
        return problem(503, "the database schema is not current: run `tickwork db upgrade`")
    return ReadyOut(status="ready")


@router.get(
    "/metrics",
    tags=["health"],
    response_class=PlainTextResponse,
    openapi_extra=PUBLIC,
    responses={
        200: {
            "description": "The Prometheus text format (OpenMetrics when the scraper asks).",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
def get_metrics(ctx: Ctx, request: Request) -> Response:
    """Prometheus metrics of this process, and the database's backlog."""
    body, content_type = metrics.exposition(
        request.headers.get("accept"), lambda: backlog.backlog(ctx)
    )
    return Response(body, media_type=content_type)


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
    201: {"headers": REPLAY_HEADER},
    409: {
        "description": "A request with the same `Idempotency-Key` created a key already: "
        "its secret is shown only once, so its answer is not sent again (the problem names "
        "the key's id); or that request is still being handled (`Retry-After`)."
    },
    403: {"description": "The key asking cannot create a key of a wider scope than its own."},
    429: {"description": "The tenant's quota of live API keys is reached."},
}


@router.post(
    "/api/v1/admin/tenants/{tenant}/api-keys",
    status_code=201,
    tags=["admin"],
    dependencies=[Admin],
    response_model=KeyCreated,
    responses={k: KEY_RESPONSES[k] for k in (201, 409, 429)},
)
def admin_create_key(
    tenant: TenantId, ctx: Ctx, body: OptionalKeyIn, idempotent: Idempotent
) -> Response:
    """Mint a key of any scope for the tenant (the admin token may grant every scope)."""

    def produce() -> tuple[int, KeyCreated, dict[str, str]]:
        key_id, key = tenants.create_key(ctx, tenant, body.name or "", body.scope)
        return 201, KeyCreated(id=key_id, key=key, scope=body.scope), {}

    return respond(ctx, tenant, idempotent, produce, shown_once="key")


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
    tenant: WriteTenant, caller: Caller, ctx: Ctx, body: OptionalKeyIn, idempotent: Idempotent
) -> Response:
    """Mint another key of the tenant, of the caller's scope or a narrower one."""

    def produce() -> tuple[int, KeyCreated, dict[str, str]]:
        key_id, key = tenants.create_key(
            ctx, tenant, body.name or "", body.scope, granted_by=caller
        )
        return 201, KeyCreated(id=key_id, key=key, scope=body.scope), {}

    return respond(ctx, tenant, idempotent, produce, shown_once="key")


@router.delete("/api/v1/tenants/{tenant}/api-keys/{key_id}", status_code=204, tags=["api keys"])
def revoke_key(scope: WriteKey, ctx: Ctx) -> Response:
    tenants.revoke_key(ctx, scope.tenant, scope.key_id)
    return Response(status_code=204)
