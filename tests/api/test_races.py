"""Requests that race each other answer 2xx, 404 or 409, never 500 (SPEC §9): many PUTs
of the same new resource, and a PUT against a DELETE of what it lives in."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from fastapi.testclient import TestClient

from tests.api.helpers import Scope

WEBHOOK = {"type": "webhook", "url": "https://hooks.example.com/run"}


def race(*calls: Callable[[], Any], workers: int = 16) -> Counter[int]:
    """Run the calls at once; count the status codes they answered."""
    with ThreadPoolExecutor(workers) as pool:
        responses = list(pool.map(lambda call: call(), calls))
    for response in responses:
        assert response.status_code != 500, response.text
    return Counter(r.status_code for r in responses)


def test_many_puts_of_the_same_new_agent_create_it_once(api: TestClient, scope: Scope) -> None:
    url = scope.project_url + "/agents/racer"
    codes = race(*[lambda: api.put(url, json={"target": WEBHOOK})] * 40)
    assert codes[201] == 1
    assert codes[200] == 39
    agents = api.get(scope.project_url + "/agents").json()
    assert sorted(a["id"] for a in agents) == ["a", "racer"]


def test_many_puts_of_the_same_new_project_create_it_once(api: TestClient, scope: Scope) -> None:
    url = scope.tenant_url + "/projects/raced"
    codes = race(*[lambda: api.put(url, json={"name": "Raced"})] * 40)
    assert (codes[201], codes[200]) == (1, 39)


def test_puts_racing_the_delete_of_their_agent_never_fail_with_500(
    api: TestClient, scope: Scope
) -> None:
    url = scope.project_url + "/agents/racer"
    for _ in range(5):
        calls = [lambda: api.put(url, json={"target": WEBHOOK})] * 10 + [
            lambda: api.delete(url)
        ] * 10
        codes = race(*calls)
        assert set(codes) <= {200, 201, 204, 404, 409}, codes


def test_writes_racing_the_delete_of_their_project_never_fail_with_500(
    api: TestClient, scope: Scope
) -> None:
    for round_ in range(3):
        project = f"{scope.tenant_url}/projects/doomed{round_}"
        assert api.put(project).status_code == 201
        agent = project + "/agents/bot"
        assert api.put(agent, json={"target": WEBHOOK}).status_code == 201
        codes = race(*_writes_and_deletes(api, project, agent))
        assert set(codes) <= {200, 201, 204, 404, 409}, codes


def _writes_and_deletes(api: TestClient, project: str, agent: str) -> list[Callable[[], Any]]:
    calls: list[Callable[[], Any]] = []
    for i in range(8):
        trigger = {"name": f"t{i}", "cron_expression": "* * * * *"}
        calls.append(lambda: api.put(agent, json={"target": WEBHOOK}))
        calls.append(partial(api.post, agent + "/scheduled-triggers", json=trigger))
    return calls + [lambda: api.delete(project)] * 4
