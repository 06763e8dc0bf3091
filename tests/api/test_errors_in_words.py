"""Errors say what is expected in words, never as a regular expression; an id in a path
that cannot exist is not found (404); a JSON body sent without its Content-Type is told
so (415)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import Scope, field_error, problem
from tickwork.api.problems import PATTERN_WORDS

TRIGGER = {"name": "x", "cron_expression": "*/5 * * * *"}


def test_every_pattern_of_the_api_has_words(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                found.add(node["pattern"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    assert found
    assert found <= set(PATTERN_WORDS), found - set(PATTERN_WORDS)


@pytest.mark.parametrize(
    ("method", "path", "body", "field", "words"),
    [
        ("get", "/agents/a/scheduled-triggers?cursor=bad", None, "query.cursor", "next_cursor"),
        ("get", "/invocations?cursor=bad", None, "query.cursor", "next_cursor"),
        ("get", "/agents?ref=-bad", None, "query.ref", "ref name"),
        ("delete", "/refs/bad%20ref", None, "path.ref", "ref name"),
        (
            "put",
            "/agents/bad%20agent",
            {"target": {"type": "python", "handler": "h"}},
            "path.agent",
            "1-64 letters",
        ),
        (
            "put",
            "/agents/b",
            {"target": {"type": "webhook", "url": "ftp://x"}},
            "target.url",
            "http:// or https:// URL",
        ),
        (
            "put",
            "/agents/b",
            {"target": {"type": "python", "handler": "no spaces"}},
            "target.handler",
            "handler name",
        ),
        (
            "put",
            "/agents/b",
            {"target": {"type": "webhook", "url": "https://x.example", "secret": {"env": "HOME"}}},
            "target.secret",
            "TICKWORK_TARGET_SECRET_<NAME>",
        ),
        (
            "put",
            "/definition",
            {"agents": [{"id": "bad id", "target": {"type": "python", "handler": "h"}}]},
            "agents[0].id",
            "1-64 letters",
        ),
    ],
)
def test_a_value_of_the_wrong_form_is_described_in_words(
    api: TestClient, scope: Scope, method: str, path: str, body: Any, field: str, words: str
) -> None:
    response = api.request(method, scope.project_url + path, json=body)
    error = field_error(response)
    assert error["field"] == field
    assert words in error["message"]
    assert "pattern" not in response.text
    assert "^" not in response.text


def test_a_bad_project_name_and_tenant_id_are_described_in_words(
    api: TestClient, scope: Scope
) -> None:
    response = api.put(f"/api/v1/tenants/{scope.tenant}/projects/bad%20name")
    assert "1-64 letters, digits" in field_error(response)["message"]
    response = api.get(f"/api/v1/tenants/{scope.tenant}/projects?cursor=no%20way")
    assert "next_cursor" in field_error(response)["message"]


@pytest.mark.parametrize("trigger_id", ["not-an-id", "trg_XYZ", "TRG_" + "0" * 26, "x" * 65])
def test_a_malformed_trigger_id_in_a_path_is_not_found(
    api: TestClient, scope: Scope, trigger_id: str
) -> None:
    for suffix in ("", "/preview", "/invocations"):
        body = problem(api.get(scope.trigger(trigger_id) + suffix), 404)
        assert body["detail"] == f"trigger {trigger_id!r} not found"
    assert problem(api.post(scope.trigger(trigger_id) + "/run"), 404)


def test_a_malformed_invocation_or_key_id_is_not_found(
    api: TestClient, scope: Scope, make_trigger: Any
) -> None:
    trigger = make_trigger()
    body = problem(api.get(scope.invocation(trigger["id"], "inv-1")), 404)
    assert body["detail"] == "invocation 'inv-1' not found"
    body = problem(api.delete(f"/api/v1/tenants/{scope.tenant}/api-keys/nope"), 404)
    assert body["detail"] == "API key 'nope' not found"


def test_a_malformed_id_without_a_key_is_still_unauthorized(
    client: TestClient, scope: Scope
) -> None:
    problem(client.get(scope.trigger("not-an-id")), 401)


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ({}, "none was sent"),
        ({"Content-Type": "text/plain"}, "it was sent as 'text/plain'"),
        (
            {"Content-Type": "application/x-www-form-urlencoded"},  # curl -d without -H
            "it was sent as 'application/x-www-form-urlencoded'",
        ),
    ],
)
def test_a_json_body_without_its_content_type_is_told_so(
    api: TestClient, scope: Scope, headers: dict[str, str], says: str
) -> None:
    import json

    response = api.post(scope.triggers, content=json.dumps(TRIGGER), headers=headers)
    body = problem(response, 415)
    assert "Content-Type: application/json" in body["detail"]
    assert says in body["detail"]
    # An optional body too: it is not silently ignored.
    response = api.put(scope.project_url, content='{"name": "P"}', headers=headers)
    assert problem(response, 415)


def test_json_that_is_not_an_object_is_described(api: TestClient, scope: Scope) -> None:
    error = field_error(api.post(scope.triggers, json=[TRIGGER]))
    assert error == {"field": "body", "message": "must be a JSON object"}


def test_a_json_media_type_with_a_suffix_is_json(api: TestClient, scope: Scope) -> None:
    import json

    headers = {"Content-Type": "application/json; charset=utf-8"}
    response = api.post(scope.triggers, content=json.dumps(TRIGGER), headers=headers)
    assert response.status_code == 201, response.text
