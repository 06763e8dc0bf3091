"""Inputs that would make one tenant's work unbounded are refused where they enter
(SPEC §9): a template that renders a huge message, a schedule that never fires in its
zone, and no schedule arithmetic while the write lock is held."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import Scope, field_error
from tickwork.domain import trigger_spec
from tickwork.services.context import Context
from tickwork.storage.sql import Database, Tx

# 262 KB of payload and a template repeating it 3,900 times: a ~1 GB message.
BIG = "x" * 262_000
AMPLIFIER = {"name": "amp", "payload": {"a": BIG}, "message_template": "{{a}}" * 3_900}
GAP_ONLY = {
    "name": "gap",
    # Minutes of 02:00-02:59 on the second Sunday of March: in New York that hour is
    # skipped by the change to daylight saving time, every year.
    "cron_expression": "*/1 2 * 3 0#2",
    "timezone": "America/New_York",
}


def test_a_template_that_renders_past_the_cap_is_refused_at_create(
    api: TestClient, scope: Scope
) -> None:
    response = api.post(scope.triggers, json=AMPLIFIER | {"cron_expression": "* * * * *"})
    error = field_error(response, 413)
    assert error["field"] == "message_template"
    assert "renders to 1021800000 bytes" in error["message"]
    assert "1048576" in error["message"]
    assert api.get(scope.triggers).json()["items"] == []


def test_a_payload_that_makes_the_template_render_past_the_cap_is_refused_at_patch(
    api: TestClient, scope: Scope
) -> None:
    created = api.post(
        scope.triggers,
        json={"name": "t", "cron_expression": "* * * * *", "message_template": "{{a}}" * 10},
    ).json()
    response = api.patch(scope.trigger(created["id"]), json={"payload": {"a": "y" * 200_000}})
    assert field_error(response, 413)["field"] == "message_template"
    assert api.get(scope.trigger(created["id"])).json()["payload"] == {}


def test_a_push_with_an_amplifying_template_is_refused_and_names_the_trigger(
    api: TestClient, scope: Scope
) -> None:
    definition = {
        "agents": [
            {
                "id": "bot",
                "target": {"type": "python", "handler": "agents.run"},
                "triggers": [AMPLIFIER | {"cron_expression": "* * * * *"}],
            }
        ]
    }
    response = api.put(scope.project_url + "/definition", json=definition)
    assert field_error(response, 413)["field"] == "agents[0].triggers[0].message_template"


def test_a_template_within_the_cap_is_accepted(api: TestClient, scope: Scope) -> None:
    body = {"name": "ok", "cron_expression": "* * * * *", "payload": {"a": "x" * 1000}}
    response = api.post(scope.triggers, json=body | {"message_template": "{{a}}" * 1000})
    assert response.status_code == 201, response.text


def test_an_expression_that_never_fires_in_its_zone_is_refused_as_such(
    api: TestClient, scope: Scope
) -> None:
    error = field_error(api.post(scope.triggers, json=GAP_ONLY))
    assert error["field"] == "cron_expression"
    assert "never fires in time zone America/New_York" in error["message"]
    assert "daylight-saving gap" in error["message"]
    # The same wall times exist in UTC and in zones without that change.
    for zone in ("UTC", "Asia/Kolkata"):
        response = api.post(scope.triggers, json=GAP_ONLY | {"name": zone, "timezone": zone})
        assert response.status_code == 201, response.text


def test_moving_a_trigger_into_a_zone_where_it_never_fires_is_refused(
    api: TestClient, scope: Scope
) -> None:
    created = api.post(scope.triggers, json=GAP_ONLY | {"timezone": "UTC"}).json()
    response = api.patch(scope.trigger(created["id"]), json={"timezone": "America/New_York"})
    assert field_error(response)["field"] == "cron_expression"
    assert api.get(scope.trigger(created["id"])).json()["timezone"] == "UTC"


def test_a_push_of_never_firing_triggers_names_each_of_them(api: TestClient, scope: Scope) -> None:
    triggers = [
        GAP_ONLY | {"name": f"g{i}", "cron_expression": f"*/{i + 1} 2 * 3 0#2"} for i in range(15)
    ]
    definition = {
        "agents": [
            {
                "id": "bot",
                "target": {"type": "python", "handler": "agents.run"},
                "triggers": triggers,
            }
        ]
    }
    response = api.put(scope.project_url + "/definition", json=definition)
    assert response.status_code == 422, response.text
    fields = [e["field"] for e in response.json()["errors"]]
    assert fields == [f"agents[0].triggers[{i}].cron_expression" for i in range(15)]


@contextmanager
def _no_schedules_computed_while_writing(
    monkeypatch: pytest.MonkeyPatch, db: Database
) -> Iterator[list[str]]:
    """Record every schedule computed while a write transaction of ``db`` is open."""
    writing = [False]
    computed_while_writing: list[str] = []
    real_write = db.write
    real_first_run = trigger_spec._first_run

    @contextmanager
    def write() -> Iterator[Tx]:
        with real_write() as tx:
            writing[0] = True
            try:
                yield tx
            finally:
                writing[0] = False

    def first_run(schedule: Any, now: Any) -> Any:
        if writing[0]:
            computed_while_writing.append(repr(schedule))
        return real_first_run(schedule, now)

    monkeypatch.setattr(db, "write", write)
    monkeypatch.setattr(trigger_spec, "_first_run", first_run)
    yield computed_while_writing


def test_no_schedule_is_computed_while_the_write_lock_is_held(
    api: TestClient, scope: Scope, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _no_schedules_computed_while_writing(monkeypatch, ctx.db) as inside:
        created = api.post(scope.triggers, json={"name": "a", "cron_expression": "5 4 * * *"})
        assert created.status_code == 201
        trigger_id = created.json()["id"]
        patched = api.patch(scope.trigger(trigger_id), json={"cron_expression": "6 4 * * *"})
        assert patched.status_code == 200
        disabled = api.patch(scope.trigger(trigger_id), json={"enabled": False})
        enabled = api.patch(scope.trigger(trigger_id), json={"enabled": True})
        assert (disabled.status_code, enabled.status_code) == (200, 200)
        definition: dict[str, Any] = {
            "agents": [
                {
                    "id": "bot",
                    "target": {"type": "python", "handler": "agents.run"},
                    "triggers": [
                        {"name": f"t{i}", "cron_expression": f"{i} 3 * * *", "timezone": zone}
                        for i, zone in enumerate(["Europe/Berlin", "America/New_York", "UTC"])
                    ],
                }
            ]
        }
        assert api.put(scope.project_url + "/definition", json=definition).status_code == 200
        definition["agents"][0]["triggers"][0]["cron_expression"] = "59 3 * * *"
        assert api.put(scope.project_url + "/definition", json=definition).status_code == 200
    assert inside == []
