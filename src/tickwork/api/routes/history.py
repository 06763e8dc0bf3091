"""Retention settings and the audit log (SPEC §11)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from tickwork.api.answers import Overlay
from tickwork.api.conventions import ETAG_HEADER, PRECONDITION, IfMatchHeader, KnownQuery
from tickwork.api.deps import Ctx, ReadProject, ReadTenant, WriteProject
from tickwork.api.problems import AUDIT_CURSOR_PATTERN
from tickwork.services import audit, etags, resources, retention
from tickwork.services.context import Context
from tickwork.storage.ports import AuditEvent
from tickwork.storage.records import Project
from tickwork.wire import Page
from tickwork.wire.history import AuditEventOut, RetentionIn, RetentionOut, RetentionValue

router = APIRouter(prefix="/api/v1/tenants/{tenant}", dependencies=[KnownQuery])

Limit = Annotated[int, Query(ge=1, le=200)]
AuditCursor = Annotated[str | None, Query(pattern=AUDIT_CURSOR_PATTERN, max_length=64)]


def _retention_out(ctx: Context, project: Project) -> RetentionOut:
    policy = retention.policy_of(ctx.settings, project)
    settings = ctx.settings
    return RetentionOut(
        project=project.id,
        history_retention_days=RetentionValue(
            value=policy.history_retention_days,
            default=settings.history_retention_days,
            override=project.history_retention_days,
        ),
        history_max_per_trigger=RetentionValue(
            value=policy.history_max_per_trigger,
            default=settings.history_max_per_trigger,
            override=project.history_max_per_trigger,
        ),
    )


@router.get(
    "/projects/{project}/retention",
    tags=["projects"],
    response_model=RetentionOut,
    responses={200: {"headers": ETAG_HEADER}},
)
def get_retention(scope: ReadProject, ctx: Ctx, response: Response) -> RetentionOut:
    """How long the project's invocation history and audit events are kept."""
    found = retention.get_retention(ctx, scope.tenant, scope.project)
    response.headers["ETag"] = etags.retention_etag(found)
    return _retention_out(ctx, found)


@router.put(
    "/projects/{project}/retention",
    tags=["projects"],
    response_model=RetentionOut,
    responses={200: {"headers": ETAG_HEADER}, **PRECONDITION},
)
def put_retention(
    scope: WriteProject,
    body: RetentionIn,
    ctx: Ctx,
    response: Response,
    if_match: IfMatchHeader = None,
) -> RetentionOut:
    """Override the project's retention (partial: only the fields given change; null
    restores the default). Lowering it deletes nothing at once: the active scheduler's
    pruner catches up within its next passes."""
    values = {name: getattr(body, name) for name in body.model_fields_set}
    saved = retention.put_retention(ctx, scope.tenant, scope.project, values, if_match=if_match)
    response.headers["ETag"] = etags.retention_etag(saved)
    return _retention_out(ctx, saved)


def _event_out(event: AuditEvent) -> AuditEventOut:
    # The store names a change to the tenant itself by the project "".
    return AuditEventOut.model_validate(Overlay(event, project=event.project_id or None))


def _page(events: list[AuditEvent], limit: int) -> Page[AuditEventOut]:
    next_cursor = events[-1].id if len(events) == limit else None
    return Page[AuditEventOut](items=[_event_out(e) for e in events], next_cursor=next_cursor)


@router.get("/projects/{project}/audit", tags=["projects"], response_model=Page[AuditEventOut])
def list_project_audit(
    scope: ReadProject, ctx: Ctx, limit: Limit = 50, cursor: AuditCursor = None
) -> Page[AuditEventOut]:
    """Changes to the project and everything in it, newest first."""
    resources.get_project(ctx, scope.tenant, scope.project)
    return _page(audit.list_events(ctx, scope.tenant, scope.project, cursor, limit), limit)


@router.get("/audit", tags=["api keys"], response_model=Page[AuditEventOut])
def list_tenant_audit(
    tenant: ReadTenant, ctx: Ctx, limit: Limit = 50, cursor: AuditCursor = None
) -> Page[AuditEventOut]:
    """Every change in the tenant, newest first: its projects' and its own (API keys,
    quotas), with those of projects deleted since."""
    return _page(audit.list_events(ctx, tenant, None, cursor, limit), limit)
