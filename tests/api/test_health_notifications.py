"""Health on trigger reads and filters, and a project's notification targets through the
API (SPEC §11): ETag and If-Match, a test event with an Idempotency-Key, secrets never
shown, and a clear 4xx for every bad input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import Scope, dispatch_at, field_error, problem, work_one
from tickwork.services.context import Context
from tickwork.testing import FakeClock

HOOK = "https://hooks.example.com/services/T0/B0/x"


def notifications_url(scope: Scope) -> str:
    return scope.project_url + "/notifications"


def listed(api: TestClient, url: str, **params: Any) -> list[str]:
    response = api.get(url, params=params)
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


# -- health ---------------------------------------------------------------------------------


def test_a_trigger_shows_its_health_and_counts(
    api: TestClient,
    scope: Scope,
    ctx: Context,
    clock: FakeClock,
    make_trigger: Callable[..., dict[str, Any]],
) -> None:
    created = make_trigger(name="q", max_retries=0, pause_after_failures=5)
    assert created["health"] == "ok"
    assert created["consecutive_failures"] == 0
    assert created["last_success_at"] is None
    assert created["last_failure_at"] is None
    assert created["pause_after_failures"] == 5
    assert "late_notified_at" not in created
    dispatch_at(ctx, clock, 15)
    work_one(ctx, "failed", "boom")
    shown = api.get(scope.trigger(created["id"])).json()
    assert shown["health"] == "failing"
    assert shown["consecutive_failures"] == 1
    assert shown["last_failure_at"] == "2026-03-02T09:15:00Z"
    patched = api.patch(scope.trigger(created["id"]), json={"pause_after_failures": None})
    assert patched.json()["pause_after_failures"] is None


def test_the_project_and_agent_lists_filter_by_health(
    api: TestClient,
    scope: Scope,
    ctx: Context,
    clock: FakeClock,
    make_trigger: Callable[..., dict[str, Any]],
) -> None:
    make_trigger(name="fails", cron_expression="*/15 * * * *", max_retries=0)
    make_trigger(name="quiet", cron_expression="0 0 1 1 *")
    off = make_trigger(name="off", enabled=False)
    paused = make_trigger(name="held")
    api.post(scope.trigger(paused["id"]) + "/pause", json={"reason": "x"})
    dispatch_at(ctx, clock, 15)
    work_one(ctx, "failed", "boom")
    project = scope.project_url + "/triggers"
    assert listed(api, project, health="failing") == ["fails"]
    assert listed(api, project, health="ok") == ["quiet"]
    assert listed(api, project, health="disabled") == ["off"]
    assert listed(api, project, health="paused") == ["held"]
    assert listed(api, project, health="late") == []
    assert listed(api, scope.triggers, health="failing") == ["fails"]
    # Nothing dispatches for longer than the grace: the next slot of "fails" is late.
    clock.set(clock.now().replace(hour=9, minute=36))
    assert listed(api, project, health="late") == ["fails"]
    assert listed(api, scope.triggers, health="late") == ["fails"]
    assert api.get(scope.trigger(off["id"])).json()["health"] == "disabled"


def test_an_unknown_health_is_422_naming_it(api: TestClient, scope: Scope) -> None:
    for url in (scope.project_url + "/triggers", scope.triggers):
        error = field_error(api.get(url, params={"health": "sick"}))
        assert error["field"] == "query.health"
        assert "'sick' is not one of ok, failing, late, paused, disabled" in error["message"]


@pytest.mark.parametrize("value", [-1, 10_001, "3", True])
def test_a_bad_pause_after_failures_is_422(api: TestClient, scope: Scope, value: object) -> None:
    body = {"name": "x", "cron_expression": "* * * * *", "pause_after_failures": value}
    error = field_error(api.post(scope.triggers, json=body))
    assert "pause_after_failures" in error["field"]


# -- notification targets -------------------------------------------------------------------


def test_targets_are_put_and_read_back_without_their_secrets(api: TestClient, scope: Scope) -> None:
    url = notifications_url(scope)
    empty = api.get(url)
    assert empty.json() == {"targets": [], "updated_at": None}
    assert empty.headers["ETag"] == '"n0"'
    body = {
        "targets": [
            {"name": "ops", "url": HOOK, "secret": "s3cret", "events": ["invocation.failed"]},
            {
                "name": "pager",
                "url": "https://events.example.com/v2/enqueue",
                "format": "pagerduty",
                "routing_key": "R0UT1NG",
                "events": ["trigger.paused", "trigger.late", "trigger.recovered"],
            },
            {"name": "env", "url": HOOK, "secret": {"env": "TICKWORK_TARGET_SECRET_HOOK"}},
        ]
    }
    put = api.put(url, json=body)
    assert put.status_code == 200, put.text
    assert put.headers["ETag"] == '"n1"'
    shown = put.json()["targets"]
    assert "s3cret" not in put.text
    assert shown[0] == {
        "name": "ops",
        "url": HOOK,
        "events": ["invocation.failed"],
        "format": "tickwork",
        "routing_key": None,
        "has_secret": True,
        "secret": None,
    }
    assert shown[1]["routing_key"] == "R0UT1NG"
    assert shown[2]["secret"] == {"env": "TICKWORK_TARGET_SECRET_HOOK"}
    assert shown[2]["events"] is None
    assert api.get(url).json() == put.json()


def test_if_match_guards_a_change_and_keep_keeps_a_secret(api: TestClient, scope: Scope) -> None:
    url = notifications_url(scope)
    first = api.put(url, json={"targets": [{"name": "ops", "url": HOOK, "secret": "s"}]})
    etag = first.headers["ETag"]
    again = {"targets": [{"name": "ops", "url": HOOK, "secret": {"keep": True}}]}
    kept = api.put(url, json=again, headers={"If-Match": etag})
    assert kept.status_code == 200, kept.text
    assert kept.json()["targets"][0]["has_secret"] is True
    problem(api.put(url, json=again, headers={"If-Match": etag}), 412)
    fresh = {"targets": [{"name": "new", "url": HOOK, "secret": {"keep": True}}]}
    error = field_error(api.put(url, json=fresh))
    assert error["field"] == "targets[0].secret"


@pytest.mark.parametrize(
    ("target", "where"),
    [
        ({"name": "x", "url": "ftp://example.com"}, "url"),
        ({"name": "x", "url": HOOK, "events": ["invocation.exploded"]}, "events"),
        ({"name": "x", "url": HOOK, "format": "teams"}, "format"),
        ({"name": "x", "url": HOOK, "format": "pagerduty"}, "routing_key"),
        ({"name": "x", "url": HOOK, "routing_key": "k"}, "routing_key"),
        ({"name": "", "url": HOOK}, "name"),
        ({"name": "x", "url": HOOK, "extra": 1}, "extra"),
        ({"name": "x", "url": HOOK, "secret": 5}, "secret"),
    ],
)
def test_a_bad_target_is_422_naming_the_field(
    api: TestClient, scope: Scope, target: dict[str, Any], where: str
) -> None:
    error = field_error(api.put(notifications_url(scope), json={"targets": [target]}))
    assert where in error["field"], error


def test_duplicate_names_and_too_many_targets_are_422(api: TestClient, scope: Scope) -> None:
    twice = [{"name": "x", "url": HOOK}, {"name": "x", "url": HOOK}]
    error = field_error(api.put(notifications_url(scope), json={"targets": twice}))
    assert error["field"] == "targets[1].name"
    many = [{"name": f"t{i}", "url": HOOK} for i in range(21)]
    field_error(api.put(notifications_url(scope), json={"targets": many}))


def test_another_project_or_tenant_is_404(api: TestClient, scope: Scope) -> None:
    missing = scope.tenant_url + "/projects/nope/notifications"
    problem(api.get(missing), 404)
    problem(api.put(missing, json={"targets": []}), 404)
    problem(api.post(missing + "/test"), 404)


# -- the test event and the deliveries ------------------------------------------------------


def test_a_test_event_is_queued_for_every_target_once_per_key(
    api: TestClient, scope: Scope
) -> None:
    url = notifications_url(scope)
    error = field_error(api.post(url + "/test"))
    assert "no notification targets" in error["message"]
    api.put(
        url,
        json={
            "targets": [
                {"name": "a", "url": HOOK, "events": ["trigger.late"]},
                {"name": "b", "url": HOOK + "/2"},
            ]
        },
    )
    sent = api.post(url + "/test", headers={"Idempotency-Key": "probe-1"})
    assert sent.status_code == 202, sent.text
    event_id = sent.json()["event_id"]
    assert event_id.startswith("evt_")
    replay = api.post(url + "/test", headers={"Idempotency-Key": "probe-1"})
    assert replay.json() == sent.json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    deliveries = api.get(url + "/deliveries").json()["items"]
    assert sorted(d["target"] for d in deliveries) == ["a", "b"]
    assert {d["event_id"] for d in deliveries} == {event_id}
    assert all(d["status"] == "pending" and d["attempts"] == 0 for d in deliveries)
    assert deliveries[0]["event"]["type"] == "notification.test"
    page = api.get(url + "/deliveries", params={"limit": 1}).json()
    assert page["next_cursor"] == page["items"][0]["id"]
    field_error(api.get(url + "/deliveries", params={"limit": 0}))
