"""tickwork.Client and tickwork.AsyncClient against the app in-process: every resource,
pages across several requests, the server's problems as ApiError."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, TypedDict

import httpx
import pytest
from fastapi import FastAPI
from starlette.exceptions import StarletteDeprecationWarning

from tests.api.helpers import START, TenantKey, as_httpx, dispatch_at, new_tenant, work_one
from tickwork.client import ApiError, AsyncClient, Client
from tickwork.services import quotas
from tickwork.services.context import Context
from tickwork.testing import FakeClock
from tickwork.wire import (
    AgentOut,
    PythonTargetIn,
    PythonTargetOut,
    TriggerCreate,
    TriggerPatch,
    WebhookTargetOut,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

# The test client warns about per-request timeouts, which the client always sends.
pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")
URL = "http://testserver"
HANDLER = {"type": "python", "handler": "agents.run"}


class TriggerScope(TypedDict):
    """Where an invocation is, as the keyword arguments of the invocation calls."""

    agent: str
    trigger_id: str


@pytest.fixture
def connect(app: FastAPI) -> Iterator[Callable[..., Client]]:
    """Clients of the app in-process, as a tenant's key."""
    opened: list[TestClient] = []

    def make(who: TenantKey, **options: Any) -> Client:
        http = TestClient(app)
        opened.append(http.__enter__())
        options = {"tenant": who.tenant, **options}
        return Client(URL, who.key, http_client=as_httpx(http), **options)

    yield make
    for http in opened:
        http.__exit__(None, None, None)


@pytest.fixture
def sdk(connect: Callable[..., Client], acme: TenantKey) -> Client:
    """A client of tenant acme, working in project ``demo`` (created)."""
    client = connect(acme, project="demo")
    client.projects.put(name="Demo")
    client.agents.put("writer", target=HANDLER)
    return client


def test_projects_can_be_put_listed_got_and_deleted(sdk: Client) -> None:
    sdk.projects.put("other", {"name": "Other", "description": "second"})
    assert sdk.projects.put("other", description="changed").name == "other"  # PUT replaces
    assert [p.id for p in sdk.projects.list()] == ["demo", "other"]
    assert sdk.projects.get().name == "Demo"
    assert sdk.projects.get("other").description == "changed"
    sdk.projects.delete("other")
    with pytest.raises(ApiError) as raised:
        sdk.projects.get("other")
    assert raised.value.status == 404
    assert raised.value.detail == "project 'other' not found"


def test_agents_are_typed_by_target_and_never_show_a_secret(sdk: Client) -> None:
    hook = {"type": "webhook", "url": "https://hooks.example.com/a", "secret": "s3cret"}
    shown = sdk.agents.put("hook", target=hook, name="Hook", max_concurrency=2)
    assert isinstance(shown.target, WebhookTargetOut)
    assert shown.target.has_secret
    assert "s3cret" not in shown.model_dump_json()
    feature = sdk.agents.put(
        "writer", {"target": PythonTargetIn(type="python", handler="agents.next")}, ref="feature/x"
    )
    assert isinstance(feature.target, PythonTargetOut)
    assert feature.ref == "feature/x"
    assert [a.id for a in sdk.agents.list()] == ["hook", "writer"]
    assert [a.id for a in sdk.agents.list(ref="feature/x")] == ["writer"]
    assert sdk.agents.get("hook").max_concurrency == 2
    assert {r.name for r in sdk.refs.list()} == {"main", "feature/x"}
    sdk.refs.delete("feature/x")
    assert [r.name for r in sdk.refs.list()] == ["main"]
    sdk.agents.delete("hook")
    assert [a.id for a in sdk.agents.list()] == ["writer"]


