"""The client, and its resources: one method per route.

The asynchronous client (``tickwork/client/_async/client.py``) is the one description;
the synchronous one (``_sync/client.py``) is generated from it by unasync (``make
client-sync``; a test checks it is current), so the two have the same methods, arguments
and behaviour. Request building, retry
decisions and error mapping live in :mod:`tickwork.client._core`.

A method that names a project takes ``project=`` and otherwise uses the client's;
``ref=`` left out means the server's default, ``main``. Bodies are wire models
(:mod:`tickwork.wire`) or mappings, with keyword fields on top; the server validates
them, and its problem answer is raised as :class:`~tickwork.client.ApiError`.

Its length is one method per route, each a few lines over the shared request core
(``client/_core.py``); the resources are grouped by class, and splitting them into
modules would only scatter what a user looks up in one place.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

import httpx

from tickwork.client import _core as core
from tickwork.client._core import Body, Call, M
from tickwork.client.errors import ApiConnectionError
from tickwork.clock import pause
from tickwork.wire import (
    AgentOut,
    DefinitionIn,
    DefinitionOut,
    DeliveryOut,
    InvocationOut,
    KeyCreated,
    KeyOut,
    NotificationsIn,
    NotificationsOut,
    NotificationTestOut,
    PreviewOut,
    ProjectOut,
    QuotasOut,
    RefOut,
    TriggerOut,
    UpcomingRunsOut,
    UsageOut,
)

__all__ = ["AsyncClient"]


class AsyncClient:
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
        http_client: httpx.AsyncClient | None = None,
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
        self._http = http_client if http_client is not None else httpx.AsyncClient()
        self.projects = Projects(self)
        self.refs = Refs(self)
        self.agents = Agents(self)
        self.triggers = Triggers(self)
        self.invocations = Invocations(self)
        self.definitions = Definitions(self)
        self.upcoming = Upcoming(self)
        self.keys = Keys(self)
        self.quotas = Quotas(self)
        self.notifications = Notifications(self)

    @property
    def tenant(self) -> str:
        return self._config.tenant

    @property
    def project(self) -> str | None:
        return self._config.project

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections (not those of an ``http_client`` passed in)."""
        if self._owns_http:
            await self._http.aclose()

    async def request(
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
        return core.answer(await self._send(call))

    # -- the one sending loop -------------------------------------------------------------

    async def _send(self, call: Call) -> httpx.Response:
        config = self._config
        retry = 0
        while True:
            retry += 1
            try:
                response = await self._http.request(**config.request_args(call))
            except httpx.HTTPError as exc:
                wait = config.retry.after_error(retry, exc)
                if wait is None:
                    message = core.unreachable(call, config, exc, retry)
                    raise ApiConnectionError(message) from exc
            else:
                wait = config.retry.after_response(retry, response)
                if wait is None:
                    return response
                await response.aclose()
            await pause(wait)

    async def _json(self, call: Call) -> Any:
        return core.answer(await self._send(call))

    async def _one(self, kind: type[M], call: Call) -> M:
        response = await self._send(call)
        return core.model(kind, core.answer(response), response)

    def _items(self, kind: type[M], call: Call, size: int) -> AsyncIterator[M]:
        """Every item of a cursor-paginated list, fetching pages as they are reached."""
        return self._pages(kind, call.with_params(limit=core.page_size(size)))

    async def _pages(self, kind: type[M], call: Call) -> AsyncIterator[M]:
        while True:
            response = await self._send(call)
            items, cursor = core.page(core.answer(response))
            for item in items:
                yield core.model(kind, item, response)
            if cursor is None:
                return
            call = call.with_params(cursor=cursor)

    def _paths(self, project: str | None) -> core.Paths:
        return self._config.paths(project)


class _Resource:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    def _paths(self, project: str | None) -> core.Paths:
        return self._client._paths(project)


class Projects(_Resource):
    """``/projects``: a tenant's projects."""

    def list(self, *, page_size: int = core.DEFAULT_PAGE_SIZE) -> AsyncIterator[ProjectOut]:
        call = Call("GET", f"{self._paths(None).tenant}/projects")
        return self._client._items(ProjectOut, call, page_size)

    async def get(self, project: str | None = None) -> ProjectOut:
        return await self._client._one(ProjectOut, Call("GET", self._paths(project).project))

    async def put(self, project: str | None = None, body: Body = None, **fields: Any) -> ProjectOut:
        """Create the project (with its ``main`` ref) or replace its name and description
        (a field left out takes its default)."""
        call = Call("PUT", self._paths(project).project, json=core.body(body, fields))
        return await self._client._one(ProjectOut, call)

    async def delete(self, project: str | None = None) -> None:
        """Delete the project with everything under it; its runs are cancelled."""
        await self._client._json(Call("DELETE", self._paths(project).project))


class Refs(_Resource):
    """``/refs``: a project's branches of agent configuration."""

    def list(
        self, *, project: str | None = None, page_size: int = core.DEFAULT_PAGE_SIZE
    ) -> AsyncIterator[RefOut]:
        call = Call("GET", f"{self._paths(project).project}/refs")
        return self._client._items(RefOut, call, page_size)

    async def delete(self, ref: str, *, project: str | None = None) -> None:
        """Delete the ref with its agents and triggers (``main`` cannot be: 409)."""
        await self._client._json(Call("DELETE", self._paths(project).ref(ref)))


class Agents(_Resource):
    """``/agents``: what triggers run, on a ref."""

    def list(
        self,
        *,
        ref: str | None = None,
        project: str | None = None,
        page_size: int = core.DEFAULT_PAGE_SIZE,
    ) -> AsyncIterator[AgentOut]:
        call = Call("GET", f"{self._paths(project).project}/agents", core.params(ref=ref))
        return self._client._items(AgentOut, call, page_size)

    async def get(
        self, agent: str, *, ref: str | None = None, project: str | None = None
    ) -> AgentOut:
        call = Call("GET", self._paths(project).agent(agent), core.params(ref=ref))
        return await self._client._one(AgentOut, call)

    async def put(
        self,
        agent: str,
        body: Body = None,
        *,
        ref: str | None = None,
        project: str | None = None,
        **fields: Any,
    ) -> AgentOut:
        """Create or replace the agent: ``target`` (a ``WebhookTargetIn`` or
        ``PythonTargetIn``, or its mapping), ``name``, ``max_concurrency``."""
        call = Call(
            "PUT",
            self._paths(project).agent(agent),
            core.params(ref=ref),
            core.body(body, fields),
        )
        return await self._client._one(AgentOut, call)

    async def delete(
        self, agent: str, *, ref: str | None = None, project: str | None = None
    ) -> None:
        call = Call("DELETE", self._paths(project).agent(agent), core.params(ref=ref))
        await self._client._json(call)


def _flag(value: bool | None) -> str | None:
    """A boolean query parameter as the API reads it."""
    return None if value is None else str(value).lower()


class Triggers(_Resource):
    """``/agents/{agent}/scheduled-triggers``: when an agent runs."""

    def list(
        self,
        agent: str,
        *,
        ref: str | None = None,
        project: str | None = None,
        health: str | None = None,
        page_size: int = core.DEFAULT_PAGE_SIZE,
    ) -> AsyncIterator[TriggerOut]:
        """The agent's triggers (of one ``health``: ok, failing, late, paused, disabled)."""
        query = core.params(ref=ref, health=health)
        call = Call("GET", self._paths(project).triggers(agent), query)
        return self._client._items(TriggerOut, call, page_size)

    def search(
        self,
        *,
        agent: str | None = None,
        ref: str | None = None,
        enabled: bool | None = None,
        paused: bool | None = None,
        health: str | None = None,
        q: str | None = None,
        project: str | None = None,
        page_size: int = core.DEFAULT_PAGE_SIZE,
    ) -> AsyncIterator[TriggerOut]:
        """The project's triggers across agents and refs (``GET /triggers``), filtered by
        agent, ref, ``enabled``, ``paused``, ``health`` (ok, failing, late, paused,
        disabled) and ``q``, a part of the name (any case)."""
        query = core.params(
            agent=agent,
            ref=ref,
            enabled=_flag(enabled),
            paused=_flag(paused),
            health=health,
            q=q,
        )
        call = Call("GET", f"{self._paths(project).project}/triggers", query)
        return self._client._items(TriggerOut, call, page_size)

    async def get(self, agent: str, trigger_id: str, *, project: str | None = None) -> TriggerOut:
        call = Call("GET", self._paths(project).trigger(agent, trigger_id))
        return await self._client._one(TriggerOut, call)

    async def create(
        self,
        agent: str,
        body: Body = None,
        *,
        ref: str | None = None,
        project: str | None = None,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> TriggerOut:
        """Create a trigger: a ``TriggerCreate`` or its fields (``name``, and
        ``cron_expression`` or ``run_at``, ``timezone``, ``payload``, …)."""
        call = core.creating(
            "POST", self._paths(project).triggers(agent), core.body(body, fields), idempotency_key
        ).with_params(**core.params(ref=ref))
        return await self._client._one(TriggerOut, call)

    async def update(
        self,
        agent: str,
        trigger_id: str,
        body: Body = None,
        *,
        project: str | None = None,
        **fields: Any,
    ) -> TriggerOut:
        """Change the fields given (a ``TriggerPatch`` or fields); an explicit None
        restores a field's default."""
        call = Call(
            "PATCH", self._paths(project).trigger(agent, trigger_id), json=core.body(body, fields)
        )
        return await self._client._one(TriggerOut, call)

    async def delete(self, agent: str, trigger_id: str, *, project: str | None = None) -> None:
        """Delete the trigger; its pending and running invocations are cancelled."""
        await self._client._json(Call("DELETE", self._paths(project).trigger(agent, trigger_id)))

    async def preview(
        self, agent: str, trigger_id: str, *, count: int = 10, project: str | None = None
    ) -> PreviewOut:
        """The next ``count`` fire instants and the schedule in words."""
        path = self._paths(project).trigger(agent, trigger_id) + "/preview"
        return await self._client._one(PreviewOut, Call("GET", path, core.params(count=count)))

    async def usage(
        self,
        agent: str,
        trigger_id: str,
        *,
        limit: int = 31,
        cursor: str | None = None,
        project: str | None = None,
    ) -> UsageOut:
        """The tokens the trigger's runs used per UTC day, newest first, and its
        ``daily_token_budget``."""
        path = self._paths(project).trigger(agent, trigger_id) + "/usage"
        params = core.params(limit=limit, cursor=cursor)
        return await self._client._one(UsageOut, Call("GET", path, params))

    async def run(
        self,
        agent: str,
        trigger_id: str,
        *,
        project: str | None = None,
        payload: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> InvocationOut:
        """Run the trigger now, as a new invocation (origin ``manual``); ``payload``
        replaces the trigger's payload for this run only."""
        path = self._paths(project).trigger(agent, trigger_id) + "/run"
        body = None if payload is None else {"payload": payload}
        return await self._client._one(
            InvocationOut, core.creating("POST", path, body, key=idempotency_key)
        )


class Invocations(_Resource):
    """Invocations: each run of a trigger, with its attempts."""

    def list(
        self,
        *,
        agent: str | None = None,
        trigger_id: str | None = None,
        ref: str | None = None,
        status: str | Sequence[str] | None = None,
        origin: str | Sequence[str] | None = None,
        from_: datetime | str | None = None,
        to: datetime | str | None = None,
        project: str | None = None,
        page_size: int = core.DEFAULT_PAGE_SIZE,
    ) -> AsyncIterator[InvocationOut]:
        """The project's invocations, newest first, filtered by ``agent``, ``ref``,
        ``trigger_id``, ``status`` and ``origin`` (one or several each), ``from_``/``to``
        bounding ``scheduled_for``."""
        path = f"{self._paths(project).project}/invocations"
        statuses = [status] if isinstance(status, str) else status
        origins = [origin] if isinstance(origin, str) else origin
        query = core.params(
            agent=agent,
            trigger_id=trigger_id,
            ref=ref,
            status=statuses,
            origin=origins,
            to=to,
            **{"from": from_},
        )
        return self._client._items(InvocationOut, Call("GET", path, query), page_size)

    async def get(
        self,
        invocation_id: str,
        *,
        agent: str | None = None,
        trigger_id: str | None = None,
        project: str | None = None,
    ) -> InvocationOut:
        """One invocation with its attempts: by its id alone (any invocation of the
        project, also once its trigger is deleted), or under its trigger."""
        paths = self._paths(project)
        if agent is not None and trigger_id is not None:
            path = paths.invocation(agent, trigger_id, invocation_id)
        else:
            path = f"{paths.project}/invocations/{core.segment(invocation_id, 'invocation_id')}"
        return await self._client._one(InvocationOut, Call("GET", path))

    async def cancel(
        self, invocation_id: str, *, agent: str, trigger_id: str, project: str | None = None
    ) -> InvocationOut:
        """Cancel a pending or running invocation (409 once it is final)."""
        path = self._paths(project).invocation(agent, trigger_id, invocation_id) + "/cancel"
        return await self._client._one(InvocationOut, Call("POST", path))

    async def rerun(
        self,
        invocation_id: str,
        *,
        agent: str,
        trigger_id: str,
        project: str | None = None,
        idempotency_key: str | None = None,
    ) -> InvocationOut:
        """Run a finished invocation again, as a new one (origin ``rerun``)."""
        path = self._paths(project).invocation(agent, trigger_id, invocation_id) + "/rerun"
        return await self._client._one(
            InvocationOut, core.creating("POST", path, key=idempotency_key)
        )


class Definitions(_Resource):
    """``/definition``: a ref's agents and triggers, all at once."""

    async def get(self, *, ref: str | None = None, project: str | None = None) -> DefinitionIn:
        """The ref's definition in the form :meth:`push` takes (pushed back unchanged,
        it changes nothing); a stored webhook secret comes as ``{"keep": true}``."""
        call = Call("GET", f"{self._paths(project).project}/definition", core.params(ref=ref))
        return await self._client._one(DefinitionIn, call)

    async def push(
        self,
        definition: DefinitionIn | Mapping[str, Any],
        *,
        ref: str | None = None,
        project: str | None = None,
        dry_run: bool = False,
        allow_empty: bool = False,
    ) -> DefinitionOut:
        """Replace the ref's whole definition in one transaction (``PUT /definition``):
        agents and triggers missing from it are deleted. The answer counts what was
        created, updated, deleted and left unchanged, and lists each change.
        ``dry_run``: only say what would change. ``allow_empty``: allow a definition
        of no agents to delete every agent of the ref."""
        flags = {"dry_run": "true" if dry_run else None}
        flags["allow_empty"] = "true" if allow_empty else None
        call = Call(
            "PUT",
            f"{self._paths(project).project}/definition",
            core.params(ref=ref, **flags),
            core.body(definition, {}),
        )
        return await self._client._one(DefinitionOut, call)

    async def diff(
        self,
        definition: DefinitionIn | Mapping[str, Any],
        *,
        ref: str | None = None,
        project: str | None = None,
        allow_empty: bool = False,
    ) -> DefinitionOut:
        """What :meth:`push` would change, writing nothing (a dry run)."""
        return await self.push(
            definition, ref=ref, project=project, dry_run=True, allow_empty=allow_empty
        )


class Upcoming(_Resource):
    """``/upcoming-runs``: what the project runs next."""

    async def get(
        self, *, limit: int = core.DEFAULT_PAGE_SIZE, project: str | None = None
    ) -> UpcomingRunsOut:
        """The next ``limit`` runs, soonest first: slots still to dispatch and
        invocations waiting for a worker."""
        path = f"{self._paths(project).project}/upcoming-runs"
        return await self._client._one(UpcomingRunsOut, Call("GET", path, core.params(limit=limit)))


class Keys(_Resource):
    """``/api-keys``: the tenant's API keys (their secrets are shown once, at creation)."""

    def list(self, *, page_size: int = core.DEFAULT_PAGE_SIZE) -> AsyncIterator[KeyOut]:
        call = Call("GET", f"{self._paths(None).tenant}/api-keys")
        return self._client._items(KeyOut, call, page_size)

    async def create(
        self,
        *,
        name: str | None = None,
        scope: str | None = None,
        idempotency_key: str | None = None,
    ) -> KeyCreated:
        """A new key of the caller's scope or a narrower one; ``key`` is shown only here."""
        body = core.body(None, {k: v for k, v in (("name", name), ("scope", scope)) if v})
        path = f"{self._paths(None).tenant}/api-keys"
        return await self._client._one(
            KeyCreated, core.creating("POST", path, body, idempotency_key)
        )

    async def revoke(self, key_id: str) -> None:
        path = f"{self._paths(None).tenant}/api-keys/{core.segment(key_id, 'key_id')}"
        await self._client._json(Call("DELETE", path))


class Quotas(_Resource):
    """``/quotas``: the tenant's quotas and their use."""

    async def get(self) -> QuotasOut:
        return await self._client._one(QuotasOut, Call("GET", f"{self._paths(None).tenant}/quotas"))


class Notifications(_Resource):
    """``/notifications``: where the project's events (failures, pauses, missed slots,
    late triggers) are sent, a test event, and how deliveries went."""

    async def get(self, *, project: str | None = None) -> NotificationsOut:
        path = f"{self._paths(project).project}/notifications"
        return await self._client._one(NotificationsOut, Call("GET", path))

    async def put(
        self,
        targets: NotificationsIn | Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        project: str | None = None,
    ) -> NotificationsOut:
        """Replace every target: a :class:`~tickwork.wire.NotificationsIn`, its mapping,
        or the list of targets (``name``, ``url``, ``secret``, ``events``, ``format``)."""
        body = {"targets": list(targets)} if isinstance(targets, Sequence) else targets
        path = f"{self._paths(project).project}/notifications"
        return await self._client._one(
            NotificationsOut, Call("PUT", path, json=core.body(body, {}))
        )

    async def test(
        self, *, project: str | None = None, idempotency_key: str | None = None
    ) -> NotificationTestOut:
        """Queue a ``notification.test`` event for every target."""
        path = f"{self._paths(project).project}/notifications/test"
        return await self._client._one(
            NotificationTestOut, core.creating("POST", path, None, idempotency_key)
        )

    def deliveries(
        self, *, project: str | None = None, page_size: int = core.DEFAULT_PAGE_SIZE
    ) -> AsyncIterator[DeliveryOut]:
        """The project's deliveries, newest first."""
        call = Call("GET", f"{self._paths(project).project}/notifications/deliveries")
        return self._client._items(DeliveryOut, call, page_size)
