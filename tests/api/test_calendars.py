"""Recurrence rules and calendars over HTTP (SPEC §16): create and patch, what a trigger
shows, its preview and the project's upcoming runs with the calendar's skips and shifts,
definitions that round-trip, and every bad input a 422 naming the part at fault. The
fake clock starts at 2026-03-02T09:00:00Z."""

from __future__ import annotations

from typing import Any, get_args

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import Scope, field_error, problem
from tickwork.domain import calendars
from tickwork.testing import FakeClock
from tickwork.wire import CalendarSpec
from tickwork.wire import triggers as wire_triggers

RULE = "FREQ=MONTHLY;BYMONTHDAY=25;BYHOUR=9;BYMINUTE=0;BYSECOND=0"
CALENDAR = {"holidays": "US", "weekends": "exclude", "shift": "previous_business_day"}


def create(api: TestClient, scope: Scope, **fields: Any) -> dict[str, Any]:
    fields.setdefault("name", "close")
    response = api.post(scope.triggers, json=fields)
    assert response.status_code == 201, response.text
    trigger: dict[str, Any] = response.json()
    return trigger


def test_a_rule_trigger_shows_its_rule_start_and_canonical_calendar(
    api: TestClient, scope: Scope
) -> None:
    trigger = create(
        api, scope, rrule=RULE, timezone="America/New_York", calendar={"holidays": "us"}
    )
    assert trigger["cron_expression"] is None
    assert trigger["rrule"] == RULE
    # Default: the creation (09:00Z on 2026-03-02) as a wall time of the zone.
    assert trigger["rrule_start"] == "2026-03-02T04:00:00"
    assert trigger["calendar"] == {"holidays": "US", "weekends": "include", "shift": "skip"}
    assert trigger["next_run_at"] == "2026-03-25T13:00:00Z"  # 09:00 EDT


def test_the_preview_shows_shifted_and_skipped_slots_with_their_reasons(
    api: TestClient, scope: Scope, clock: FakeClock
) -> None:
    clock.set(clock.now().replace(month=11, day=20))
    trigger = create(
        api,
        scope,
        rrule=RULE,
        rrule_start="2026-01-01T00:00:00",
        timezone="America/New_York",
        calendar=CALENDAR,
    )
    preview = api.get(scope.trigger(trigger["id"]) + "/preview", params={"count": 3}).json()
    assert preview["next_runs"] == [
        "2026-11-25T14:00:00Z",
        "2026-12-24T14:00:00Z",
        "2027-01-25T14:00:00Z",
    ]
    assert preview["calendar_slots"] == [
        {
            "at": "2026-12-24T14:00:00Z",
            "nominal": "2026-12-25T14:00:00Z",
            "status": "shifted",
            "reason": "shifted from 2026-12-25 (holiday: Christmas Day)",
        }
    ]
    assert "public holidays in US" in preview["description"]

    skipping = create(
        api,
        scope,
        name="daily",
        cron_expression="0 9 * * *",
        timezone="America/New_York",
        calendar={"exclude_ranges": [["2026-11-21", "2026-11-22"]]},
    )
    preview = api.get(scope.trigger(skipping["id"]) + "/preview", params={"count": 2}).json()
    assert preview["next_runs"] == ["2026-11-20T14:00:00Z", "2026-11-23T14:00:00Z"]
    assert [(s["at"], s["status"], s["reason"]) for s in preview["calendar_slots"]] == [
        ("2026-11-21T14:00:00Z", "skipped", "excluded range 2026-11-21 to 2026-11-22"),
        ("2026-11-22T14:00:00Z", "skipped", "excluded range 2026-11-21 to 2026-11-22"),
    ]


def test_upcoming_runs_list_the_excluded_slots_and_the_shift_reasons(
    api: TestClient, scope: Scope, clock: FakeClock
) -> None:
    clock.set(clock.now().replace(month=12, day=23))
    create(
        api,
        scope,
        cron_expression="0 9 * * *",
        timezone="America/New_York",
        calendar={"holidays": "US", "exclude_dates": ["2026-12-24"], "shift": "skip"},
    )
    items = api.get(scope.project_url + "/upcoming-runs", params={"limit": 4}).json()["items"]
    assert [(i["kind"], i["scheduled_for"], i["reason"]) for i in items] == [
        ("scheduled", "2026-12-23T14:00:00Z", None),
        ("excluded", "2026-12-24T14:00:00Z", "excluded date 2026-12-24"),
        ("excluded", "2026-12-25T14:00:00Z", "holiday: Christmas Day"),
        ("scheduled", "2026-12-26T14:00:00Z", None),
    ]


def test_patching_between_kinds_of_schedule_replaces_the_other_kind(
    api: TestClient, scope: Scope
) -> None:
    trigger = create(api, scope, cron_expression="0 9 * * *", calendar={"holidays": "DE-BY"})
    url = scope.trigger(trigger["id"])
    ruled = api.patch(url, json={"rrule": "FREQ=WEEKLY;BYDAY=TU;BYHOUR=9;BYMINUTE=0"}).json()
    assert (ruled["cron_expression"], ruled["rrule_start"]) == (None, "2026-03-02T09:00:00")
    assert ruled["calendar"]["holidays"] == "DE-BY"
    assert ruled["next_run_at"] == "2026-03-03T09:00:00Z"
    back = api.patch(url, json={"cron_expression": "0 10 * * *", "calendar": None}).json()
    assert (back["rrule"], back["rrule_start"], back["calendar"]) == (None, None, None)
    assert back["next_run_at"] == "2026-03-02T10:00:00Z"


