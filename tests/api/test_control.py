"""Pause, resume, skip, bounds, backfills and bulk actions over HTTP (SPEC §10): what
they answer, and a problem in words for every bad input. The fake clock starts at
2026-03-02T09:00:00Z."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import Scope, TenantKey, at, dispatch_at, field_error, problem, work_one
from tickwork.services.context import Context
from tickwork.testing import FakeClock

MakeTrigger = Callable[..., dict[str, Any]]


# --- pause and resume ----------------------------------------------------------------------


def test_pause_and_resume_a_trigger(
    api: TestClient, scope: Scope, acme: TenantKey, make_trigger: MakeTrigger
) -> None:
    trigger = make_trigger(cron_expression="*/15 * * * *")
    url = scope.trigger(trigger["id"])
    paused = api.post(url + "/pause", json={"reason": "vendor outage", "until": at(40)})
    assert paused.status_code == 200, paused.text
    body = paused.json()
    assert {k: body[k] for k in ("paused", "paused_reason", "paused_by", "paused_at")} == {
        "paused": True,
        "paused_reason": "vendor outage",
        "paused_by": f"api-key:{acme.key_id}",
        "paused_at": at(0),
    }
    # While it lasts, next_run_at is the end of the pause: the scheduler wakes then.
    assert (body["paused_until"], body["next_run_at"]) == (at(40), at(40))
    assert api.get(url).json()["paused"] is True
    preview = api.get(url + "/preview", params={"count": 2}).json()
    assert preview["next_runs"] == [at(45), at(60)]
    resumed = api.post(url + "/resume").json()
    assert (resumed["paused"], resumed["paused_until"], resumed["next_run_at"]) == (
        False,
        None,
        at(15),
    )
    # Resuming what is not paused answers it as it is.
    assert api.post(url + "/resume").json() == resumed


def test_a_pause_without_a_body_pauses_until_resumed(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    url = scope.trigger(make_trigger()["id"])
    body = api.post(url + "/pause").json()
    assert (body["paused"], body["paused_until"], body["next_run_at"]) == (True, None, None)
    assert api.get(url + "/preview").json()["next_runs"] == []


def test_a_push_keeps_the_pause(api: TestClient, scope: Scope) -> None:
    definition = {
        "agents": [
            {
                "id": "a",
                "target": {"type": "python", "handler": "agents.run"},
                "triggers": [{"name": "report", "cron_expression": "*/15 * * * *"}],
            }
        ]
    }
    pushed = api.put(scope.project_url + "/definition", json=definition).json()
    trigger_id = pushed["agents"][0]["triggers"][0]["id"]
    api.post(scope.trigger(trigger_id) + "/pause", json={"reason": "hold"})
    definition["agents"][0]["triggers"][0]["description"] = "changed"  # type: ignore[index]
    again = api.put(scope.project_url + "/definition", json=definition).json()
    shown = again["agents"][0]["triggers"][0]
    assert (shown["id"], shown["description"], shown["paused"], shown["paused_reason"]) == (
        trigger_id,
        "changed",
        True,
        "hold",
    )


def test_pause_and_resume_a_project(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    trigger = make_trigger()
    paused = api.post(scope.project_url + "/pause", json={"reason": "incident", "until": at(60)})
    assert paused.status_code == 200, paused.text
    shown = api.get(scope.project_url).json()
    assert (shown["paused"], shown["paused_reason"], shown["paused_until"]) == (
        True,
        "incident",
        at(60),
    )
    assert api.get(scope.project_url + "/upcoming-runs").json()["items"] == []
    # Each trigger keeps its own state.
    assert api.get(scope.trigger(trigger["id"])).json()["paused"] is False
    resumed = api.post(scope.project_url + "/resume").json()
    assert (resumed["paused"], resumed["paused_until"]) == (False, None)
    assert len(api.get(scope.project_url + "/upcoming-runs").json()["items"]) > 0


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"until": "2026-03-02T08:59:59Z"}, "until", "is not in the future"),
        ({"until": "2026-03-02T09:00:00Z"}, "until", "is not in the future"),
        ({"until": "2026-03-02T10:00:00"}, "until", "timezone"),
        ({"until": "soon"}, "until", "datetime"),
        ({"reason": "x" * 1001}, "reason", "1000"),
        ({"reason": 5}, "reason", "string"),
        ({"cancel_pending": "yes"}, "cancel_pending", "boolean"),
        ({"paused": True}, "paused", "Extra inputs"),
    ],
)
@pytest.mark.parametrize("where", ["trigger", "project"])
def test_a_bad_pause_is_refused_in_words(
    api: TestClient,
    scope: Scope,
    make_trigger: MakeTrigger,
    body: dict[str, Any],
    field: str,
    words: str,
    where: str,
) -> None:
    url = scope.trigger(make_trigger()["id"]) if where == "trigger" else scope.project_url
    error = field_error(api.post(url + "/pause", json=body))
    assert error["field"] == field
    assert words.lower() in error["message"].lower()


# --- skip ---------------------------------------------------------------------------------------


def test_skip_the_next_slots(
    api: TestClient, scope: Scope, ctx: Context, clock: FakeClock, make_trigger: MakeTrigger
) -> None:
    trigger = make_trigger(cron_expression="*/15 * * * *")
    url = scope.trigger(trigger["id"])
    assert api.post(url + "/skip", json={"count": 2}).json()["skip_remaining"] == 2
    preview = api.get(url + "/preview", params={"count": 2}).json()
    assert preview["skipped_runs"] == [at(15), at(30)]
    assert preview["next_runs"] == [at(45), at(60)]
    dispatch_at(ctx, clock, 15)
    (skipped,) = api.get(url + "/invocations").json()["items"]
    assert (skipped["status"], skipped["status_reason"]) == ("skipped", "skipped by request")
    assert api.get(url).json()["skip_remaining"] == 1
    assert api.post(url + "/skip", json={"count": 0}).json()["skip_remaining"] == 0


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({}, "count", "required"),
        ({"count": -1}, "count", "greater than or equal to 0"),
        ({"count": 10_001}, "count", "less than or equal to 10000"),
        ({"count": "2"}, "count", "integer"),
        ({"count": 1.5}, "count", "integer"),
        ({"count": 1, "slot": at(15)}, "slot", "Extra inputs"),
    ],
)
def test_a_bad_skip_is_refused_in_words(
    api: TestClient,
    scope: Scope,
    make_trigger: MakeTrigger,
    body: dict[str, Any],
    field: str,
    words: str,
) -> None:
    error = field_error(api.post(scope.trigger(make_trigger()["id"]) + "/skip", json=body))
    assert error["field"] == field
    assert words.lower() in error["message"].lower()


# --- bounds --------------------------------------------------------------------------------------


def test_bounds_and_max_runs_on_a_trigger(
    api: TestClient, scope: Scope, ctx: Context, clock: FakeClock, make_trigger: MakeTrigger
) -> None:
    trigger = make_trigger(
        cron_expression="*/15 * * * *", starts_at=at(40), ends_at=at(120), max_runs=3
    )
    assert (trigger["next_run_at"], trigger["remaining_runs"], trigger["max_runs"]) == (
        at(45),
        3,
        3,
    )
    url = scope.trigger(trigger["id"])
    assert api.get(url + "/preview").json()["next_runs"] == [at(45), at(60), at(75)]
    for minutes in (45, 60, 75):
        dispatch_at(ctx, clock, minutes)
    shown = api.get(url).json()
    assert (shown["remaining_runs"], shown["next_run_at"]) == (0, None)
    raised = api.patch(url, json={"max_runs": 4}).json()
    assert (raised["remaining_runs"], raised["next_run_at"]) == (1, at(90))
    lifted = api.patch(url, json={"max_runs": None, "ends_at": None}).json()
    assert (lifted["remaining_runs"], lifted["max_runs"], lifted["ends_at"]) == (None, None, None)


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"starts_at": at(60), "ends_at": at(30)}, "ends_at", "is not after starts_at"),
        ({"starts_at": at(60), "ends_at": at(60)}, "ends_at", "is not after starts_at"),
        ({"ends_at": at(-1)}, "ends_at", "is in the past"),
        ({"ends_at": at(5)}, "ends_at", "leaves no slot"),
        ({"ends_at": "2026-03-02T10:00:00"}, "ends_at", "timezone"),
        ({"starts_at": "tomorrow"}, "starts_at", "datetime"),
        ({"max_runs": 0}, "max_runs", "greater than or equal to 1"),
        ({"max_runs": "3"}, "max_runs", "integer"),
        ({"max_runs": 2**31}, "max_runs", "less than or equal to"),
        ({"cron_expression": None, "run_at": at(30), "starts_at": at(40)}, "run_at", "no slot"),
    ],
)
def test_bad_bounds_are_refused_in_words(
    api: TestClient, scope: Scope, fields: dict[str, Any], field: str, words: str
) -> None:
    body = {"name": "b", "cron_expression": "*/15 * * * *"} | fields
    body = {k: v for k, v in body.items() if v is not None}
    error = field_error(api.post(scope.triggers, json=body))
    assert error["field"] == field
    assert words.lower() in error["message"].lower()


def test_bad_bounds_in_a_patch_are_refused_in_words(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    url = scope.trigger(make_trigger(starts_at=at(60))["id"])
    error = field_error(api.patch(url, json={"ends_at": at(30)}))
    assert (error["field"], "is not after starts_at" in error["message"]) == ("ends_at", True)
    # Ending a trigger now is a way to stop it: accepted in a patch.
    stopped = api.patch(url, json={"starts_at": None, "ends_at": at(0)}).json()
    assert stopped["next_run_at"] is None


# --- backfill -----------------------------------------------------------------------------------


def test_a_backfill_dry_run_then_a_real_one(
    api: TestClient, scope: Scope, ctx: Context, clock: FakeClock, make_trigger: MakeTrigger
) -> None:
    trigger = make_trigger(cron_expression="*/15 * * * *")
    url = scope.trigger(trigger["id"])
    clock.set(clock.now().replace(hour=10))  # 10:00: the first slot 09:15 lies in the past
    dispatch_at(ctx, clock, 60)  # the schedule runs 10:00 (09:15..09:45 are missed)
    body = {"from": at(-60), "to": at(60), "mode": "missing", "max_concurrency": 2}
    dry = api.post(url + "/backfill", json=body | {"dry_run": True})
    assert dry.status_code == 200, dry.text
    # 08:00..09:45: 8 slots; none ran (09:15..09:45 were missed).
    assert dry.json() == {"id": None, "dry_run": True, "slots": 8, "created": 8, "skipped": 0}
    assert api.get(url + "/backfills").json()["items"] == []
    created = api.post(url + "/backfill", json=body)
    assert created.status_code == 201, created.text
    shown = created.json()
    assert {k: shown[k] for k in ("from", "to", "mode", "max_concurrency", "status")} == {
        "from": at(-60),
        "to": at(60),
        "mode": "missing",
        "max_concurrency": 2,
        "status": "running",
    }
    assert (shown["slots"], shown["created"], shown["skipped"], shown["dispatched"]) == (8, 8, 0, 0)
    backfill_url = f"{url}/backfills/{shown['id']}"
    assert api.get(backfill_url).json() == shown
    assert [b["id"] for b in api.get(url + "/backfills").json()["items"]] == [shown["id"]]
    from tickwork.services import backfills

    backfills.dispatch_backfills(ctx, clock.now())
    progress = api.get(backfill_url).json()
    assert progress["dispatched"] == 2
    items = api.get(url + "/invocations", params={"status": "pending"}).json()["items"]
    backfilled = [i for i in items if i["origin"] == "backfill"]
    assert {i["backfill_id"] for i in backfilled} == {shown["id"]}
    assert sorted(i["scheduled_for"] for i in backfilled) == [at(-60), at(-45)]
    cancelled = api.post(backfill_url + "/cancel")
    assert cancelled.json()["status"] == "cancelled"
    again = problem(api.post(backfill_url + "/cancel"), 409)
    assert "already cancelled" in again["detail"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"to": at(0)}, "from", "required"),
        ({"from": at(-60)}, "to", "required"),
        ({"from": at(-60), "to": at(1)}, "to", "is in the future"),
        ({"from": at(-30), "to": at(-60)}, "to", "must be after from"),
        ({"from": at(-30), "to": at(-30)}, "to", "must be after from"),
        ({"from": "2026-03-02T08:00:00", "to": at(0)}, "from", "timezone"),
        ({"from": at(-60), "to": at(0), "mode": "some"}, "mode", "'missing', 'failed' or 'all'"),
        ({"from": at(-60), "to": at(0), "max_concurrency": 0}, "max_concurrency", "1"),
        ({"from": at(-60), "to": at(0), "max_concurrency": 1001}, "max_concurrency", "1000"),
        ({"from": at(-60), "to": at(0), "dry_run": "no"}, "dry_run", "boolean"),
        ({"from": at(-60), "to": at(0), "count": 3}, "count", "Extra inputs"),
        ({"from": "2025-01-01T00:00:00Z", "to": at(0)}, "to", "more than 10000 slots"),
    ],
)
def test_a_bad_backfill_is_refused_in_words(
    api: TestClient,
    scope: Scope,
    make_trigger: MakeTrigger,
    body: dict[str, Any],
    field: str,
    words: str,
) -> None:
    url = scope.trigger(make_trigger(cron_expression="* * * * *")["id"])
    error = field_error(api.post(url + "/backfill", json=body))
    assert error["field"] == field
    assert words.lower() in error["message"].lower()


def test_a_backfill_of_a_disabled_trigger_is_a_conflict_and_unknown_ones_are_404(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    url = scope.trigger(make_trigger(enabled=False)["id"])
    conflict = problem(api.post(url + "/backfill", json={"from": at(-60), "to": at(0)}), 409)
    assert "disabled" in conflict["detail"]
    missing = problem(api.get(url + "/backfills/bf_" + "0" * 26), 404)
    assert "backfill" in missing["detail"]
    assert problem(api.get(url + "/backfills/nonsense"), 404)["detail"]
    assert problem(api.post(url + "/backfills/bf_" + "0" * 26 + "/cancel"), 404)


# --- bulk ---------------------------------------------------------------------------------------


def test_bulk_cancel_and_rerun_over_http(
    api: TestClient, scope: Scope, ctx: Context, make_trigger: MakeTrigger
) -> None:
    trigger = make_trigger()
    url = scope.trigger(trigger["id"])
    for _ in range(3):
        assert api.post(url + "/run").status_code == 202
    cancel = scope.project_invocations + "/cancel"
    assert api.post(cancel, json={"dry_run": True}).json() == {
        "matched": 3,
        "changed": 3,
        "dry_run": True,
    }
    assert api.post(cancel, json={"origin": ["schedule"]}).json()["matched"] == 0
    assert api.post(cancel, json={"limit": 2, "trigger_id": trigger["id"]}).json() == {
        "matched": 2,
        "changed": 2,
        "dry_run": False,
    }
    work_one(ctx, "failed", error="boom")
    rerun = scope.project_invocations + "/rerun"
    assert api.post(rerun, json={"agent": "a"}).json() == {
        "matched": 1,
        "changed": 1,
        "dry_run": False,
    }
    assert api.post(rerun, json={"status": ["cancelled"], "dry_run": True}).json()["changed"] == 2
    items = api.get(url + "/invocations").json()["items"]
    (new,) = [i for i in items if i["origin"] == "rerun"]
    (failed,) = [i for i in items if i["status"] == "failed"]
    assert new["rerun_of"] == failed["id"]
    one = api.post(scope.invocation(trigger["id"], failed["id"]) + "/rerun").json()
    assert one["rerun_of"] == failed["id"]


@pytest.mark.parametrize(
    ("action", "body", "field", "words"),
    [
        ("cancel", {"status": ["completed"]}, "status", "only pending, running"),
        ("rerun", {"status": ["pending"]}, "status", "can be rerun"),
        ("cancel", {"status": ["done"]}, "status[0]", "'pending'"),
        ("cancel", {"status": "pending"}, "status", "list"),
        ("rerun", {"origin": ["cron"]}, "origin[0]", "'schedule'"),
        ("cancel", {"limit": 0}, "limit", "greater than or equal to 1"),
        ("cancel", {"limit": 10_001}, "limit", "less than or equal to 10000"),
        ("cancel", {"from": "2026-03-02T08:00:00"}, "from", "timezone"),
        ("cancel", {"from": at(10), "to": at(0)}, "to", "must be after from"),
        ("rerun", {"agent": "Not A Slug"}, "agent", ""),
        ("rerun", {"trigger_id": "trg_x"}, "trigger_id", ""),
        ("cancel", {"everything": True}, "everything", "Extra inputs"),
        ("rerun", {"dry_run": 1}, "dry_run", "boolean"),
    ],
)
def test_a_bad_bulk_filter_is_refused_in_words(
    api: TestClient, scope: Scope, action: str, body: dict[str, Any], field: str, words: str
) -> None:
    error = field_error(api.post(f"{scope.project_invocations}/{action}", json=body))
    assert error["field"] == field
    assert words.lower() in error["message"].lower()


def test_bulk_of_an_unknown_project_is_404(api: TestClient, acme: TenantKey) -> None:
    url = f"/api/v1/tenants/{acme.tenant}/projects/nosuch/invocations/cancel"
    assert "nosuch" in problem(api.post(url, json={}), 404)["detail"]
    assert problem(api.post(f"/api/v1/tenants/{acme.tenant}/projects/nosuch/pause"), 404)
