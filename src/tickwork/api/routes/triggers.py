"""Scheduled triggers and their invocations.

One module, longer than most: triggers and their invocations share the path scope, the
conversions to the wire models and the list filters; most of the length is route
declarations with their OpenAPI descriptions, which must stay exactly as published.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, cast

from fastapi import APIRouter, Body, Query, Response

from tickwork.api.answers import Overlay
from tickwork.api.conventions import (
    ETAG_HEADER,
    PRECONDITION,
    REPLAY_HEADER,
    Idempotent,
    IfMatchHeader,
    KnownQuery,
    respond,
)
from tickwork.api.deps import (
    Caller,
    Ctx,
    OperateInvocation,
    OperateTrigger,
    ReadAgent,
    ReadInvocation,
    ReadProject,
    ReadProjectInvocation,
    ReadTrigger,
    TriggerScope,
    WriteAgent,
    WriteTrigger,
)
from tickwork.domain import health as health_rules
from tickwork.domain.health import HEALTHS
from tickwork.domain.invocations import ORIGINS, STATUSES
from tickwork.domain.limits import DAY_PATTERN
from tickwork.domain.names import REF_PATTERN, SLUG_PATTERN
from tickwork.domain.slots import Slot
from tickwork.errors import ValidationError
from tickwork.services import etags, health, invocations, triggers
from tickwork.services.context import Context
from tickwork.services.invocations import UpcomingRun
from tickwork.storage.ports import InvocationFilter
from tickwork.storage.records import Attempt, Invocation, Trigger
from tickwork.wire import (
    CalendarSlotOut,
    CalendarSpec,
    InvocationOut,
    Origin,
    Page,
    PreviewOut,
    RefRun,
    RunIn,
    TriggerCreate,
    TriggerOut,
    TriggerPatch,
    UpcomingRunOut,
    UpcomingRunsOut,
    UsageDayOut,
    UsageOut,
)

router = APIRouter(prefix="/api/v1/tenants/{tenant}/projects/{project}", dependencies=[KnownQuery])
BASE = "/agents/{agent}/scheduled-triggers"

Limit = Annotated[int, Query(ge=1, le=200)]
OBJECT_ID_PATTERN = r"^[a-z]{1,16}_[0-9a-z]{26}$"
IdCursor = Annotated[str | None, Query(pattern=OBJECT_ID_PATTERN, max_length=64)]
Status = Annotated[
    list[str] | None,
    Query(
        description="repeat to match several",
        json_schema_extra={"items": {"enum": list(STATUSES)}},
    ),
]
Origins = Annotated[
    list[str] | None,
    Query(
        description="repeat to match several", json_schema_extra={"items": {"enum": list(ORIGINS)}}
    ),
]
AgentFilter = Annotated[
    str | None, Query(pattern=SLUG_PATTERN, max_length=64, description="an agent's id")
]
TriggerFilter = Annotated[str | None, Query(pattern=OBJECT_ID_PATTERN, max_length=64)]
RefQuery = Annotated[str, Query(pattern=REF_PATTERN, max_length=128)]
TOO_LARGE = {"description": "The payload or the message template is above its size limit."}
OptRefQuery = Annotated[str | None, Query(pattern=REF_PATTERN, max_length=128)]
HealthQuery = Annotated[
    str | None,
    Query(
        description="only triggers of this health (see the trigger's health field)",
        json_schema_extra={"enum": list(HEALTHS)},
    ),
]


def trigger_out(
    t: Trigger, last_run: Invocation | None = None, health: str | None = None
) -> TriggerOut:
    """The trigger as answered; ``health`` as computed now (None: from the row alone,
    for answers to writes)."""
    health = health or health_rules.health_of(
        enabled=t.enabled,
        paused=t.paused,
        consecutive_failures=t.consecutive_failures,
        late=False,
    )
    return TriggerOut.model_validate(Overlay(t, last_run=last_run, health=health))


def invocation_out(i: Invocation, attempts: list[Attempt] | None = None) -> InvocationOut:
    ref = RefRun(name=i.ref, revision=i.ref_revision)
    return InvocationOut.model_validate(Overlay(i, ref=ref, attempts=attempts))


def upcoming_run_out(run: UpcomingRun) -> UpcomingRunOut:
    inv, trigger = run.invocation, run.trigger
    if inv is not None:
        return UpcomingRunOut(
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
            reason=None,
        )
    assert trigger is not None
    return UpcomingRunOut(
        kind="excluded" if run.kind == "excluded" else "scheduled",
        reason=run.reason,
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


def _trigger(ctx: Context, scope: TriggerScope) -> Trigger:
    """The trigger the path names (404 unless it is the agent's, in the project)."""
    s = scope
    return triggers.get_trigger(ctx, s.tenant, s.project, s.agent, s.trigger_id)


def _statuses(values: list[str] | None) -> tuple[str, ...] | None:
    for value in values or []:
        if value not in STATUSES:
            raise ValidationError("query.status", f"{value!r} is not one of {', '.join(STATUSES)}")
    return tuple(values) if values else None


def _trigger_page(ctx: Context, items: list[Trigger], limit: int) -> Page[TriggerOut]:
    runs = triggers.last_runs(ctx, items)
    healths = health.healths(ctx, items)
    nxt = items[-1].id if len(items) == limit else None
    return Page[TriggerOut](
        items=[trigger_out(t, runs.get(t.id), healths.get(t.id)) for t in items], next_cursor=nxt
    )


def _shown(ctx: Context, trigger: Trigger, response: Response) -> TriggerOut:
    """The trigger with its last run and health, its ETag on the answer."""
    response.headers["ETag"] = etags.trigger_etag(trigger)
    run = triggers.last_runs(ctx, [trigger]).get(trigger.id)
    return trigger_out(trigger, run, health.healths(ctx, [trigger]).get(trigger.id))


@router.get(BASE, response_model=Page[TriggerOut], tags=["scheduled triggers"])
def list_triggers(
    scope: ReadAgent,
    ctx: Ctx,
    ref: OptRefQuery = None,
    health: HealthQuery = None,
    limit: Limit = 50,
    cursor: IdCursor = None,
) -> Page[TriggerOut]:
    """The agent's triggers (on every ref, or on ``ref``; of one ``health``), in the
    order they were created; 404 when the project has no such agent (on that ref)."""
    s = scope
    items = triggers.list_triggers(ctx, s.tenant, s.project, s.agent, ref, cursor, limit, health)
    return _trigger_page(ctx, items, limit)


@router.get("/triggers", response_model=Page[TriggerOut], tags=["scheduled triggers"])
def list_project_triggers(
    scope: ReadProject,
    ctx: Ctx,
    agent: AgentFilter = None,
    ref: OptRefQuery = None,
    enabled: bool | None = None,
    paused: bool | None = None,
    health: HealthQuery = None,
    q: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="a part of the name, any case"),
    ] = None,
    limit: Limit = 50,
    cursor: IdCursor = None,
) -> Page[TriggerOut]:
    """The project's triggers across agents and refs, in the order they were created,
    filtered by agent, ref, ``enabled``, ``paused``, ``health`` and a part of the name. An
    agent or ref the project does not have answers 422."""
    items = triggers.search_triggers(
        ctx,
        scope.tenant,
        scope.project,
        agent_id=agent,
        ref=ref,
        enabled=enabled,
        paused=paused,
        health=health,
        name_contains=q,
        after=cursor,
        limit=limit,
    )
    return _trigger_page(ctx, items, limit)


