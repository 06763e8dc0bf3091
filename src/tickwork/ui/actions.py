"""The buttons (POST): each checks the session, its CSRF token and the key's scope,
calls the service the API's route calls, and goes back to the page (303)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import Response

from tickwork.domain.names import SLUG_PATTERN
from tickwork.errors import ValidationError
from tickwork.services import backfills, control, invocations, tenants, triggers
from tickwork.services.context import Context
from tickwork.ui import timefmt
from tickwork.ui.session import LOGIN_COOKIE, Viewer, csrf_matches
from tickwork.ui.web import (
    PREFIX,
    PageError,
    PageRoute,
    back,
    checked_form,
    ctx_of,
    form_of,
    require_operate,
    sessions_of,
    viewer,
)

router = APIRouter(prefix=PREFIX, route_class=PageRoute, include_in_schema=False)

Who = Annotated[Viewer, Depends(viewer)]
ProjectId = Annotated[str, Path(pattern=SLUG_PATTERN, max_length=64)]
AgentId = Annotated[str, Path(pattern=SLUG_PATTERN, max_length=64)]
ObjectId = Annotated[str, Path(pattern=r"^[a-z]{1,16}_[0-9a-z]{26}$", max_length=64)]
TRIGGER = "/projects/{project}/agents/{agent}/triggers/{trigger_id}"
INVOCATION = TRIGGER + "/invocations/{invocation_id}"


# -- sign-in and sign-out ---------------------------------------------------------------------


def _throttled(ctx: Context, request: Request) -> None:
    address = request.client.host if request.client else None
    wait = ctx.auth_failures.retry_after(address)
    if wait is not None:
        raise PageError(429, f"too many failed sign-ins from this address; try again in {wait} s")


@router.post("/login")
async def sign_in(request: Request) -> Response:
    ctx = ctx_of(request)
    form = await form_of(request)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not csrf_matches(expected, form.get("csrf")):
        raise PageError(403, "the sign-in form's CSRF token is missing or wrong: reload the page")
    _throttled(ctx, request)
    given = form.get("api_key", "").strip()
    sessions = sessions_of(request)
    if given and sessions.is_admin_token(given):
        response = back(PREFIX + "/system")
        sessions.start(response, request, digest=None)
        return response
    key = tenants.authenticate(ctx, given) if given else None
    if key is None:
        ctx.auth_failures.failed(request.client.host if request.client else None)
        raise PageError(401, "that API key is not valid (or has been revoked)")
    response = back(PREFIX + "/projects")
    sessions.start(response, request, digest=tenants.key_digest(given))
    return response


@router.post("/logout")
async def sign_out(request: Request, who: Who) -> Response:
    await checked_form(request, who)
    response = back(PREFIX + "/login", "signed-out")
    sessions_of(request).end(response)
    return response


# -- a trigger ----------------------------------------------------------------------------------


def _page(project: str, agent: str, trigger_id: str) -> str:
    return f"{PREFIX}/projects/{project}/agents/{agent}/triggers/{trigger_id}"


@router.post(TRIGGER + "/run")
async def run_now(
    request: Request, who: Who, project: ProjectId, agent: AgentId, trigger_id: ObjectId
) -> Response:
    await checked_form(request, who)
    tenant = require_operate(who)
    triggers.run_now(ctx_of(request), tenant, project, agent, trigger_id)
    return back(_page(project, agent, trigger_id), "ran")


@router.post(TRIGGER + "/pause")
async def pause(
    request: Request, who: Who, project: ProjectId, agent: AgentId, trigger_id: ObjectId
) -> Response:
    form = await checked_form(request, who)
    tenant = require_operate(who)
    reason = form.get("reason", "").strip()
    if not reason:
        raise ValidationError("reason", "say why the trigger is paused")
    control.pause_trigger(
        ctx_of(request),
        tenant,
        project,
        agent,
        trigger_id,
        reason=reason,
        paused_by=f"api-key:{who.key_id}",
    )
    return back(_page(project, agent, trigger_id), "paused")


@router.post(TRIGGER + "/resume")
async def resume(
    request: Request, who: Who, project: ProjectId, agent: AgentId, trigger_id: ObjectId
) -> Response:
    await checked_form(request, who)
    tenant = require_operate(who)
    control.resume_trigger(ctx_of(request), tenant, project, agent, trigger_id)
    return back(_page(project, agent, trigger_id), "resumed")


@router.post(TRIGGER + "/skip")
async def skip_next(
    request: Request, who: Who, project: ProjectId, agent: AgentId, trigger_id: ObjectId
) -> Response:
    await checked_form(request, who)
    tenant = require_operate(who)
    control.skip_trigger(ctx_of(request), tenant, project, agent, trigger_id, 1)
    return back(_page(project, agent, trigger_id), "skipped")


def _instant(text: str, timezone: str, field: str) -> datetime:
    """A form's instant: with an offset, or a wall time in the trigger's zone (what a
    ``datetime-local`` field sends)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(field, "must be a date and time, e.g. 2026-03-02T09:00") from None
    if value.tzinfo is None:
        zone = timefmt.zone(timezone)
        if zone is None:
            raise ValidationError(field, "give the UTC offset: the trigger's zone is unknown")
        value = value.replace(tzinfo=zone)
    return value


@router.post(TRIGGER + "/backfill")
async def backfill(
    request: Request, who: Who, project: ProjectId, agent: AgentId, trigger_id: ObjectId
) -> Response:
    form = await checked_form(request, who)
    tenant = require_operate(who)
    ctx = ctx_of(request)
    trigger = triggers.get_trigger(ctx, tenant, project, agent, trigger_id)
    mode = form.get("mode", "missing")
    if mode not in ("missing", "failed", "all"):
        raise ValidationError("mode", "must be one of missing, failed, all")
    backfills.create_backfill(
        ctx,
        tenant,
        project,
        agent,
        trigger_id,
        start=_instant(form.get("from", ""), trigger.timezone, "from"),
        end=_instant(form.get("to", ""), trigger.timezone, "to"),
        mode=mode,
        created_by=f"api-key:{who.key_id}",
    )
    return back(_page(project, agent, trigger_id), "backfill")


# -- an invocation --------------------------------------------------------------------------------


@router.post(INVOCATION + "/cancel")
async def cancel(
    request: Request,
    who: Who,
    project: ProjectId,
    agent: AgentId,
    trigger_id: ObjectId,
    invocation_id: ObjectId,
) -> Response:
    await checked_form(request, who)
    tenant = require_operate(who)
    ctx = ctx_of(request)
    triggers.get_trigger(ctx, tenant, project, agent, trigger_id)
    invocations.cancel_invocation(ctx, tenant, project, trigger_id, invocation_id)
    return back(_page(project, agent, trigger_id), "cancelled")


@router.post(INVOCATION + "/rerun")
async def rerun(
    request: Request,
    who: Who,
    project: ProjectId,
    agent: AgentId,
    trigger_id: ObjectId,
    invocation_id: ObjectId,
) -> Response:
    await checked_form(request, who)
    tenant = require_operate(who)
    invocations.rerun_invocation(ctx_of(request), tenant, project, agent, trigger_id, invocation_id)
    return back(_page(project, agent, trigger_id), "rerun")
