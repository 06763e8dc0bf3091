"""Retention (SPEC §11): finished history goes by age and by count per trigger, in
bounded batches; nothing pending or running goes, nor what ``last_run`` and the run
context read; the database stays bounded under a per-second trigger for a month."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests import rows
from tests.conftest import ON_POSTGRES
from tickwork import metrics
from tickwork.domain.ids import new_id, schedule_key
from tickwork.services import audit, resources, retention, tenants, triggers
from tickwork.services.context import Context
from tickwork.storage import tables
from tickwork.storage.records import COMPLETED, FAILED, PENDING, RUNNING, Trigger
from tickwork.storage.sql.retention import RetentionSql
from tickwork.testing import FakeClock, register_handlers

DAY = timedelta(days=1)


@pytest.fixture
def trigger(ctx: Context) -> Trigger:
    register_handlers(ctx, ["h"])
    tenants.create_tenant(ctx, "acme")
    resources.put_project(ctx, "acme", "proj", None, None)
    resources.put_agent(
        ctx, "acme", "proj", "main", "bot", None, {"type": "python", "handler": "h"}
    )
    return triggers.create_trigger(
        ctx, "acme", "proj", "bot", {"name": "every second", "cron_expression": "* * * * * *"}
    )


def insert_history(
    ctx: Context,
    trigger: Trigger,
    slots: Iterable[datetime],
    *,
    status: str = COMPLETED,
    attempts: bool = True,
) -> list[str]:
    """Invocations of ``trigger`` for these slots, each finished one second after its
    slot (or left pending/running), with one attempt each; written in one statement."""
    history: list[dict[str, Any]] = []
    tries: list[dict[str, Any]] = []
    for slot in slots:
        inv_id = new_id("inv", slot)
        finished = status not in (PENDING, RUNNING)
        ended = slot + timedelta(seconds=1) if finished else None
        history.append(
            rows.invocation_of(
                trigger,
                inv_id,
                scheduled_for=slot,
                idempotency_key=schedule_key(trigger.id, slot),
                status=status,
                attempt=1,
                not_before=slot,
                payload={},
                created_at=slot,
                started_at=slot,
                completed_at=ended,
            )
        )
        if attempts:
            tries.append(
                rows.attempt_columns(
                    inv_id, started_at=slot, ended_at=ended, outcome=status if finished else None
                )
            )
    with ctx.db.write() as tx:
        tx.conn.execute(tables.invocations.insert(), history)
        if tries:
            tx.conn.execute(tables.invocation_attempts.insert(), tries)
    return [r["id"] for r in history]


def count(ctx: Context, table: sa.Table) -> int:
    with ctx.db.read() as tx:
        return int(tx.conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def ids_of(ctx: Context) -> set[str]:
    with ctx.db.read() as tx:
        return {str(r[0]) for r in tx.conn.execute(sa.select(tables.invocations.c.id))}


def seconds(start: datetime, n: int, step: float = 1) -> list[datetime]:
    return [start + timedelta(seconds=i * step) for i in range(n)]


def test_a_month_of_a_per_second_trigger_stays_at_its_limit(
    ctx: Context, clock: FakeClock, trigger: Trigger
) -> None:
    # A per-second trigger writes 86,400 invocations a day. Kept: the newest 200. The
    # month is simulated in 12-hour windows; of each window only its newest 250 slots
    # are written, since count retention deletes every older one of them anyway (the
    # end state is the same, and the test stays fast).
    ctx.settings = ctx.settings.with_(retention_batch_size=100)
    retention.put_retention(ctx, "acme", "proj", {"history_max_per_trigger": 200})
    start = clock.now()
    sizes = []
    for window in range(2 * 31):
        end = start + timedelta(hours=12 * (window + 1))
        insert_history(ctx, trigger, seconds(end - timedelta(seconds=250), 250))
        clock.set(end)
        retention.prune(ctx, clock.now())
        sizes.append((count(ctx, tables.invocations), count(ctx, tables.invocation_attempts)))
    assert set(sizes) == {(200, 200)}
    with ctx.db.read() as tx:
        newest = tx.list_invocations("acme", "proj", limit=200)
    # The newest are the ones kept: the last 200 seconds of the month.
    assert min(i.scheduled_for for i in newest) == clock.now() - timedelta(seconds=200)


def test_finished_history_older_than_the_retention_goes_with_its_attempts(
    ctx: Context, clock: FakeClock, trigger: Trigger
) -> None:
    now = clock.now()
    old = insert_history(ctx, trigger, seconds(now - 40 * DAY, 50, step=60))
    recent = insert_history(ctx, trigger, seconds(now - 10 * DAY, 50, step=60))
    result = retention.prune(ctx, now)
    assert (result.invocations, result.attempts) == (50, 50)
    assert ids_of(ctx) == set(recent)
    assert count(ctx, tables.invocation_attempts) == 50
    assert not set(old) & ids_of(ctx)


def test_a_project_override_shortens_or_lengthens_the_retention(
    ctx: Context, clock: FakeClock, trigger: Trigger
) -> None:
    now = clock.now()
    insert_history(ctx, trigger, seconds(now - 40 * DAY, 10, step=60))
    mid = insert_history(ctx, trigger, seconds(now - 5 * DAY, 10, step=60))
    latest = insert_history(ctx, trigger, seconds(now - DAY / 2, 10, step=60))
    retention.put_retention(ctx, "acme", "proj", {"history_retention_days": 60})
    assert retention.prune(ctx, now).invocations == 0
    retention.put_retention(ctx, "acme", "proj", {"history_retention_days": 2})
    assert retention.prune(ctx, now).invocations == 20
    assert ids_of(ctx) == set(latest)
    assert not set(mid) & ids_of(ctx)
    # Back to the default (30 days): nothing more to delete.
    retention.put_retention(ctx, "acme", "proj", {"history_retention_days": None})
    assert retention.prune(ctx, now).invocations == 0


def test_pending_and_running_invocations_are_never_pruned_however_old(
    ctx: Context, clock: FakeClock, trigger: Trigger
) -> None:
    now = clock.now()
    retention.put_retention(
        ctx, "acme", "proj", {"history_retention_days": 1, "history_max_per_trigger": 1}
    )
    pending = insert_history(ctx, trigger, seconds(now - 90 * DAY, 5), status=PENDING)
    running = insert_history(ctx, trigger, seconds(now - 80 * DAY, 5), status=RUNNING)
    finished = insert_history(ctx, trigger, seconds(now - 70 * DAY, 5), status=FAILED)
    retention.prune(ctx, now)
    kept = ids_of(ctx)
    assert set(pending) | set(running) <= kept
    # Of the finished ones only the last run survives (what last_run shows).
    assert kept - set(pending) - set(running) == {finished[-1]}


def test_the_last_run_and_the_latest_completed_run_are_kept_whatever_their_age(
    ctx: Context, clock: FakeClock, trigger: Trigger
) -> None:
    now = clock.now()
    completed = insert_history(ctx, trigger, seconds(now - 60 * DAY, 3))
    failed = insert_history(ctx, trigger, seconds(now - 50 * DAY, 3), status=FAILED)
    with ctx.db.read() as tx:
        before_last = tx.last_runs([trigger.id])[trigger.id].id
        before_previous = tx.previous_runs([trigger.id])[trigger.id].id
    retention.prune(ctx, now)
    assert ids_of(ctx) == {completed[-1], failed[-1]}
    with ctx.db.read() as tx:
        assert tx.last_runs([trigger.id])[trigger.id].id == before_last == failed[-1]
        assert tx.previous_runs([trigger.id])[trigger.id].id == before_previous
    # Once the trigger is gone, nothing of its history is needed any more.
    triggers.delete_trigger(ctx, "acme", "proj", "bot", trigger.id)
    retention.prune(ctx, now)
    assert ids_of(ctx) == set()


def test_count_retention_keeps_the_newest_of_each_trigger(
    ctx: Context, clock: FakeClock, trigger: Trigger
) -> None:
    other = triggers.create_trigger(
        ctx, "acme", "proj", "bot", {"name": "other", "cron_expression": "* * * * *"}
    )
    ctx.settings = ctx.settings.with_(history_max_per_trigger=30, retention_batch_size=7)
    now = clock.now()
    mine = insert_history(ctx, trigger, seconds(now - timedelta(hours=1), 100))
    theirs = insert_history(ctx, other, seconds(now - timedelta(hours=2), 20, step=60))
    result = retention.prune(ctx, now)
    assert result.invocations == 70
    assert ids_of(ctx) == set(mine[-30:]) | set(theirs)


def test_a_pass_probes_only_triggers_with_history_and_goes_past_deleted_ones(
    ctx: Context, clock: FakeClock, trigger: Trigger, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A page of deleted triggers' history (kept by age alone) comes before the trigger
    # over its limit; 300 triggers without history are never looked at.
    ctx.settings = ctx.settings.with_(history_max_per_trigger=5, retention_batch_size=50)
    now = clock.now()
    waiting = [
        triggers.create_trigger(
            ctx, "acme", "proj", "bot", {"name": f"later {i}", "run_at": now + timedelta(days=9)}
        )
        for i in range(3)
    ]
    with ctx.db.write() as tx:
        template = tx.get_trigger(waiting[0].id)
        assert template is not None
        for i in range(300):
            tx.insert_trigger(replace(template, id=f"trg_00_{i:04d}", name=f"idle {i}"))
    gone = [replace(trigger, id=f"trg_00_gone_{i:03d}") for i in range(120)]
    orphans = [inv for g in gone for inv in insert_history(ctx, g, seconds(now - DAY, 8, step=60))]
    mine = insert_history(ctx, trigger, seconds(now - timedelta(hours=1), 20))
    probed: list[str] = []
    probe = RetentionSql.history_boundary

    def spy(self: RetentionSql, trigger_id: str, keep: int) -> datetime | None:
        probed.append(trigger_id)
        return probe(self, trigger_id, keep)

    monkeypatch.setattr(RetentionSql, "history_boundary", spy)
    result = retention.prune(ctx, now)
    assert result.invocations == 15
    assert ids_of(ctx) == set(orphans) | set(mine[-5:])
    assert set(probed) == {trigger.id}


def test_audit_events_are_kept_like_history(
    ctx: Context, clock: FakeClock, trigger: Trigger
) -> None:
    start = clock.now()
    with ctx.db.read() as tx:
        made = len(tx.list_audit("acme", None, None, 200))
    assert made >= 4  # tenant, project, agent, trigger
    clock.advance(days=20)
    triggers.update_trigger(ctx, "acme", "proj", "bot", trigger.id, {"description": "later"})
    clock.advance(days=15)
    result = retention.prune(ctx, clock.now())
    assert result.audit_events == made
    with ctx.db.read() as tx:
        left = tx.list_audit("acme", None, None, 200)
    assert [e.action for e in left] == ["trigger.update"]
    assert left[0].at == start + timedelta(days=20)


def test_pruning_is_counted_and_the_oldest_retained_row_reported(
    ctx: Context, clock: FakeClock, trigger: Trigger
) -> None:
    now = clock.now()
    insert_history(ctx, trigger, seconds(now - 40 * DAY, 4))
    insert_history(ctx, trigger, seconds(now - 3 * DAY, 4))
    pruned = metrics.pruned.labels(table="invocations")
    before = pruned._value.get()
    retention.prune(ctx, now)
    assert pruned._value.get() - before == 4
    age = metrics.oldest_retained.labels(table="invocations")._value.get()
    assert age == pytest.approx((3 * DAY - timedelta(seconds=1)).total_seconds())


def test_retention_settings_are_checked() -> None:
    from tickwork.errors import ValidationError

    for bad in ({"history_retention_days": 0}, {"history_max_per_trigger": "10"}, {"x": 1}):
        with pytest.raises(ValidationError):
            retention.check_values(bad)


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite's file; PostgreSQL's autovacuum does this")
def test_a_new_sqlite_file_gives_pruned_pages_back(
    ctx: Context, clock: FakeClock, trigger: Trigger, database_url: str
) -> None:
    path = Path(sa.make_url(database_url).database or "")
    now = clock.now()
    with ctx.db.read() as tx:
        assert tx.conn.exec_driver_sql("PRAGMA auto_vacuum").scalar_one() == 2
    insert_history(ctx, trigger, seconds(now - 40 * DAY, 5_000))
    grown = file_size(ctx, path)
    retention.prune(ctx, now)
    with ctx.db.read() as tx:
        assert tx.conn.exec_driver_sql("PRAGMA freelist_count").scalar_one() == 0
    assert file_size(ctx, path) < grown / 2


def file_size(ctx: Context, path: Path) -> int:
    """The database file's size once the write-ahead log is folded into it."""
    ctx.db.engine.dispose()  # no pooled connection holds a read snapshot
    raw = ctx.db.engine.raw_connection()
    try:
        raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
    finally:
        raw.close()
    return path.stat().st_size


def test_changes_outside_a_request_are_made_by_tickwork(ctx: Context, trigger: Trigger) -> None:
    with ctx.db.read() as tx:
        events = tx.list_audit("acme", "proj", None, 10)
    assert {e.actor for e in events} == {audit.SYSTEM}
    with audit.acting_as("api-key:key_x"):
        triggers.update_trigger(ctx, "acme", "proj", "bot", trigger.id, {"description": "x"})
    with ctx.db.read() as tx:
        assert tx.list_audit("acme", "proj", None, 1)[0].actor == "api-key:key_x"
