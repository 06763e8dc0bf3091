"""Running a trigger now with a payload of its own, finding paused triggers, and the
creating POSTs of control (a backfill, a bulk rerun) sent again with one
``Idempotency-Key`` (SPEC §10). The fake clock starts at 2026-03-02T09:00:00Z."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.api.helpers import Scope, at, dispatch_at, field_error, problem, work_one
from tickwork.services import execution
from tickwork.services.context import Context
from tickwork.testing import FakeClock

MakeTrigger = Callable[..., dict[str, Any]]


def run(api: TestClient, scope: Scope, trigger_id: str, **kwargs: Any) -> Any:
    return api.post(scope.trigger(trigger_id) + "/run", **kwargs)


# --- run now with input ------------------------------------------------------------------


def test_a_run_now_takes_a_payload_for_that_run_only(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, ctx: Context, clock: FakeClock
) -> None:
    trigger = make_trigger(payload={"city": "Berlin"}, message_template="Weather in {{city}}")

    response = run(api, scope, trigger["id"], json={"payload": {"city": "Lisbon"}})

    assert response.status_code == 202, response.text
    assert response.json()["payload"] == {"city": "Lisbon"}
    [job] = execution.claim_jobs(ctx, "worker-1", 1)
    assert job.message == "Weather in Lisbon"
    # The trigger keeps its own payload: the schedule's next run uses it.
    assert api.get(scope.trigger(trigger["id"])).json()["payload"] == {"city": "Berlin"}
    dispatch_at(ctx, clock, 15)
    [scheduled] = execution.claim_jobs(ctx, "worker-1", 1)
    assert scheduled.invocation.origin == "schedule"
    assert scheduled.message == "Weather in Berlin"


def test_a_run_now_without_a_body_or_with_an_empty_one_uses_the_triggers_payload(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    trigger = make_trigger(payload={"n": 1})
    bare = run(api, scope, trigger["id"])
    empty = run(api, scope, trigger["id"], json={})
    explicit_null = run(api, scope, trigger["id"], json={"payload": None})
    for response in (bare, empty, explicit_null):
        assert response.status_code == 202, response.text
        assert response.json()["payload"] == {"n": 1}


def test_a_run_now_payload_is_checked_as_a_triggers_is(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    # Each template placeholder repeats the payload's text: within the payload limit, but
    # the message it renders would be far above the 1 MiB limit on a rendered message.
    trigger = make_trigger(message_template="{{a}}" * 100)
    url = scope.trigger(trigger["id"]) + "/run"

    not_an_object = field_error(api.post(url, json={"payload": [1, 2]}))
    assert not_an_object["field"] == "payload"
    unknown = field_error(api.post(url, json={"payload": {}, "priority": 1}))
    assert unknown["field"] == "priority"

    too_big = problem(api.post(url, json={"payload": {"a": "x" * 300 * 1024}}), 413)
    assert "payload" in too_big["detail"]
    assert "262144" in too_big["detail"]

    amplified = problem(api.post(url, json={"payload": {"a": "x" * 200 * 1024}}), 413)
    assert "renders to" in amplified["detail"]
    assert "1048576" in amplified["detail"]

    # Nothing was created by the refused requests.
    assert api.get(scope.invocations(trigger["id"])).json()["items"] == []


def test_a_run_now_of_a_disabled_trigger_with_a_payload_is_refused(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    trigger = make_trigger(enabled=False)
    body = problem(run(api, scope, trigger["id"], json={"payload": {"n": 2}}), 409)
    assert "disabled" in body["detail"]


def test_one_idempotency_key_names_one_run_payload(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    trigger = make_trigger()
    key = {"Idempotency-Key": "run-once-7"}
    first = run(api, scope, trigger["id"], json={"payload": {"n": 1}}, headers=key)
    again = run(api, scope, trigger["id"], json={"payload": {"n": 1}}, headers=key)
    other = run(api, scope, trigger["id"], json={"payload": {"n": 2}}, headers=key)

    assert first.status_code == again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert field_error(other)["field"] == "header.Idempotency-Key"
    assert len(api.get(scope.invocations(trigger["id"])).json()["items"]) == 1


# --- paused triggers in the project's list ------------------------------------------------


def test_the_projects_trigger_list_filters_by_paused(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    kept = make_trigger(name="kept")
    held = make_trigger(name="held")
    response = api.post(scope.trigger(held["id"]) + "/pause", json={"reason": "vendor down"})
    assert response.status_code == 200, response.text
    url = scope.project_url + "/triggers"

    def names(**params: str) -> list[str]:
        response = api.get(url, params=params)
        assert response.status_code == 200, response.text
        return [t["name"] for t in response.json()["items"]]

    assert names(paused="true") == ["held"]
    assert names(paused="false") == ["kept"]
    assert names() == ["kept", "held"]
    assert names(paused="true", q="kep") == []
    assert field_error(api.get(url, params={"paused": "maybe"}))["field"] == "query.paused"
    api.post(scope.trigger(held["id"]) + "/resume")
    assert names(paused="true") == []
    assert kept["paused"] is False


# --- control's creating POSTs are safe to send again -------------------------------------


def test_a_backfill_sent_again_with_its_key_creates_one_backfill(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, ctx: Context, clock: FakeClock
) -> None:
    trigger = make_trigger(cron_expression="*/15 * * * *")
    dispatch_at(ctx, clock, 60)
    url = scope.trigger(trigger["id"])
    body = {"from": at(-60), "to": at(0)}
    key = {"Idempotency-Key": "backfill-monday"}

    first = api.post(url + "/backfill", json=body, headers=key)
    again = api.post(url + "/backfill", json=body, headers=key)
    other = api.post(url + "/backfill", json=body | {"mode": "all"}, headers=key)

    assert first.status_code == again.status_code == 201, first.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert first.json()["from"] == at(-60)
    assert field_error(other)["field"] == "header.Idempotency-Key"
    assert [b["id"] for b in api.get(url + "/backfills").json()["items"]] == [first.json()["id"]]


def test_a_bulk_rerun_sent_again_with_its_key_reruns_once(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, ctx: Context, clock: FakeClock
) -> None:
    trigger = make_trigger()
    dispatch_at(ctx, clock, 15)
    work_one(ctx, "failed", "boom")
    url = scope.project_url + "/invocations/rerun"
    key = {"Idempotency-Key": "rerun-the-failed"}

    first = api.post(url, json={}, headers=key)
    again = api.post(url, json={}, headers=key)

    assert first.status_code == again.status_code == 200, first.text
    assert first.json()["changed"] == 1
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    reruns = api.get(scope.invocations(trigger["id"]), params={"origin": "rerun"}).json()
    assert len(reruns["items"]) == 1