NAME_TAKEN = {"description": "The agent already has a trigger of that name on the ref."}
CREATED_HEADERS = {"headers": ETAG_HEADER | REPLAY_HEADER}
RETRY_CONFLICT = (
    "A request with the same `Idempotency-Key` is still being handled (see `Retry-After`)"
)


@router.post(
    BASE,
    response_model=TriggerOut,
    status_code=201,
    tags=["scheduled triggers"],
    responses={
        201: CREATED_HEADERS,
        409: {"description": f"{NAME_TAKEN['description']} Or: {RETRY_CONFLICT}."},
        413: TOO_LARGE,
    },
)
def create_trigger(
    scope: WriteAgent,
    body: TriggerCreate,
    ctx: Ctx,
    caller: Caller,
    idempotent: Idempotent,
    ref: RefQuery = "main",
) -> Response:
    """Create a trigger; its name must be new for the agent on the ref (409)."""
    fields: dict[str, Any] = body.model_dump(exclude_none=True)
    fields["ref"] = ref
    s = scope

    def produce() -> tuple[int, TriggerOut, dict[str, str]]:
        created = triggers.create_trigger(ctx, s.tenant, s.project, s.agent, fields, caller.actor)
        return 201, trigger_out(created), {"ETag": etags.trigger_etag(created)}

    return respond(ctx, s.tenant, idempotent, produce)


