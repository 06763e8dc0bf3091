"""Projects, refs and agents."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response

from tickwork.api.answers import Overlay
from tickwork.api.conventions import ETAG_HEADER, PRECONDITION, IfMatchHeader, KnownQuery
from tickwork.api.deps import (
    Ctx,
    ReadAgent,
    ReadProject,
    ReadTenant,
    WriteAgent,
    WriteProject,
    WriteRef,
)
from tickwork.domain.names import REF_PATTERN, SLUG_PATTERN
from tickwork.domain.target_spec import public_target
from tickwork.services import etags, resources
from tickwork.storage.records import Agent
from tickwork.wire import (
    A2ATargetOut,
    AgentIn,
    AgentOut,
    OpenAITargetOut,
    Page,
    ProjectIn,
    ProjectOut,
    PythonTargetOut,
    RefOut,
    WebhookTargetOut,
)

router = APIRouter(prefix="/api/v1/tenants/{tenant}", tags=["projects"], dependencies=[KnownQuery])

RefQuery = Annotated[str, Query(pattern=REF_PATTERN, max_length=128)]
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=64, pattern=SLUG_PATTERN)]


def target_out(
    target: dict[str, Any],
) -> WebhookTargetOut | PythonTargetOut | A2ATargetOut | OpenAITargetOut:
    shown = public_target(target)
    kind = shown.get("type")
    if kind == "webhook":
        return WebhookTargetOut.model_validate(shown)
    if kind == "a2a":
        return A2ATargetOut.model_validate({"protocol_version": "1.0", **shown})
    if kind == "openai":
        return OpenAITargetOut.model_validate({"api": "responses", "instructions": None, **shown})
    return PythonTargetOut.model_validate(shown)


def agent_out(a: Agent) -> AgentOut:
    return AgentOut.model_validate(Overlay(a, target=target_out(a.target)))


@router.get("/projects", response_model=Page[ProjectOut])
def list_projects(
    tenant: ReadTenant, ctx: Ctx, limit: Limit = 50, cursor: Cursor = None
) -> Page[ProjectOut]:
    items = resources.list_projects(ctx, tenant, cursor, limit)
    next_cursor = items[-1].id if len(items) == limit else None
    return Page[ProjectOut](
        items=[ProjectOut.model_validate(p) for p in items], next_cursor=next_cursor
    )


@router.put(
    "/projects/{project}",
    response_model=ProjectOut,
    responses={201: {"model": ProjectOut, "description": "The project was created."}},
)
def put_project(
    scope: WriteProject,
    ctx: Ctx,
    response: Response,
    body: Annotated[ProjectIn, Body(default_factory=ProjectIn)],
) -> ProjectOut:
    created_project, created = resources.put_project(
        ctx, scope.tenant, scope.project, body.name, body.description
    )
    response.status_code = 201 if created else 200
    return ProjectOut.model_validate(created_project)


@router.get("/projects/{project}", response_model=ProjectOut)
def get_project(scope: ReadProject, ctx: Ctx) -> ProjectOut:
    return ProjectOut.model_validate(resources.get_project(ctx, scope.tenant, scope.project))


@router.delete("/projects/{project}", status_code=204)
def delete_project(scope: WriteProject, ctx: Ctx) -> Response:
    resources.delete_project(ctx, scope.tenant, scope.project)
    return Response(status_code=204)


@router.get("/projects/{project}/refs", response_model=list[RefOut])
def list_refs(scope: ReadProject, ctx: Ctx) -> list[RefOut]:
    return [RefOut.model_validate(r) for r in resources.list_refs(ctx, scope.tenant, scope.project)]


@router.delete(
    "/projects/{project}/refs/{ref:path}",
    status_code=204,
    responses={409: {"description": "The main ref cannot be deleted."}},
)
def delete_ref(scope: WriteRef, ctx: Ctx) -> Response:
    """Delete the ref with its agents and their triggers; their pending and running
    invocations are cancelled and every invocation stays as history."""
    resources.delete_ref(ctx, scope.tenant, scope.project, scope.ref)
    return Response(status_code=204)


@router.get("/projects/{project}/agents", response_model=list[AgentOut])
def list_agents(scope: ReadProject, ctx: Ctx, ref: RefQuery = "main") -> list[AgentOut]:
    """The agents of a ref (404 for a ref the project does not have)."""
    return [agent_out(a) for a in resources.list_agents(ctx, scope.tenant, scope.project, ref)]


@router.put(
    "/projects/{project}/agents/{agent}",
    response_model=AgentOut,
    responses={
        200: {"headers": ETAG_HEADER},
        201: {"model": AgentOut, "description": "The agent was created.", "headers": ETAG_HEADER},
        **PRECONDITION,
    },
)
def put_agent(
    scope: WriteAgent,
    body: AgentIn,
    ctx: Ctx,
    response: Response,
    ref: RefQuery = "main",
    if_match: IfMatchHeader = None,
) -> AgentOut:
    saved, created = resources.put_agent(
        ctx,
        scope.tenant,
        scope.project,
        ref,
        scope.agent,
        body.name,
        body.target.model_dump(),
        max_concurrency=body.max_concurrency,
        if_match=if_match,
    )
    response.status_code = 201 if created else 200
    response.headers["ETag"] = etags.agent_etag(saved)
    return agent_out(saved)


@router.get(
    "/projects/{project}/agents/{agent}",
    response_model=AgentOut,
    responses={200: {"headers": ETAG_HEADER}},
)
def get_agent(scope: ReadAgent, ctx: Ctx, response: Response, ref: RefQuery = "main") -> AgentOut:
    found = resources.get_agent(ctx, scope.tenant, scope.project, ref, scope.agent)
    response.headers["ETag"] = etags.agent_etag(found)
    return agent_out(found)


@router.delete("/projects/{project}/agents/{agent}", status_code=204, responses=PRECONDITION)
def delete_agent(
    scope: WriteAgent, ctx: Ctx, ref: RefQuery = "main", if_match: IfMatchHeader = None
) -> Response:
    s = scope
    resources.delete_agent(ctx, s.tenant, s.project, ref, s.agent, if_match=if_match)
    return Response(status_code=204)
