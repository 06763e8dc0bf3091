"""The access log: one line per HTTP request, after its answer.

``request`` with ``method``, ``route`` (the route's template, such as
``/api/v1/tenants/{tenant}/projects/{project}``, never the raw path: ids stay out of the
line and a scanner's paths cannot fill it), ``status``, ``duration_ms`` and ``tenant``
(the path's tenant, on tenant routes). A request that matched no route has no ``route``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from tickwork.clock import Clock
from tickwork.logging import get_logger

__all__ = ["AccessLog", "route_of"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = get_logger("tickwork.access")


def route_of(scope: Scope) -> tuple[str | None, str | None]:
    """The matched route's template and the path's tenant (each None when there is none)."""
    route = getattr(scope.get("route"), "path", None)
    tenant = (scope.get("path_params") or {}).get("tenant")
    return route, tenant if isinstance(tenant, str) else None


class AccessLog:
    """Logs each HTTP request once it is answered (or failed: status 500)."""

    def __init__(self, app: ASGIApp, clock: Clock) -> None:
        self.app = app
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = self.clock.monotonic()
        status = 500  # unless an answer starts

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            route, tenant = route_of(scope)
            log.info(
                "request",
                method=scope.get("method"),
                route=route,
                status=status,
                duration_ms=round((self.clock.monotonic() - started) * 1000, 3),
                tenant=tenant,
            )
