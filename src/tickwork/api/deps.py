"""Request dependencies: the context, authentication, key scopes, pagination.

Every route under ``/api/v1/tenants/{tenant}`` takes its tenant from exactly one of
:data:`ReadTenant`, :data:`OperateTenant` or :data:`WriteTenant`, or from a scope of the
path that holds one: a route that names more than the tenant takes the tenant and every
id below it as one record (:data:`ReadProject`, :data:`WriteRef`, :data:`ReadTrigger`,
:data:`OperateBackfill`, …). The scope the route needs is decided where the route is
declared, and :func:`check_scope_decisions` (run by the app factory) refuses to build an
app with a tenant route that decided nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
from dataclasses import dataclass, fields
from typing import Annotated, Any, Protocol

from fastapi import Depends, FastAPI, HTTPException, Path, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tickwork.domain.names import REF_PATTERN, SLUG_PATTERN
from tickwork.domain.scopes import OPERATE, READ, WRITE, covers
from tickwork.errors import Forbidden, NotFound
from tickwork.services import audit, tenants
from tickwork.services.context import Context
from tickwork.storage.records import ApiKey

bearer = HTTPBearer(auto_error=False, description="an API key of the tenant")
admin_bearer = HTTPBearer(
    auto_error=False, scheme_name="AdminToken", description="TICKWORK_ADMIN_TOKEN"
)

TenantId = Annotated[str, Path(pattern=SLUG_PATTERN, max_length=64)]
ProjectId = Annotated[str, Path(pattern=SLUG_PATTERN, max_length=64)]
AgentId = Annotated[str, Path(pattern=SLUG_PATTERN, max_length=64)]
RefPath = Annotated[str, Path(pattern=REF_PATTERN, max_length=128)]
KeyId = Annotated[str, Path(pattern=r"^key_[0-9a-z]{26}$")]
ObjectId = Annotated[str, Path(pattern=r"^[a-z]{1,16}_[0-9a-z]{26}$", max_length=64)]
TENANT_ROUTES = "/api/v1/tenants/{tenant}"


def secret_matches(given: str, expected: str) -> bool:
    """Constant-time comparison of SHA-256 digests: neither content nor length leaks."""
    return hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )


def get_ctx(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


Ctx = Annotated[Context, Depends(get_ctx)]


class SchedulerControl(Protocol):
    """What the restart call needs of this process's scheduler."""

    async def restart(self) -> tuple[str, str | None]:
        """Take the lease at once, whoever holds it: (new run id, previous run id)."""
        ...


def get_scheduler(request: Request) -> SchedulerControl | None:
    """This process's scheduler, as given to the app factory (None: no scheduler role)."""
    scheduler: SchedulerControl | None = request.app.state.scheduler
    return scheduler


