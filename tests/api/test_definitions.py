"""Pushing a ref's whole definition (``PUT .../definition?ref=``, SPEC §7): agents and
their scheduled triggers replaced in one transaction, triggers matched by (agent id,
name), schedules computed as the single-trigger routes compute them, and a repeated push
that changes nothing. The fake clock starts at 2026-03-02T09:00:00Z, a Monday."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import Scope, at, dispatch_at, field_error, problem
from tickwork.services.context import Context
from tickwork.testing import FakeClock

PYTHON = {"type": "python", "handler": "agents.run"}
QUARTER = {"name": "quarter", "cron_expression": "*/15 * * * *"}
# 08:30 in Berlin (CET, +01:00): 07:30 UTC.
DAILY = {"name": "daily", "cron_expression": "30 8 * * *", "timezone": "Europe/Berlin"}


def agent(agent_id: str, *triggers: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": agent_id, "target": PYTHON, "triggers": list(triggers)} | extra


def push(
    api: TestClient, scope: Scope, *agents: dict[str, Any], ref: str | None = None
) -> dict[str, Any]:
    response = put(api, scope, *agents, ref=ref)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def put(api: TestClient, scope: Scope, *agents: dict[str, Any], ref: str | None = None) -> Any:
    params = {"ref": ref} if ref else {}
    return api.put(scope.project_url + "/definition", params=params, json={"agents": agents})


def triggers_of(body: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(a["id"], t["name"]): t for a in body["agents"] for t in a["triggers"]}


def revision(api: TestClient, scope: Scope, ref: str = "main") -> int:
    refs = api.get(scope.project_url + "/refs").json()
    return int(next(r["revision"] for r in refs if r["name"] == ref))


def counts(created: int = 0, updated: int = 0, deleted: int = 0, unchanged: int = 0) -> Any:
    return {"created": created, "updated": updated, "deleted": deleted, "unchanged": unchanged}


# --- creating ----------------------------------------------------------------------------


def test_a_push_creates_agents_and_triggers_with_their_next_runs(
    api: TestClient, scope: Scope
) -> None:
    once = {"name": "once", "run_at": at(90)}
    body = push(api, scope, agent("writer", QUARTER, DAILY), agent("reviewer", once, name="Rev"))
    assert body["ref"] == "main"
    assert body["changed"] is True
    assert body["summary"] == {
        "agents": counts(created=2, deleted=1),  # the scope's agent "a" is not named
        "triggers": counts(created=3),
    }
    assert [(a["id"], a["name"], a["target"]) for a in body["agents"]] == [
        ("writer", "writer", PYTHON),
        ("reviewer", "Rev", PYTHON),
    ]
    pushed = triggers_of(body)
    assert pushed["writer", "quarter"]["next_run_at"] == at(15)
    assert pushed["writer", "daily"]["next_run_at"] == "2026-03-03T07:30:00Z"
    assert pushed["reviewer", "once"]["next_run_at"] == at(90)
    for (agent_id, _), trigger in pushed.items():
        assert trigger["id"].startswith("trg_")
        assert (trigger["agent"], trigger["ref"]) == (agent_id, "main")
        url = f"{scope.project_url}/agents/{agent_id}/scheduled-triggers/{trigger['id']}"
        assert api.get(url).json() == trigger


def test_a_pushed_trigger_matches_one_created_by_the_single_route(
    api: TestClient, scope: Scope
) -> None:
    fields = DAILY | {
        "description": "the morning digest",
        "payload": {"team": "core"},
        "message_template": "Digest for {{ team }}",
        "max_retries": 3,
        "retry_delay_seconds": 30,
        "timeout_seconds": 600,
        "catchup": "all",
        "catchup_window_seconds": 7200,
        "overlap": "skip",
        "jitter_seconds": 5,
        "enabled": True,
    }
    single = api.post(scope.triggers, json=fields).json()
    pushed = triggers_of(push(api, scope, agent("a", fields)))["a", "daily"]
    different = {"id", "created_at", "updated_at"}
    assert {k: v for k, v in pushed.items() if k not in different} == {
        k: v for k, v in single.items() if k not in different
    }


def test_a_push_creates_a_new_ref_and_leaves_the_others_alone(
    api: TestClient, scope: Scope
) -> None:
    body = push(api, scope, agent("a", QUARTER), ref="feature/x")
    assert (body["ref"], body["revision"]) == ("feature/x", 1)
    assert triggers_of(body)["a", "quarter"]["ref"] == "feature/x"
    assert [r["name"] for r in api.get(scope.project_url + "/refs").json()] == [
        "feature/x",
        "main",
    ]
    assert api.get(scope.triggers, params={"ref": "main"}).json()["items"] == []
    assert revision(api, scope, "main") == 1


def test_secrets_are_kept_but_never_returned(api: TestClient, scope: Scope) -> None:
    webhook = {"type": "webhook", "url": "https://hooks.example.com/run", "secret": "s3cret"}
    body = push(api, scope, agent("hook", target=webhook))
    assert body["agents"][0]["target"] == {
        "type": "webhook",
        "url": "https://hooks.example.com/run",
        "has_secret": True,
    }
    assert "s3cret" not in str(body)
    before = revision(api, scope)
    changed = push(api, scope, agent("hook", target=webhook | {"secret": "rotated"}))
    assert changed["summary"]["agents"] == counts(updated=1)
    assert revision(api, scope) == before + 1


# --- pushing again -----------------------------------------------------------------------


def test_pushing_the_same_definition_again_changes_nothing(
    api: TestClient, scope: Scope, clock: FakeClock
) -> None:
    definition = [agent("a", QUARTER, DAILY | {"payload": {"x": [1, None]}})]
    first = push(api, scope, *definition)
    # The 09:15 slot has passed (not yet dispatched): a reset would move it to 09:30.
    clock.advance(minutes=20)
    again = push(api, scope, *definition)
    assert again["changed"] is False
    assert again["summary"] == {"agents": counts(unchanged=1), "triggers": counts(unchanged=2)}
    assert again["revision"] == first["revision"]
    assert {c["action"] for c in again["changes"]} == {"unchanged"}
    assert {k: v for k, v in again.items() if k not in ("changed", "summary", "changes")} == {
        k: v for k, v in first.items() if k not in ("changed", "summary", "changes")
    }
    assert triggers_of(again)["a", "quarter"]["next_run_at"] == at(15)


def test_a_changed_schedule_is_recomputed_from_now_and_other_changes_keep_it(
    api: TestClient, scope: Scope, clock: FakeClock
) -> None:
    first = triggers_of(push(api, scope, agent("a", QUARTER, DAILY)))
    before = revision(api, scope)
    clock.advance(minutes=20)
    body = push(
        api,
        scope,
        agent("a", QUARTER | {"cron_expression": "*/10 * * * *"}, DAILY | {"payload": {"n": 2}}),
    )
    assert body["summary"]["triggers"] == counts(updated=2)
    second = triggers_of(body)
    assert second["a", "quarter"]["id"] == first["a", "quarter"]["id"]
    assert second["a", "quarter"]["next_run_at"] == at(30)  # from 09:20, not from 09:00
    assert second["a", "daily"]["next_run_at"] == first["a", "daily"]["next_run_at"]
    assert second["a", "daily"]["payload"] == {"n": 2}
    assert second["a", "daily"]["updated_at"] == at(20)
    # One push, one new revision, however many things changed.
    assert revision(api, scope) == before + 1 == body["revision"]


def test_a_field_left_out_returns_to_its_default(api: TestClient, scope: Scope) -> None:
    tuned = QUARTER | {"max_retries": 5, "overlap": "skip", "description": "tuned"}
    push(api, scope, agent("a", tuned))
    body = push(api, scope, agent("a", QUARTER))
    trigger = triggers_of(body)["a", "quarter"]
    assert (trigger["max_retries"], trigger["overlap"], trigger["description"]) == (
        1,
        "allow",
        "",
    )
    assert trigger["next_run_at"] == at(15)


def test_a_one_time_trigger_that_already_fired_can_be_pushed_again(
    api: TestClient, scope: Scope, ctx: Context, clock: FakeClock
) -> None:
    once = {"name": "once", "run_at": at(5)}
    push(api, scope, agent("a", once))
    assert dispatch_at(ctx, clock, 5) == 1
    clock.advance(hours=2)
    # Its run_at is now two hours past: unchanged, it is not a new one-time trigger.
    body = push(api, scope, agent("a", once))
    assert body["changed"] is False
    assert triggers_of(body)["a", "once"]["next_run_at"] is None
    assert dispatch_at(ctx, clock, 200) == 0


# --- removing ----------------------------------------------------------------------------


def test_agents_and_triggers_left_out_are_deleted_and_their_work_cancelled(
    api: TestClient, scope: Scope, ctx: Context, clock: FakeClock
) -> None:
    first = triggers_of(push(api, scope, agent("writer", QUARTER, DAILY), agent("rev", QUARTER)))
    assert dispatch_at(ctx, clock, 15) == 2

    body = push(api, scope, agent("writer", DAILY))

    assert body["summary"] == {
        "agents": counts(deleted=1, unchanged=1),
        "triggers": counts(deleted=2, unchanged=1),
    }
    problem(api.get(scope.project_url + "/agents/rev"), 404)
    remaining = api.get(scope.project_url + "/agents/writer/scheduled-triggers").json()
    assert [t["id"] for t in remaining["items"]] == [first["writer", "daily"]["id"]]
    history = api.get(scope.project_invocations).json()["items"]
    reasons = {i["trigger_id"]: (i["status"], i["status_reason"]) for i in history}
    assert reasons == {
        first["writer", "quarter"]["id"]: (
            "cancelled",
            "trigger removed from ref main by a definition push",
        ),
        first["rev", "quarter"]["id"]: (
            "cancelled",
            "agent rev removed from ref main by a definition push",
        ),
    }


def test_an_empty_definition_empties_the_ref_only_when_allowed(
    api: TestClient, scope: Scope
) -> None:
    push(api, scope, agent("a", QUARTER))
    before = revision(api, scope)
    refused = problem(put(api, scope), 409)
    assert "would delete all 1 agents of ref main" in refused["detail"]
    assert "?allow_empty=true" in refused["detail"]
    assert [a["id"] for a in api.get(scope.project_url + "/agents").json()] == ["a"]
    assert revision(api, scope) == before
    emptied = api.put(
        scope.project_url + "/definition", params={"allow_empty": "true"}, json={"agents": []}
    )
    assert emptied.status_code == 200, emptied.text
    body = emptied.json()
    assert body["agents"] == []
    assert body["summary"]["agents"] == counts(deleted=1)
    assert api.get(scope.project_url + "/agents").json() == []
    assert revision(api, scope) == before + 1


def test_an_empty_definition_of_an_empty_or_new_ref_needs_no_flag(
    api: TestClient, scope: Scope
) -> None:
    assert push(api, scope, ref="feature/empty")["summary"]["agents"] == counts()
    push(api, scope, agent("a"))
    api.put(scope.project_url + "/definition", params={"allow_empty": "true"}, json={"agents": []})
    assert push(api, scope)["changed"] is False


@pytest.mark.parametrize(
    ("agents", "fields"),
    [
        ([agent("a", QUARTER, DAILY, QUARTER)], ["agents[0].triggers[2].name"]),
        ([agent("a"), agent("b"), agent("a")], ["agents[2].id"]),
        (
            [agent("a", QUARTER, QUARTER), agent("b"), agent("b", DAILY, DAILY)],
            ["agents[0].triggers[1].name", "agents[2].id", "agents[2].triggers[1].name"],
        ),
    ],
)
def test_a_push_that_names_a_trigger_or_an_agent_twice_is_409_naming_each(
    api: TestClient, scope: Scope, agents: list[dict[str, Any]], fields: list[str]
) -> None:
    before = api.get(scope.project_url + "/agents").json()
    body = problem(put(api, scope, *agents), 409)
    assert [e["field"] for e in body["errors"]] == fields
    assert "unique" in body["errors"][0]["message"]
    assert api.get(scope.project_url + "/agents").json() == before
    assert revision(api, scope) == 1


def test_a_name_given_twice_is_listed_with_the_other_errors_when_there_are_some(
    api: TestClient, scope: Scope
) -> None:
    bad = QUARTER | {"name": "bad", "cron_expression": "* * *"}
    response = put(api, scope, agent("a", QUARTER, QUARTER, bad))
    fields = [e["field"] for e in problem(response, 422)["errors"]]
    assert fields == ["agents[0].triggers[1].name", "agents[0].triggers[2].cron_expression"]


# --- enabling and disabling --------------------------------------------------------------


def test_disabling_in_a_push_cancels_pending_work_and_enabling_starts_from_now(
    api: TestClient, scope: Scope, ctx: Context, clock: FakeClock
) -> None:
    trigger_id = triggers_of(push(api, scope, agent("a", QUARTER)))["a", "quarter"]["id"]
    assert dispatch_at(ctx, clock, 15) == 1

    body = push(api, scope, agent("a", QUARTER | {"enabled": False}))
    assert triggers_of(body)["a", "quarter"]["next_run_at"] is None
    [pending] = api.get(scope.invocations(trigger_id)).json()["items"]
    assert (pending["status"], pending["status_reason"]) == ("cancelled", "trigger disabled")

    clock.set(clock.now().replace(hour=10, minute=7))
    body = push(api, scope, agent("a", QUARTER))
    assert triggers_of(body)["a", "quarter"]["next_run_at"] == at(75)
    assert dispatch_at(ctx, clock, 67) == 0  # nothing from while it was disabled


# --- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agents", "field"),
    [
        (
            [agent("a", QUARTER), agent("b", QUARTER | {"cron_expression": "61 * * * *"})],
            "agents[1].triggers[0].cron_expression",
        ),
        ([agent("a", QUARTER, DAILY | {"max_retries": 99})], "agents[0].triggers[1].max_retries"),
        ([agent("a", QUARTER | {"timezone": "Mars/Olympus"})], "agents[0].triggers[0].timezone"),
        ([agent("a", QUARTER | {"cron": "@daily"})], "agents[0].triggers[0].cron"),
        ([agent("a", {"name": "none"})], "agents[0].triggers[0].cron_expression"),
        ([agent("a b")], "agents[0].id"),
        ([agent("a", target={"type": "webhook", "url": "ftp://x"})], "agents[0].target.url"),
        ([agent("a", {"name": "t", "run_at": at(-2)})], "agents[0].triggers[0].run_at"),
    ],
)
def test_an_invalid_definition_names_the_element_and_changes_nothing(
    api: TestClient, scope: Scope, agents: list[dict[str, Any]], field: str
) -> None:
    before = api.get(scope.project_url + "/agents").json()
    response = put(api, scope, *agents)
    assert field in [e["field"] for e in problem(response, 422)["errors"]]
    assert api.get(scope.project_url + "/agents").json() == before
    assert revision(api, scope) == 1


def test_every_invalid_element_is_listed_at_once(api: TestClient, scope: Scope) -> None:
    bad = QUARTER | {"cron_expression": "* * *"}
    response = put(api, scope, agent("a", bad), agent("b", QUARTER, bad | {"name": "other"}))
    fields = [e["field"] for e in problem(response, 422)["errors"]]
    assert fields == [
        "agents[0].triggers[0].cron_expression",
        "agents[1].triggers[1].cron_expression",
    ]


def test_a_failure_found_while_writing_leaves_everything_as_it_was(
    api: TestClient, scope: Scope, clock: FakeClock
) -> None:
    before = triggers_of(push(api, scope, agent("a", QUARTER)))
    clock.advance(minutes=30)
    # The quarter change and the new agent come first; the one-time instant, 28 minutes
    # in the past by now, is only found to be late inside the transaction.
    response = put(
        api,
        scope,
        agent("a", QUARTER | {"cron_expression": "*/5 * * * *"}, {"name": "late", "run_at": at(2)}),
        agent("new", QUARTER),
    )
    assert field_error(response)["field"] == "agents[0].triggers[1].run_at"
    after = api.get(scope.trigger(before["a", "quarter"]["id"])).json()
    assert after["health"] == "late"  # nothing dispatched its 09:15 slot for 15 minutes
    assert after | {"health": "ok"} == before["a", "quarter"]
    problem(api.get(scope.project_url + "/agents/new"), 404)
    assert revision(api, scope) == 2


def test_a_payload_or_template_above_the_limit_is_413_naming_the_element(
    api: TestClient, scope: Scope
) -> None:
    big_payload = QUARTER | {"payload": {"blob": "x" * (256 * 1024)}}
    response = put(api, scope, agent("a", QUARTER), agent("b", big_payload))
    assert field_error(response, 413)["field"] == "agents[1].triggers[0].payload"
    big_template = QUARTER | {"message_template": "x" * (64 * 1024 + 1)}
    response = put(api, scope, agent("a", big_template))
    assert field_error(response, 413)["field"] == "agents[0].triggers[0].message_template"


def test_the_body_must_name_its_agents(api: TestClient, scope: Scope) -> None:
    response = api.put(scope.project_url + "/definition", json={})
    assert field_error(response)["field"] == "agents"
    response = api.put(scope.project_url + "/definition", json={"agents": [], "extra": 1})
    assert field_error(response)["field"] == "extra"


def test_a_definition_has_at_most_1000_agents(api: TestClient, scope: Scope) -> None:
    response = put(api, scope, *[agent(f"a{i}") for i in range(1001)])
    assert field_error(response)["field"] == "agents"


def test_a_push_to_a_missing_project_or_a_malformed_ref_is_rejected(
    api: TestClient, scope: Scope
) -> None:
    missing = api.put("/api/v1/tenants/acme/projects/nope/definition", json={"agents": []})
    problem(missing, 404)
    assert field_error(put(api, scope, ref="../x"))["field"] == "query.ref"