def test_triggers_round_trip_through_every_route(sdk: Client, ctx: Context) -> None:
    created = sdk.triggers.create(
        "writer",
        TriggerCreate(name="morning", cron_expression="30 8 * * 1-5", timezone="Europe/Berlin"),
    )
    assert created.next_run_at == START.replace(hour=7, minute=30) + timedelta(days=1)
    assert sdk.triggers.get("writer", created.id) == created
    updated = sdk.triggers.update("writer", created.id, TriggerPatch(payload={"team": "core"}))
    assert updated.payload == {"team": "core"}
    assert sdk.triggers.update("writer", created.id, max_retries=3).max_retries == 3
    preview = sdk.triggers.preview("writer", created.id, count=3)
    assert len(preview.next_runs) == 3
    assert "08:30" in preview.description
    run = sdk.triggers.run("writer", created.id)
    assert (run.origin, run.status) == ("manual", "pending")
    upcoming = sdk.upcoming.get(limit=2)
    assert [u.kind for u in upcoming.items] == ["pending", "scheduled"]
    sdk.triggers.delete("writer", created.id)
    assert list(sdk.triggers.list("writer")) == []
    cancelled = sdk.invocations.list(status="cancelled")
    assert [i.id for i in cancelled] == [run.id]  # deleting cancelled its pending run


def test_invocations_are_listed_got_cancelled_and_rerun(
    sdk: Client, ctx: Context, clock: FakeClock
) -> None:
    trigger = sdk.triggers.create("writer", name="often", cron_expression="*/15 * * * *")
    dispatch_at(ctx, clock, 15)
    done = work_one(ctx, "completed")
    clock.set(START + timedelta(minutes=20))
    pending = sdk.triggers.run("writer", trigger.id)
    scope: TriggerScope = {"agent": "writer", "trigger_id": trigger.id}
    got = sdk.invocations.get(done, **scope)
    assert got.status == "completed"
    assert got.attempts is not None
    assert got.attempts[0].outcome == "completed"
    assert got.result is not None
    assert got.result.conversation_id == "c-1"
    assert [i.id for i in sdk.invocations.list(**scope)] == [pending.id, done]
    assert [i.id for i in sdk.invocations.list(**scope, status=["completed"])] == [done]
    since = (START + timedelta(minutes=14)).isoformat()
    assert [i.id for i in sdk.invocations.list(from_=since, to=START + timedelta(minutes=16))] == [
        done
    ]
    assert sdk.invocations.cancel(pending.id, **scope).status == "cancelled"
    with pytest.raises(ApiError) as raised:
        sdk.invocations.cancel(pending.id, **scope)
    assert raised.value.status == 409
    rerun = sdk.invocations.rerun(done, **scope)
    assert (rerun.origin, rerun.status) == ("rerun", "pending")


def test_lists_iterate_over_every_page(sdk: Client, ctx: Context, clock: FakeClock) -> None:
    made = [
        sdk.triggers.create("writer", name=f"t{n}", cron_expression="* * * * *") for n in range(5)
    ]
    listed = list(sdk.triggers.list("writer", page_size=2))
    assert sorted(t.id for t in listed) == sorted(t.id for t in made)
    assert len({t.id for t in listed}) == 5
    runs = [sdk.triggers.run("writer", made[0].id).id for _ in range(5)]
    assert [i.id for i in sdk.invocations.list(page_size=2)] == runs[::-1]
    for n in range(4):
        sdk.projects.put(f"p{n}")
    assert len(list(sdk.projects.list(page_size=2))) == 5


def test_keys_and_quotas(sdk: Client, connect: Callable[..., Client]) -> None:
    made = sdk.keys.create(name="ci", scope="operate")
    assert made.key.startswith("tw_")
    assert made.scope == "operate"
    assert "ci" in {k.name for k in sdk.keys.list()}
    assert sdk.quotas.get().projects.used == 1
    operator = connect(TenantKey("acme", made.id, made.key), project="demo")
    with pytest.raises(ApiError) as raised:
        operator.projects.put(name="Renamed")
    error = raised.value
    assert (error.status, error.required_scope, error.key_scope) == (403, "write", "operate")
    sdk.keys.revoke(made.id)
    with pytest.raises(ApiError) as raised:
        operator.projects.get()
    assert raised.value.status == 401


