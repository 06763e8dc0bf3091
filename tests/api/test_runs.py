"""Rerunning a finished invocation and the project's upcoming runs (SPEC §7). Reruns are
invocations like any other, executed by the workers (driven here through their claim
and settle units of work). The fake clock starts at 2026-03-02T09:00:00Z."""

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


def rerun(api: TestClient, scope: Scope, trigger_id: str, invocation_id: str) -> Any:
    return api.post(scope.invocation(trigger_id, invocation_id) + "/rerun")


def only(api: TestClient, scope: Scope, trigger_id: str, status: str) -> dict[str, Any]:
    [found] = api.get(scope.invocations(trigger_id), params={"status": status}).json()["items"]
    return dict(found)


# --- rerun -------------------------------------------------------------------------------


def test_a_rerun_repeats_the_slot_and_payload_as_a_new_invocation(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, ctx: Context, clock: FakeClock
) -> None:
    trigger = make_trigger(payload={"n": 1})
    dispatch_at(ctx, clock, 15)
    original_id = work_one(ctx, "completed")
    original = api.get(scope.invocation(trigger["id"], original_id)).json()
    clock.advance(minutes=3)
    # The trigger's payload changes afterwards; the rerun keeps what the run was given.
    api.patch(scope.trigger(trigger["id"]), json={"payload": {"n": 2}})

    response = rerun(api, scope, trigger["id"], original_id)

    assert response.status_code == 202
    again = response.json()
    assert again["id"] != original_id
    assert again["origin"] == "rerun"
    assert again["idempotency_key"] == f"rerun:{trigger['id']}:{again['id']}"
    assert again["status"] == "pending"
    assert again["attempt"] == 0
    assert again["scheduled_for"] == at(15)
    assert again["not_before"] == at(18)
    assert again["created_at"] == at(18)
    assert again["payload"] == {"n": 1}
    assert (again["trigger_id"], again["trigger_name"], again["agent"]) == (
        trigger["id"],
        "report",
        "a",
    )
    assert api.get(scope.invocation(trigger["id"], original_id)).json() == original


def test_a_rerun_is_executed_by_the_workers_like_any_run(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, ctx: Context, clock: FakeClock
) -> None:
    trigger = make_trigger()
    dispatch_at(ctx, clock, 15)
    failed = work_one(ctx, "failed", error="boom")
    again = rerun(api, scope, trigger["id"], failed).json()

    [job] = execution.claim_jobs(ctx, "worker-2", 10)
    assert job.invocation.id == again["id"]
    assert job.invocation.idempotency_key == again["idempotency_key"]
    execution.settle(
        ctx,
        [execution.Outcome(again["id"], 1, "worker-2", "completed", clock.now())],
    )
    done = api.get(scope.invocation(trigger["id"], again["id"])).json()
    assert done["status"] == "completed"
    assert [(a["attempt"], a["outcome"], a["worker_id"]) for a in done["attempts"]] == [
        (1, "completed", "worker-2")
    ]
    assert api.get(scope.invocation(trigger["id"], failed)).json()["status"] == "failed"


def test_every_final_status_can_be_rerun(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, ctx: Context, clock: FakeClock
) -> None:
    # Hours without a scheduler for an hourly trigger that never catches up: its slots
    # are recorded as missed.
    missed_trigger = make_trigger(name="missed", cron_expression="0 * * * *", catchup="none")
    trigger = make_trigger()
    dispatch_at(ctx, clock, 15)
    completed = work_one(ctx, "completed")
    dispatch_at(ctx, clock, 30)
    failed = work_one(ctx, "failed", error="boom")
    dispatch_at(ctx, clock, 45)
    cancelled = only(api, scope, trigger["id"], "pending")["id"]
    api.post(scope.invocation(trigger["id"], cancelled) + "/cancel")
    dispatch_at(ctx, clock, 240)
    missed = api.get(scope.invocations(missed_trigger["id"]), params={"status": "missed"})
    missed_id = missed.json()["items"][0]["id"]

    for trigger_id, invocation_id in [
        (trigger["id"], completed),
        (trigger["id"], failed),
        (trigger["id"], cancelled),
        (missed_trigger["id"], missed_id),
    ]:
        response = rerun(api, scope, trigger_id, invocation_id)
        assert response.status_code == 202, response.text
        assert response.json()["origin"] == "rerun"


