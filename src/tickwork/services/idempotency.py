"""Safe retries of creating requests (SPEC §10): an ``Idempotency-Key`` makes a POST
that creates something happen at most once per tenant and key within 24 hours.

The first request with a key claims it (in a transaction of its own), does its work and
stores its answer; a request with the same key and the same method, path, query and
body within 24 hours gets that answer again, marked ``Idempotent-Replayed: true``; one
with the same key and anything else different is refused (422). Keys are scoped to the
tenant of the API key: the same key sent by another tenant is another key, and never
reaches this tenant's answer.

While the first request runs, another with its key is answered 409 with
``Retry-After``. A request that fails (any error answer) keeps no answer and gives up
its key, so it can be sent again as it is. A first request whose process stopped after
its work but before its answer was stored leaves the key claimed without an answer:
after :data:`IN_FLIGHT` a retry is told that the outcome is unknown (409) rather than
risk doing the work twice.

Expired keys are deleted as new ones are claimed, a bounded batch at a time, so the
table holds about a day of keys whatever the traffic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from tickwork.errors import Conflict, NotFound, ValidationError
from tickwork.services.context import Context

TTL = timedelta(hours=24)
IN_FLIGHT = timedelta(minutes=5)
PRUNE_BATCH = 100
HEADER = "Idempotency-Key"
FIELD = "header.Idempotency-Key"
MAX_KEY = 255
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
_KEY = re.compile(KEY_PATTERN)


class InProgress(Conflict):
    """A request with this key is being handled now (409, ``Retry-After``)."""

    retry_after = 1


@dataclass(frozen=True)
class Request:
    """What identifies a request sent with a key: the key, and a digest of its method,
    path, query and body (see :mod:`tickwork.api.idempotency`)."""

    key: str
    fingerprint: str
    method: str
    path: str


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: str


def check_key(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise ValidationError(
            FIELD, f"must be 1-{MAX_KEY} printable ASCII characters without spaces"
        )
    return key


def begin(ctx: Context, tenant_id: str, request: Request) -> Answer | None:
    """Claim the key for ``request``: None when the caller is to do the work (and then
    :func:`finish` or :func:`abandon`), else the stored answer to send again."""
    now = ctx.clock.now()
    with ctx.db.write() as tx:
        if not tx.tenant_exists(tenant_id):
            raise NotFound(f"tenant {tenant_id!r} not found")
        tx.prune_idempotency_keys(now, PRUNE_BATCH)
        seen = tx.claim_idempotency_key(
            tenant_id,
            request.key,
            fingerprint=request.fingerprint,
            method=request.method,
            path=request.path,
            now=now,
            expires_at=now + TTL,
        )
    if seen is None:
        return None
    if seen.fingerprint != request.fingerprint:
        raise ValidationError(
            FIELD,
            f"was sent at {seen.created_at.isoformat()} with another request "
            f"({seen.method} {seen.path}, or another query or body); a key names one request "
            "for 24 hours: send a new key with a new request",
        )
    if seen.status is None:
        if now - seen.created_at < IN_FLIGHT:
            raise InProgress(
                "the first request with this Idempotency-Key is still being handled; send it "
                "again in a moment to get its answer"
            )
        raise Conflict(
            "the first request with this Idempotency-Key did not record its answer (its "
            "server stopped while handling it), so whether it took effect is unknown: look "
            "before sending it again with a new key"
        )
    return Answer(seen.status, dict(seen.headers or {}), seen.body or "")


def finish(ctx: Context, tenant_id: str, request: Request, answer: Answer) -> None:
    with ctx.db.write() as tx:
        tx.complete_idempotency_key(
            tenant_id, request.key, answer.status, answer.headers, answer.body
        )


def abandon(ctx: Context, tenant_id: str, request: Request) -> None:
    with ctx.db.write() as tx:
        tx.release_idempotency_key(tenant_id, request.key)