def test_the_servers_problems_are_raised_with_their_fields(
    sdk: Client, ctx: Context, connect: Callable[..., Client]
) -> None:
    with pytest.raises(ApiError) as raised:
        sdk.triggers.create(
            "writer", name="bad", cron_expression="61 * * * *", timezone="Mars/Base"
        )
    error = raised.value
    assert error.status == 422
    assert error.type == "urn:tickwork:problem:validation-error"
    assert {e.field for e in error.errors} >= {"cron_expression"}
    with pytest.raises(ApiError) as raised:
        sdk.triggers.get("writer", "trg_" + "0" * 26)
    assert raised.value.status == 404
    quotas.set_overrides(ctx, "acme", {"triggers": 1})
    sdk.triggers.create("writer", name="one", cron_expression="0 9 * * *")
    with pytest.raises(ApiError) as raised:
        sdk.triggers.create("writer", name="two", cron_expression="0 9 * * *")
    quota = raised.value
    assert (quota.status, quota.quota, quota.limit, quota.used) == (429, "triggers", 1, 1)
    assert quota.type.endswith(":quota-exceeded")
    rival = new_tenant(ctx, "rival")
    with pytest.raises(ApiError) as raised:
        connect(rival, tenant="acme", project="demo").projects.get()
    assert raised.value.status == 404  # another tenant's project does not exist for it
    with pytest.raises(ApiError) as raised:
        connect(TenantKey("acme", "key", "tw_wrong"), project="demo").projects.get()
    assert raised.value.status == 401


def test_a_definition_is_pushed_and_answers_what_changed(sdk: Client) -> None:
    definition = {
        "agents": [
            {
                "id": "writer",
                "target": HANDLER,
                "triggers": [{"name": "daily", "cron_expression": "0 9 * * *"}],
            }
        ]
    }
    first = sdk.definitions.push(definition)
    assert (first.summary.triggers.created, first.changed) == (1, True)
    again = sdk.definitions.push(definition)
    assert (again.changed, again.revision, again.summary.triggers.unchanged) == (
        False,
        first.revision,
        1,
    )


def test_a_definition_is_read_back_tried_and_pushed(sdk: Client) -> None:
    hook = {"type": "webhook", "url": "https://hooks.example.com/a", "secret": "s3cret"}
    definition = {
        "agents": [
            {
                "id": "writer",
                "target": hook,
                "triggers": [{"name": "daily", "cron_expression": "0 9 * * *"}],
            }
        ]
    }
    sdk.definitions.push(definition)
    exported = sdk.definitions.get()
    assert exported.agents[0].target.model_dump()["secret"] == {"keep": True}
    assert exported.agents[0].triggers[0].timezone == "UTC"
    assert sdk.definitions.push(exported).changed is False
    changed = {"agents": [definition["agents"][0] | {"triggers": []}]}
    diff = sdk.definitions.diff(changed)
    assert diff.dry_run is True
    assert [(c.action, c.trigger) for c in diff.changes if c.action != "unchanged"] == [
        ("delete", "daily")
    ]
    assert sdk.definitions.get() == exported  # nothing was written
    with pytest.raises(ApiError) as raised:
        sdk.definitions.push({"agents": []})
    assert raised.value.status == 409
    assert sdk.definitions.push({"agents": []}, allow_empty=True).summary.agents.deleted == 1


