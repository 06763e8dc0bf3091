"""The HTTP client webhooks share: every connection goes to an address that was checked
when it was opened, and nothing of one tenant's answers is kept for the next request.

:func:`egress_client` builds an ``httpx.AsyncClient`` whose connection pool opens TCP
connections through :class:`PinnedBackend`. The backend is handed the URL's host by the
pool; it asks :func:`tickwork.targets.egress.checked_addresses` for the addresses allowed
for it, then connects to those addresses (the next one when one refuses) and to nothing
else. The URL, the ``Host`` header, TLS SNI and certificate verification keep the name,
so https is pinned exactly as http is and still verifies the name. The pool keys
connections by origin (scheme, host name, port), so a connection opened and verified for
one name never carries a request for another name, even on the same address.

No cookie jar: the client's jar refuses every cookie, so a ``Set-Cookie`` from one
target is never stored, let alone sent to the next. No decompression happens here either:
the webhook target reads raw bytes (``Response.aiter_raw``).
"""

from __future__ import annotations

import errno
import os
import ssl
import typing
from http.cookiejar import CookieJar, CookiePolicy
from typing import Any

import anyio
import httpcore
import httpx

from tickwork.targets import egress
from tickwork.targets.egress import EgressPolicy

__all__ = ["PinnedBackend", "egress_client"]


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """A network backend that connects only to addresses the policy checked."""

    def __init__(
        self, policy: EgressPolicy, inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self.policy = policy
        self._inner = inner if inner is not None else httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        # One budget for resolving and every address tried.
        try:
            with anyio.fail_after(timeout):
                return await self._connect(host, port, local_address, socket_options)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"connecting to {host} port {port} timed out") from None

    async def _connect(
        self,
        host: str,
        port: int,
        local_address: str | None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await egress.checked_addresses(host, port, self.policy)
        options = list(socket_options or ())
        failure: httpcore.ConnectError | None = None
        for ip in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(ip), port, local_address=local_address, socket_options=options
                )
            except httpcore.ConnectError as exc:
                # Nothing was sent yet, so the next checked address is safe to try.
                failure = exc
        assert failure is not None  # checked_addresses never returns an empty list
        # The underlying error names the address; a name's addresses stay unsaid.
        raise httpcore.ConnectError(
            f"could not connect to {host} port {port}: {_reason(failure)}"
        ) from None

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise egress.DestinationRefused("webhooks never connect to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _reason(exc: BaseException) -> str:
    """The OS's words for why a connection failed, without the address it names."""
    seen: BaseException | None = exc
    while seen is not None:
        code = getattr(seen, "errno", None)
        if isinstance(code, int) and code in errno.errorcode:
            return os.strerror(code)
        seen = seen.__cause__ or seen.__context__
    return "connection failed"


class _RefuseAllCookies(CookiePolicy):
    """Store no cookie and send none: the client is shared by every tenant's webhooks."""

    netscape = True
    rfc2965 = False
    hide_cookie2 = True

    def set_ok(self, cookie: Any, request: Any) -> bool:
        return False

    def return_ok(self, cookie: Any, request: Any) -> bool:
        return False

    def domain_return_ok(self, domain: str, request: Any) -> bool:
        return False

    def path_return_ok(self, path: str, request: Any) -> bool:
        return False


class _PinnedTransport(httpx.AsyncHTTPTransport):
    def __init__(
        self, policy: EgressPolicy, verify: ssl.SSLContext | bool, limits: httpx.Limits
    ) -> None:
        super().__init__(verify=verify, limits=limits, trust_env=False)
        pool = getattr(self, "_pool", None)
        if not isinstance(pool, httpcore.AsyncConnectionPool):  # pragma: no cover
            raise RuntimeError("this httpx version keeps its pool elsewhere; pinning needs it")
        # httpx has no public way to choose the pool's network backend: the pool it built
        # is replaced by one with the same settings and the pinning backend.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=PinnedBackend(policy),
        )


def egress_client(
    policy: EgressPolicy,
    *,
    timeout: httpx.Timeout | float | None = None,
    limits: httpx.Limits | None = None,
    verify: ssl.SSLContext | bool = True,
) -> httpx.AsyncClient:
    """The client for webhook calls: pinned, checked connections (module docstring), no
    redirects, no cookies, no proxies or settings from the environment, and
    ``Accept-Encoding: identity``. ``verify`` is for tests that trust their own CA."""
    return httpx.AsyncClient(
        transport=_PinnedTransport(policy, verify, limits or httpx.Limits()),
        follow_redirects=False,
        timeout=timeout if timeout is not None else httpx.Timeout(None, connect=30.0),
        cookies=CookieJar(policy=_RefuseAllCookies()),
        headers={"Accept-Encoding": "identity"},
        trust_env=False,
    )
