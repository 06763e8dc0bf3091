"""The pages (GET) and :func:`install`, which adds them, the actions and the static
files to an app."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from tickwork.domain.invocations import STATUSES
from tickwork.domain.names import SLUG_PATTERN
from tickwork.domain.slots import describe_timing
from tickwork.errors import ValidationError
from tickwork.services import backfills, health, invocations, overview, resources, triggers
from tickwork.storage.ports import InvocationFilter
from tickwork.storage.records import FINAL_STATUSES, Invocation, Trigger
from tickwork.ui import actions, chart, timefmt
from tickwork.ui.session import Sessions, Viewer, login_token, set_login_token
from tickwork.ui.web import (
    PREFIX,
    STATIC,
    PageRoute,
    SecurityHeaders,
    ctx_of,
    render,
    tenant_of,
    viewer,
)

router = APIRouter(prefix=PREFIX, route_class=PageRoute, include_in_schema=False)

Who = Annotated[Viewer, Depends(viewer)]
ProjectId = Annotated[str, Path(pattern=SLUG_PATTERN, max_length=64)]
AgentId = Annotated[str, Path(pattern=SLUG_PATTERN, max_length=64)]
ObjectId = Annotated[str, Path(pattern=r"^[a-z]{1,16}_[0-9a-z]{26}$", max_length=64)]
Cursor = Annotated[str | None, Query(pattern=r"^[a-z]{1,16}_[0-9a-z]{26}$", max_length=64)]
PAGE = 25
NOTICES = {
    "ran": "Run started.",
    "paused": "Trigger paused.",
    "resumed": "Trigger resumed.",
    "skipped": "The next run will be skipped.",
    "backfill": "Backfill started.",
    "cancelled": "Invocation cancelled.",
    "rerun": "Rerun started.",
    "signed-out": "Signed out.",
}


def install(app: FastAPI) -> None:
    """Serve the UI at ``/ui/`` on ``app`` (made by ``create_app``, not yet started)."""
    app.state.ui_sessions = Sessions(app.state.ctx.settings)
    app.include_router(router)
    app.include_router(actions.router)
    app.mount(PREFIX + "/static", StaticFiles(directory=STATIC), name="ui-static")
    app.add_middleware(SecurityHeaders)


def trigger_url(t: Trigger | Invocation) -> str:
    trigger_id = t.id if isinstance(t, Trigger) else t.trigger_id
    return f"{PREFIX}/projects/{t.project_id}/agents/{t.agent_id}/triggers/{trigger_id}"


@dataclass(frozen=True)
class When:
    """An instant as a page shows it: in the trigger's zone, its offset, relative."""

    at: datetime
    shown: str
    relative: str
    utc: str


def when(at: datetime | None, timezone: str, now: datetime) -> When | None:
    if at is None:
        return None
    return When(at, timefmt.in_zone(at, timezone), timefmt.relative(at, now), timefmt.utc(at))


def description_of(t: Trigger) -> str:
    try:
        return describe_timing(triggers.schedule_of(t))
    except ValidationError as exc:
        return f"cannot be computed: {exc}"


def state_of(t: Trigger) -> str:
    if not t.enabled:
        return "disabled"
    return "paused" if t.paused else "enabled"


def _notice(request: Request) -> str | None:
    return NOTICES.get(request.query_params.get("notice", ""))


# -- sign-in --------------------------------------------------------------------------------


@router.get("")
@router.get("/")
def home(request: Request) -> Response:
    who = request.app.state.ui_sessions.viewer(ctx_of(request), request)
    if who is None:
        return RedirectResponse(PREFIX + "/login", status_code=303)
    return RedirectResponse(PREFIX + ("/system" if who.admin else "/projects"), status_code=303)


@router.get("/login")
def login_page(request: Request) -> Response:
    token = login_token(request)
    response = render(request, "login.html", None, token=token, notice=_notice(request))
    set_login_token(response, request, token)
    return response


# -- a tenant's pages -----------------------------------------------------------------------


@router.get("/projects")
def projects_page(request: Request, who: Who, cursor: Cursor = None) -> Response:
    tenant = tenant_of(who)
    found = resources.list_projects(ctx_of(request), tenant, cursor, PAGE)
    nxt = found[-1].id if len(found) == PAGE else None
    return render(request, "projects.html", who, projects=found, next_cursor=nxt)


