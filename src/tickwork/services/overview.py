"""The scheduler and deployments as the UI's admin view shows them, from
:func:`tickwork.services.leadership.overview` (what the admin API answers)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from tickwork.services import leadership, processes
from tickwork.services.context import Context
from tickwork.storage.records import Deployment, Process, SchedulerState


@dataclass(frozen=True)
class DeploymentState:
    deployment: Deployment
    live_processes: int
    state: str  # active: takes new work; draining: other, with live processes; gone


@dataclass(frozen=True)
class SchedulerView:
    now: datetime
    state: SchedulerState
    lease_live: bool
    current_deployment: str | None
    scheduling_deployment: str | None
    deployments: list[DeploymentState]  # newest first
    processes: list[Process]  # every recorded one, live or not
    stale_after: timedelta

    def live(self, process: Process) -> bool:
        return process.expires_at > self.now


def scheduler_view(ctx: Context) -> SchedulerView:
    """The active scheduler, every deployment's state and every recorded process."""
    seen = leadership.overview(ctx)
    now, state, current = seen.now, seen.state, seen.current
    live = Counter(p.deployment_id for p in seen.processes if p.expires_at > now)
    return SchedulerView(
        now=now,
        state=state,
        lease_live=state.lease_expires_at is not None and state.lease_expires_at > now,
        current_deployment=current,
        scheduling_deployment=seen.scheduling,
        deployments=[
            DeploymentState(
                d, live[d.id], "active" if d.id == current else "draining" if live[d.id] else "gone"
            )
            for d in reversed(seen.deployments)
        ],
        processes=list(seen.processes),
        stale_after=processes.time_to_live(ctx.settings),
    )
