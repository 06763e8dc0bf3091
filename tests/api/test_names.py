"""Trigger names are unique per agent and ref (SPEC §10): a create or a rename onto a
name in use answers 409 naming the field and the trigger that has it; concurrent creates
of one name make one trigger and 409s, never a 500."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.testclient import TestClient

from tests.api.helpers import Scope, field_error, problem

MakeTrigger = Callable[..., dict[str, Any]]
BODY = {"name": "report", "cron_expression": "@daily"}
PYTHON = {"type": "python", "handler": "agents.run"}


def test_a_second_trigger_of_one_name_is_409_naming_the_first(
    api: TestClient, scope: Scope
) -> None:
    first = api.post(scope.triggers, json=BODY).json()
    body = problem(api.post(scope.triggers, json=BODY | {"cron_expression": "@hourly"}), 409)
    assert body["errors"] == [
        {
            "field": "name",
            "message": f"agent 'a' already has a scheduled trigger named 'report' on ref "
            f"'main' ({first['id']}); names are unique per agent and ref",
        }
    ]
    assert [t["id"] for t in api.get(scope.triggers).json()["items"]] == [first["id"]]


def test_the_same_name_is_free_on_another_agent_or_ref_and_names_are_exact(
    api: TestClient, scope: Scope
) -> None:
    assert api.post(scope.triggers, json=BODY).status_code == 201
    other = scope.project_url + "/agents/b"
    api.put(other, json={"target": PYTHON})
    assert api.post(other + "/scheduled-triggers", json=BODY).status_code == 201
    api.put(scope.agent_url, params={"ref": "feature/x"}, json={"target": PYTHON})
    on_branch = api.post(scope.triggers, params={"ref": "feature/x"}, json=BODY)
    assert on_branch.status_code == 201
    for name in ("Report", "report ", "report (2)"):
        assert api.post(scope.triggers, json=BODY | {"name": name}).status_code == 201, name


def test_renaming_onto_a_name_in_use_is_409_and_keeping_ones_own_name_is_not(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    make_trigger(name="taken")
    mine = make_trigger(name="mine")
    url = scope.trigger(mine["id"])
    error = field_error(api.patch(url, json={"name": "taken"}), 409)
    assert error["field"] == "name"
    assert api.get(url).json()["name"] == "mine"
    assert api.patch(url, json={"name": "mine", "max_retries": 2}).status_code == 200
    assert api.patch(url, json={"name": "free"}).json()["name"] == "free"


def test_an_invalid_field_is_reported_before_a_name_in_use(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    make_trigger(name="taken")
    mine = make_trigger(name="mine")
    response = api.patch(scope.trigger(mine["id"]), json={"name": "taken", "max_retries": 99})
    assert field_error(response)["field"] == "max_retries"


def test_concurrent_creates_of_one_name_make_one_trigger(api: TestClient, scope: Scope) -> None:
    barrier = threading.Barrier(6)

    def create(n: int) -> Any:
        barrier.wait(10)
        return api.post(scope.triggers, json=BODY | {"description": str(n)})

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(create, range(6)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] + [409] * 5, [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 409:
            problem(answer, 409)
    assert len(api.get(scope.triggers).json()["items"]) == 1