@router.get(
    BASE + "/{trigger_id}",
    response_model=TriggerOut,
    tags=["scheduled triggers"],
    responses={200: {"headers": ETAG_HEADER}},
)
def get_trigger(scope: ReadTrigger, ctx: Ctx, response: Response) -> TriggerOut:
    return _shown(ctx, _trigger(ctx, scope), response)


@router.patch(
    BASE + "/{trigger_id}",
    response_model=TriggerOut,
    tags=["scheduled triggers"],
    responses={200: {"headers": ETAG_HEADER}, 409: NAME_TAKEN, 413: TOO_LARGE, **PRECONDITION},
)
def update_trigger(
    scope: WriteTrigger,
    body: TriggerPatch,
    ctx: Ctx,
    response: Response,
    if_match: IfMatchHeader = None,
) -> TriggerOut:
    patch = {k: getattr(body, k) for k in body.model_fields_set}
    if isinstance(body.calendar, CalendarSpec):
        patch["calendar"] = body.calendar.model_dump(exclude_none=True)
    s = scope
    updated = triggers.update_trigger(
        ctx, s.tenant, s.project, s.agent, s.trigger_id, patch, if_match=if_match
    )
    return _shown(ctx, updated, response)


@router.delete(
    BASE + "/{trigger_id}", status_code=204, tags=["scheduled triggers"], responses=PRECONDITION
)
def delete_trigger(scope: WriteTrigger, ctx: Ctx, if_match: IfMatchHeader = None) -> Response:
    s = scope
    triggers.delete_trigger(ctx, s.tenant, s.project, s.agent, s.trigger_id, if_match=if_match)
    return Response(status_code=204)


@router.get(BASE + "/{trigger_id}/preview", response_model=PreviewOut, tags=["scheduled triggers"])
def preview_trigger(
    scope: ReadTrigger, ctx: Ctx, count: Annotated[int, Query(ge=1, le=1000)] = 10
) -> PreviewOut:
    trigger = _trigger(ctx, scope)
    s = scope
    runs, skipped, calendar, description = triggers.preview_trigger(
        ctx, s.tenant, s.project, s.agent, s.trigger_id, count
    )
    return PreviewOut(
        description=description,
        timezone=trigger.timezone,
        next_runs=runs,
        skipped_runs=skipped,
        calendar_slots=[calendar_slot_out(slot) for slot in calendar],
    )


def calendar_slot_out(slot: Slot) -> CalendarSlotOut:
    return CalendarSlotOut(
        at=slot.at,
        nominal=slot.nominal,
        status="skipped" if slot.status == "skip" else "shifted",
        reason=slot.reason or "",
    )


DayCursor = Annotated[str | None, Query(pattern=DAY_PATTERN, max_length=10)]


