# Generated from tickwork/client/_async/client.py by unasync (make client-sync): do not edit.
"""The client: its configuration, its resources and the one sending loop.

The asynchronous client (``tickwork/client/_async/``) is the one description; the
synchronous one (``_sync/``) is generated from it by unasync (``make client-sync``; a
test checks it is current), so the two have the same methods, arguments and behaviour.
The resources, one method per route, are in ``resources.py``; request building, retry
decisions and error mapping live in :mod:`tickwork.client._core`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

import httpx

from tickwork.client import _core as core
from tickwork.client._core import Call, M
from tickwork.client._sync.resources import (
    Admin,
    Agents,
    Audit,
    Backfills,
    Definitions,
    Invocations,
    Keys,
    Notifications,
    Projects,
    Quotas,
    Refs,
    Retention,
    System,
    Triggers,
    Upcoming,
)
from tickwork.client.errors import ApiConnectionError
from tickwork.clock import blocking_pause

__all__ = ["Client"]


class Client:
    """A client of one tickwork server, as one tenant.

    ``url`` is the server's base URL; ``api_key`` a key of the tenant (its scope decides
    what the client may do); ``tenant`` defaults to ``default``, the tenant
    ``tickwork serve`` creates on its first start; ``project`` is used by every method
    not given one. ``timeout`` is in seconds (or an ``httpx.Timeout``) per try;
    ``retries`` how often a transient failure is retried (or a
    :class:`~tickwork.client.RetryPolicy`). ``http_client`` sends the requests instead of
    a client of its own (its transport, proxies and certificates are used; it is not
    closed). Use it as a context manager, or close it.
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        tenant: str | None = None,
        project: str | None = None,
        timeout: float | httpx.Timeout | None = core.DEFAULT_TIMEOUT,
        retries: int | core.RetryPolicy = 3,
        http_client: httpx.Client | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._config = core.Config.of(
            url,
            api_key,
            tenant=tenant,
            project=project,
            timeout=timeout,
            retries=retries,
            headers=headers,
            user_agent=core.user_agent(),
        )
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else httpx.Client()
        self.projects = Projects(self)
        self.refs = Refs(self)
        self.agents = Agents(self)
        self.triggers = Triggers(self)
        self.invocations = Invocations(self)
        self.backfills = Backfills(self)
        self.definitions = Definitions(self)
        self.upcoming = Upcoming(self)
        self.keys = Keys(self)
        self.quotas = Quotas(self)
        self.notifications = Notifications(self)
        self.retention = Retention(self)
        self.audit = Audit(self)
        self.system = System(self)
        self.admin = Admin(self)

    @property
    def tenant(self) -> str:
        return self._config.tenant

    @property
    def project(self) -> str | None:
        return self._config.project

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections (not those of an ``http_client`` passed in)."""
        if self._owns_http:
            self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """Send any request (``path`` under the server's base URL, e.g.
        ``/api/v1/tenants/default/quotas``) with the client's credentials, retries and
        error mapping; returns the answer's JSON (None for 204)."""
        call = Call(method.upper(), path, params or {}, json, idempotency_key)
        return core.answer(self._send(call))

    # -- the one sending loop -------------------------------------------------------------

    def _send(self, call: Call) -> httpx.Response:
        config = self._config
        retry = 0
        while True:
            retry += 1
            try:
                response = self._http.request(**config.request_args(call))
            except httpx.HTTPError as exc:
                wait = config.retry.after_error(retry, exc)
                if wait is None:
                    message = core.unreachable(call, config, exc, retry)
                    raise ApiConnectionError(message) from exc
            else:
                wait = config.retry.after_response(retry, response)
                if wait is None:
                    return response
                response.close()
            blocking_pause(wait)

    def _json(self, call: Call) -> Any:
        return core.answer(self._send(call))

    def _one(self, kind: type[M], call: Call) -> M:
        response = self._send(call)
        return core.tagged(core.model(kind, core.answer(response), response), response)

    def _items(self, kind: type[M], call: Call, size: int) -> Iterator[M]:
        """Every item of a cursor-paginated list, fetching pages as they are reached."""
        return self._pages(kind, call.with_params(limit=core.page_size(size)))

    def _pages(self, kind: type[M], call: Call) -> Iterator[M]:
        while True:
            response = self._send(call)
            items, cursor = core.page(core.answer(response))
            for item in items:
                yield core.model(kind, item, response)
            if cursor is None:
                return
            call = call.with_params(cursor=cursor)

    def _paths(self, project: str | None) -> core.Paths:
        return self._config.paths(project)
