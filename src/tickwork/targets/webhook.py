"""The webhook target: deliver an attempt as a signed JSON ``POST``.

Wire format
-----------
The body is a JSON object::

    {"invocation_id": "...", "idempotency_key": "sched:...", "trigger_id": "...",
     "trigger_name": "...", "tenant": "...", "project": "...", "agent": "...",
     "ref": {"name": "main", "revision": 3}, "scheduled_for": "2026-03-08T07:00:00Z",
     "attempt": 1, "origin": "schedule", "message": "...", "payload": {...},
     "timezone": "Europe/Berlin", "conversation_id": null, "run_as": null,
     "previous": {"id": "...", "scheduled_for": "...", "status": "completed",
                  "conversation_id": "...", "result": {...}}}

(``previous``: the trigger's previous completed run, or null; ``conversation_id``: with
``conversation: continue``, the previous run's conversation id; ``run_as``: the
trigger's ``run_as``, also sent as ``X-Tickwork-Run-As``; SPEC §13),

with the headers ``Content-Type: application/json``, ``Idempotency-Key``, ``User-Agent:
tickwork/<version>``, ``X-Tickwork-Timestamp`` (unix seconds), ``X-Tickwork-Timezone``,
``X-Tickwork-Scheduled-For``, ``X-Tickwork-Invocation-Id``, ``X-Tickwork-Attempt``, and
the Standard Webhooks headers ``webhook-id`` (the invocation id: the same on every
attempt) and ``webhook-timestamp`` (the same instant as ``X-Tickwork-Timestamp``); with
tracing on (``tickwork[otel]``), ``traceparent`` names the attempt's span.

When the agent has a secret, each call carries two signatures, both HMAC-SHA256 keyed
with :func:`tickwork.domain.target_spec.signing_key` of the secret (``whsec_<base64>``
decoded, any other secret as its UTF-8 bytes):

* ``X-Tickwork-Signature: v1=<hex>`` over ``f"{timestamp}.{raw body}"``, checked by
  :func:`verify_signature`;
* ``webhook-signature: v1,<base64>`` over ``f"{webhook-id}.{timestamp}.{raw body}"``,
  the Standard Webhooks scheme, checked by any of its libraries.

docs/webhooks.md documents the receiving side in full.

Outcome: 2xx is success (a JSON object answer may carry ``conversation_id``, and
``usage`` with token counts for the trigger's ``daily_token_budget``); 408, 429,
5xx, timeouts and network errors are transient; any other 4xx, and every 3xx (redirects
are never followed), is permanent.

Destination safety
------------------
The client must come from :func:`tickwork.targets.pinning.egress_client`: it checks
every destination against the operator's policy (:mod:`tickwork.targets.egress`: cloud
metadata always refused, private networks only where ``TICKWORK_ALLOWED_TARGET_NETWORKS``
allows them) when it opens the connection, and connects only to the addresses it checked.
That holds for ``https`` as for ``http``: the TCP connection is pinned to a checked
address while the URL, ``Host``, SNI and certificate verification keep the name, so a
name that resolves to a public address at the check and to a private one a moment later
(DNS rebinding) never reaches the private one. Refusals and connection errors never say
what a name resolves to.

Answers are read as raw bytes: ``Accept-Encoding: identity`` is sent and a
``Content-Encoding`` the server applies anyway is never decoded, so a small compressed
answer cannot inflate in memory; it is stored as the opaque bytes it is, under the cap.
Cookies are neither stored nor sent.
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import hmac
import json
from datetime import UTC, datetime
from functools import lru_cache
from importlib import metadata
from typing import Any, Final

from yarl import URL

from tickwork import tracing
from tickwork.clock import Clock
from tickwork.domain.retry import is_transient_http_status
from tickwork.domain.target_spec import MAX_URL, signing_key
from tickwork.domain.target_spec import check_webhook_url as validate_webhook_url
from tickwork.errors import PermanentError, TransientError, ValidationError
from tickwork.targets.base import TargetCall, TargetResult
from tickwork.targets.egress import is_private_address
from tickwork.targets.pinning import Answer, EgressClient, parse_url

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "MAX_URL_LENGTH",
    "SIGNATURE_TOLERANCE_SECONDS",
    "WebhookTarget",
    "is_private_address",
    "signature_header",
    "standard_signature",
    "validate_webhook_url",
    "verify_signature",
]

DEFAULT_MAX_RESPONSE_BYTES: Final = 64 * 1024
MAX_URL_LENGTH: Final = MAX_URL
SIGNATURE_TOLERANCE_SECONDS: Final = 300

# Error bodies only feed an error message, so far less of them is read.
_ERROR_BODY_BYTES: Final = 1024
_EXCERPT_CHARS: Final = 200


def _package_version() -> str:
    try:
        return metadata.version("tickwork")
    except metadata.PackageNotFoundError:
        return "0+unknown"


USER_AGENT: Final = f"tickwork/{_package_version()}"


@lru_cache(maxsize=4096)
def _call_url(url: str) -> URL:
    """``url`` checked by the one webhook URL rule and parsed as the transport sends it.

    A target's URL is checked before every call (it may predate a stricter check); the
    check and the parse are made once per URL and the parsed URL goes to the client, so
    a call neither checks nor parses its URL again."""
    validate_webhook_url(url)
    return parse_url(url)


# --- signatures ------------------------------------------------------------------------


def signature_header(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-Tickwork-Signature`` value for ``body`` sent at ``timestamp``."""
    message = f"{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), message, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def standard_signature(secret: str, message_id: str, timestamp: int | str, body: bytes) -> str:
    """The Standard Webhooks ``webhook-signature`` value: ``v1,`` and the base64
    HMAC-SHA256 of ``f"{message_id}.{timestamp}.{body}"``."""
    message = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify_signature(
    secret: str,
    timestamp: str | int,
    body: bytes | str,
    header: str,
    now: datetime | float,
    tolerance: float = SIGNATURE_TOLERANCE_SECONDS,
) -> bool:
    """Check a request's signature, for code that receives tickwork webhooks.

    ``timestamp`` is the ``X-Tickwork-Timestamp`` header, ``body`` the raw request body
    (bytes exactly as received; a ``str`` is encoded as UTF-8), ``header`` the
    ``X-Tickwork-Signature`` header, ``now`` the receiver's current time (an aware
    datetime or unix seconds). Returns True only when some ``v1=`` entry of ``header``
    (entries may be comma-separated) is the HMAC-SHA256 of ``f"{timestamp}.{body}"``
    under ``secret`` and the timestamp is within ``tolerance`` seconds of ``now``, which
    bounds how long a captured request can be replayed. Never raises on a malformed
    header or timestamp; returns False. A ``whsec_`` secret that is not valid base64
    raises ValueError.
    """
    stamp = str(timestamp).strip()
    try:
        sent_at = int(stamp)
    except ValueError:
        return False
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("verify_signature needs an aware datetime for now")
        now_seconds = now.timestamp()
    else:
        now_seconds = float(now)
    if abs(now_seconds - sent_at) > tolerance:
        return False
    raw = body.encode("utf-8") if isinstance(body, str) else body
    expected = signature_header(secret, stamp, raw).encode("ascii")
    candidates = [part.strip() for part in header.split(",")]
    # Compare against every entry (no early exit) so timing says nothing about which.
    matched = False
    for candidate in candidates:
        if candidate.startswith("v1="):
            matched |= hmac.compare_digest(expected, candidate.encode("utf-8", "replace"))
    return matched


