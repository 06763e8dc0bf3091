"""Fixtures for the web UI's HTTP tests: the app with the UI over the test ``ctx``, a
tenant with keys of each scope, and signed-in clients."""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from tests.api.helpers import Scope, TenantKey, make_scope, new_tenant
from tickwork import ui
from tickwork.api.app import create_app
from tickwork.services import tenants
from tickwork.services.context import Context
from tickwork.testing import register_handlers

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

__all__ = ["ADMIN_TOKEN", "TestClient", "csrf_of", "sign_in"]

ADMIN_TOKEN = "admin-token-for-tests"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def ui_ctx(ctx: Context) -> Context:
    ctx.settings = ctx.settings.with_(admin_token=ADMIN_TOKEN)
    register_handlers(ctx, ("agents.run",))
    return ctx


@pytest.fixture
def ui_app(ui_ctx: Context) -> FastAPI:
    app = create_app(ui_ctx)
    ui.install(app)
    return app


@pytest.fixture
def acme(ui_ctx: Context) -> TenantKey:
    return new_tenant(ui_ctx, "acme")


@pytest.fixture
def keys(ui_ctx: Context, acme: TenantKey) -> dict[str, str]:
    """A key of tenant acme per scope."""
    made = {"write": acme.key}
    for scope in ("read", "operate"):
        made[scope] = tenants.create_key(ui_ctx, "acme", f"{scope} key", scope)[1]
    return made


@pytest.fixture
def clients(ui_app: FastAPI) -> Iterator[Callable[..., TestClient]]:
    with contextlib.ExitStack() as stack:

        def make(**kwargs: Any) -> TestClient:
            return stack.enter_context(TestClient(ui_app, follow_redirects=False, **kwargs))

        yield make


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, html
    return found.group(1)


def sign_in(client: TestClient, key: str) -> TestClient:
    page = client.get("/ui/login")
    assert page.status_code == 200
    answer = client.post("/ui/login", data={"csrf": csrf_of(page.text), "api_key": key})
    assert answer.status_code == 303, answer.text
    return client


@pytest.fixture
def signed_in(
    clients: Callable[..., TestClient], keys: dict[str, str]
) -> Callable[[str], TestClient]:
    """A client signed in with acme's key of that scope."""

    def make(scope: str = "write") -> TestClient:
        return sign_in(clients(), keys[scope])

    return make


@pytest.fixture
def api(clients: Callable[..., TestClient], acme: TenantKey) -> TestClient:
    return clients(headers=acme.headers)


@pytest.fixture
def scope(api: TestClient, acme: TenantKey) -> Scope:
    return make_scope(api, acme.tenant)


@pytest.fixture
def make_trigger(api: TestClient, scope: Scope) -> Callable[..., dict[str, Any]]:
    def make(**fields: Any) -> dict[str, Any]:
        body = {"name": "report", "cron_expression": "*/15 * * * *"} | fields
        response = api.post(scope.triggers, json=body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    return make