@router.get(BASE + "/{trigger_id}/usage", response_model=UsageOut, tags=["scheduled triggers"])
def get_trigger_usage(
    scope: ReadTrigger,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=366)] = 31,
    cursor: DayCursor = None,
) -> UsageOut:
    """The tokens the trigger's runs used per UTC day, newest first: what its
    ``daily_token_budget`` is checked against."""
    try:
        before = None if cursor is None else date.fromisoformat(cursor)
    except ValueError:
        raise ValidationError("query.cursor", "must be a day, YYYY-MM-DD") from None
    s = scope
    trigger, days = triggers.trigger_usage(
        ctx, s.tenant, s.project, s.agent, s.trigger_id, before, limit
    )
    items = [UsageDayOut.model_validate(d) for d in days]
    nxt = items[-1].day.isoformat() if len(items) == limit else None
    return UsageOut(daily_token_budget=trigger.daily_token_budget, items=items, next_cursor=nxt)


@router.post(
    BASE + "/{trigger_id}/run",
    response_model=InvocationOut,
    status_code=202,
    tags=["invocations"],
    responses={
        202: {"headers": REPLAY_HEADER},
        409: {"description": f"The trigger is disabled. Or: {RETRY_CONFLICT}."},
    },
)
def run_now(
    scope: OperateTrigger,
    ctx: Ctx,
    idempotent: Idempotent,
    body: Annotated[RunIn, Body(default_factory=RunIn)],
) -> Response:
    """Run the trigger now, as a new invocation (origin ``manual``), with the trigger's
    payload or, for this run only, the ``payload`` given."""
    s = scope

    def produce() -> tuple[int, InvocationOut, dict[str, str]]:
        inv = triggers.run_now(ctx, s.tenant, s.project, s.agent, s.trigger_id, body.payload)
        return 202, invocation_out(inv), {}

    return respond(ctx, s.tenant, idempotent, produce)


@router.get(
    BASE + "/{trigger_id}/invocations",
    response_model=Page[InvocationOut],
    tags=["invocations"],
)
def list_trigger_invocations(
    scope: ReadTrigger,
    ctx: Ctx,
    status: Status = None,
    origin: Origins = None,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    limit: Limit = 50,
    cursor: IdCursor = None,
) -> Page[InvocationOut]:
    _trigger(ctx, scope)
    s = scope
    where = _Filters(trigger_id=s.trigger_id, statuses=status, origins=origin)
    return _invocation_page(ctx, s.tenant, s.project, where, from_, to, limit, cursor)


@dataclass(frozen=True)
class _Filters:
    trigger_id: str | None = None
    agent_id: str | None = None
    ref: str | None = None
    statuses: list[str] | None = None
    origins: list[str] | None = None


def _invocation_page(
    ctx: Context,
    tenant: str,
    project: str,
    filters: _Filters,
    from_: datetime | None,
    to: datetime | None,
    limit: int,
    cursor: str | None,
) -> Page[InvocationOut]:
    bounds: list[datetime | None] = []
    for name, value in (("query.from", from_), ("query.to", to)):
        if value is not None and value.tzinfo is None:
            raise ValidationError(name, "must be an instant with a UTC offset (e.g. ...Z)")
        try:
            bounds.append(None if value is None else value.astimezone(UTC))
        except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00
            raise ValidationError(name, "is out of the supported range of instants") from None
    from_, to = bounds
    items = invocations.list_invocations(
        ctx,
        tenant,
        project,
        InvocationFilter(
            filters.trigger_id,
            _statuses(filters.statuses),
            from_,
            to,
            agent_id=filters.agent_id,
            ref=filters.ref,
            origins=tuple(filters.origins) if filters.origins else None,
        ),
        before=cursor,
        limit=limit,
    )
    nxt = items[-1].id if len(items) == limit else None
    return Page[InvocationOut](items=[invocation_out(i) for i in items], next_cursor=nxt)


