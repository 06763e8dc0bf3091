"""Retention (SPEC §11): the database stays bounded, and pruning does not delay dispatch.

1. Size over a simulated month: per-minute triggers whose every slot ran (one completed
   invocation and its attempt per slot), written a simulated hour at a time through the
   store's tables, with a whole retention pass (:func:`tickwork.services.retention.prune`)
   after each simulated day, under the default retention (30 days, 10,000 invocations
   per trigger). Reported per day: rows kept, the database's size (SQLite: the file's
   pages in use; PostgreSQL: ``pg_database_size``) and the pass's time. A per-minute
   trigger reaches its 10,000 after 6.9 days: from then on the size must stay level.
2. Dispatch while pruning: all triggers due at once, dispatched by the scheduler's own
   batches (``dispatch_batch``, real clock) a number of times, with no pruning and with
   the pruner deleting a day's backlog in another thread at the same moment. Reported:
   each slot's fire lag (the end of the batch that created its invocation minus the
   pass's start) p50/p99, and the dispatch rate. Target: pruning raises p99 by no more
   than the 100 ms of the issue.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bench.engine import fresh_database, pct
from tickwork.domain.ids import new_id, schedule_key
from tickwork.services import dispatch, leadership, resources, retention
from tickwork.services.context import Context
from tickwork.storage import tables
from tickwork.testing import FakeClock, register_handlers

LIBRARIES = ("sqlalchemy",)
START = datetime(2026, 1, 1, tzinfo=UTC)
# Expired history (hours of every trigger's slots) waiting for the pruner at each pass.
BACKLOG_HOURS = 1


def _scale(quick: bool) -> tuple[int, int, int, int]:
    """(triggers of the month, simulated days, history_max_per_trigger, triggers due at
    once while pruning). ``BENCH_RETENTION_TRIGGERS`` runs the month with fewer triggers
    (the size scales with their number; the shape of the curve does not)."""
    if quick:
        return 50, 6, 2_000, 200
    triggers = int(os.environ.get("BENCH_RETENTION_TRIGGERS", "1000"))
    return triggers, 30, 10_000, 1000


def _make_triggers(ctx: Context, count: int, first: int = 0) -> list[str]:
    if count <= 0:
        return []
    register_handlers(ctx, ["noop"], live_for=timedelta(days=400))
    resources.put_agent(
        ctx, "bench", "p", "main", "noop", None, {"type": "python", "handler": "noop"}
    )
    ids = [new_id("trg", START) for _ in range(count)]
    rows = [
        {
            "id": trigger_id,
            "tenant_id": "bench",
            "project_id": "p",
            "ref": "main",
            "agent_id": "noop",
            "name": f"t{first + i}",
            "description": "",
            "enabled": True,
            "cron_expression": "* * * * *",
            "timezone": "UTC",
            "payload": {},
            "max_retries": 1,
            "retry_delay_seconds": 60,
            "timeout_seconds": 60,
            "catchup": "latest",
            "catchup_window_seconds": 3600,
            "overlap": "allow",
            "jitter_seconds": 0,
            "next_run_at": START,
            "slots_per_day": 1440,
            "created_at": START,
            "updated_at": START,
        }
        for i, trigger_id in enumerate(ids)
    ]
    with ctx.db.write() as tx:
        tx.conn.execute(tables.scheduled_triggers.insert(), rows)
    return ids


def _write_hour(ctx: Context, triggers: list[str], hour: datetime) -> None:
    """Every slot of one hour of every trigger, as run: completed, with its attempt."""
    invocations: list[dict[str, Any]] = []
    attempts: list[dict[str, Any]] = []
    for minute in range(60):
        slot = hour + timedelta(minutes=minute)
        done = slot + timedelta(seconds=2)
        for trigger_id in triggers:
            inv_id = new_id("inv", slot)
            invocations.append(
                {
                    "id": inv_id,
                    "trigger_id": trigger_id,
                    "trigger_name": "t",
                    "tenant_id": "bench",
                    "project_id": "p",
                    "ref": "main",
                    "agent_id": "noop",
                    "origin": "schedule",
                    "scheduled_for": slot,
                    "idempotency_key": schedule_key(trigger_id, slot),
                    "status": "completed",
                    "attempt": 1,
                    "not_before": slot,
                    "payload": {},
                    "message": "{}",
                    "result": {"ok": True},
                    "created_at": slot,
                    "started_at": slot,
                    "completed_at": done,
                }
            )
            attempts.append(
                {
                    "invocation_id": inv_id,
                    "attempt": 1,
                    "deployment_id": "dep_bench",
                    "worker_id": "w",
                    "started_at": slot,
                    "ended_at": done,
                    "outcome": "completed",
                }
            )
    with ctx.db.write() as tx:
        tx.conn.execute(tables.invocations.insert(), invocations)
        tx.conn.execute(tables.invocation_attempts.insert(), attempts)


def _size_bytes(ctx: Context) -> int:
    with ctx.db.read() as tx:
        if ctx.db.is_postgres:
            return int(
                tx.conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar_one()
            )
        pages = int(tx.conn.exec_driver_sql("PRAGMA page_count").scalar_one())
        free = int(tx.conn.exec_driver_sql("PRAGMA freelist_count").scalar_one())
        size = int(tx.conn.exec_driver_sql("PRAGMA page_size").scalar_one())
    return (pages - free) * size


def _rows(ctx: Context) -> int:
    with ctx.db.read() as tx:
        q = sa.select(sa.func.count()).select_from(tables.invocations)
        return int(tx.conn.execute(q).scalar_one())


def size_over_a_month(
    ctx: Context, triggers: list[str], days: int
) -> list[tuple[int, int, int, float]]:
    """(day, invocations kept, bytes, seconds of that day's retention pass) per day."""
    clock = ctx.clock
    assert isinstance(clock, FakeClock)
    daily = []
    for day in range(days):
        for hour in range(24):
            _write_hour(ctx, triggers, START + timedelta(days=day, hours=hour))
        clock.set(START + timedelta(days=day + 1))
        began = time.perf_counter()
        retention.prune(ctx, clock.now())
        took = time.perf_counter() - began
        daily.append((day + 1, _rows(ctx), _size_bytes(ctx), took))
        print(f"retention bench: day {daily[-1]}", file=sys.stderr, flush=True)
    return daily


def _dispatch_pass(ctx: Context, fence: leadership.Fence, now: datetime) -> tuple[list[float], int]:
    """Dispatch everything due at ``now`` in the scheduler's batches; each created slot's
    lag is the end of its batch minus the pass's start."""
    lags: list[float] = []
    began = time.perf_counter()
    while True:
        result = dispatch.dispatch_batch(ctx, now, ctx.settings.scheduler_batch_size, fence)
        lags += [time.perf_counter() - began] * result.created
        if not result.full_batch:
            return lags, result.created


def dispatch_while_pruning(
    ctx: Context, triggers: list[str], passes: int
) -> dict[str, tuple[float, float, float]]:
    """{"no pruning" | "pruning": (p50 ms, p99 ms, slots per second)}."""
    clock = ctx.clock
    assert isinstance(clock, FakeClock)
    fence = leadership.acquire(ctx, "run_bench", force=True)
    assert fence is not None
    out = {}
    backlogs = 0
    for label in ("no pruning", "pruning"):
        lags: list[float] = []
        created = 0
        wall = 0.0
        for _ in range(passes):
            # History past its retention waits for the pruner.
            base = clock.now()
            for _hour in range(BACKLOG_HOURS):
                backlogs += 1
                _write_hour(ctx, triggers, START - timedelta(days=1, hours=backlogs))
            now = base + timedelta(minutes=1)
            clock.set(now)
            with ctx.db.write() as tx:
                tx.conn.execute(
                    tables.scheduled_triggers.update().values(next_run_at=now, updated_at=now)
                )
            stop = threading.Event()
            pruner = threading.Thread(target=_prune_until, args=(ctx, now, stop))
            if label == "pruning":
                pruner.start()
            began = time.perf_counter()
            pass_lags, _ = _dispatch_pass(ctx, fence, now)
            wall += time.perf_counter() - began
            stop.set()
            if label == "pruning":
                pruner.join()
            else:
                retention.prune(ctx, now)
            lags += pass_lags
            created += len(pass_lags)
        out[label] = (pct(lags, 50) * 1000, pct(lags, 99) * 1000, created / wall)
    return out


def _prune_until(ctx: Context, now: datetime, stop: threading.Event) -> None:
    state = retention.PruneState()
    while not stop.is_set():
        if not retention.prune_step(ctx, state, now).more:
            state = retention.PruneState()


def run(quick: bool) -> str:
    count, days, keep, due = _scale(quick)
    backend = "PostgreSQL" if os.environ.get("BENCH_DATABASE_URL") else "SQLite"
    with fresh_database("retention") as env:
        ctx = env.ctx
        ctx.clock = FakeClock(START)
        ctx.settings = ctx.settings.with_(history_max_per_trigger=keep)
        triggers = _make_triggers(ctx, count)
        daily = size_over_a_month(ctx, triggers, days)
        triggers += _make_triggers(ctx, due - len(triggers), first=len(triggers))
        lag = dispatch_while_pruning(ctx, triggers[:due], 3 if quick else 5)
    shown = [d for d in daily if d[0] in (1, 2, 3, 5, 7, 8, 10, 14, 20, 25, 30) or d[0] == days]
    lines = [
        "## Retention: a bounded database",
        "",
        f"{backend}: {count:,} per-minute triggers, every slot run (one invocation and one "
        f"attempt each), a simulated {days} days written an hour at a time with a "
        "retention pass after each day; retention "
        f"{'as the defaults' if keep == 10_000 else f'of {keep:,} per trigger'} "
        "(30 days, at most "
        f"{keep:,} finished invocations per trigger, newest kept; batches of "
        f"{ctx.settings.retention_batch_size}).",
        "",
        "| day | invocations kept | database MiB | retention pass s |",
        "|---:|---:|---:|---:|",
    ]
    for day, rows, size, took in shown:
        lines.append(f"| {day} | {rows:,} | {size / 2**20:.1f} | {took:.1f} |")
    level = [size for day, _, size, _ in daily if day * 1440 > keep + 1440]
    if len(level) >= 2:
        growth = (max(level) - min(level)) / max(level) * 100
        lines += ["", f"Once every trigger holds its {keep:,}: size varies by {growth:.1f} %."]
    lines += [
        "",
        f"Dispatch of {due:,} triggers due at once (the scheduler's batches of "
        f"{ctx.settings.scheduler_batch_size}), with and without the pruner deleting an hour "
        "of every trigger's expired history in another thread at the same time:",
        "",
        "| | fire lag p50 ms | fire lag p99 ms | slots dispatched per s |",
        "|---|---:|---:|---:|",
    ]
    for label, (p50, p99, rate) in lag.items():
        lines.append(f"| {label} | {p50:.1f} | {p99:.1f} | {rate:,.0f} |")
    raised = lag["pruning"][1] - lag["no pruning"][1]
    lines += ["", f"Pruning raises the fire-lag p99 by {raised:.1f} ms (target: at most 100 ms)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run(quick=bool(os.environ.get("QUICK"))))
