"""Bearer keys, their revocation, and the admin token (SPEC §2, §7)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import TenantKey, new_tenant, problem
from tickwork.api.app import create_app
from tickwork.services.context import Context

PROJECTS = "/api/v1/tenants/acme/projects"
ADMIN_TOKEN = "admin-token-for-tests"


def test_it_requires_a_key(client: TestClient, acme: TenantKey) -> None:
    response = client.get(PROJECTS)
    body = problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in body["detail"]


@pytest.mark.parametrize(
    "authorization",
    ["Basic YWNtZTpzZWNyZXQ=", "Bearer", "Bearer ", "bearer-ish tw_x", "tw_nobearer"],
)
def test_it_treats_a_header_without_a_bearer_key_as_missing(
    client: TestClient, acme: TenantKey, authorization: str
) -> None:
    response = client.get(PROJECTS, headers={"Authorization": authorization})
    problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "key",
    ["tw_not-a-real-key", "not-even-the-prefix", "tw_" + "x" * 500],
)
def test_it_rejects_a_wrong_key(client: TestClient, acme: TenantKey, key: str) -> None:
    response = client.get(PROJECTS, headers={"Authorization": f"Bearer {key}"})
    body = problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert body["detail"] == "the API key is not valid"


def test_a_wrong_key_gets_the_same_answer_whether_or_not_the_tenant_exists(
    client: TestClient, acme: TenantKey
) -> None:
    wrong = {"Authorization": "Bearer tw_guessing"}
    existing = client.get("/api/v1/tenants/acme/projects", headers=wrong)
    missing = client.get("/api/v1/tenants/no-such-tenant/projects", headers=wrong)
    assert existing.status_code == missing.status_code == 401
    assert existing.json() == missing.json()
    assert existing.headers["www-authenticate"] == missing.headers["www-authenticate"]


def test_another_tenants_key_gets_404_as_if_nothing_were_there(
    client: TestClient, acme: TenantKey, rival: TenantKey
) -> None:
    on_existing = client.get("/api/v1/tenants/acme/projects", headers=rival.headers)
    on_missing = client.get("/api/v1/tenants/no-such-tenant/projects", headers=rival.headers)
    problem(on_existing, 404)
    problem(on_missing, 404)
    assert on_existing.json()["title"] == on_missing.json()["title"]


def test_a_key_works_for_its_own_tenant(api: TestClient) -> None:
    response = api.get(PROJECTS)
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


def test_a_revoked_key_stops_working_at_once(
    ctx: Context, client_for: Callable[[TenantKey], TestClient]
) -> None:
    first = new_tenant(ctx, "acme", "first")
    key_id, key = _create_key(client_for(first), "second")
    second = TenantKey("acme", key_id, key)
    assert client_for(second).get(PROJECTS).status_code == 200

    revoked = client_for(first).delete(f"/api/v1/tenants/acme/api-keys/{second.key_id}")
    assert revoked.status_code == 204
    problem(client_for(second).get(PROJECTS), 401)
    assert client_for(first).get(PROJECTS).status_code == 200
    # Revoking twice: it is gone.
    again = client_for(first).delete(f"/api/v1/tenants/acme/api-keys/{second.key_id}")
    problem(again, 404)


def test_a_key_can_revoke_itself(api: TestClient, acme: TenantKey) -> None:
    assert api.delete(f"/api/v1/tenants/acme/api-keys/{acme.key_id}").status_code == 204
    problem(api.get(PROJECTS), 401)


def test_a_tenant_cannot_revoke_another_tenants_key(
    client_for: Callable[[TenantKey], TestClient], acme: TenantKey, rival: TenantKey
) -> None:
    # Through its own URL, naming the other tenant's key id.
    response = client_for(acme).delete(f"/api/v1/tenants/acme/api-keys/{rival.key_id}")
    problem(response, 404)
    assert client_for(rival).get("/api/v1/tenants/rival/projects").status_code == 200


def test_the_key_list_never_shows_secrets(api: TestClient, acme: TenantKey) -> None:
    _, second = _create_key(api, "ci")
    response = api.get("/api/v1/tenants/acme/api-keys")
    assert response.status_code == 200
    keys = response.json()
    assert sorted(k["name"] for k in keys) == ["ci", "tests"]
    for k in keys:
        assert set(k) == {"id", "name", "prefix", "scope", "created_at", "revoked_at"}
        assert k["scope"] == "write"
        assert k["prefix"].startswith("tw_")
        assert len(k["prefix"]) < 16
    for secret in (acme.key, second):
        assert secret not in response.text
        assert secret[10:] not in response.text


def test_the_key_list_shows_revoked_keys_with_when(api: TestClient, acme: TenantKey) -> None:
    key_id, _ = _create_key(api, "old")
    api.delete(f"/api/v1/tenants/acme/api-keys/{key_id}")
    keys = {k["id"]: k for k in api.get("/api/v1/tenants/acme/api-keys").json()}
    assert keys[key_id]["revoked_at"] == "2026-03-02T09:00:00Z"
    assert keys[acme.key_id]["revoked_at"] is None


def test_a_new_key_is_shown_once(api: TestClient) -> None:
    response = api.post("/api/v1/tenants/acme/api-keys", json={"name": "ci"})
    assert response.status_code == 201
    created = response.json()
    assert set(created) == {"id", "key", "scope"}
    assert created["scope"] == "write"
    assert created["key"].startswith("tw_")
    assert created["key"] not in api.get("/api/v1/tenants/acme/api-keys").text


def test_a_revoke_with_a_malformed_key_id_is_not_found(api: TestClient) -> None:
    response = api.delete("/api/v1/tenants/acme/api-keys/key_'; drop table api_keys")
    problem(response, 404)


def _create_key(client: TestClient, name: str) -> tuple[str, str]:
    response = client.post("/api/v1/tenants/acme/api-keys", json={"name": name})
    assert response.status_code == 201, response.text
    return response.json()["id"], response.json()["key"]


# --- the admin token ---------------------------------------------------------------------


@pytest.fixture
def admin(ctx: Context) -> Iterator[TestClient]:
    """An app whose settings carry an admin token; no credentials sent by default."""
    admin_ctx = dataclasses.replace(ctx, settings=ctx.settings.with_(admin_token=ADMIN_TOKEN))
    with TestClient(create_app(admin_ctx)) as c:
        yield c


ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def test_admin_routes_are_off_without_a_configured_token(client: TestClient) -> None:
    for headers in ({}, ADMIN):
        response = client.post("/api/v1/admin/tenants", json={"id": "acme"}, headers=headers)
        body = problem(response, 503)
        assert "TICKWORK_ADMIN_TOKEN" in body["detail"]
        response = client.post("/api/v1/admin/tenants/acme/api-keys", headers=headers)
        problem(response, 503)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
        {"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"},
        {"Authorization": f"Basic {ADMIN_TOKEN}"},
    ],
)
def test_admin_routes_reject_a_wrong_token(admin: TestClient, headers: dict[str, str]) -> None:
    for response in (
        admin.post("/api/v1/admin/tenants", json={"id": "acme"}, headers=headers),
        admin.post("/api/v1/admin/tenants/acme/api-keys", headers=headers),
    ):
        problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"


def test_an_api_key_is_not_an_admin_token(admin: TestClient, ctx: Context) -> None:
    tenant = new_tenant(ctx, "acme")
    response = admin.post("/api/v1/admin/tenants", json={"id": "other"}, headers=tenant.headers)
    problem(response, 401)


def test_the_admin_creates_a_tenant_and_a_key_that_works(admin: TestClient) -> None:
    created = admin.post("/api/v1/admin/tenants", json={"id": "acme"}, headers=ADMIN)
    assert created.status_code == 201
    assert created.json() == {"id": "acme"}
    again = admin.post("/api/v1/admin/tenants", json={"id": "acme"}, headers=ADMIN)
    assert again.status_code == 200

    key = admin.post("/api/v1/admin/tenants/acme/api-keys", json={"name": "ops"}, headers=ADMIN)
    assert key.status_code == 201
    bearer = {"Authorization": f"Bearer {key.json()['key']}"}
    assert admin.get(PROJECTS, headers=bearer).status_code == 200
    listed = admin.get("/api/v1/tenants/acme/api-keys", headers=bearer).json()
    assert [k["name"] for k in listed] == ["ops"]
    # The admin token is not a tenant key.
    problem(admin.get(PROJECTS, headers=ADMIN), 401)


def test_the_admin_cannot_mint_a_key_for_a_missing_tenant(admin: TestClient) -> None:
    response = admin.post("/api/v1/admin/tenants/nobody/api-keys", headers=ADMIN)
    problem(response, 404)


@pytest.mark.parametrize("tenant_id", ["", "-leading-dash", "has space", "a/b", "x" * 65, "é"])
def test_the_admin_cannot_create_a_tenant_with_a_bad_id(admin: TestClient, tenant_id: str) -> None:
    response = admin.post("/api/v1/admin/tenants", json={"id": tenant_id}, headers=ADMIN)
    error = problem(response, 422)["errors"][0]
    assert error["field"] == "id"
