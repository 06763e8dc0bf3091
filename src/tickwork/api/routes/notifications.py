"""A project's notification targets, a test event, and the deliveries (SPEC §11).

Reading needs any key of the tenant; changing the targets a ``write`` key; sending a
test event an ``operate`` key."""

from __future__ import annotations

from typing import Annotated, Any, cast

from fastapi import APIRouter, Query, Response

from tickwork.api.conventions import (
    ETAG_HEADER,
    PRECONDITION,
    REPLAY_HEADER,
    Idempotent,
    IfMatchHeader,
    KnownQuery,
    respond,
)
from tickwork.api.deps import Ctx, OperateTenant, ProjectId, ReadTenant, WriteTenant
from tickwork.api.routes.triggers import RETRY_CONFLICT
from tickwork.services import notifications
from tickwork.storage.ports import NotificationConfig, OutboxRow
from tickwork.wire import (
    DeliveryOut,
    DeliveryStatus,
    EventType,
    NotificationsIn,
    NotificationsOut,
    NotificationTargetOut,
    NotificationTestOut,
    Page,
)

router = APIRouter(
    prefix="/api/v1/tenants/{tenant}/projects/{project}/notifications",
    tags=["notifications"],
    dependencies=[KnownQuery],
)
Limit = Annotated[int, Query(ge=1, le=200)]
IdCursor = Annotated[str | None, Query(pattern=r"^[a-z]{1,16}_[0-9a-z]{26}$", max_length=64)]


def notifications_out(config: NotificationConfig | None) -> NotificationsOut:
    return NotificationsOut(
        targets=[
            NotificationTargetOut.model_validate(t) for t in notifications.public_targets(config)
        ],
        updated_at=None if config is None else config.updated_at,
    )


def delivery_out(row: OutboxRow) -> DeliveryOut:
    return DeliveryOut(
        id=row.id,
        event_id=row.event_id,
        event_type=cast(EventType, row.event_type),
        target=str(row.target.get("name")),
        status=cast(DeliveryStatus, row.status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
        last_error=row.last_error,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
        event=row.body,
    )


@router.get("", response_model=NotificationsOut, responses={200: {"headers": ETAG_HEADER}})
def get_notifications(
    tenant: ReadTenant, project: ProjectId, ctx: Ctx, response: Response
) -> NotificationsOut:
    """The project's notification targets (secrets never shown), with an ``ETag``."""
    config = notifications.get_config(ctx, tenant, project)
    response.headers["ETag"] = notifications.config_etag(config)
    return notifications_out(config)


@router.put(
    "",
    response_model=NotificationsOut,
    responses={200: {"headers": ETAG_HEADER}, **PRECONDITION},
)
def put_notifications(
    tenant: WriteTenant,
    project: ProjectId,
    body: NotificationsIn,
    ctx: Ctx,
    response: Response,
    if_match: IfMatchHeader = None,
) -> NotificationsOut:
    """Replace the project's notification targets: each a webhook URL with an optional
    secret (deliveries are signed like webhook targets' calls), the event types it
    wants and its format. Events already queued keep the target they were queued for."""
    targets: list[dict[str, Any]] = [t.model_dump() for t in body.targets]
    config = notifications.put_config(ctx, tenant, project, targets, if_match=if_match)
    response.headers["ETag"] = notifications.config_etag(config)
    return notifications_out(config)


@router.post(
    "/test",
    response_model=NotificationTestOut,
    status_code=202,
    responses={
        202: {"headers": REPLAY_HEADER},
        409: {"description": RETRY_CONFLICT + "."},
        422: {"description": "The project has no notification targets."},
    },
)
def test_notifications(
    tenant: OperateTenant, project: ProjectId, ctx: Ctx, idempotent: Idempotent
) -> Response:
    """Queue a ``notification.test`` event for every target of the project (whatever
    event types it wants); the deliveries show how it went."""

    def produce() -> tuple[int, NotificationTestOut, dict[str, str]]:
        event_id = notifications.send_test(ctx, tenant, project)
        return 202, NotificationTestOut(event_id=event_id), {}

    return respond(ctx, tenant, idempotent, produce)


@router.get("/deliveries", response_model=Page[DeliveryOut])
def list_deliveries(
    tenant: ReadTenant,
    project: ProjectId,
    ctx: Ctx,
    limit: Limit = 50,
    cursor: IdCursor = None,
) -> Page[DeliveryOut]:
    """The project's deliveries, newest first: one per event and target, with its tries."""
    rows = notifications.list_deliveries(ctx, tenant, project, cursor, limit)
    nxt = rows[-1].id if len(rows) == limit else None
    return Page[DeliveryOut](items=[delivery_out(r) for r in rows], next_cursor=nxt)
