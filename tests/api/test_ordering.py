"""Lists keep the order the docs promise even when everything happens in one
millisecond: triggers in the order they were created (a definition push: the order
pushed), invocations newest first (the slots one dispatch pass records: latest slot
first), and paging through them with cursors sees each item once, in that order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.api.helpers import Scope, at, dispatch_at
from tickwork.services.context import Context
from tickwork.testing import FakeClock


def test_pushed_triggers_list_in_the_order_they_were_pushed(api: TestClient, scope: Scope) -> None:
    names = [f"t{i:02d}" for i in range(40)]
    target = {"type": "python", "handler": "agents.run"}
    agents = [
        {
            "id": "writer",
            "target": target,
            "triggers": [{"name": n, "cron_expression": "@hourly"} for n in names],
        }
    ]
    response = api.put(scope.project_url + "/definition", json={"agents": agents})
    assert response.status_code == 200, response.text
    url = scope.project_url + "/agents/writer/scheduled-triggers"
    listed: list[str] = []
    cursor: str | None = None
    while True:
        page = api.get(url, params={"limit": 7, **({"cursor": cursor} if cursor else {})}).json()
        listed += [t["name"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert listed == names


def test_the_slots_of_one_dispatch_pass_list_newest_first(
    api: TestClient,
    scope: Scope,
    ctx: Context,
    clock: FakeClock,
    make_trigger: Callable[..., dict[str, Any]],
) -> None:
    trigger = make_trigger(catchup="all", catchup_window_seconds=86400)
    # Down for two hours: one pass records every quarter hour since, in one millisecond.
    assert dispatch_at(ctx, clock, 120) == 8
    page = api.get(scope.invocations(trigger["id"]), params={"limit": 3}).json()
    listed = [i["scheduled_for"] for i in page["items"]]
    while page["next_cursor"]:
        page = api.get(
            scope.invocations(trigger["id"]), params={"limit": 3, "cursor": page["next_cursor"]}
        ).json()
        listed += [i["scheduled_for"] for i in page["items"]]
    assert listed == [at(minutes) for minutes in range(120, 0, -15)]


def test_missed_slots_list_newest_first_after_the_one_that_runs(
    api: TestClient,
    scope: Scope,
    ctx: Context,
    clock: FakeClock,
    make_trigger: Callable[..., dict[str, Any]],
) -> None:
    trigger = make_trigger()  # catchup "latest": the last slot runs, the rest are missed
    dispatch_at(ctx, clock, 60)
    items = api.get(scope.invocations(trigger["id"])).json()["items"]
    assert [(i["scheduled_for"], i["status"]) for i in items] == [
        (at(60), "pending"),
        (at(45), "missed"),
        (at(30), "missed"),
        (at(15), "missed"),
    ]
