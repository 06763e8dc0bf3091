"""Notifications (SPEC §11): a project's targets, events written to the outbox in the
transaction of their cause, and what a delivery attempt sends and decides.

An event is ``{"id": "evt_…", "type": "invocation.failed", "created_at": ISO, "tenant",
"project", "data": {...}}``; it becomes one outbox row per target that wants its type,
each delivered at least once (the sender is :mod:`tickwork.runtime.notifications`).
Every try of one event carries the same ``webhook-id`` (the event id), so a receiver
deduplicates on it.

One module, longer than most: the events, the targets' formats and the delivery
decision are one contract (what is written is what is sent), read together.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tickwork.domain.health import EVENT_TYPES
from tickwork.domain.ids import new_id
from tickwork.domain.sanitize import clean_text
from tickwork.domain.target_spec import KEEP_SECRET, check_secret, check_webhook_url
from tickwork.errors import ValidationError
from tickwork.services import etags, secrets
from tickwork.services.context import Context
from tickwork.services.resources import require_project
from tickwork.storage.ports import NotificationConfig, Notifications, OutboxRow
from tickwork.storage.records import Invocation, Trigger

__all__ = [
    "DELIVERED",
    "FAILED",
    "FORMATS",
    "MAX_TARGETS",
    "Delivery",
    "emit",
    "get_config",
    "invocation_failed",
    "put_config",
    "render",
    "send_test",
    "trigger_event",
]

FORMATS = ("tickwork", "slack", "pagerduty")
MAX_TARGETS = 20
DELIVERED = "delivered"
FAILED = "failed"
PENDING = "pending"
_NAME_CHARS = 64


def _iso(instant: datetime | None) -> str | None:
    if instant is None:
        return None
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


# -- configuration ----------------------------------------------------------------------


def config_etag(config: NotificationConfig | None) -> str:
    """The ETag of the project's targets (``"n0"`` before any were set)."""
    return f'"n{0 if config is None else config.revision}"'


def public_targets(config: NotificationConfig | None) -> list[dict[str, Any]]:
    """The targets as shown to clients: a secret is never shown, an env reference is."""
    shown = []
    for target in [] if config is None else config.targets:
        doc = {k: v for k, v in target.items() if k != "secret"}
        secret = target.get("secret")
        doc["has_secret"] = bool(secret)
        if isinstance(secret, dict) and "env" in secret:
            doc["secret"] = {"env": secret["env"]}
        shown.append(doc)
    return shown


def get_config(ctx: Context, tenant_id: str, project_id: str) -> NotificationConfig | None:
    with ctx.db.read() as tx:
        require_project(tx, tenant_id, project_id)
        return tx.notification_config(tenant_id, project_id)


def _check_target(
    index: int, raw: Mapping[str, Any], before: Mapping[str, dict[str, Any]]
) -> dict[str, Any]:
    field = f"targets[{index}]"
    name = raw.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= _NAME_CHARS:
        raise ValidationError(f"{field}.name", f"must be a string of 1-{_NAME_CHARS} characters")
    url = check_webhook_url(raw.get("url"), f"{field}.url")
    fmt = raw.get("format") or "tickwork"
    if fmt not in FORMATS:
        raise ValidationError(f"{field}.format", f"{fmt!r} is not one of {', '.join(FORMATS)}")
    events = raw.get("events")
    if events is not None:
        for event in events:
            if event not in EVENT_TYPES:
                raise ValidationError(
                    f"{field}.events", f"{event!r} is not one of {', '.join(EVENT_TYPES)}"
                )
        events = sorted(set(events), key=EVENT_TYPES.index)
    secret = check_secret(raw.get("secret"), f"{field}.secret")
    if secret == KEEP_SECRET:
        kept = before.get(name, {}).get("secret")
        if not kept:
            raise ValidationError(
                f"{field}.secret",
                f'{{"keep": true}} keeps the secret target {name!r} has, and it has none '
                "stored: give the secret itself, or an env reference",
            )
        secret = kept
    routing_key = raw.get("routing_key")
    if fmt == "pagerduty":
        if not isinstance(routing_key, str) or not 1 <= len(routing_key) <= 128:
            raise ValidationError(
                f"{field}.routing_key",
                "the PagerDuty integration key (1-128 characters) is required with "
                "format pagerduty",
            )
    elif routing_key is not None:
        raise ValidationError(f"{field}.routing_key", "is only used with format pagerduty")
    target: dict[str, Any] = {"name": name, "url": url, "format": fmt, "events": events}
    if routing_key is not None:
        target["routing_key"] = routing_key
    if secret is not None:
        target["secret"] = secret
    return target


