"""The webhook target: deliver an attempt as a signed JSON ``POST``.

Wire format
-----------
The body is a JSON object::

    {"invocation_id": "...", "idempotency_key": "sched:...", "trigger_id": "...",
     "trigger_name": "...", "tenant": "...", "project": "...", "agent": "...",
     "ref": {"name": "main", "revision": 3}, "scheduled_for": "2026-03-08T07:00:00Z",
     "attempt": 1, "origin": "schedule", "message": "...", "payload": {...},
     "timezone": "Europe/Berlin"}

with the headers ``Content-Type: application/json``, ``Idempotency-Key``, ``User-Agent:
tickwork/<version>``, ``X-Tickwork-Timestamp`` (unix seconds), ``X-Tickwork-Timezone``,
``X-Tickwork-Scheduled-For``, ``X-Tickwork-Invocation-Id``, ``X-Tickwork-Attempt`` and,
when the agent has a secret, ``X-Tickwork-Signature: v1=<hex>``: HMAC-SHA256, keyed with
the secret, over ``f"{timestamp}.{raw body}"``. Receivers check it with
:func:`verify_signature`, passing the raw body bytes exactly as received.

Outcome: 2xx is success (a JSON object answer may carry ``conversation_id``); 408, 429,
5xx, timeouts and network errors are transient; any other 4xx, and every 3xx (redirects
are never followed), is permanent.

Destination safety
------------------
Unless the operator allows private targets, a destination is refused when its host is,
or resolves to, an address that is not publicly routable (private, loopback, link-local,
unspecified, multicast, reserved; IPv4, IPv6, and IPv4 embedded in IPv6). Every address
the name resolves to is checked, so a name with one public and one private record is
refused.

DNS rebinding: a name can resolve to a public address when checked and to a private one
when connected. For ``http`` the request is sent to the address that was checked (the URL
carries the IP, the ``Host`` header carries the name), so the check and the connection
cannot disagree. For ``https`` the request goes to the name and the connection resolves it
again; the certificate check (hostname verification against the name) is what stops a
rebound connection, because an internal server cannot present a valid certificate for the
attacker's name. Pinning ``https`` to the IP would need the connection pool to key
connections by TLS server name as well as address, which httpx's pool does not: a pooled
connection verified for one name could then carry a request for another name on the same
IP. Consequence: with certificate verification disabled on the client, ``https`` targets
are not protected against rebinding.
"""

from __future__ import annotations

import asyncio
import codecs
import hashlib
import hmac
import ipaddress
import json
import re
import socket
from datetime import UTC, datetime
from importlib import metadata
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from tickwork.clock import Clock
from tickwork.errors import PermanentError, TransientError, ValidationError
from tickwork.targets.base import TargetCall, TargetResult

__all__ = [
    "ALLOW_PRIVATE_ENV",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "MAX_URL_LENGTH",
    "SIGNATURE_TOLERANCE_SECONDS",
    "WebhookTarget",
    "is_private_address",
    "signature_header",
    "validate_webhook_url",
    "verify_signature",
]

DEFAULT_MAX_RESPONSE_BYTES: Final = 64 * 1024
MAX_URL_LENGTH: Final = 2048
SIGNATURE_TOLERANCE_SECONDS: Final = 300
ALLOW_PRIVATE_ENV: Final = "TICKWORK_ALLOW_PRIVATE_TARGETS"

_URL_FIELD: Final = "target.url"
# Error bodies only feed an error message, so far less of them is read.
_ERROR_BODY_BYTES: Final = 1024
_EXCERPT_CHARS: Final = 200
_HOST_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
# NAT64 (RFC 6052): a DNS64 resolver answers IPv4-only names with these, so they are
# judged by the IPv4 address they embed.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _package_version() -> str:
    try:
        return metadata.version("tickwork")
    except metadata.PackageNotFoundError:
        return "0+unknown"


USER_AGENT: Final = f"tickwork/{_package_version()}"


# --- URL validation (API time) ---------------------------------------------------------