STATES = {
    "all": (None, None),
    "enabled": (True, False),
    "paused": (None, True),
    "disabled": (False, None),
}


@router.get("/projects/{project}")
def project_page(
    request: Request,
    who: Who,
    project: ProjectId,
    q: Annotated[str | None, Query(max_length=200)] = None,
    state: Annotated[str, Query(pattern="^(all|enabled|paused|disabled)$")] = "all",
    cursor: Cursor = None,
) -> Response:
    tenant = tenant_of(who)
    ctx = ctx_of(request)
    shown = resources.get_project(ctx, tenant, project)
    enabled, paused = STATES[state]
    found = triggers.search_triggers(
        ctx,
        tenant,
        project,
        enabled=enabled,
        paused=paused,
        name_contains=q or None,
        after=cursor,
        limit=PAGE,
    )
    runs = triggers.last_runs(ctx, found)
    healths = health.healths(ctx, found)
    now = ctx.clock.now()
    rows = [
        {
            "trigger": t,
            "url": trigger_url(t),
            "description": description_of(t),
            "next": when(t.next_run_at, t.timezone, now) if state_of(t) == "enabled" else None,
            "last": runs.get(t.id),
            "health": healths.get(t.id),
            "state": state_of(t),
        }
        for t in found
    ]
    filtered = bool(q) or state != "all" or cursor is not None
    agents = [] if found or filtered else resources.list_agents(ctx, tenant, project, "main")
    base = str(request.base_url).rstrip("/")
    return render(
        request,
        "project.html",
        who,
        project=shown,
        rows=rows,
        q=q or "",
        state=state,
        next_cursor=found[-1].id if len(found) == PAGE else None,
        empty=not found and not filtered,
        agents=agents,
        base=base,
        show_health=any(r["health"] is not None for r in rows),
    )


@router.get("/projects/{project}/upcoming")
def upcoming_page(request: Request, who: Who, project: ProjectId) -> Response:
    tenant = tenant_of(who)
    ctx = ctx_of(request)
    shown = resources.get_project(ctx, tenant, project)
    now, runs = invocations.upcoming_runs(ctx, tenant, project, 50)
    rows = []
    for run in runs:
        owner: Trigger | Invocation | None = run.trigger or run.invocation
        assert owner is not None  # a run is a trigger's slot or a pending invocation
        zone = run.trigger.timezone if run.trigger else "UTC"
        rows.append(
            {"run": run, "owner": owner, "url": trigger_url(owner), "at": when(run.at, zone, now)}
        )
    return render(request, "upcoming.html", who, project=shown, rows=rows)


@router.get("/projects/{project}/load")
def load_page(request: Request, who: Who, project: ProjectId) -> Response:
    tenant = tenant_of(who)
    ctx = ctx_of(request)
    shown = resources.get_project(ctx, tenant, project)
    start, counts = invocations.load_by_minute(ctx, tenant, project)
    return render(request, "load.html", who, project=shown, chart=chart.load_chart(start, counts))


def _statuses(values: list[str]) -> tuple[str, ...] | None:
    chosen = tuple(v for v in values if v)
    for value in chosen:
        if value not in STATUSES:
            raise ValidationError("status", f"{value!r} is not one of {', '.join(STATUSES)}")
    return chosen or None


def _invocation_rows(
    request: Request,
    who: Viewer,
    project: str,
    agent: str,
    trigger_id: str,
    status: list[str],
    cursor: str | None,
) -> dict[str, Any]:
    ctx = ctx_of(request)
    tenant = tenant_of(who)
    trigger = triggers.get_trigger(ctx, tenant, project, agent, trigger_id)
    where = InvocationFilter(trigger_id, _statuses(status), None, None)
    found = invocations.list_invocations(ctx, tenant, project, where, before=cursor, limit=PAGE)
    # A running backfill adds invocations as the scheduler dispatches its slots.
    filling = any(
        b.status == "running"
        for b in backfills.list_backfills(ctx, tenant, project, agent, trigger_id, None, 5)
    )
    now = ctx.clock.now()
    rows = [
        {
            "inv": i,
            "url": f"{trigger_url(i)}/invocations/{i.id}",
            "scheduled": when(i.scheduled_for, trigger.timezone, now),
            "done": when(i.completed_at, trigger.timezone, now),
            "final": i.status in FINAL_STATUSES,
        }
        for i in found
    ]
    return {
        "trigger": trigger,
        "trigger_url": trigger_url(trigger),
        "invocations": rows,
        # Pending or running ones update by themselves: the page polls this fragment.
        "live": filling or any(not r["final"] for r in rows),
        "status": [s for s in status if s],
        "cursor": cursor,
        "next_cursor": found[-1].id if len(found) == PAGE else None,
        "statuses": STATUSES,
    }


