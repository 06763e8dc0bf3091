"""Retention settings and the audit log over HTTP (SPEC §11): every change is recorded
with the credential that made it and its target before and after, secrets redacted;
the lists page by cursor; the project's retention takes ETag and If-Match."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import Scope, TenantKey, at, field_error, problem
from tickwork.services import tenants
from tickwork.services.audit import REDACTED
from tickwork.services.context import Context

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
ADMIN_TOKEN = "admin-secret-for-audit"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WEBHOOK = {"type": "webhook", "url": "https://hooks.example.com/run", "secret": SECRET}


def events(client: TestClient, url: str, **params: Any) -> list[dict[str, Any]]:
    response = client.get(url, params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def latest(client: TestClient, scope: Scope) -> dict[str, Any]:
    return events(client, scope.project_url + "/audit", limit=1)[0]


# --- retention settings --------------------------------------------------------------------


def test_the_retention_is_the_settings_until_the_project_overrides_it(
    api: TestClient, scope: Scope
) -> None:
    url = scope.project_url + "/retention"
    got = api.get(url)
    assert got.status_code == 200
    assert got.json() == {
        "project": "p",
        "history_retention_days": {"value": 30, "default": 30, "override": None},
        "history_max_per_trigger": {"value": 10000, "default": 10000, "override": None},
    }
    etag = got.headers["ETag"]
    put = api.put(url, json={"history_retention_days": 7}, headers={"If-Match": etag})
    assert put.status_code == 200, put.text
    assert put.json()["history_retention_days"] == {"value": 7, "default": 30, "override": 7}
    assert put.json()["history_max_per_trigger"]["override"] is None
    assert put.headers["ETag"] != etag
    # The old version no longer matches; nothing changes.
    stale = api.put(url, json={"history_max_per_trigger": 5}, headers={"If-Match": etag})
    problem(stale, 412)
    assert api.get(url).json()["history_max_per_trigger"]["override"] is None
    # null restores the default.
    back = api.put(url, json={"history_retention_days": None})
    assert back.json()["history_retention_days"] == {"value": 30, "default": 30, "override": None}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"history_retention_days": 0}, "history_retention_days"),
        ({"history_retention_days": "7"}, "history_retention_days"),
        ({"history_max_per_trigger": 10**9}, "history_max_per_trigger"),
        ({"history_days": 7}, "history_days"),
    ],
)
def test_bad_retention_settings_are_refused_naming_the_field(
    api: TestClient, scope: Scope, body: dict[str, Any], field: str
) -> None:
    assert field_error(api.put(scope.project_url + "/retention", json=body))["field"] == field


def test_the_retention_of_an_unknown_project_is_not_found(api: TestClient, scope: Scope) -> None:
    problem(api.get(scope.tenant_url + "/projects/nope/retention"), 404)
    problem(api.put(scope.tenant_url + "/projects/nope/retention", json={}), 404)
    problem(api.get(scope.tenant_url + "/projects/nope/audit"), 404)


# --- the audit log ----------------------------------------------------------------------


def test_every_kind_of_change_is_recorded_with_the_key_that_made_it(
    api: TestClient, scope: Scope, acme: TenantKey, clock: Any
) -> None:
    actor = f"api-key:{acme.key_id}"
    trigger = api.post(scope.triggers, json={"name": "t", "cron_expression": "*/15 * * * *"})
    trigger_id = trigger.json()["id"]
    url = scope.trigger(trigger_id)
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("trigger.update", lambda: api.patch(url, json={"description": "nightly"})),
        ("trigger.pause", lambda: api.post(url + "/pause", json={"reason": "hold"})),
        ("trigger.resume", lambda: api.post(url + "/resume")),
        ("trigger.skip", lambda: api.post(url + "/skip", json={"count": 2})),
        ("trigger.run", lambda: api.post(url + "/run")),
        (
            "backfill.create",
            lambda: api.post(url + "/backfill", json={"from": at(-60), "to": at(0)}),
        ),
        (
            "invocations.cancel",
            lambda: api.post(scope.project_url + "/invocations/cancel", json={}),
        ),
        ("project.pause", lambda: api.post(scope.project_url + "/pause", json={"reason": "x"})),
        ("project.resume", lambda: api.post(scope.project_url + "/resume")),
        (
            "retention.update",
            lambda: api.put(scope.project_url + "/retention", json={"history_retention_days": 3}),
        ),
        (
            "definition.push",
            lambda: api.put(
                scope.project_url + "/definition",
                json={"agents": [{"id": "a", "target": {"type": "python", "handler": "h"}}]},
            ),
        ),
        ("agent.update", lambda: api.put(scope.agent_url, json={"target": WEBHOOK})),
        ("agent.delete", lambda: api.delete(scope.agent_url)),
    ]
    for action, step in steps:
        response = step()
        if response is not None:
            assert response.status_code < 300, (action, response.text)
        seen = [e["action"] for e in events(api, scope.project_url + "/audit", limit=50)]
        assert action in seen, (action, seen)
    every = events(api, scope.project_url + "/audit", limit=200)
    assert {e["actor"] for e in every} == {actor}
    assert {"project.create", "agent.create", "trigger.create"} <= {e["action"] for e in every}
    update = next(e for e in every if e["action"] == "trigger.update")
    assert update["target_type"] == "trigger"
    assert update["target_id"] == trigger_id
    assert update["project"] == "p"
    assert update["before"]["description"] == ""
    assert update["after"]["description"] == "nightly"
    push = next(e for e in every if e["action"] == "definition.push")
    deleted = [c for c in push["after"]["changes"] if c["action"] == "delete"]
    assert [(c["agent"], c["trigger"], c["trigger_id"]) for c in deleted] == [
        ("a", "t", trigger_id)
    ]


def test_secrets_never_reach_the_audit_log(api: TestClient, scope: Scope) -> None:
    assert api.put(scope.agent_url, json={"target": WEBHOOK}).status_code == 200
    changed = latest(api, scope)
    assert changed["action"] == "agent.update"
    assert changed["after"]["target"]["secret"] == REDACTED
    assert changed["after"]["target"]["url"] == WEBHOOK["url"]
    env = {
        "type": "webhook",
        "url": WEBHOOK["url"],
        "secret": {"env": "TICKWORK_TARGET_SECRET_HOOK"},
    }
    assert api.put(scope.agent_url, json={"target": env}).status_code == 200
    changed = latest(api, scope)
    assert changed["before"]["target"]["secret"] == REDACTED
    # A reference names the secret without holding it: shown, as GET shows it.
    assert changed["after"]["target"]["secret"] == {"env": "TICKWORK_TARGET_SECRET_HOOK"}
    assert SECRET not in api.get(scope.project_url + "/audit", params={"limit": 200}).text
    # A run's payload is redacted the same way.
    trigger = api.post(scope.triggers, json={"name": "t", "cron_expression": "@daily"}).json()
    payload = {"api_key": "sk-live-123", "headers": {"Authorization": "Bearer x", "X-Ok": "1"}}
    api.post(scope.trigger(trigger["id"]) + "/run", json={"payload": payload})
    run = latest(api, scope)
    assert run["after"]["payload"] == {
        "api_key": REDACTED,
        "headers": {"Authorization": REDACTED, "X-Ok": "1"},
    }


def test_keys_and_quotas_are_recorded_for_the_tenant_with_their_actor(
    app: Any, ctx: Context, api: TestClient, scope: Scope, acme: TenantKey
) -> None:
    created = api.post(scope.tenant_url + "/api-keys", json={"name": "ci", "scope": "read"})
    assert created.status_code == 201
    key = created.json()
    assert api.delete(f"{scope.tenant_url}/api-keys/{key['id']}").status_code == 204
    ctx.settings = ctx.settings.with_(admin_token=ADMIN_TOKEN)
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin:
        put = admin.put("/api/v1/admin/tenants/acme/quotas", json={"triggers": 5})
        assert put.status_code == 200, put.text
    tenant_wide = events(api, scope.tenant_url + "/audit", limit=200)
    by_action = {e["action"]: e for e in reversed(tenant_wide)}  # the newest of each
    made = by_action["api_key.create"]
    assert made["project"] is None
    assert made["actor"] == f"api-key:{acme.key_id}"
    assert made["after"]["scope"] == "read"
    assert key["key"] not in str(tenant_wide)
    assert by_action["api_key.revoke"]["target_id"] == key["id"]
    quota = by_action["quotas.update"]
    assert quota["actor"] == "admin"
    assert quota["before"]["triggers"] is None
    assert quota["after"]["triggers"] == 5
    # The project's own list holds only the project's changes.
    assert all(e["project"] == "p" for e in events(api, scope.project_url + "/audit", limit=200))
    # The tenant's list holds those too.
    assert "project.create" in by_action


def test_the_audit_log_pages_newest_first_and_stays_stable_under_inserts(
    api: TestClient, scope: Scope
) -> None:
    trigger = api.post(scope.triggers, json={"name": "t", "cron_expression": "@daily"}).json()
    for n in range(5):
        api.patch(scope.trigger(trigger["id"]), json={"description": f"v{n}"})
    url = scope.project_url + "/audit"
    first = api.get(url, params={"limit": 3}).json()
    assert [e["after"]["description"] for e in first["items"]] == ["v4", "v3", "v2"]
    api.patch(scope.trigger(trigger["id"]), json={"description": "later"})
    rest: list[dict[str, Any]] = []
    cursor = first["next_cursor"]
    while cursor is not None:
        page = api.get(url, params={"limit": 3, "cursor": cursor}).json()
        rest += page["items"]
        cursor = page["next_cursor"]
    assert [e["action"] for e in rest][:3] == ["trigger.update", "trigger.update", "trigger.create"]
    assert [e["after"]["description"] for e in rest[:2]] == ["v1", "v0"]
    ids = [e["id"] for e in first["items"] + rest]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == len(ids)


def test_a_read_key_reads_the_audit_log_but_changes_no_retention(
    ctx: Context, client_for: Callable[[TenantKey], TestClient], api: TestClient, scope: Scope
) -> None:
    key_id, key = tenants.create_key(ctx, "acme", "reader", "read")
    reader = client_for(TenantKey("acme", key_id, key))
    assert events(reader, scope.project_url + "/audit")
    assert events(reader, scope.tenant_url + "/audit")
    assert reader.get(scope.project_url + "/retention").status_code == 200
    body = problem(reader.put(scope.project_url + "/retention", json={}), 403)
    assert body["required_scope"] == "write"


def test_another_tenants_audit_log_is_not_found(
    client_for: Callable[[TenantKey], TestClient], rival: TenantKey, scope: Scope
) -> None:
    intruder = client_for(rival)
    problem(intruder.get(scope.tenant_url + "/audit"), 404)
    problem(intruder.get(scope.project_url + "/audit"), 404)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "inv_" + "0" * 26}, "query.cursor"),
        ({"limit": 0}, "query.limit"),
        ({"limit": 201}, "query.limit"),
        ({"actor": "me"}, "query.actor"),
    ],
)
def test_bad_audit_queries_are_refused_naming_the_parameter(
    api: TestClient, scope: Scope, params: dict[str, Any], field: str
) -> None:
    for url in (scope.project_url + "/audit", scope.tenant_url + "/audit"):
        assert field_error(api.get(url, params=params))["field"] == field


def test_a_change_that_changes_nothing_records_nothing(api: TestClient, scope: Scope) -> None:
    before = events(api, scope.project_url + "/audit", limit=200)
    assert api.put(scope.project_url).status_code == 200
    assert api.put(scope.agent_url, json={"target": {"type": "python", "handler": "agents.run"}})
    assert api.put(scope.project_url + "/retention", json={}).status_code == 200
    assert events(api, scope.project_url + "/audit", limit=200) == before


# --- docs/operations.md ----------------------------------------------------------------


def test_the_retention_and_audit_examples_of_the_operations_guide_succeed(
    client: TestClient, api: TestClient, acme: TenantKey
) -> None:
    from tests.api.test_docs_examples import BASE, parse_curl, send, shell_blocks

    text = GUIDE.read_text()
    sections = text[text.index("## Retention\n") : text.index("## SQLite\n")]
    assert api.put("/api/v1/tenants/acme/projects/web").status_code == 201
    commands = shell_blocks(sections)
    assert len(commands) == 4
    answers = [
        send(client, parse_curl(c, {"TICKWORK_URL": BASE, "KEY": acme.key})).json()
        for c in commands
    ]
    assert answers[1]["history_retention_days"]["value"] == 7
    assert answers[1]["history_max_per_trigger"]["value"] == 1000
    assert answers[2]["items"][0]["action"] == "retention.update"
    assert {"project.create", "retention.update"} <= {e["action"] for e in answers[3]["items"]}
