"""The client's resources: one method per route.

A method that names a project takes ``project=`` and otherwise uses the client's;
``ref=`` left out means the server's default, ``main``. Bodies are wire models
(:mod:`tickwork.wire`) or mappings, with keyword fields on top; the server validates
them, and its problem answer is raised as :class:`~tickwork.client.ApiError`.

A method that changes a trigger, an agent or a definition takes ``if_match=``: the
``ETag`` of the version the change is based on, or the object a ``get`` (or an earlier
change) answered, whose ETag the client remembers (:func:`~tickwork.client.etag`). When
someone changed it meanwhile, the server answers ``412`` and changes nothing.

One module, longer than most: one short method per route, for every resource, so the
client can be read beside the API guide.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tickwork.client import _core as core
from tickwork.client._core import Body, Call, IfMatch
from tickwork.wire import (
    AgentOut,
    AuditEventOut,
    BackfillDryRunOut,
    BackfillMode,
    BackfillOut,
    BulkOut,
    DefinitionIn,
    DefinitionOut,
    DeliveryOut,
    HealthOut,
    InvocationOut,
    KeyCreated,
    KeyOut,
    NotificationsIn,
    NotificationsOut,
    NotificationTestOut,
    PreviewOut,
    ProjectOut,
    QuotasOut,
    ReadyOut,
    RefOut,
    RetentionIn,
    RetentionOut,
    SchedulerOut,
    TenantOut,
    TriggerOut,
    UpcomingRunsOut,
    UsageOut,
)

if TYPE_CHECKING:
    from tickwork.client._async.client import AsyncClient

__all__ = [
    "Admin",
    "Agents",
    "Audit",
    "Backfills",
    "Definitions",
    "Invocations",
    "Keys",
    "Notifications",
    "Projects",
    "Quotas",
    "Refs",
    "Retention",
    "System",
    "Triggers",
    "Upcoming",
]


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

    async def pause(
        self,
        project: str | None = None,
        *,
        reason: str | None = None,
        until: datetime | None = None,
        cancel_pending: bool = False,
    ) -> ProjectOut:
        """Pause the whole project: none of its triggers dispatches a slot until it is
        resumed (or ``until``, an aware instant); ``cancel_pending`` also cancels its
        pending invocations. Each trigger keeps its own pause."""
        path = self._paths(project).project + "/pause"
        call = Call("POST", path, json=_pause_body(reason, until, cancel_pending))
        return await self._client._one(ProjectOut, call)

    async def resume(self, project: str | None = None) -> ProjectOut:
        """Resume the project from now on: the paused period is not run."""
        path = self._paths(project).project + "/resume"
        return await self._client._one(ProjectOut, Call("POST", path))


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
        if_match: IfMatch = None,
        **fields: Any,
    ) -> AgentOut:
        """Create or replace the agent: ``target`` (a ``WebhookTargetIn`` or
        ``PythonTargetIn``, or its mapping), ``name``, ``max_concurrency``."""
        call = Call(
            "PUT",
            self._paths(project).agent(agent),
            core.params(ref=ref),
            core.body(body, fields),
            if_match=core.if_match(if_match),
        )
        return await self._client._one(AgentOut, call)

    async def delete(
        self,
        agent: str,
        *,
        ref: str | None = None,
        project: str | None = None,
        if_match: IfMatch = None,
    ) -> None:
        call = Call(
            "DELETE",
            self._paths(project).agent(agent),
            core.params(ref=ref),
            if_match=core.if_match(if_match),
        )
        await self._client._json(call)


def _flag(value: bool | None) -> str | None:
    """A boolean query parameter as the API reads it."""
    return None if value is None else str(value).lower()


def _pause_body(reason: str | None, until: datetime | None, cancel_pending: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {"reason": reason, "until": until}
    if cancel_pending:
        fields["cancel_pending"] = True
    return core.body(None, {k: v for k, v in fields.items() if v is not None})


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
        if_match: IfMatch = None,
        **fields: Any,
    ) -> TriggerOut:
        """Change the fields given (a ``TriggerPatch`` or fields); an explicit None
        restores a field's default."""
        call = Call(
            "PATCH",
            self._paths(project).trigger(agent, trigger_id),
            json=core.body(body, fields),
            if_match=core.if_match(if_match),
        )
        return await self._client._one(TriggerOut, call)

    async def delete(
        self,
        agent: str,
        trigger_id: str,
        *,
        project: str | None = None,
        if_match: IfMatch = None,
    ) -> None:
        """Delete the trigger; its pending and running invocations are cancelled."""
        path = self._paths(project).trigger(agent, trigger_id)
        await self._client._json(Call("DELETE", path, if_match=core.if_match(if_match)))

    async def pause(
        self,
        agent: str,
        trigger_id: str,
        *,
        reason: str | None = None,
        until: datetime | None = None,
        cancel_pending: bool = False,
        project: str | None = None,
    ) -> TriggerOut:
        """Pause the trigger: no slot is dispatched (nor recorded) until it is resumed,
        or until ``until`` (an aware instant); ``reason`` is shown as ``paused_reason``;
        ``cancel_pending`` also cancels its pending invocations (running ones go on). A
        definition push never changes it."""
        path = self._paths(project).trigger(agent, trigger_id) + "/pause"
        call = Call("POST", path, json=_pause_body(reason, until, cancel_pending))
        return await self._client._one(TriggerOut, call)

    async def resume(
        self, agent: str, trigger_id: str, *, project: str | None = None
    ) -> TriggerOut:
        """Resume from now on: the next run is the first slot after now (a backfill can
        run the paused period on purpose)."""
        path = self._paths(project).trigger(agent, trigger_id) + "/resume"
        return await self._client._one(TriggerOut, Call("POST", path))

    async def skip(
        self, agent: str, trigger_id: str, count: int, *, project: str | None = None
    ) -> TriggerOut:
        """Record the trigger's next ``count`` slots ``skipped`` when their time comes;
        it replaces an earlier count (0 cancels the skips)."""
        path = self._paths(project).trigger(agent, trigger_id) + "/skip"
        return await self._client._one(TriggerOut, Call("POST", path, json={"count": count}))

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

    async def cancel_many(
        self,
        *,
        status: str | Sequence[str] | None = None,
        agent: str | None = None,
        trigger_id: str | None = None,
        origin: str | Sequence[str] | None = None,
        from_: datetime | None = None,
        to: datetime | None = None,
        limit: int = 1000,
        dry_run: bool = False,
        project: str | None = None,
    ) -> BulkOut:
        """Cancel the project's matching invocations (``status``: pending and/or
        running, default both), at most ``limit``, oldest first; ``dry_run`` only
        counts them."""
        path = f"{self._paths(project).project}/invocations/cancel"
        filters = _bulk_body(status, agent, trigger_id, origin, from_, to, limit, dry_run)
        return await self._client._one(BulkOut, Call("POST", path, json=filters))

    async def rerun_many(
        self,
        *,
        status: str | Sequence[str] | None = None,
        agent: str | None = None,
        trigger_id: str | None = None,
        origin: str | Sequence[str] | None = None,
        from_: datetime | None = None,
        to: datetime | None = None,
        limit: int = 1000,
        dry_run: bool = False,
        project: str | None = None,
        idempotency_key: str | None = None,
    ) -> BulkOut:
        """Rerun the project's matching final invocations (``status`` default: failed)
        as new ones of origin ``rerun``, at most ``limit``, oldest first; ``dry_run``
        only counts them. Retried with its ``Idempotency-Key``, it reruns nothing more."""
        path = f"{self._paths(project).project}/invocations/rerun"
        filters = _bulk_body(status, agent, trigger_id, origin, from_, to, limit, dry_run)
        call = core.creating("POST", path, filters, idempotency_key)
        return await self._client._one(BulkOut, call)


