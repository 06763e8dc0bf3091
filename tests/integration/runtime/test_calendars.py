"""Recurrence rules and calendars as the scheduler applies them (fake clock, SPEC §16).

Every scenario drives the real scheduler tick by tick, with the clock set to each
``next_run_at`` in turn, on the configured database (SQLite or PostgreSQL): the slots a
calendar skips are recorded ``skipped`` with the reason, a shifted slot runs at its own
instant under its own canonical key and records the date it comes from, and a shift that
would land on a date with a slot of its own is refused (no slot twice).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tickwork.domain.ids import schedule_key
from tickwork.domain.schedule import format_instant
from tickwork.services import control, triggers
from tickwork.storage.records import PENDING, SKIPPED, Invocation, Trigger

from .conftest import World

Make = Callable[..., Coroutine[Any, Any, World]]


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout=60))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def rows_of(w: World, t: Trigger) -> list[tuple[str, str, str | None]]:
    return [(format_instant(r.scheduled_for), r.status, r.status_reason) for r in _rows(w, t)]


def _rows(w: World, t: Trigger) -> list[Invocation]:
    return w.invocations(t.id)


async def dispatch_until(w: World, t: Trigger, end: datetime) -> None:
    """Set the clock to each of the trigger's ``next_run_at`` up to ``end`` and tick."""
    for _ in range(1000):
        current = triggers.get_trigger(w.ctx, "acme", "proj", "bot", t.id)
        if current.next_run_at is None or current.next_run_at > end:
            return
        w.clock.set(current.next_run_at)
        await w.dispatch()
    raise AssertionError("the trigger kept firing")


