"""The agent targets and the run context through the HTTP API (SPEC §13): a2a and openai
targets defined, shown without their secrets and stored encrypted; the trigger fields
conversation, daily_token_budget and run_as; usage on invocations; and run_as settable
only with a write key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from tests.api.helpers import Scope, TenantKey, field_error, problem
from tickwork.services import execution
from tickwork.services.context import Context
from tickwork.settings import Settings
from tickwork.storage import tables

KEY = Fernet.generate_key().decode()
A2A = {"type": "a2a", "url": "https://agents.example.com/a2a", "secret": "agent-token"}
MODEL = {
    "type": "openai",
    "base_url": "https://models.example.com/v1",
    "model": "small-1",
    "instructions": "Answer in one line.",
    "secret": {"env": "TICKWORK_TARGET_SECRET_MODELS"},
}


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url, deployment_id="dep_test", version="test", secret_keys=(KEY,)
    )


def stored_target(ctx: Context, agent: str) -> dict[str, Any]:
    with ctx.db.read() as tx:
        row = tx.conn.execute(
            sa.select(tables.agents.c.target).where(tables.agents.c.id == agent)
        ).one()
    target: dict[str, Any] = row.target
    return target


def test_an_a2a_target_is_shown_without_its_secret_and_stored_encrypted(
    api: TestClient, scope: Scope, ctx: Context
) -> None:
    response = api.put(scope.project_url + "/agents/helper", json={"target": A2A})
    assert response.status_code == 201, response.text
    assert response.json()["target"] == {
        "type": "a2a",
        "url": "https://agents.example.com/a2a",
        "protocol_version": "1.0",
        "has_secret": True,
    }
    stored = stored_target(ctx, "helper")
    assert set(stored["secret"]) == {"fernet"}
    assert "agent-token" not in str(stored)
    assert Fernet(KEY).decrypt(stored["secret"]["fernet"].encode()) == b"agent-token"


def test_an_openai_target_shows_its_model_and_its_secrets_reference(
    api: TestClient, scope: Scope, ctx: Context
) -> None:
    response = api.put(scope.project_url + "/agents/writer", json={"target": MODEL})
    assert response.status_code == 201, response.text
    assert response.json()["target"] == {
        "type": "openai",
        "base_url": "https://models.example.com/v1",
        "model": "small-1",
        "api": "responses",
        "instructions": "Answer in one line.",
        "has_secret": True,
        "secret": {"env": "TICKWORK_TARGET_SECRET_MODELS"},
    }
    assert stored_target(ctx, "writer")["secret"] == {"env": "TICKWORK_TARGET_SECRET_MODELS"}
    # Pushed as part of a definition, it is the same target.
    pushed = api.put(
        scope.project_url + "/definition",
        json={
            "agents": [
                {
                    "id": "writer",
                    "target": MODEL,
                    "triggers": [
                        {
                            "name": "daily",
                            "cron_expression": "0 9 * * *",
                            "conversation": "continue",
                            "daily_token_budget": 1000,
                            "run_as": "svc:reports",
                        }
                    ],
                }
            ]
        },
    )
    assert pushed.status_code == 200, pushed.text
    [writer] = pushed.json()["agents"]
    assert writer["target"] == response.json()["target"]
    [daily] = writer["triggers"]
    assert (daily["conversation"], daily["daily_token_budget"], daily["run_as"]) == (
        "continue",
        1000,
        "svc:reports",
    )


@pytest.mark.parametrize(
    ("target", "field", "words"),
    [
        ({**MODEL, "model": ""}, "target.model", "at least 1 character"),
        ({k: v for k, v in MODEL.items() if k != "model"}, "target.model", "Field required"),
        ({**MODEL, "api": "completions"}, "target.api", "'responses' or 'chat'"),
        ({**MODEL, "base_url": "ftp://models"}, "target.base_url", "http:// or https:// URL"),
        ({**A2A, "protocol_version": "2.0"}, "target.protocol_version", "'1.0' or '0.3'"),
        ({**A2A, "secret": "tab\there"}, "target.secret", "control characters"),
        ({**A2A, "handler": "x"}, "target.handler", "Extra inputs are not permitted"),
    ],
)
def test_a_bad_agent_target_is_refused_naming_the_field(
    api: TestClient, scope: Scope, target: dict[str, Any], field: str, words: str
) -> None:
    error = field_error(api.put(scope.project_url + "/agents/bad", json={"target": target}))
    assert error["field"].endswith(field), error
    assert words in error["message"], error


def test_the_run_context_fields_are_kept_and_restored(
    api: TestClient, scope: Scope, make_trigger: Callable[..., dict[str, Any]]
) -> None:
    created = make_trigger(
        conversation="continue", daily_token_budget=50_000, run_as="user:ada@example.com"
    )
    assert (created["conversation"], created["daily_token_budget"], created["run_as"]) == (
        "continue",
        50_000,
        "user:ada@example.com",
    )
    url = scope.trigger(created["id"])
    patched = api.patch(url, json={"conversation": None, "daily_token_budget": None}).json()
    assert (patched["conversation"], patched["daily_token_budget"]) == ("new", None)
    assert patched["run_as"] == "user:ada@example.com"
    assert api.patch(url, json={"run_as": None}).json()["run_as"] is None


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"conversation": "resume"}, "conversation", "'new' or 'continue'"),
        ({"daily_token_budget": 0}, "daily_token_budget", "greater than or equal to 1"),
        ({"daily_token_budget": "lots"}, "daily_token_budget", "valid integer"),
        ({"run_as": "ada "}, "run_as", "printable ASCII"),
        ({"run_as": "x" * 257}, "run_as", "at most 256"),
    ],
)
def test_bad_run_context_fields_are_refused_in_words(
    api: TestClient, scope: Scope, body: dict[str, Any], field: str, words: str
) -> None:
    response = api.post(scope.triggers, json={"name": "t", "cron_expression": "0 * * * *", **body})
    error = field_error(response)
    assert error["field"].endswith(field), error
    assert words in error["message"], error


def test_only_a_write_key_sets_run_as(
    api: TestClient,
    scope: Scope,
    client_for: Callable[[TenantKey], TestClient],
    make_trigger: Callable[..., dict[str, Any]],
) -> None:
    minted = {}
    for name in ("read", "operate"):
        response = api.post(
            f"/api/v1/tenants/{scope.tenant}/api-keys", json={"name": name, "scope": name}
        )
        minted[name] = TenantKey(scope.tenant, response.json()["id"], response.json()["key"])
    trigger = make_trigger()
    for name, key in minted.items():
        other = client_for(key)
        body = {"name": "t2", "cron_expression": "0 * * * *", "run_as": "root"}
        refused = problem(other.post(scope.triggers, json=body), 403)
        assert (refused["required_scope"], refused["key_scope"]) == ("write", name)
        refused = problem(other.patch(scope.trigger(trigger["id"]), json={"run_as": "root"}), 403)
        assert refused["required_scope"] == "write"
    assert api.get(scope.trigger(trigger["id"])).json()["run_as"] is None
    assert api.patch(scope.trigger(trigger["id"]), json={"run_as": "svc:etl"}).status_code == 200


def test_an_invocation_shows_the_usage_its_target_reported(
    api: TestClient, scope: Scope, ctx: Context, make_trigger: Callable[..., dict[str, Any]]
) -> None:
    trigger = make_trigger()
    run = api.post(scope.trigger(trigger["id"]) + "/run").json()
    assert run["usage"] is None
    [job] = execution.claim_jobs(ctx, "worker-1", 1)
    usage = {"input_tokens": 12, "output_tokens": 30, "total_tokens": 42}
    execution.settle(
        ctx,
        [
            execution.Outcome(
                job.invocation.id,
                job.invocation.attempt,
                "worker-1",
                "completed",
                ctx.clock.now(),
                result={"output_text": "ok", "usage": usage},
                trigger_id=job.trigger.id,
                usage=usage,
            )
        ],
    )
    shown = api.get(scope.invocation(trigger["id"], run["id"])).json()
    assert shown["usage"] == usage
    assert shown["result"] == {"output_text": "ok", "usage": usage}


def test_a_triggers_usage_is_summed_per_utc_day(
    api: TestClient, scope: Scope, ctx: Context, make_trigger: Callable[..., dict[str, Any]]
) -> None:
    trigger = make_trigger(daily_token_budget=100)
    url = scope.trigger(trigger["id"]) + "/usage"
    assert api.get(url).json() == {"daily_token_budget": 100, "items": [], "next_cursor": None}
    for tokens in (30, 12):
        api.post(scope.trigger(trigger["id"]) + "/run")
        [job] = execution.claim_jobs(ctx, "worker-1", 1)
        usage = {"input_tokens": tokens, "output_tokens": 0, "total_tokens": tokens}
        outcome = execution.Outcome(
            job.invocation.id,
            job.invocation.attempt,
            "worker-1",
            "completed",
            ctx.clock.now(),
            trigger_id=job.trigger.id,
            usage=usage,
        )
        execution.settle(ctx, [outcome])
    assert api.get(url).json()["items"] == [{"day": "2026-03-02", "tokens": 42, "invocations": 2}]
    page = api.get(url, params={"limit": 1, "cursor": "2026-03-02"}).json()
    assert page["items"] == []
    error = field_error(api.get(url, params={"cursor": "yesterday"}))
    assert error["field"] == "query.cursor"
