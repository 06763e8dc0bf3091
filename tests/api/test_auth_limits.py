"""Failed authentication is rate-limited per client address (SPEC §9), for API keys, the
admin token and the deploy secret alike; successful requests are never counted. The
client address is the one the ASGI server reports (X-Forwarded-For is not read)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.api.helpers import Response, TenantKey, problem
from tickwork.errors import ValidationError
from tickwork.services.auth_failures import AuthFailures
from tickwork.services.context import Context
from tickwork.settings import Settings
from tickwork.testing import FakeClock

PROJECTS = "/api/v1/tenants/acme/projects"
WRONG = {"Authorization": "Bearer tw_guess"}
ADMIN_TOKEN = "admin-token-for-limits"
DEPLOY_SECRET = "deploy-secret-for-limits"
LIMIT = 3
Connect = Callable[[str], TestClient]


@pytest.fixture(autouse=True)
def _limited(ctx: Context, clock: FakeClock) -> None:
    ctx.settings = ctx.settings.with_(admin_token=ADMIN_TOKEN, deploy_secret=DEPLOY_SECRET)
    ctx.auth_failures = AuthFailures(clock, LIMIT, 60, 1000)


@pytest.fixture
def connect(app: FastAPI) -> Iterator[Connect]:
    clients: list[TestClient] = []

    def make(address: str) -> TestClient:
        client = TestClient(app, client=(address, 40000))
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def refused(response: Response) -> int:
    body = problem(response, 429)
    assert body["type"] == "urn:tickwork:problem:too-many-requests"
    assert "too many failed authentication attempts" in body["detail"]
    wait = int(response.headers["retry-after"])
    assert f"{wait} s" in body["detail"]
    return wait


def test_an_address_is_refused_after_repeated_wrong_keys_and_others_are_not(
    connect: Connect, acme: TenantKey, clock: FakeClock
) -> None:
    attacker, bystander = connect("203.0.113.7"), connect("198.51.100.2")
    for _ in range(LIMIT):
        problem(attacker.get(PROJECTS, headers=WRONG), 401)
    clock.advance(15)
    assert refused(attacker.get(PROJECTS, headers=WRONG)) == 45
    # Refused before the key is looked at: even the right key, so guessing learns nothing.
    assert refused(attacker.get(PROJECTS, headers=acme.headers)) == 45
    # Another address carries on, right key or wrong.
    assert bystander.get(PROJECTS, headers=acme.headers).status_code == 200
    problem(bystander.get(PROJECTS, headers=WRONG), 401)
    clock.advance(45)
    assert attacker.get(PROJECTS, headers=acme.headers).status_code == 200


def test_successful_requests_are_never_counted(connect: Connect, acme: TenantKey) -> None:
    client = connect("203.0.113.7")
    for _ in range(50):
        assert client.get(PROJECTS, headers=acme.headers).status_code == 200
    for _ in range(LIMIT):
        problem(client.get(PROJECTS, headers=WRONG), 401)
    refused(client.get(PROJECTS, headers=WRONG))


def test_no_credentials_and_another_tenants_key_are_not_guesses(
    connect: Connect, acme: TenantKey, rival: TenantKey
) -> None:
    client = connect("203.0.113.7")
    for _ in range(10):
        problem(client.get(PROJECTS), 401)
        problem(client.get(PROJECTS, headers=rival.headers), 404)
    assert client.get(PROJECTS, headers=acme.headers).status_code == 200


@pytest.mark.parametrize("key", ["tw_wrong", "wrong", "tw_" + "x" * 5000, "Bearer"])
def test_every_form_of_wrong_key_counts(connect: Connect, acme: TenantKey, key: str) -> None:
    client = connect("203.0.113.7")
    for _ in range(LIMIT):
        problem(client.get(PROJECTS, headers={"Authorization": f"Bearer {key}"}), 401)
    refused(client.get(PROJECTS, headers=acme.headers))


def test_wrong_admin_tokens_are_limited_too(connect: Connect) -> None:
    attacker, admin = connect("203.0.113.7"), connect("198.51.100.2")
    for _ in range(LIMIT):
        problem(attacker.get("/api/v1/system/scheduler", headers=WRONG), 401)
    refused(attacker.post("/api/v1/admin/tenants", json={"id": "x"}, headers=WRONG))
    good = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    refused(attacker.post("/api/v1/admin/tenants", json={"id": "x"}, headers=good))
    assert admin.post("/api/v1/admin/tenants", json={"id": "x"}, headers=good).status_code == 201


def test_wrong_deploy_secrets_are_limited_too(connect: Connect) -> None:
    attacker = connect("203.0.113.7")
    for _ in range(LIMIT):
        problem(attacker.post("/api/deploy/restart-scheduler", headers=WRONG), 401)
    refused(attacker.post("/api/deploy/restart-scheduler", headers=WRONG))
    # Any kind of credential failure counts towards the same address's limit.
    refused(attacker.get(PROJECTS, headers=WRONG))


def test_a_forged_forwarded_for_header_does_not_change_the_address(
    connect: Connect, acme: TenantKey
) -> None:
    client = connect("203.0.113.7")
    for i in range(LIMIT):
        forged = WRONG | {"X-Forwarded-For": f"10.0.0.{i}", "Forwarded": f"for=10.0.1.{i}"}
        problem(client.get(PROJECTS, headers=forged), 401)
    refused(client.get(PROJECTS, headers=acme.headers | {"X-Forwarded-For": "10.9.9.9"}))


def test_the_defaults_and_their_settings() -> None:
    settings = Settings()
    assert (settings.auth_failure_limit, settings.auth_failure_window_seconds) == (20, 60)
    assert settings.auth_failure_max_clients == 50_000
    env = {
        "TICKWORK_AUTH_FAILURE_LIMIT": "5",
        "TICKWORK_AUTH_FAILURE_WINDOW_SECONDS": "300",
        "TICKWORK_AUTH_FAILURE_MAX_CLIENTS": "1000",
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        loaded = Settings.from_env()
    assert (loaded.auth_failure_limit, loaded.auth_failure_window_seconds) == (5, 300)
    assert loaded.auth_failure_max_clients == 1000


def test_forwarded_for_is_read_only_from_the_trusted_proxies(app: FastAPI) -> None:
    from tickwork.cli.serving import uvicorn_config

    default = uvicorn_config(app, Settings())
    assert default.proxy_headers is False  # uvicorn's own default would trust loopback
    behind = uvicorn_config(app, Settings(trusted_proxies="10.0.0.0/8,::1"))
    assert behind.proxy_headers is True
    assert behind.forwarded_allow_ips == "10.0.0.0/8,::1"


@pytest.mark.parametrize("value", ["proxy.internal", "10.0.0.0/33", "1.2.3.4,nope"])
def test_a_bad_trusted_proxy_stops_the_start_naming_the_variable(value: str) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TICKWORK_TRUSTED_PROXIES", value)
        with pytest.raises(ValidationError) as refused:
            Settings.from_env()
    assert refused.value.field == "TICKWORK_TRUSTED_PROXIES"
    assert "is not an IP address or network" in refused.value.message
