"""An operator's control of scheduling (SPEC §10): pause, resume and skip a trigger,
pause and resume a project, backfills, bulk cancel and rerun. Every action needs an
``operate`` key; reading backfills any key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Body, Query, Response

from tickwork.api.conventions import REPLAY_HEADER, Idempotent, respond
from tickwork.api.deps import (
    Caller,
    Ctx,
    OperateBackfill,
    OperateProject,
    OperateTrigger,
    ProjectScope,
    ReadBackfill,
    ReadTrigger,
)
from tickwork.api.routes.triggers import RETRY_CONFLICT, trigger_out
from tickwork.domain import control as domain_control
from tickwork.services import backfills, bulk, control
from tickwork.wire import (
    BackfillDryRunOut,
    BackfillIn,
    BackfillOut,
    BulkIn,
    BulkOut,
    Page,
    PauseIn,
    ProjectOut,
    SkipIn,
    TriggerOut,
)
from tickwork.wire.control import MAX_SKIP

assert MAX_SKIP == domain_control.MAX_SKIP
assert domain_control.BACKFILL_MODES == ("missing", "failed", "all")

router = APIRouter(prefix="/api/v1/tenants/{tenant}/projects/{project}")
T = "/agents/{agent}/scheduled-triggers/{trigger_id}"
Limit = Annotated[int, Query(ge=1, le=200)]
IdCursor = Annotated[str | None, Query(pattern=r"^[a-z]{1,16}_[0-9a-z]{26}$", max_length=64)]
NOT_FOUND = {"description": "No such trigger (or backfill) in this project."}


# -- a trigger -----------------------------------------------------------------------------


@router.post(
    T + "/pause", response_model=TriggerOut, tags=["scheduled triggers"], responses={404: NOT_FOUND}
)
def pause_trigger(
    scope: OperateTrigger,
    ctx: Ctx,
    caller: Caller,
    body: Annotated[PauseIn, Body(default_factory=PauseIn)],
) -> TriggerOut:
    """Pause the trigger: no slot is dispatched while it lasts (the slots that pass are
    neither run nor recorded), running invocations go on. With ``until`` it resumes by
    itself then. A definition push never changes it."""
    paused = control.pause_trigger(
        ctx,
        scope.tenant,
        scope.project,
        scope.agent,
        scope.trigger_id,
        reason=body.reason,
        until=body.until,
        cancel_pending=body.cancel_pending,
        paused_by=caller.actor,
    )
    return trigger_out(paused)


@router.post(
    T + "/resume",
    response_model=TriggerOut,
    tags=["scheduled triggers"],
    responses={404: NOT_FOUND},
)
def resume_trigger(scope: OperateTrigger, ctx: Ctx) -> TriggerOut:
    """Resume from now on: the next run is the first slot after now; the paused period
    is never run (a backfill can run it on purpose)."""
    return trigger_out(
        control.resume_trigger(ctx, scope.tenant, scope.project, scope.agent, scope.trigger_id)
    )


@router.post(
    T + "/skip", response_model=TriggerOut, tags=["scheduled triggers"], responses={404: NOT_FOUND}
)
def skip_slots(
    scope: OperateTrigger,
    body: SkipIn,
    ctx: Ctx,
) -> TriggerOut:
    """Record the next ``count`` slots ``skipped`` (reason ``skipped by request``) when
    their time comes; they count towards ``max_runs``."""
    return trigger_out(
        control.skip_trigger(
            ctx, scope.tenant, scope.project, scope.agent, scope.trigger_id, body.count
        )
    )


# -- backfills -------------------------------------------------------------------------------


@router.post(
    T + "/backfill",
    response_model=BackfillOut,
    status_code=201,
    tags=["backfills"],
    responses={
        201: {"headers": REPLAY_HEADER},
        200: {"model": BackfillDryRunOut, "description": "A dry run: the counts, nothing written."},
        404: NOT_FOUND,
        409: {"description": f"The trigger is disabled. Or: {RETRY_CONFLICT}."},
    },
)
def create_backfill(
    scope: OperateTrigger,
    body: BackfillIn,
    ctx: Ctx,
    caller: Caller,
    idempotent: Idempotent,
) -> Response:
    """Run the trigger's own slots in [from, to) (at most 10,000) as invocations of
    origin ``backfill``, each with its own ``scheduled_for``; the active scheduler
    dispatches them in batches, at most ``max_concurrency`` at once."""

    def produce() -> tuple[int, BackfillOut | BackfillDryRunOut, dict[str, str]]:
        created, plan = backfills.create_backfill(
            ctx,
            scope.tenant,
            scope.project,
            scope.agent,
            scope.trigger_id,
            start=body.from_,
            end=body.to,
            mode=body.mode,
            max_concurrency=body.max_concurrency,
            dry_run=body.dry_run,
            created_by=caller.actor,
        )
        if created is None:
            counts = BackfillDryRunOut(
                id=None, slots=plan.slots, created=plan.created, skipped=plan.skipped
            )
            return 200, counts, {}
        return 201, BackfillOut.model_validate(created), {}

    return respond(ctx, scope.tenant, idempotent, produce)


@router.get(T + "/backfills", response_model=Page[BackfillOut], tags=["backfills"])
def list_backfills(
    scope: ReadTrigger,
    ctx: Ctx,
    limit: Limit = 50,
    cursor: IdCursor = None,
) -> Page[BackfillOut]:
    items = backfills.list_backfills(
        ctx, scope.tenant, scope.project, scope.agent, scope.trigger_id, cursor, limit
    )
    nxt = items[-1].id if len(items) == limit else None
    return Page[BackfillOut](items=[BackfillOut.model_validate(b) for b in items], next_cursor=nxt)


@router.get(
    T + "/backfills/{backfill_id}",
    response_model=BackfillOut,
    tags=["backfills"],
    responses={404: NOT_FOUND},
)
def get_backfill(scope: ReadBackfill, ctx: Ctx) -> BackfillOut:
    s = scope
    found = backfills.get_backfill(ctx, s.tenant, s.project, s.agent, s.trigger_id, s.backfill_id)
    return BackfillOut.model_validate(found)


@router.post(
    T + "/backfills/{backfill_id}/cancel",
    response_model=BackfillOut,
    tags=["backfills"],
    responses={404: NOT_FOUND, 409: {"description": "The backfill is already over."}},
)
def cancel_backfill(scope: OperateBackfill, ctx: Ctx) -> BackfillOut:
    """Stop the backfill: nothing more is dispatched and its pending invocations are
    cancelled; running ones go on."""
    s = scope
    cancelled = backfills.cancel_backfill(
        ctx, s.tenant, s.project, s.agent, s.trigger_id, s.backfill_id
    )
    return BackfillOut.model_validate(cancelled)


# -- a project -------------------------------------------------------------------------------


@router.post("/pause", response_model=ProjectOut, tags=["projects"])
def pause_project(
    scope: OperateProject,
    ctx: Ctx,
    caller: Caller,
    body: Annotated[PauseIn, Body(default_factory=PauseIn)],
) -> ProjectOut:
    """Pause the whole project: none of its triggers dispatches a slot while it lasts;
    each keeps its own pause state. Backfills wait too."""
    paused = control.pause_project(
        ctx,
        scope.tenant,
        scope.project,
        reason=body.reason,
        until=body.until,
        cancel_pending=body.cancel_pending,
        paused_by=caller.actor,
    )
    return ProjectOut.model_validate(paused)


@router.post("/resume", response_model=ProjectOut, tags=["projects"])
def resume_project(scope: OperateProject, ctx: Ctx) -> ProjectOut:
    """Resume from now on: its triggers carry on from their first slot after now."""
    return ProjectOut.model_validate(control.resume_project(ctx, scope.tenant, scope.project))


def _bulk(
    action: Callable[..., bulk.BulkResult], ctx: Ctx, scope: ProjectScope, body: BulkIn
) -> BulkOut:
    result = action(
        ctx,
        scope.tenant,
        scope.project,
        statuses=body.status,
        agent_id=body.agent,
        trigger_id=body.trigger_id,
        origins=body.origin,
        scheduled_from=body.from_,
        scheduled_to=body.to,
        limit=body.limit,
        dry_run=body.dry_run,
    )
    return BulkOut(matched=result.matched, changed=result.changed, dry_run=body.dry_run)


@router.post("/invocations/cancel", response_model=BulkOut, tags=["invocations"])
def bulk_cancel_invocations(scope: OperateProject, body: BulkIn, ctx: Ctx) -> BulkOut:
    """Cancel the matching pending and running invocations (at most ``limit``, oldest
    first); running attempts are stopped within about a second."""
    return _bulk(bulk.bulk_cancel, ctx, scope, body)


@router.post(
    "/invocations/rerun",
    response_model=BulkOut,
    tags=["invocations"],
    responses={200: {"headers": REPLAY_HEADER}, 409: {"description": f"{RETRY_CONFLICT}."}},
)
def bulk_rerun_invocations(
    # The key before the scope: a request wrong in both its Idempotency-Key and its
    # path lists the key's error first, as this route always has.
    idempotent: Idempotent,
    scope: OperateProject,
    body: BulkIn,
    ctx: Ctx,
) -> Response:
    """Rerun the matching final invocations (default: the failed ones) as new
    invocations of origin ``rerun`` that name their original in ``rerun_of``; those
    whose trigger is gone or disabled are matched but not rerun. Sent again with the
    same ``Idempotency-Key``, it answers the first answer and reruns nothing more."""

    def produce() -> tuple[int, BulkOut, dict[str, str]]:
        return 200, _bulk(bulk.bulk_rerun, ctx, scope, body), {}

    return respond(ctx, scope.tenant, idempotent, produce)
