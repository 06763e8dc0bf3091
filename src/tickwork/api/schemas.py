"""Request and response bodies. Constraints here are the real ones, so the OpenAPI
document tells clients exactly what is accepted."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar, cast, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictInt,
    field_validator,
)
from pydantic_core import PydanticCustomError

from tickwork.domain.names import HANDLER_PATTERN, MAX_DESCRIPTION, MAX_NAME
from tickwork.domain.target_spec import (
    ENV_SECRET_PATTERN,
    MAX_SECRET,
    MAX_URL,
    check_secret,
    public_target,
)
from tickwork.errors import ValidationError as DomainValidationError
from tickwork.services.invocations import UpcomingRun
from tickwork.services.triggers import MAX_TEMPLATE_CHARS
from tickwork.storage.records import (
    ORIGINS,
    STATUSES,
    Agent,
    Attempt,
    Invocation,
    Project,
    Ref,
    Trigger,
)

# Deeper JSON than this cannot be written back out (pydantic's serializer stops near 255
# levels), and no real payload needs it.
MAX_JSON_DEPTH = 64


def check_storable(value: Any) -> None:
    """Reject what JSON parsing lets through but tickwork cannot store or send back:
    NUL characters (PostgreSQL text and JSONB refuse them), unpaired surrogates (not
    encodable as UTF-8), NaN and infinities (not JSON; ``1e400`` parses as infinity),
    nesting deeper than MAX_JSON_DEPTH, and instants that overflow when converted to
    UTC. Raises ValueError, which pydantic reports as a 422 naming the field."""
    stack = [(value, 0)]
    while stack:  # iterative: nesting must not exhaust the Python stack
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValueError("must not contain NUL (\\u0000) characters")
            try:
                item.encode()
            except UnicodeEncodeError:
                raise ValueError("must not contain unpaired surrogates") from None
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError("must not contain NaN or infinite numbers")
        elif isinstance(item, datetime):
            try:
                item.astimezone(UTC)
            except OverflowError:
                raise ValueError("is out of the supported range of instants") from None
        elif isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise ValueError(f"must not be nested more than {MAX_JSON_DEPTH} levels deep")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        check_storable(value)
        return value


Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
Description = Annotated[str, Field(max_length=MAX_DESCRIPTION)]


class ProjectIn(Strict):
    name: Name | None = None
    description: Description | None = None


class ProjectOut(BaseModel):
    id: str
    name: str
    description: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, p: Project) -> ProjectOut:
        return cls(
            id=p.id,
            name=p.name,
            description=p.description,
            created_at=p.created_at,
            updated_at=p.updated_at,
        )


class SecretEnvRef(Strict):
    """A secret read from the workers' environment at call time."""

    env: Annotated[str, Field(pattern=ENV_SECRET_PATTERN)]


def _secret(value: Any) -> Any:
    # One check, the domain's, so both forms fail with one clear message at target.secret
    # (a plain union would report each member's failure under its own name).
    try:
        return check_secret(value)
    except DomainValidationError as exc:
        raise PydanticCustomError("invalid_secret", exc.message) from None


Secret = Annotated[
    str | dict[str, str] | None,
    PlainValidator(
        _secret,
        json_schema_input_type=Annotated[str, Field(min_length=1, max_length=MAX_SECRET)]
        | SecretEnvRef
        | None,
    ),
]


URL_PATTERN = r"^https?://\S+$"


class WebhookTargetIn(Strict):
    type: Literal["webhook"]
    url: Annotated[str, Field(min_length=1, max_length=MAX_URL, pattern=URL_PATTERN)]
    secret: Secret = None


class PythonTargetIn(Strict):
    type: Literal["python"]
    handler: Annotated[str, Field(pattern=HANDLER_PATTERN)]


TargetIn = Annotated[WebhookTargetIn | PythonTargetIn, Field(discriminator="type")]


MaxConcurrency = Annotated[
    int,
    Field(
        ge=1,
        le=10_000,
        description="the most attempts of this agent that run at once, across all workers "
        "(default: no cap beyond the tenant's fair share)",
    ),
]


class AgentIn(Strict):
    name: Name | None = None
    target: TargetIn
    max_concurrency: MaxConcurrency | None = None


class WebhookTargetOut(BaseModel):
    """A webhook target as shown: its secret never is, only whether it has one."""

    type: Literal["webhook"]
    url: str
    has_secret: bool
    secret: SecretEnvRef | None = Field(
        None,
        exclude_if=lambda value: value is None,
        description="shown only when the secret is a reference to a variable of the "
        "workers' environment (which names the secret without holding it)",
    )


class PythonTargetOut(BaseModel):
    type: Literal["python"]
    handler: str


TargetOut = Annotated[WebhookTargetOut | PythonTargetOut, Field(discriminator="type")]


def target_out(target: dict[str, Any]) -> WebhookTargetOut | PythonTargetOut:
    shown = public_target(target)
    if shown.get("type") == "webhook":
        return WebhookTargetOut.model_validate(shown)
    return PythonTargetOut.model_validate(shown)


