"""tickwork's side of the comparison: the same workloads as the peers' scripts.

Run in tickwork's own venv, from the repository root:

    .venv/bin/python -m bench.peers.run_tickwork burst --db pg --n 10000

The scheduler and the worker pool run in this process (``Node``, as ``tickwork serve``
runs them, without the HTTP API), with the real clock, on a fresh database made by
``bench.engine.fresh_database``; the no-op body is a registered Python handler. Prints one
JSON document on the last line of stdout.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from bench import engine
from bench.peers import _common as c
from tickwork.clock import SystemClock
from tickwork.runtime.node import Node
from tickwork.runtime.notify import LocalNotifier
from tickwork.services import resources, tenants
from tickwork.services.context import Context
from tickwork.settings import Settings
from tickwork.storage import migrate
from tickwork.storage.engine import create_engine
from tickwork.storage.sql import Database
from tickwork.targets.base import TargetCall
from tickwork.targets.python import HandlerRegistry

AGENT = "noop"


def _use_backend(kind: str) -> None:
    # bench.engine reads BENCH_DATABASE_URL when it makes a database.
    if kind == "pg":
        os.environ["BENCH_DATABASE_URL"] = c.PG_BASE
    else:
        os.environ.pop("BENCH_DATABASE_URL", None)
    os.environ["BENCH_CONCURRENCY"] = str(c.CONCURRENCY)


def _ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def one_time_rows(slots: list[tuple[str, float]], now: datetime) -> list[dict[str, Any]]:
    rows = engine.trigger_rows(AGENT, [_ts(due) for _, due in slots], now)
    for row, (slot, _) in zip(rows, slots, strict=True):
        row["name"] = slot
    return rows


def cron_rows(n: int, first_after: float, now: datetime) -> list[dict[str, Any]]:
    """n six-field cron triggers, ``S * * * * *`` with S = i % 60."""
    rows = engine.trigger_rows(AGENT, [now] * n, now)
    base = int(first_after)
    for i, row in enumerate(rows):
        s = c.sustained_second(i)
        nxt = base - base % 60 + s
        while nxt < first_after:
            nxt += 60
        row.update(
            name=f"c{i}",
            cron_expression=f"{s} * * * * *",
            run_at=None,
            next_run_at=_ts(nxt),
            catchup="latest",
        )
    return rows


def registry_for(rec: c.Recorder, nominal: bool = False) -> HandlerRegistry:
    registry = HandlerRegistry()

    async def noop(call: TargetCall) -> None:
        await rec.body(call.trigger_name, call.scheduled_for.timestamp() if nominal else None)

    registry.register("noop", noop)
    return registry


def _prepare(env: engine.Env) -> None:
    engine.noop_agent(env.ctx, agent=AGENT)


async def _start(env: engine.Env, registry: HandlerRegistry) -> tuple[Node, LocalNotifier]:
    return await engine.run_node(env, registry)


async def _wait_count(ctx: Context, status: str, target: int, limit_s: float) -> float | None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if await asyncio.to_thread(engine.count, ctx, status) >= target:
            return time.time()
        await asyncio.sleep(0.05)
    return None


async def _warm_up(env: engine.Env, notifier: LocalNotifier, k: int) -> float:
    """Run ``k`` jobs due now before measuring; returns registrations per second."""
    now = datetime.now(UTC)
    rows = one_time_rows([(f"w{i}", time.time()) for i in range(k)], now)
    t0 = time.perf_counter()
    await asyncio.to_thread(engine.insert_triggers, env.ctx, rows)
    rate = k / max(time.perf_counter() - t0, 1e-6)
    notifier.triggers_changed()
    if await _wait_count(env.ctx, "completed", k, 60) is None:
        raise RuntimeError("warm-up did not complete")
    return rate


# -- workloads ------------------------------------------------------------------------------


def precision(args: Any) -> dict[str, Any]:
    wd = c.workdir(args)
    rec = c.Recorder(wd / "bodies.txt")

    async def main() -> dict[str, Any]:
        with engine.fresh_database("precision") as env:
            _prepare(env)
            node, notifier = await _start(env, registry_for(rec))
            try:
                await _warm_up(env, notifier, args.warmup)
                plan = c.precision_plan(args.n, args.spread, time.time() + args.lead)
                await asyncio.to_thread(
                    engine.insert_triggers, env.ctx, one_time_rows(plan, datetime.now(UTC))
                )
                notifier.triggers_changed()
                done = await _wait_count(
                    env.ctx, "completed", args.warmup + args.n, args.lead + args.spread + 60
                )
                if done is None:
                    raise RuntimeError("not every job ran")
            finally:
                await node.stop()
            due = dict(plan)
            lags = [r.started - due[r.slot] for r in c.read_records(rec.path) if r.slot in due]
            return {"lag": c.lag_summary(lags)}

    return asyncio.run(main())


def burst(args: Any) -> dict[str, Any]:
    wd = c.workdir(args)
    rec = c.Recorder(wd / "bodies.txt")

    async def main() -> dict[str, Any]:
        with engine.fresh_database("burst") as env:
            _prepare(env)
            node, notifier = await _start(env, registry_for(rec))
            try:
                rate = await _warm_up(env, notifier, args.warmup)
                due = c.burst_due(rate, args.n, margin=2.0)
                plan = [(f"b{i}", due) for i in range(args.n)]
                t0 = time.perf_counter()
                await asyncio.to_thread(
                    engine.insert_triggers, env.ctx, one_time_rows(plan, datetime.now(UTC))
                )
                register_s = time.perf_counter() - t0
                notifier.triggers_changed()
                overran = max(0.0, time.time() - due)
                done = await _wait_count(env.ctx, "completed", args.warmup + args.n, args.timeout)
                if done is None:
                    raise RuntimeError("the burst did not complete in time")
            finally:
                await node.stop()
            starts = [r.started for r in c.read_records(rec.path) if r.slot.startswith("b")]
            return {
                "n": args.n,
                "register_s": register_s,
                "registration_overran_s": overran,
                "all_started_s": max(starts) - due,
                "all_completed_s": done - due,
                "completed_per_s": args.n / (done - due),
                "bodies": len(starts),
            }

    return asyncio.run(main())


def sustained(args: Any) -> dict[str, Any]:
    wd = c.workdir(args)
    rec = c.Recorder(wd / "bodies.txt")

    async def main() -> dict[str, Any]:
        with engine.fresh_database("sustained") as env:
            _prepare(env)
            node, notifier = await _start(env, registry_for(rec, nominal=True))
            try:
                await _warm_up(env, notifier, args.warmup)
                t0 = time.perf_counter()
                start = float(int(time.time() + args.lead))
                await asyncio.to_thread(
                    engine.insert_triggers, env.ctx, cron_rows(args.n, start, datetime.now(UTC))
                )
                register_s = time.perf_counter() - t0
                notifier.triggers_changed()
                window = (start, start + args.window)
                await asyncio.sleep(max(0.0, window[1] - time.time()))
                expected = c.expected_sustained(args.n, window)
                # Grace: let the slots of the window that are still queued run.
                grace_end = time.monotonic() + 30
                while time.monotonic() < grace_end:
                    report = c.sustained_report(rec.path, args.n, window)
                    if report["ran"] >= expected:
                        break
                    await asyncio.sleep(0.5)
            finally:
                await node.stop()
            return {"register_s": register_s, **c.sustained_report(rec.path, args.n, window)}

    return asyncio.run(main())


def scale(args: Any) -> dict[str, Any]:
    wd = c.workdir(args)
    with engine.fresh_database("scale") as env:
        _prepare(env)
        far = time.time() + 365 * 86400
        t0 = time.perf_counter()
        batch = 50_000
        now = datetime.now(UTC)
        for start in range(0, args.n, batch):
            size = min(batch, args.n - start)
            plan = [(f"s{start + i}", far + start + i) for i in range(size)]
            engine.insert_triggers(env.ctx, one_time_rows(plan, now), chunk=batch)
        register_s = time.perf_counter() - t0
        # The scheduling process is a real `tickwork serve` started over the stored
        # schedules (the registering process above is a client).
        idle = engine.serve_rss(env.url, wd, seconds=args.idle)
    return {
        "n": args.n,
        "register_s": register_s,
        "register_per_s": args.n / register_s if register_s else None,
        "rss_mb": idle["serve_rss_mb"],
        "idle_cpu_percent": idle["idle_cpu_percent"],
        "process": "tickwork serve (API + scheduler + workers)",
    }


# -- restart: the process is killed by the caller and started again ---------------------------


def _open(url: str) -> Context:
    settings = Settings(
        database_url=url,
        # Both runs of the restart workload are the same code: one deployment.
        deployment_id="dep_bench",
        version="bench",
        worker_concurrency=c.CONCURRENCY,
        allow_private_targets=True,
    )
    return Context(Database(create_engine(url)), SystemClock(), settings)


def restart_serve(args: Any) -> dict[str, Any]:
    wd = c.workdir(args)
    rec = c.Recorder(wd / "bodies.txt")
    url = c.pg_url_for(args.name) if args.db == "pg" else f"sqlite:///{wd / args.name}.db"
    if args.register:
        if args.db == "pg":
            c.create_pg_db(args.name)
        ctx = _open(url)
        migrate.upgrade(ctx.db.engine)
        tenants.create_tenant(ctx, "bench")
        resources.put_project(ctx, "bench", "p", None, None)
        env = engine.Env(ctx, url, wd)
        _prepare(env)
    else:
        ctx = _open(url)
        env = engine.Env(ctx, url, wd)

    async def main() -> dict[str, Any]:
        node, notifier = await _start(env, registry_for(rec))
        started = time.time()
        try:
            if args.register:
                rate = await _warm_up(env, notifier, args.warmup)
                due = c.burst_due(rate, args.n, margin=2.0)
                plan = [(f"b{i}", due) for i in range(args.n)]
                await asyncio.to_thread(
                    engine.insert_triggers, ctx, one_time_rows(plan, datetime.now(UTC))
                )
                notifier.triggers_changed()
                c.log(f"registered; due at {due:.3f}")
            done = await _wait_count(ctx, "completed", args.warmup + args.n, args.timeout)
        finally:
            await node.stop()
            ctx.db.dispose()
        return {"completed": done is not None, "seconds": time.time() - started}

    return asyncio.run(main())


def main(argv: list[str] | None = None) -> int:
    args = c.parser("run_tickwork").parse_args(argv)
    _use_backend(args.db)
    fn = {
        "precision": precision,
        "burst": burst,
        "sustained": sustained,
        "scale": scale,
        "restart-serve": restart_serve,
    }[args.workload]
    result = fn(args)
    result["system"] = "tickwork"
    result["db"] = args.db
    c.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