def test_only_a_final_invocation_can_be_rerun(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, ctx: Context, clock: FakeClock
) -> None:
    trigger = make_trigger()
    dispatch_at(ctx, clock, 15)
    [job] = execution.claim_jobs(ctx, "worker-1", 1)
    dispatch_at(ctx, clock, 30)
    pending = only(api, scope, trigger["id"], "pending")["id"]
    for invocation_id, status in ((job.invocation.id, "running"), (pending, "pending")):
        body = problem(rerun(api, scope, trigger["id"], invocation_id), 409)
        assert f"is {status}" in body["detail"]
        assert "completed, failed, cancelled, missed or skipped" in body["detail"]
    assert len(api.get(scope.invocations(trigger["id"])).json()["items"]) == 2


def test_a_rerun_of_a_disabled_trigger_is_a_conflict(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, ctx: Context, clock: FakeClock
) -> None:
    trigger = make_trigger()
    dispatch_at(ctx, clock, 15)
    completed = work_one(ctx, "completed")
    api.patch(scope.trigger(trigger["id"]), json={"enabled": False})
    body = problem(rerun(api, scope, trigger["id"], completed), 409)
    assert "disabled" in body["detail"]
    assert '"enabled": true' in body["detail"]
    assert len(api.get(scope.invocations(trigger["id"])).json()["items"]) == 1
    # Run now says the same.
    assert "disabled" in problem(api.post(scope.trigger(trigger["id"]) + "/run"), 409)["detail"]


def test_a_rerun_can_be_cancelled_and_rerun_in_turn(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, ctx: Context, clock: FakeClock
) -> None:
    trigger = make_trigger()
    dispatch_at(ctx, clock, 15)
    first = rerun(api, scope, trigger["id"], work_one(ctx, "completed")).json()
    cancelled = api.post(scope.invocation(trigger["id"], first["id"]) + "/cancel").json()
    assert cancelled["status"] == "cancelled"
    second = rerun(api, scope, trigger["id"], first["id"])
    assert second.status_code == 202
    assert second.json()["scheduled_for"] == at(15)


def test_a_rerun_needs_the_invocation_under_its_own_live_trigger(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, ctx: Context, clock: FakeClock
) -> None:
    trigger = make_trigger()
    other = make_trigger(name="other", cron_expression="0 0 * * *")
    dispatch_at(ctx, clock, 15)
    completed = work_one(ctx, "completed")
    problem(rerun(api, scope, other["id"], completed), 404)
    problem(rerun(api, scope, trigger["id"], "inv_" + "0" * 26), 404)
    api.delete(scope.trigger(trigger["id"]))
    problem(rerun(api, scope, trigger["id"], completed), 404)


# --- upcoming runs -----------------------------------------------------------------------


