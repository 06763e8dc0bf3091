"""``@tickwork.schedule`` declarations and the definition they describe."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tickwork.errors import ValidationError
from tickwork.targets.python import HandlerRegistry, handler
from tickwork.targets.schedules import (
    ScheduleRegistry,
    agent_id_for,
    build_definition,
    schedule,
)


@pytest.fixture
def handlers() -> HandlerRegistry:
    return HandlerRegistry()


@pytest.fixture
def schedules() -> ScheduleRegistry:
    return ScheduleRegistry()


def test_stacked_decorators_describe_one_agent_per_handler(
    handlers: HandlerRegistry, schedules: ScheduleRegistry
) -> None:
    @schedule(
        "30 8 * * 1-5", timezone="Europe/Berlin", payload={"team": "core"}, registry=schedules
    )
    @schedule("@hourly", name="hourly", overlap="skip", registry=schedules)
    @handler("reports.daily:v2", registry=handlers)
    def report(call: Any) -> None:
        return None

    @handler("idle", registry=handlers)
    @schedule(run_at=datetime(2026, 3, 8, 7, tzinfo=UTC), name="once", registry=schedules)
    def idle(call: Any) -> None:
        return None

    @handler("plain", registry=handlers)
    def plain(call: Any) -> None:
        return None

    assert report.__name__ == "report"  # returned unchanged
    found = build_definition(handlers, schedules)
    assert found.definition == {
        "agents": [
            {
                "id": "idle",
                "target": {"type": "python", "handler": "idle"},
                "triggers": [{"name": "once", "run_at": "2026-03-08T07:00:00Z"}],
            },
            {"id": "plain", "target": {"type": "python", "handler": "plain"}, "triggers": []},
            {
                "id": "reports.daily-v2",
                "target": {"type": "python", "handler": "reports.daily:v2"},
                "triggers": [
                    # In the order of the source lines; the name defaults to the function's.
                    {
                        "name": "report",
                        "cron_expression": "30 8 * * 1-5",
                        "timezone": "Europe/Berlin",
                        "payload": {"team": "core"},
                    },
                    {"name": "hourly", "cron_expression": "@hourly", "overlap": "skip"},
                ],
            },
        ]
    }
    where = found.source_of("agents[2].triggers[1].cron_expression")
    assert where is not None
    assert where.endswith("(schedule 'hourly')")
    assert f"{__file__}:" in where
    assert found.source_of("agents[1].name") is not None
    assert found.source_of("agents[1].name").endswith("(handler 'plain')")  # type: ignore[union-attr]
    assert found.source_of("query.ref") is None


def test_a_schedule_is_checked_against_the_apis_model_when_declared(
    schedules: ScheduleRegistry,
) -> None:
    with pytest.raises(ValidationError) as raised:
        schedule("0 9 * * *", max_retries=99, registry=schedules)(lambda call: None)
    assert raised.value.field == "max_retries"
    assert f"@schedule at {__file__}:" in raised.value.message
    with pytest.raises(ValidationError, match="is not a field of a scheduled trigger"):
        schedule("0 9 * * *", cron="0 9 * * *", registry=schedules)(lambda call: None)
    with pytest.raises(ValidationError, match="Input should be a valid dictionary"):
        schedule("0 9 * * *", payload=[1], registry=schedules)(lambda call: None)  # type: ignore[arg-type]


def test_two_schedules_of_one_name_on_one_handler_are_refused(
    schedules: ScheduleRegistry,
) -> None:
    def fn(call: Any) -> None:
        return None

    schedule("0 9 * * *", registry=schedules)(fn)
    with pytest.raises(ValidationError, match="already has a schedule named 'fn'"):
        schedule("0 10 * * *", registry=schedules)(fn)


def test_a_schedule_needs_a_registered_handler(
    handlers: HandlerRegistry, schedules: ScheduleRegistry
) -> None:
    @schedule("0 9 * * *", registry=schedules)
    def orphan(call: Any) -> None:
        return None

    with pytest.raises(ValidationError, match=r"not a registered handler: add @tickwork.handler"):
        build_definition(handlers, schedules)
    handlers.register("one", orphan)
    handlers.register("two", orphan)
    with pytest.raises(ValidationError, match=r"registered as several handlers \(one, two\)"):
        build_definition(handlers, schedules)


def test_handler_names_become_agent_ids() -> None:
    assert agent_id_for("daily-report") == "daily-report"
    assert agent_id_for("reports.daily:v2") == "reports.daily-v2"
    assert agent_id_for(":x:y") == "x-y"
    assert agent_id_for("a" * 100) == "a" * 64
    with pytest.raises(ValidationError, match="needs a letter or digit"):
        agent_id_for("::")


def test_two_handlers_that_make_one_agent_id_are_refused(
    handlers: HandlerRegistry, schedules: ScheduleRegistry
) -> None:
    handlers.register("a:b", lambda call: None)
    handlers.register("a-b", lambda call: None)
    with pytest.raises(ValidationError, match="would both be agent 'a-b'"):
        build_definition(handlers, schedules)
