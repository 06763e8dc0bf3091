"""Invocations over HTTP: lists with filters and cursors, one with its attempts, and
cancel (SPEC §2, §5, §7). Invocations come from the scheduler's unit of work
(``dispatch_batch``) driven by the fake clock, or from run now; attempts from the
workers' claim and settle."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import Scope, at, dispatch_at, field_error, problem, work_one
from tickwork.services import execution
from tickwork.services.context import Context
from tickwork.testing import FakeClock

MakeTrigger = Callable[..., dict[str, Any]]


@pytest.fixture
def quarter_hours(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, ctx: Context, clock: FakeClock
) -> dict[str, Any]:
    """A */15 trigger dispatched at 09:15, 09:30, 09:45 and 10:00: four pending
    invocations, ids increasing with their slot."""
    trigger = make_trigger(payload={"n": 1})
    for minutes in (15, 30, 45, 60):
        assert dispatch_at(ctx, clock, minutes) == 1
    return trigger


def slots(page: dict[str, Any]) -> list[str]:
    return [i["scheduled_for"] for i in page["items"]]


# --- lists -------------------------------------------------------------------------------


def test_a_triggers_invocations_newest_first(
    api: TestClient, scope: Scope, quarter_hours: dict[str, Any]
) -> None:
    trigger_id = quarter_hours["id"]
    page = api.get(scope.invocations(trigger_id)).json()
    assert slots(page) == [at(60), at(45), at(30), at(15)]
    assert page["next_cursor"] is None
    first = page["items"][-1]
    assert first["origin"] == "schedule"
    assert first["status"] == "pending"
    assert first["idempotency_key"] == f"sched:{trigger_id}:2026-03-02T09:15:00Z"
    assert first["payload"] == {"n": 1}
    assert first["attempts"] is None  # lists leave attempts out


def test_invocations_filter_by_status(
    api: TestClient, scope: Scope, quarter_hours: dict[str, Any]
) -> None:
    url = scope.invocations(quarter_hours["id"])
    to_cancel = next(i for i in api.get(url).json()["items"] if i["scheduled_for"] == at(30))
    api.post(f"{url}/{to_cancel['id']}/cancel")

    assert slots(api.get(url, params={"status": "cancelled"}).json()) == [at(30)]
    assert slots(api.get(url, params={"status": "pending"}).json()) == [at(60), at(45), at(15)]
    both = api.get(url, params=[("status", "pending"), ("status", "cancelled")]).json()
    assert len(both["items"]) == 4
    assert api.get(url, params={"status": "completed"}).json()["items"] == []


def test_invocations_filter_by_scheduled_time_from_inclusive_to_exclusive(
    api: TestClient, scope: Scope, quarter_hours: dict[str, Any]
) -> None:
    url = scope.invocations(quarter_hours["id"])
    window = {"from": at(30), "to": at(60)}
    assert slots(api.get(url, params=window).json()) == [at(45), at(30)]
    assert slots(api.get(url, params={"from": at(45)}).json()) == [at(60), at(45)]
    assert slots(api.get(url, params={"to": at(30)}).json()) == [at(15)]
    # Any offset names the same instant: 10:30+01:00 is 09:30Z.
    offset = {"from": "2026-03-02T10:30:00+01:00", "to": "2026-03-02T10:45:00+01:00"}
    assert slots(api.get(url, params=offset).json()) == [at(30)]
    assert api.get(url, params={"from": at(60), "to": at(15)}).json()["items"] == []


def test_invocations_page_with_a_cursor_stable_under_inserts(
    api: TestClient,
    scope: Scope,
    quarter_hours: dict[str, Any],
    ctx: Context,
    clock: FakeClock,
) -> None:
    url = scope.invocations(quarter_hours["id"])
    first = api.get(url, params={"limit": 3}).json()
    assert slots(first) == [at(60), at(45), at(30)]
    assert first["next_cursor"] == first["items"][-1]["id"]

    assert dispatch_at(ctx, clock, 75) == 1  # a newer one arrives between pages
    rest = api.get(url, params={"limit": 3, "cursor": first["next_cursor"]}).json()
    assert slots(rest) == [at(15)]
    assert rest["next_cursor"] is None
    assert slots(api.get(url, params={"limit": 1}).json()) == [at(75)]


def test_every_page_combined_is_every_invocation_once(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    # Run now, many times within one millisecond of the fake clock.
    trigger = make_trigger()
    made = {api.post(scope.trigger(trigger["id"]) + "/run").json()["id"] for _ in range(7)}
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = api.get(scope.invocations(trigger["id"]), params=params).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen, reverse=True) == seen
    assert set(seen) == made
    assert len(seen) == len(made)


def test_the_project_wide_list_spans_triggers_and_agents(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, ctx: Context, clock: FakeClock
) -> None:
    mine = make_trigger()
    other = Scope("acme", "p", "b")
    api.put(other.agent_url, json={"target": {"type": "python", "handler": "h"}})
    theirs = api.post(other.triggers, json={"name": "o", "cron_expression": "*/30 * * * *"})
    assert dispatch_at(ctx, clock, 30) == 2
    clock.advance(minutes=1)
    manual = api.post(scope.trigger(mine["id"]) + "/run").json()

    everything = api.get(scope.project_invocations).json()["items"]
    assert {(i["trigger_id"], i["agent"], i["origin"]) for i in everything} == {
        (mine["id"], "a", "schedule"),
        (mine["id"], "a", "manual"),
        (theirs.json()["id"], "b", "schedule"),
    }
    only_manual = api.get(scope.project_invocations, params={"from": at(31)}).json()["items"]
    assert [i["id"] for i in only_manual] == [manual["id"]]
    cancelled = api.get(scope.project_invocations, params={"status": "cancelled"}).json()
    assert cancelled["items"] == []
    paged = api.get(scope.project_invocations, params={"limit": 2}).json()
    assert len(paged["items"]) == 2
    assert paged["next_cursor"] is not None


def test_a_triggers_list_for_a_missing_trigger_is_404(api: TestClient, scope: Scope) -> None:
    problem(api.get(scope.invocations("trg_" + "0" * 26)), 404)


@pytest.mark.parametrize("status", ["bogus", "PENDING", "", "pending,failed"])
def test_a_bad_status_filter_is_rejected(
    api: TestClient, scope: Scope, quarter_hours: dict[str, Any], status: str
) -> None:
    for url in (scope.invocations(quarter_hours["id"]), scope.project_invocations):
        error = field_error(api.get(url, params={"status": status}))
        assert error["field"] == "query.status"


@pytest.mark.parametrize("name", ["from", "to"])
@pytest.mark.parametrize("value", ["2026-03-02T09:00:00", "2026-03-02"])
def test_naive_from_and_to_are_rejected(
    api: TestClient, scope: Scope, quarter_hours: dict[str, Any], name: str, value: str
) -> None:
    for url in (scope.invocations(quarter_hours["id"]), scope.project_invocations):
        error = field_error(api.get(url, params={name: value}))
        assert error["field"] == f"query.{name}"


@pytest.mark.parametrize(
    "value",
    ["yesterday", "2026-13-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"],
)
def test_unusable_from_values_are_rejected(api: TestClient, scope: Scope, value: str) -> None:
    error = field_error(api.get(scope.project_invocations, params={"from": value}))
    assert error["field"] == "query.from"


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "cursor=inv_%27%20OR%201=1"])
def test_bad_paging_is_rejected(api: TestClient, scope: Scope, query: str) -> None:
    problem(api.get(f"{scope.project_invocations}?{query}"), 422)


# --- one invocation ----------------------------------------------------------------------


def test_get_one_includes_its_attempts(
    api: TestClient, scope: Scope, quarter_hours: dict[str, Any], ctx: Context
) -> None:
    trigger_id = quarter_hours["id"]
    pending = api.get(scope.invocations(trigger_id)).json()["items"][0]
    fetched = api.get(scope.invocation(trigger_id, pending["id"]))
    assert fetched.status_code == 200
    assert fetched.json() == pending | {"attempts": []}

    done = work_one(ctx, "completed")
    completed = api.get(scope.invocation(trigger_id, done)).json()
    assert completed["status"] == "completed"
    assert completed["attempt"] == 1
    assert completed["conversation_id"] == "c-1"
    assert completed["deployment_id"] == "dep_test"
    assert completed["agent_name"] == "a"
    assert completed["ref"]["name"] == "main"
    assert isinstance(completed["ref"]["revision"], int)
    assert completed["completed_at"] == "2026-03-02T10:00:00Z"
    assert completed["attempts"] == [
        {
            "attempt": 1,
            "deployment_id": "dep_test",
            "worker_id": "worker-1",
            "started_at": "2026-03-02T10:00:00Z",
            "ended_at": "2026-03-02T10:00:00Z",
            "outcome": "completed",
            "error": None,
        }
    ]


def test_get_one_under_the_wrong_trigger_or_a_missing_id_is_404(
    api: TestClient, scope: Scope, quarter_hours: dict[str, Any], make_trigger: MakeTrigger
) -> None:
    invocation = api.get(scope.invocations(quarter_hours["id"])).json()["items"][0]
    other = make_trigger(name="other")
    problem(api.get(scope.invocation(other["id"], invocation["id"])), 404)
    problem(api.post(scope.invocation(other["id"], invocation["id"]) + "/cancel"), 404)
    problem(api.get(scope.invocation(quarter_hours["id"], "inv_" + "0" * 26)), 404)
    problem(api.get(scope.invocation(quarter_hours["id"], "inv_'")), 404)


# --- cancel ------------------------------------------------------------------------------


def test_cancel_a_pending_invocation(
    api: TestClient, scope: Scope, quarter_hours: dict[str, Any], clock: FakeClock
) -> None:
    trigger_id = quarter_hours["id"]
    pending = api.get(scope.invocations(trigger_id)).json()["items"][0]
    clock.advance(seconds=5)
    response = api.post(scope.invocation(trigger_id, pending["id"]) + "/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["status_reason"] == "cancelled by request"
    assert response.json()["completed_at"] == "2026-03-02T10:00:05Z"
    assert api.get(scope.invocation(trigger_id, pending["id"])).json()["status"] == "cancelled"
    # The others are untouched.
    statuses = [i["status"] for i in api.get(scope.invocations(trigger_id)).json()["items"]]
    assert sorted(statuses) == ["cancelled", "pending", "pending", "pending"]


def test_cancel_a_running_invocation(
    api: TestClient, scope: Scope, quarter_hours: dict[str, Any], ctx: Context
) -> None:
    jobs = execution.claim_jobs(ctx, "worker-1", 1)
    url = scope.invocation(quarter_hours["id"], jobs[0].invocation.id)
    assert api.get(url).json()["status"] == "running"
    cancelled = api.post(url + "/cancel").json()
    assert cancelled["status"] == "cancelled"
    attempts = api.get(url).json()["attempts"]
    assert [(a["attempt"], a["outcome"]) for a in attempts] == [(1, "cancelled")]


def test_cancel_a_final_invocation_is_a_conflict(
    api: TestClient, scope: Scope, quarter_hours: dict[str, Any], ctx: Context
) -> None:
    trigger_id = quarter_hours["id"]
    completed = work_one(ctx, "completed")
    failed = work_one(ctx, "failed", error="boom")
    cancelled = api.get(scope.invocations(trigger_id), params={"status": "pending"}).json()
    cancelled_id = cancelled["items"][0]["id"]
    api.post(scope.invocation(trigger_id, cancelled_id) + "/cancel")

    for invocation_id, status in (
        (completed, "completed"),
        (failed, "failed"),
        (cancelled_id, "cancelled"),
    ):
        url = scope.invocation(trigger_id, invocation_id)
        body = problem(api.post(url + "/cancel"), 409)
        assert status in body["detail"]
        assert api.get(url).json()["status"] == status
