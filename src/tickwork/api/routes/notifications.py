"""A project's notification targets, a test event, and the deliveries (SPEC §11).

Reading needs any key of the tenant; changing the targets a ``write`` key; sending a
test event an ``operate`` key."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

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
from tickwork.api.deps import Ctx, OperateProject, ReadProject, WriteProject
from tickwork.api.routes.triggers import RETRY_CONFLICT
from tickwork.services import notifications
from tickwork.storage.ports import NotificationConfig, OutboxRow
from tickwork.wire import (
    DeliveryOut,
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
    # The row keeps the whole target it was queued for (its url, sealed secret and
    # format); the answer names it.
    return DeliveryOut.model_validate(
        Overlay(
            row,
            target=str(row.target.get("name")),
            next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
        )
    )


@router.get("", response_model=NotificationsOut, responses={200: {"headers": ETAG_HEADER}})
def get_notifications(scope: ReadProject, ctx: Ctx, response: Response) -> NotificationsOut:
    """The project's notification targets (secrets never shown), with an ``ETag``."""
    config = notifications.get_config(ctx, scope.tenant, scope.project)
    response.headers["ETag"] = notifications.config_etag(config)
    return notifications_out(config)


@router.put(
    "",
    response_model=NotificationsOut,
    responses={200: {"headers": ETAG_HEADER}, **PRECONDITION},
)
def put_notifications(
    scope: WriteProject,
    body: NotificationsIn,
    ctx: Ctx,
    response: Response,
    if_match: IfMatchHeader = None,
) -> NotificationsOut:
    """Replace the project's notification targets: each a webhook URL with an optional
    secret (deliveries are signed like webhook targets' calls), the event types it
    wants and its format. Events already queued keep the target they were queued for."""
    targets: list[dict[str, Any]] = [t.model_dump() for t in body.targets]
    config = notifications.put_config(ctx, scope.tenant, scope.project, targets, if_match=if_match)
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
    # The key before the scope: a request wrong in both its Idempotency-Key and its
    # path lists the key's error first, as this route always has.
    idempotent: Idempotent,
    scope: OperateProject,
    ctx: Ctx,
) -> Response:
    """Queue a ``notification.test`` event for every target of the project (whatever
    event types it wants); the deliveries show how it went."""

    def produce() -> tuple[int, NotificationTestOut, dict[str, str]]:
        event_id = notifications.send_test(ctx, scope.tenant, scope.project)
        return 202, NotificationTestOut(event_id=event_id), {}

    return respond(ctx, scope.tenant, idempotent, produce)


@router.get("/deliveries", response_model=Page[DeliveryOut])
def list_deliveries(
    scope: ReadProject, ctx: Ctx, limit: Limit = 50, cursor: IdCursor = None
) -> Page[DeliveryOut]:
    """The project's deliveries, newest first: one per event and target, with its tries."""
    rows = notifications.list_deliveries(ctx, scope.tenant, scope.project, cursor, limit)
    nxt = rows[-1].id if len(rows) == limit else None
    return Page[DeliveryOut](items=[delivery_out(r) for r in rows], next_cursor=nxt)