def put_config(
    ctx: Context,
    tenant_id: str,
    project_id: str,
    targets: Sequence[Mapping[str, Any]],
    *,
    if_match: str | None = None,
) -> NotificationConfig:
    """Replace the project's notification targets (names unique; 412 when ``if_match``
    is not the current ETag)."""
    if len(targets) > MAX_TARGETS:
        raise ValidationError("targets", f"at most {MAX_TARGETS} targets per project")
    now = ctx.clock.now()
    with ctx.db.write() as tx:
        require_project(tx, tenant_id, project_id)
        current = tx.notification_config(tenant_id, project_id)
        etags.require_match(
            if_match,
            None if current is None else config_etag(current),
            "the project's notification targets",
        )
        before = {str(t["name"]): t for t in ([] if current is None else current.targets)}
        checked: list[dict[str, Any]] = []
        seen: set[str] = set()
        for index, raw in enumerate(targets):
            target = _check_target(index, raw, before)
            if target["name"] in seen:
                raise ValidationError(f"targets[{index}].name", "names must be unique")
            seen.add(target["name"])
            stored = before.get(target["name"], {}).get("secret")
            if isinstance(target.get("secret"), str) and target["secret"] != stored:
                target = secrets.seal(ctx, {**target, "type": "webhook"}, None)
                target.pop("type", None)
            checked.append(target)
        return tx.put_notification_config(tenant_id, project_id, checked, now)


# -- events -----------------------------------------------------------------------------


def emit(
    tx: Notifications,
    tenant_id: str,
    project_id: str,
    event_type: str,
    data: dict[str, Any],
    now: datetime,
    *,
    every_target: bool = False,
) -> str | None:
    """(write, in the transaction of the event's cause) Add the event to the outbox for
    each of the project's targets that wants it (``every_target``: all of them);
    returns its id, or None when no target wants it."""
    config = tx.notification_config(tenant_id, project_id)
    if config is None:
        return None
    wanted = [
        t
        for t in config.targets
        if every_target or t.get("events") is None or event_type in t["events"]
    ]
    if not wanted:
        return None
    event_id = new_id("evt", now)
    body = {
        "id": event_id,
        "type": event_type,
        "created_at": _iso(now),
        "tenant": tenant_id,
        "project": project_id,
        "data": data,
    }
    tx.enqueue_notifications(
        [
            OutboxRow(
                id=new_id("ntf", now),
                event_id=event_id,
                tenant_id=tenant_id,
                project_id=project_id,
                event_type=event_type,
                target=target,
                body=body,
                status=PENDING,
                attempts=0,
                next_attempt_at=now,
                last_error=None,
                created_at=now,
                delivered_at=None,
            )
            for target in wanted
        ]
    )
    return event_id


def trigger_doc(trigger: Trigger) -> dict[str, Any]:
    return {
        "id": trigger.id,
        "name": trigger.name,
        "agent": trigger.agent_id,
        "ref": trigger.ref,
        "consecutive_failures": trigger.consecutive_failures,
        "last_success_at": _iso(trigger.last_success_at),
        "last_failure_at": _iso(trigger.last_failure_at),
        "next_run_at": _iso(trigger.next_run_at),
        "paused": trigger.paused,
        "paused_reason": trigger.paused_reason,
        "paused_by": trigger.paused_by,
        "enabled": trigger.enabled,
        "last_error": trigger.last_error,
    }


def trigger_event(
    tx: Notifications,
    event_type: str,
    trigger: Trigger,
    now: datetime,
    **extra: Any,
) -> str | None:
    """An event about a trigger (paused, disabled, late, recovered, slots missed)."""
    data = {"trigger": trigger_doc(trigger), **extra}
    return emit(tx, trigger.tenant_id, trigger.project_id, event_type, data, now)


def invocation_failed(
    tx: Notifications, trigger: Trigger, invocation: Invocation, error: str | None, now: datetime
) -> str | None:
    data = {
        "trigger": trigger_doc(trigger),
        "invocation": {
            "id": invocation.id,
            "origin": invocation.origin,
            "scheduled_for": _iso(invocation.scheduled_for),
            "attempt": invocation.attempt,
            "error": error if error is not None else invocation.last_error,
        },
    }
    return emit(tx, trigger.tenant_id, trigger.project_id, "invocation.failed", data, now)


def send_test(ctx: Context, tenant_id: str, project_id: str) -> str:
    """Queue a ``notification.test`` event for every target of the project; 422 when
    it has none."""
    now = ctx.clock.now()
    with ctx.db.write() as tx:
        require_project(tx, tenant_id, project_id)
        data = {"message": f"a test notification from tickwork for project {project_id!r}"}
        event_id = emit(
            tx, tenant_id, project_id, "notification.test", data, now, every_target=True
        )
    if event_id is None:
        raise ValidationError(
            "targets",
            "the project has no notification targets: set them with PUT .../notifications",
        )
    return event_id


def list_deliveries(
    ctx: Context, tenant_id: str, project_id: str, before: str | None, limit: int
) -> list[OutboxRow]:
    with ctx.db.read() as tx:
        require_project(tx, tenant_id, project_id)
        return tx.list_notifications(tenant_id, project_id, before, limit)


# -- delivery ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """What one try of one outbox row sends."""

    row: OutboxRow
    url: str
    body: bytes
    secret: str | None


