"""Scheduled triggers, their previews, invocations and upcoming runs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictInt

from tickwork.domain.invocations import ORIGINS, STATUSES
from tickwork.domain.limits import MAX_TEMPLATE_CHARS
from tickwork.domain.policies import CATCHUP_POLICIES, OVERLAP_POLICIES
from tickwork.wire.base import Description, Name, Strict

Status = Literal["pending", "running", "completed", "failed", "cancelled", "missed", "skipped"]
Origin = Literal["schedule", "manual", "rerun", "backfill"]
CatchupPolicy = Literal["latest", "all", "none"]
OverlapPolicy = Literal["allow", "skip", "buffer_one", "cancel_previous"]
# Spelled out for the OpenAPI document (an enum type would become a schema of its own);
# they must be the domain's names, in the domain's order.
assert get_args(Status) == STATUSES
assert get_args(Origin) == ORIGINS
assert get_args(CatchupPolicy) == CATCHUP_POLICIES
assert get_args(OverlapPolicy) == OVERLAP_POLICIES
CronText = Annotated[str, Field(min_length=1, max_length=200)]
ZoneName = Annotated[str, Field(min_length=1, max_length=64)]
# Declared here, enforced by the service: above the limit is 413, not 422.
Template = Annotated[str, Field(json_schema_extra={"maxLength": MAX_TEMPLATE_CHARS})]
MaxRetries = Annotated[StrictInt, Field(ge=0, le=10)]
RetryDelay = Annotated[StrictInt, Field(ge=1, le=3600)]
Timeout = Annotated[StrictInt, Field(ge=1, le=86400)]
Window = Annotated[StrictInt, Field(ge=0, le=31 * 86400)]
Jitter = Annotated[StrictInt, Field(ge=0, le=3600)]


class TriggerCreate(Strict):
    name: Name
    description: Description | None = None
    enabled: StrictBool | None = None
    cron_expression: CronText | None = Field(
        None, description="5 fields, or 6 with a leading seconds field, or an @alias"
    )
    run_at: AwareDatetime | None = Field(None, description="one-time instant, with an offset")
    timezone: ZoneName | None = Field(None, description="IANA zone; default UTC")
    payload: dict[str, Any] | None = None
    message_template: Template | None = None
    max_retries: MaxRetries | None = None
    retry_delay_seconds: RetryDelay | None = None
    timeout_seconds: Timeout | None = None
    catchup: CatchupPolicy | None = None
    catchup_window_seconds: Window | None = None
    overlap: OverlapPolicy | None = None
    jitter_seconds: Jitter | None = None


class TriggerPatch(Strict):
    """Only the fields present change; an explicit null restores a field's default."""

    name: Name | None = None
    description: Description | None = None
    enabled: StrictBool | None = None
    cron_expression: CronText | None = None
    run_at: AwareDatetime | None = None
    timezone: ZoneName | None = None
    payload: dict[str, Any] | None = None
    message_template: Template | None = None
    max_retries: MaxRetries | None = None
    retry_delay_seconds: RetryDelay | None = None
    timeout_seconds: Timeout | None = None
    catchup: CatchupPolicy | None = None
    catchup_window_seconds: Window | None = None
    overlap: OverlapPolicy | None = None
    jitter_seconds: Jitter | None = None


class LastRun(BaseModel):
    """The trigger's newest invocation that ran or ended (one still waiting for its
    first attempt is not a run yet)."""

    invocation_id: str
    scheduled_for: datetime
    status: Status
    completed_at: datetime | None
    conversation_id: str | None


class TriggerOut(BaseModel):
    id: str
    tenant: str
    project: str
    agent: str
    ref: str
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
    catchup: CatchupPolicy
    catchup_window_seconds: int
    overlap: OverlapPolicy
    jitter_seconds: int
    next_run_at: datetime | None
    last_error: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    last_run: LastRun | None = Field(
        None, description="its newest invocation that ran or ended; null before the first"
    )


class PreviewOut(BaseModel):
    description: str
    timezone: str
    next_runs: list[datetime]


class AttemptOut(BaseModel):
    attempt: int
    deployment_id: str | None
    worker_id: str | None
    started_at: datetime
    ended_at: datetime | None
    outcome: str | None
    error: str | None


class RefRun(BaseModel):
    name: str
    revision: int | None


def _absent_if_none(value: Any) -> bool:
    return value is None


class InvocationResult(BaseModel):
    """What the target answered to the attempt that completed the invocation. Only the
    members that apply are present."""

    model_config = ConfigDict(extra="allow")

    status_code: int | None = Field(
        None, exclude_if=_absent_if_none, description="the webhook's HTTP status"
    )
    conversation_id: str | None = Field(
        None,
        exclude_if=_absent_if_none,
        description="the conversation_id of a JSON object answer, as the target gave it",
    )
    response: Any = Field(
        None,
        exclude_if=_absent_if_none,
        description="the answer (a webhook's body, a handler's return value): the JSON "
        "value when it parses as JSON, else its text; at most 64 KiB of it is kept",
    )


class InvocationOut(BaseModel):
    id: str
    trigger_id: str
    trigger_name: str
    tenant: str
    project: str
    agent: str
    agent_name: str | None
    ref: RefRun
    origin: Origin
    scheduled_for: datetime
    idempotency_key: str
    status: Status
    status_reason: str | None
    attempt: int
    not_before: datetime
    deployment_id: str | None
    payload: dict[str, Any]
    message: str | None
    result: InvocationResult | None
    conversation_id: str | None
    last_error: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    attempts: list[AttemptOut] | None = None


class UpcomingRunOut(BaseModel):
    kind: Literal["scheduled", "pending"] = Field(
        description="scheduled: a slot the scheduler has yet to dispatch; pending: an "
        "invocation waiting for a worker (a dispatched slot, run now, rerun or retry)"
    )
    at: datetime = Field(
        description="what the list is ordered by: the slot of a scheduled run (jitter, "
        "if any, is added at dispatch), the not_before of a pending invocation"
    )
    scheduled_for: datetime
    trigger_id: str
    trigger_name: str
    agent: str
    ref: str
    invocation_id: str | None = Field(description="null for a scheduled run")
    origin: Origin | None = Field(description="of a pending invocation; null when scheduled")
    attempt: int | None = Field(description="attempts made so far by a pending invocation")


class UpcomingRunsOut(BaseModel):
    as_of: datetime = Field(description="the instant the list was computed at")
    items: list[UpcomingRunOut]
