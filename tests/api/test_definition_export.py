"""A ref's definition read back (``GET /definition``) in exactly the form ``PUT`` takes,
and pushes tried first (``?dry_run=true``): SPEC §10, Definitions."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import Scope, at, field_error, problem
from tickwork.services.context import Context
from tickwork.testing import FakeClock

PYTHON = {"type": "python", "handler": "agents.run"}
WEBHOOK = {"type": "webhook", "url": "https://hooks.example.com/run", "secret": "s3cret"}
ENV = {
    "type": "webhook",
    "url": "https://hooks.example.com/env",
    "secret": {"env": "TICKWORK_TARGET_SECRET_HOOK"},
}
RICH: dict[str, Any] = {
    "agents": [
        {
            "id": "writer",
            "name": "Report writer",
            "target": WEBHOOK,
            "max_concurrency": 2,
            "triggers": [
                {
                    "name": "morning",
                    "description": "the morning report",
                    "cron_expression": "30 8 * * MON-FRI",
                    "timezone": "Europe/Berlin",
                    "payload": {"team": "core", "none": None, "list": [1, None, {"a": []}]},
                    "message_template": "Report for {{ team }}",
                    "max_retries": 3,
                    "retry_delay_seconds": 10,
                    "timeout_seconds": 60,
                    "catchup": "all",
                    "catchup_window_seconds": 600,
                    "overlap": "skip",
                    "jitter_seconds": 5,
                },
                {"name": "off", "cron_expression": "@hourly", "enabled": False},
            ],
        },
        {"id": "env", "target": ENV, "triggers": [{"name": "once", "run_at": at(90)}]},
        {"id": "plain", "target": PYTHON},
    ]
}


def url(scope: Scope) -> str:
    return scope.project_url + "/definition"


def push(api: TestClient, scope: Scope, body: Any, **params: str) -> dict[str, Any]:
    response = api.put(url(scope), params=params, json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def exported(api: TestClient, scope: Scope, **params: str) -> dict[str, Any]:
    response = api.get(url(scope), params=params)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def stored_targets(ctx: Context) -> dict[str, Any]:
    with ctx.db.read() as tx:
        return {a.id: a.target for a in tx.list_agents("acme", "p", "main")}


def test_a_definition_read_back_and_pushed_again_changes_nothing(
    api: TestClient, scope: Scope, ctx: Context
) -> None:
    first = push(api, scope, RICH)
    stored = stored_targets(ctx)
    document = exported(api, scope)
    again = push(api, scope, document)
    assert again["changed"] is False
    assert again["revision"] == first["revision"]
    assert {c["action"] for c in again["changes"]} == {"unchanged"}
    assert stored_targets(ctx) == stored  # the secret kept, as it was stored
    assert exported(api, scope) == document


def test_the_export_writes_every_setting_and_never_a_secret(api: TestClient, scope: Scope) -> None:
    push(api, scope, RICH)
    document = exported(api, scope)
    assert "s3cret" not in str(document)
    # In id order (the push deleted the agent the fixture made).
    agents = {a["id"]: a for a in document["agents"]}
    assert list(agents) == ["env", "plain", "writer"]
    writer = agents["writer"]
    assert writer["target"] == {
        "type": "webhook",
        "url": "https://hooks.example.com/run",
        "secret": {"keep": True},
    }
    assert writer["name"] == "Report writer"
    assert writer["max_concurrency"] == 2
    assert agents["env"]["target"] == ENV
    assert agents["plain"] == {"id": "plain", "name": "plain", "target": PYTHON, "triggers": []}
    defaults = {"enabled": True, "conversation": "new"}
    assert writer["triggers"][0] == defaults | RICH["agents"][0]["triggers"][0]
    assert writer["triggers"][1] == {
        "name": "off",
        "description": "",
        "enabled": False,
        "cron_expression": "@hourly",
        "timezone": "UTC",
        "payload": {},
        "max_retries": 1,
        "retry_delay_seconds": 60,
        "timeout_seconds": 780,
        "catchup": "latest",
        "catchup_window_seconds": 3600,
        "overlap": "allow",
        "jitter_seconds": 0,
        "conversation": "new",
    }
    once = agents["env"]["triggers"][0]
    assert once["run_at"] == at(90)
    assert "cron_expression" not in once


def test_triggers_made_one_by_one_are_part_of_the_export(api: TestClient, scope: Scope) -> None:
    api.post(scope.triggers, json={"name": "q", "cron_expression": "*/15 * * * *"})
    document = exported(api, scope)
    assert [t["name"] for t in document["agents"][0]["triggers"]] == ["q"]
    assert push(api, scope, document)["changed"] is False


def test_keep_on_an_agent_without_a_stored_secret_is_422(api: TestClient, scope: Scope) -> None:
    keep = WEBHOOK | {"secret": {"keep": True}}
    response = api.put(url(scope), json={"agents": [{"id": "new", "target": keep}]})
    error = field_error(response)
    assert error["field"] == "agents[0].target.secret"
    assert "has none" in error["message"]
    single = api.put(scope.project_url + "/agents/other", json={"target": keep})
    assert field_error(single)["field"] == "target.secret"
    bad = api.put(scope.agent_url, json={"target": WEBHOOK | {"secret": {"keep": False}}})
    assert field_error(bad)["field"] == "target.secret"


def test_the_export_of_a_ref_that_does_not_exist_is_404(api: TestClient, scope: Scope) -> None:
    problem(api.get(url(scope), params={"ref": "feature/none"}), 404)
    problem(api.get(scope.tenant_url + "/projects/nope/definition"), 404)


# --- dry runs ----------------------------------------------------------------------------


def test_a_dry_run_says_what_would_change_and_writes_nothing(
    api: TestClient, scope: Scope, clock: FakeClock
) -> None:
    first = push(api, scope, RICH)
    before = exported(api, scope)
    tag = api.get(url(scope)).headers["ETag"]
    changed: dict[str, Any] = {
        "agents": [
            RICH["agents"][0]
            | {
                "triggers": [
                    RICH["agents"][0]["triggers"][0] | {"max_retries": 5, "timezone": "UTC"},
                    {"name": "new", "cron_expression": "@daily"},
                ]
            },
            RICH["agents"][2],
            {"id": "added", "target": PYTHON},
        ]
    }
    clock.advance(minutes=5)
    dry = push(api, scope, changed, dry_run="true")
    assert dry["dry_run"] is True
    assert dry["changed"] is True
    assert dry["revision"] == first["revision"] + 1
    assert dry["agents"] == []
    assert dry["summary"] == {
        "agents": {"created": 1, "updated": 0, "deleted": 1, "unchanged": 2},
        "triggers": {"created": 1, "updated": 1, "deleted": 2, "unchanged": 0},
    }
    ids = {(a["id"], t["name"]): t["id"] for a in first["agents"] for t in a["triggers"]}
    changes = {(c["action"], c["agent"], c["trigger"]): c for c in dry["changes"]}
    assert set(changes) == {
        ("delete", "env", None),
        ("delete", "env", "once"),
        ("unchanged", "writer", None),
        ("update", "writer", "morning"),
        ("create", "writer", "new"),
        ("unchanged", "plain", None),
        ("create", "added", None),
        ("delete", "writer", "off"),
    }
    morning = changes["update", "writer", "morning"]
    assert morning["fields"] == ["timezone", "max_retries"]
    assert morning["trigger_id"] == ids["writer", "morning"]
    assert changes["create", "writer", "new"]["trigger_id"] is None
    assert changes["delete", "env", "once"]["trigger_id"] == ids["env", "once"]
    # Nothing was written.
    assert exported(api, scope) == before
    assert api.get(url(scope)).headers["ETag"] == tag
    assert "ETag" not in api.put(url(scope), params={"dry_run": "true"}, json=changed).headers
    real = push(api, scope, changed)
    assert real["summary"] == dry["summary"]
    assert real["revision"] == dry["revision"]


def test_a_dry_run_onto_a_new_ref_creates_no_ref(api: TestClient, scope: Scope) -> None:
    dry = push(api, scope, RICH, ref="feature/try", dry_run="true")
    assert dry["changed"] is True
    assert dry["revision"] == 1
    assert dry["summary"]["triggers"]["created"] == 3
    refs = [r["name"] for r in api.get(scope.project_url + "/refs").json()]
    assert refs == ["main"]


def test_a_dry_run_is_refused_for_what_the_push_would_be(api: TestClient, scope: Scope) -> None:
    push(api, scope, RICH)
    empty = api.put(url(scope), params={"dry_run": "true"}, json={"agents": []})
    assert "allow_empty" in problem(empty, 409)["detail"]
    allowed = push(api, scope, {"agents": []}, dry_run="true", allow_empty="true")
    assert allowed["summary"]["agents"]["deleted"] == 3
    twice = {"agents": [{"id": "x", "target": PYTHON}, {"id": "x", "target": PYTHON}]}
    problem(api.put(url(scope), params={"dry_run": "true"}, json=twice), 409)
    late = {
        "agents": [{"id": "x", "target": PYTHON, "triggers": [{"name": "t", "run_at": at(-5)}]}]
    }
    problem(api.put(url(scope), params={"dry_run": "true"}, json=late), 422)
    assert len(exported(api, scope)["agents"]) == 3


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_dry_run_and_allow_empty_take_booleans(api: TestClient, scope: Scope, value: str) -> None:
    for name in ("dry_run", "allow_empty"):
        response = api.put(url(scope), params={name: value}, json={"agents": []})
        assert field_error(response)["field"] == f"query.{name}"


def test_every_target_types_secret_is_exported_as_keep_and_kept(
    api: TestClient, scope: Scope, ctx: Context
) -> None:
    a2a = {"type": "a2a", "url": "https://agents.example.com/a2a", "secret": "a2a-token"}
    openai = {
        "type": "openai",
        "base_url": "https://llm.example.com/v1",
        "model": "gpt-test",
        "secret": "sk-test",
    }
    push(api, scope, {"agents": [{"id": "a2a", "target": a2a}, {"id": "llm", "target": openai}]})
    stored = stored_targets(ctx)
    document = exported(api, scope)
    assert "a2a-token" not in str(document)
    assert "sk-test" not in str(document)
    for agent in document["agents"]:
        assert agent["target"]["secret"] == {"keep": True}
    assert push(api, scope, document)["changed"] is False
    assert stored_targets(ctx) == stored
