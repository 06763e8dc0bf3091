"""The notification sender (SPEC §11): delivers the outbox's events, at least once.

It runs beside the worker pool on its own task and its own concurrency, so a slow or
failing receiver never delays an attempt, and dispatch never waits for it. Each try
claims its rows under a lease in the outbox (a sender that dies leaves them to be tried
again when the lease ends); an answer other than 2xx, a timeout or a network error is
retried with a doubling delay (``TICKWORK_NOTIFICATION_RETRY_SECONDS`` up to
``TICKWORK_NOTIFICATION_MAX_RETRY_SECONDS``) until ``TICKWORK_NOTIFICATION_MAX_ATTEMPTS``
tries; a destination the egress policy refuses fails at once.

Each request is signed like a webhook target's call (SPEC §6, §15): ``webhook-id`` is
the event id (the same on every try, and for every target of one event),
``webhook-timestamp``, ``webhook-signature`` (Standard Webhooks) and
``X-Tickwork-Signature`` when the target has a secret, and ``X-Tickwork-Event`` names
the event type.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tickwork.clock import pause
from tickwork.errors import TransientError
from tickwork.logging import get_logger
from tickwork.services import notifications
from tickwork.services.context import Context
from tickwork.services.notifications import Delivery
from tickwork.targets.egress import DestinationRefused
from tickwork.targets.pinning import EgressClient
from tickwork.targets.webhook import USER_AGENT, signature_header, standard_signature

log = get_logger("tickwork.notifications")

BATCH = 50
ERROR_BACKOFF_SECONDS = (0.5, 1, 2, 5, 10)
_ERROR_BODY_BYTES = 512


def headers_for(delivery: Delivery, timestamp: str) -> dict[str, str]:
    """The request headers of one try, signed when the target has a secret."""
    row = delivery.row
    headers = {
        "Content-Type": "application/json",
        "Accept-Encoding": "identity",
        "User-Agent": USER_AGENT,
        "Idempotency-Key": row.event_id,
        "X-Tickwork-Event": row.event_type,
        "X-Tickwork-Event-Id": row.event_id,
        "X-Tickwork-Timestamp": timestamp,
        "X-Tickwork-Attempt": str(row.attempts),
        "webhook-id": row.event_id,
        "webhook-timestamp": timestamp,
    }
    if delivery.secret:
        headers["X-Tickwork-Signature"] = signature_header(
            delivery.secret, timestamp, delivery.body
        )
        headers["webhook-signature"] = standard_signature(
            delivery.secret, row.event_id, timestamp, delivery.body
        )
    return headers


class NotificationSender:
    """Delivers due outbox rows until stopped; ``wake`` makes it look again at once."""

    def __init__(self, ctx: Context, client: EgressClient, wake: asyncio.Event | None = None):
        self.ctx = ctx
        self.client = client
        self.wake = wake or asyncio.Event()
        self.sent = 0

    async def run(self, stop: asyncio.Event) -> None:
        failures = 0
        clock = self.ctx.clock
        while not stop.is_set():
            self.wake.clear()
            try:
                handled = await self.run_once()
                failures = 0
            except Exception:  # keep going through a database outage
                delay = ERROR_BACKOFF_SECONDS[min(failures, len(ERROR_BACKOFF_SECONDS) - 1)]
                failures += 1
                log.exception("delivering notifications failed; retrying", retry_in_seconds=delay)
                await pause(delay)
                continue
            if handled == BATCH:
                continue
            now = clock.now()
            deadline = now + timedelta(seconds=self.ctx.settings.notification_poll_seconds)
            try:
                earliest = await asyncio.to_thread(notifications.next_delivery_at, self.ctx)
            except Exception:  # the next round reports the outage
                earliest = None
            if earliest is not None:
                deadline = max(now, min(deadline, earliest))
            if stop.is_set():
                break
            await clock.sleep_until(deadline, self.wake)

    async def run_once(self) -> int:
        """Claim what is due now and try each (for the loop, tests and benchmarks);
        returns how many rows were tried."""
        deliveries = await asyncio.to_thread(notifications.claim_deliveries, self.ctx, BATCH)
        await asyncio.gather(*(self._send(d) for d in deliveries))
        return len(deliveries)

    async def _send(self, delivery: Delivery) -> None:
        row = delivery.row
        timestamp = str(int(self.ctx.clock.now().timestamp()))
        error: str | None = None
        permanent = False
        try:
            answer = await asyncio.wait_for(
                self.client.post(
                    delivery.url,
                    delivery.body,
                    headers_for(delivery, timestamp),
                    lambda status: None if 200 <= status < 300 else _ERROR_BODY_BYTES,
                ),
                timeout=self.ctx.settings.notification_timeout_seconds,
            )
            if not 200 <= answer.status < 300:
                excerpt = " ".join(answer.body.decode("utf-8", "replace").split())[:200]
                error = f"answered {answer.status}" + (f": {excerpt}" if excerpt else "")
        except DestinationRefused as exc:
            error, permanent = str(exc), True
        except TimeoutError:
            error = f"no answer within {self.ctx.settings.notification_timeout_seconds:g} s"
        except TransientError as exc:
            error = str(exc)
        except Exception as exc:  # never let one delivery stop the others
            error = f"{type(exc).__name__}: {exc}"
        try:
            status = await asyncio.to_thread(
                notifications.finish_delivery, self.ctx, row, error=error, permanent=permanent
            )
        except Exception:  # the lease runs out and the row is tried again
            log.exception("recording a delivery failed", notification=row.id)
            return
        fields = {
            "tenant": row.tenant_id,
            "project": row.project_id,
            "event_id": row.event_id,
            "event_type": row.event_type,
            "target": row.target.get("name"),
            "attempt": row.attempts,
        }
        if error is None:
            self.sent += 1
            log.info("notification delivered", **fields)
        elif status == notifications.FAILED:
            log.error("notification not delivered; giving up", error=error, **fields)
        else:
            log.warning("notification not delivered; retrying", error=error, **fields)