def _bulk_body(
    status: str | Sequence[str] | None,
    agent: str | None,
    trigger_id: str | None,
    origin: str | Sequence[str] | None,
    from_: datetime | None,
    to: datetime | None,
    limit: int,
    dry_run: bool,
) -> dict[str, Any]:
    given = {
        "status": [status] if isinstance(status, str) else status,
        "agent": agent,
        "trigger_id": trigger_id,
        "origin": [origin] if isinstance(origin, str) else origin,
        "from": from_,
        "to": to,
        "limit": limit,
        "dry_run": dry_run,
    }
    return core.body(None, {k: v for k, v in given.items() if v is not None})


class Backfills(_Resource):
    """``/backfill`` and ``/backfills``: a trigger's own past slots, run on purpose."""

    async def create(
        self,
        agent: str,
        trigger_id: str,
        *,
        from_: datetime,
        to: datetime,
        mode: BackfillMode = "missing",
        max_concurrency: int = 10,
        project: str | None = None,
        idempotency_key: str | None = None,
    ) -> BackfillOut:
        """Run the trigger's slots in [``from_``, ``to``) (at most 10,000) as
        invocations of origin ``backfill``, at most ``max_concurrency`` at once.
        ``mode``: ``missing`` (slots that never ran), ``failed`` (whose latest run
        failed) or ``all``."""
        call = core.creating(
            "POST",
            self._paths(project).trigger(agent, trigger_id) + "/backfill",
            _backfill_body(from_, to, mode, max_concurrency, dry_run=False),
            idempotency_key,
        )
        return await self._client._one(BackfillOut, call)

    async def plan(
        self,
        agent: str,
        trigger_id: str,
        *,
        from_: datetime,
        to: datetime,
        mode: BackfillMode = "missing",
        project: str | None = None,
    ) -> BackfillDryRunOut:
        """What :meth:`create` would do, writing nothing (a dry run): the range's
        slots, those it would run and those it would leave alone."""
        path = self._paths(project).trigger(agent, trigger_id) + "/backfill"
        body = _backfill_body(from_, to, mode, None, dry_run=True)
        return await self._client._one(BackfillDryRunOut, Call("POST", path, json=body))

    def list(
        self,
        agent: str,
        trigger_id: str,
        *,
        project: str | None = None,
        page_size: int = core.DEFAULT_PAGE_SIZE,
    ) -> AsyncIterator[BackfillOut]:
        """The trigger's backfills, newest first."""
        call = Call("GET", self._paths(project).trigger(agent, trigger_id) + "/backfills")
        return self._client._items(BackfillOut, call, page_size)

    async def get(
        self, agent: str, trigger_id: str, backfill_id: str, *, project: str | None = None
    ) -> BackfillOut:
        return await self._client._one(
            BackfillOut, Call("GET", self._backfill(agent, trigger_id, backfill_id, project))
        )

    async def cancel(
        self, agent: str, trigger_id: str, backfill_id: str, *, project: str | None = None
    ) -> BackfillOut:
        """Stop the backfill: nothing more is dispatched and its pending invocations are
        cancelled; running ones go on (409 once it is over)."""
        path = self._backfill(agent, trigger_id, backfill_id, project) + "/cancel"
        return await self._client._one(BackfillOut, Call("POST", path))

    def _backfill(self, agent: str, trigger_id: str, backfill_id: str, project: str | None) -> str:
        trigger = self._paths(project).trigger(agent, trigger_id)
        return f"{trigger}/backfills/{core.segment(backfill_id, 'backfill_id')}"


