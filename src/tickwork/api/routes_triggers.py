"""Scheduled triggers and their invocations."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from tickwork.api.deps import (
    AgentId,
    Caller,
    Ctx,
    ObjectId,
    OperateTenant,
    ProjectId,
    ReadTenant,
    WriteTenant,
)
from tickwork.api.schemas import invocation_out, trigger_out, upcoming_run_out
from tickwork.domain.limits import DAY_PATTERN
from tickwork.domain.names import REF_PATTERN
from tickwork.errors import ValidationError
from tickwork.services import invocations, triggers
from tickwork.services.context import Context
from tickwork.storage.records import STATUSES
from tickwork.wire import (
    InvocationOut,
    Page,
    PreviewOut,
    TriggerCreate,
    TriggerOut,
    TriggerPatch,
    UpcomingRunsOut,
    UsageDayOut,
    UsageOut,
)

router = APIRouter(prefix="/api/v1/tenants/{tenant}/projects/{project}")
BASE = "/agents/{agent}/scheduled-triggers"

Limit = Annotated[int, Query(ge=1, le=200)]
IdCursor = Annotated[str | None, Query(pattern=r"^[a-z]{1,16}_[0-9a-z]{26}$", max_length=64)]
Status = Annotated[
    list[str] | None,
    Query(
        description="repeat to match several",
        json_schema_extra={
            "items": {
                "enum": [
                    "pending",
                    "running",
                    "completed",
                    "failed",
                    "cancelled",
                    "missed",
                    "skipped",
                ]
            }
        },
    ),
]
RefQuery = Annotated[str, Query(pattern=REF_PATTERN, max_length=128)]
TOO_LARGE = {"description": "The payload or the message template is above its size limit."}
OptRefQuery = Annotated[str | None, Query(pattern=REF_PATTERN, max_length=128)]


def _statuses(values: list[str] | None) -> list[str] | None:
    for value in values or []:
        if value not in STATUSES:
            raise ValidationError("query.status", f"{value!r} is not one of {', '.join(STATUSES)}")
    return values or None


@router.get(BASE, response_model=Page[TriggerOut], tags=["scheduled triggers"])
def list_triggers(
    tenant: ReadTenant,
    project: ProjectId,
    agent: AgentId,
    ctx: Ctx,
    ref: OptRefQuery = None,
    limit: Limit = 50,
    cursor: IdCursor = None,
) -> Page[TriggerOut]:
    items = triggers.list_triggers(ctx, tenant, project, agent, ref, cursor, limit)
    nxt = items[-1].id if len(items) == limit else None
    return Page[TriggerOut](items=[trigger_out(t) for t in items], next_cursor=nxt)


@router.post(
    BASE,
    response_model=TriggerOut,
    status_code=201,
    tags=["scheduled triggers"],
    responses={413: TOO_LARGE},
)
def create_trigger(
    tenant: WriteTenant,
    project: ProjectId,
    agent: AgentId,
    body: TriggerCreate,
    ctx: Ctx,
    caller: Caller,
    ref: RefQuery = "main",
) -> TriggerOut:
    fields: dict[str, Any] = body.model_dump(exclude_none=True)
    fields["ref"] = ref
    created = triggers.create_trigger(ctx, tenant, project, agent, fields, caller.actor)
    return trigger_out(created)


@router.get(BASE + "/{trigger_id}", response_model=TriggerOut, tags=["scheduled triggers"])
def get_trigger(
    tenant: ReadTenant, project: ProjectId, agent: AgentId, trigger_id: ObjectId, ctx: Ctx
) -> TriggerOut:
    return trigger_out(triggers.get_trigger(ctx, tenant, project, agent, trigger_id))


@router.patch(
    BASE + "/{trigger_id}",
    response_model=TriggerOut,
    tags=["scheduled triggers"],
    responses={413: TOO_LARGE},
)
def update_trigger(
    tenant: WriteTenant,
    project: ProjectId,
    agent: AgentId,
    trigger_id: ObjectId,
    body: TriggerPatch,
    ctx: Ctx,
) -> TriggerOut:
    patch = {k: getattr(body, k) for k in body.model_fields_set}
    updated = triggers.update_trigger(ctx, tenant, project, agent, trigger_id, patch)
    return trigger_out(updated)


@router.delete(BASE + "/{trigger_id}", status_code=204, tags=["scheduled triggers"])
def delete_trigger(
    tenant: WriteTenant, project: ProjectId, agent: AgentId, trigger_id: ObjectId, ctx: Ctx
) -> Response:
    triggers.delete_trigger(ctx, tenant, project, agent, trigger_id)
    return Response(status_code=204)


@router.get(BASE + "/{trigger_id}/preview", response_model=PreviewOut, tags=["scheduled triggers"])
def preview_trigger(
    tenant: ReadTenant,
    project: ProjectId,
    agent: AgentId,
    trigger_id: ObjectId,
    ctx: Ctx,
    count: Annotated[int, Query(ge=1, le=1000)] = 10,
) -> PreviewOut:
    trigger = triggers.get_trigger(ctx, tenant, project, agent, trigger_id)
    instants, description = triggers.preview_trigger(ctx, tenant, project, agent, trigger_id, count)
    return PreviewOut(description=description, timezone=trigger.timezone, next_runs=instants)


DayCursor = Annotated[str | None, Query(pattern=DAY_PATTERN, max_length=10)]


@router.get(BASE + "/{trigger_id}/usage", response_model=UsageOut, tags=["scheduled triggers"])
def get_trigger_usage(
    tenant: ReadTenant,
    project: ProjectId,
    agent: AgentId,
    trigger_id: ObjectId,
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
    trigger, days = triggers.trigger_usage(ctx, tenant, project, agent, trigger_id, before, limit)
    items = [UsageDayOut(day=d, tokens=n, invocations=c) for d, n, c in days]
    nxt = items[-1].day.isoformat() if len(items) == limit else None
    return UsageOut(daily_token_budget=trigger.daily_token_budget, items=items, next_cursor=nxt)


@router.post(
    BASE + "/{trigger_id}/run",
    response_model=InvocationOut,
    status_code=202,
    tags=["invocations"],
    responses={409: {"description": "The trigger is disabled."}},
)
def run_now(
    tenant: OperateTenant, project: ProjectId, agent: AgentId, trigger_id: ObjectId, ctx: Ctx
) -> InvocationOut:
    return invocation_out(triggers.run_now(ctx, tenant, project, agent, trigger_id))


@router.get(
    BASE + "/{trigger_id}/invocations",
    response_model=Page[InvocationOut],
    tags=["invocations"],
)
def list_trigger_invocations(
    tenant: ReadTenant,
    project: ProjectId,
    agent: AgentId,
    trigger_id: ObjectId,
    ctx: Ctx,
    status: Status = None,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    limit: Limit = 50,
    cursor: IdCursor = None,
) -> Page[InvocationOut]:
    triggers.get_trigger(ctx, tenant, project, agent, trigger_id)
    return _invocation_page(ctx, tenant, project, trigger_id, status, from_, to, limit, cursor)


def _invocation_page(
    ctx: Context,
    tenant: str,
    project: str,
    trigger_id: str | None,
    status: list[str] | None,
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
        trigger_id=trigger_id,
        statuses=_statuses(status),
        scheduled_from=from_,
        scheduled_to=to,
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
def get_invocation(
    tenant: ReadTenant,
    project: ProjectId,
    agent: AgentId,
    trigger_id: ObjectId,
    invocation_id: ObjectId,
    ctx: Ctx,
) -> InvocationOut:
    triggers.get_trigger(ctx, tenant, project, agent, trigger_id)
    inv, attempts = invocations.get_invocation(ctx, tenant, project, trigger_id, invocation_id)
    return invocation_out(inv, attempts)


@router.post(
    BASE + "/{trigger_id}/invocations/{invocation_id}/cancel",
    response_model=InvocationOut,
    tags=["invocations"],
    responses={409: {"description": "The invocation is already final."}},
)
def cancel_invocation(
    tenant: OperateTenant,
    project: ProjectId,
    agent: AgentId,
    trigger_id: ObjectId,
    invocation_id: ObjectId,
    ctx: Ctx,
) -> InvocationOut:
    triggers.get_trigger(ctx, tenant, project, agent, trigger_id)
    inv = invocations.cancel_invocation(ctx, tenant, project, trigger_id, invocation_id)
    return invocation_out(inv)


@router.get("/invocations", response_model=Page[InvocationOut], tags=["invocations"])
def list_invocations(
    tenant: ReadTenant,
    project: ProjectId,
    ctx: Ctx,
    status: Status = None,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    limit: Limit = 50,
    cursor: IdCursor = None,
) -> Page[InvocationOut]:
    return _invocation_page(ctx, tenant, project, None, status, from_, to, limit, cursor)


@router.post(
    BASE + "/{trigger_id}/invocations/{invocation_id}/rerun",
    response_model=InvocationOut,
    status_code=202,
    tags=["invocations"],
    responses={409: {"description": "The invocation is not final, or the trigger is disabled."}},
)
def rerun_invocation(
    tenant: OperateTenant,
    project: ProjectId,
    agent: AgentId,
    trigger_id: ObjectId,
    invocation_id: ObjectId,
    ctx: Ctx,
) -> InvocationOut:
    """Run a finished invocation again as a new one (origin ``rerun``, key
    ``rerun:{trigger_id}:{new invocation id}``): the same slot and payload, executed by
    the workers with the trigger's retries, timeout and cancellation."""
    inv = invocations.rerun_invocation(ctx, tenant, project, agent, trigger_id, invocation_id)
    return invocation_out(inv)


@router.get("/upcoming-runs", response_model=UpcomingRunsOut, tags=["invocations"])
def list_upcoming_runs(
    tenant: ReadTenant,
    project: ProjectId,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=invocations.MAX_UPCOMING)] = 50,
) -> UpcomingRunsOut:
    """What the project will run next, soonest first: the coming slots of every enabled
    trigger on every ref, merged with the invocations waiting for a worker."""
    as_of, runs = invocations.upcoming_runs(ctx, tenant, project, limit)
    return UpcomingRunsOut(as_of=as_of, items=[upcoming_run_out(r) for r in runs])
