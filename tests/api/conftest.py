"""Fixtures for the HTTP API tests: the app over the test ``ctx``, tenants with keys,
and an authorized client.

``client`` is anonymous; ``api`` carries a key of the tenant ``acme``; ``scope`` is a
project ``p`` with an agent ``a`` (python target) created through the API.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.exceptions import StarletteDeprecationWarning

from tests.api.helpers import Scope, TenantKey, make_scope, new_tenant
from tickwork.api.app import create_app
from tickwork.services.context import Context
from tickwork.testing import register_handlers

with warnings.catch_warnings():
    # Starlette deprecates its httpx-based test client in favour of httpx2, which this
    # project does not depend on; the client works the same.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient


@pytest.fixture(scope="session")
def _shared_app() -> dict[str, FastAPI]:
    return {}


@pytest.fixture
def app(ctx: Context, _shared_app: dict[str, FastAPI]) -> FastAPI:
    """``create_app(ctx)`` for this test's ctx.

    One app serves the whole session and is pointed at each test's ctx: FastAPI
    prepares a route on its first request (tens of ms each), which repeated for every
    test would make up most of this suite's run time. The guard below fails the moment
    create_app keeps anything but the ctx (and the scheduler, None here), where sharing
    would stop being safe."""
    app = _shared_app.get("app")
    if app is None:
        app = _shared_app["app"] = create_app(ctx)
        kept = vars(app.state)["_state"]
        assert set(kept) == {"ctx", "scheduler"}, "create_app keeps more than ctx"
        assert kept["scheduler"] is None
    app.state.ctx = ctx
    return app


# The python handlers these tests name, as a live worker would have registered them.
HANDLERS = ("agents.run", "agents.next", "experimental", "h", "reports.daily:v2")


@pytest.fixture(autouse=True)
def registered_handlers(ctx: Context) -> tuple[str, ...]:
    register_handlers(ctx, HANDLERS)
    return HANDLERS


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """No credentials."""
    with TestClient(app) as c:
        yield c


@pytest.fixture
def client_for(app: FastAPI) -> Iterator[Callable[[TenantKey], TestClient]]:
    """Clients carrying a tenant's key."""
    with contextlib.ExitStack() as stack:

        def make(who: TenantKey) -> TestClient:
            # Entered: one event loop thread for all its requests, not one per request.
            return stack.enter_context(TestClient(app, headers=who.headers))

        yield make


@pytest.fixture
def acme(ctx: Context) -> TenantKey:
    return new_tenant(ctx, "acme")


@pytest.fixture
def rival(ctx: Context) -> TenantKey:
    return new_tenant(ctx, "rival")


@pytest.fixture
def api(client_for: Callable[[TenantKey], TestClient], acme: TenantKey) -> TestClient:
    """Authorized as tenant ``acme``."""
    return client_for(acme)


@pytest.fixture
def scope(api: TestClient, acme: TenantKey) -> Scope:
    return make_scope(api, acme.tenant)


@pytest.fixture
def make_trigger(api: TestClient, scope: Scope) -> Callable[..., dict[str, Any]]:
    """Create a trigger on ``scope``'s agent; defaults to every 15 minutes."""

    def make(**fields: Any) -> dict[str, Any]:
        body = {"name": "report"} | fields
        if "run_at" not in body:
            body.setdefault("cron_expression", "*/15 * * * *")
        response = api.post(scope.triggers, json=body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    return make
