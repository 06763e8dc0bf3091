"""Backfills as the active scheduler dispatches them (fake clock, SPEC §10)."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
import sqlalchemy as sa

from tests.waiting import within
from tickwork.domain.schedule import format_instant
from tickwork.errors import Conflict, ValidationError
from tickwork.services import backfills, control, triggers
from tickwork.storage import tables
from tickwork.storage.records import (
    BACKFILL_CANCELLED,
    BACKFILL_COMPLETED,
    BACKFILL_RUNNING,
    CANCELLED,
    COMPLETED,
    FAILED,
    MISSED,
    PENDING,
    Invocation,
)

from .conftest import World

Make = Callable[..., Coroutine[Any, Any, World]]


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout=60))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def of_origin(rows: list[Invocation], origin: str) -> list[Invocation]:
    return [r for r in rows if r.origin == origin]


def backfill(w: World, trigger_id: str, start: str, end: str, **kwargs: Any) -> Any:
    created, plan = backfills.create_backfill(
        w.ctx, "acme", "proj", "bot", trigger_id, start=at(start), end=at(end), **kwargs
    )
    return created, plan


def state(w: World, trigger_id: str, backfill_id: str) -> Any:
    return backfills.get_backfill(w.ctx, "acme", "proj", "bot", trigger_id, backfill_id)


def test_a_backfill_across_fall_back_gives_each_slot_its_own_scheduled_for(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        w.clock.set(at("2026-11-05T12:00:00Z"))
        fixed = w.trigger(name="fixed", cron_expression="30 1 * * *", timezone="America/New_York")
        wild = w.trigger(name="wild", cron_expression="*/30 1 * * *", timezone="America/New_York")
        start, end = "2026-10-31T00:00:00Z", "2026-11-03T00:00:00Z"
        one, plan = backfill(w, fixed.id, start, end)
        assert (plan.slots, plan.created, plan.skipped) == (3, 3, 0)
        two, plan = backfill(w, wild.id, start, end)
        assert plan.slots == 8  # 01:00 and 01:30 a day, and both again in the repeated hour
        await w.dispatch()
        await w.work()
        ran = of_origin(w.invocations(fixed.id), "backfill")
        # 01:30 EDT on Oct 31 and Nov 1 (the first copy of the repeated hour), then EST.
        assert [format_instant(r.scheduled_for) for r in ran] == [
            "2026-10-31T05:30:00Z",
            "2026-11-01T05:30:00Z",
            "2026-11-02T06:30:00Z",
        ]
        assert all(r.status == COMPLETED for r in ran)
        assert {r.idempotency_key for r in ran} == {
            f"sched:{fixed.id}:{format_instant(r.scheduled_for)}" for r in ran
        }
        nov1 = [
            format_instant(r.scheduled_for)
            for r in of_origin(w.invocations(wild.id), "backfill")
            if r.scheduled_for.date().isoformat() == "2026-11-01"
        ]
        # A wildcard minute fires in both copies of 01:xx.
        assert nov1 == [
            "2026-11-01T05:00:00Z",
            "2026-11-01T05:30:00Z",
            "2026-11-01T06:00:00Z",
            "2026-11-01T06:30:00Z",
        ]
        called = {c.scheduled_for for c in w.recorder.calls if c.trigger_id == fixed.id}
        assert called == {r.scheduled_for for r in ran}
        assert all(c.origin == "backfill" for c in w.recorder.calls)
        await w.dispatch()
        assert state(w, fixed.id, one.id).status == BACKFILL_COMPLETED
        assert state(w, wild.id, two.id).dispatched == 8

    run(scenario())


def test_a_backfill_runs_in_batches_within_its_max_concurrency(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        w.clock.set(at("2026-03-02T12:00:00Z"))
        t = w.trigger(cron_expression="*/10 * * * *")
        bf, _ = backfill(w, t.id, "2026-03-02T09:00:00Z", "2026-03-02T10:40:00Z", max_concurrency=3)
        seen = []
        for _ in range(6):
            await w.dispatch()
            rows = of_origin(w.invocations(t.id), "backfill")
            seen.append(len(rows))
            assert sum(1 for r in rows if r.status == PENDING) <= 3
            await w.dispatch()  # no room: nothing more
            assert len(of_origin(w.invocations(t.id), "backfill")) == seen[-1]
            await w.work()
        assert seen == [3, 6, 9, 10, 10, 10]
        done = state(w, t.id, bf.id)
        assert (done.status, done.dispatched, done.created, done.skipped) == (
            BACKFILL_COMPLETED,
            10,
            10,
            0,
        )
        assert done.completed_at == w.clock.now()
        # Backfills never count towards max_runs, and never move the schedule.
        assert triggers.get_trigger(w.ctx, "acme", "proj", "bot", t.id).next_run_at == at(
            "2026-03-02T12:10:00Z"
        )

    run(scenario())


def test_missing_runs_only_what_never_ran_and_is_idempotent(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        t = w.trigger(cron_expression="*/10 * * * *", catchup="latest", catchup_window_seconds=0)
        w.advance(3600)  # 09:10..10:00 due at once: 09:10-09:50 missed, 10:00 runs
        await w.dispatch()
        await w.work()
        control.pause_trigger(w.ctx, "acme", "proj", "bot", t.id)
        w.advance(1800)  # 10:10, 10:20 pass while paused: no record at all
        control.resume_trigger(w.ctx, "acme", "proj", "bot", t.id)
        first, plan = backfill(w, t.id, "2026-03-02T09:01:00Z", "2026-03-02T10:30:00Z")
        # 9 slots: 5 missed and 2 paused are run; 10:00 ran and is left alone.
        assert (plan.slots, plan.created, plan.skipped) == (8, 7, 1)
        w.advance(1)  # the second comes second
        _, again = backfill(w, t.id, "2026-03-02T09:01:00Z", "2026-03-02T10:30:00Z")
        await w.dispatch()
        await w.work()
        await w.dispatch()
        rows = w.invocations(t.id)
        runs = Counter(format_instant(r.scheduled_for) for r in rows if r.status != MISSED)
        assert set(runs.values()) == {1}  # no slot twice, though two backfills asked
        assert len(runs) == 8
        assert again.created == 7  # its plan: both planned before either dispatched
        second = backfills.list_backfills(w.ctx, "acme", "proj", "bot", t.id, None, 10)[0]
        assert (second.created, second.skipped, second.dispatched) == (0, 8, 0)
        assert state(w, t.id, first.id).dispatched == 7
        _, third = backfill(w, t.id, "2026-03-02T09:01:00Z", "2026-03-02T10:30:00Z")
        assert (third.created, third.skipped) == (0, 8)

    run(scenario())


def test_failed_and_all_rerun_under_keys_of_their_own(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        t = w.trigger(cron_expression="*/10 * * * *", max_retries=0)
        w.recorder.permanent = True
        for _ in range(2):
            w.advance(600)
            await w.dispatch()
            await w.work()
        w.recorder.permanent = False
        for _ in range(2):
            w.advance(600)
            await w.dispatch()
            await w.work()
        statuses = [r.status for r in w.invocations(t.id)]
        assert statuses == [FAILED, FAILED, COMPLETED, COMPLETED]
        failed, plan = backfill(
            w, t.id, "2026-03-02T09:01:00Z", "2026-03-02T09:40:00Z", mode="failed"
        )
        assert (plan.slots, plan.created) == (3, 2)  # [09:00, 09:40): 09:10, 09:20, 09:30
        await w.dispatch()
        await w.work()
        reruns = of_origin(w.invocations(t.id), "backfill")
        assert [format_instant(r.scheduled_for) for r in reruns] == [
            "2026-03-02T09:10:00Z",
            "2026-03-02T09:20:00Z",
        ]
        assert all(r.idempotency_key.startswith(f"backfill:{failed.id}:") for r in reruns)
        assert all(r.status == COMPLETED for r in reruns)
        # Now nothing is failed any more; "all" runs every slot again, twice if asked twice.
        _, none_left = backfill(
            w, t.id, "2026-03-02T09:01:00Z", "2026-03-02T09:40:00Z", mode="failed", dry_run=True
        )
        assert none_left.created == 0
        for _ in range(2):
            backfill(w, t.id, "2026-03-02T09:01:00Z", "2026-03-02T09:40:00Z", mode="all")
        await w.dispatch()
        await w.work()
        assert len(of_origin(w.invocations(t.id), "backfill")) == 2 + 2 * 3

    run(scenario())


def test_a_backfill_racing_the_normal_schedule_never_runs_a_slot_twice(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        t = w.trigger(cron_expression="* * * * *", catchup="all")
        w.advance(5 * 60)  # the scheduler is behind: 09:01..09:05 due, not yet dispatched
        _, plan = backfill(w, t.id, "2026-03-02T09:00:30Z", "2026-03-02T09:05:00Z")
        # They are the schedule's to catch up: the backfill leaves them.
        assert (plan.slots, plan.created) == (4, 0)
        for _ in range(3):
            await w.dispatch()
            w.advance(60)
            backfill(w, t.id, "2026-03-02T09:00:30Z", format_instant(w.clock.now()))
        await w.dispatch()
        await w.work()
        rows = w.invocations(t.id)
        assert Counter(r.scheduled_for for r in rows).most_common(1)[0][1] == 1
        assert {r.origin for r in rows} == {"schedule"}

    run(scenario())


def test_two_dispatchers_of_one_backfill_create_each_slot_once(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        w.clock.set(at("2026-03-03T09:00:00Z"))
        t = w.trigger(cron_expression="* * * * *", catchup="all")
        bf, plan = backfill(
            w, t.id, "2026-03-02T00:00:00Z", "2026-03-02T05:00:00Z", max_concurrency=1000
        )
        assert plan.created == 300
        now = w.clock.now()
        errors: list[BaseException] = []

        def dispatcher() -> None:
            try:
                for _ in range(5):
                    backfills.dispatch_backfills(w.ctx, now)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=dispatcher) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert errors == []
        counted = state(w, t.id, bf.id)
        assert (counted.position, counted.dispatched) == (300, 300)
        c = tables.invocations.c
        with w.ctx.db.read() as tx:
            total, slots = tx.conn.execute(
                sa.select(sa.func.count(), sa.func.count(sa.distinct(c.scheduled_for))).where(
                    c.trigger_id == t.id
                )
            ).one()
        assert (total, slots) == (300, 300)

    run(scenario())


def test_cancelling_a_backfill_cancels_what_has_not_started(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        w.clock.set(at("2026-03-02T12:00:00Z"))
        w.recorder.block = asyncio.Event()
        t = w.trigger(cron_expression="*/10 * * * *", timeout_seconds=3600)
        bf, _ = backfill(w, t.id, "2026-03-02T09:00:00Z", "2026-03-02T11:00:00Z", max_concurrency=2)
        await w.dispatch()
        assert w.node.workers is not None
        await w.node.workers.run_once()
        await within(w.recorder.started.wait(), "the target being called")
        await w.dispatch()  # no room: both of its invocations run
        cancelled = backfills.cancel_backfill(w.ctx, "acme", "proj", "bot", t.id, bf.id)
        assert cancelled.status == BACKFILL_CANCELLED
        statuses = Counter(r.status for r in of_origin(w.invocations(t.id), "backfill"))
        assert statuses == Counter({"running": 2})  # those that started go on
        w.recorder.block.set()
        await w.work()
        await w.dispatch()
        rows = of_origin(w.invocations(t.id), "backfill")
        assert Counter(r.status for r in rows) == Counter({COMPLETED: 2})  # nothing more
        with pytest.raises(Conflict, match="already cancelled"):
            backfills.cancel_backfill(w.ctx, "acme", "proj", "bot", t.id, bf.id)
        # Pending ones, not yet started, are cancelled with it.
        other, _ = backfill(w, t.id, "2026-03-02T09:00:00Z", "2026-03-02T11:00:00Z")
        await w.dispatch()
        backfills.cancel_backfill(w.ctx, "acme", "proj", "bot", t.id, other.id)
        mine = [r for r in w.invocations(t.id) if r.backfill_id == other.id]
        assert len(mine) == 10
        assert {(r.status, r.status_reason) for r in mine} == {
            (CANCELLED, "cancelled: the backfill was cancelled")
        }

    run(scenario())


def test_a_backfill_waits_while_its_project_is_paused_and_ends_with_its_trigger(
    world: Make,
) -> None:
    async def scenario() -> None:
        w = await world()
        w.clock.set(at("2026-03-02T12:00:00Z"))
        t = w.trigger(cron_expression="*/10 * * * *")
        bf, _ = backfill(w, t.id, "2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z")
        control.pause_project(w.ctx, "acme", "proj")
        await w.dispatch()
        assert of_origin(w.invocations(t.id), "backfill") == []
        control.resume_project(w.ctx, "acme", "proj")
        # A paused trigger does not hold its backfill: it is a request of its own.
        control.pause_trigger(w.ctx, "acme", "proj", "bot", t.id)
        await w.dispatch()
        assert len(of_origin(w.invocations(t.id), "backfill")) == 6
        assert state(w, t.id, bf.id).status == BACKFILL_RUNNING
        triggers.delete_trigger(w.ctx, "acme", "proj", "bot", t.id)
        await w.dispatch()
        with w.ctx.db.read() as tx:
            ended = tx.get_backfill(bf.id)
        assert ended is not None
        assert ended.status == BACKFILL_CANCELLED

    run(scenario())


def test_a_dry_run_counts_and_writes_nothing(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        w.clock.set(at("2026-03-02T12:00:00Z"))
        t = w.trigger(cron_expression="*/10 * * * *")
        none, plan = backfill(w, t.id, "2026-03-02T09:00:00Z", "2026-03-02T11:00:00Z", dry_run=True)
        assert none is None
        assert (plan.slots, plan.created, plan.skipped) == (12, 12, 0)
        await w.dispatch()
        assert w.invocations(t.id) == []
        assert backfills.list_backfills(w.ctx, "acme", "proj", "bot", t.id, None, 10) == []

    run(scenario())


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"end": "2026-03-02T12:00:01Z"}, "to", "is in the future"),
        ({"end": "2026-03-02T09:00:00Z"}, "to", "must be after from"),
        ({"mode": "some"}, "mode", "must be one of missing, failed, all"),
        ({"max_concurrency": 0}, "max_concurrency", "from 1 to 1000"),
        ({"start": "2026-01-01T00:00:00Z"}, "to", "more than 10000 slots"),
    ],
)
def test_a_bad_backfill_is_refused_naming_the_field(
    world: Make, kwargs: dict[str, Any], field: str, words: str
) -> None:
    async def scenario() -> None:
        w = await world()
        w.clock.set(at("2026-03-02T12:00:00Z"))
        t = w.trigger(cron_expression="* * * * *")
        args: dict[str, Any] = {"start": "2026-03-02T09:00:00Z", "end": "2026-03-02T11:00:00Z"}
        args |= kwargs
        with pytest.raises(ValidationError) as raised:
            backfills.create_backfill(
                w.ctx,
                "acme",
                "proj",
                "bot",
                t.id,
                start=at(args.pop("start")),
                end=at(args.pop("end")),
                **args,
            )
        assert raised.value.field == field
        assert words in str(raised.value)
        assert w.clock.now() - at("2026-03-02T11:00:00Z") == timedelta(hours=1)

    run(scenario())


def test_backfills_and_the_schedule_in_threads_never_run_a_slot_twice(world: Make) -> None:
    async def scenario() -> None:
        from tickwork.services import dispatch

        w = await world()
        t = w.trigger(cron_expression="* * * * *", catchup="latest", catchup_window_seconds=0)
        errors: list[BaseException] = []

        def guarded(fn: Callable[[], object]) -> Callable[[], None]:
            def run() -> None:
                try:
                    fn()
                except BaseException as exc:  # pragma: no cover - reported below
                    errors.append(exc)

            return run

        for _ in range(8):
            w.advance(150)  # two or three slots come due; the older ones are missed
            now = w.clock.now()
            start = at("2026-03-02T09:00:30Z")
            work: list[Callable[[], object]] = [
                partial(dispatch.dispatch_batch, w.ctx, now, 100),
                partial(
                    backfills.create_backfill,
                    w.ctx,
                    "acme",
                    "proj",
                    "bot",
                    t.id,
                    start=start,
                    end=now,
                ),
                partial(backfills.dispatch_backfills, w.ctx, now),
            ]
            threads = [threading.Thread(target=guarded(fn)) for fn in work]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
        backfills.dispatch_backfills(w.ctx, w.clock.now())
        assert errors == []
        c = tables.invocations.c
        with w.ctx.db.read() as tx:
            rows = tx.conn.execute(
                sa.select(c.scheduled_for, c.status, c.origin).where(c.trigger_id == t.id)
            ).all()
        ran = Counter(r.scheduled_for for r in rows if r.status != MISSED)
        assert ran, rows
        assert max(ran.values()) == 1
        # Every slot up to the last pass is accounted for: run once, or missed and then
        # backfilled once.
        assert {r.origin for r in rows} <= {"schedule", "backfill"}

    run(scenario())