def upcoming(api: TestClient, scope: Scope, **params: Any) -> list[dict[str, Any]]:
    response = api.get(scope.project_url + "/upcoming-runs", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def schedule(items: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(i["at"], i["kind"], i["trigger_name"]) for i in items]


def test_upcoming_runs_merge_every_enabled_trigger_soonest_first(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, clock: FakeClock
) -> None:
    make_trigger(name="quarter")
    clock.advance(seconds=1)  # runs at the same instant are listed oldest trigger first
    make_trigger(name="daily", cron_expression="30 8 * * *", timezone="Europe/Berlin")
    make_trigger(name="once", run_at=at(20))
    make_trigger(name="off", cron_expression="* * * * *", enabled=False)
    target = {"type": "python", "handler": "agents.run"}
    api.put(scope.agent_url, params={"ref": "feature/x"}, json={"target": target})
    body = {"name": "branch", "cron_expression": "0 * * * *"}
    api.post(scope.triggers, params={"ref": "feature/x"}, json=body)

    items = upcoming(api, scope, limit=8)

    assert schedule(items) == [
        (at(15), "scheduled", "quarter"),
        (at(20), "scheduled", "once"),
        (at(30), "scheduled", "quarter"),
        (at(45), "scheduled", "quarter"),
        (at(60), "scheduled", "quarter"),
        (at(60), "scheduled", "branch"),
        (at(75), "scheduled", "quarter"),
        (at(90), "scheduled", "quarter"),
    ]
    assert items[5]["ref"] == "feature/x"
    assert items[0] | {"trigger_id": "trg"} == {
        "kind": "scheduled",
        "at": at(15),
        "scheduled_for": at(15),
        "trigger_id": "trg",
        "trigger_name": "quarter",
        "agent": "a",
        "ref": "main",
        "invocation_id": None,
        "origin": None,
        "attempt": None,
        "reason": None,
    }
    daily = [i for i in upcoming(api, scope, limit=200) if i["trigger_name"] == "daily"]
    assert daily[0]["at"] == "2026-03-03T07:30:00Z"


def test_pending_invocations_come_at_their_not_before(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, ctx: Context, clock: FakeClock
) -> None:
    trigger = make_trigger()
    dispatch_at(ctx, clock, 15)  # a pending invocation for 09:15, not yet started
    clock.advance(minutes=1)
    manual = api.post(scope.trigger(trigger["id"]) + "/run").json()

    items = upcoming(api, scope, limit=4)

    assert schedule(items) == [
        (at(15), "pending", "report"),
        (at(16), "pending", "report"),
        (at(30), "scheduled", "report"),
        (at(45), "scheduled", "report"),
    ]
    assert (items[1]["invocation_id"], items[1]["origin"], items[1]["attempt"]) == (
        manual["id"],
        "manual",
        0,
    )
    assert items[0]["origin"] == "schedule"


def test_a_retry_waiting_for_its_delay_is_upcoming(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, ctx: Context, clock: FakeClock
) -> None:
    make_trigger(cron_expression="0 * * * *")
    dispatch_at(ctx, clock, 60)
    [job] = execution.claim_jobs(ctx, "worker-1", 1)
    retry_at = clock.now().replace(minute=2)
    outcome = execution.Outcome(
        job.invocation.id, 1, "worker-1", "retry", clock.now(), error="503", not_before=retry_at
    )
    execution.settle(ctx, [outcome])
    items = upcoming(api, scope, limit=2)
    assert [(i["at"], i["kind"], i["attempt"]) for i in items] == [
        (at(62), "pending", 1),
        (at(120), "scheduled", None),
    ]


def test_a_trigger_behind_schedule_shows_its_due_slot_then_the_future(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, clock: FakeClock
) -> None:
    make_trigger()
    clock.advance(minutes=67)  # no scheduler ran: 09:15 is still next_run_at
    assert schedule(upcoming(api, scope, limit=3)) == [
        (at(15), "scheduled", "report"),
        (at(75), "scheduled", "report"),
        (at(90), "scheduled", "report"),
    ]


def test_only_the_soonest_triggers_contribute(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, clock: FakeClock
) -> None:
    for name, cron in [
        ("every-1", "* * * * *"),
        ("every-2", "*/2 * * * *"),
        ("every-3", "*/3 * * * *"),
        ("hourly", "0 * * * *"),
    ]:
        make_trigger(name=name, cron_expression=cron)
        clock.advance(seconds=1)  # ids, and so ties, in creation order
    assert schedule(upcoming(api, scope, limit=4)) == [
        (at(1), "scheduled", "every-1"),
        (at(2), "scheduled", "every-1"),
        (at(2), "scheduled", "every-2"),
        (at(3), "scheduled", "every-1"),
    ]


def test_fired_one_time_and_disabled_triggers_are_not_upcoming(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, ctx: Context, clock: FakeClock
) -> None:
    make_trigger(name="once", run_at=at(5))
    make_trigger(name="off", enabled=False)
    dispatch_at(ctx, clock, 5)
    work_one(ctx, "completed")
    assert upcoming(api, scope) == []


def test_upcoming_runs_are_bounded_by_limit(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    make_trigger(cron_expression="* * * * * *")  # every second
    assert len(upcoming(api, scope)) == 50
    items = upcoming(api, scope, limit=200)
    assert len(items) == 200
    assert items[-1]["at"] == at(seconds=200)


@pytest.mark.parametrize("limit", ["0", "201", "-1", "x", "1.5"])
def test_a_bad_upcoming_limit_is_rejected(api: TestClient, scope: Scope, limit: str) -> None:
    response = api.get(scope.project_url + "/upcoming-runs", params={"limit": limit})
    assert field_error(response)["field"] == "query.limit"


def test_upcoming_runs_of_a_missing_project_is_404(api: TestClient, scope: Scope) -> None:
    problem(api.get("/api/v1/tenants/acme/projects/missing/upcoming-runs"), 404)
