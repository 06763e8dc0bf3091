"""Deployments: the restart call CI makes after a deploy, and the scheduler's state."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal, cast

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tickwork.api.deps import Admin, Ctx, count_failure, refuse_if_throttled, secret_matches
from tickwork.logging import get_logger
from tickwork.services import overview
from tickwork.wire.system import (
    DeploymentOut,
    ProcessOut,
    RestartOut,
    SchedulerLease,
    SchedulerOut,
)

DeploymentState = Literal["active", "draining", "gone"]
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
    node = getattr(request.app.state, "node", None)
    scheduler = getattr(node, "scheduler", None)
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
    view = overview.scheduler_view(ctx)
    state = view.state
    return SchedulerOut(
        scheduler=SchedulerLease(
            run_id=state.run_id,
            deployment_id=state.deployment_id,
            generation=state.generation,
            lease_expires_at=state.lease_expires_at,
            heartbeat_at=state.heartbeat_at,
            active=view.lease_live,
        ),
        current_deployment=view.current_deployment,
        scheduling_deployment=view.scheduling_deployment,
        deployments=[
            DeploymentOut(
                id=d.deployment.id,
                version=d.deployment.version,
                started_at=d.deployment.started_at,
                heartbeat_at=d.deployment.heartbeat_at,
                live_processes=d.live_processes,
                state=cast(DeploymentState, d.state),
            )
            for d in view.deployments
        ],
        processes=[
            ProcessOut(
                id=p.id,
                deployment_id=p.deployment_id,
                version=p.version,
                host=p.host,
                pid=p.pid,
                roles=p.roles,
                handlers=p.handlers,
                started_at=p.started_at,
                heartbeat_at=p.heartbeat_at,
                expires_at=p.expires_at,
                live=view.live(p),
            )
            for p in view.processes
        ],
        stale_after_seconds=view.stale_after / timedelta(seconds=1),
    )
