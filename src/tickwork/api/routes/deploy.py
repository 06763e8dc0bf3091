"""Deployments: the restart call CI makes after a deploy, and the scheduler's state."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tickwork.api.answers import Overlay
from tickwork.api.deps import (
    Admin,
    Ctx,
    RunningScheduler,
    count_failure,
    refuse_if_throttled,
    secret_matches,
)
from tickwork.logging import get_logger
from tickwork.services import leadership, processes
from tickwork.wire.system import (
    DeploymentOut,
    ProcessOut,
    RestartOut,
    SchedulerLease,
    SchedulerOut,
)

router = APIRouter(tags=["deployments"])
log = get_logger("tickwork.api")

deploy_bearer = HTTPBearer(
    auto_error=False, scheme_name="DeploySecret", description="TICKWORK_DEPLOY_SECRET"
)


@router.post(
    "/api/deploy/restart-scheduler",
    response_model=RestartOut,
    responses={401: {"description": "wrong secret"}, 503: {"description": "not configured"}},
)
async def restart_scheduler(
    request: Request,
    ctx: Ctx,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(deploy_bearer)],
    scheduler: RunningScheduler,
) -> RestartOut:
    """Make this process's deployment run the scheduler at once (call it after a deploy)."""
    configured = ctx.settings.deploy_secret
    secret = configured.get_secret_value() if configured is not None else ""
    if not secret:
        raise HTTPException(503, "the restart call is off: set TICKWORK_DEPLOY_SECRET to use it")
    refuse_if_throttled(ctx, request)
    if credentials is None or not secret_matches(credentials.credentials, secret):
        if credentials is not None:
            count_failure(ctx, request)
        raise HTTPException(401, "the deploy secret is not valid", {"WWW-Authenticate": "Bearer"})
    if scheduler is None:
        raise HTTPException(503, "this process does not run the scheduler role")
    try:
        run_id, previous = await scheduler.restart()
    except Exception as exc:
        log.error("scheduler restart failed", error=f"{type(exc).__name__}: {exc}")
        raise HTTPException(
            500, "the scheduler could not be restarted; see the server log"
        ) from None
    return RestartOut(
        run_id=run_id, previous_run_id=previous, deployment_id=ctx.settings.deployment_id
    )


@router.get("/api/v1/system/scheduler", dependencies=[Admin], response_model=SchedulerOut)
def get_scheduler(ctx: Ctx) -> SchedulerOut:
    """The active scheduler, every deployment's state (active, draining, gone) and every
    recorded process (live or not)."""
    seen = leadership.overview(ctx)
    now, state, current, procs = seen.now, seen.state, seen.current, seen.processes
    lease_live = state.lease_expires_at is not None and state.lease_expires_at > now
    live = Counter(p.deployment_id for p in procs if p.expires_at > now)
    return SchedulerOut(
        scheduler=SchedulerLease.model_validate(Overlay(state, active=lease_live)),
        current_deployment=current,
        scheduling_deployment=seen.scheduling,
        deployments=[
            DeploymentOut.model_validate(
                Overlay(
                    d,
                    live_processes=live[d.id],
                    state="active" if d.id == current else "draining" if live[d.id] else "gone",
                )
            )
            for d in reversed(seen.deployments)
        ],
        processes=[ProcessOut.model_validate(Overlay(p, live=p.expires_at > now)) for p in procs],
        stale_after_seconds=processes.time_to_live(ctx.settings) / timedelta(seconds=1),
    )
