"""Every error is application/problem+json (RFC 9457), and no input, however hostile,
gets a 500 (SPEC §7)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.api.helpers import Scope, TenantKey, problem

MakeTrigger = Callable[..., dict[str, Any]]
JSON = {"content-type": "application/json"}


@pytest.fixture
def lenient(app: FastAPI, acme: TenantKey) -> Iterator[TestClient]:
    """Authorized as acme, and turns an unhandled exception into the 500 the server
    would send, so a test can say which input caused it."""
    with TestClient(app, headers=acme.headers, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def trigger_url(scope: Scope, make_trigger: MakeTrigger) -> str:
    return scope.trigger(make_trigger()["id"])


def test_problem_bodies_carry_type_title_status_and_detail(
    client: TestClient, api: TestClient, scope: Scope, trigger_url: str
) -> None:
    cases = [
        (client.get(scope.project_url), 401),
        (api.get(scope.project_url + "/agents/nobody"), 404),
        (api.get("/no/such/route"), 404),
        (api.delete("/healthz"), 405),
        (api.delete(scope.project_url + "/refs/main"), 409),
        (api.post(scope.triggers, json={"name": "t"}), 422),
        (api.post(scope.triggers, content=b"{", headers=JSON), 400),
    ]
    types = set()
    for response, status in cases:
        body = problem(response, status)
        assert body["detail"]
        types.add(body["type"])
    assert len(types) == len({status for _, status in cases})


def test_validation_problems_list_every_field(api: TestClient, scope: Scope) -> None:
    body = {"name": "", "cron_expression": "@daily", "max_retries": 99, "catchup": "often"}
    problem_body = problem(api.post(scope.triggers, json=body), 422)
    fields = {e["field"] for e in problem_body["errors"]}
    assert fields == {"name", "max_retries", "catchup"}
    for error in problem_body["errors"]:
        assert set(error) == {"field", "message"}
        assert error["message"]


@pytest.mark.parametrize("raw", [b"{", b"{'name': 'x'}", b'{"name": "x",}', b"nul\x00l", b"\xff"])
def test_malformed_json_is_400_on_every_body_route(
    api: TestClient, scope: Scope, trigger_url: str, raw: bytes
) -> None:
    for method, url in [
        ("PUT", scope.project_url),
        ("PUT", scope.agent_url),
        ("POST", scope.triggers),
        ("PATCH", trigger_url),
        ("POST", f"{scope.tenant_url}/api-keys"),
    ]:
        response = api.request(method, url, content=raw, headers=JSON)
        body = problem(response, 400)
        assert "JSON" in body["detail"] or "body" in body["detail"]


@pytest.mark.parametrize("raw", [b"[]", b'"text"', b"42", b"null"])
def test_a_body_that_is_not_an_object_is_422(
    api: TestClient, scope: Scope, trigger_url: str, raw: bytes
) -> None:
    for method, url in [("PUT", scope.agent_url), ("POST", scope.triggers), ("PATCH", trigger_url)]:
        problem(api.request(method, url, content=raw, headers=JSON), 422)


def test_a_body_sent_as_text_is_not_accepted(api: TestClient, scope: Scope) -> None:
    raw = b'{"name": "t", "cron_expression": "@daily"}'
    response = api.post(scope.triggers, content=raw, headers={"content-type": "text/plain"})
    assert "Content-Type: application/json" in problem(response, 415)["detail"]


def test_unknown_fields_are_422_on_every_body_route(
    api: TestClient, scope: Scope, trigger_url: str
) -> None:
    python = {"type": "python", "handler": "h"}
    for method, url, body, field in [
        ("PUT", scope.project_url, {"colour": "red"}, "colour"),
        ("PUT", scope.agent_url, {"target": python, "model": "big"}, "model"),
        ("PUT", scope.agent_url, {"target": python | {"timeout": 3}}, "target.timeout"),
        ("POST", scope.triggers, {"name": "t", "run_at": None, "cron": "@daily"}, "cron"),
        ("PATCH", trigger_url, {"enabled": True, "paused": True}, "paused"),
        ("POST", f"{scope.tenant_url}/api-keys", {"name": "k", "scopes": ["all"]}, "scopes"),
    ]:
        response = api.request(method, url, json=body)
        fields = [e["field"] for e in problem(response, 422)["errors"]]
        assert field in fields, (method, url, fields)


# --- no 500 for bad input ----------------------------------------------------------------

HOSTILE_IDS = [
    "'",
    '"',
    "x' OR '1'='1",
    "a;b",
    "%2e%2e",
    "%00",
    "a%0Ab",
    "%F0%9F%92%A5",
    "a%2Fb",
    "x" * 5000,
    "trg_" + "0" * 26 + "%00",
]


@pytest.mark.parametrize(
    "template",
    [
        "{tenant_url}/projects/{x}",
        "{tenant_url}/projects/{x}/agents",
        "{project_url}/agents/{x}",
        "{project_url}/refs/{x}",
        "{triggers}/{x}",
        "{triggers}/{x}/preview",
        "{trigger_url}/invocations/{x}",
        "{tenant_url}/api-keys/{x}",
        "/api/v1/tenants/{x}/projects",
    ],
)
def test_hostile_ids_never_get_a_500(
    lenient: TestClient, scope: Scope, trigger_url: str, template: str
) -> None:
    wrong = []
    for hostile in HOSTILE_IDS:
        url = template.format(
            tenant_url=scope.tenant_url,
            project_url=scope.project_url,
            triggers=scope.triggers,
            trigger_url=trigger_url,
            x=hostile,
        )
        for method in ("GET", "DELETE", "PUT", "POST"):
            response = lenient.request(method, url)
            content_type = response.headers["content-type"]
            if not 400 <= response.status_code < 500 or content_type != "application/problem+json":
                wrong.append((method, url[:120], response.status_code, response.text[:200]))
    assert wrong == []


@pytest.mark.parametrize(
    "query",
    [
        "limit=" + "9" * 50,
        "limit=-5",
        "limit=1e3",
        "limit=",
        "cursor=" + "z" * 100,
        "cursor=%00",
        "status=%00",
        "status=" + "x" * 10000,
        "from=" + "9" * 40,
        "from=2026-03-02T09:00:00%2B25:00",
        "from=0001-01-01T00:00:00%2B14:00",
        "to=9999-12-31T23:59:59-14:00",
        "ref=" + "a/" * 100,
    ],
)
def test_hostile_queries_never_get_a_500(
    lenient: TestClient, scope: Scope, trigger_url: str, query: str
) -> None:
    for url in (
        scope.project_invocations,
        trigger_url + "/invocations",
        scope.triggers,
        f"{scope.tenant_url}/projects",
        scope.project_url + "/agents",
    ):
        response = lenient.get(f"{url}?{query}")
        assert response.status_code in (200, 422), (url, query, response.text)
        if response.status_code == 422:
            problem(response, 422)


@pytest.mark.parametrize("count", ["-1", "0", "-99999999999999999999", "1e9", "nan", "%00"])
def test_a_hostile_preview_count_never_gets_a_500(
    lenient: TestClient, trigger_url: str, count: str
) -> None:
    problem(lenient.get(f"{trigger_url}/preview?count={count}"), 422)


CRON = '"name": "t", "cron_expression": "@daily"'


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"name": "nul\\u0000here", "cron_expression": "@daily"}', "name"),
        ('{"name": "t", "description": "\\u0000", "cron_expression": "@daily"}', "description"),
        ('{"name": "t", "cron_expression": "@daily\\u0000"}', "cron_expression"),
        ('{"name": "t", "cron_expression": "@daily", "timezone": "UTC\\u0000"}', "timezone"),
        ('{"name": "t", "cron_expression": "@daily", "message_template": "\\u0000"}', None),
        ("{" + CRON + ', "payload": {"a": "\\u0000"}}', "payload"),
        ("{" + CRON + ', "payload": {"\\u0000": 1}}', "payload"),
        ("{" + CRON + ', "payload": {"a": "\\ud800"}}', "payload"),
        ("{" + CRON + ', "payload": {"a": NaN}}', "payload"),
        ("{" + CRON + ', "payload": {"a": [Infinity]}}', "payload"),
        ("{" + CRON + ', "payload": {"a": -Infinity}}', "payload"),
        ("{" + CRON + ', "payload": {"a": 1e400}}', "payload"),
        ("{" + CRON + ', "payload": ' + '{"a":' * 65 + "1" + "}" * 65 + "}", "payload"),
        ('{"name": "t", "run_at": "9999-12-31T23:59:59-14:00"}', "run_at"),
        ('{"name": "t", "run_at": "0001-01-01T00:00:00+14:00"}', "run_at"),
        ('{"name": "t", "run_at": "2026-03-02T10:00:00+25:00"}', "run_at"),
        ("{" + CRON + ', "max_retries": 1e400}', "max_retries"),
        ("{" + CRON + ', "max_retries": ' + "9" * 5000 + "}", None),
    ],
)
def test_hostile_trigger_bodies_are_rejected_not_stored(
    lenient: TestClient, scope: Scope, raw: str, field: str | None
) -> None:
    response = lenient.post(scope.triggers, content=raw.encode(), headers=JSON)
    assert response.status_code in (400, 422), response.text
    body = problem(response, response.status_code)
    if field is not None:
        assert body["errors"][0]["field"] == field
    assert lenient.get(scope.triggers).json()["items"] == []


def test_a_payload_nested_64_deep_round_trips(lenient: TestClient, scope: Scope) -> None:
    # 64 levels of containers: 63 objects around a list.
    payload: dict[str, Any] = {"leaf": [1.5, "ü", None, True, 10**30]}
    for _ in range(62):
        payload = {"a": payload}
    created = lenient.post(
        scope.triggers, json={"name": "t", "cron_expression": "@daily", "payload": payload}
    )
    assert created.status_code == 201, created.text
    assert created.json()["payload"] == payload
    fetched = lenient.get(scope.trigger(created.json()["id"]))
    assert fetched.json()["payload"] == payload
    run = lenient.post(scope.trigger(created.json()["id"]) + "/run")
    assert run.json()["payload"] == payload


@pytest.mark.parametrize(
    ("url_of", "raw", "field"),
    [
        ("project", '{"name": "\\u0000"}', "name"),
        ("project", '{"description": "a\\u0000b"}', "description"),
        ("agent", '{"name": "\\u0000", "target": {"type": "python", "handler": "h"}}', "name"),
        ("agent", '{"target": {"type": "webhook", "url": "https://e.com/\\u0000"}}', "target.url"),
        (
            "agent",
            '{"target": {"type": "webhook", "url": "https://e.com/", "secret": "\\u0000"}}',
            "target.secret",
        ),
        ("keys", '{"name": "\\u0000"}', "name"),
        ("patch", '{"name": "\\u0000"}', "name"),
        ("patch", '{"payload": {"x": NaN}}', "payload"),
        ("patch", '{"run_at": "0001-01-01T00:00:00+14:00"}', "run_at"),
    ],
)
def test_hostile_bodies_on_other_routes_are_rejected(
    lenient: TestClient, scope: Scope, trigger_url: str, url_of: str, raw: str, field: str
) -> None:
    method, url = {
        "project": ("PUT", scope.project_url),
        "agent": ("PUT", scope.agent_url),
        "keys": ("POST", f"{scope.tenant_url}/api-keys"),
        "patch": ("PATCH", trigger_url),
    }[url_of]
    response = lenient.request(method, url, content=raw.encode(), headers=JSON)
    assert problem(response, 422)["errors"][0]["field"] == field


def test_a_body_nested_too_deep_to_parse_is_400(lenient: TestClient, scope: Scope) -> None:
    raw = "{" + CRON + ', "payload": ' + '{"a":' * 5000 + "1" + "}" * 5000 + "}"
    problem(lenient.post(scope.triggers, content=raw.encode(), headers=JSON), 400)
