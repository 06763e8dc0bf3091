"""A project's notification targets and its deliveries (SPEC §11)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import AliasChoices, BaseModel, Field

from tickwork.domain.health import EVENT_TYPES
from tickwork.wire.base import FROM_RECORD, Strict
from tickwork.wire.resources import URL_PATTERN, Secret, SecretEnvRef

EventType = Literal[
    "invocation.failed",
    "trigger.paused",
    "trigger.disabled",
    "slot.missed",
    "trigger.late",
    "trigger.recovered",
    "notification.test",
]
assert get_args(EventType) == EVENT_TYPES
NotificationFormat = Literal["tickwork", "slack", "pagerduty"]
DeliveryStatus = Literal["pending", "delivered", "failed"]

_EVENTS = (
    "the event types this target is sent (left out or null: every type); "
    "notification.test is always sent by POST .../notifications/test"
)
_FORMAT = (
    'tickwork (the default): the event as JSON; slack: {"text": ...} for a Slack '
    "incoming webhook; pagerduty: a PagerDuty Events API v2 event (needs routing_key)"
)


class NotificationTargetIn(Strict):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    url: Annotated[str, Field(max_length=2048, pattern=URL_PATTERN)]
    secret: Secret = Field(
        default=None,
        description='signs each delivery (Standard Webhooks); {"keep": true} keeps the '
        "target's stored secret",
    )
    events: list[EventType] | None = Field(default=None, description=_EVENTS)
    format: NotificationFormat = Field(default="tickwork", description=_FORMAT)
    routing_key: Annotated[str, Field(min_length=1, max_length=128)] | None = Field(
        default=None, description="the PagerDuty integration key (format pagerduty only)"
    )


class NotificationsIn(Strict):
    """Every notification target of the project: this replaces them all."""

    targets: list[NotificationTargetIn] = Field(max_length=20)


class NotificationTargetOut(BaseModel):
    name: str
    url: str
    events: list[EventType] | None
    format: NotificationFormat
    routing_key: str | None = None
    has_secret: bool = False
    secret: SecretEnvRef | None = Field(
        default=None, description="shown only when it names an environment variable"
    )


class NotificationsOut(BaseModel):
    targets: list[NotificationTargetOut]
    updated_at: datetime | None


class NotificationTestOut(BaseModel):
    event_id: str = Field(description="the webhook-id every target receives this event with")


class DeliveryOut(BaseModel):
    model_config = FROM_RECORD

    id: str
    event_id: str
    event_type: EventType
    target: str = Field(description="the target's name")
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None = Field(default=None, description="while pending")
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    event: dict[str, Any] = Field(
        validation_alias=AliasChoices("event", "body"),
        description="the event as the tickwork format sends it",
    )