def test_the_projects_triggers_are_found_and_invocations_by_id(
    sdk: Client, ctx: Context, clock: FakeClock
) -> None:
    sdk.agents.put("reviewer", target=HANDLER)
    daily = sdk.triggers.create("writer", name="Daily report", cron_expression="*/15 * * * *")
    sdk.triggers.create("reviewer", name="weekly review", cron_expression="@weekly")
    sdk.triggers.create("reviewer", name="off", cron_expression="@daily", enabled=False)
    assert [t.name for t in sdk.triggers.search(page_size=1)] == [
        "Daily report",
        "weekly review",
        "off",
    ]
    assert [t.name for t in sdk.triggers.search(q="REPORT")] == ["Daily report"]
    assert [t.name for t in sdk.triggers.search(agent="reviewer", enabled=True)] == [
        "weekly review"
    ]
    assert [t.name for t in sdk.triggers.search(enabled=False)] == ["off"]
    dispatch_at(ctx, clock, 15)
    done = work_one(ctx, "completed")
    [found] = sdk.triggers.search(q="daily")
    assert found.last_run is not None
    assert (found.last_run.invocation_id, found.last_run.status) == (done, "completed")
    manual = sdk.triggers.run("writer", daily.id)
    assert [i.id for i in sdk.invocations.list(agent="writer", origin="manual")] == [manual.id]
    assert [i.id for i in sdk.invocations.list(trigger_id=daily.id)] == [manual.id, done]
    sdk.triggers.delete("writer", daily.id)
    assert sdk.invocations.get(done).status == "completed"
    with pytest.raises(ApiError) as raised:
        list(sdk.invocations.list(agent="nobody"))
    assert (raised.value.status, raised.value.errors[0].field) == (422, "query.agent")


def test_a_create_retried_with_its_key_is_made_once(sdk: Client) -> None:
    first = sdk.triggers.create(
        "writer", name="once", cron_expression="@daily", idempotency_key="k"
    )
    again = sdk.triggers.create(
        "writer", name="once", cron_expression="@daily", idempotency_key="k"
    )
    assert again == first
    with pytest.raises(ApiError) as raised:
        sdk.triggers.create("writer", name="twice", cron_expression="@daily", idempotency_key="k")
    assert raised.value.status == 422


def test_the_async_client_has_the_same_resources(app: FastAPI, acme: TenantKey) -> None:
    async def scenario() -> list[str]:
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
        async with (
            http,
            AsyncClient(URL, acme.key, tenant="acme", project="demo", http_client=http) as sdk,
        ):
            await sdk.projects.put(name="Demo")
            agent = await sdk.agents.put("writer", target=HANDLER)
            assert isinstance(agent, AgentOut)
            for n in range(3):
                await sdk.triggers.create("writer", name=f"t{n}", cron_expression="0 9 * * *")
            names = [t.name async for t in sdk.triggers.list("writer", page_size=2)]
            try:
                await sdk.triggers.get("writer", "trg_" + "0" * 26)
            except ApiError as exc:
                names.append(str(exc.status))
            return names

    assert sorted(asyncio.run(scenario())) == ["404", "t0", "t1", "t2"]


def test_health_filters_and_notifications_through_the_client(
    sdk: Client, ctx: Context, clock: FakeClock
) -> None:
    flaky = sdk.triggers.create(
        "writer", name="flaky", cron_expression="*/15 * * * *", max_retries=0
    )
    sdk.triggers.create("writer", name="fine", cron_expression="0 0 1 1 *")
    dispatch_at(ctx, clock, 15)
    work_one(ctx, "failed", "boom")
    assert [t.name for t in sdk.triggers.search(health="failing")] == ["flaky"]
    assert [t.name for t in sdk.triggers.list("writer", health="ok")] == ["fine"]
    assert sdk.triggers.get("writer", flaky.id).consecutive_failures == 1
    with pytest.raises(ApiError) as raised:
        list(sdk.triggers.search(health="sick"))
    assert raised.value.status == 422
    shown = sdk.notifications.put(
        [{"name": "ops", "url": "https://hooks.example.com/x", "secret": "s", "format": "slack"}]
    )
    assert [(t.name, t.format, t.has_secret) for t in shown.targets] == [("ops", "slack", True)]
    assert sdk.notifications.get() == shown
    event = sdk.notifications.test()
    assert [d.event_id for d in sdk.notifications.deliveries()] == [event.event_id]
