"""Lookups are scoped in SQL, so another tenant's id costs exactly what a missing one does
(SPEC §9): the same statements, the tenant and project in their WHERE clause, no row sent
back. And who created a trigger comes from the parsed key, not from the raw header."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from tests.api.helpers import TenantKey, problem
from tests.api.test_isolation import World, build_world
from tickwork.services.context import Context

MISSING_TRIGGER = "trg_" + "0" * 26
MISSING_INVOCATION = "inv_" + "0" * 26
ONCE = {"name": "t", "run_at": "2027-01-01T00:00:00Z"}


@contextmanager
def statements(ctx: Context) -> Iterator[list[str]]:
    """The SQL text of every statement sent meanwhile (parameters left out)."""
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(" ".join(str(args[2]).split()))

    event.listen(ctx.db.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", record)


@pytest.fixture
def worlds(
    client_for: Callable[[TenantKey], TestClient], acme: TenantKey, rival: TenantKey
) -> tuple[World, World]:
    return build_world(client_for(acme), acme), build_world(client_for(rival), rival)


LOOKUPS = [
    ("GET", ""),
    ("PATCH", ""),
    ("DELETE", ""),
    ("GET", "/preview"),
    ("POST", "/run"),
    ("GET", "/invocations"),
    ("GET", "/invocations/{invocation}"),
    ("POST", "/invocations/{invocation}/cancel"),
    ("POST", "/invocations/{invocation}/rerun"),
]


@pytest.mark.parametrize(("method", "suffix"), LOOKUPS, ids=[f"{m} {s}" for m, s in LOOKUPS])
def test_a_foreign_id_takes_the_same_sql_path_as_a_missing_one(
    ctx: Context,
    client_for: Callable[[TenantKey], TestClient],
    worlds: tuple[World, World],
    method: str,
    suffix: str,
) -> None:
    acme, rival = worlds
    intruder = client_for(rival.tenant)
    body = {"enabled": False} if method == "PATCH" else None

    def ask(trigger_id: str, invocation_id: str) -> tuple[Any, list[str]]:
        path = rival.scope.trigger(trigger_id) + suffix.format(invocation=invocation_id)
        with statements(ctx) as sent:
            response = intruder.request(method, path, json=body)
        return response, sent

    # The rival's own URLs with acme's ids, and with ids nobody has.
    foreign, foreign_sql = ask(acme.trigger["id"], acme.invocation["id"])
    missing, missing_sql = ask(MISSING_TRIGGER, MISSING_INVOCATION)
    problem(foreign, 404)
    problem(missing, 404)
    assert foreign.json()["title"] == missing.json()["title"]
    assert foreign_sql == missing_sql
    lookups = [s for s in foreign_sql if re.search(r"FROM (scheduled_triggers|invocations)", s)]
    assert lookups, foreign_sql
    for sql in lookups:
        assert "tenant_id =" in sql, sql
        assert "project_id =" in sql, sql


def test_an_invocation_of_another_trigger_takes_the_same_sql_path_as_a_missing_one(
    ctx: Context, api: TestClient, worlds: tuple[World, World]
) -> None:
    acme, _ = worlds
    other = api.post(acme.scope.triggers, json={"name": "other", "cron_expression": "@daily"})
    other_id = other.json()["id"]
    with statements(ctx) as foreign_sql:
        foreign = api.get(acme.scope.invocation(other_id, acme.invocation["id"]))
    with statements(ctx) as missing_sql:
        missing = api.get(acme.scope.invocation(other_id, MISSING_INVOCATION))
    problem(foreign, 404)
    problem(missing, 404)
    assert foreign_sql == missing_sql
    assert any("trigger_id =" in s and "FROM invocations" in s for s in foreign_sql)


@pytest.mark.parametrize(
    "key", ["tw_wrong", "wrong", "tw_" + "x" * 5000, "x", "tw_" + "\xe9" * 40, "key_" + "0" * 26]
)
def test_every_wrong_key_costs_one_lookup_of_the_key_index(
    ctx: Context, client: TestClient, acme: TenantKey, key: str
) -> None:
    with statements(ctx) as right:
        assert client.get("/api/v1/tenants/acme/projects", headers=acme.headers).status_code == 200
    with statements(ctx) as wrong:
        response = client.get(
            # latin-1, as HTTP header bytes are read: a key of any byte values
            "/api/v1/tenants/acme/projects",
            headers={b"Authorization": f"Bearer {key}".encode("latin-1")},
        )
    problem(response, 401)
    key_lookup = queries(right)[0]
    assert "FROM api_keys" in key_lookup
    assert "key_hash =" in key_lookup
    assert queries(wrong) == [key_lookup]


def queries(sent: list[str]) -> list[str]:
    """Without the transaction control around them (BEGIN on SQLite)."""
    return [s for s in sent if not re.match(r"(BEGIN|COMMIT|ROLLBACK)\b", s)]


# --- created_by ------------------------------------------------------------------------


@pytest.mark.parametrize("spaces", [" ", "    ", "   \t"])
def test_created_by_is_the_key_id_however_the_header_is_spaced(
    client: TestClient, acme: TenantKey, spaces: str
) -> None:
    headers = {"Authorization": f"Bearer{spaces}{acme.key}"}
    assert client.put("/api/v1/tenants/acme/projects/p", headers=headers).status_code == 201
    agent = {"target": {"type": "python", "handler": "agents.run"}}
    url = "/api/v1/tenants/acme/projects/p/agents/a"
    assert client.put(url, json=agent, headers=headers).status_code == 201
    created = client.post(
        url + "/scheduled-triggers",
        json={"name": "t", "cron_expression": "@daily"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["created_by"] == f"api-key:{acme.key_id}"
    pushed = client.put(
        "/api/v1/tenants/acme/projects/p/definition",
        params={"ref": "feature/x"},
        json={"agents": [agent | {"id": "a", "triggers": [ONCE]}]},
        headers=headers,
    )
    assert pushed.status_code == 200, pushed.text
    assert pushed.json()["agents"][0]["triggers"][0]["created_by"] == f"api-key:{acme.key_id}"
