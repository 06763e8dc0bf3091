"""Refs over HTTP: list them, delete one with everything on it (SPEC §5, §7). Deleting a
ref deletes its agents and their triggers and cancels their pending and running
invocations; every invocation stays as history; main cannot be deleted."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import Scope, at, dispatch_at, problem, work_one
from tickwork.services import execution
from tickwork.services.context import Context
from tickwork.testing import FakeClock

PYTHON = {"type": "python", "handler": "agents.run"}
BRANCH = "feature/x"


def refs(api: TestClient, scope: Scope) -> list[dict[str, Any]]:
    response = api.get(scope.project_url + "/refs")
    assert response.status_code == 200
    listed: list[dict[str, Any]] = response.json()
    return listed


def branch_trigger(api: TestClient, scope: Scope) -> dict[str, Any]:
    """Agent ``a`` on the branch, with a */15 trigger there."""
    put = api.put(scope.agent_url, params={"ref": BRANCH}, json={"target": PYTHON})
    assert put.status_code == 201
    body = {"name": "on-branch", "cron_expression": "*/15 * * * *"}
    response = api.post(scope.triggers, params={"ref": BRANCH}, json=body)
    assert response.status_code == 201
    created: dict[str, Any] = response.json()
    return created


def test_refs_list_by_name_with_their_revisions(api: TestClient, scope: Scope) -> None:
    assert [(r["name"], r["revision"]) for r in refs(api, scope)] == [("main", 1)]
    branch_trigger(api, scope)
    listed = refs(api, scope)
    # Putting the agent and then its trigger are two writes to the branch.
    assert [(r["name"], r["revision"]) for r in listed] == [(BRANCH, 2), ("main", 1)]
    assert listed[0]["created_at"] == at(0)
    assert set(listed[0]) == {"name", "revision", "created_at", "updated_at"}


def test_deleting_a_ref_deletes_its_agents_and_triggers_and_cancels_their_work(
    api: TestClient, scope: Scope, ctx: Context, clock: FakeClock
) -> None:
    on_branch = branch_trigger(api, scope)
    on_main = api.post(scope.triggers, json={"name": "m", "cron_expression": "*/15 * * * *"})
    # History: a finished run of the branch trigger.
    assert api.post(scope.trigger(on_branch["id"]) + "/run").status_code == 202
    finished = work_one(ctx, "completed")
    # Both triggers fire at 09:15 and their attempts start; then a run now waits.
    assert dispatch_at(ctx, clock, 15) == 2
    running = {job.invocation.trigger_id: job.invocation.id for job in claim_all(ctx)}
    clock.advance(minutes=1)
    waiting = api.post(scope.trigger(on_branch["id"]) + "/run").json()["id"]

    assert api.delete(f"{scope.project_url}/refs/{BRANCH}").status_code == 204

    assert [r["name"] for r in refs(api, scope)] == ["main"]
    problem(api.get(scope.agent_url, params={"ref": BRANCH}), 404)
    problem(api.get(scope.trigger(on_branch["id"])), 404)
    listed = api.get(scope.project_invocations, params={"limit": 200}).json()["items"]
    history = {i["id"]: i for i in listed}
    assert history[finished]["status"] == "completed"
    for cancelled in (running[on_branch["id"]], waiting):
        assert history[cancelled]["status"] == "cancelled"
        assert history[cancelled]["status_reason"] == f"ref {BRANCH} deleted"
        assert history[cancelled]["completed_at"] == at(16)
    # main is untouched: its agent, its trigger and its running attempt.
    assert api.get(scope.agent_url).status_code == 200
    assert api.get(scope.trigger(on_main.json()["id"])).json()["enabled"] is True
    assert history[running[on_main.json()["id"]]]["status"] == "running"


def claim_all(ctx: Context) -> list[execution.Job]:
    return execution.claim_jobs(ctx, "worker-1", 10)


def test_a_running_attempt_on_a_deleted_ref_is_told_to_stop(
    api: TestClient, scope: Scope, ctx: Context, clock: FakeClock
) -> None:
    on_branch = branch_trigger(api, scope)
    dispatch_at(ctx, clock, 15)
    [job] = claim_all(ctx)
    api.delete(f"{scope.project_url}/refs/{BRANCH}")
    fetched = api.get(scope.project_invocations, params={"status": "cancelled"}).json()["items"]
    assert [i["id"] for i in fetched] == [job.invocation.id]
    assert fetched[0]["trigger_id"] == on_branch["id"]
    # The worker holding the attempt learns it must stop.
    assert execution.no_longer_running(ctx, [job.invocation.id]) == [job.invocation.id]


def test_a_deleted_ref_can_be_used_again_from_scratch(api: TestClient, scope: Scope) -> None:
    branch_trigger(api, scope)
    api.delete(f"{scope.project_url}/refs/{BRANCH}")
    # The ref's agents went with it: listing the agent's triggers there is 404.
    problem(api.get(scope.triggers, params={"ref": BRANCH}), 404)
    branch_trigger(api, scope)
    listed = {r["name"]: r["revision"] for r in refs(api, scope)}
    assert listed == {BRANCH: 2, "main": 1}


def test_main_cannot_be_deleted(api: TestClient, scope: Scope) -> None:
    body = problem(api.delete(scope.project_url + "/refs/main"), 409)
    assert "main" in body["detail"]
    assert api.get(scope.agent_url).status_code == 200


def test_deleting_a_missing_ref_is_404(api: TestClient, scope: Scope) -> None:
    problem(api.delete(scope.project_url + "/refs/nowhere"), 404)
    problem(api.delete("/api/v1/tenants/acme/projects/missing/refs/x"), 404)
    problem(api.get("/api/v1/tenants/acme/projects/missing/refs"), 404)


@pytest.mark.parametrize("ref", ["-x", "a/-b", "a//b", "a%20b", "x" * 65, "a/b/c/d/e"])
def test_deleting_a_ref_with_a_malformed_name_is_422(
    api: TestClient, scope: Scope, ref: str
) -> None:
    body = problem(api.delete(f"{scope.project_url}/refs/{ref}"), 422)
    assert body["errors"][0]["field"] == "path.ref"
