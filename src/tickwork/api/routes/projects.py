"""Projects, refs and agents."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Response

from tickwork.api.conventions import ETAG_HEADER, PRECONDITION, IfMatchHeader, KnownQuery
from tickwork.api.deps import AgentId, Ctx, ProjectId, ReadTenant, WriteTenant
from tickwork.domain.names import REF_PATTERN, SLUG_PATTERN
from tickwork.domain.target_spec import public_target
from tickwork.services import etags, resources
from tickwork.storage.records import Agent, Project, Ref
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
RefPath = Annotated[str, Path(pattern=REF_PATTERN, max_length=128)]
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=64, pattern=SLUG_PATTERN)]


def project_out(p: Project) -> ProjectOut:
    return ProjectOut(
        id=p.id,
        name=p.name,
        description=p.description,
        created_at=p.created_at,
        updated_at=p.updated_at,
        paused=p.paused,
        paused_reason=p.paused_reason,
        paused_by=p.paused_by,
        paused_at=p.paused_at,
        paused_until=p.paused_until,
    )


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
    return AgentOut(
        id=a.id,
        ref=a.ref,
        name=a.name,
        target=target_out(a.target),
        max_concurrency=a.max_concurrency,
        created_at=a.created_at,
        updated_at=a.updated_at,
    )


def ref_out(r: Ref) -> RefOut:
    return RefOut(
        name=r.name, revision=r.revision, created_at=r.created_at, updated_at=r.updated_at
    )


@router.get("/projects", response_model=Page[ProjectOut])
def list_projects(
    tenant: ReadTenant, ctx: Ctx, limit: Limit = 50, cursor: Cursor = None
) -> Page[ProjectOut]:
    items = resources.list_projects(ctx, tenant, cursor, limit)
    next_cursor = items[-1].id if len(items) == limit else None
    return Page[ProjectOut](items=[project_out(p) for p in items], next_cursor=next_cursor)


@router.put(
    "/projects/{project}",
    response_model=ProjectOut,
    responses={201: {"model": ProjectOut, "description": "The project was created."}},
)
def put_project(
    tenant: WriteTenant,
    project: ProjectId,
    ctx: Ctx,
    response: Response,
    body: Annotated[ProjectIn, Body(default_factory=ProjectIn)],
) -> ProjectOut:
    created_project, created = resources.put_project(
        ctx, tenant, project, body.name, body.description
    )
    response.status_code = 201 if created else 200
    return project_out(created_project)


@router.get("/projects/{project}", response_model=ProjectOut)
def get_project(tenant: ReadTenant, project: ProjectId, ctx: Ctx) -> ProjectOut:
    return project_out(resources.get_project(ctx, tenant, project))


@router.delete("/projects/{project}", status_code=204)
def delete_project(tenant: WriteTenant, project: ProjectId, ctx: Ctx) -> Response:
    resources.delete_project(ctx, tenant, project)
    return Response(status_code=204)


@router.get("/projects/{project}/refs", response_model=list[RefOut])
def list_refs(tenant: ReadTenant, project: ProjectId, ctx: Ctx) -> list[RefOut]:
    return [ref_out(r) for r in resources.list_refs(ctx, tenant, project)]


@router.delete(
    "/projects/{project}/refs/{ref:path}",
    status_code=204,
    responses={409: {"description": "The main ref cannot be deleted."}},
)
def delete_ref(tenant: WriteTenant, project: ProjectId, ref: RefPath, ctx: Ctx) -> Response:
    """Delete the ref with its agents and their triggers; their pending and running
    invocations are cancelled and every invocation stays as history."""
    resources.delete_ref(ctx, tenant, project, ref)
    return Response(status_code=204)


@router.get("/projects/{project}/agents", response_model=list[AgentOut])
def list_agents(
    tenant: ReadTenant, project: ProjectId, ctx: Ctx, ref: RefQuery = "main"
) -> list[AgentOut]:
    """The agents of a ref (404 for a ref the project does not have)."""
    return [agent_out(a) for a in resources.list_agents(ctx, tenant, project, ref)]


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
    tenant: WriteTenant,
    project: ProjectId,
    agent: AgentId,
    body: AgentIn,
    ctx: Ctx,
    response: Response,
    ref: RefQuery = "main",
    if_match: IfMatchHeader = None,
) -> AgentOut:
    saved, created = resources.put_agent(
        ctx,
        tenant,
        project,
        ref,
        agent,
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
def get_agent(
    tenant: ReadTenant,
    project: ProjectId,
    agent: AgentId,
    ctx: Ctx,
    response: Response,
    ref: RefQuery = "main",
) -> AgentOut:
    found = resources.get_agent(ctx, tenant, project, ref, agent)
    response.headers["ETag"] = etags.agent_etag(found)
    return agent_out(found)


@router.delete("/projects/{project}/agents/{agent}", status_code=204, responses=PRECONDITION)
def delete_agent(
    tenant: WriteTenant,
    project: ProjectId,
    agent: AgentId,
    ctx: Ctx,
    ref: RefQuery = "main",
    if_match: IfMatchHeader = None,
) -> Response:
    resources.delete_agent(ctx, tenant, project, ref, agent, if_match=if_match)
    return Response(status_code=204)
