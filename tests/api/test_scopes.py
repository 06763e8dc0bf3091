"""API key scopes on every tenant route (SPEC §9): ``read`` (GET only), ``operate`` (read,
run now, cancel, rerun), ``write`` (everything). The table below gives each route's scope;
a test checks it against the app, so a new route must be added here with its decision,
and the app itself refuses to start with a tenant route that has none."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.testclient import TestClient

from tests.api.helpers import TenantKey, problem
from tests.api.test_isolation import PARAMETER_NAMES, ROUTES, World, build_world, call
from tickwork.api.deps import (
    Caller,
    ReadTenant,
    RequireScope,
    check_scope_decisions,
    scope_of,
    tenant_routes,
)
from tickwork.domain.scopes import SCOPES
from tickwork.errors import Forbidden
from tickwork.services import tenants
from tickwork.services.context import Context

T = "/api/v1/tenants/{tenant}"
P = T + "/projects/{project}"
TR = P + "/agents/{agent}/scheduled-triggers/{trigger}"
SCOPE_OF: dict[tuple[str, str], str] = {
    ("GET", T + "/api-keys"): "read",
    ("POST", T + "/api-keys"): "write",
    ("DELETE", T + "/api-keys/{key}"): "write",
    ("GET", T + "/quotas"): "read",
    ("GET", T + "/projects"): "read",
    ("PUT", P): "write",
    ("GET", P): "read",
    ("DELETE", P): "write",
    ("GET", P + "/refs"): "read",
    ("DELETE", P + "/refs/{ref}"): "write",
    ("GET", P + "/agents"): "read",
    ("PUT", P + "/agents/{agent}"): "write",
    ("GET", P + "/agents/{agent}"): "read",
    ("DELETE", P + "/agents/{agent}"): "write",
    ("GET", P + "/agents/{agent}/scheduled-triggers"): "read",
    ("POST", P + "/agents/{agent}/scheduled-triggers"): "write",
    ("GET", TR): "read",
    ("PATCH", TR): "write",
    ("DELETE", TR): "write",
    ("GET", TR + "/preview"): "read",
    ("GET", TR + "/usage"): "read",
    ("POST", TR + "/run"): "operate",
    ("GET", TR + "/invocations"): "read",
    ("GET", TR + "/invocations/{invocation}"): "read",
    ("POST", TR + "/invocations/{invocation}/cancel"): "operate",
    ("POST", TR + "/invocations/{invocation}/rerun"): "operate",
    ("GET", P + "/invocations"): "read",
    ("GET", P + "/invocations/{invocation}"): "read",
    ("GET", P + "/triggers"): "read",
    ("GET", P + "/upcoming-runs"): "read",
    ("GET", P + "/definition"): "read",
    ("PUT", P + "/definition"): "write",
    ("POST", TR + "/pause"): "operate",
    ("POST", TR + "/resume"): "operate",
    ("POST", TR + "/skip"): "operate",
    ("POST", TR + "/backfill"): "operate",
    ("GET", TR + "/backfills"): "read",
    ("GET", TR + "/backfills/{backfill}"): "read",
    ("POST", TR + "/backfills/{backfill}/cancel"): "operate",
    ("POST", P + "/pause"): "operate",
    ("POST", P + "/resume"): "operate",
    ("POST", P + "/invocations/cancel"): "operate",
    ("POST", P + "/invocations/rerun"): "operate",
    ("GET", P + "/retention"): "read",
    ("PUT", P + "/retention"): "write",
    ("GET", P + "/audit"): "read",
    ("GET", T + "/audit"): "read",
    ("GET", P + "/notifications"): "read",
    ("PUT", P + "/notifications"): "write",
    ("POST", P + "/notifications/test"): "operate",
    ("GET", P + "/notifications/deliveries"): "read",
}
ROUTE_IDS = [f"{m} {p.removeprefix(T)}" for m, p, _ in ROUTES]


def _app_path(path: str) -> str:
    for ours, theirs in PARAMETER_NAMES.items():
        path = path.replace(ours, theirs)
    return path


def test_the_table_gives_every_tenant_route_the_scope_it_declares(app: FastAPI) -> None:
    declared = {
        (method, path.replace(":path}", "}")): scope_of(dependant)
        for method, path, dependant in tenant_routes(app)
    }
    expected = {(m, _app_path(p)): [scope] for (m, p), scope in SCOPE_OF.items()}
    assert declared == expected
    assert {(m, p) for m, p, _ in ROUTES} == set(SCOPE_OF)


def test_every_tenant_route_takes_its_path_in_the_dependency_that_decides_its_scope(
    app: FastAPI,
) -> None:
    # One record per route (ReadProject, WriteRef, OperateBackfill, ...): the tenant and
    # every id below it, never some of them beside it as parameters of the route's own.
    for method, path, dependant in tenant_routes(app):
        assert not dependant.path_params, (method, path)
        deciding = [
            d for d in dependant.dependencies if isinstance(d.call, RequireScope) or scope_of(d)
        ]
        assert len(deciding) == 1, (method, path)
        taken = _path_names(deciding[0])
        assert taken == set(re.findall(r"{(\w+)", path)), (method, path)


def _path_names(dependant: Dependant) -> set[str]:
    names = {param.name for param in dependant.path_params}
    for sub in dependant.dependencies:
        names |= _path_names(sub)
    return names


def test_an_app_with_a_tenant_route_that_decides_no_scope_does_not_start() -> None:
    for forgetful in (_authenticated_only, _no_authentication):
        router = APIRouter()
        router.add_api_route(T + "/forgotten", forgetful, methods=["POST"])
        app = FastAPI()
        app.include_router(router)
        with pytest.raises(
            RuntimeError, match=re.escape("POST /api/v1/tenants/{tenant}/forgotten")
        ):
            check_scope_decisions(app)


def test_an_app_with_a_route_that_decides_twice_does_not_start() -> None:
    router = APIRouter()
    router.add_api_route(T + "/twice", _twice, methods=["GET"])
    app = FastAPI()
    app.include_router(router)
    with pytest.raises(RuntimeError, match=r"found \['read', 'read'\]"):
        check_scope_decisions(app)


def _authenticated_only(caller: Caller) -> None:
    pass


def _no_authentication(tenant: str) -> None:
    pass


def _twice(tenant: ReadTenant, again: ReadTenant) -> None:
    pass


# --- behaviour on every route ----------------------------------------------------------


@pytest.fixture
def keys(ctx: Context, acme: TenantKey) -> dict[str, TenantKey]:
    """A key of each scope for acme (its fixture key is a ``write`` key)."""
    made = {"write": acme}
    for scope in ("read", "operate"):
        key_id, key = tenants.create_key(ctx, "acme", scope, scope)
        made[scope] = TenantKey("acme", key_id, key)
    return made


@pytest.fixture
def world(client_for: Callable[[TenantKey], TestClient], acme: TenantKey) -> World:
    return build_world(client_for(acme), acme)


def snapshot(client: TestClient, world: World) -> dict[str, Any]:
    """Everything the routes could change, as the owner sees it."""
    scope = world.scope
    trigger = world.trigger["id"]
    return {
        "projects": client.get(f"{scope.tenant_url}/projects").json(),
        "keys": client.get(f"{scope.tenant_url}/api-keys").json(),
        "refs": client.get(scope.project_url + "/refs").json(),
        "agents": [
            client.get(scope.project_url + "/agents", params={"ref": ref}).json()
            for ref in ("main", "feature/x")
        ],
        "trigger": client.get(scope.trigger(trigger)).json(),
        "invocations": client.get(scope.project_invocations).json(),
    }


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_a_narrower_key_gets_403_naming_both_scopes_and_changes_nothing(
    client_for: Callable[[TenantKey], TestClient],
    keys: dict[str, TenantKey],
    world: World,
    route: tuple[str, str, dict[str, Any] | None],
) -> None:
    needed = SCOPE_OF[(route[0], route[1])]
    narrower = SCOPES[: SCOPES.index(needed)]
    owner = client_for(keys["write"])
    before = snapshot(owner, world)
    for scope in narrower:
        response = call(client_for(keys[scope]), route, world.values())
        body = problem(response, 403)
        assert body["type"] == "urn:tickwork:problem:forbidden"
        assert body["required_scope"] == needed
        assert body["key_scope"] == scope
        assert f"scope {needed!r}" in body["detail"]
        assert f"scope {scope!r}" in body["detail"]
    assert snapshot(owner, world) == before


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_a_key_of_the_scope_a_route_needs_may_use_it(
    client_for: Callable[[TenantKey], TestClient],
    keys: dict[str, TenantKey],
    world: World,
    route: tuple[str, str, dict[str, Any] | None],
) -> None:
    needed = SCOPE_OF[(route[0], route[1])]
    response = call(client_for(keys[needed]), route, world.values())
    # Rerunning the world's pending invocation is refused (409) for what it is, not
    # for the key; everything else succeeds.
    expected = 409 if route[1].endswith("{invocation}/rerun") else None
    if expected:
        problem(response, expected)
    else:
        assert 200 <= response.status_code < 300, response.text


def test_an_operate_key_runs_cancels_and_reruns_but_cannot_create_or_change(
    client_for: Callable[[TenantKey], TestClient], keys: dict[str, TenantKey], world: World
) -> None:
    operator = client_for(keys["operate"])
    scope, trigger = world.scope, world.trigger["id"]
    run = operator.post(scope.trigger(trigger) + "/run")
    assert run.status_code == 202
    cancelled = operator.post(scope.invocation(trigger, run.json()["id"]) + "/cancel")
    assert cancelled.json()["status"] == "cancelled"
    rerun = operator.post(scope.invocation(trigger, run.json()["id"]) + "/rerun")
    assert rerun.status_code == 202
    assert rerun.json()["origin"] == "rerun"
    problem(operator.post(scope.triggers, json={"name": "n", "cron_expression": "@daily"}), 403)
    problem(operator.patch(scope.trigger(trigger), json={"enabled": False}), 403)
    problem(operator.post(f"{scope.tenant_url}/api-keys", json={"scope": "read"}), 403)


def test_a_read_key_reads_everything_and_writes_nothing(
    client_for: Callable[[TenantKey], TestClient], keys: dict[str, TenantKey], world: World
) -> None:
    reader = client_for(keys["read"])
    scope, trigger = world.scope, world.trigger["id"]
    assert reader.get(scope.trigger(trigger)).json() == world.trigger
    assert reader.get(scope.invocation(trigger, world.invocation["id"])).status_code == 200
    for response in (
        reader.post(scope.triggers, json={"name": "n", "cron_expression": "@daily"}),
        reader.patch(scope.trigger(trigger), json={"name": "renamed"}),
        reader.delete(scope.trigger(trigger)),
        reader.post(scope.trigger(trigger) + "/run"),
        reader.put(scope.project_url + "/definition", json={"agents": []}),
    ):
        assert problem(response, 403)["key_scope"] == "read"


# --- minting keys ----------------------------------------------------------------------


def test_a_write_key_mints_keys_of_every_scope_and_each_is_held_to_it(
    client_for: Callable[[TenantKey], TestClient], acme: TenantKey, world: World
) -> None:
    owner = client_for(acme)
    minted = {}
    for scope in SCOPES:
        response = owner.post("/api/v1/tenants/acme/api-keys", json={"name": scope, "scope": scope})
        assert response.status_code == 201, response.text
        assert response.json()["scope"] == scope
        minted[scope] = TenantKey("acme", response.json()["id"], response.json()["key"])
    listed = {k["id"]: k["scope"] for k in owner.get("/api/v1/tenants/acme/api-keys").json()}
    assert listed == {acme.key_id: "write"} | {k.key_id: s for s, k in minted.items()}
    run = world.scope.trigger(world.trigger["id"]) + "/run"
    assert client_for(minted["read"]).post(run).status_code == 403
    assert client_for(minted["operate"]).post(run).status_code == 202


def test_a_key_cannot_mint_a_key_wider_than_its_own(ctx: Context, acme: TenantKey) -> None:
    # Only write keys reach the route; the service holds the rule for any caller.
    for have in SCOPES:
        granted_by = tenants.authenticate(ctx, tenants.create_key(ctx, "acme", have, have)[1])
        assert granted_by is not None
        for want in SCOPES:
            if SCOPES.index(want) <= SCOPES.index(have):
                tenants.create_key(ctx, "acme", "ok", want, granted_by=granted_by)
                continue
            with pytest.raises(Forbidden) as refused:
                tenants.create_key(ctx, "acme", "wider", want, granted_by=granted_by)
            assert (refused.value.required_scope, refused.value.key_scope) == (want, have)
            assert "cannot create" in str(refused.value)


def test_the_admin_token_mints_any_scope(ctx: Context, client: TestClient) -> None:
    ctx.settings = ctx.settings.with_(admin_token="admin-for-scopes")
    tenants.create_tenant(ctx, "acme")
    admin = {"Authorization": "Bearer admin-for-scopes"}
    for scope in SCOPES:
        response = client.post(
            "/api/v1/admin/tenants/acme/api-keys", json={"scope": scope}, headers=admin
        )
        assert response.status_code == 201
        assert response.json()["scope"] == scope
        found = tenants.authenticate(ctx, response.json()["key"])
        assert found is not None
        assert found.scope == scope


@pytest.mark.parametrize("scope", ["admin", "READ", "", None, 1])
def test_an_unknown_scope_is_refused(api: TestClient, scope: object) -> None:
    response = api.post("/api/v1/tenants/acme/api-keys", json={"scope": scope})
    assert problem(response, 422)["errors"][0]["field"] == "scope"