def test_a_definition_with_rules_and_calendars_round_trips_unchanged(
    api: TestClient, scope: Scope
) -> None:
    document = {
        "agents": [
            {
                "id": "a",
                "name": "a",
                "target": {"type": "python", "handler": "h"},
                "triggers": [
                    {"name": "close", "rrule": RULE, "calendar": CALENDAR},
                    {
                        "name": "daily",
                        "cron_expression": "0 9 * * 1-5",
                        "calendar": {"exclude_dates": ["2026-12-31", "2026-12-24"]},
                    },
                ],
            }
        ]
    }
    url = scope.project_url + "/definition"
    dry = api.put(url, params={"dry_run": "true"}, json=document)
    assert dry.status_code == 200, dry.text
    assert {c["action"] for c in dry.json()["changes"] if c.get("trigger")} == {"create"}
    assert api.put(url, json=document).status_code == 200
    exported = api.get(url).json()
    triggers = {t["name"]: t for t in exported["agents"][0]["triggers"]}
    assert triggers["close"]["rrule_start"] == "2026-03-02T09:00:00"
    assert triggers["daily"]["calendar"] == {
        "exclude_dates": ["2026-12-24", "2026-12-31"],
        "weekends": "include",
        "shift": "skip",
    }
    again = api.put(url, json=exported).json()
    assert again["changed"] is False
    # Pushed again as first written (no rrule_start: the creation's; dates in any order).
    assert api.put(url, json=document).json()["changed"] is False


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        (
            {"rrule": "FREQ=MONTHLY;BYSETPOS=-1"},
            "rrule",
            "BYSETPOS requires another BYxxx part",
        ),
        ({"rrule": "FREQ=FORTNIGHTLY"}, "rrule", "FREQ"),
        (
            {"rrule": "FREQ=DAILY;COUNT=2", "rrule_start": "2020-01-01T09:00:00"},
            "rrule",
            "never fires after 2026-03-02T09:00:00Z",
        ),
        ({"rrule": "FREQ=DAILY", "rrule_start": "2026-03-02T09:00:00Z"}, "rrule_start", "offset"),
        ({"rrule": "FREQ=DAILY", "rrule_start": "tomorrow"}, "rrule_start", "wall time"),
        (
            {"cron_expression": "0 9 * * *", "rrule_start": "2026-03-02T09:00:00"},
            "rrule_start",
            "goes with rrule only",
        ),
        ({"cron_expression": "0 9 * * *", "rrule": "FREQ=DAILY"}, "cron_expression", "exactly one"),
        (
            {"cron_expression": "0 9 * * *", "calendar": {"holidays": "XX"}},
            "calendar.holidays",
            "unknown country 'XX' (known: ",
        ),
        (
            {"cron_expression": "0 9 * * *", "calendar": {"holidays": "DE-ZZ"}},
            "calendar.holidays",
            "unknown subdivision 'ZZ' of DE",
        ),
        (
            {"cron_expression": "0 9 * * *", "calendar": {"exclude_dates": ["2026-02-30"]}},
            "calendar.exclude_dates[0]",
            "not a date that exists",
        ),
        (
            {
                "cron_expression": "0 9 * * *",
                "calendar": {"exclude_ranges": [["2026-08-15", "2026-08-01"]]},
            },
            "calendar.exclude_ranges[0]",
            "give the earlier date first",
        ),
        (
            {"run_at": "2026-03-03T09:00:00Z", "calendar": {"holidays": "US"}},
            "calendar",
            "recurring triggers only",
        ),
    ],
)
def test_every_bad_rule_or_calendar_is_a_422_naming_the_part(
    api: TestClient, scope: Scope, fields: dict[str, Any], field: str, words: str
) -> None:
    error = field_error(api.post(scope.triggers, json={"name": "bad", **fields}))
    assert error["field"] == field
    assert words in error["message"]


def test_a_calendar_the_wire_model_refuses_is_a_422_too(api: TestClient, scope: Scope) -> None:
    for calendar in ({"shift": "sideways"}, {"weekends": "sometimes"}, {"colour": "red"}):
        body = {"name": "bad", "cron_expression": "0 9 * * *", "calendar": calendar}
        problem(api.post(scope.triggers, json=body), 422)


def test_the_wire_models_spell_the_calendars_names_and_limits_as_the_domain_does() -> None:
    assert get_args(wire_triggers.ShiftPolicy) == calendars.SHIFTS
    assert get_args(wire_triggers.WeekendPolicy) == calendars.WEEKEND_POLICIES
    assert wire_triggers.MAX_EXCLUDE_DATES == calendars.MAX_EXCLUDE_DATES
    assert wire_triggers.MAX_EXCLUDE_RANGES == calendars.MAX_EXCLUDE_RANGES
    assert set(CalendarSpec.model_fields) == set(calendars.KEYS)
