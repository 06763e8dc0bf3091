"""Per-tenant quotas (SPEC §9): at its limit a quota answers 429 problem+json naming the
quota, the limit and the use, while other tenants carry on; defaults come from the
settings and the admin API overrides them per tenant; concurrent creates never
overshoot."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import Response, Scope, TenantKey, at, make_scope, problem
from tickwork.errors import QuotaExceeded
from tickwork.services import quotas, resources, tenants, triggers
from tickwork.services.context import Context

ADMIN_TOKEN = "admin-token-for-quotas"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
EVERY_SECOND = "* * * * * *"  # 60 slots per minute


@pytest.fixture(autouse=True)
def _admin_token(ctx: Context) -> None:
    ctx.settings = ctx.settings.with_(admin_token=ADMIN_TOKEN)


@pytest.fixture
def rival_api(client_for: Callable[[TenantKey], TestClient], rival: TenantKey) -> TestClient:
    return client_for(rival)


@pytest.fixture
def rival_scope(rival_api: TestClient, rival: TenantKey) -> Scope:
    return make_scope(rival_api, rival.tenant)


def set_quotas(client: TestClient, tenant: str, **values: int | None) -> dict[str, Any]:
    response = client.put(f"/api/v1/admin/tenants/{tenant}/quotas", json=values, headers=ADMIN)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def exceeded(response: Response, quota: str, limit: float, used: float) -> dict[str, Any]:
    body = problem(response, 429)
    assert body["type"].endswith(":quota-exceeded")
    assert body["type"] == "urn:tickwork:problem:quota-exceeded"
    assert body["title"] == "Quota exceeded"
    assert (body["quota"], body["limit"], body["used"]) == (quota, limit, used)
    assert f"quota {quota!r} exceeded" in body["detail"]
    assert "retry-after" not in response.headers  # waiting does not help
    return body


def trigger(**fields: Any) -> dict[str, Any]:
    return {"name": "t", "cron_expression": "*/15 * * * *"} | fields


# --- each quota at its limit -----------------------------------------------------------


def test_projects_stop_at_the_limit_while_updates_and_other_tenants_go_on(
    api: TestClient, scope: Scope, rival_api: TestClient, rival_scope: Scope
) -> None:
    set_quotas(api, "acme", projects=2)
    assert api.put("/api/v1/tenants/acme/projects/q").status_code == 201
    body = exceeded(api.put("/api/v1/tenants/acme/projects/r"), "projects", 2, 2)
    assert body["requested"] == 1
    assert api.put(scope.project_url, json={"name": "renamed"}).status_code == 200
    assert api.get("/api/v1/tenants/acme/projects/r").status_code == 404
    for name in ("q2", "r2", "s2"):
        assert rival_api.put(f"/api/v1/tenants/rival/projects/{name}").status_code == 201


def test_agents_stop_at_the_limit_counting_every_ref(
    api: TestClient, scope: Scope, rival_api: TestClient, rival_scope: Scope
) -> None:
    set_quotas(api, "acme", agents=2)
    python = {"target": {"type": "python", "handler": "agents.run"}}
    put = api.put(scope.agent_url, params={"ref": "feature/x"}, json=python)
    assert put.status_code == 201
    exceeded(api.put(scope.project_url + "/agents/b", json=python), "agents", 2, 2)
    assert api.put(scope.agent_url, json=python | {"name": "changed"}).status_code == 200
    assert rival_api.put(rival_scope.project_url + "/agents/b", json=python).status_code == 201


def test_triggers_stop_at_the_limit_enabled_or_not(
    api: TestClient, scope: Scope, rival_api: TestClient, rival_scope: Scope
) -> None:
    set_quotas(api, "acme", triggers=2)
    assert api.post(scope.triggers, json=trigger(name="one")).status_code == 201
    assert api.post(scope.triggers, json=trigger(name="two", enabled=False)).status_code == 201
    body = exceeded(api.post(scope.triggers, json=trigger(name="three")), "triggers", 2, 2)
    assert body["detail"] == (  # as docs/operations.md shows it
        "quota 'triggers' exceeded: the limit is 2, 2 in use, and this request adds 1; "
        "remove some or ask the operator for a higher quota"
    )
    assert len(api.get(scope.triggers).json()["items"]) == 2
    assert rival_api.post(rival_scope.triggers, json=trigger()).status_code == 201


def test_api_keys_stop_at_the_limit_and_revoking_one_makes_room(
    api: TestClient, acme: TenantKey, client: TestClient, rival_api: TestClient
) -> None:
    set_quotas(api, "acme", api_keys=2)
    second = api.post("/api/v1/tenants/acme/api-keys", json={"name": "ci"})
    assert second.status_code == 201
    exceeded(api.post("/api/v1/tenants/acme/api-keys", json={"name": "more"}), "api_keys", 2, 2)
    admin = client.post("/api/v1/admin/tenants/acme/api-keys", json={}, headers=ADMIN)
    exceeded(admin, "api_keys", 2, 2)
    assert api.delete(f"/api/v1/tenants/acme/api-keys/{second.json()['id']}").status_code == 204
    assert api.post("/api/v1/tenants/acme/api-keys", json={"name": "new"}).status_code == 201
    assert rival_api.post("/api/v1/tenants/rival/api-keys", json={}).status_code == 201


def test_the_firing_rate_counts_seconds_at_their_real_rate(
    api: TestClient, scope: Scope, rival_api: TestClient, rival_scope: Scope
) -> None:
    set_quotas(api, "acme", slots_per_minute=60)
    first = api.post(
        scope.triggers, json=trigger(name="every second", cron_expression=EVERY_SECOND)
    )
    assert first.status_code == 201
    daily = api.post(scope.triggers, json=trigger(name="daily", cron_expression="0 9 * * *"))
    body = exceeded(daily, "slots_per_minute", 60, 60)
    assert body["requested"] == pytest.approx(1 / 1440)
    # A one-time trigger adds nothing to the rate; a disabled one neither.
    once = api.post(scope.triggers, json={"name": "once", "run_at": at(60)})
    assert once.status_code == 201
    off = api.post(
        scope.triggers, json=trigger(name="off", cron_expression="0 9 * * *", enabled=False)
    )
    assert off.status_code == 201
    # Another tenant is not limited by acme's rate.
    for n in range(3):
        made = rival_api.post(
            rival_scope.triggers, json=trigger(name=f"r{n}", cron_expression=EVERY_SECOND)
        )
        assert made.status_code == 201


def test_enabling_or_speeding_up_a_trigger_is_checked_and_slowing_down_is_not(
    api: TestClient, scope: Scope
) -> None:
    set_quotas(api, "acme", slots_per_minute=2)
    fast = api.post(scope.triggers, json=trigger(name="fast", cron_expression="*/30 * * * * *"))
    assert fast.status_code == 201  # 2 per minute: exactly the limit
    off = api.post(scope.triggers, json=trigger(name="off", enabled=False)).json()
    exceeded(api.patch(scope.trigger(off["id"]), json={"enabled": True}), "slots_per_minute", 2, 2)
    assert api.get(scope.trigger(off["id"])).json()["enabled"] is False
    # Renaming the disabled one is no growth.
    assert api.patch(scope.trigger(off["id"]), json={"name": "still off"}).status_code == 200
    fast_id = fast.json()["id"]
    faster = api.patch(scope.trigger(fast_id), json={"cron_expression": "*/20 * * * * *"})
    body = exceeded(faster, "slots_per_minute", 2, 2)
    assert body["requested"] == 1
    assert api.get(scope.trigger(fast_id)).json()["cron_expression"] == "*/30 * * * * *"
    slower = api.patch(scope.trigger(fast_id), json={"cron_expression": "0 * * * * *"})
    assert slower.status_code == 200
    assert api.patch(scope.trigger(off["id"]), json={"enabled": True}).status_code == 200


def test_a_definition_push_counts_its_net_effect(
    api: TestClient, scope: Scope, rival_api: TestClient, rival_scope: Scope
) -> None:
    set_quotas(api, "acme", triggers=2, slots_per_minute=61)
    target = {"type": "python", "handler": "agents.run"}

    def push(*crons: str) -> Response:
        triggers_ = [{"name": f"t{i}", "cron_expression": c} for i, c in enumerate(crons)]
        agents = [{"id": "a", "target": target, "triggers": triggers_}]
        return api.put(scope.project_url + "/definition", json={"agents": agents})

    assert push(EVERY_SECOND, "* * * * *").status_code == 200  # 2 triggers, 61 per minute
    # Replacing both with two others of the same total is no growth.
    assert push("* * * * *", EVERY_SECOND).status_code == 200
    exceeded(push("* * * * *", EVERY_SECOND, "@daily"), "triggers", 2, 2)
    body = exceeded(push(EVERY_SECOND, "*/30 * * * * *"), "slots_per_minute", 61, 61)
    assert body["requested"] == 1
    # Nothing of a refused push is kept.
    names = sorted(t["cron_expression"] for t in api.get(scope.triggers).json()["items"])
    assert names == ["* * * * *", EVERY_SECOND]
    assert push("@daily").status_code == 200  # shrinking is always allowed
    rival_push = rival_api.put(
        rival_scope.project_url + "/definition",
        json={"agents": [{"id": "a", "target": target, "triggers": [
            {"name": f"t{i}", "cron_expression": EVERY_SECOND} for i in range(5)
        ]}]},
    )  # fmt: skip
    assert rival_push.status_code == 200


def test_a_push_that_adds_agents_past_the_limit_is_refused(api: TestClient, scope: Scope) -> None:
    set_quotas(api, "acme", agents=2)
    target = {"type": "python", "handler": "agents.run"}
    agents = [{"id": name, "target": target} for name in ("a", "b", "c")]
    response = api.put(scope.project_url + "/definition", json={"agents": agents})
    assert exceeded(response, "agents", 2, 1)["requested"] == 2
    two = api.put(scope.project_url + "/definition", json={"agents": agents[1:]})
    assert two.status_code == 200  # a deleted, b and c created: two in all


def test_a_lower_limit_removes_nothing_and_only_refuses_growth(
    api: TestClient, scope: Scope, make_trigger: Callable[..., dict[str, Any]]
) -> None:
    made = [make_trigger(name=f"t{i}") for i in range(3)]
    set_quotas(api, "acme", triggers=1)
    assert len(api.get(scope.triggers).json()["items"]) == 3
    exceeded(api.post(scope.triggers, json=trigger(name="more")), "triggers", 1, 3)
    assert api.patch(scope.trigger(made[0]["id"]), json={"name": "renamed"}).status_code == 200
    assert api.delete(scope.trigger(made[0]["id"])).status_code == 204


# --- defaults and the admin API --------------------------------------------------------


def test_defaults_come_from_the_settings(ctx: Context, api: TestClient, scope: Scope) -> None:
    ctx.settings = ctx.settings.with_(quota_triggers=1)
    assert api.post(scope.triggers, json=trigger(name="one")).status_code == 201
    exceeded(api.post(scope.triggers, json=trigger(name="two")), "triggers", 1, 1)
    shown = api.get("/api/v1/tenants/acme/quotas").json()["triggers"]
    assert shown == {"limit": 1, "default": 1, "override": None, "used": 1}


def test_the_documented_defaults_are_generous() -> None:
    from tickwork.settings import Settings

    settings = Settings()
    assert settings.quota_triggers >= 100_000
    assert settings.quota_slots_per_minute >= 100_000
    assert quotas.limits(settings, {}) == {
        "projects": 10_000,
        "agents": 100_000,
        "triggers": 100_000,
        "api_keys": 10_000,
        "slots_per_minute": 100_000,
    }


def test_the_admin_reads_and_overrides_quotas_partially(
    api: TestClient, client: TestClient, scope: Scope, make_trigger: Callable[..., Any]
) -> None:
    make_trigger(cron_expression=EVERY_SECOND)
    url = "/api/v1/admin/tenants/acme/quotas"
    got = client.get(url, headers=ADMIN)
    assert got.status_code == 200
    assert got.json() == {
        "tenant": "acme",
        "projects": {"limit": 10_000, "default": 10_000, "override": None, "used": 1},
        "agents": {"limit": 100_000, "default": 100_000, "override": None, "used": 1},
        "triggers": {"limit": 100_000, "default": 100_000, "override": None, "used": 1},
        "api_keys": {"limit": 10_000, "default": 10_000, "override": None, "used": 1},
        "slots_per_minute": {"limit": 100_000, "default": 100_000, "override": None, "used": 60},
    }
    changed = set_quotas(client, "acme", triggers=5, slots_per_minute=600)
    assert changed["triggers"]["override"] == 5
    assert changed["slots_per_minute"]["limit"] == 600
    again = set_quotas(client, "acme", agents=3)  # left out: unchanged
    assert (again["triggers"]["limit"], again["agents"]["limit"]) == (5, 3)
    reset = set_quotas(client, "acme", triggers=None)  # null: the default again
    assert reset["triggers"] == {"limit": 100_000, "default": 100_000, "override": None, "used": 1}
    assert reset["agents"]["override"] == 3
    # The tenant sees its own quotas with any of its keys.
    assert api.get("/api/v1/tenants/acme/quotas").json() == reset


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"triggers": -1}, "triggers"),
        ({"triggers": 1.5}, "triggers"),
        ({"triggers": "10"}, "triggers"),
        ({"triggers": 10**10}, "triggers"),
        ({"workers": 3}, "workers"),
    ],
)
def test_the_admin_gets_a_clear_error_for_a_bad_quota(
    client: TestClient, acme: TenantKey, body: dict[str, Any], field: str
) -> None:
    response = client.put("/api/v1/admin/tenants/acme/quotas", json=body, headers=ADMIN)
    assert problem(response, 422)["errors"][0]["field"] == field


def test_quotas_of_a_missing_tenant_are_not_found(client: TestClient) -> None:
    problem(client.get("/api/v1/admin/tenants/nobody/quotas", headers=ADMIN), 404)
    put = client.put("/api/v1/admin/tenants/nobody/quotas", json={"triggers": 1}, headers=ADMIN)
    problem(put, 404)


def test_the_quota_routes_need_the_admin_token(client: TestClient, acme: TenantKey) -> None:
    for headers in ({}, acme.headers, {"Authorization": "Bearer wrong"}):
        problem(client.get("/api/v1/admin/tenants/acme/quotas", headers=headers), 401)
        put = client.put("/api/v1/admin/tenants/acme/quotas", json={}, headers=headers)
        problem(put, 401)


# --- concurrency -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["triggers", "projects", "api_keys", "slots_per_minute"])
def test_concurrent_creates_at_the_limit_never_overshoot(ctx: Context, kind: str) -> None:
    # On PostgreSQL the writers really overlap and the tenant's row lock orders them; on
    # SQLite the write lock does. The same assertions hold on both.
    tenants.create_tenant(ctx, "acme")
    resources.put_project(ctx, "acme", "p", None, None)
    resources.put_agent(ctx, "acme", "p", "main", "a", None, {"type": "python", "handler": "h"})
    limit = 5
    quotas.set_overrides(ctx, "acme", {kind: limit * (60 if kind == "slots_per_minute" else 1)})

    def create(i: int) -> None:
        if kind == "projects":
            resources.put_project(ctx, "acme", f"p{i}", None, None)
        elif kind == "api_keys":
            tenants.create_key(ctx, "acme", f"k{i}")
        else:
            cron = EVERY_SECOND if kind == "slots_per_minute" else "@daily"
            triggers.create_trigger(
                ctx, "acme", "p", "a", {"name": f"t{i}", "cron_expression": cron}
            )

    attempts = 16
    start = threading.Barrier(attempts)
    outcomes: list[str] = []

    def attempt(i: int) -> None:
        start.wait()
        try:
            create(i)
        except QuotaExceeded as exc:
            outcomes.append(f"refused {exc.quota}")
        else:
            outcomes.append("created")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    _, _, used = quotas.usage(ctx, "acme")
    count = {
        "triggers": used.triggers,
        "projects": used.projects,
        "api_keys": used.api_keys,
        "slots_per_minute": used.slots_per_day // (60 * 1440),
    }[kind]
    already = 1 if kind == "projects" else 0  # the project p
    assert count == limit
    assert outcomes.count("created") == limit - already
    assert outcomes.count(f"refused {kind}") == attempts - limit + already
