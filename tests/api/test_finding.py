"""Finding things (SPEC §10): the project's triggers across agents and refs with filters
and a name search, each trigger's ``last_run``, any invocation of the project by its id,
404 for an agent or ref a list path names that does not exist, and 422 for filter
values that cannot match anything."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import Scope, TenantKey, dispatch_at, field_error, make_scope, problem
from tickwork.services import execution
from tickwork.services.context import Context
from tickwork.testing import FakeClock

PYTHON = {"type": "python", "handler": "agents.run"}


def project_triggers(api: TestClient, scope: Scope, **params: Any) -> list[dict[str, Any]]:
    response = api.get(scope.project_url + "/triggers", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


@pytest.fixture
def spread(api: TestClient, scope: Scope) -> dict[str, str]:
    """Triggers on two agents and two refs: name -> id."""
    api.put(scope.project_url + "/agents/b", json={"target": PYTHON})
    api.put(scope.agent_url, params={"ref": "feature/x"}, json={"target": PYTHON})
    made = {}
    for url, params, name, enabled in [
        (scope.triggers, {}, "Daily report", True),
        (scope.project_url + "/agents/b/scheduled-triggers", {}, "weekly REPORT", True),
        (scope.triggers, {"ref": "feature/x"}, "daily report", False),
        (scope.triggers, {}, "100%_done", True),
        (scope.triggers, {}, "100 done", True),
    ]:
        body = {"name": name, "cron_expression": "@daily", "enabled": enabled}
        response = api.post(url, params=params, json=body)
        assert response.status_code == 201, response.text
        made[f"{params.get('ref', 'main')}:{name}"] = response.json()["id"]
    return made


def names(items: list[dict[str, Any]]) -> list[str]:
    return [f"{t['ref']}:{t['name']}" for t in items]


def test_the_project_list_spans_agents_and_refs_in_creation_order(
    api: TestClient, scope: Scope, spread: dict[str, str]
) -> None:
    assert names(project_triggers(api, scope)) == list(spread)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"agent": "b"}, ["main:weekly REPORT"]),
        ({"ref": "feature/x"}, ["feature/x:daily report"]),
        ({"agent": "a", "ref": "main"}, ["main:Daily report", "main:100%_done", "main:100 done"]),
        ({"enabled": "false"}, ["feature/x:daily report"]),
        ({"q": "report"}, ["main:Daily report", "main:weekly REPORT", "feature/x:daily report"]),
        ({"q": "DAILY", "enabled": "true"}, ["main:Daily report"]),
        ({"q": "%_"}, ["main:100%_done"]),
        ({"q": "0 d"}, ["main:100 done"]),
        ({"q": "nothing like it"}, []),
    ],
)
def test_the_filters_combine(
    api: TestClient,
    scope: Scope,
    spread: dict[str, str],
    params: dict[str, str],
    expected: list[str],
) -> None:
    assert names(project_triggers(api, scope, **params)) == expected


def test_the_project_list_is_paged(api: TestClient, scope: Scope, spread: dict[str, str]) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = api.get(scope.project_url + "/triggers", params=params).json()
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(spread.values())


@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        ({"agent": "nosuch"}, "query.agent", "has no agent 'nosuch' on any ref"),
        ({"agent": "b", "ref": "feature/x"}, "query.agent", "on ref 'feature/x'"),
        ({"ref": "feature/none"}, "query.ref", "has no ref 'feature/none'"),
        ({"enabled": "maybe"}, "query.enabled", ""),
        ({"q": ""}, "query.q", ""),
        ({"agent": "not an id"}, "query.agent", "must be 1-64 letters"),
    ],
)
def test_unknown_filter_values_are_422(
    api: TestClient,
    scope: Scope,
    spread: dict[str, str],
    params: dict[str, str],
    field: str,
    says: str,
) -> None:
    error = field_error(api.get(scope.project_url + "/triggers", params=params))
    assert error["field"] == field
    assert says in error["message"]


def test_another_tenants_project_list_is_404(
    client_for: Callable[[TenantKey], TestClient], rival: TenantKey, scope: Scope
) -> None:
    problem(client_for(rival).get(scope.project_url + "/triggers"), 404)


# --- last_run ----------------------------------------------------------------------------


def test_last_run_follows_the_newest_run_that_started_or_ended(
    api: TestClient, scope: Scope, ctx: Context, clock: FakeClock
) -> None:
    trigger = api.post(scope.triggers, json={"name": "q", "cron_expression": "*/15 * * * *"})
    url = scope.trigger(trigger.json()["id"])
    assert trigger.json()["last_run"] is None
    dispatch_at(ctx, clock, 15)
    assert api.get(url).json()["last_run"] is None  # pending, not started: not a run yet
    [job] = execution.claim_jobs(ctx, "worker-1", 1)
    running = api.get(url).json()["last_run"]
    assert running == {
        "invocation_id": job.invocation.id,
        "scheduled_for": "2026-03-02T09:15:00Z",
        "status": "running",
        "completed_at": None,
        "conversation_id": None,
    }
    execution.settle(
        ctx,
        [
            execution.Outcome(
                job.invocation.id,
                job.invocation.attempt,
                "worker-1",
                "completed",
                clock.now(),
                result={"conversation_id": "c-9"},
                conversation_id="c-9",
            )
        ],
    )
    done = api.get(url).json()["last_run"]
    assert done["status"] == "completed"
    assert done["conversation_id"] == "c-9"
    assert done["completed_at"] == "2026-03-02T09:15:00Z"
    # A newer invocation cancelled before it started is a final one: it is the last run.
    run = api.post(url + "/run").json()
    assert api.get(url).json()["last_run"]["invocation_id"] == job.invocation.id
    api.post(scope.invocation(trigger.json()["id"], run["id"]) + "/cancel")
    for shown in (
        api.get(url).json(),
        api.get(scope.triggers).json()["items"][0],
        project_triggers(api, scope)[0],
    ):
        assert shown["last_run"]["invocation_id"] == run["id"]
        assert shown["last_run"]["status"] == "cancelled"


def test_a_push_answers_each_trigger_with_its_last_run(
    api: TestClient, scope: Scope, ctx: Context, clock: FakeClock
) -> None:
    definition = {
        "agents": [
            {
                "id": "a",
                "target": PYTHON,
                "triggers": [{"name": "q", "cron_expression": "*/15 * * * *"}],
            }
        ]
    }
    api.put(scope.project_url + "/definition", json=definition)
    dispatch_at(ctx, clock, 15)
    execution.claim_jobs(ctx, "worker-1", 1)
    again = api.put(scope.project_url + "/definition", json=definition).json()
    assert again["agents"][0]["triggers"][0]["last_run"]["status"] == "running"


# --- one invocation by its id ------------------------------------------------------------


def test_any_invocation_of_the_project_is_found_by_its_id_even_after_its_trigger_went(
    api: TestClient, scope: Scope, ctx: Context, clock: FakeClock
) -> None:
    trigger = api.post(scope.triggers, json={"name": "q", "cron_expression": "*/15 * * * *"})
    trigger_id = trigger.json()["id"]
    dispatch_at(ctx, clock, 15)
    execution.claim_jobs(ctx, "worker-1", 1)
    [inv] = api.get(scope.project_invocations).json()["items"]
    by_id = api.get(f"{scope.project_invocations}/{inv['id']}")
    assert by_id.status_code == 200
    assert by_id.json()["attempts"][0]["attempt"] == 1
    api.delete(scope.trigger(trigger_id))
    problem(api.get(scope.invocation(trigger_id, inv["id"])), 404)
    after = api.get(f"{scope.project_invocations}/{inv['id']}").json()
    assert after["status"] == "cancelled"
    assert after["status_reason"] == "trigger deleted"
    assert [a["outcome"] for a in after["attempts"]] == ["cancelled"]


def test_an_invocation_of_another_project_or_tenant_is_404(
    api: TestClient,
    scope: Scope,
    client_for: Callable[[TenantKey], TestClient],
    rival: TenantKey,
) -> None:
    trigger = api.post(scope.triggers, json={"name": "q", "cron_expression": "@daily"}).json()
    run = api.post(scope.trigger(trigger["id"]) + "/run").json()
    other = make_scope(api, scope.tenant, project="other")
    problem(api.get(f"{other.project_invocations}/{run['id']}"), 404)
    problem(client_for(rival).get(f"{scope.project_invocations}/{run['id']}"), 404)
    problem(api.get(f"{scope.project_invocations}/inv_{'0' * 26}"), 404)
    problem(api.get(f"{scope.project_invocations}/not-an-id"), 404)


# --- list paths and filters --------------------------------------------------------------


def test_a_list_path_naming_an_agent_or_ref_that_does_not_exist_is_404(
    api: TestClient, scope: Scope
) -> None:
    body = problem(api.get(scope.project_url + "/agents/nosuch/scheduled-triggers"), 404)
    assert "agent 'nosuch' not found" in body["detail"]
    body = problem(api.get(scope.triggers, params={"ref": "feature/none"}), 404)
    assert "on ref 'feature/none'" in body["detail"]
    assert (
        "ref 'feature/none' not found"
        in problem(api.get(scope.project_url + "/agents", params={"ref": "feature/none"}), 404)[
            "detail"
        ]
    )
    assert api.get(scope.triggers).json()["items"] == []  # a known agent with none: empty


@pytest.fixture
def runs(api: TestClient, scope: Scope, ctx: Context, clock: FakeClock) -> dict[str, Any]:
    """A scheduled run and a run now of agent a, a run now of agent b."""
    a = api.post(scope.triggers, json={"name": "q", "cron_expression": "*/15 * * * *"}).json()
    api.put(scope.project_url + "/agents/b", json={"target": PYTHON})
    b_url = scope.project_url + "/agents/b/scheduled-triggers"
    b = api.post(b_url, json={"name": "q", "cron_expression": "@daily"}).json()
    dispatch_at(ctx, clock, 15)
    manual = api.post(scope.trigger(a["id"]) + "/run").json()
    other = api.post(f"{b_url}/{b['id']}/run").json()
    return {"a": a, "b": b, "manual": manual, "other": other}


def listed(api: TestClient, scope: Scope, **params: Any) -> list[str]:
    response = api.get(scope.project_invocations, params=params)
    assert response.status_code == 200, response.text
    return [i["id"] for i in response.json()["items"]]


def test_invocations_filter_by_agent_origin_ref_and_trigger(
    api: TestClient, scope: Scope, runs: dict[str, Any]
) -> None:
    manual, other = runs["manual"]["id"], runs["other"]["id"]
    assert listed(api, scope, origin="manual") == [other, manual]
    assert listed(api, scope, agent="b") == [other]
    assert listed(api, scope, agent="a", origin="manual") == [manual]
    assert len(listed(api, scope, agent="a")) == 2
    assert listed(api, scope, trigger_id=runs["b"]["id"]) == [other]
    assert len(listed(api, scope, ref="main")) == 3
    assert len(listed(api, scope, origin=["manual", "schedule"])) == 3
    assert listed(api, scope, origin="rerun") == []
    own = api.get(scope.invocations(runs["a"]["id"]), params={"origin": "schedule"})
    assert [i["origin"] for i in own.json()["items"]] == ["schedule"]


@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        (
            {"origin": "cron"},
            "query.origin",
            "'cron' is not one of schedule, manual, rerun, backfill",
        ),
        ({"status": "lost"}, "query.status", "'lost' is not one of"),
        ({"agent": "nosuch"}, "query.agent", "has no agent 'nosuch'"),
        ({"ref": "feature/none"}, "query.ref", "has no ref 'feature/none'"),
        ({"trigger_id": "nope"}, "query.trigger_id", "must be a tickwork id"),
    ],
)
def test_invocation_filter_values_that_cannot_match_are_422(
    api: TestClient,
    scope: Scope,
    runs: dict[str, Any],
    params: dict[str, str],
    field: str,
    says: str,
) -> None:
    error = field_error(api.get(scope.project_invocations, params=params))
    assert error["field"] == field
    assert says in error["message"]
    trigger_list = api.get(scope.invocations(runs["a"]["id"]), params={"origin": "cron"})
    assert field_error(trigger_list)["field"] == "query.origin"


def test_a_deleted_triggers_id_still_filters_its_history(
    api: TestClient, scope: Scope, runs: dict[str, Any]
) -> None:
    api.delete(scope.project_url + f"/agents/b/scheduled-triggers/{runs['b']['id']}")
    assert listed(api, scope, trigger_id=runs["b"]["id"]) == [runs["other"]["id"]]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/invocations", {"stauts": "failed"}, "query.stauts"),
        ("/triggers", {"name": "report"}, "query.name"),
        ("/agents", {"ref": "main", "agent": "a"}, "query.agent"),
        ("/definition", {"dryrun": "true"}, "query.dryrun"),
    ],
)
def test_a_query_parameter_the_route_does_not_take_is_422(
    api: TestClient, scope: Scope, path: str, params: dict[str, str], field: str
) -> None:
    error = field_error(api.get(scope.project_url + path, params=params))
    assert error["field"] == field
    assert "is not a parameter of this route (it takes: " in error["message"]


def test_paging_parameters_pass_on_a_list_answered_whole(api: TestClient, scope: Scope) -> None:
    # Clients page every list alike; agents come as one list, whatever the limit.
    listed = api.get(scope.project_url + "/agents", params={"limit": "1", "cursor": "x"})
    assert [a["id"] for a in listed.json()] == ["a"]
