"""Health, readiness and the OpenAPI document (SPEC §7)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import problem
from tickwork.api.app import create_app
from tickwork.services.context import Context
from tickwork.storage.engine import create_engine
from tickwork.storage.sql import Database


def test_healthz_needs_no_key(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_on_a_migrated_database(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def _readyz_with(ctx: Context, url: str) -> Any:
    database = Database(create_engine(url))
    try:
        with TestClient(create_app(dataclasses.replace(ctx, db=database))) as c:
            return c.get("/readyz")
    finally:
        database.dispose()


def test_readyz_on_a_database_without_the_schema(ctx: Context, tmp_path: Path) -> None:
    body = problem(_readyz_with(ctx, f"sqlite:///{tmp_path / 'empty.db'}"), 503)
    assert "tickwork db upgrade" in body["detail"]


def test_readyz_when_the_database_cannot_be_reached(ctx: Context, tmp_path: Path) -> None:
    body = problem(_readyz_with(ctx, f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}"), 503)
    assert "not reachable" in body["detail"]


# --- the OpenAPI document ----------------------------------------------------------------


@pytest.fixture
def spec(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


P = "/api/v1/tenants/{tenant}/projects/{project}"
T = P + "/agents/{agent}/scheduled-triggers"


def test_openapi_lists_the_routes(spec: dict[str, Any]) -> None:
    expected = {
        "/healthz": {"get"},
        "/readyz": {"get"},
        "/api/v1/admin/tenants": {"post"},
        "/api/v1/admin/tenants/{tenant}/api-keys": {"post"},
        "/api/v1/tenants/{tenant}/api-keys": {"get", "post"},
        "/api/v1/tenants/{tenant}/api-keys/{key_id}": {"delete"},
        "/api/v1/tenants/{tenant}/projects": {"get"},
        P: {"put", "get", "delete"},
        P + "/refs": {"get"},
        P + "/refs/{ref}": {"delete"},
        P + "/agents": {"get"},
        P + "/agents/{agent}": {"put", "get", "delete"},
        T: {"get", "post"},
        T + "/{trigger_id}": {"get", "patch", "delete"},
        T + "/{trigger_id}/preview": {"get"},
        T + "/{trigger_id}/run": {"post"},
        T + "/{trigger_id}/invocations": {"get"},
        T + "/{trigger_id}/invocations/{invocation_id}": {"get"},
        T + "/{trigger_id}/invocations/{invocation_id}/cancel": {"post"},
        P + "/invocations": {"get"},
    }
    served = {path: set(ops) for path, ops in spec["paths"].items()}
    for path, methods in expected.items():
        assert path in served, path
        assert methods <= served[path], path


def _schema(spec: dict[str, Any], name: str) -> dict[str, Any]:
    schema: dict[str, Any] = spec["components"]["schemas"][name]
    return schema


def _property(spec: dict[str, Any], model: str, field: str) -> dict[str, Any]:
    """A property's schema without the ``| None`` wrapper."""
    prop: dict[str, Any] = _schema(spec, model)["properties"][field]
    for option in prop.get("anyOf", []):
        if option.get("type") != "null":
            return {k: v for k, v in prop.items() if k != "anyOf"} | dict(option)
    return prop


@pytest.mark.parametrize("model", ["TriggerCreate", "TriggerPatch"])
@pytest.mark.parametrize(
    ("field", "low", "high"),
    [
        ("max_retries", 0, 10),
        ("retry_delay_seconds", 1, 3600),
        ("timeout_seconds", 1, 86400),
        ("catchup_window_seconds", 0, 31 * 86400),
        ("jitter_seconds", 0, 3600),
    ],
)
def test_openapi_declares_the_numeric_ranges(
    spec: dict[str, Any], model: str, field: str, low: int, high: int
) -> None:
    prop = _property(spec, model, field)
    assert prop["type"] == "integer"
    assert prop["minimum"] == low
    assert prop["maximum"] == high


@pytest.mark.parametrize("model", ["TriggerCreate", "TriggerPatch"])
def test_openapi_declares_the_enums_and_formats(spec: dict[str, Any], model: str) -> None:
    assert _property(spec, model, "catchup")["enum"] == ["latest", "all", "none"]
    assert _property(spec, model, "overlap")["enum"] == [
        "allow",
        "skip",
        "buffer_one",
        "cancel_previous",
    ]
    assert _property(spec, model, "run_at")["format"] == "date-time"
    assert _property(spec, model, "name")["maxLength"] == 200
    assert _property(spec, model, "message_template")["maxLength"] == 64 * 1024


def test_openapi_forbids_unknown_fields(spec: dict[str, Any]) -> None:
    for model in ("TriggerCreate", "TriggerPatch", "ProjectIn", "AgentIn", "WebhookTargetIn"):
        assert _schema(spec, model)["additionalProperties"] is False, model
    assert _schema(spec, "TriggerCreate")["required"] == ["name"]


def test_openapi_declares_the_target_union(spec: dict[str, Any]) -> None:
    target = _schema(spec, "AgentIn")["properties"]["target"]
    assert target["discriminator"]["propertyName"] == "type"
    assert set(target["discriminator"]["mapping"]) == {"webhook", "python", "a2a", "openai"}
    webhook = _schema(spec, "WebhookTargetIn")["properties"]
    assert webhook["url"]["maxLength"] == 2048
    assert "secret" not in _schema(spec, "AgentOut")["properties"]


def test_openapi_declares_the_query_limits(spec: dict[str, Any]) -> None:
    def query(path: str, name: str) -> dict[str, Any]:
        for parameter in spec["paths"][path]["get"]["parameters"]:
            if parameter["name"] == name:
                schema: dict[str, Any] = parameter["schema"]
                return schema
        raise AssertionError(f"{path} has no {name!r} parameter")

    for path in (T, P + "/invocations", "/api/v1/tenants/{tenant}/projects"):
        assert query(path, "limit")["maximum"] == 200
        assert query(path, "limit")["minimum"] == 1
    count = query(T + "/{trigger_id}/preview", "count")
    assert (count["minimum"], count["maximum"]) == (1, 1000)


def test_openapi_declares_bearer_security(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    assert schemes["AdminToken"]["scheme"] == "bearer"
    assert spec["paths"][T]["post"]["security"] == [{"HTTPBearer": []}]


def test_the_docs_page_is_served(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert "openapi.json" in response.text


def test_openapi_documents_every_error_as_a_problem(spec: dict[str, Any]) -> None:
    wrong = [
        (method, path, code, list(answer.get("content", {})))
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        for code, answer in operation["responses"].items()
        if code[0] in "45" and list(answer.get("content", {})) != ["application/problem+json"]
    ]
    assert wrong == []
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert set(_schema(spec, "Problem")["required"]) == {"type", "title", "status"}
