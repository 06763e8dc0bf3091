"""The HTTP transport webhooks share: every connection goes to an address that was checked
when it was opened, and nothing of one tenant's answers is kept for the next request.

:func:`egress_client` builds an :class:`EgressClient`, an ``aiohttp`` session whose
connector opens every TCP connection through the egress policy
(:mod:`tickwork.targets.egress`):

- a host name is resolved by :class:`PinnedResolver`, the connector's resolver, which
  asks :func:`tickwork.targets.egress.checked_addresses` for the addresses allowed for
  it; the connector then connects to those addresses (the next one when one refuses) and
  to nothing else. Nothing is cached between connections: each new connection resolves
  and checks again, so a name rebound to a private address is refused on its next
  connection, never reached.
- an IP literal, which aiohttp connects to without asking any resolver, is checked by
  :class:`PinnedConnector` before the connection is looked up or opened.

The URL, the ``Host`` header, TLS SNI and certificate verification keep the name, so
https is pinned exactly as http is and still verifies the name. The pool keys
connections by scheme, host name and port, so a connection opened and verified for one
name never carries a request for another name, even on the same address. The pool is
bounded: at most ``max_connections`` in use, at most ``max_idle_connections`` kept open
between requests (the least recently used one is closed first), none idle for longer
than ``keepalive_expiry``.

No cookie jar (``Set-Cookie`` is never stored, so never sent on), no redirects, no
decompression (answers are read as the raw bytes that arrived, up to a cap, while they
stream in), no proxy or other setting from the environment. A call cancelled while it
runs closes its connection: nothing half-read goes back to the pool. Errors name the
URL's host and port, never an address a name resolved to.

One module, longer than most: the resolver that checks each address, the connector that
uses only checked addresses and the session that keeps no cookies are one guarantee (no
connection to an address that was not checked); splitting them would let a caller build
one without the others.

One module, longer than most: the resolver, the connector and the client that use
them are one egress guarantee (SPEC §9), read together.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

import aiohttp
import certifi
from aiohttp import SocketFactoryType
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_proto import ResponseHandler
from aiohttp.client_reqrep import ClientRequest, ConnectionKey
from aiohttp.connector import Connection
from aiohttp.helpers import is_ip_address
from aiohttp.tracing import Trace
from yarl import URL

from tickwork.errors import TickworkError, TransientError
from tickwork.targets import egress
from tickwork.targets.egress import DestinationRefused, EgressPolicy

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "Answer",
    "EgressClient",
    "PinnedConnector",
    "PinnedResolver",
    "egress_client",
    "parse_url",
]

DEFAULT_CONNECT_TIMEOUT: Final = 30.0
_NUMERIC: Final = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
# The answers to IP literals are cached (the policy never changes); this bounds the cache.
_LITERAL_CACHE_SIZE: Final = 1024


@functools.lru_cache(maxsize=4096)
def parse_url(url: str) -> URL:
    """``url`` as the transport sends it; raises ValueError when it cannot."""
    parsed = URL(url)
    if not parsed.absolute or parsed.raw_host is None:
        raise ValueError("not an absolute URL with a host")
    return parsed


class PinnedResolver(AbstractResolver):
    """The connector's resolver: a name's addresses, only when the policy allows all of
    them (refusals raise :class:`~tickwork.targets.egress.DestinationRefused`)."""

    def __init__(self, policy: EgressPolicy, timeout: float | None, label: str = "webhook") -> None:
        self.policy = policy
        self._timeout = timeout
        self._label = label

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            async with asyncio.timeout(self._timeout):
                addresses = await egress.checked_addresses(host, port, self.policy, self._label)
        except TimeoutError:
            raise TransientError(
                f"{self._label} host {host} could not be resolved: timed out"
            ) from None
        return [
            {
                "hostname": host,
                "host": str(ip),
                "port": port,
                "family": socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                "proto": 0,
                "flags": _NUMERIC,
            }
            for ip in addresses
        ]

    async def close(self) -> None:
        pass


class PinnedConnector(aiohttp.TCPConnector):
    """A TCP connector that connects only to addresses the policy checked."""

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        ssl_context: ssl.SSLContext,
        connect_timeout: float | None,
        max_connections: int,
        max_idle_connections: int,
        keepalive_expiry: float,
        socket_factory: SocketFactoryType | None = None,
        label: str = "webhook",
    ) -> None:
        super().__init__(
            resolver=PinnedResolver(policy, connect_timeout, label),
            use_dns_cache=False,
            ssl=ssl_context,
            limit=max_connections,
            keepalive_timeout=keepalive_expiry,
            socket_factory=socket_factory,
        )
        self.policy = policy
        self._label = label
        self._max_idle = max_idle_connections
        self._literals: dict[str, str | None] = {}

    async def connect(
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 - aiohttp's interface
    ) -> Connection:
        host = req.url.raw_host
        if host is not None and is_ip_address(host):
            # aiohttp connects to what it takes for an IP address without asking the
            # resolver: the policy is asked here instead.
            self._check_literal(host)
        return await super().connect(req, traces, timeout)

    def _check_literal(self, host: str) -> None:
        try:
            refusal = self._literals[host]
        except KeyError:
            refusal = _literal_refusal(self.policy, host, self._label)
            if len(self._literals) >= _LITERAL_CACHE_SIZE:
                self._literals.clear()
            self._literals[host] = refusal
        if refusal is not None:
            raise DestinationRefused(refusal)

    def _release(
        self, key: ConnectionKey, protocol: ResponseHandler, *, should_close: bool = False
    ) -> None:
        super()._release(key, protocol, should_close=should_close)
        # aiohttp keeps every released connection until it expires; bound how many.
        idle = self._conns
        while sum(len(conns) for conns in idle.values()) > self._max_idle:
            oldest = min((k for k in idle if idle[k]), key=lambda k: idle[k][0][1])
            proto, _ = idle[oldest].popleft()
            if not idle[oldest]:
                del idle[oldest]
            proto.close()


def _literal_refusal(policy: EgressPolicy, host: str, label: str = "webhook") -> str | None:
    ip = egress.parse_ip(host)
    if ip is None:
        return f"{label} destination {host} is not a valid IP address"
    reason = policy.refusal(host, ip)
    return None if reason is None else f"{label} destination {ip} is {reason}"


@dataclass(frozen=True, slots=True)
class Answer:
    """What came back: the status, the ``Location`` header, and the first bytes of the
    body exactly as they arrived (``truncated`` when there was more), and every header
    as sent (names as they came, repeated headers repeated)."""

    status: int
    location: str | None
    body: bytes
    truncated: bool
    headers: tuple[tuple[str, str], ...] = ()


# How much of an answer's body to read, given its status; None: none of it.
ReadLimit = Callable[[int], int | None]


class EgressClient:
    """The webhook transport (module docstring). Shared and owned by the caller, who
    closes it with :meth:`aclose` (or ``async with``). The aiohttp session is made on
    first use, on the event loop that uses it."""

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        timeout: float | None,
        connect_timeout: float | None,
        max_connections: int,
        max_idle_connections: int,
        keepalive_expiry: float,
        ssl_context: ssl.SSLContext,
        socket_factory: SocketFactoryType | None = None,
        label: str = "webhook",
    ) -> None:
        self.policy = policy
        self.label = label
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=None, sock_connect=connect_timeout, sock_read=timeout
        )
        self._connector_settings: dict[str, Any] = {
            "ssl_context": ssl_context,
            "connect_timeout": connect_timeout,
            "max_connections": max_connections,
            "max_idle_connections": max_idle_connections,
            "keepalive_expiry": keepalive_expiry,
            "socket_factory": socket_factory,
            "label": label,
        }
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            if self._closed:
                raise RuntimeError("this webhook client is closed")
            self._session = aiohttp.ClientSession(
                connector=PinnedConnector(self.policy, **self._connector_settings),
                cookie_jar=aiohttp.DummyCookieJar(),
                headers={"Accept-Encoding": "identity"},
                timeout=self._timeout,
                auto_decompress=False,
                trust_env=False,
                raise_for_status=False,
            )
        return self._session

    @property
    def cookies(self) -> aiohttp.abc.AbstractCookieJar:
        """The session's cookie jar, which never stores a cookie."""
        return self._open().cookie_jar

    async def post(
        self, url: str | URL, body: bytes, headers: Mapping[str, str], read_limit: ReadLimit
    ) -> Answer:
        """``POST`` ``body`` to ``url``: :meth:`request` with method ``POST``."""
        return await self.request("POST", url, body, headers, read_limit)

    async def request(
        self,
        method: str,
        url: str | URL,
        body: bytes,
        headers: Mapping[str, str],
        read_limit: ReadLimit,
    ) -> Answer:
        """Send ``body`` to ``url`` (a string, or a URL :func:`parse_url` made) with
        ``method`` and read at most
        ``read_limit(status)`` bytes of the answer. Never follows a redirect. Raises the
        policy's refusals as they are
        (:class:`~tickwork.targets.egress.DestinationRefused`) and
        :class:`~tickwork.errors.TransientError` for everything that went wrong on the
        way."""
        label = self.label
        try:
            target = url if isinstance(url, URL) else parse_url(url)
        except ValueError as exc:
            raise TransientError(f"{label} URL cannot be sent: {exc}") from None
        session = self._open()
        try:
            response = await session.request(
                method, target, data=body, headers=headers, allow_redirects=False
            )
        except TickworkError:
            raise
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise TransientError(
                f"{label} connection failed: {_connect_failure(exc, target)}"
            ) from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise TransientError(f"{label} request failed: {_describe(exc)}") from exc
        clean = False
        try:
            status = response.status
            limit = read_limit(status)
            data, truncated = b"", False
            if limit is not None:
                data, truncated = await _read_capped(response.content, limit)
                clean = not truncated
            return Answer(
                status,
                response.headers.get("Location"),
                data,
                truncated,
                tuple(response.headers.items()),
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            # Includes a 2xx whose body broke off: the attempt did not finish cleanly,
            # and the retry carries the same idempotency key.
            raise TransientError(f"{label} response failed: {_describe(exc)}") from exc
        finally:
            if clean:
                response.release()  # read to the end: the connection can be reused
            else:
                response.close()  # cut short or cancelled: the connection is closed

    async def aclose(self) -> None:
        self._closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def __aenter__(self) -> EgressClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


async def _read_capped(content: aiohttp.StreamReader, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the body as sent, and whether there was more (never
    buffers more than the cap and one read). Raw bytes: no ``Content-Encoding`` is
    decoded, so what is read is what arrived, never more."""
    buffer = bytearray()
    while len(buffer) <= limit:
        chunk = await content.read(limit + 1 - len(buffer))
        if not chunk:
            return bytes(buffer), False
        buffer += chunk
    return bytes(buffer[:limit]), True


def _connect_failure(exc: Exception, url: URL) -> str:
    """Why a connection failed, naming the URL's host and port but no address."""
    where = f"{url.raw_host} port {url.port}"
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return f"ConnectTimeout: connecting to {where} timed out"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cert_error = exc.certificate_error
        detail = getattr(cert_error, "verify_message", None) or "the certificate was refused"
        return (
            f"ConnectError: could not connect to {where}: TLS certificate verification "
            f"failed: {detail}"
        )
    if isinstance(exc, aiohttp.ClientConnectorSSLError):
        return f"ConnectError: could not connect to {where}: TLS handshake failed: {_reason(exc)}"
    return f"ConnectError: could not connect to {where}: {_reason(exc)}"


def _reason(exc: BaseException) -> str:
    """The OS's (or TLS library's) words for why a connection failed, without the
    address the underlying error names."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, aiohttp.ClientConnectorError):
            seen = seen.os_error
            continue
        if isinstance(seen, ssl.SSLError) and seen.reason:
            return str(seen.reason)
        code = getattr(seen, "errno", None)
        if isinstance(code, int) and code in errno.errorcode:
            return os.strerror(code)
        seen = seen.__cause__ or seen.__context__
    return "connection failed"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return "ReadTimeout: no data from the server in time"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _ssl_context(verify: ssl.SSLContext | bool) -> ssl.SSLContext:
    if isinstance(verify, ssl.SSLContext):
        return verify
    if not verify:
        raise ValueError("webhooks always verify TLS certificates")
    return ssl.create_default_context(cafile=certifi.where())


def egress_client(
    policy: EgressPolicy,
    *,
    timeout: float | None = None,
    connect_timeout: float | None = None,
    max_connections: int = 200,
    max_idle_connections: int = 50,
    keepalive_expiry: float = 5.0,
    verify: ssl.SSLContext | bool = True,
    socket_factory: SocketFactoryType | None = None,
    label: str = "webhook",
) -> EgressClient:
    """The client for webhook calls: pinned, checked connections (module docstring), no
    redirects, no cookies, no proxies or settings from the environment, and
    ``Accept-Encoding: identity``.

    ``timeout`` bounds each read of an answer and, unless ``connect_timeout`` is given,
    resolving and connecting too; without either, connecting is bounded by
    :data:`DEFAULT_CONNECT_TIMEOUT` and reads by nothing (the attempt's own timeout
    cancels the call). ``verify`` is for tests that trust their own CA, and
    ``socket_factory`` (aiohttp's) for tests that watch which addresses are dialled.
    ``label`` names the destinations in errors: "webhook", or "agent" for the agent
    targets' client.
    """
    if connect_timeout is None:
        connect_timeout = timeout if timeout is not None else DEFAULT_CONNECT_TIMEOUT
    return EgressClient(
        policy,
        timeout=timeout,
        connect_timeout=connect_timeout,
        max_connections=max_connections,
        max_idle_connections=max_idle_connections,
        keepalive_expiry=keepalive_expiry,
        ssl_context=_ssl_context(verify),
        socket_factory=socket_factory,
        label=label,
    )
