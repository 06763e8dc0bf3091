"""Containment (SPEC §9): the worst case, not the median.

1. Next fire instant over an adversarial corpus: expressions that only name wall times
   inside daylight-saving gaps (which never fire, and must be refused quickly), `L`, `#`
   and `W` combinations, rare days, and 6-field expressions firing every second inside a
   repeated hour, each in zones with DST changes, from starts around every change of two
   years. Reported: the slowest single call (target: at most 10 ms) and the 99th
   percentile.
2. Fair share: tenant A holds a backlog of 10,000 due invocations whose target is slow;
   tenant B runs a trigger now, again and again. Reported: how long B's run waits before
   its target is called (claim latency), with fair share on (the default) and off (one
   tenant may use the whole pool), in the same run.
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.engine import Env, fresh_database, pct
from tickwork.assembly import assemble
from tickwork.domain import schedule as sched
from tickwork.domain.ids import new_id
from tickwork.domain.trigger_spec import NextRuns
from tickwork.errors import InvalidSchedule
from tickwork.services import resources, tenants, triggers
from tickwork.storage.ports import NewInvocation
from tickwork.targets.base import TargetCall
from tickwork.targets.python import HandlerRegistry
from tickwork.testing import register_handlers

LIBRARIES = ("cronsim", "tzdata")
ZONES = ("America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "America/Santiago")
CORPUS = {
    "gap only (never fires)": ("*/1 2 * 3 0#2", "* 2 * 3 0#2", "*/5 2 * 3 0L", "* 2 * 10 0#1"),
    "L, # and W": ("0 2 L * *", "30 2 LW * *", "0 2 * * 5L", "15 2 * 3,10 0#2", "0 0 LW * 1"),
    "rare days": ("0 0 29 2 *", "* * 29 2 *", "0 2 31 12 *", "59 23 31 * 0"),
    "6 fields in repeated hours": ("* 0-59 1 * * *", "0-59 0-59 1 * * *", "*/7 * 2 * * *"),
    "seconds wildcard": ("* * * * * *", "*/13 * 2-3 * * *"),
}
# DST changes of two years in the zones above, found by probing (see _changes).
SPAN = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC))


def _changes(zone: str) -> list[datetime]:
    tz = sched.cron_schedule("* * * * *", zone).zone
    found = []
    t = SPAN[0]
    while t < SPAN[1]:
        if (t + timedelta(hours=6)).astimezone(tz).utcoffset() != t.astimezone(tz).utcoffset():
            found.append(t + timedelta(hours=3))
        t += timedelta(hours=6)
    return found


def _starts(zone: str, step: timedelta) -> list[datetime]:
    starts = []
    for change in _changes(zone):
        t = change - timedelta(hours=4)
        while t < change + timedelta(hours=4):
            starts.append(t)
            t += step
    return starts


def next_fire_worst(quick: bool) -> list[tuple[str, int, float, float, int]]:
    step = timedelta(minutes=17) if quick else timedelta(seconds=97)
    rows = []
    for kind, expressions in CORPUS.items():
        durations: list[float] = []
        refused = 0
        for expression in expressions:
            for zone in ZONES:
                schedule = sched.cron_schedule(expression, zone)
                next_runs = NextRuns  # the create path: refuses never-firing ones
                gc.disable()
                try:
                    for start in _starts(zone, step):
                        began = time.perf_counter()
                        try:
                            next_runs(start).of(schedule)
                        except InvalidSchedule:
                            refused += 1
                        durations.append(time.perf_counter() - began)
                finally:
                    gc.enable()
        rows.append((kind, len(durations), max(durations) * 1e3, pct(durations, 99) * 1e3, refused))
    return rows


# -- fair share ---------------------------------------------------------------------------


def _invocation_rows(
    trigger: Any, count: int, now: datetime, origin: str = "manual"
) -> list[NewInvocation]:
    rows = []
    for _ in range(count):
        inv_id = new_id("inv", now)
        rows.append(
            triggers.invocation_row(
                trigger,
                origin=origin,
                scheduled_for=now,
                key=f"manual:{trigger.id}:{inv_id}",
                now=now,
                invocation_id=inv_id,
            )
        )
    return rows


async def _claim_latency(env: Env, tenant_cap: int | None, backlog: int, runs: int) -> list[float]:
    ctx = env.ctx
    ctx.settings = ctx.settings.with_(worker_concurrency=10, tenant_concurrency=tenant_cap)
    for tenant in ("noisy", "quiet"):
        tenants.create_tenant(ctx, tenant)
        resources.put_project(ctx, tenant, "p", None, None)
        target = {"type": "python", "handler": f"{tenant}-agent"}
        register_handlers(ctx, [f"{tenant}-agent"], live_for=timedelta(hours=1))
        resources.put_agent(ctx, tenant, "p", "main", "bot", None, target)
    fields = {"name": "t", "cron_expression": "0 3 * * *"}
    noisy = triggers.create_trigger(ctx, "noisy", "p", "bot", fields)
    quiet = triggers.create_trigger(ctx, "quiet", "p", "bot", fields)
    now = ctx.clock.now()
    rows = _invocation_rows(noisy, backlog, now)
    for start in range(0, len(rows), 2000):
        with ctx.db.write() as tx:
            tx.insert_invocations(rows[start : start + 2000])

    release = asyncio.Event()
    started: dict[str, float] = {}
    arrived = asyncio.Event()

    async def slow(call: TargetCall) -> None:
        await release.wait()  # the noisy tenant's agent takes as long as the run lasts

    async def fast(call: TargetCall) -> None:
        started[call.invocation_id] = time.perf_counter()
        arrived.set()

    registry = HandlerRegistry()
    registry.register("noisy-agent", slow)
    registry.register("quiet-agent", fast)
    parts = assemble(ctx.settings, ctx.db, ("worker",), clock=ctx.clock, registry=registry)
    ctx, node = parts.ctx, parts.node
    await node.start()
    latencies: list[float] = []
    try:
        await asyncio.sleep(0.5)  # the pool fills with the noisy tenant's calls
        for _ in range(runs):
            arrived.clear()
            sent = time.perf_counter()
            inv = await asyncio.to_thread(triggers.run_now, ctx, "quiet", "p", "bot", quiet.id)
            try:
                await asyncio.wait_for(arrived.wait(), timeout=5.0)
                latencies.append(started[inv.id] - sent)
            except TimeoutError:
                latencies.append(float("inf"))
            await asyncio.sleep(0.05)
    finally:
        release.set()
        node.stop_event.set()
        assert node.workers is not None
        for _, task in list(node.workers.inflight.values()):
            task.cancel()
        await node.stop()
    return latencies


def fair_share(quick: bool) -> list[tuple[str, float, float, float, int]]:
    backlog = 1000 if quick else 10_000
    runs = 10 if quick else 50
    rows = []
    for label, cap in (("on (default: 8 of 10)", None), ("off (10 of 10)", 10)):
        with fresh_database(f"fair_{cap or 'default'}") as env:
            latencies = asyncio.run(_claim_latency(env, cap, backlog, runs))
        finite = [x for x in latencies if x != float("inf")]
        starved = len(latencies) - len(finite)
        rows.append(
            (
                label,
                statistics.median(finite) * 1e3 if finite else float("inf"),
                pct(finite, 99) * 1e3 if finite else float("inf"),
                max(finite) * 1e3 if finite else float("inf"),
                starved,
            )
        )
    return rows


def run(quick: bool) -> str:
    lines = [
        "## Containment: worst cases",
        "",
        "Next fire instant over an adversarial corpus (each call timed alone; zones "
        f"{', '.join(ZONES)}; starts every {'17 min' if quick else '97 s'} within 4 h of "
        "each DST change of 2026-2027). Target: the slowest call at most 10 ms.",
        "",
        "| expressions | calls | max ms | p99 ms | refused as never firing |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind, calls, worst, p99, refused in next_fire_worst(quick):
        lines.append(f"| {kind} | {calls} | {worst:.2f} | {p99:.3f} | {refused} |")
    backend = "PostgreSQL" if os.environ.get("BENCH_DATABASE_URL") else "SQLite"
    lines += [
        "",
        f"Fair share ({backend}): tenant A has {'1,000' if quick else '10,000'} due "
        "invocations whose agent never answers during the run; tenant B runs a trigger "
        "now, repeatedly. Time from B's run-now to its target being called, pool of 10.",
        "",
        "| fair share | p50 ms | p99 ms | max ms | runs not started within 5 s |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, p50, p99, worst, starved in fair_share(quick):
        lines.append(f"| {label} | {p50:.1f} | {p99:.1f} | {worst:.1f} | {starved} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run(quick=bool(os.environ.get("QUICK"))))