class AgentOut(BaseModel):
    id: str
    ref: str
    name: str
    target: TargetOut
    max_concurrency: int | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, a: Agent) -> AgentOut:
        return cls(
            id=a.id,
            ref=a.ref,
            name=a.name,
            target=target_out(a.target),
            max_concurrency=a.max_concurrency,
            created_at=a.created_at,
            updated_at=a.updated_at,
        )


class RefOut(BaseModel):
    name: str
    revision: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, r: Ref) -> RefOut:
        return cls(
            name=r.name, revision=r.revision, created_at=r.created_at, updated_at=r.updated_at
        )


Status = Literal["pending", "running", "completed", "failed", "cancelled", "missed", "skipped"]
Origin = Literal["schedule", "manual", "rerun", "backfill"]
# Spelled out for the OpenAPI document; kept equal to what the store writes.
assert get_args(Status) == STATUSES
assert get_args(Origin) == ORIGINS
CatchupPolicy = Literal["latest", "all", "none"]
OverlapPolicy = Literal["allow", "skip", "buffer_one", "cancel_previous"]
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

    @classmethod
    def of(cls, t: Trigger) -> TriggerOut:
        data = dict(t.__dict__)
        data["tenant"] = data.pop("tenant_id")
        data["project"] = data.pop("project_id")
        data["agent"] = data.pop("agent_id")
        return cls(**data)


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

    @classmethod
    def of(cls, a: Attempt) -> AttemptOut:
        return cls(
            attempt=a.attempt,
            deployment_id=a.deployment_id,
            worker_id=a.worker_id,
            started_at=a.started_at,
            ended_at=a.ended_at,
            outcome=a.outcome,
            error=a.error,
        )


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


def _result(value: Any) -> InvocationResult | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return InvocationResult.model_validate(value)
    return InvocationResult.model_validate({"response": value})


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

    @classmethod
    def of(cls, i: Invocation, attempts: list[Attempt] | None = None) -> InvocationOut:
        return cls(
            id=i.id,
            trigger_id=i.trigger_id,
            trigger_name=i.trigger_name,
            tenant=i.tenant_id,
            project=i.project_id,
            agent=i.agent_id,
            agent_name=i.agent_name,
            ref=RefRun(name=i.ref, revision=i.ref_revision),
            origin=cast(Origin, i.origin),
            scheduled_for=i.scheduled_for,
            idempotency_key=i.idempotency_key,
            status=cast(Status, i.status),
            status_reason=i.status_reason,
            attempt=i.attempt,
            not_before=i.not_before,
            deployment_id=i.deployment_id,
            payload=i.payload,
            message=i.message,
            result=_result(i.result),
            conversation_id=i.conversation_id,
            last_error=i.last_error,
            created_at=i.created_at,
            started_at=i.started_at,
            completed_at=i.completed_at,
            attempts=None if attempts is None else [AttemptOut.of(a) for a in attempts],
        )


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

    @classmethod
    def of(cls, run: UpcomingRun) -> UpcomingRunOut:
        inv, trigger = run.invocation, run.trigger
        if inv is not None:
            return cls(
                kind="pending",
                at=run.at,
                scheduled_for=run.scheduled_for,
                trigger_id=inv.trigger_id,
                trigger_name=inv.trigger_name,
                agent=inv.agent_id,
                ref=inv.ref,
                invocation_id=inv.id,
                origin=cast(Origin, inv.origin),
                attempt=inv.attempt,
            )
        assert trigger is not None
        return cls(
            kind="scheduled",
            at=run.at,
            scheduled_for=run.scheduled_for,
            trigger_id=trigger.id,
            trigger_name=trigger.name,
            agent=trigger.agent_id,
            ref=trigger.ref,
            invocation_id=None,
            origin=None,
            attempt=None,
        )


class UpcomingRunsOut(BaseModel):
    as_of: datetime = Field(description="the instant the list was computed at")
    items: list[UpcomingRunOut]


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        None, description="pass as ?cursor= for the next page; null on the last page"
    )


class ProblemError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[ProblemError] | None = None
    # 403 (a key's scope): what the route needs and what the key has.
    required_scope: str | None = None
    key_scope: str | None = None
    # 429 quota-exceeded: which quota, its limit, the use before the request, and what
    # the request would add (the firing rate in slots per minute).
    quota: str | None = None
    limit: float | None = None
    used: float | None = None
    requested: float | None = None


class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    status: Literal["ready"]


class TenantIn(Strict):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]


class TenantOut(BaseModel):
    id: str


ScopeName = Literal["read", "operate", "write"]


class KeyIn(Strict):
    name: Annotated[str, Field(max_length=200)] | None = None
    scope: ScopeName = Field(
        default="write",
        description="read: GET only; operate: read, run now, cancel, rerun; write: "
        "everything in the tenant. A key cannot create a key wider than its own.",
    )


class KeyCreated(BaseModel):
    id: str
    scope: str
    key: str = Field(description="shown once; only its hash is stored")


class KeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    scope: str
    created_at: datetime
    revoked_at: datetime | None
