"""The deployment routes' bodies: the restart call's answer and the scheduler view."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from tickwork.wire.base import FROM_RECORD

__all__ = ["DeploymentOut", "ProcessOut", "RestartOut", "SchedulerLease", "SchedulerOut"]


class RestartOut(BaseModel):
    run_id: str
    previous_run_id: str | None
    deployment_id: str


class SchedulerLease(BaseModel):
    model_config = FROM_RECORD

    run_id: str | None = Field(description="the active scheduler run; null before the first")
    deployment_id: str | None
    generation: int = Field(description="the fencing token: +1 on every takeover")
    lease_expires_at: datetime | None
    heartbeat_at: datetime | None
    active: bool = Field(description="whether the lease is live now")


class DeploymentOut(BaseModel):
    model_config = FROM_RECORD

    id: str
    version: str
    started_at: datetime
    heartbeat_at: datetime
    live_processes: int = Field(description="its processes with a live heartbeat")
    state: Literal["active", "draining", "gone"] = Field(
        description="active: the deployment whose workers take new work; draining: another "
        "with live processes, finishing its attempts; gone: no live process"
    )


class ProcessOut(BaseModel):
    model_config = FROM_RECORD

    id: str
    deployment_id: str
    version: str
    host: str
    pid: int
    roles: list[str]
    handlers: list[str] = Field(description="the python handler names it registered")
    started_at: datetime
    heartbeat_at: datetime
    expires_at: datetime = Field(description="live until then unless it beats again")
    live: bool


class SchedulerOut(BaseModel):
    scheduler: SchedulerLease
    current_deployment: str | None = Field(
        description="the newest deployment with a live worker process: its workers take new work"
    )
    scheduling_deployment: str | None = Field(
        description="the newest deployment with a live scheduler process"
    )
    deployments: list[DeploymentOut] = Field(description="newest first")
    processes: list[ProcessOut] = Field(description="every recorded process, live or not")
    stale_after_seconds: float = Field(
        description="a process without a heartbeat for this long is no longer live"
    )
