"""The scheduler and the workers together, driven tick by tick with a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.waiting import within
from tickwork.services import dispatch, execution, invocations, leadership, triggers
from tickwork.services.leadership import Fence, Superseded
from tickwork.storage import tables
from tickwork.storage.records import CANCELLED, COMPLETED, FAILED, MISSED, PENDING, RUNNING

from .conftest import World

Make = Callable[..., Coroutine[Any, Any, World]]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout=30))


def test_a_one_time_trigger_fires_exactly_once(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        t = w.trigger(run_at=T0 + timedelta(seconds=30))
        assert await w.dispatch() == 0
        w.advance(30)
        assert await w.dispatch() == 1
        w.advance(3600)
        assert await w.dispatch() == 0
        await w.work()
        [inv] = w.invocations(t.id)
        assert inv.status == COMPLETED
        assert inv.scheduled_for == T0 + timedelta(seconds=30)
        assert inv.idempotency_key == f"sched:{t.id}:2026-03-02T09:00:30Z"
        assert inv.conversation_id == f"conv-{inv.id[-6:]}"
        assert triggers.get_trigger(w.ctx, "acme", "proj", "bot", t.id).next_run_at is None

    run(scenario())


def test_a_seconds_cron_gets_one_invocation_per_slot(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        t = w.trigger(cron_expression="*/2 * * * * *")
        for _ in range(10):
            w.advance(1)
            await w.dispatch()
        await w.work()
        slots = [i.scheduled_for for i in w.invocations(t.id)]
        assert slots == [T0 + timedelta(seconds=s) for s in (2, 4, 6, 8, 10)]
        assert {c.scheduled_for for c in w.recorder.calls} == set(slots)

    run(scenario())


def test_the_target_sees_the_resolved_agent_and_rendered_message(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        w.trigger(
            run_at=T0 + timedelta(seconds=5),
            payload={"user": {"name": "Ada"}, "n": 3},
            message_template="Hello {{ user.name }}, you have {{n}} tasks{{ missing }}",
            timezone="Europe/Berlin",
        )
        w.advance(5)
        await w.dispatch()
        await w.work()
        [call] = w.recorder.calls
        assert call.message == "Hello Ada, you have 3 tasks"
        assert call.ref_name == "main"
        # Putting the agent, then creating its trigger: two writes to the ref.
        assert call.ref_revision == 2
        assert call.timezone == "Europe/Berlin"
        assert call.attempt == 1
        [inv] = w.invocations()
        assert (inv.agent_name, inv.ref_revision) == ("Bot", 2)
        assert inv.message == "Hello Ada, you have 3 tasks"

    run(scenario())


def test_a_transient_failure_is_retried_after_the_backoff_then_completes(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        w.recorder.fail_times = 1
        t = w.trigger(run_at=T0 + timedelta(seconds=1), retry_delay_seconds=10, max_retries=2)
        w.advance(1)
        await w.dispatch()
        await w.work()
        [inv] = w.invocations(t.id)
        assert inv.status == PENDING
        assert inv.last_error == "upstream 503"
        # First retry waits the base delay, stretched by at most 30 % jitter.
        delay = (inv.not_before - w.clock.now()).total_seconds()
        assert 10 <= delay < 13
        w.advance(delay - 0.5)
        await w.work()
        assert w.invocations(t.id)[0].status == PENDING
        w.advance(1)
        await w.work()
        [inv] = w.invocations(t.id)
        assert inv.status == COMPLETED
        assert inv.attempt == 2
        _, attempts = invocations.get_invocation(w.ctx, "acme", "proj", t.id, inv.id)
        assert [a.outcome for a in attempts] == ["failed", COMPLETED]
        assert {c.idempotency_key for c in w.recorder.calls} == {inv.idempotency_key}

    run(scenario())


def test_retries_run_out_and_the_invocation_fails(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        w.recorder.fail_times = 5
        t = w.trigger(run_at=T0 + timedelta(seconds=1), retry_delay_seconds=1, max_retries=1)
        w.advance(1)
        await w.dispatch()
        await w.work()
        w.advance(5)
        await w.work()
        [inv] = w.invocations(t.id)
        assert inv.status == FAILED
        assert inv.attempt == 2
        assert len(w.recorder.calls) == 2

    run(scenario())


def test_a_permanent_failure_fails_at_once(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        w.recorder.permanent = True
        t = w.trigger(run_at=T0 + timedelta(seconds=1), max_retries=5)
        w.advance(1)
        await w.dispatch()
        await w.work()
        [inv] = w.invocations(t.id)
        assert inv.status == FAILED
        assert inv.last_error == "the agent refused the message"
        assert inv.attempt == 1

    run(scenario())


def test_a_slow_target_is_cut_off_by_the_timeout(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        w.recorder.block = asyncio.Event()
        t = w.trigger(run_at=T0 + timedelta(seconds=1), timeout_seconds=30, max_retries=0)
        w.advance(1)
        await w.dispatch()
        work = asyncio.create_task(w.work())
        await within(w.recorder.started.wait(), "the target being called")
        w.advance(29)
        # The attempt still waits for its deadline: had its timer fired, the clock would
        # not hold it any more.
        assert w.clock.next_deadline() == T0 + timedelta(seconds=31)
        assert not work.done()
        w.advance(1)
        await within(work, "the attempt ending")
        [inv] = w.invocations(t.id)
        assert inv.status == FAILED
        assert inv.last_error == "timed out after 30 s"
        assert w.recorder.cancelled == [inv.id]
        _, attempts = invocations.get_invocation(w.ctx, "acme", "proj", t.id, inv.id)
        assert attempts[0].outcome == "timeout"

    run(scenario())


def test_cancelling_a_running_invocation_stops_its_attempt(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        w.recorder.block = asyncio.Event()
        t = w.trigger(run_at=T0 + timedelta(seconds=1))
        w.advance(1)
        await w.dispatch()
        work = asyncio.create_task(w.work())
        await within(w.recorder.started.wait(), "the target being called")
        [inv] = w.invocations(t.id)
        assert inv.status == RUNNING
        await asyncio.to_thread(invocations.cancel_invocation, w.ctx, "acme", "proj", t.id, inv.id)
        await within(work, "the attempt ending")
        [inv] = w.invocations(t.id)
        assert inv.status == CANCELLED
        assert w.recorder.cancelled == [inv.id]
        _, attempts = invocations.get_invocation(w.ctx, "acme", "proj", t.id, inv.id)
        assert attempts[0].outcome == CANCELLED
        assert attempts[0].ended_at is not None

    run(scenario())


def test_disabling_a_trigger_cancels_its_pending_invocations(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        t = w.trigger(cron_expression="* * * * *")
        w.advance(60)
        await w.dispatch()
        triggers.update_trigger(w.ctx, "acme", "proj", "bot", t.id, {"enabled": False})
        await w.work()
        [inv] = w.invocations(t.id)
        assert inv.status == CANCELLED
        assert w.recorder.calls == []

    run(scenario())


def test_a_dead_workers_attempt_is_retried_by_another_after_its_lease(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        t = w.trigger(run_at=T0 + timedelta(seconds=1))
        w.advance(1)
        await w.dispatch()
        # A worker claims the attempt and dies without a word.
        [job] = execution.claim_jobs(w.ctx, "dead-worker", 10)
        assert job.invocation.attempt == 1
        w.advance(w.ctx.settings.worker_lease_seconds - 1)
        assert execution.recover_expired_leases(w.ctx) == []
        w.advance(2)
        [lost] = execution.recover_expired_leases(w.ctx)
        assert lost.id == job.invocation.id
        await w.work()
        [inv] = w.invocations(t.id)
        assert inv.status == COMPLETED
        assert inv.attempt == 2
        [call] = w.recorder.calls
        assert (call.invocation_id, call.idempotency_key) == (inv.id, inv.idempotency_key)
        _, attempts = invocations.get_invocation(w.ctx, "acme", "proj", t.id, inv.id)
        assert [a.outcome for a in attempts] == ["lost", COMPLETED]
        assert attempts[0].worker_id == "dead-worker"

    run(scenario())


def test_after_an_outage_latest_runs_the_last_slot_and_records_the_rest_missed(
    world: Make,
) -> None:
    async def scenario() -> None:
        w = await world()
        t = w.trigger(cron_expression="*/10 * * * *")
        w.advance(3600 + 5)
        await w.dispatch()
        rows = w.invocations(t.id)
        assert [r.status for r in rows] == [MISSED] * 5 + [PENDING]
        assert rows[-1].scheduled_for == T0 + timedelta(hours=1)
        current = triggers.get_trigger(w.ctx, "acme", "proj", "bot", t.id)
        assert current.next_run_at == T0 + timedelta(hours=1, minutes=10)

    run(scenario())


def test_a_crash_inside_the_dispatch_transaction_loses_and_duplicates_nothing(
    world: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        w = await world()
        t = w.trigger(run_at=T0 + timedelta(seconds=1))
        w.advance(1)
        real_write = w.ctx.db.write

        @contextmanager
        def write_then_power_cut() -> Iterator[Any]:
            # Everything of the transaction is sent, then the process dies before COMMIT.
            with real_write() as tx:
                yield tx
                raise RuntimeError("power cut")

        monkeypatch.setattr(w.ctx.db, "write", write_then_power_cut)
        with pytest.raises(RuntimeError):
            await w.dispatch()
        monkeypatch.setattr(w.ctx.db, "write", real_write)
        assert w.invocations(t.id) == []
        assert triggers.get_trigger(w.ctx, "acme", "proj", "bot", t.id).next_run_at is not None
        assert await w.dispatch() == 1
        assert await w.dispatch() == 0
        assert len(w.invocations(t.id)) == 1

    run(scenario())


def test_a_trigger_whose_schedule_cannot_be_computed_is_disabled_and_others_run(
    world: Make,
) -> None:
    async def scenario() -> None:
        w = await world()
        bad = w.trigger(cron_expression="* * * * *", name="bad")
        good = w.trigger(cron_expression="* * * * *", name="good")
        with w.ctx.db.write() as tx:
            tx.conn.execute(
                tables.scheduled_triggers.update()
                .where(tables.scheduled_triggers.c.id == bad.id)
                .values(cron_expression="99 * * * *")
            )
        w.advance(60)
        await w.dispatch()
        broken = triggers.get_trigger(w.ctx, "acme", "proj", "bot", bad.id)
        assert broken.enabled is False
        assert broken.next_run_at is None
        assert broken.last_error is not None
        assert "minute: 99 is out of range" in broken.last_error
        assert len(w.invocations(good.id)) == 1
        assert w.invocations(bad.id) == []

    run(scenario())


def test_a_superseded_scheduler_cannot_dispatch_even_once(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        w.trigger(run_at=T0 + timedelta(seconds=1))
        assert w.node.scheduler is not None
        old = w.node.scheduler.fence
        assert old is not None
        newer = leadership.acquire(w.ctx, "run_newer", force=True)
        assert newer is not None
        assert newer.generation == old.generation + 1
        w.advance(1)
        with pytest.raises(Superseded):
            dispatch.dispatch_batch(w.ctx, w.clock.now(), 100, old)
        assert w.invocations() == []
        assert dispatch.dispatch_batch(w.ctx, w.clock.now(), 100, newer).created == 1
        stale = Fence(old.run_id, old.generation, old.lease_seconds)
        with pytest.raises(Superseded):
            dispatch.dispatch_batch(w.ctx, w.clock.now(), 100, stale)

    run(scenario())


def test_the_scheduler_loop_sleeps_until_the_next_run_and_wakes_on_create(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        scheduler = w.node.scheduler
        assert scheduler is not None
        stop = asyncio.Event()
        loop = asyncio.create_task(scheduler.run(stop))
        await within(scheduler.ticked.wait(), "a scheduler tick")
        # Nothing is due: it sleeps until its lease needs renewing, not a minute.
        deadline = w.clock.next_deadline()
        assert deadline is not None
        assert deadline <= w.clock.now() + timedelta(seconds=30)
        scheduler.ticked.clear()
        w.trigger(run_at=T0 + timedelta(seconds=2))
        await within(scheduler.ticked.wait(), "a scheduler tick")
        assert w.clock.next_deadline() == T0 + timedelta(seconds=2)
        scheduler.ticked.clear()
        w.advance(2)
        await within(scheduler.ticked.wait(), "a scheduler tick")
        assert len(w.invocations()) == 1
        stop.set()
        scheduler.wake.set()
        await within(loop, "the scheduler loop stopping")

    run(scenario())


def test_metrics_count_dispatches_attempts_and_fire_lag(world: Make) -> None:
    from prometheus_client import REGISTRY

    from tickwork import metrics

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    async def scenario() -> None:
        w = await world()
        before = value("tickwork_dispatched_invocations_total")
        completed = value("tickwork_attempts_total", outcome="completed")
        lags = value("tickwork_fire_lag_seconds_count")
        w.trigger(run_at=T0 + timedelta(seconds=1))
        w.advance(1)
        await w.dispatch()
        await w.work()
        assert value("tickwork_dispatched_invocations_total") == before + 1
        assert value("tickwork_attempts_total", outcome="completed") == completed + 1
        assert value("tickwork_fire_lag_seconds_count") == lags + 1
        text = metrics.exposition(None)[0].decode()
        assert "# TYPE tickwork_fire_lag_seconds histogram" in text
        assert 'tickwork_attempts_total{outcome="completed"}' in text

    run(scenario())