def render(row: OutboxRow) -> bytes:
    """The body sent for ``row``, in its target's format."""
    fmt = row.target.get("format") or "tickwork"
    body = row.body
    if fmt == "slack":
        doc: dict[str, Any] = {"text": summary(body)}
    elif fmt == "pagerduty":
        doc = pagerduty_event(body, str(row.target.get("routing_key") or ""))
    else:
        doc = body
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def summary(body: Mapping[str, Any]) -> str:
    """One line saying what happened, for chat and paging."""
    data = body.get("data") or {}
    trigger = data.get("trigger") or {}
    name = f"trigger {trigger.get('name')!r} (agent {trigger.get('agent')}, project " + (
        f"{body.get('project')})"
    )
    kind = body.get("type")
    if kind == "invocation.failed":
        error = (data.get("invocation") or {}).get("error") or "no error recorded"
        n = trigger.get("consecutive_failures")
        return clean_text(f"tickwork: {name} failed ({n} in a row): {error}", 2000)
    if kind == "trigger.paused":
        return clean_text(f"tickwork: {name} paused: {trigger.get('paused_reason')}", 2000)
    if kind == "trigger.disabled":
        return clean_text(f"tickwork: {name} disabled: {trigger.get('last_error')}", 2000)
    if kind == "slot.missed":
        return f"tickwork: {name} missed {data.get('count')} slot(s)"
    if kind == "trigger.late":
        return f"tickwork: {name} is late (since {data.get('late_since')})"
    if kind == "trigger.recovered":
        return f"tickwork: {name} recovered: its last run completed"
    return clean_text(f"tickwork: {data.get('message') or kind}", 2000)


# Events that open an incident on PagerDuty, and the one that resolves it.
_RESOLVES = {"trigger.recovered"}
_SEVERITY = {
    "invocation.failed": "error",
    "trigger.paused": "warning",
    "trigger.disabled": "error",
    "slot.missed": "warning",
    "trigger.late": "warning",
    "notification.test": "info",
}


def pagerduty_event(body: Mapping[str, Any], routing_key: str) -> dict[str, Any]:
    """An Events API v2 event: one incident per trigger (``dedup_key``), resolved by
    ``trigger.recovered``."""
    data = body.get("data") or {}
    trigger = data.get("trigger") or {}
    dedup = f"tickwork:{trigger.get('id') or body.get('id')}"
    if body.get("type") in _RESOLVES:
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup}
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup,
        "payload": {
            "summary": summary(body)[:1024],
            "source": f"tickwork/{body.get('tenant')}/{body.get('project')}",
            "severity": _SEVERITY.get(str(body.get("type")), "warning"),
            "timestamp": body.get("created_at"),
            "custom_details": {
                k: v
                for k, v in {
                    "event_id": body.get("id"),
                    "event_type": body.get("type"),
                    "trigger_id": trigger.get("id"),
                    "trigger_name": trigger.get("name"),
                    "agent": trigger.get("agent"),
                    "consecutive_failures": trigger.get("consecutive_failures"),
                    "invocation_id": (data.get("invocation") or {}).get("id"),
                }.items()
                if v is not None
            },
        },
    }


def retry_at(settings_base: float, settings_cap: float, attempts: int, now: datetime) -> datetime:
    """When to try again after ``attempts`` failed tries: the base delay doubling, up to
    the cap, with up to 30% jitter."""
    delay = min(settings_cap, settings_base * 2 ** max(0, attempts - 1))
    return now + timedelta(seconds=delay * (1 + random.random() * 0.3))


def claim_deliveries(ctx: Context, limit: int) -> list[Delivery]:
    """Claim due deliveries (each under a lease of the delivery timeout and a margin);
    a row whose secret cannot be had fails at once."""
    now = ctx.clock.now()
    lease = timedelta(seconds=ctx.settings.notification_timeout_seconds * 2 + 5)
    with ctx.db.write() as tx:
        rows = tx.claim_notifications(now, limit, now + lease)
    deliveries = []
    for row in rows:
        try:
            secret = secrets.reveal(row.target.get("secret"), ctx.settings.secret_keys)
        except Exception as exc:
            finish_delivery(ctx, row, error=f"cannot sign: {exc}", permanent=True)
            continue
        deliveries.append(Delivery(row, str(row.target["url"]), render(row), secret))
    return deliveries


def finish_delivery(
    ctx: Context, row: OutboxRow, *, error: str | None, permanent: bool = False
) -> str:
    """Record how a try ended: delivered (no error), retried later, or failed for good
    (``permanent``, or out of tries). Returns the row's new status."""
    now = ctx.clock.now()
    s = ctx.settings
    if error is None:
        status, next_at, delivered = DELIVERED, now, now
    elif permanent or row.attempts >= s.notification_max_attempts:
        status, next_at, delivered = FAILED, now, None
    else:
        status, delivered = PENDING, None
        next_at = retry_at(
            s.notification_retry_seconds, s.notification_max_retry_seconds, row.attempts, now
        )
    with ctx.db.write() as tx:
        tx.finish_notification(
            row.id,
            row.attempts,
            status=status,
            next_attempt_at=next_at,
            last_error=None if error is None else clean_text(error, 1000),
            delivered_at=delivered,
        )
    return status


def next_delivery_at(ctx: Context) -> datetime | None:
    with ctx.db.read() as tx:
        return tx.earliest_notification()