def validate_webhook_url(url: str) -> str:
    """Check a webhook URL when an agent is defined; return it unchanged.

    Accepts absolute ``http``/``https`` URLs with a host, at most 2048 characters, with no
    credentials, whitespace or control characters. Raises
    :class:`tickwork.errors.ValidationError` on field ``target.url``. Whether the host is
    private is decided at call time, when the name is resolved.
    """
    if not isinstance(url, str) or not url:
        raise ValidationError(_URL_FIELD, "a webhook URL is required")
    if len(url) > MAX_URL_LENGTH:
        raise ValidationError(_URL_FIELD, f"must be at most {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise ValidationError(_URL_FIELD, "must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError as exc:
        raise ValidationError(_URL_FIELD, f"is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        shown = f" (got {parts.scheme!r})" if parts.scheme else ""
        raise ValidationError(_URL_FIELD, f"must be an absolute http or https URL{shown}")
    if "@" in parts.netloc:
        raise ValidationError(
            _URL_FIELD,
            "must not contain credentials; the agent's secret signs every request instead",
        )
    if not host:
        raise ValidationError(_URL_FIELD, "must include a host")
    if not _is_valid_host(host):
        raise ValidationError(_URL_FIELD, f"has an invalid host {host!r}")
    if port == 0:
        raise ValidationError(_URL_FIELD, "has an invalid port 0")
    try:
        httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValidationError(_URL_FIELD, f"is not a valid URL ({exc})") from None
    return url


def _is_valid_host(host: str) -> bool:
    if _parse_ip(host) is not None:
        return True
    try:
        ascii_host = host.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = ascii_host.split(".")
    return len(ascii_host) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels)


def _parse_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


# --- signatures ------------------------------------------------------------------------


def signature_header(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-Tickwork-Signature`` value for ``body`` sent at ``timestamp``."""
    message = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return f"v1={digest}"


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
    header or timestamp; returns False.
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


# --- destination policy ----------------------------------------------------------------


def is_private_address(ip: IPAddress) -> bool:
    """True when ``ip`` is not a publicly routable unicast address.

    Covers private, loopback, link-local, unspecified, multicast, reserved and other
    non-global ranges (such as 100.64.0.0/10), and IPv4 addresses embedded in IPv6:
    IPv4-mapped and NAT64 addresses are judged by the IPv4 address they carry, and a 6to4
    address is refused when the IPv4 address it embeds is.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return is_private_address(ip.ipv4_mapped)
        if ip in _NAT64:
            return is_private_address(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.sixtofour is not None and is_private_address(ip.sixtofour):
            return True
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_unspecified
        or ip.is_multicast
        or ip.is_reserved
        or not ip.is_global
    )


def _refusal(host: str, ip: IPAddress) -> PermanentError:
    shown = host if _parse_ip(host) is not None else f"{host} ({ip})"
    return PermanentError(
        f"webhook destination {shown} is a private or loopback address; "
        f"set {ALLOW_PRIVATE_ENV}=1 to allow it"
    )


# --- the target ------------------------------------------------------------------------


class WebhookTarget:
    """POST each attempt to ``url``; see the module docstring for the contract.

    ``client`` is shared and owned by the caller; its timeouts, limits and TLS settings
    apply. Redirects are never followed whatever the client's setting, and the client's
    cookie jar is never sent (webhooks of different tenants share the client).
    """

    def __init__(
        self,
        url: str,
        secret: str | None,
        client: httpx.AsyncClient,
        clock: Clock,
        allow_private: bool,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        if max_response_bytes < 0:
            raise ValueError("max_response_bytes must not be negative")
        self._url = url
        # An empty secret signs nothing useful; treat it as no secret.
        self._secret = secret or None
        self._client = client
        self._clock = clock
        self._allow_private = allow_private
        self._max_response_bytes = max_response_bytes

    async def call(self, call: TargetCall) -> TargetResult:
        try:
            url = httpx.URL(validate_webhook_url(self._url))
        except ValidationError as exc:
            raise PermanentError(f"webhook URL is invalid: {exc.message}") from exc
        body = _encode_body(call)
        headers = self._headers(call, body)
        destinations = await self._destinations(url)
        for index, (destination, extra_headers) in enumerate(destinations):
            request = self._client.build_request(
                "POST", destination, content=body, headers={**headers, **extra_headers}
            )
            # The client's jar holds cookies set by other tenants' endpoints.
            request.headers.pop("Cookie", None)
            try:
                response = await self._client.send(request, stream=True, follow_redirects=False)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # Nothing was sent, so the next checked address is safe to try.
                if index + 1 < len(destinations):
                    continue
                raise TransientError(f"webhook connection failed: {_describe(exc)}") from exc
            except httpx.HTTPError as exc:
                raise TransientError(f"webhook request failed: {_describe(exc)}") from exc
            try:
                return await self._outcome(response)
            except httpx.HTTPError as exc:
                # Includes a 2xx whose body broke off: the attempt did not finish cleanly,
                # and the retry carries the same idempotency key.
                raise TransientError(f"webhook response failed: {_describe(exc)}") from exc
            finally:
                await response.aclose()
        raise AssertionError("unreachable: there is always at least one destination")

    def _headers(self, call: TargetCall, body: bytes) -> dict[str, str]:
        timestamp = str(int(self._clock.now().timestamp()))
        headers = {
            "Content-Type": "application/json",
            # A compressed answer could inflate far past the cap in a single chunk.
            "Accept-Encoding": "identity",
            "User-Agent": USER_AGENT,
            "Idempotency-Key": call.idempotency_key,
            "X-Tickwork-Timestamp": timestamp,
            "X-Tickwork-Timezone": call.timezone,
            "X-Tickwork-Scheduled-For": _iso_utc(call.scheduled_for),
            "X-Tickwork-Invocation-Id": call.invocation_id,
            "X-Tickwork-Attempt": str(call.attempt),
        }
        if self._secret is not None:
            headers["X-Tickwork-Signature"] = signature_header(self._secret, timestamp, body)
        return headers

    async def _destinations(self, url: httpx.URL) -> list[tuple[httpx.URL, dict[str, str]]]:
        """Where to send the request, after refusing private destinations."""
        if self._allow_private:
            return [(url, {})]
        host = url.raw_host.decode("ascii")
        literal = _parse_ip(host)
        if literal is not None:
            if is_private_address(literal):
                raise _refusal(host, literal)
            return [(url, {})]
        addresses = await _resolve(host, url.port or (443 if url.scheme == "https" else 80))
        for ip in addresses:
            if is_private_address(ip):
                raise _refusal(host, ip)
        if url.scheme == "https":
            # Not pinned; the certificate check guards against rebinding (module docstring).
            return [(url, {})]
        host_header = url.netloc.decode("ascii")
        return [(url.copy_with(host=str(ip)), {"Host": host_header}) for ip in addresses]

    async def _outcome(self, response: httpx.Response) -> TargetResult:
        status = response.status_code
        if 300 <= status < 400:
            location = response.headers.get("Location")
            where = f"to {location}" if location else "(no Location header)"
            raise PermanentError(
                f"webhook answered {status} redirecting {where}; redirects are not "
                "followed, so point the agent at the final URL"
            )
        if 200 <= status < 300:
            data, truncated = await _read_capped(response, self._max_response_bytes)
            return TargetResult(
                conversation_id=None if truncated else _conversation_id(data),
                status_code=status,
                response=_text(data, self._max_response_bytes, truncated),
            )
        data, truncated = await _read_capped(response, _ERROR_BODY_BYTES)
        excerpt = " ".join(_text(data, _ERROR_BODY_BYTES, truncated).split())
        if len(excerpt) > _EXCERPT_CHARS:
            excerpt = excerpt[:_EXCERPT_CHARS] + "…"
        detail = f"webhook answered {status}" + (f": {excerpt}" if excerpt else "")
        if 400 <= status < 500 and status not in (408, 429):
            raise PermanentError(detail)
        raise TransientError(detail)


async def _resolve(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise TransientError(f"webhook host {host} could not be resolved: {exc}") from exc
    addresses: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise TransientError(f"webhook host {host} resolved to no address")
    return addresses


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


async def _read_capped(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the body, and whether there was more (never buffers it)."""
    buffer = bytearray()
    async for chunk in response.aiter_bytes():
        buffer += chunk
        if len(buffer) > limit:
            return bytes(buffer[:limit]), True
    return bytes(buffer), False


def _text(data: bytes, limit: int, truncated: bool) -> str:
    # A cut body may end inside a UTF-8 sequence: a non-final decode drops that tail.
    text = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(data, final=not truncated)
    encoded = text.encode("utf-8")
    if len(encoded) > limit:  # replacement characters can be longer than the bytes they replace
        text = encoded[:limit].decode("utf-8", errors="ignore")
    return text


def _conversation_id(data: bytes) -> str | None:
    try:
        document = json.loads(data)
    except ValueError:
        return None
    if isinstance(document, dict):
        value = document.get("conversation_id")
        if isinstance(value, str) and value:
            return value
    return None


def _describe(exc: Exception) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