def _backfill_body(
    from_: datetime, to: datetime, mode: str, max_concurrency: int | None, *, dry_run: bool
) -> dict[str, Any]:
    given: dict[str, Any] = {"from": from_, "to": to, "mode": mode}
    if max_concurrency is not None:
        given["max_concurrency"] = max_concurrency
    if dry_run:
        given["dry_run"] = True
    return core.body(None, given)


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
        if_match: IfMatch = None,
    ) -> DefinitionOut:
        """Replace the ref's whole definition in one transaction (``PUT /definition``):
        agents and triggers missing from it are deleted. The answer counts what was
        created, updated, deleted and left unchanged, and lists each change.
        ``dry_run``: only say what would change. ``allow_empty``: allow a definition
        of no agents to delete every agent of the ref. ``if_match``: the definition
        :meth:`get` answered (or its ETag), so that a push over someone else's change
        fails with 412."""
        flags = {"dry_run": "true" if dry_run else None}
        flags["allow_empty"] = "true" if allow_empty else None
        call = Call(
            "PUT",
            f"{self._paths(project).project}/definition",
            core.params(ref=ref, **flags),
            core.body(definition, {}),
            if_match=core.if_match(if_match),
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


class System(_Resource):
    """The server itself: liveness, readiness and (with the admin token) the scheduler."""

    async def health(self) -> HealthOut:
        """``GET /healthz``: the process answers (no key needed)."""
        return await self._client._one(HealthOut, Call("GET", "/healthz"))

    async def ready(self) -> ReadyOut:
        """``GET /readyz``: the database answers and the schema is current (503 otherwise,
        raised as ApiError)."""
        return await self._client._one(ReadyOut, Call("GET", "/readyz"))

    async def scheduler(self) -> SchedulerOut:
        """The active scheduler, every deployment's state and every recorded process
        (a client made with the admin token)."""
        return await self._client._one(SchedulerOut, Call("GET", "/api/v1/system/scheduler"))


class Admin(_Resource):
    """``/api/v1/admin``: what only the operator's admin token (``TICKWORK_ADMIN_TOKEN``,
    passed as the client's ``api_key``) may do: tenants, their first keys, quotas."""

    async def create_tenant(self, tenant: str) -> TenantOut:
        """Create the tenant (an existing one is answered as it is)."""
        call = Call("POST", "/api/v1/admin/tenants", json={"id": tenant})
        return await self._client._one(TenantOut, call)

    async def create_key(
        self,
        tenant: str,
        *,
        name: str | None = None,
        scope: str | None = None,
        idempotency_key: str | None = None,
    ) -> KeyCreated:
        """A key of any scope for the tenant; ``key`` is shown only here."""
        path = f"/api/v1/admin/tenants/{core.segment(tenant, 'tenant')}/api-keys"
        body = core.body(None, {k: v for k, v in (("name", name), ("scope", scope)) if v})
        return await self._client._one(
            KeyCreated, core.creating("POST", path, body, idempotency_key)
        )

    async def get_quotas(self, tenant: str) -> QuotasOut:
        path = f"/api/v1/admin/tenants/{core.segment(tenant, 'tenant')}/quotas"
        return await self._client._one(QuotasOut, Call("GET", path))

    async def put_quotas(self, tenant: str, body: Body = None, **fields: Any) -> QuotasOut:
        """Set the tenant's quota overrides given (a ``QuotasIn`` or fields: ``projects``,
        ``agents``, ``triggers``, ``api_keys``, …); None restores a default."""
        path = f"/api/v1/admin/tenants/{core.segment(tenant, 'tenant')}/quotas"
        return await self._client._one(QuotasOut, Call("PUT", path, json=core.body(body, fields)))


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


class Retention(_Resource):
    """``/retention``: how long the project keeps finished invocations (with their
    attempts) and audit events: ``history_retention_days`` and ``history_max_per_trigger``,
    each in force, its default and the project's override."""

    async def get(self, *, project: str | None = None) -> RetentionOut:
        path = f"{self._paths(project).project}/retention"
        return await self._client._one(RetentionOut, Call("GET", path))

    async def put(
        self,
        body: RetentionIn | Mapping[str, Any] | None = None,
        *,
        project: str | None = None,
        if_match: IfMatch = None,
        **fields: Any,
    ) -> RetentionOut:
        """Change the project's overrides: a field left out stays as it is, ``None``
        restores the default."""
        path = f"{self._paths(project).project}/retention"
        call = Call("PUT", path, json=core.body(body, fields), if_match=core.if_match(if_match))
        return await self._client._one(RetentionOut, call)


class Audit(_Resource):
    """``/audit``: every change, newest first, with its actor and the target before and
    after (secrets redacted)."""

    def list(
        self, *, project: str | None = None, page_size: int = core.DEFAULT_PAGE_SIZE
    ) -> AsyncIterator[AuditEventOut]:
        """The changes to the project and everything in it."""
        call = Call("GET", f"{self._paths(project).project}/audit")
        return self._client._items(AuditEventOut, call, page_size)

    def tenant(self, *, page_size: int = core.DEFAULT_PAGE_SIZE) -> AsyncIterator[AuditEventOut]:
        """Every change in the tenant: its projects' (deleted ones too) and its own (API
        keys, quotas)."""
        call = Call("GET", f"{self._paths(None).tenant}/audit")
        return self._client._items(AuditEventOut, call, page_size)
