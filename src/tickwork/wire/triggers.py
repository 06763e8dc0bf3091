"""Scheduled triggers, their previews, invocations and upcoming runs.

One module, longer than most: a trigger's wire models (in, out, patch, preview) share
their fields and descriptions, which the API document shows together.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AliasChoices,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
)

from tickwork.domain.health import HEALTHS
from tickwork.domain.invocations import ORIGINS, STATUSES
from tickwork.domain.limits import MAX_TEMPLATE_CHARS, RUN_AS_PATTERN
from tickwork.domain.policies import CATCHUP_POLICIES, CONVERSATIONS, OVERLAP_POLICIES
from tickwork.wire.base import FROM_RECORD, Description, Name, Strict

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
MaxRuns = Annotated[StrictInt, Field(ge=1, le=2**31 - 1)]
Conversation = Literal["new", "continue"]
assert get_args(Conversation) == CONVERSATIONS
TokenBudget = Annotated[StrictInt, Field(ge=1, le=10**12)]
# A subject of the caller's own system (a user id, an email, a service account).
RunAs = Annotated[str, Field(min_length=1, max_length=256, pattern=RUN_AS_PATTERN)]
PauseAfter = Annotated[StrictInt, Field(ge=0, le=10_000)]
Health = Literal["ok", "failing", "late", "paused", "disabled"]
assert get_args(Health) == HEALTHS

# The store's records keep these ids as tenant_id, project_id and agent_id (an answer
# read from one reads them so); JSON names them as the answer does.
TenantOf = Annotated[str, Field(validation_alias=AliasChoices("tenant", "tenant_id"))]
ProjectOf = Annotated[str, Field(validation_alias=AliasChoices("project", "project_id"))]
AgentOf = Annotated[str, Field(validation_alias=AliasChoices("agent", "agent_id"))]

# Calendars (SPEC §16). Dates and wall times are checked by the service, whose messages
# name the part at fault and say how to fix it.
RRuleText = Annotated[str, Field(min_length=1, max_length=1000)]
WallTime = Annotated[str, Field(min_length=1, max_length=32)]
DateText = Annotated[str, Field(min_length=1, max_length=10, examples=["2026-12-24"])]
DateRange = Annotated[list[DateText], Field(min_length=2, max_length=2)]
WeekendPolicy = Literal["exclude", "include"]
ShiftPolicy = Literal["skip", "next_business_day", "previous_business_day"]
# The domain's names and limits (tickwork.domain.calendars, which imports the holidays
# package and so stays out of the wire models; a test holds the two together).
MAX_EXCLUDE_DATES = 1000
MAX_EXCLUDE_RANGES = 200
_RRULE = (
    "an RFC 5545 recurrence rule, e.g. FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;"
    "BYHOUR=17;BYMINUTE=0 (exactly one of cron_expression, run_at and rrule)"
)
_RRULE_START = (
    "where the rule starts: a wall time in the trigger's zone without offset, e.g. "
    "2026-01-05T09:00:00; it fires only if it matches the rule; default: the trigger's "
    "creation, to the second"
)
_CALENDAR = (
    "dates a recurring trigger does not fire on (local dates of its zone), and what "
    "happens to their slots"
)


def _unset(value: Any) -> bool:
    return value is None


class CalendarSpec(Strict):
    """A business calendar. Every key is optional; a slot on an excluded date is skipped
    (recorded with the reason) or shifted to the nearest business day."""

    exclude_dates: list[DateText] | None = Field(
        default=None,
        exclude_if=_unset,
        max_length=MAX_EXCLUDE_DATES,
        description="local dates, e.g. 2026-12-24",
    )
    exclude_ranges: list[DateRange] | None = Field(
        default=None,
        exclude_if=_unset,
        max_length=MAX_EXCLUDE_RANGES,
        description="[from, to] pairs of local dates, both included",
    )
    holidays: Annotated[str, Field(min_length=1, max_length=16)] | None = Field(
        default=None,
        exclude_if=_unset,
        description="public holidays of a country, optionally with a subdivision: US, "
        "DE-BY (the calendars of the pinned holidays package)",
    )
    weekends: WeekendPolicy | None = Field(
        default=None,
        exclude_if=_unset,
        description="exclude: Saturdays and Sundays (or the holidays country's own "
        "weekend) are excluded; include (the default): they are not",
    )
    shift: ShiftPolicy | None = Field(
        default=None,
        exclude_if=_unset,
        description="skip (the default): such slots are recorded skipped; "
        "next_business_day / previous_business_day: moved to that day at the same wall "
        "time (never onto a date with a slot of its own, never across starts_at/ends_at)",
    )


class CalendarSlotOut(BaseModel):
    """A slot its calendar skips or moves."""

    at: datetime = Field(description="its instant: where it runs, or where it is skipped")
    nominal: datetime = Field(description="where the schedule put it (= at unless shifted)")
    status: Literal["skipped", "shifted"]
    reason: str = Field(description="e.g. holiday: Christmas Day; shifted from 2026-12-25 (…)")


_CONVERSATION = (
    "new (the default): every run starts a fresh conversation; continue: each run carries "
    "the previous completed run's conversation (A2A contextId, Responses "
    "previous_response_id, the webhook's conversation_id)"
)
_BUDGET = (
    "tokens this trigger may use per UTC day; once the day's usage reaches it, its "
    "slots are skipped with the reason 'budget exceeded' until the next UTC day"
)
_PAUSE_AFTER = (
    "pause the trigger after this many consecutive failed invocations (paused_by "
    "'tickwork'); 0 never; null (the default) takes the server's "
    "TICKWORK_PAUSE_AFTER_FAILURES"
)
_HEALTH = (
    "disabled (enabled is false), paused, late (a due slot or pending invocation is more "
    "than TICKWORK_LATE_GRACE behind), failing (its last invocation to end failed) or ok, "
    "in that order of precedence"
)
_RUN_AS = (
    "a user or service subject of your system the runs act for, given to every target "
    "(webhook body and X-Tickwork-Run-As header, A2A message metadata, OpenAI user); "
    "only write keys may set it"
)


class RunIn(Strict):
    """Run a trigger now; the body may be left out."""

    payload: dict[str, Any] | None = Field(
        default=None,
        description="the payload of this run only, in place of the trigger's (a JSON "
        "object; the trigger keeps its own)",
    )


class _TriggerFields(Strict):
    """The settings of a trigger, as a create sets them and a patch changes them: each
    optional here (a create requires ``name``; its fields' descriptions are its own)."""

    name: Name | None = None
    description: Description | None = None
    enabled: StrictBool | None = None
    cron_expression: CronText | None = None
    run_at: AwareDatetime | None = None
    rrule: RRuleText | None = Field(default=None, description=_RRULE)
    rrule_start: WallTime | None = Field(default=None, description=_RRULE_START)
    calendar: CalendarSpec | None = Field(default=None, description=_CALENDAR)
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
    conversation: Conversation | None = Field(default=None, description=_CONVERSATION)
    daily_token_budget: TokenBudget | None = Field(default=None, description=_BUDGET)
    run_as: RunAs | None = Field(default=None, description=_RUN_AS)
    starts_at: AwareDatetime | None = Field(default=None, description="no slot before this instant")
    ends_at: AwareDatetime | None = Field(default=None, description="no slot after this instant")
    max_runs: MaxRuns | None = Field(
        default=None,
        description="scheduled slots it may consume (run, missed or skipped), after which "
        "next_run_at is null; run now, reruns and backfills do not count",
    )
    pause_after_failures: PauseAfter | None = Field(default=None, description=_PAUSE_AFTER)


class TriggerCreate(_TriggerFields):
    # A field declared again keeps its place among the settings (and in the schema).
    name: Name
    cron_expression: CronText | None = Field(
        default=None, description="5 fields, or 6 with a leading seconds field, or an @alias"
    )
    run_at: AwareDatetime | None = Field(
        default=None, description="one-time instant, with an offset"
    )
    timezone: ZoneName | None = Field(default=None, description="IANA zone; default UTC")


class TriggerPatch(_TriggerFields):
    """Only the fields present change; an explicit null restores a field's default."""


class LastRun(BaseModel):
    """The trigger's newest invocation that ran or ended (one still waiting for its
    first attempt is not a run yet)."""

    model_config = FROM_RECORD

    invocation_id: str = Field(validation_alias=AliasChoices("invocation_id", "id"))
    scheduled_for: datetime
    status: Status
    completed_at: datetime | None
    conversation_id: str | None


class TriggerOut(BaseModel):
    model_config = FROM_RECORD

    id: str
    tenant: TenantOf
    project: ProjectOf
    agent: AgentOf
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
    # Defaults: what a server from before these fields means.
    conversation: Conversation = "new"
    daily_token_budget: int | None = None
    run_as: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    max_runs: int | None = None
    remaining_runs: int | None = Field(
        default=None, description="scheduled slots it may still consume; null without max_runs"
    )
    paused: bool = Field(
        default=False, description="paused by an operator (enabled belongs to the definition)"
    )
    paused_reason: str | None = None
    paused_by: str | None = None
    paused_at: datetime | None = None
    paused_until: datetime | None = Field(
        default=None,
        description="the pause ends by itself then; while it lasts next_run_at is this instant",
    )
    skip_remaining: int = Field(
        default=0, description="coming slots to be recorded skipped by request"
    )
    pause_after_failures: int | None = Field(default=None, description=_PAUSE_AFTER)
    health: Health = Field(default="ok", description=_HEALTH)
    consecutive_failures: int = Field(
        default=0, description="its invocations that ended failed since the last one that completed"
    )
    last_success_at: datetime | None = Field(
        default=None, description="when its last invocation completed"
    )
    last_failure_at: datetime | None = Field(
        default=None, description="when its last invocation failed"
    )
    rrule: str | None = Field(default=None, description="its recurrence rule, if it has one")
    rrule_start: str | None = Field(default=None, description="the wall time its rule starts at")
    calendar: CalendarSpec | None = Field(default=None, description=_CALENDAR)
    next_run_at: datetime | None
    last_error: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    last_run: LastRun | None = Field(
        default=None, description="its newest invocation that ran or ended; null before the first"
    )


class UsageDayOut(BaseModel):
    """The tokens a trigger's runs used on one UTC day (counted when each run completed)."""

    model_config = FROM_RECORD

    day: date
    tokens: int
    invocations: int = Field(description="the completed invocations that reported usage")


class UsageOut(BaseModel):
    daily_token_budget: int | None = Field(description="the trigger's budget per UTC day")
    items: list[UsageDayOut] = Field(description="newest day first; days without usage left out")
    next_cursor: str | None = Field(
        default=None, description="pass as ?cursor= for the next page; null on the last page"
    )


class PreviewOut(BaseModel):
    description: str
    timezone: str
    next_runs: list[datetime] = Field(
        description="the slots that will run, honouring the pause, skips, bounds and max_runs"
    )
    skipped_runs: list[datetime] = Field(
        default_factory=list, description="slots before the last of next_runs skipped by request"
    )
    calendar_slots: list[CalendarSlotOut] = Field(
        default_factory=list,
        description="slots up to the last of next_runs that the calendar skips or shifts "
        "(a shifted one is in next_runs at its new instant), with the reason",
    )


class AttemptOut(BaseModel):
    model_config = FROM_RECORD

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


class Usage(BaseModel):
    """Tokens a target reported using for one invocation."""

    input_tokens: int
    output_tokens: int
    total_tokens: int


class InvocationResult(BaseModel):
    """What the target answered to the attempt that completed the invocation. Only the
    members that apply are present."""

    model_config = ConfigDict(extra="allow")

    status_code: int | None = Field(
        default=None, exclude_if=_absent_if_none, description="the webhook's HTTP status"
    )
    conversation_id: str | None = Field(
        default=None,
        exclude_if=_absent_if_none,
        description="the conversation_id of a JSON object answer, as the target gave it",
    )
    response: Any = Field(
        default=None,
        exclude_if=_absent_if_none,
        description="the answer (a webhook's body, a handler's return value): the JSON "
        "value when it parses as JSON, else its text; at most 64 KiB of it is kept",
    )
    task_id: str | None = Field(
        default=None, exclude_if=_absent_if_none, description="A2A: the task"
    )
    state: str | None = Field(
        default=None, exclude_if=_absent_if_none, description="A2A: the task's final state"
    )
    text: str | None = Field(
        default=None, exclude_if=_absent_if_none, description="A2A: the agent's text output"
    )
    artifacts: list[dict[str, Any]] | None = Field(
        default=None,
        exclude_if=_absent_if_none,
        description="A2A: the task's artifacts (artifact_id, name, description, metadata)",
    )
    response_id: str | None = Field(
        default=None,
        exclude_if=_absent_if_none,
        description="OpenAI: the response or completion id",
    )
    model: str | None = Field(
        default=None, exclude_if=_absent_if_none, description="OpenAI: the model that answered"
    )
    output_text: str | None = Field(
        default=None, exclude_if=_absent_if_none, description="OpenAI: the model's output text"
    )
    usage: Usage | None = Field(
        default=None, exclude_if=_absent_if_none, description="the tokens the target reported"
    )


class InvocationOut(BaseModel):
    model_config = FROM_RECORD

    id: str
    trigger_id: str
    trigger_name: str
    tenant: TenantOf
    project: ProjectOf
    agent: AgentOf
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
    usage: Usage | None = Field(
        default=None,
        description="the tokens the target reported using (summed per trigger per UTC day "
        "for daily_token_budget)",
    )
    last_error: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    rerun_of: str | None = Field(default=None, description="the invocation this one reruns")
    backfill_id: str | None = Field(default=None, description="the backfill that created it")
    attempts: list[AttemptOut] | None = None

    @field_validator("result", mode="before")
    @classmethod
    def _response(cls, value: Any) -> Any:
        # A target's answer that is not a JSON object is kept (and shown) as its response.
        if value is None or isinstance(value, dict | InvocationResult):
            return value
        return {"response": value}


class UpcomingRunOut(BaseModel):
    kind: Literal["scheduled", "pending", "excluded"] = Field(
        description="scheduled: a slot the scheduler has yet to dispatch; pending: an "
        "invocation waiting for a worker (a dispatched slot, run now, rerun or retry); "
        "excluded: a slot its calendar skips (recorded skipped when its time comes)"
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
    reason: str | None = Field(
        default=None,
        description="why its calendar skips or shifts a scheduled slot (e.g. shifted from "
        "2026-12-25 (holiday: Christmas Day)); null otherwise",
    )


class UpcomingRunsOut(BaseModel):
    as_of: datetime = Field(description="the instant the list was computed at")
    items: list[UpcomingRunOut]
