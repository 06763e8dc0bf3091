"""Scheduled triggers over HTTP: create, validate, read, page, patch, delete, preview and
run now (SPEC §2, §3, §7). The fake clock starts at 2026-03-02T09:00:00Z, a Monday, a
week before New York moves its clocks forward."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import START, Scope, TenantKey, at, dispatch_at, field_error, iso, problem
from tickwork.services.context import Context
from tickwork.testing import FakeClock

MakeTrigger = Callable[..., dict[str, Any]]


# --- create ------------------------------------------------------------------------------


def test_it_creates_a_cron_trigger_with_the_documented_defaults(
    api: TestClient, scope: Scope, acme: TenantKey
) -> None:
    response = api.post(scope.triggers, json={"name": "report", "cron_expression": "*/15 * * * *"})
    assert response.status_code == 201
    trigger = response.json()
    assert trigger["id"].startswith("trg_")
    assert trigger["created_by"] == f"api-key:{acme.key_id}"
    assert {k: v for k, v in trigger.items() if k not in ("id", "created_by")} == {
        "tenant": "acme",
        "project": "p",
        "agent": "a",
        "ref": "main",
        "name": "report",
        "description": "",
        "enabled": True,
        "cron_expression": "*/15 * * * *",
        "run_at": None,
        "timezone": "UTC",
        "payload": {},
        "message_template": None,
        "max_retries": 1,
        "retry_delay_seconds": 60,
        "timeout_seconds": 780,
        "catchup": "latest",
        "catchup_window_seconds": 3600,
        "overlap": "allow",
        "jitter_seconds": 0,
        "conversation": "new",
        "daily_token_budget": None,
        "run_as": None,
        "starts_at": None,
        "ends_at": None,
        "max_runs": None,
        "remaining_runs": None,
        "paused": False,
        "paused_reason": None,
        "paused_by": None,
        "paused_at": None,
        "paused_until": None,
        "skip_remaining": 0,
        "pause_after_failures": None,
        "health": "ok",
        "consecutive_failures": 0,
        "last_success_at": None,
        "last_failure_at": None,
        "next_run_at": "2026-03-02T09:15:00Z",
        "last_error": None,
        "created_at": "2026-03-02T09:00:00Z",
        "updated_at": "2026-03-02T09:00:00Z",
        "last_run": None,
    }


def test_it_keeps_every_field_given_at_create(api: TestClient, scope: Scope) -> None:
    body = {
        "name": "digest",
        "description": "the morning digest",
        "enabled": True,
        "cron_expression": "30 8 * * MON-FRI",
        "timezone": "Europe/Berlin",
        "payload": {"team": "core", "limits": [1, 2], "nested": {"ok": True}},
        "message_template": "Digest for {{ team }}",
        "max_retries": 10,
        "retry_delay_seconds": 3600,
        "timeout_seconds": 86400,
        "catchup": "all",
        "catchup_window_seconds": 31 * 86400,
        "overlap": "cancel_previous",
        "jitter_seconds": 3600,
    }
    created = api.post(scope.triggers, json=body).json()
    assert {k: created[k] for k in body} == body
    # 08:30 in Berlin (CET, +01:00) on the next weekday: Tuesday.
    assert created["next_run_at"] == "2026-03-03T07:30:00Z"


@pytest.mark.parametrize(
    ("expression", "timezone", "next_run_at"),
    [
        ("*/15 * * * *", "UTC", "2026-03-02T09:15:00Z"),
        ("0 9 * * *", "UTC", "2026-03-03T09:00:00Z"),  # strictly after now
        ("0 9 * * *", "America/New_York", "2026-03-02T14:00:00Z"),  # EST, -05:00
        ("0 9 * * *", "Asia/Kolkata", "2026-03-03T03:30:00Z"),
        ("*/15 * * * *", "Australia/Lord_Howe", "2026-03-02T09:15:00Z"),
        ("@hourly", "UTC", "2026-03-02T10:00:00Z"),
        ("0 0 * * 7", "UTC", "2026-03-08T00:00:00Z"),  # 7 = Sunday
        ("30 * * * * *", "UTC", "2026-03-02T09:00:30Z"),  # six fields: seconds first
        ("0 12 L * *", "UTC", "2026-03-31T12:00:00Z"),
    ],
)
def test_next_run_at_comes_from_the_fake_clock(
    api: TestClient, scope: Scope, expression: str, timezone: str, next_run_at: str
) -> None:
    body = {"name": "t", "cron_expression": expression, "timezone": timezone}
    response = api.post(scope.triggers, json=body)
    assert response.status_code == 201, response.text
    assert response.json()["next_run_at"] == next_run_at


def test_new_york_morning_moves_an_hour_in_utc_across_spring_forward(
    api: TestClient, scope: Scope, clock: FakeClock
) -> None:
    body = {"name": "t", "cron_expression": "0 9 * * *", "timezone": "America/New_York"}
    clock.set(START + timedelta(days=6))  # Sunday 2026-03-08 09:00Z: EDT since 07:00Z
    assert api.post(scope.triggers, json=body).json()["next_run_at"] == "2026-03-08T13:00:00Z"


def test_it_creates_a_one_time_trigger(api: TestClient, scope: Scope) -> None:
    body = {"name": "once", "run_at": "2026-03-02T12:30:00+02:00", "timezone": "Europe/Riga"}
    response = api.post(scope.triggers, json=body)
    assert response.status_code == 201
    trigger = response.json()
    assert trigger["cron_expression"] is None
    assert trigger["run_at"] == "2026-03-02T10:30:00Z"
    assert trigger["next_run_at"] == "2026-03-02T10:30:00Z"
    assert trigger["timezone"] == "Europe/Riga"


def test_a_one_time_trigger_may_be_up_to_60_seconds_late(api: TestClient, scope: Scope) -> None:
    response = api.post(scope.triggers, json={"name": "late", "run_at": at(seconds=-60)})
    assert response.status_code == 201
    assert response.json()["next_run_at"] == "2026-03-02T08:59:00Z"


def test_a_one_time_trigger_more_than_60_seconds_in_the_past_is_rejected(
    api: TestClient, scope: Scope
) -> None:
    response = api.post(scope.triggers, json={"name": "late", "run_at": at(seconds=-61)})
    error = field_error(response)
    assert error["field"] == "run_at"
    assert "in the past" in error["message"]


@pytest.mark.parametrize("run_at", ["2026-03-02T10:00:00", "2026-03-02 10:00", "tomorrow", ""])
def test_a_run_at_without_an_offset_is_rejected(api: TestClient, scope: Scope, run_at: str) -> None:
    response = api.post(scope.triggers, json={"name": "naive", "run_at": run_at})
    assert field_error(response)["field"] == "run_at"


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("61 * * * *", "minute: 61 is out of range 0-59"),
        ("0 24 * * *", "hour: 24 is out of range 0-23"),
        ("0 0 32 * *", "day-of-month"),
        ("0 0 * 13 *", "month"),
        ("0 0 * * 8", "day-of-week"),
        ("0 0 31 2 *", "day-of-month"),
        ("* * * *", "5 fields"),
        ("* * * * * * *", "fields"),
        ("@every_minute", ""),
        ("*/0 * * * *", "minute"),
        ("5-1 * * * *", "minute"),
        ("x * * * *", "minute"),
    ],
)
def test_an_invalid_cron_expression_is_rejected_naming_the_field(
    api: TestClient, scope: Scope, expression: str, message: str
) -> None:
    response = api.post(scope.triggers, json={"name": "bad", "cron_expression": expression})
    error = field_error(response)
    assert error["field"] == "cron_expression"
    assert message in error["message"]
    assert api.get(scope.triggers).json()["items"] == []


def test_the_cron_message_names_the_cron_field(api: TestClient, scope: Scope) -> None:
    response = api.post(scope.triggers, json={"name": "bad", "cron_expression": "61 * * * *"})
    error = field_error(response)
    assert error == {"field": "cron_expression", "message": "minute: 61 is out of range 0-59"}


@pytest.mark.parametrize("timezone", ["Mars/Olympus_Mons", "EST5", "utc ", "../etc/passwd", ""])
def test_an_unknown_timezone_is_rejected(api: TestClient, scope: Scope, timezone: str) -> None:
    body = {"name": "t", "cron_expression": "0 9 * * *", "timezone": timezone}
    assert field_error(api.post(scope.triggers, json=body))["field"] == "timezone"


def test_a_one_time_trigger_checks_its_timezone_too(api: TestClient, scope: Scope) -> None:
    body = {"name": "t", "run_at": at(60), "timezone": "Nowhere/Special"}
    assert field_error(api.post(scope.triggers, json=body))["field"] == "timezone"


@pytest.mark.parametrize(
    "schedule",
    [{}, {"cron_expression": "* * * * *", "run_at": "2026-03-02T10:00:00Z"}],
    ids=["neither", "both"],
)
def test_exactly_one_of_cron_expression_and_run_at(
    api: TestClient, scope: Scope, schedule: dict[str, str]
) -> None:
    error = field_error(api.post(scope.triggers, json={"name": "t"} | schedule))
    assert error["field"] == "cron_expression"
    assert "exactly one" in error["message"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_retries", -1),
        ("max_retries", 11),
        ("max_retries", 1.5),
        ("retry_delay_seconds", 0),
        ("retry_delay_seconds", 3601),
        ("timeout_seconds", 0),
        ("timeout_seconds", 86401),
        ("catchup_window_seconds", -1),
        ("catchup_window_seconds", 31 * 86400 + 1),
        ("jitter_seconds", -1),
        ("jitter_seconds", 3601),
        ("catchup", "sometimes"),
        ("overlap", "queue"),
        ("enabled", "maybe"),
        ("name", ""),
        ("name", "   "),
        ("name", "x" * 201),
        ("description", "x" * 2001),
        ("payload", ["not", "an", "object"]),
        ("payload", "text"),
        ("message_template", 42),
        ("cron_expression", "x" * 201),
        ("cron_expression", ""),
        ("timezone", "x" * 65),
    ],
)
def test_out_of_range_fields_are_rejected_naming_the_field(
    api: TestClient, scope: Scope, field: str, value: Any
) -> None:
    body = {"name": "t", "cron_expression": "@daily"} | {field: value}
    assert field_error(api.post(scope.triggers, json=body))["field"] == field
    assert api.get(scope.triggers).json()["items"] == []


def test_name_is_required(api: TestClient, scope: Scope) -> None:
    response = api.post(scope.triggers, json={"cron_expression": "@daily"})
    assert field_error(response)["field"] == "name"


def test_unknown_fields_are_rejected(api: TestClient, scope: Scope) -> None:
    body = {"name": "t", "cron_expression": "@daily", "next_run_at": at(5)}
    error = field_error(api.post(scope.triggers, json=body))
    assert error["field"] == "next_run_at"


def test_a_payload_at_the_limit_is_accepted_and_one_byte_more_is_413(
    api: TestClient, scope: Scope
) -> None:
    limit = 256 * 1024
    room = limit - len('{"blob":""}')
    fits = {"name": "t", "cron_expression": "@daily", "payload": {"blob": "x" * room}}
    assert api.post(scope.triggers, json=fits).status_code == 201
    too_big = {"name": "t", "cron_expression": "@daily", "payload": {"blob": "x" * (room + 1)}}
    body = problem(api.post(scope.triggers, json=too_big), 413)
    assert body["errors"][0]["field"] == "payload"
    assert str(limit) in body["errors"][0]["message"]


def test_a_template_at_the_limit_is_accepted_and_one_character_more_is_413(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    limit = 64 * 1024
    fits = {"name": "t", "cron_expression": "@daily", "message_template": "é" * limit}
    assert api.post(scope.triggers, json=fits).status_code == 201
    too_big = fits | {"message_template": "é" * (limit + 1)}
    body = problem(api.post(scope.triggers, json=too_big), 413)
    assert body["errors"][0]["field"] == "message_template"
    assert str(limit) in body["errors"][0]["message"]
    patched = api.patch(scope.trigger(make_trigger()["id"]), json=too_big)
    assert problem(patched, 413)["errors"][0]["field"] == "message_template"


def test_a_trigger_needs_an_existing_agent_on_its_ref(api: TestClient, scope: Scope) -> None:
    body = {"name": "t", "cron_expression": "@daily"}
    problem(api.post(scope.project_url + "/agents/ghost/scheduled-triggers", json=body), 404)
    problem(api.post(scope.triggers, params={"ref": "feature/x"}, json=body), 404)
    problem(
        api.post("/api/v1/tenants/acme/projects/nope/agents/a/scheduled-triggers", json=body), 404
    )


def test_a_trigger_on_another_ref(api: TestClient, scope: Scope) -> None:
    target = {"type": "python", "handler": "agents.next"}
    api.put(scope.agent_url, params={"ref": "feature/x"}, json={"target": target})
    body = {"name": "t", "cron_expression": "@daily"}
    on_ref = api.post(scope.triggers, params={"ref": "feature/x"}, json=body)
    assert on_ref.status_code == 201
    assert on_ref.json()["ref"] == "feature/x"
    on_main = api.post(scope.triggers, json=body).json()

    everything = api.get(scope.triggers).json()["items"]
    assert {t["id"] for t in everything} == {on_ref.json()["id"], on_main["id"]}
    only_ref = api.get(scope.triggers, params={"ref": "feature/x"}).json()["items"]
    assert [t["id"] for t in only_ref] == [on_ref.json()["id"]]


# --- read and list -----------------------------------------------------------------------


def test_get_returns_what_create_returned(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    trigger = make_trigger(payload={"k": "v"})
    fetched = api.get(scope.trigger(trigger["id"]))
    assert fetched.status_code == 200
    assert fetched.json() == trigger


def test_get_on_a_missing_trigger_is_404(api: TestClient, scope: Scope) -> None:
    body = problem(api.get(scope.trigger("trg_" + "0" * 26)), 404)
    assert "trg_" in body["detail"]


def test_triggers_list_in_pages_of_increasing_id(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, clock: FakeClock
) -> None:
    created = []
    for i in range(5):
        created.append(make_trigger(name=f"t{i}")["id"])
        clock.advance(0.001)  # ids sort by their millisecond
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = api.get(scope.triggers, params=params).json()
        assert len(page["items"]) <= 2
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == created


def test_the_triggers_list_is_per_agent(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    mine = make_trigger()
    other = Scope("acme", "p", "b")
    api.put(other.agent_url, json={"target": {"type": "python", "handler": "h"}})
    api.post(other.triggers, json={"name": "theirs", "cron_expression": "@daily"})
    assert [t["id"] for t in api.get(scope.triggers).json()["items"]] == [mine["id"]]


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "cursor=trg_'--", "ref=a//b"])
def test_the_triggers_list_rejects_bad_queries(api: TestClient, scope: Scope, query: str) -> None:
    problem(api.get(f"{scope.triggers}?{query}"), 422)


# --- patch -------------------------------------------------------------------------------


def test_changing_the_name_keeps_next_run_at(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, clock: FakeClock
) -> None:
    trigger = make_trigger()
    clock.advance(minutes=20)  # the 09:15 slot is due, but nobody dispatched it yet
    patched = api.patch(scope.trigger(trigger["id"]), json={"name": "renamed"})
    assert patched.status_code == 200
    assert patched.json()["name"] == "renamed"
    assert patched.json()["next_run_at"] == "2026-03-02T09:15:00Z"
    assert patched.json()["updated_at"] == "2026-03-02T09:20:00Z"
    assert api.get(scope.trigger(trigger["id"])).json() == patched.json()


def test_changing_the_cron_expression_recomputes_from_now(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, clock: FakeClock
) -> None:
    trigger = make_trigger()
    clock.advance(minutes=20)
    patched = api.patch(scope.trigger(trigger["id"]), json={"cron_expression": "0 * * * *"})
    assert patched.json()["cron_expression"] == "0 * * * *"
    assert patched.json()["next_run_at"] == "2026-03-02T10:00:00Z"


def test_the_same_cron_expression_again_is_no_change(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, clock: FakeClock
) -> None:
    trigger = make_trigger()
    clock.advance(minutes=20)
    patched = api.patch(scope.trigger(trigger["id"]), json={"cron_expression": "*/15 * * * *"})
    assert patched.json() == trigger


def test_changing_the_timezone_recomputes_from_now(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    trigger = make_trigger(cron_expression="0 9 * * *")
    assert trigger["next_run_at"] == "2026-03-03T09:00:00Z"
    patched = api.patch(scope.trigger(trigger["id"]), json={"timezone": "Europe/Berlin"})
    assert patched.json()["next_run_at"] == "2026-03-03T08:00:00Z"


def test_a_run_at_replaces_the_cron_expression_and_back(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    trigger = make_trigger()
    url = scope.trigger(trigger["id"])
    once = api.patch(url, json={"run_at": "2026-03-05T10:00:00+01:00"}).json()
    assert once["cron_expression"] is None
    assert once["run_at"] == "2026-03-05T09:00:00Z"
    assert once["next_run_at"] == "2026-03-05T09:00:00Z"
    cron = api.patch(url, json={"cron_expression": "@hourly"}).json()
    assert cron["run_at"] is None
    assert cron["next_run_at"] == "2026-03-02T10:00:00Z"


def test_an_explicit_null_restores_the_default(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    custom = {
        "description": "custom",
        "timezone": "Europe/Berlin",
        "payload": {"a": 1},
        "message_template": "{{ a }}",
        "max_retries": 5,
        "retry_delay_seconds": 5,
        "timeout_seconds": 30,
        "catchup": "all",
        "catchup_window_seconds": 60,
        "overlap": "skip",
        "jitter_seconds": 10,
    }
    trigger = make_trigger(**custom)
    patched = api.patch(scope.trigger(trigger["id"]), json=dict.fromkeys(custom))
    assert patched.status_code == 200, patched.text
    assert {k: patched.json()[k] for k in custom} == {
        "description": "",
        "timezone": "UTC",
        "payload": {},
        "message_template": None,
        "max_retries": 1,
        "retry_delay_seconds": 60,
        "timeout_seconds": 780,
        "catchup": "latest",
        "catchup_window_seconds": 3600,
        "overlap": "allow",
        "jitter_seconds": 0,
    }


def test_max_retries_null_means_one(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    trigger = make_trigger(max_retries=7)
    patched = api.patch(scope.trigger(trigger["id"]), json={"max_retries": None})
    assert patched.json()["max_retries"] == 1


def test_absent_fields_do_not_change(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    trigger = make_trigger(max_retries=7, payload={"keep": True}, timezone="Asia/Kolkata")
    patched = api.patch(scope.trigger(trigger["id"]), json={"timeout_seconds": 99}).json()
    assert patched == trigger | {"timeout_seconds": 99}


def test_an_empty_patch_changes_nothing(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, clock: FakeClock
) -> None:
    trigger = make_trigger()
    clock.advance(minutes=3)
    assert api.patch(scope.trigger(trigger["id"]), json={}).json() == trigger


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"cron_expression": "61 * * * *"}, "cron_expression"),
        ({"timezone": "Mars/Base"}, "timezone"),
        ({"run_at": "2026-03-02T08:58:00Z"}, "run_at"),
        ({"run_at": "2026-03-02T10:00:00"}, "run_at"),
        ({"cron_expression": None}, "cron_expression"),
        ({"cron_expression": "@daily", "run_at": "2026-03-03T00:00:00Z"}, "cron_expression"),
        ({"max_retries": 11}, "max_retries"),
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"next_run_at": "2026-03-02T10:00:00Z"}, "next_run_at"),
        ({"id": "trg_x"}, "id"),
        ({"payload": "x"}, "payload"),
    ],
)
def test_an_invalid_patch_is_rejected_and_changes_nothing(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, patch: dict[str, Any], field: str
) -> None:
    trigger = make_trigger()
    response = api.patch(scope.trigger(trigger["id"]), json=patch)
    assert field_error(response)["field"] == field
    assert api.get(scope.trigger(trigger["id"])).json() == trigger


def test_a_patch_on_a_missing_trigger_is_404(api: TestClient, scope: Scope) -> None:
    problem(api.patch(scope.trigger("trg_" + "0" * 26), json={"name": "x"}), 404)


def test_disabling_clears_next_run_at_and_cancels_pending_invocations(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, ctx: Context, clock: FakeClock
) -> None:
    trigger = make_trigger()
    url = scope.trigger(trigger["id"])
    assert dispatch_at(ctx, clock, 15) == 1
    manual = api.post(url + "/run").json()

    disabled = api.patch(url, json={"enabled": False})
    assert disabled.status_code == 200
    assert disabled.json()["enabled"] is False
    assert disabled.json()["next_run_at"] is None

    invocations = api.get(url + "/invocations").json()["items"]
    assert len(invocations) == 2
    assert manual["id"] in {i["id"] for i in invocations}
    assert {i["status"] for i in invocations} == {"cancelled"}
    assert {i["status_reason"] for i in invocations} == {"trigger disabled"}
    # Nothing more is dispatched while it is disabled.
    assert dispatch_at(ctx, clock, 120) == 0


def test_re_enabling_recomputes_from_now_without_the_slots_missed_while_disabled(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, ctx: Context, clock: FakeClock
) -> None:
    trigger = make_trigger(catchup="all")
    url = scope.trigger(trigger["id"])
    clock.advance(minutes=5)
    api.patch(url, json={"enabled": False})
    clock.set(START + timedelta(hours=2, minutes=7))  # 11:07: eight slots went by

    enabled = api.patch(url, json={"enabled": True}).json()
    assert enabled["enabled"] is True
    assert enabled["next_run_at"] == "2026-03-02T11:15:00Z"
    assert dispatch_at(ctx, clock, 127) == 0
    assert dispatch_at(ctx, clock, 135) == 1
    invocations = api.get(url + "/invocations").json()["items"]
    assert [(i["scheduled_for"], i["status"]) for i in invocations] == [
        ("2026-03-02T11:15:00Z", "pending")
    ]


def test_a_patch_that_keeps_the_trigger_disabled_keeps_it_unscheduled(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    trigger = make_trigger(enabled=False)
    assert trigger["next_run_at"] is None
    url = scope.trigger(trigger["id"])
    patched = api.patch(url, json={"cron_expression": "@hourly", "name": "still off"}).json()
    assert patched["next_run_at"] is None
    assert patched["enabled"] is False


# --- delete ------------------------------------------------------------------------------


def test_delete_then_the_trigger_is_gone_and_its_pending_work_cancelled(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    trigger = make_trigger()
    url = scope.trigger(trigger["id"])
    run = api.post(url + "/run").json()
    assert api.delete(url).status_code == 204
    problem(api.get(url), 404)
    problem(api.delete(url), 404)
    problem(api.patch(url, json={"name": "x"}), 404)
    problem(api.post(url + "/run"), 404)
    assert api.get(scope.triggers).json()["items"] == []
    history = api.get(scope.project_invocations).json()["items"]
    assert [(i["id"], i["status"], i["status_reason"]) for i in history] == [
        (run["id"], "cancelled", "trigger deleted")
    ]


# --- preview -----------------------------------------------------------------------------


def test_preview_lists_the_next_instants_strictly_after_now(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, clock: FakeClock
) -> None:
    trigger = make_trigger()
    clock.advance(minutes=15)  # exactly on a slot: it is not "after now"
    response = api.get(scope.trigger(trigger["id"]) + "/preview", params={"count": 4})
    assert response.status_code == 200
    assert response.json()["next_runs"] == [at(30), at(45), at(60), at(75)]
    assert response.json()["timezone"] == "UTC"
    assert "15" in response.json()["description"]


def test_preview_shows_ten_by_default_and_the_zone(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    trigger = make_trigger(cron_expression="0 9 * * *", timezone="America/New_York")
    preview = api.get(scope.trigger(trigger["id"]) + "/preview").json()
    assert len(preview["next_runs"]) == 10
    # 09:00 New York is 14:00Z until Sunday 8 March, then 13:00Z.
    assert preview["next_runs"][:7] == [
        "2026-03-02T14:00:00Z",
        "2026-03-03T14:00:00Z",
        "2026-03-04T14:00:00Z",
        "2026-03-05T14:00:00Z",
        "2026-03-06T14:00:00Z",
        "2026-03-07T14:00:00Z",
        "2026-03-08T13:00:00Z",
    ]
    assert preview["timezone"] == "America/New_York"
    assert "America/New_York" in preview["description"]


def test_preview_of_a_one_time_trigger(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    trigger = make_trigger(run_at="2026-03-04T06:00:00Z")
    preview = api.get(scope.trigger(trigger["id"]) + "/preview", params={"count": 5}).json()
    assert preview["next_runs"] == ["2026-03-04T06:00:00Z"]
    assert "2026-03-04T06:00:00Z" in preview["description"]


def test_preview_count_can_be_1000(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    trigger = make_trigger(cron_expression="0 0 29 2 *")  # leap days only
    preview = api.get(scope.trigger(trigger["id"]) + "/preview", params={"count": 1000}).json()
    assert len(preview["next_runs"]) == 1000
    assert preview["next_runs"][0] == "2028-02-29T00:00:00Z"


@pytest.mark.parametrize("count", ["0", "-1", "1001", "10" * 20, "ten", "1.5"])
def test_preview_rejects_a_bad_count(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, count: str
) -> None:
    trigger = make_trigger()
    response = api.get(scope.trigger(trigger["id"]) + f"/preview?count={count}")
    assert field_error(response)["field"] == "query.count"


# --- run now -----------------------------------------------------------------------------


def test_run_now_creates_a_pending_manual_invocation(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, clock: FakeClock
) -> None:
    trigger = make_trigger(payload={"who": "ops"})
    clock.advance(minutes=3)
    response = api.post(scope.trigger(trigger["id"]) + "/run")
    assert response.status_code == 202
    invocation = response.json()
    assert invocation["id"].startswith("inv_")
    assert invocation["origin"] == "manual"
    assert invocation["status"] == "pending"
    assert invocation["trigger_id"] == trigger["id"]
    assert invocation["trigger_name"] == "report"
    assert (invocation["tenant"], invocation["project"], invocation["agent"]) == ("acme", "p", "a")
    assert invocation["scheduled_for"] == iso(clock.now())
    assert invocation["not_before"] == iso(clock.now())
    assert invocation["idempotency_key"] == f"manual:{trigger['id']}:{invocation['id']}"
    assert invocation["payload"] == {"who": "ops"}
    assert invocation["attempt"] == 0
    # The schedule is not touched.
    assert api.get(scope.trigger(trigger["id"])).json()["next_run_at"] == trigger["next_run_at"]


def test_each_run_now_is_its_own_invocation(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    trigger = make_trigger()
    first = api.post(scope.trigger(trigger["id"]) + "/run").json()
    second = api.post(scope.trigger(trigger["id"]) + "/run").json()
    assert first["id"] != second["id"]
    assert first["idempotency_key"] != second["idempotency_key"]


def test_run_now_on_a_disabled_trigger_is_a_conflict(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    trigger = make_trigger(enabled=False)
    body = problem(api.post(scope.trigger(trigger["id"]) + "/run"), 409)
    assert "disabled" in body["detail"]
    assert api.get(scope.trigger(trigger["id"]) + "/invocations").json()["items"] == []
