"""One access line per request, with the route's template; an unhandled error logged
with its traceback and answered as a 500 that says nothing of it."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.helpers import Scope, TenantKey, problem
from tests.logs import captured_logs
from tickwork.api.app import create_app
from tickwork.services.context import Context


def test_each_request_is_logged_with_its_route_template_status_duration_and_tenant(
    api: TestClient, scope: Scope
) -> None:
    with captured_logs() as logs:
        api.get(scope.agent_url)
        api.get(scope.project_url + "/agents/nobody")
        api.get("/no/such/route")
        api.delete("/healthz")
    lines = logs.events("request")
    assert [(line["method"], line["route"], line["status"], line["tenant"]) for line in lines] == [
        ("GET", "/api/v1/tenants/{tenant}/projects/{project}/agents/{agent}", 200, scope.tenant),
        ("GET", "/api/v1/tenants/{tenant}/projects/{project}/agents/{agent}", 404, scope.tenant),
        ("GET", None, 404, None),
        ("DELETE", "/healthz", 405, None),
    ]
    assert all(line["logger"] == "tickwork.access" for line in lines)
    assert all(isinstance(line["duration_ms"], int | float) for line in lines)
    assert all(line["duration_ms"] >= 0 for line in lines)


def test_an_unhandled_error_is_logged_with_its_traceback_and_answered_without_it(
    ctx: Context, acme: TenantKey
) -> None:
    app = create_app(ctx)

    def broken_lookup(tenant: str) -> None:
        raise RuntimeError("the lookup table is corrupt: row 42")

    app.add_api_route("/api/v1/tenants/{tenant}/broken", broken_lookup, methods=["GET"])
    with (
        captured_logs() as logs,
        TestClient(app, headers=acme.headers, raise_server_exceptions=False) as client,
    ):
        response = client.get("/api/v1/tenants/acme/broken")
    body = problem(response, 500)
    assert "corrupt" not in response.text
    assert body["detail"] == "an internal error occurred; details are in the server log"
    [error] = logs.events("unhandled error")
    assert error["level"] == "error"
    assert (error["method"], error["route"], error["tenant"]) == (
        "GET",
        "/api/v1/tenants/{tenant}/broken",
        "acme",
    )
    assert error["error"] == "RuntimeError: the lookup table is corrupt: row 42"
    [exc] = error["exception"]
    assert exc["exc_type"] == "RuntimeError"
    assert exc["frames"][-1]["name"] == "broken_lookup"
    [access] = logs.events("request")
    assert (access["status"], access["route"]) == (500, "/api/v1/tenants/{tenant}/broken")