# --- the target ------------------------------------------------------------------------


class WebhookTarget:
    """POST each attempt to ``url``; see the module docstring for the contract.

    ``client`` is shared and owned by the caller, and comes from
    :func:`tickwork.targets.pinning.egress_client` (which enforces the destination
    policy); its timeouts and limits apply. Redirects are never followed, and no
    ``Cookie`` header is ever sent.
    """

    def __init__(
        self,
        url: str,
        secret: str | None,
        client: EgressClient,
        clock: Clock,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        if max_response_bytes < 0:
            raise ValueError("max_response_bytes must not be negative")
        self._url = url
        # An empty secret signs nothing useful; treat it as no secret.
        self._secret = secret or None
        self._client = client
        self._clock = clock
        self._max_response_bytes = max_response_bytes

    async def call(self, call: TargetCall) -> TargetResult:
        try:
            url = _call_url(self._url)
        except ValidationError as exc:
            raise PermanentError(f"webhook URL is invalid: {exc.message}") from exc
        except ValueError as exc:  # accepted by the rule, yet not sendable: never expected
            raise PermanentError(f"webhook URL is invalid: {exc}") from exc
        body = _encode_body(call)
        # The destination is checked (and refused with a PermanentError) when the
        # client opens the connection; transport failures come back as TransientError:
        # see tickwork.targets.pinning.
        answer = await self._client.post(url, body, self._headers(call, body), self._read_limit)
        return self._outcome(answer)

    def _headers(self, call: TargetCall, body: bytes) -> dict[str, str]:
        timestamp = str(int(self._clock.now().timestamp()))
        headers = {
            "Content-Type": "application/json",
            # Asked for, but not relied on: answers are read raw and never decoded.
            "Accept-Encoding": "identity",
            "User-Agent": USER_AGENT,
            "Idempotency-Key": call.idempotency_key,
            "X-Tickwork-Timestamp": timestamp,
            "X-Tickwork-Timezone": call.timezone,
            "X-Tickwork-Scheduled-For": _iso_utc(call.scheduled_for),
            "X-Tickwork-Invocation-Id": call.invocation_id,
            "X-Tickwork-Attempt": str(call.attempt),
            # Standard Webhooks: one id per message, kept across its retries.
            "webhook-id": call.invocation_id,
            "webhook-timestamp": timestamp,
        }
        if call.run_as is not None:
            headers["X-Tickwork-Run-As"] = call.run_as
        # W3C Trace Context of the attempt's span, when tracing is on (tickwork[otel]).
        tracing.inject(headers)
        if self._secret is not None:
            try:
                headers["X-Tickwork-Signature"] = signature_header(self._secret, timestamp, body)
                headers["webhook-signature"] = standard_signature(
                    self._secret, call.invocation_id, timestamp, body
                )
            except ValueError as exc:  # a whsec_ secret from the environment, not base64
                raise PermanentError(f"the agent's webhook secret cannot sign: {exc}") from None
        return headers

    def _read_limit(self, status: int) -> int | None:
        """How much of an answer to read: none of a redirect, less of an error."""
        if 300 <= status < 400:
            return None
        return self._max_response_bytes if 200 <= status < 300 else _ERROR_BODY_BYTES

    def _outcome(self, answer: Answer) -> TargetResult:
        status = answer.status
        if 300 <= status < 400:
            location = answer.location
            where = f"to {location}" if location else "(no Location header)"
            raise PermanentError(
                f"webhook answered {status} redirecting {where}; redirects are not "
                "followed, so point the agent at the final URL"
            )
        data, truncated = answer.body, answer.truncated
        if 200 <= status < 300:
            document = None if truncated else _json_object(data)
            return TargetResult(
                conversation_id=_conversation_id(document),
                status_code=status,
                response=_text(data, self._max_response_bytes, truncated),
                usage=_usage(document),
            )
        excerpt = " ".join(_text(data, _ERROR_BODY_BYTES, truncated).split())
        if len(excerpt) > _EXCERPT_CHARS:
            excerpt = excerpt[:_EXCERPT_CHARS] + "…"
        detail = f"webhook answered {status}" + (f": {excerpt}" if excerpt else "")
        if is_transient_http_status(status):
            raise TransientError(detail)
        raise PermanentError(detail)


def _encode_body(call: TargetCall) -> bytes:
    document: dict[str, Any] = {
        "invocation_id": call.invocation_id,
        "idempotency_key": call.idempotency_key,
        "trigger_id": call.trigger_id,
        "trigger_name": call.trigger_name,
        "tenant": call.tenant,
        "project": call.project,
        "agent": call.agent,
        "ref": {"name": call.ref_name, "revision": call.ref_revision},
        "scheduled_for": _iso_utc(call.scheduled_for),
        "attempt": call.attempt,
        "origin": call.origin,
        "message": call.message,
        "payload": call.payload,
        "timezone": call.timezone,
        "conversation_id": call.conversation_id,
        "run_as": call.run_as,
        "previous": None if call.previous is None else call.previous.to_doc(),
    }
    try:
        text = json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise PermanentError(f"webhook body is not valid JSON: {exc}") from exc
    return text.encode("utf-8")


def _iso_utc(instant: datetime) -> str:
    if instant.tzinfo is None:
        raise PermanentError("scheduled_for must be an aware datetime")
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _text(data: bytes, limit: int, truncated: bool) -> str:
    # A cut body may end inside a UTF-8 sequence: a non-final decode drops that tail.
    text = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(data, final=not truncated)
    encoded = text.encode("utf-8")
    if len(encoded) > limit:  # replacement characters can be longer than the bytes they replace
        text = encoded[:limit].decode("utf-8", errors="ignore")
    return text


def _json_object(data: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(data)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _conversation_id(answer: dict[str, Any] | None) -> str | None:
    value = None if answer is None else answer.get("conversation_id")
    return value if isinstance(value, str) and value else None


def _usage(answer: dict[str, Any] | None) -> dict[str, Any] | None:
    """An answer's ``usage`` object (token counts, for the trigger's budget)."""
    value = None if answer is None else answer.get("usage")
    return value if isinstance(value, dict) else None
