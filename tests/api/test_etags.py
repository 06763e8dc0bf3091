"""Optimistic concurrency (SPEC §10): GET of a trigger, an agent or a definition answers
an ``ETag``; PATCH, PUT and DELETE with ``If-Match`` go ahead only on that version and
answer 412 (problem+json, in words, with the current ETag) otherwise, changing nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import Scope, dispatch_at, problem, work_one
from tickwork.services.context import Context
from tickwork.testing import FakeClock

MakeTrigger = Callable[..., dict[str, Any]]
PYTHON = {"type": "python", "handler": "agents.run"}


def etag_of(api: TestClient, url: str, **params: str) -> str:
    response = api.get(url, params=params)
    assert response.status_code == 200, response.text
    tag: str = response.headers["ETag"]
    assert tag.startswith('"')
    assert tag.endswith('"')
    return tag


def precondition_failed(response: Any, current: str | None) -> dict[str, Any]:
    body = problem(response, 412)
    assert body["type"] == "urn:tickwork:problem:precondition-failed"
    assert body["title"] == "Precondition failed"
    if current is not None:
        assert response.headers["ETag"] == current
        assert current in body["detail"]
        assert "read it again" in body["detail"]
    return body


# --- triggers ----------------------------------------------------------------------------


def test_a_patch_with_the_current_etag_goes_ahead_and_answers_the_new_one(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    trigger = make_trigger()
    url = scope.trigger(trigger["id"])
    tag = etag_of(api, url)
    patched = api.patch(url, json={"max_retries": 3}, headers={"If-Match": tag})
    assert patched.status_code == 200, patched.text
    assert patched.headers["ETag"] != tag
    assert patched.headers["ETag"] == etag_of(api, url)


def test_a_patch_or_delete_with_a_stale_etag_is_412_and_changes_nothing(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    url = scope.trigger(make_trigger()["id"])
    stale = etag_of(api, url)
    api.patch(url, json={"description": "someone else"})
    current = etag_of(api, url)
    before = api.get(url).json()
    precondition_failed(
        api.patch(url, json={"max_retries": 5}, headers={"If-Match": stale}), current
    )
    precondition_failed(api.delete(url, headers={"If-Match": stale}), current)
    assert api.get(url).json() == before
    assert api.delete(url, headers={"If-Match": current}).status_code == 204


@pytest.mark.parametrize(
    ("if_match", "goes_ahead"),
    [
        ("*", True),
        ('"t-nope", {current}', True),
        ("W/{current}", False),
        ('"t-nope"', False),
        ("garbage", False),
    ],
)
def test_if_match_takes_a_list_or_star_and_compares_strongly(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, if_match: str, goes_ahead: bool
) -> None:
    url = scope.trigger(make_trigger()["id"])
    header = if_match.replace("{current}", etag_of(api, url))
    response = api.patch(url, json={"max_retries": 2}, headers={"If-Match": header})
    assert response.status_code == (200 if goes_ahead else 412), response.text


def test_the_scheduler_and_runs_leave_a_triggers_etag_as_it_was(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger, ctx: Context, clock: FakeClock
) -> None:
    url = scope.trigger(make_trigger()["id"])
    tag = etag_of(api, url)
    dispatch_at(ctx, clock, 15)
    work_one(ctx, "completed")
    shown = api.get(url)
    assert shown.json()["next_run_at"] == "2026-03-02T09:30:00Z"
    assert shown.json()["last_run"]["status"] == "completed"
    assert shown.headers["ETag"] == tag
    assert api.patch(url, json={"max_retries": 2}, headers={"If-Match": tag}).status_code == 200


def test_a_412_for_a_missing_trigger_is_still_404(api: TestClient, scope: Scope) -> None:
    problem(api.patch(scope.trigger("trg_" + "0" * 26), json={}, headers={"If-Match": "*"}), 404)


# --- agents ------------------------------------------------------------------------------


def test_an_agent_put_with_the_current_etag_goes_ahead_and_a_stale_one_is_412(
    api: TestClient, scope: Scope
) -> None:
    tag = etag_of(api, scope.agent_url)
    webhook = {"type": "webhook", "url": "https://hooks.example.com/a", "secret": "s1"}
    changed = api.put(scope.agent_url, json={"target": webhook}, headers={"If-Match": tag})
    assert changed.status_code == 200, changed.text
    current = changed.headers["ETag"]
    assert current == etag_of(api, scope.agent_url)
    again = api.put(scope.agent_url, json={"target": PYTHON}, headers={"If-Match": tag})
    precondition_failed(again, current)
    precondition_failed(api.delete(scope.agent_url, headers={"If-Match": tag}), current)
    assert api.get(scope.agent_url).json()["target"]["type"] == "webhook"
    assert api.delete(scope.agent_url, headers={"If-Match": current}).status_code == 204


def test_a_changed_secret_changes_the_agents_etag_without_showing_it(
    api: TestClient, scope: Scope, clock: FakeClock
) -> None:
    webhook = {"type": "webhook", "url": "https://hooks.example.com/a", "secret": "s1"}
    first = api.put(scope.agent_url, json={"target": webhook}).headers["ETag"]
    clock.advance(seconds=1)
    second = api.put(scope.agent_url, json={"target": webhook | {"secret": "s2"}})
    assert second.headers["ETag"] != first
    assert "s1" not in first + second.headers["ETag"]
    unchanged = api.put(scope.agent_url, json={"target": webhook | {"secret": "s2"}})
    assert unchanged.headers["ETag"] == second.headers["ETag"]


def test_if_match_on_an_agent_that_does_not_exist_is_412(api: TestClient, scope: Scope) -> None:
    url = scope.project_url + "/agents/new"
    body = precondition_failed(
        api.put(url, json={"target": PYTHON}, headers={"If-Match": "*"}), None
    )
    assert "does not exist" in body["detail"]
    problem(api.get(url), 404)
    assert api.put(url, json={"target": PYTHON}).status_code == 201


# --- definitions -------------------------------------------------------------------------


def test_a_push_with_the_definitions_etag_goes_ahead_and_a_stale_one_is_412(
    api: TestClient, scope: Scope
) -> None:
    url = scope.project_url + "/definition"
    tag = etag_of(api, url)
    definition = {
        "agents": [
            {"id": "a", "target": PYTHON, "triggers": [{"name": "q", "cron_expression": "@hourly"}]}
        ]
    }
    pushed = api.put(url, json=definition, headers={"If-Match": tag})
    assert pushed.status_code == 200, pushed.text
    current = pushed.headers["ETag"]
    assert current != tag
    assert current == etag_of(api, url)
    precondition_failed(api.put(url, json={"agents": []}, headers={"If-Match": tag}), current)
    # A push that changes nothing keeps the revision, and so the ETag.
    same = api.put(url, json=definition, headers={"If-Match": current})
    assert same.json()["changed"] is False
    assert same.headers["ETag"] == current


def test_any_write_to_the_ref_changes_the_definitions_etag(
    api: TestClient, scope: Scope, make_trigger: MakeTrigger
) -> None:
    url = scope.project_url + "/definition"
    tag = etag_of(api, url)
    make_trigger()
    precondition_failed(
        api.put(url, json={"agents": [{"id": "a", "target": PYTHON}]}, headers={"If-Match": tag}),
        etag_of(api, url),
    )


def test_if_match_on_a_ref_that_does_not_exist_is_412(api: TestClient, scope: Scope) -> None:
    url = scope.project_url + "/definition"
    response = api.put(
        url,
        params={"ref": "feature/new"},
        json={"agents": [{"id": "a", "target": PYTHON}]},
        headers={"If-Match": "*"},
    )
    precondition_failed(response, None)
    problem(api.get(url, params={"ref": "feature/new"}), 404)


def test_a_deleted_and_pushed_again_ref_has_another_etag_at_the_same_revision(
    api: TestClient, scope: Scope, clock: FakeClock
) -> None:
    url = scope.project_url + "/definition"
    definition = {"agents": [{"id": "a", "target": PYTHON}]}
    first = api.put(url, params={"ref": "feature/x"}, json=definition)
    api.delete(scope.project_url + "/refs/feature/x")
    clock.advance(seconds=1)
    second = api.put(url, params={"ref": "feature/x"}, json=definition)
    assert first.json()["revision"] == second.json()["revision"]
    assert first.headers["ETag"] != second.headers["ETag"]


def test_a_too_long_if_match_is_422(api: TestClient, scope: Scope) -> None:
    response = api.patch(scope.agent_url, headers={"If-Match": '"' + "x" * 2000 + '"'})
    assert response.status_code in (405, 422)
    put = api.put(scope.agent_url, json={"target": PYTHON}, headers={"If-Match": "x" * 2000})
    assert problem(put, 422)["errors"][0]["field"] == "header.If-Match"
