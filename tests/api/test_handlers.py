"""Python targets name only handlers a live worker registered (SPEC §9, Egress): an
API-only replica knows them from the process registry, and anything else is refused with
422 naming the field."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.helpers import Scope, problem
from tickwork.services.context import Context
from tickwork.storage import tables
from tickwork.testing import register_handlers


def test_an_agent_naming_an_unregistered_handler_is_refused(api: TestClient, scope: Scope) -> None:
    url = scope.project_url + "/agents/shell"
    response = api.put(url, json={"target": {"type": "python", "handler": "os.system"}})
    [error] = problem(response, 422)["errors"]
    assert error["field"] == "target.handler"
    assert "no live worker has registered a python handler named 'os.system'" in error["message"]
    assert "agents.run" in error["message"]  # what is registered, to spot a typo
    problem(api.get(url), 404)


def test_a_handler_becomes_acceptable_once_a_worker_registers_it(
    api: TestClient, scope: Scope, ctx: Context
) -> None:
    url = scope.project_url + "/agents/late"
    target = {"type": "python", "handler": "reports.weekly"}
    problem(api.put(url, json={"target": target}), 422)
    register_handlers(ctx, ["reports.weekly"])
    assert api.put(url, json={"target": target}).status_code == 201


def test_with_no_live_worker_every_python_handler_is_refused_and_says_why(
    api: TestClient, scope: Scope, ctx: Context
) -> None:
    with ctx.db.write() as tx:
        tx.conn.execute(tables.processes.delete())
    response = api.put(
        scope.project_url + "/agents/x",
        json={"target": {"type": "python", "handler": "agents.run"}},
    )
    [error] = problem(response, 422)["errors"]
    assert error["field"] == "target.handler"
    assert "no tickwork worker process is running" in error["message"]
    # Webhook targets need no worker's code.
    webhook = {"type": "webhook", "url": "https://hooks.example.com/run"}
    assert api.put(scope.project_url + "/agents/y", json={"target": webhook}).status_code == 201


def test_a_definition_push_names_each_unregistered_handler(api: TestClient, scope: Scope) -> None:
    agents = [
        {"id": "good", "target": {"type": "python", "handler": "agents.run"}},
        {"id": "bad", "target": {"type": "python", "handler": "builtins.eval"}},
        {"id": "hook", "target": {"type": "webhook", "url": "https://hooks.example.com/"}},
        {"id": "worse", "target": {"type": "python", "handler": "os.system"}},
    ]
    response = api.put(scope.project_url + "/definition", json={"agents": agents})
    errors = problem(response, 422)["errors"]
    assert [e["field"] for e in errors] == ["agents[1].target.handler", "agents[3].target.handler"]
    # Nothing of the push was kept.
    ids = [a["id"] for a in api.get(scope.project_url + "/agents").json()]
    assert ids == ["a"]
