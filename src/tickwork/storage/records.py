"""Rows as the rest of tickwork sees them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

# The statuses and origins are the domain's, named here too for the store's users.
from tickwork.domain.invocations import (
    ACTIVE_STATUSES,
    CANCELLED,
    COMPLETED,
    FAILED,
    FINAL_STATUSES,
    MISSED,
    ORIGINS,
    PENDING,
    RUNNING,
    SKIPPED,
    STATUSES,
)

__all__ = [
    "ACTIVE_STATUSES",
    "CANCELLED",
    "COMPLETED",
    "FAILED",
    "FINAL_STATUSES",
    "MISSED",
    "ORIGINS",
    "PENDING",
    "RUNNING",
    "SKIPPED",
    "STATUSES",
    "Agent",
    "ApiKey",
    "Attempt",
    "Candidate",
    "Deployment",
    "Invocation",
    "Process",
    "Project",
    "Ref",
    "SchedulerState",
    "Trigger",
]


@dataclass(frozen=True)
class ApiKey:
    """A live key as authentication sees it (never its secret or hash)."""

    id: str
    tenant_id: str
    scope: str

    @property
    def actor(self) -> str:
        """Who acts with this key, as recorded in ``created_by``."""
        return f"api-key:{self.id}"


@dataclass(frozen=True)
class Project:
    tenant_id: str
    id: str
    name: str
    description: str
    created_at: datetime
    updated_at: datetime
    paused: bool = False
    paused_reason: str | None = None
    paused_by: str | None = None
    paused_at: datetime | None = None
    paused_until: datetime | None = None
    # Retention overrides (SPEC §11); None: the settings' defaults.
    history_retention_days: int | None = None
    history_max_per_trigger: int | None = None


@dataclass(frozen=True)
class Ref:
    tenant_id: str
    project_id: str
    name: str
    revision: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Agent:
    tenant_id: str
    project_id: str
    ref: str
    id: str
    name: str
    target: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    max_concurrency: int | None = None


@dataclass(frozen=True)
class Trigger:
    id: str
    tenant_id: str
    project_id: str
    ref: str
    agent_id: str
    name: str
    description: str
    enabled: bool
    cron_expression: str | None
    run_at: datetime | None
    timezone: str
    payload: dict[str, Any]
    message_template: str | None
    max_retries: int
    retry_delay_seconds: int
    timeout_seconds: int
    catchup: str
    catchup_window_seconds: int
    overlap: str
    jitter_seconds: int
    next_run_at: datetime | None
    last_error: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    # Firings on a day it fires (tickwork.domain.rate); computed from the schedule.
    slots_per_day: int = 0
    # Agent run context (SPEC §13).
    conversation: str = "new"
    daily_token_budget: int | None = None
    run_as: str | None = None
    # The operator's control of its slots (tickwork.domain.control).
    paused: bool = False
    paused_reason: str | None = None
    paused_by: str | None = None
    paused_at: datetime | None = None
    paused_until: datetime | None = None
    rearm: bool = False
    skip_remaining: int = 0
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    max_runs: int | None = None
    remaining_runs: int | None = None
    # Health, kept as invocations end (tickwork.domain.health).
    consecutive_failures: int = 0
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    pause_after_failures: int | None = None
    late_notified_at: datetime | None = None
    # Calendars (SPEC §16): a recurrence rule in place of cron_expression, anchored at a
    # wall time of the zone, and the calendar (canonical JSON) refining either.
    rrule: str | None = None
    rrule_start: str | None = None
    calendar: dict[str, Any] | None = None


@dataclass(frozen=True)
class Invocation:
    id: str
    trigger_id: str
    trigger_name: str
    tenant_id: str
    project_id: str
    ref: str
    agent_id: str
    origin: str
    scheduled_for: datetime
    idempotency_key: str
    status: str
    status_reason: str | None
    attempt: int
    not_before: datetime
    lease_owner: str | None
    lease_expires_at: datetime | None
    deployment_id: str | None
    agent_name: str | None
    ref_revision: int | None
    payload: dict[str, Any]
    message: str | None
    result: Any
    conversation_id: str | None
    last_error: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    # Tokens the target reported: {"input_tokens", "output_tokens", "total_tokens"}.
    usage: dict[str, int] | None = None
    rerun_of: str | None = None
    backfill_id: str | None = None


@dataclass(frozen=True)
class Backfill:
    """A backfill of a trigger's past slots and how far it got."""

    id: str
    trigger_id: str
    tenant_id: str
    project_id: str
    ref: str
    agent_id: str
    range_from: datetime
    range_to: datetime
    mode: str
    max_concurrency: int
    schedule: dict[str, Any]
    status: str
    slots: int
    created: int
    skipped: int
    dispatched: int
    planned: int
    position: int
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True)
class Candidate:
    """A pending invocation a worker may claim, with the scope fair share looks at."""

    id: str
    tenant_id: str
    project_id: str
    ref: str
    agent_id: str
    not_before: datetime

    @property
    def agent_key(self) -> tuple[str, str, str, str]:
        return (self.tenant_id, self.project_id, self.ref, self.agent_id)


@dataclass(frozen=True)
class Attempt:
    invocation_id: str
    attempt: int
    deployment_id: str | None
    worker_id: str | None
    started_at: datetime
    ended_at: datetime | None
    outcome: str | None
    error: str | None


@dataclass(frozen=True)
class SchedulerState:
    run_id: str | None
    deployment_id: str | None
    generation: int
    lease_expires_at: datetime | None
    heartbeat_at: datetime | None


@dataclass(frozen=True)
class Deployment:
    id: str
    version: str
    started_at: datetime
    heartbeat_at: datetime


@dataclass(frozen=True)
class Process:
    """A running process (a row of ``processes``); live while ``expires_at`` is ahead."""

    id: str
    deployment_id: str
    version: str
    host: str
    pid: int
    roles: list[str]
    handlers: list[str]
    started_at: datetime
    heartbeat_at: datetime
    expires_at: datetime


# Backfill statuses: dispatching or waiting for its invocations; every slot handled and
# every invocation final; cancelled (what had not started was cancelled with it).
BACKFILL_RUNNING = "running"
BACKFILL_COMPLETED = "completed"
BACKFILL_CANCELLED = "cancelled"
BACKFILL_STATUSES = (BACKFILL_RUNNING, BACKFILL_COMPLETED, BACKFILL_CANCELLED)
