"""Deployments: the restart call CI makes after a deploy, and the scheduler's state."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from tickwork.api.deps import Admin, Ctx, count_failure, refuse_if_throttled, secret_matches
from tickwork.logging import get_logger
from tickwork.services import leadership

router = APIRouter(tags=["deployments"])
log = get_logger("tickwork.api")

deploy_bearer = HTTPBearer(
    auto_error=False, scheme_name="DeploySecret", description="TICKWORK_DEPLOY_SECRET"
)


class RestartOut(BaseModel):
    run_id: str
    previous_run_id: str | None
    deployment_id: str


class SchedulerLease(BaseModel):
    run_id: str | None = Field(description="the active scheduler run; null before the first")
    deployment_id: str | None
    generation: int = Field(description="the fencing token: +1 on every takeover")
    lease_expires_at: datetime | None
    heartbeat_at: datetime | None
    active: bool = Field(description="whether the lease is live now")


class DeploymentOut(BaseModel):
    id: str
    version: str
    started_at: datetime
    heartbeat_at: datetime
    state: Literal["active", "draining", "gone"] = Field(
        description="active: the current deployment; draining: an older one with a live "
        "heartbeat, finishing its attempts; gone: no heartbeat for stale_after_seconds"
    )


class SchedulerOut(BaseModel):
    scheduler: SchedulerLease
    current_deployment: str | None = Field(
        description="the newest deployment with a live heartbeat: its workers claim work"
    )
    deployments: list[DeploymentOut] = Field(description="newest first")
    stale_after_seconds: float


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
    secret = ctx.settings.deploy_secret
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
    """The active scheduler and every deployment's state (active, draining, gone)."""
    now = ctx.clock.now()
    with ctx.db.read() as tx:
        state = tx.scheduler_state()
        current = leadership.current_deployment(tx, now)
        deployments = tx.list_deployments()
    lease_live = state.lease_expires_at is not None and state.lease_expires_at > now
    return SchedulerOut(
        scheduler=SchedulerLease(
            run_id=state.run_id,
            deployment_id=state.deployment_id,
            generation=state.generation,
            lease_expires_at=state.lease_expires_at,
            heartbeat_at=state.heartbeat_at,
            active=lease_live,
        ),
        current_deployment=current,
        deployments=[
            DeploymentOut(
                id=d.id,
                version=d.version,
                started_at=d.started_at,
                heartbeat_at=d.heartbeat_at,
                state=(
                    "gone"
                    if d.heartbeat_at < now - leadership.DEPLOYMENT_STALE
                    else "active"
                    if d.id == current
                    else "draining"
                ),
            )
            for d in reversed(deployments)
        ],
        stale_after_seconds=leadership.DEPLOYMENT_STALE / timedelta(seconds=1),
    )
