"""The client's control of scheduling against the app in-process: pause, resume and skip
a trigger or a project, backfills, bulk cancel and rerun; optimistic changes with
``if_match=`` (the ETag of the version a change is based on)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TypedDict

import pytest
from fastapi import FastAPI
from starlette.exceptions import StarletteDeprecationWarning

from tests.api.helpers import START, TenantKey, as_httpx
from tickwork.client import ApiError, Client, etag
from tickwork.services.context import Context
from tickwork.wire import BackfillDryRunOut, BackfillOut

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")
URL = "http://testserver"


class Window(TypedDict):
    """The past a backfill covers, as the keyword arguments of plan() and create()."""

    from_: datetime
    to: datetime


HANDLER = {"type": "python", "handler": "agents.run"}


@pytest.fixture
def sdk(app: FastAPI, acme: TenantKey) -> Iterator[Client]:
    """A client of tenant acme in project ``demo``, which has the agent ``writer``."""
    with TestClient(app) as http:
        client = Client(URL, acme.key, tenant="acme", project="demo", http_client=as_httpx(http))
        client.projects.put(name="Demo")
        client.agents.put("writer", target=HANDLER)
        yield client


@pytest.fixture
def hourly(sdk: Client) -> str:
    return sdk.triggers.create("writer", name="hourly", cron_expression="0 * * * *").id


def test_a_trigger_is_paused_resumed_and_told_to_skip(sdk: Client, hourly: str) -> None:
    until = START + timedelta(hours=3)
    paused = sdk.triggers.pause("writer", hourly, reason="maintenance", until=until)
    assert (paused.paused, paused.paused_reason, paused.paused_until) == (
        True,
        "maintenance",
        until,
    )
    assert [t.id for t in sdk.triggers.search(paused=True)] == [hourly]
    resumed = sdk.triggers.resume("writer", hourly)
    assert (resumed.paused, resumed.paused_reason) == (False, None)
    assert resumed.next_run_at == START + timedelta(hours=1)
    assert sdk.triggers.skip("writer", hourly, 2).skip_remaining == 2
    assert sdk.triggers.skip("writer", hourly, 0).skip_remaining == 0
    with pytest.raises(ApiError) as raised:
        sdk.triggers.skip("writer", hourly, -1)
    assert (raised.value.status, raised.value.errors[0].field) == (422, "count")


def test_pausing_with_cancel_pending_cancels_the_waiting_runs(sdk: Client, hourly: str) -> None:
    waiting = sdk.triggers.run("writer", hourly)
    sdk.triggers.pause("writer", hourly, cancel_pending=True)
    assert sdk.invocations.get(waiting.id).status == "cancelled"


def test_a_project_is_paused_and_resumed(sdk: Client) -> None:
    paused = sdk.projects.pause(reason="incident 42")
    assert (paused.id, paused.paused, paused.paused_reason) == ("demo", True, "incident 42")
    assert sdk.projects.get().paused is True
    assert sdk.projects.resume().paused is False
    with pytest.raises(ApiError) as raised:
        sdk.projects.pause("nope")
    assert raised.value.status == 404


def test_a_backfill_is_planned_created_listed_got_and_cancelled(sdk: Client, hourly: str) -> None:
    window: Window = {"from_": START - timedelta(hours=5), "to": START}
    plan = sdk.backfills.plan("writer", hourly, **window)
    assert isinstance(plan, BackfillDryRunOut)
    assert (plan.slots, plan.created, plan.skipped) == (5, 5, 0)
    assert list(sdk.backfills.list("writer", hourly)) == []  # the plan wrote nothing
    first = sdk.backfills.create("writer", hourly, **window, max_concurrency=2)
    assert isinstance(first, BackfillOut)
    assert (first.status, first.slots, first.created, first.max_concurrency) == (
        "running",
        5,
        5,
        2,
    )
    earlier: Window = {"from_": START - timedelta(hours=7), "to": START - timedelta(hours=5)}
    second = sdk.backfills.create("writer", hourly, **earlier, mode="all")
    assert (second.mode, second.slots) == ("all", 2)
    listed = list(sdk.backfills.list("writer", hourly, page_size=1))  # a page each
    assert {b.id for b in listed} == {first.id, second.id}
    assert sdk.backfills.get("writer", hourly, first.id) == first
    cancelled = sdk.backfills.cancel("writer", hourly, first.id)
    assert cancelled.status == "cancelled"
    with pytest.raises(ApiError) as raised:
        sdk.backfills.cancel("writer", hourly, first.id)
    assert raised.value.status == 409
    with pytest.raises(ApiError) as raised:
        sdk.backfills.create("writer", hourly, from_=START, to=START + timedelta(hours=1))
    assert raised.value.status == 422  # a backfill runs the past


def test_a_backfill_sent_again_with_its_key_is_made_once(sdk: Client, hourly: str) -> None:
    window: Window = {"from_": START - timedelta(hours=2), "to": START}
    made = sdk.backfills.create("writer", hourly, **window, idempotency_key="deploy-7")
    again = sdk.backfills.create("writer", hourly, **window, idempotency_key="deploy-7")
    assert again == made
    assert len(list(sdk.backfills.list("writer", hourly))) == 1


def test_invocations_are_cancelled_and_rerun_in_bulk(sdk: Client, hourly: str) -> None:
    runs = [sdk.triggers.run("writer", hourly).id for _ in range(3)]
    counted = sdk.invocations.cancel_many(agent="writer", dry_run=True)
    assert (counted.matched, counted.changed, counted.dry_run) == (3, 3, True)
    assert {i.status for i in sdk.invocations.list()} == {"pending"}
    done = sdk.invocations.cancel_many(trigger_id=hourly, status="pending", limit=2)
    assert (done.matched, done.changed) == (2, 2)
    assert sdk.invocations.cancel_many().changed == 1
    again = sdk.invocations.rerun_many(status="cancelled", idempotency_key="rerun-1")
    assert (again.matched, again.changed) == (3, 3)
    replayed = sdk.invocations.rerun_many(status="cancelled", idempotency_key="rerun-1")
    assert replayed == again
    reruns = list(sdk.invocations.list(origin="rerun"))
    assert len(reruns) == 3
    assert {i.rerun_of for i in reruns} == set(runs)


def test_a_change_based_on_an_old_version_is_refused(sdk: Client, hourly: str) -> None:
    got = sdk.triggers.get("writer", hourly)
    assert etag(got) is not None
    changed = sdk.triggers.update("writer", hourly, if_match=got, max_retries=2)
    assert etag(changed) not in (None, etag(got))
    with pytest.raises(ApiError) as raised:  # based on the version before that change
        sdk.triggers.update("writer", hourly, if_match=got, max_retries=3)
    assert raised.value.status == 412
    assert sdk.triggers.get("writer", hourly).max_retries == 2
    tag = etag(changed)
    assert tag is not None
    assert sdk.triggers.update("writer", hourly, if_match=tag, max_retries=4).max_retries == 4
    [listed] = sdk.triggers.list("writer")
    with pytest.raises(ValueError, match="came with no ETag"):
        sdk.triggers.update("writer", hourly, if_match=listed, max_retries=5)
    with pytest.raises(ApiError) as raised:
        sdk.triggers.delete("writer", hourly, if_match=got)
    assert raised.value.status == 412
    sdk.triggers.delete("writer", hourly, if_match="*")
    assert list(sdk.triggers.list("writer")) == []


def test_agents_and_definitions_take_if_match_too(sdk: Client) -> None:
    agent = sdk.agents.get("writer")
    renamed = sdk.agents.put("writer", target=HANDLER, name="Writer", if_match=agent)
    with pytest.raises(ApiError) as raised:
        sdk.agents.put("writer", target=HANDLER, name="Other", if_match=agent)
    assert raised.value.status == 412
    definition = sdk.definitions.get()
    pushed = sdk.definitions.push(definition, if_match=definition)
    assert pushed.changed is False
    sdk.triggers.create("writer", name="meanwhile", cron_expression="@daily")
    with pytest.raises(ApiError) as raised:  # someone added a trigger since the get
        sdk.definitions.push(definition, if_match=definition)
    assert raised.value.status == 412
    sdk.agents.delete("writer", if_match=sdk.agents.get("writer"))
    with pytest.raises(ApiError) as raised:
        sdk.agents.delete("writer", if_match=renamed)
    assert raised.value.status in (404, 412)


def test_an_etag_is_forgotten_with_its_object(sdk: Client, hourly: str) -> None:
    from tickwork.client import _core

    before = len(_core._etags)
    got = sdk.triggers.get("writer", hourly)
    assert len(_core._etags) == before + 1
    del got
    assert len(_core._etags) == before


def test_the_admin_token_makes_tenants_keys_and_quotas(
    app: FastAPI, ctx: Context, sdk: Client
) -> None:
    ctx.settings = ctx.settings.with_(admin_token="admin-secret")
    with TestClient(app) as http, Client(URL, "admin-secret", http_client=as_httpx(http)) as admin:
        assert admin.system.health().status == "ok"
        assert admin.system.ready().status == "ready"
        assert admin.system.scheduler().scheduler is not None
        assert admin.admin.create_tenant("globex").id == "globex"
        minted = admin.admin.create_key("globex", name="ci", scope="read")
        assert (minted.scope, minted.key.startswith("tw_")) == ("read", True)
        assert admin.admin.put_quotas("globex", triggers=5).triggers.limit == 5
        assert admin.admin.get_quotas("globex").triggers.limit == 5
        with Client(URL, minted.key, tenant="globex", http_client=as_httpx(http)) as globex:
            assert list(globex.projects.list()) == []
    with pytest.raises(ApiError) as raised:  # a tenant's key is no admin token
        sdk.admin.create_tenant("initech")
    assert raised.value.status in (401, 403)


def test_retention_is_read_and_changed_with_if_match(sdk: Client) -> None:
    kept = sdk.retention.get()
    assert kept.history_retention_days.override is None
    assert kept.history_retention_days.value == kept.history_retention_days.default
    changed = sdk.retention.put(history_retention_days=7, if_match=kept)
    assert (changed.history_retention_days.value, changed.history_retention_days.override) == (
        7,
        7,
    )
    with pytest.raises(ApiError) as raised:
        sdk.retention.put(history_max_per_trigger=10, if_match=kept)
    assert raised.value.status == 412
    with pytest.raises(ApiError) as raised:
        sdk.retention.put(history_retention_days=0)
    assert (raised.value.status, raised.value.errors[0].field) == (422, "history_retention_days")
    restored = sdk.retention.put(history_retention_days=None)
    assert restored.history_retention_days.override is None


def test_the_audit_log_lists_each_change_with_its_actor_newest_first(
    sdk: Client, hourly: str
) -> None:
    sdk.triggers.pause("writer", hourly, reason="maintenance")
    project_events = list(sdk.audit.list(page_size=2))
    actions = [e.action for e in project_events]
    assert actions[:3] == ["trigger.pause", "trigger.create", "agent.create"]
    assert {e.actor for e in project_events} == {f"api-key:{sdk.keys.list().__next__().id}"}
    assert project_events[0].target_id == hourly
    assert project_events[0].after["paused_reason"] == "maintenance"
    tenant_events = [e.action for e in sdk.audit.tenant()]
    assert tenant_events[: len(actions)] == actions