@router.get(
    BASE + "/{trigger_id}/invocations/{invocation_id}",
    response_model=InvocationOut,
    tags=["invocations"],
)
def get_invocation(scope: ReadInvocation, ctx: Ctx) -> InvocationOut:
    _trigger(ctx, scope)
    s = scope
    inv, attempts = invocations.get_invocation(
        ctx, s.tenant, s.project, s.trigger_id, s.invocation_id
    )
    return invocation_out(inv, attempts)


@router.post(
    BASE + "/{trigger_id}/invocations/{invocation_id}/cancel",
    response_model=InvocationOut,
    tags=["invocations"],
    responses={409: {"description": "The invocation is already final."}},
)
def cancel_invocation(scope: OperateInvocation, ctx: Ctx) -> InvocationOut:
    _trigger(ctx, scope)
    s = scope
    inv = invocations.cancel_invocation(ctx, s.tenant, s.project, s.trigger_id, s.invocation_id)
    return invocation_out(inv)


@router.get("/invocations", response_model=Page[InvocationOut], tags=["invocations"])
def list_invocations(
    scope: ReadProject,
    ctx: Ctx,
    status: Status = None,
    origin: Origins = None,
    agent: AgentFilter = None,
    ref: OptRefQuery = None,
    trigger_id: TriggerFilter = None,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    limit: Limit = 50,
    cursor: IdCursor = None,
) -> Page[InvocationOut]:
    """The project's invocations, newest first, filtered; a status, origin, agent or ref
    that does not exist answers 422 (a trigger id is not checked: invocations outlive
    their trigger)."""
    where = _Filters(trigger_id, agent, ref, status, origin)
    return _invocation_page(ctx, scope.tenant, scope.project, where, from_, to, limit, cursor)


@router.get("/invocations/{invocation_id}", response_model=InvocationOut, tags=["invocations"])
def get_project_invocation(scope: ReadProjectInvocation, ctx: Ctx) -> InvocationOut:
    """Any invocation of the project with its attempts, also one whose trigger, agent or
    ref has since been deleted."""
    s = scope
    inv, attempts = invocations.get_invocation(ctx, s.tenant, s.project, None, s.invocation_id)
    return invocation_out(inv, attempts)


@router.post(
    BASE + "/{trigger_id}/invocations/{invocation_id}/rerun",
    response_model=InvocationOut,
    status_code=202,
    tags=["invocations"],
    responses={
        202: {"headers": REPLAY_HEADER},
        409: {
            "description": "The invocation is not final, or the trigger is disabled. "
            f"Or: {RETRY_CONFLICT}."
        },
    },
)
def rerun_invocation(scope: OperateInvocation, ctx: Ctx, idempotent: Idempotent) -> Response:
    """Run a finished invocation again as a new one (origin ``rerun``, key
    ``rerun:{trigger_id}:{new invocation id}``): the same slot and payload, executed by
    the workers with the trigger's retries, timeout and cancellation."""
    s = scope

    def produce() -> tuple[int, InvocationOut, dict[str, str]]:
        inv = invocations.rerun_invocation(
            ctx, s.tenant, s.project, s.agent, s.trigger_id, s.invocation_id
        )
        return 202, invocation_out(inv), {}

    return respond(ctx, s.tenant, idempotent, produce)


@router.get("/upcoming-runs", response_model=UpcomingRunsOut, tags=["invocations"])
def list_upcoming_runs(
    scope: ReadProject,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=invocations.MAX_UPCOMING)] = 50,
) -> UpcomingRunsOut:
    """What the project will run next, soonest first: the coming slots of every enabled
    trigger on every ref, merged with the invocations waiting for a worker."""
    as_of, runs = invocations.upcoming_runs(ctx, scope.tenant, scope.project, limit)
    return UpcomingRunsOut(as_of=as_of, items=[upcoming_run_out(r) for r in runs])
