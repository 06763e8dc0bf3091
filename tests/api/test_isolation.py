"""Tenant isolation on every tenant route (SPEC §7: another tenant's resources answer
404). The route table below must list every route under /api/v1/tenants/{tenant}; a
test checks that against the app, so a new route cannot skip these checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.api.helpers import Scope, TenantKey, make_scope, problem

P = "/api/v1/tenants/{tenant}/projects/{project}"
T = P + "/agents/{agent}/scheduled-triggers/{trigger}"
PYTHON = {"target": {"type": "python", "handler": "agents.run"}}

# (method, path, body). Placeholders are filled from the resources of the tenant whose
# URL is used; ids ({trigger}, {invocation}, {key}) may come from another tenant.
ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/api/v1/tenants/{tenant}/api-keys", None),
    ("POST", "/api/v1/tenants/{tenant}/api-keys", {"name": "intruder"}),
    ("DELETE", "/api/v1/tenants/{tenant}/api-keys/{key}", None),
    ("GET", "/api/v1/tenants/{tenant}/quotas", None),
    ("GET", "/api/v1/tenants/{tenant}/projects", None),
    ("PUT", P, {"name": "taken over"}),
    ("GET", P, None),
    ("DELETE", P, None),
    ("GET", P + "/refs", None),
    ("DELETE", P + "/refs/{ref}", None),
    ("GET", P + "/agents", None),
    ("PUT", P + "/agents/{agent}", PYTHON),
    ("GET", P + "/agents/{agent}", None),
    ("DELETE", P + "/agents/{agent}", None),
    ("GET", P + "/agents/{agent}/scheduled-triggers", None),
    ("POST", P + "/agents/{agent}/scheduled-triggers", {"name": "x", "cron_expression": "@daily"}),
    ("GET", T, None),
    ("PATCH", T, {"enabled": False}),
    ("DELETE", T, None),
    ("GET", T + "/preview", None),
    ("GET", T + "/usage", None),
    ("POST", T + "/run", None),
    ("GET", T + "/invocations", None),
    ("GET", T + "/invocations/{invocation}", None),
    ("POST", T + "/invocations/{invocation}/cancel", None),
    ("POST", T + "/invocations/{invocation}/rerun", None),
    ("GET", P + "/invocations", None),
    ("GET", P + "/invocations/{invocation}", None),
    ("GET", P + "/triggers", None),
    ("GET", P + "/upcoming-runs", None),
    ("POST", T + "/pause", {"reason": "taken over"}),
    ("POST", T + "/resume", None),
    ("POST", T + "/skip", {"count": 1}),
    ("POST", T + "/backfill", {"from": "2026-03-02T08:00:00Z", "to": "2026-03-02T09:00:00Z"}),
    ("GET", T + "/backfills", None),
    ("GET", T + "/backfills/{backfill}", None),
    ("POST", T + "/backfills/{backfill}/cancel", None),
    ("POST", P + "/pause", {"reason": "taken over"}),
    ("POST", P + "/resume", None),
    ("POST", P + "/invocations/cancel", {}),
    ("POST", P + "/invocations/rerun", {}),
    ("GET", P + "/definition", None),
    ("PUT", P + "/definition", {"agents": [{"id": "a"} | PYTHON]}),
    ("GET", P + "/retention", None),
    ("PUT", P + "/retention", {"history_retention_days": 1}),
    ("GET", P + "/audit", None),
    ("GET", "/api/v1/tenants/{tenant}/audit", None),
    ("GET", P + "/notifications", None),
    ("PUT", P + "/notifications", {"targets": []}),
    ("POST", P + "/notifications/test", None),
    ("GET", P + "/notifications/deliveries", None),
]
ROUTE_IDS = [
    f"{method} {path.removeprefix('/api/v1/tenants/{tenant}')}" for method, path, _ in ROUTES
]
# How the app names the placeholders above.
PARAMETER_NAMES = {
    "{trigger}": "{trigger_id}",
    "{invocation}": "{invocation_id}",
    "{key}": "{key_id}",
    "{backfill}": "{backfill_id}",
}
# Values that pass every path pattern, for checks that stop at authentication.
WELL_FORMED = {
    "tenant": "acme",
    "project": "p",
    "agent": "a",
    "ref": "feature/x",
    "trigger": "trg_" + "0" * 26,
    "invocation": "inv_" + "0" * 26,
    "key": "key_" + "0" * 26,
    "backfill": "bf_" + "0" * 26,
}
# The routes that name an object by its global id.
BY_ID = [r for r in ROUTES if "{trigger}" in r[1] or "{key}" in r[1] or "{backfill}" in r[1]]


@dataclass(frozen=True)
class World:
    """What one tenant owns: project p, agent a on main and on feature/x, a trigger and
    a pending invocation of it, and its key."""

    tenant: TenantKey
    scope: Scope
    trigger: dict[str, Any]
    invocation: dict[str, Any]
    backfill: dict[str, Any]

    def values(self) -> dict[str, str]:
        return {
            "tenant": self.tenant.tenant,
            "project": self.scope.project,
            "agent": self.scope.agent,
            "ref": "feature/x",
            "trigger": self.trigger["id"],
            "invocation": self.invocation["id"],
            "key": self.tenant.key_id,
            "backfill": self.backfill["id"],
        }


def build_world(client: TestClient, tenant: TenantKey) -> World:
    scope = make_scope(client, tenant.tenant)
    put = client.put(scope.agent_url, params={"ref": "feature/x"}, json=PYTHON)
    assert put.status_code == 201
    trigger = client.post(scope.triggers, json={"name": "t", "cron_expression": "*/15 * * * *"})
    assert trigger.status_code == 201
    invocation = client.post(scope.trigger(trigger.json()["id"]) + "/run")
    assert invocation.status_code == 202
    past = {"from": "2026-03-02T08:00:00Z", "to": "2026-03-02T09:00:00Z"}
    backfill = client.post(scope.trigger(trigger.json()["id"]) + "/backfill", json=past)
    assert backfill.status_code == 201, backfill.text
    hooks = {"targets": [{"name": "ops", "url": "https://hooks.example.com/x"}]}
    assert client.put(scope.project_url + "/notifications", json=hooks).status_code == 200
    return World(tenant, scope, trigger.json(), invocation.json(), backfill.json())


@pytest.fixture
def acme_world(client_for: Callable[[TenantKey], TestClient], acme: TenantKey) -> World:
    return build_world(client_for(acme), acme)


@pytest.fixture
def rival_world(client_for: Callable[[TenantKey], TestClient], rival: TenantKey) -> World:
    return build_world(client_for(rival), rival)


def call(
    client: TestClient,
    route: tuple[str, str, dict[str, Any] | None],
    values: dict[str, str],
    headers: dict[str, str] | None = None,
) -> Any:
    method, path, body = route
    return client.request(method, path.format(**values), json=body, headers=headers)


def assert_untouched(client: TestClient, world: World) -> None:
    """Nothing of ``world`` changed: same trigger, invocation still pending, key works,
    the ref and the agents are there, no key or project was added."""
    scope = world.scope
    trigger = client.get(scope.trigger(world.trigger["id"]))
    assert trigger.status_code == 200
    assert trigger.json() == world.trigger
    invocation = client.get(scope.invocation(world.trigger["id"], world.invocation["id"]))
    assert invocation.json()["status"] == "pending"
    assert [r["name"] for r in client.get(scope.project_url + "/refs").json()] == [
        "feature/x",
        "main",
    ]
    assert client.get(scope.agent_url, params={"ref": "feature/x"}).status_code == 200
    project = client.get(scope.project_url).json()
    assert project["name"] == scope.project
    keys = client.get(f"{scope.tenant_url}/api-keys").json()
    assert [k["id"] for k in keys] == [world.tenant.key_id]
    assert keys[0]["revoked_at"] is None
    projects = client.get(f"{scope.tenant_url}/projects").json()["items"]
    assert [p["id"] for p in projects] == [scope.project]


def test_the_route_table_lists_every_tenant_route(app: FastAPI) -> None:
    served = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/api/v1/tenants/{tenant}")
        for method in operations
    }
    listed = set()
    for method, path, _ in ROUTES:
        for ours, theirs in PARAMETER_NAMES.items():
            path = path.replace(ours, theirs)
        listed.add((method, path))
    assert served == listed


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_every_route_needs_a_key(
    client: TestClient, acme: TenantKey, route: tuple[str, str, dict[str, Any] | None]
) -> None:
    response = call(client, route, WELL_FORMED)
    problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_every_route_rejects_a_wrong_key(
    client: TestClient, acme: TenantKey, route: tuple[str, str, dict[str, Any] | None]
) -> None:
    response = call(client, route, WELL_FORMED, {"Authorization": "Bearer tw_wrong"})
    problem(response, 401)


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_another_tenants_key_gets_404_on_every_route(
    client_for: Callable[[TenantKey], TestClient],
    acme_world: World,
    rival_world: World,
    route: tuple[str, str, dict[str, Any] | None],
) -> None:
    intruder = client_for(rival_world.tenant)
    response = call(intruder, route, acme_world.values())
    problem(response, 404)
    assert_untouched(client_for(acme_world.tenant), acme_world)


@pytest.mark.parametrize("route", BY_ID, ids=[f"{m} {p.split('{agent}')[-1]}" for m, p, _ in BY_ID])
def test_another_tenants_ids_are_not_found_under_ones_own_urls(
    client_for: Callable[[TenantKey], TestClient],
    acme_world: World,
    rival_world: World,
    route: tuple[str, str, dict[str, Any] | None],
) -> None:
    # The rival has a project and agent of the same names; only the ids are acme's.
    values = rival_world.values() | {
        "trigger": acme_world.trigger["id"],
        "invocation": acme_world.invocation["id"],
        "key": acme_world.tenant.key_id,
    }
    response = call(client_for(rival_world.tenant), route, values)
    problem(response, 404)
    assert_untouched(client_for(acme_world.tenant), acme_world)


def test_an_invocation_is_found_only_under_its_own_trigger(
    client_for: Callable[[TenantKey], TestClient], acme_world: World, rival_world: World
) -> None:
    # The rival's own trigger, with acme's invocation id.
    rival = client_for(rival_world.tenant)
    path = rival_world.scope.invocation(rival_world.trigger["id"], acme_world.invocation["id"])
    problem(rival.get(path), 404)
    problem(rival.post(path + "/cancel"), 404)
    assert_untouched(client_for(acme_world.tenant), acme_world)


def test_lists_show_only_the_callers_own_resources(
    client_for: Callable[[TenantKey], TestClient], acme_world: World, rival_world: World
) -> None:
    rival = client_for(rival_world.tenant)
    scope = rival_world.scope
    invocations = rival.get(scope.project_invocations).json()["items"]
    assert [i["id"] for i in invocations] == [rival_world.invocation["id"]]
    triggers = rival.get(scope.triggers).json()["items"]
    assert [t["id"] for t in triggers] == [rival_world.trigger["id"]]
    keys = rival.get(f"{scope.tenant_url}/api-keys").json()
    assert [k["id"] for k in keys] == [rival_world.tenant.key_id]


def test_ids_from_another_project_or_agent_of_the_same_tenant_are_not_found(
    api: TestClient, acme_world: World
) -> None:
    other_project = make_scope(api, "acme", project="q")
    other_agent = make_scope(api, "acme", agent="b")
    trigger_id = acme_world.trigger["id"]
    invocation_id = acme_world.invocation["id"]
    for scope in (other_project, other_agent):
        problem(api.get(scope.trigger(trigger_id)), 404)
        problem(api.patch(scope.trigger(trigger_id), json={"enabled": False}), 404)
        problem(api.post(scope.trigger(trigger_id) + "/run"), 404)
        problem(api.get(scope.invocation(trigger_id, invocation_id)), 404)
    assert api.get(other_project.project_invocations).json()["items"] == []
    assert api.get(acme_world.scope.trigger(trigger_id)).json() == acme_world.trigger
    invocation = api.get(acme_world.scope.invocation(trigger_id, invocation_id)).json()
    assert invocation["status"] == "pending"