def test_a_holiday_slot_is_recorded_skipped_with_the_holiday_as_reason(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        w.clock.set(at("2026-12-23T12:00:00Z"))
        t = w.trigger(
            cron_expression="0 9 * * *",
            timezone="America/New_York",
            calendar={"holidays": "US"},
        )
        await dispatch_until(w, t, at("2026-12-27T00:00:00Z"))
        assert rows_of(w, t) == [
            ("2026-12-23T14:00:00Z", PENDING, None),
            ("2026-12-24T14:00:00Z", PENDING, None),
            ("2026-12-25T14:00:00Z", SKIPPED, "holiday: Christmas Day"),
            ("2026-12-26T14:00:00Z", PENDING, None),
        ]
        skipped = _rows(w, t)[2]
        assert skipped.idempotency_key == schedule_key(t.id, at("2026-12-25T14:00:00Z"))
        assert skipped.completed_at is not None

    run(scenario())


def test_a_shifted_slot_runs_at_its_own_instant_and_names_the_date_it_comes_from(
    world: Make,
) -> None:
    async def scenario() -> None:
        w = await world()
        w.clock.set(at("2026-11-20T12:00:00Z"))
        # The 25th at 09:00, or the business day before it: 2026-12-25 is Christmas Day.
        t = w.trigger(
            rrule="FREQ=MONTHLY;BYMONTHDAY=25;BYHOUR=9;BYMINUTE=0;BYSECOND=0",
            rrule_start="2026-01-01T00:00:00",
            timezone="America/New_York",
            calendar={"holidays": "US", "weekends": "exclude", "shift": "previous_business_day"},
        )
        await dispatch_until(w, t, at("2027-01-31T00:00:00Z"))
        reason = "shifted from 2026-12-25 (holiday: Christmas Day)"
        assert rows_of(w, t) == [
            ("2026-11-25T14:00:00Z", PENDING, None),
            ("2026-12-24T14:00:00Z", PENDING, reason),
            # 2027-01-25 is a Monday.
            ("2027-01-25T14:00:00Z", PENDING, None),
        ]
        shifted = _rows(w, t)[1]
        assert shifted.idempotency_key == schedule_key(t.id, at("2026-12-24T14:00:00Z"))
        assert shifted.not_before == at("2026-12-24T14:00:00Z")

    run(scenario())


def test_a_shift_onto_a_date_with_its_own_slot_is_refused_so_no_slot_runs_twice(
    world: Make,
) -> None:
    async def scenario() -> None:
        w = await world()
        w.clock.set(at("2026-12-23T12:00:00Z"))
        t = w.trigger(
            cron_expression="0 9 * * *",
            timezone="America/New_York",
            calendar={"holidays": "US", "shift": "next_business_day"},
        )
        await dispatch_until(w, t, at("2026-12-27T00:00:00Z"))
        assert rows_of(w, t) == [
            ("2026-12-23T14:00:00Z", PENDING, None),
            ("2026-12-24T14:00:00Z", PENDING, None),
            (
                "2026-12-25T14:00:00Z",
                SKIPPED,
                "holiday: Christmas Day; 2026-12-26 already has a slot",
            ),
            ("2026-12-26T14:00:00Z", PENDING, None),
        ]

    run(scenario())


def test_weekday_slots_shifted_off_a_holiday_land_next_to_regular_ones_exactly_once(
    world: Make,
) -> None:
    async def scenario() -> None:
        w = await world()
        w.clock.set(at("2026-12-21T12:00:00Z"))
        # Business days only, Christmas moved to the next business day: Monday the 28th
        # has its own slot, so the Friday's slot is skipped rather than doubled.
        t = w.trigger(
            rrule="FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9;BYMINUTE=0;BYSECOND=0",
            rrule_start="2026-12-01T00:00:00",
            timezone="America/New_York",
            calendar={"holidays": "US", "weekends": "exclude", "shift": "next_business_day"},
        )
        await dispatch_until(w, t, at("2026-12-29T00:00:00Z"))
        scheduled = [slot for slot, _, _ in rows_of(w, t)]
        assert len(scheduled) == len(set(scheduled))
        assert rows_of(w, t) == [
            ("2026-12-21T14:00:00Z", PENDING, None),
            ("2026-12-22T14:00:00Z", PENDING, None),
            ("2026-12-23T14:00:00Z", PENDING, None),
            ("2026-12-24T14:00:00Z", PENDING, None),
            (
                "2026-12-25T14:00:00Z",
                SKIPPED,
                "holiday: Christmas Day; 2026-12-28 already has a slot",
            ),
            ("2026-12-28T14:00:00Z", PENDING, None),
        ]

    run(scenario())


def test_a_slot_shifted_into_a_spring_forward_gap_runs_at_the_first_instant_after_it(
    world: Make,
) -> None:
    async def scenario() -> None:
        w = await world()  # the clock starts at 2026-03-02T09:00:00Z
        # Saturdays at 02:30; Saturday 2026-03-07 is excluded and moves to Sunday the
        # 8th, whose 02:30 does not exist in New York (02:00 EST jumps to 03:00 EDT).
        t = w.trigger(
            cron_expression="30 2 * * 6",
            timezone="America/New_York",
            calendar={"exclude_dates": ["2026-03-07"], "shift": "next_business_day"},
        )
        await dispatch_until(w, t, at("2026-03-15T00:00:00Z"))
        assert rows_of(w, t) == [
            ("2026-03-08T07:00:00Z", PENDING, "shifted from 2026-03-07 (excluded date 2026-03-07)"),
            ("2026-03-14T06:30:00Z", PENDING, None),  # 02:30 EDT
        ]

    run(scenario())


def test_catch_up_after_downtime_records_the_calendar_skips_among_the_missed_slots(
    world: Make,
) -> None:
    async def scenario() -> None:
        w = await world()
        w.clock.set(at("2026-12-23T12:00:00Z"))
        t = w.trigger(
            cron_expression="0 9 * * *",
            timezone="America/New_York",
            calendar={"holidays": "US"},
            catchup="latest",
            catchup_window_seconds=3600,
        )
        # Down from the 23rd to the 26th at 14:30 UTC: the 25th is still a holiday.
        w.clock.set(at("2026-12-26T14:30:00Z"))
        await w.dispatch()
        statuses = {slot: (status, reason) for slot, status, reason in rows_of(w, t)}
        assert statuses["2026-12-25T14:00:00Z"] == (SKIPPED, "holiday: Christmas Day")
        assert statuses["2026-12-26T14:00:00Z"] == (PENDING, None)
        assert statuses["2026-12-24T14:00:00Z"][0] == "missed"

    run(scenario())


def test_a_skip_by_request_is_not_spent_on_a_slot_the_calendar_skips(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        w.clock.set(at("2026-12-24T15:00:00Z"))
        t = w.trigger(
            cron_expression="0 9 * * *", timezone="America/New_York", calendar={"holidays": "US"}
        )
        control.skip_trigger(w.ctx, "acme", "proj", "bot", t.id, 1)
        await dispatch_until(w, t, at("2026-12-27T00:00:00Z"))
        assert rows_of(w, t) == [
            ("2026-12-25T14:00:00Z", SKIPPED, "holiday: Christmas Day"),
            ("2026-12-26T14:00:00Z", SKIPPED, "skipped by request"),
        ]

    run(scenario())


def _documented_trigger() -> dict[str, Any]:
    """The JSON trigger of docs/semantics.md's "What the scheduler records"."""
    page = (Path(__file__).resolve().parents[3] / "docs" / "semantics.md").read_text()
    section = page[page.index("### What the scheduler records") :]
    block = section[section.index("```json\n") + len("```json\n") :]
    body: dict[str, Any] = json.loads(block[: block.index("```")])
    return body


def test_the_documented_payroll_reminder_runs_as_the_page_says(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        w.clock.set(at("2026-11-20T12:00:00Z"))
        t = w.trigger(**_documented_trigger())
        await dispatch_until(w, t, at("2027-01-31T00:00:00Z"))
        assert rows_of(w, t) == [
            ("2026-11-25T14:00:00Z", PENDING, None),
            ("2026-12-24T14:00:00Z", PENDING, "shifted from 2026-12-25 (holiday: Christmas Day)"),
            ("2027-01-25T14:00:00Z", PENDING, None),
        ]
        assert _rows(w, t)[1].idempotency_key == f"sched:{t.id}:2026-12-24T14:00:00Z"

    run(scenario())