Statuses = Annotated[list[str], Query(max_length=len(STATUSES))]


@router.get("/projects/{project}/agents/{agent}/triggers/{trigger_id}")
def trigger_page(
    request: Request,
    who: Who,
    project: ProjectId,
    agent: AgentId,
    trigger_id: ObjectId,
    status: Statuses = [],  # noqa: B006 - FastAPI reads it, never changes it
    cursor: Cursor = None,
) -> Response:
    tenant = tenant_of(who)
    ctx = ctx_of(request)
    trigger = triggers.get_trigger(ctx, tenant, project, agent, trigger_id)
    runs, skipped, calendar, description = triggers.preview_trigger(
        ctx, tenant, project, agent, trigger_id, 10
    )
    now = ctx.clock.now()
    recent = backfills.list_backfills(ctx, tenant, project, agent, trigger_id, None, 5)
    return render(
        request,
        "trigger.html",
        who,
        t=trigger,
        description=description,
        preview=timefmt.preview_rows(runs, trigger.timezone, now),
        skipped=[when(s, trigger.timezone, now) for s in skipped],
        calendar=[
            (
                "skipped" if slot.status == "skip" else "shifted",
                when(slot.at, trigger.timezone, now),
                slot.reason,
            )
            for slot in calendar
        ],
        next=when(trigger.next_run_at, trigger.timezone, now),
        paused_until=when(trigger.paused_until, trigger.timezone, now),
        health=health.healths(ctx, [trigger]).get(trigger.id),
        state=state_of(trigger),
        backfills=recent,
        notice=_notice(request),
        project_id=project,
        **_invocation_rows(request, who, project, agent, trigger_id, status, cursor),
    )


@router.get("/projects/{project}/agents/{agent}/triggers/{trigger_id}/invocations")
def invocations_fragment(
    request: Request,
    who: Who,
    project: ProjectId,
    agent: AgentId,
    trigger_id: ObjectId,
    status: Statuses = [],  # noqa: B006 - FastAPI reads it, never changes it
    cursor: Cursor = None,
) -> Response:
    """The invocation table alone: what the trigger page polls while a run is live."""
    values = _invocation_rows(request, who, project, agent, trigger_id, status, cursor)
    return render(request, "_invocations.html", who, **values)


@router.get("/projects/{project}/agents/{agent}/triggers/{trigger_id}/invocations/{invocation_id}")
def invocation_page(
    request: Request,
    who: Who,
    project: ProjectId,
    agent: AgentId,
    trigger_id: ObjectId,
    invocation_id: ObjectId,
) -> Response:
    tenant = tenant_of(who)
    ctx = ctx_of(request)
    trigger = triggers.get_trigger(ctx, tenant, project, agent, trigger_id)
    inv, attempts = invocations.get_invocation(ctx, tenant, project, trigger_id, invocation_id)
    now = ctx.clock.now()
    zone = trigger.timezone
    return render(
        request,
        "invocation.html",
        who,
        t=trigger,
        inv=inv,
        attempts=[
            {"a": a, "started": when(a.started_at, zone, now), "ended": when(a.ended_at, zone, now)}
            for a in attempts
        ],
        scheduled=when(inv.scheduled_for, zone, now),
        done=when(inv.completed_at, zone, now),
        final=inv.status in FINAL_STATUSES,
        trigger_url=trigger_url(trigger),
        notice=_notice(request),
    )


# -- the admin's page -----------------------------------------------------------------------


@router.get("/system")
def system_page(request: Request, who: Who) -> Response:
    if not who.admin:
        return render(
            request,
            "error.html",
            who,
            403,
            status=403,
            message="the scheduler and deployments view is the admin's: "
            "sign in with the admin token",
        )
    view = overview.scheduler_view(ctx_of(request))
    now = view.now
    return render(
        request,
        "system.html",
        who,
        view=view,
        lease=when(view.state.lease_expires_at, "UTC", now),
        beat=when(view.state.heartbeat_at, "UTC", now),
        ago=lambda at: timefmt.relative(at, now),
    )