RunningScheduler = Annotated[SchedulerControl | None, Depends(get_scheduler)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def _address(request: Request) -> str | None:
    # The peer as the server reports it. Behind a reverse proxy, the server's own
    # trusted-proxy handling (uvicorn's --forwarded-allow-ips) puts the client here;
    # X-Forwarded-For is never read directly, so a client cannot choose its address.
    return request.client.host if request.client else None


def refuse_if_throttled(ctx: Context, request: Request) -> None:
    """429 with Retry-After while the caller's address has too many recent failures;
    checked before any credential, so a blocked address learns nothing from guesses."""
    wait = ctx.auth_failures.retry_after(_address(request))
    if wait is not None:
        raise HTTPException(
            429,
            f"too many failed authentication attempts from this address; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )


def count_failure(ctx: Context, request: Request) -> None:
    ctx.auth_failures.failed(_address(request))


def authenticated(
    tenant: TenantId,
    ctx: Ctx,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> ApiKey:
    """The caller's key, after checking it is live and belongs to the tenant in the
    path. A key of another tenant gets 404, as if the resource did not exist."""
    refuse_if_throttled(ctx, request)
    if credentials is None:
        raise _unauthorized("an API key is required: Authorization: Bearer <key>")
    key = tenants.authenticate(ctx, credentials.credentials)
    if key is None:
        count_failure(ctx, request)
        raise _unauthorized("the API key is not valid")
    if key.tenant_id != tenant:
        raise NotFound(f"tenant {tenant!r} not found")
    return key


Caller = Annotated[ApiKey, Depends(authenticated)]
"""The authenticated key (the same one the route's scope dependency checked)."""


class RequireScope:
    """A route's scope decision: a dependency that answers 403 unless the caller's key
    has at least ``scope``, and gives the route its tenant id."""

    def __init__(self, scope: str) -> None:
        self.scope = scope

    async def __call__(self, key: Caller) -> str:
        # Async (no I/O here): the actor set now is the one the route's thread sees, so
        # the route's audit events name this key (tickwork.services.audit).
        if not covers(key.scope, self.scope):
            raise Forbidden(
                f"this route needs an API key with scope {self.scope!r}; this key has "
                f"scope {key.scope!r}",
                required_scope=self.scope,
                key_scope=key.scope,
            )
        audit.set_actor(key.actor)
        return key.tenant_id


ReadTenant = Annotated[str, Depends(RequireScope(READ))]
"""GET routes: any live key of the tenant."""
OperateTenant = Annotated[str, Depends(RequireScope(OPERATE))]
"""Acting on runs (run now, cancel, rerun): ``operate`` or ``write`` keys."""
WriteTenant = Annotated[str, Depends(RequireScope(WRITE))]
"""Changing the tenant's resources: ``write`` keys."""


@dataclass(frozen=True, slots=True)
class ProjectScope:
    """Where a request acts, as its path names it: the tenant (the key's scope checked)
    and the project; the records below add the ids under it."""

    tenant: str
    project: str


@dataclass(frozen=True, slots=True)
class AgentScope(ProjectScope):
    agent: str


@dataclass(frozen=True, slots=True)
class TriggerScope(AgentScope):
    trigger_id: str


@dataclass(frozen=True, slots=True)
class InvocationScope(TriggerScope):
    invocation_id: str


@dataclass(frozen=True, slots=True)
class BackfillScope(TriggerScope):
    backfill_id: str


@dataclass(frozen=True, slots=True)
class ProjectInvocationScope(ProjectScope):
    """An invocation named by the project alone (it may outlive its trigger)."""

    invocation_id: str


@dataclass(frozen=True, slots=True)
class RefScope(ProjectScope):
    ref: str


@dataclass(frozen=True, slots=True)
class KeyScope:
    tenant: str
    key_id: str


_PATH_IDS: dict[str, Any] = {
    "project": ProjectId,
    "agent": AgentId,
    "trigger_id": ObjectId,
    "invocation_id": ObjectId,
    "backfill_id": ObjectId,
    "ref": RefPath,
    "key_id": KeyId,
}


def _scope(record: type[Any], required: str) -> Any:
    """A dependency giving the route its ``record``: the path's ids, checked as
    :data:`ProjectId` and the like are, and the tenant from the key's scope decision
    (so the route decides its scope by the one it takes). The path's parameters keep
    the order the routes declared them in, and so the OpenAPI document its order."""

    def scope(**values: str) -> Any:
        return record(**values)

    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [
        inspect.Parameter(f.name, keyword, annotation=_PATH_IDS[f.name])
        for f in fields(record)
        if f.name != "tenant"
    ]
    tenant = Annotated[str, Depends(RequireScope(required))]
    parameters.append(inspect.Parameter("tenant", keyword, annotation=tenant))
    setattr(scope, "__signature__", inspect.Signature(parameters, return_annotation=record))  # noqa: B010
    return Depends(scope)


ReadProject = Annotated[ProjectScope, _scope(ProjectScope, READ)]
OperateProject = Annotated[ProjectScope, _scope(ProjectScope, OPERATE)]
WriteProject = Annotated[ProjectScope, _scope(ProjectScope, WRITE)]
ReadProjectInvocation = Annotated[ProjectInvocationScope, _scope(ProjectInvocationScope, READ)]
WriteRef = Annotated[RefScope, _scope(RefScope, WRITE)]
WriteKey = Annotated[KeyScope, _scope(KeyScope, WRITE)]
ReadAgent = Annotated[AgentScope, _scope(AgentScope, READ)]
WriteAgent = Annotated[AgentScope, _scope(AgentScope, WRITE)]
ReadTrigger = Annotated[TriggerScope, _scope(TriggerScope, READ)]
OperateTrigger = Annotated[TriggerScope, _scope(TriggerScope, OPERATE)]
WriteTrigger = Annotated[TriggerScope, _scope(TriggerScope, WRITE)]
ReadInvocation = Annotated[InvocationScope, _scope(InvocationScope, READ)]
OperateInvocation = Annotated[InvocationScope, _scope(InvocationScope, OPERATE)]


def _backfill(trigger: Any) -> Any:
    """A dependency giving a backfill route its :class:`BackfillScope`: the backfill's id
    is its own parameter, the trigger's scope (``trigger``: :data:`ReadTrigger` or the
    like) a dependency of it. That is the order the backfill routes have always listed
    their path's parameters in, and checked them (the trigger's first)."""

    def scope(parent: TriggerScope, backfill_id: str) -> BackfillScope:
        p = parent
        return BackfillScope(p.tenant, p.project, p.agent, p.trigger_id, backfill_id)

    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [
        inspect.Parameter("parent", keyword, annotation=trigger),
        inspect.Parameter("backfill_id", keyword, annotation=ObjectId),
    ]
    setattr(scope, "__signature__", inspect.Signature(parameters, return_annotation=BackfillScope))  # noqa: B010
    return Depends(scope)


ReadBackfill = Annotated[BackfillScope, _backfill(ReadTrigger)]
OperateBackfill = Annotated[BackfillScope, _backfill(OperateTrigger)]


def scope_of(dependant: Dependant) -> list[str]:
    """The scopes a route's dependencies require (one, for every tenant route)."""
    found: list[str] = []
    for dependency in dependant.dependencies:
        if isinstance(dependency.call, RequireScope):
            found.append(dependency.call.scope)
        found += scope_of(dependency)
    return found


def tenant_routes(app: FastAPI) -> list[tuple[str, str, Dependant]]:
    """(method, path, dependant) of every route under /api/v1/tenants/{tenant}, with
    the dependencies of the routers that include it."""
    found = []
    for route in iter_route_contexts(app.routes):
        path = route.path or ""
        if isinstance(route.original_route, APIRoute) and path.startswith(TENANT_ROUTES):
            for method in sorted(route.methods or ()):
                found.append((method, path, route.dependant))
    return found


def check_scope_decisions(app: FastAPI) -> int:
    """Refuse an app with a tenant route that does not declare exactly one scope;
    returns how many routes were checked."""
    routes = tenant_routes(app)
    for method, path, dependant in routes:
        scopes = scope_of(dependant)
        if len(scopes) != 1:
            raise RuntimeError(
                f"{method} {path} must take its tenant from exactly one of ReadTenant, "
                f"OperateTenant or WriteTenant (found {scopes or 'none'})"
            )
    return len(routes)


async def require_admin(
    ctx: Ctx,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(admin_bearer)],
) -> None:
    configured = ctx.settings.admin_token
    token = configured.get_secret_value() if configured is not None else ""
    if not token:
        raise HTTPException(503, "admin routes are off: set TICKWORK_ADMIN_TOKEN to use them")
    refuse_if_throttled(ctx, request)
    if credentials is None:
        raise _unauthorized("the admin token is not valid")
    if not secret_matches(credentials.credentials, token):
        count_failure(ctx, request)
        raise _unauthorized("the admin token is not valid")
    audit.set_actor(audit.ADMIN)


Admin = Depends(require_admin)
