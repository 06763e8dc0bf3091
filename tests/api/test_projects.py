"""Projects, refs and agents over HTTP (SPEC §7)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import Scope, TenantKey, dispatch_at, make_scope, problem
from tickwork.services.context import Context
from tickwork.testing import FakeClock

PROJECTS = "/api/v1/tenants/acme/projects"
WEBHOOK = {"type": "webhook", "url": "https://hooks.example.com/run", "secret": "s3cr3t-value"}


# --- projects ----------------------------------------------------------------------------


def test_put_creates_a_project_then_updates_it(api: TestClient, clock: FakeClock) -> None:
    created = api.put(f"{PROJECTS}/billing")
    assert created.status_code == 201
    assert created.json() == {
        "id": "billing",
        "name": "billing",
        "description": "",
        "created_at": "2026-03-02T09:00:00Z",
        "updated_at": "2026-03-02T09:00:00Z",
    }

    clock.advance(minutes=5)
    updated = api.put(f"{PROJECTS}/billing", json={"name": "Billing", "description": "money"})
    assert updated.status_code == 200
    assert updated.json()["name"] == "Billing"
    assert updated.json()["description"] == "money"
    assert updated.json()["created_at"] == "2026-03-02T09:00:00Z"
    assert updated.json()["updated_at"] == "2026-03-02T09:05:00Z"

    fetched = api.get(f"{PROJECTS}/billing")
    assert fetched.status_code == 200
    assert fetched.json() == updated.json()


def test_a_new_project_has_a_main_ref(api: TestClient) -> None:
    api.put(f"{PROJECTS}/billing")
    refs = api.get(f"{PROJECTS}/billing/refs").json()
    assert [(r["name"], r["revision"]) for r in refs] == [("main", 0)]


def test_get_on_a_missing_project_is_404(api: TestClient) -> None:
    body = problem(api.get(f"{PROJECTS}/nothing-here"), 404)
    assert "nothing-here" in body["detail"]


def test_projects_list_in_pages(api: TestClient) -> None:
    names = [f"p{i:02}" for i in range(5)]
    for name in reversed(names):
        assert api.put(f"{PROJECTS}/{name}").status_code == 201

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = api.get(PROJECTS, params=params).json()
        seen += [p["id"] for p in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert cursor == seen[-1]
    assert seen == names
    assert pages == 3


def test_the_projects_list_is_stable_under_inserts(api: TestClient) -> None:
    for name in ("b", "d", "f"):
        api.put(f"{PROJECTS}/{name}")
    first = api.get(PROJECTS, params={"limit": 2}).json()
    assert [p["id"] for p in first["items"]] == ["b", "d"]
    api.put(f"{PROJECTS}/a")  # sorts before the cursor: belongs to a page already read
    api.put(f"{PROJECTS}/e")
    rest = api.get(PROJECTS, params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [p["id"] for p in rest["items"]] == ["e", "f"]


def test_the_projects_list_defaults(api: TestClient) -> None:
    api.put(f"{PROJECTS}/only")
    page = api.get(PROJECTS).json()
    assert [p["id"] for p in page["items"]] == ["only"]
    assert page["next_cursor"] is None


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=201", "limit=-1", "limit=ten", "limit=" + "9" * 40, "cursor=a/b"]
)
def test_the_projects_list_rejects_bad_paging(api: TestClient, query: str) -> None:
    body = problem(api.get(f"{PROJECTS}?{query}"), 422)
    assert body["errors"][0]["field"] == f"query.{query.split('=')[0]}"


def test_deleting_a_project_deletes_its_invocations_and_leaves_other_projects_alone(
    api: TestClient, scope: Scope, ctx: Context, clock: FakeClock
) -> None:
    trigger = api.post(scope.triggers, json={"name": "t", "cron_expression": "*/15 * * * *"})
    trigger_id = trigger.json()["id"]
    manual = api.post(scope.trigger(trigger_id) + "/run").json()
    assert dispatch_at(ctx, clock, 15) == 1
    other = make_scope(api, "acme", project="other")
    other_trigger = api.post(other.triggers, json={"name": "o", "cron_expression": "@hourly"})
    other_run = api.post(other.trigger(other_trigger.json()["id"]) + "/run").json()

    assert api.delete(scope.project_url).status_code == 204

    problem(api.get(scope.project_url), 404)
    problem(api.get(scope.trigger(trigger_id)), 404)
    problem(api.delete(scope.project_url), 404)
    with ctx.db.read() as tx:
        invocations = tx.list_invocations("acme", "p", limit=10)
        untouched = tx.get_invocation(other_run["id"])
    assert manual["id"]
    assert invocations == []
    # Other projects keep their work.
    assert untouched is not None
    assert untouched.status == "pending"


def test_a_project_created_again_after_a_delete_starts_without_history(
    api: TestClient, scope: Scope, make_trigger: Callable[..., dict[str, Any]]
) -> None:
    trigger = make_trigger()
    api.post(scope.trigger(trigger["id"]) + "/run")
    assert api.delete(scope.project_url).status_code == 204
    assert api.put(scope.project_url).status_code == 201
    assert api.get(scope.project_invocations).json()["items"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"description": "x" * 2001}, "description"),
        ({"owner": "me"}, "owner"),
        ({"name": 7}, "name"),
    ],
)
def test_put_project_rejects_bad_fields(api: TestClient, body: dict[str, Any], field: str) -> None:
    response = api.put(f"{PROJECTS}/billing", json=body)
    assert problem(response, 422)["errors"][0]["field"] == field
    problem(api.get(f"{PROJECTS}/billing"), 404)


@pytest.mark.parametrize("project", ["-dash", "a b", "x" * 65, "ü", "a'b", "a;b"])
def test_put_project_rejects_bad_ids(api: TestClient, project: str) -> None:
    response = api.put(f"{PROJECTS}/{project}")
    assert problem(response, 422)["errors"][0]["field"] == "path.project"


# --- refs --------------------------------------------------------------------------------


def test_refs_are_listed_and_deleted_but_main_stays(api: TestClient, scope: Scope) -> None:
    target = {"type": "python", "handler": "agents.run"}
    api.put(scope.agent_url, params={"ref": "feature/login"}, json={"target": target})
    names = [r["name"] for r in api.get(scope.project_url + "/refs").json()]
    assert names == ["feature/login", "main"]

    assert api.delete(scope.project_url + "/refs/feature/login").status_code == 204
    problem(api.delete(scope.project_url + "/refs/feature/login"), 404)
    problem(api.delete(scope.project_url + "/refs/main"), 409)
    names = [r["name"] for r in api.get(scope.project_url + "/refs").json()]
    assert names == ["main"]


def test_each_write_to_a_ref_bumps_its_revision(api: TestClient, scope: Scope) -> None:
    def revision() -> int:
        refs = api.get(scope.project_url + "/refs").json()
        return int(next(r["revision"] for r in refs if r["name"] == "main"))

    before = revision()
    api.put(scope.agent_url, json={"name": "renamed", "target": WEBHOOK})
    assert revision() == before + 1
    api.put(scope.agent_url, json={"name": "renamed", "target": WEBHOOK})  # no change
    assert revision() == before + 1


# --- agents ------------------------------------------------------------------------------


def test_put_agent_with_a_webhook_target_never_returns_the_secret(
    api: TestClient, scope: Scope
) -> None:
    created = api.put(scope.project_url + "/agents/helper", json={"target": WEBHOOK})
    assert created.status_code == 201
    assert created.json()["target"] == {
        "type": "webhook",
        "url": "https://hooks.example.com/run",
        "has_secret": True,
    }
    assert created.json()["name"] == "helper"
    assert created.json()["ref"] == "main"
    for response in (
        created,
        api.get(scope.project_url + "/agents/helper"),
        api.get(scope.project_url + "/agents"),
    ):
        assert response.status_code == 200 or response.status_code == 201
        assert WEBHOOK["secret"] not in response.text
        assert '"secret"' not in response.text


def test_put_agent_replaces_the_target(api: TestClient, scope: Scope) -> None:
    api.put(scope.agent_url, json={"target": WEBHOOK})
    without = {"type": "webhook", "url": "https://hooks.example.com/other"}
    replaced = api.put(scope.agent_url, json={"name": "Helper", "target": without})
    assert replaced.status_code == 200
    assert replaced.json()["name"] == "Helper"
    assert replaced.json()["target"] == {
        "type": "webhook",
        "url": "https://hooks.example.com/other",
        "has_secret": False,
    }


def test_put_agent_with_a_python_target(api: TestClient, scope: Scope) -> None:
    target = {"type": "python", "handler": "reports.daily:v2"}
    response = api.put(scope.project_url + "/agents/reporter", json={"target": target})
    assert response.status_code == 201
    assert response.json()["target"] == target
    assert api.get(scope.project_url + "/agents/reporter").json()["target"] == target


@pytest.mark.parametrize(
    ("target", "field"),
    [
        ({"type": "webhook", "url": "ftp://hooks.example.com/"}, "target.url"),
        ({"type": "webhook", "url": "https://user:pw@hooks.example.com/"}, "target.url"),
        ({"type": "webhook", "url": "https://"}, "target.url"),
        ({"type": "webhook", "url": "https://[::1/"}, "target.url"),
        ({"type": "webhook", "url": "https://example.com:99999/"}, "target.url"),
        ({"type": "webhook", "url": "https://example.com/" + "a" * 2048}, "target.url"),
        ({"type": "webhook"}, "target.url"),
        ({"type": "webhook", "url": "https://example.com/", "secret": ""}, "target.secret"),
        ({"type": "webhook", "url": "https://example.com/", "secret": "x" * 513}, "target.secret"),
        ({"type": "webhook", "url": "https://example.com/", "method": "GET"}, "target.method"),
        ({"type": "python", "handler": "has spaces"}, "target.handler"),
        ({"type": "python", "handler": "../../etc"}, "target.handler"),
        ({"type": "python"}, "target.handler"),
        ({"type": "python", "handler": "ok", "module": "os"}, "target.module"),
        ({"type": "smtp", "to": "a@b"}, "target"),
        ({"url": "https://example.com/"}, "target"),
        ("https://example.com/", "target"),
    ],
)
def test_put_agent_rejects_invalid_targets_naming_the_field(
    api: TestClient, scope: Scope, target: Any, field: str
) -> None:
    response = api.put(scope.project_url + "/agents/bad", json={"target": target})
    assert problem(response, 422)["errors"][0]["field"] == field
    problem(api.get(scope.project_url + "/agents/bad"), 404)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("https://a..b/hook", "has an invalid host 'a..b'"),
        ("https://hooks%2eexample.com/", "has an invalid host"),
        ("https://hooks.example.com:0/", "has an invalid port 0"),
        ("https://hooks.example.com/\x7f", "must not contain whitespace or control characters"),
    ],
)
def test_put_agent_refuses_a_url_no_attempt_could_call(
    api: TestClient, scope: Scope, url: str, words: str
) -> None:
    """The URL an agent is stored with is one its webhook target accepts at call time:
    one that every attempt would fail on is refused when the agent is written."""
    target = {"type": "webhook", "url": url}
    response = api.put(scope.project_url + "/agents/bad", json={"target": target})
    [error] = problem(response, 422)["errors"]
    assert error["field"] == "target.url"
    assert words in error["message"]
    problem(api.get(scope.project_url + "/agents/bad"), 404)


def test_put_agent_requires_a_target(api: TestClient, scope: Scope) -> None:
    response = api.put(scope.project_url + "/agents/bad", json={"name": "x"})
    assert problem(response, 422)["errors"][0]["field"] == "target"


def test_put_agent_on_a_missing_project_is_404(api: TestClient, acme: TenantKey) -> None:
    target = {"type": "python", "handler": "h"}
    response = api.put(f"{PROJECTS}/nope/agents/a", json={"target": target})
    problem(response, 404)


def test_agents_live_on_refs(api: TestClient, scope: Scope) -> None:
    target = {"type": "python", "handler": "experimental"}
    url = scope.project_url + "/agents/scout"
    created = api.put(url, params={"ref": "feature/login"}, json={"target": target})
    assert created.status_code == 201
    assert created.json()["ref"] == "feature/login"

    problem(api.get(url), 404)  # not on main
    assert api.get(url, params={"ref": "feature/login"}).json()["target"] == target
    on_ref = api.get(scope.project_url + "/agents", params={"ref": "feature/login"}).json()
    assert [a["id"] for a in on_ref] == ["scout"]
    on_main = api.get(scope.project_url + "/agents").json()
    assert [a["id"] for a in on_main] == ["a"]


@pytest.mark.parametrize(
    "ref", ["", "/leading", "a//b", "a/b/c/d/e", "x" * 129, "a b", "..", "a\\b"]
)
def test_agent_routes_reject_bad_refs(api: TestClient, scope: Scope, ref: str) -> None:
    response = api.get(scope.agent_url, params={"ref": ref})
    assert problem(response, 422)["errors"][0]["field"] == "query.ref"


def test_get_on_a_missing_agent_is_404(api: TestClient, scope: Scope) -> None:
    body = problem(api.get(scope.project_url + "/agents/ghost"), 404)
    assert "ghost" in body["detail"]
    problem(api.get(f"{PROJECTS}/nope/agents/ghost"), 404)


def test_deleting_an_agent_cancels_its_pending_invocations(
    api: TestClient, scope: Scope, make_trigger: Callable[..., dict[str, Any]]
) -> None:
    trigger = make_trigger()
    run = api.post(scope.trigger(trigger["id"]) + "/run").json()
    assert api.delete(scope.agent_url).status_code == 204
    problem(api.get(scope.agent_url), 404)
    problem(api.get(scope.trigger(trigger["id"])), 404)
    problem(api.delete(scope.agent_url), 404)
    listed = api.get(scope.project_invocations).json()["items"]
    assert [(i["id"], i["status"]) for i in listed] == [(run["id"], "cancelled")]
