"""tickwork's egress guarantees for the agent SDKs' HTTP clients (SPEC §9 "Egress").

The ``a2a-sdk`` and ``openai`` clients send their requests through an
``httpx.AsyncClient``. :func:`guarded_http_client` gives them one whose transport is
:class:`GuardedTransport`: every request goes out through tickwork's own
:class:`~tickwork.targets.pinning.EgressClient`, the transport webhooks use, so the SDKs
get exactly the webhooks' guarantees:

- each connection goes to an address the egress policy checked when the connection was
  opened, and to nothing else (pinning, for http and https alike; cloud metadata always
  refused; private networks only where ``TICKWORK_ALLOWED_TARGET_NETWORKS`` allows them);
- redirects are never followed: a 3xx answer fails the call, naming where it pointed;
- ``Accept-Encoding: identity`` is sent and an answer that is compressed anyway is
  refused, never decoded (a small compressed body cannot inflate in memory);
- at most ``max_response_bytes`` of an answer are read (more fails the call);
- no cookie is ever kept: ``Set-Cookie`` never reaches the SDK's client and a
  ``Cookie`` header is never sent;
- no proxy or other setting comes from the environment;
- with ``allowed_headers``, only the request headers named there leave, beside the
  ``forced_headers`` tickwork sets itself (which replace any the SDK set): a header an
  SDK takes from the worker's environment (``OPENAI_ORG_ID``, ``OPENAI_CUSTOM_HEADERS``,
  ...) never reaches a tenant's server.

The errors the transport raises are tickwork's own
(:class:`~tickwork.targets.egress.DestinationRefused`, :class:`TransientError`,
:class:`PermanentError`); the SDKs let exceptions that are not theirs or httpx's pass
through unchanged, so a target sees the real reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

import httpx

from tickwork.errors import PermanentError
from tickwork.targets.pinning import EgressClient

__all__ = ["DEFAULT_AGENT_RESPONSE_BYTES", "GuardedTransport", "guarded_http_client"]

DEFAULT_AGENT_RESPONSE_BYTES: Final = 4 * 1024 * 1024
# Request headers the transport sets itself, or never sends.
_DROPPED_REQUEST_HEADERS: Final = frozenset({"accept-encoding", "cookie", "host", "content-length"})
# Hop-by-hop and body-framing headers: the body handed on is the bytes as read, whole.
_DROPPED_ANSWER_HEADERS: Final = frozenset(
    {"set-cookie", "set-cookie2", "transfer-encoding", "content-length", "connection"}
)


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that sends through ``client`` (module docstring). The client
    is shared and owned by the caller: closing the transport leaves it open."""

    def __init__(
        self,
        client: EgressClient,
        max_response_bytes: int,
        *,
        allowed_headers: Iterable[str] | None = None,
        forced_headers: Mapping[str, str] | None = None,
    ) -> None:
        if max_response_bytes < 1:
            raise ValueError("max_response_bytes must be positive")
        self._client = client
        self._limit = max_response_bytes
        self._allowed = (
            None if allowed_headers is None else frozenset(h.lower() for h in allowed_headers)
        )
        self._forced = dict(forced_headers or {})
        self._forced_names = frozenset(name.lower() for name in self._forced)

    def _keep(self, name: str) -> bool:
        lower = name.lower()
        if lower in _DROPPED_REQUEST_HEADERS or lower in self._forced_names:
            return False
        return self._allowed is None or lower in self._allowed

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        headers = {name: value for name, value in request.headers.items() if self._keep(name)}
        headers.update(self._forced)
        headers["Accept-Encoding"] = "identity"
        label = self._client.label
        answer = await self._client.request(
            request.method, str(request.url), body, headers, lambda _status: self._limit
        )
        if 300 <= answer.status < 400:
            where = f"to {answer.location}" if answer.location else "(no Location header)"
            raise PermanentError(
                f"the {label} answered {answer.status} redirecting {where}; redirects are "
                "not followed, so point the agent at the final URL"
            )
        encoding = _header(answer.headers, "content-encoding")
        if encoding is not None and encoding.strip().lower() not in ("", "identity"):
            raise PermanentError(
                f"the {label} answered with Content-Encoding {encoding.strip()!r} although "
                "tickwork asks for identity; compressed answers are not decoded"
            )
        if answer.truncated and 200 <= answer.status < 300:
            raise PermanentError(
                f"the {label}'s answer is larger than {self._limit} bytes "
                "(TICKWORK_AGENT_MAX_RESPONSE_BYTES)"
            )
        kept = [
            (name, value)
            for name, value in answer.headers
            if name.lower() not in _DROPPED_ANSWER_HEADERS and name.lower() != "content-encoding"
        ]
        return httpx.Response(answer.status, headers=kept, content=answer.body, request=request)


def _header(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def guarded_http_client(
    client: EgressClient,
    max_response_bytes: int = DEFAULT_AGENT_RESPONSE_BYTES,
    *,
    allowed_headers: Iterable[str] | None = None,
    forced_headers: Mapping[str, str] | None = None,
) -> httpx.AsyncClient:
    """A fresh ``httpx.AsyncClient`` over :class:`GuardedTransport`, for one target
    call: no redirects, no settings from the environment, no state shared with another
    call. Close it after the call; ``client`` stays open."""
    transport = GuardedTransport(
        client,
        max_response_bytes,
        allowed_headers=allowed_headers,
        forced_headers=forced_headers,
    )
    return httpx.AsyncClient(
        transport=transport,
        follow_redirects=False,
        trust_env=False,
        # The attempt's timeout bounds the call (the runtime cancels it); the SDKs'
        # own defaults would cut a long agent run short.
        timeout=None,
    )
