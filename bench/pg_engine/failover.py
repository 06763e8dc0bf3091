"""Section 3, failover and hand-over of the scheduler between two processes."""

from __future__ import annotations

import functools
import os
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.pg_engine.common import (
    ADMIN_TOKEN,
    DEPLOY_SECRET,
    log,
    open_ctx,
    prepare_schema,
    sql_scalar,
    throwaway_db,
)
from bench.pg_engine.serving import Serve, http, start_serve, wait_for, wait_ready

# -- 3. failover and hand-over -----------------------------------------------------------


def _scheduler_state(serve: Serve) -> dict[str, Any]:
    doc = http("GET", f"http://127.0.0.1:{serve.port}/api/v1/system/scheduler", ADMIN_TOKEN)
    return dict(doc["scheduler"])


def _recent(serve: Serve, event: str, seconds: float) -> Callable[[], list[float]]:
    """A check: the log lines with this event in the last ``seconds``."""
    return lambda: serve.events(event, time.time() - seconds)


def _first_dispatch(serve: Serve, after: float, timeout: float) -> float:
    def found() -> float | None:
        events = serve.events("dispatch batch", after)
        return min(events) if events else None

    return float(wait_for(found, timeout, 0.05))


def failover_run(
    lease: float, reps: int, handovers: int, logdir: Path
) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    name = f"tw_bench_failover_{os.getpid()}"
    failovers: list[dict[str, float]] = []
    restarts: list[dict[str, float]] = []
    with throwaway_db(name) as url:
        prepare_schema(url)
        # One per-second trigger, created through the service (next_run_at computed).
        ctx = open_ctx(url)
        try:
            from tickwork.services import triggers as trigger_service

            trigger_service.create_trigger(
                ctx,
                "bench",
                "p",
                "noop",
                {"name": "every-second", "cron_expression": "* * * * * *"},
                created_by="bench",
            )
        finally:
            ctx.db.dispose()
        env = {
            "TICKWORK_DEPLOYMENT_ID": "dep_bench_failover",
            "TICKWORK_ADMIN_TOKEN": ADMIN_TOKEN,
            "TICKWORK_DEPLOY_SECRET": DEPLOY_SECRET,
            "TICKWORK_SCHEDULER_LEASE_SECONDS": f"{lease:g}",
        }
        counter = 0

        def spawn() -> Serve:
            nonlocal counter
            counter += 1
            tag = f"sched_lease{lease:g}_{counter}"
            s = start_serve(url, ("scheduler", "api"), logdir, tag, env, api=True)
            wait_ready(s)
            return s

        procs: list[Serve] = []
        try:
            active = spawn()
            procs.append(active)
            wait_for(lambda: active.events("scheduler active"), 30)
            standby = spawn()
            procs.append(standby)
            for _ in range(reps):
                # The active one has dispatched for a while; the kill lands at a random
                # point of its per-second rhythm.
                wait_for(_recent(active, "dispatch batch", 1.5), 30)
                time.sleep(random.uniform(1.0, 2.0))
                before = _scheduler_state(standby)["run_id"]
                killed_at = time.time()
                active.kill9()
                took = wait_for(
                    functools.partial(standby.events, "scheduler active", killed_at),
                    lease * 3 + 30,
                )
                first = _first_dispatch(standby, killed_at, 30)
                state = _scheduler_state(standby)
                if state["run_id"] == before or not state["active"]:
                    raise RuntimeError(f"failover: the run id did not change ({state})")
                missed = sql_scalar(
                    url,
                    "SELECT count(*) FROM invocations WHERE status = 'missed' "
                    "AND created_at >= to_timestamp(%s)",
                    (killed_at,),
                )
                failovers.append(
                    {
                        "lease": lease,
                        "takeover_s": min(took) - killed_at,
                        "first_dispatch_s": first - killed_at,
                        "missed": float(missed or 0),
                    }
                )
                log(
                    f"failover lease={lease:g}: takeover {min(took) - killed_at:.2f} s, "
                    f"first dispatch {first - killed_at:.2f} s, {missed} slots missed"
                )
                active, standby = standby, spawn()
                procs.append(standby)
            for _ in range(handovers):
                wait_for(_recent(active, "dispatch batch", 1.5), 30)
                time.sleep(random.uniform(1.0, 2.0))
                before = _scheduler_state(standby)["run_id"]
                t_req = time.time()
                answer = http(
                    "POST",
                    f"http://127.0.0.1:{standby.port}/api/deploy/restart-scheduler",
                    DEPLOY_SECRET,
                )
                t_resp = time.time()
                if answer["previous_run_id"] != before:
                    raise RuntimeError(f"hand-over: unexpected answer {answer}")
                first = _first_dispatch(standby, t_req, 30)
                superseded = wait_for(
                    functools.partial(active.events, "scheduler superseded; standing by", t_req),
                    30,
                )
                gap = sql_scalar(
                    url,
                    "SELECT count(*) FROM invocations WHERE status = 'missed' "
                    "AND created_at >= to_timestamp(%s)",
                    (t_req,),
                )
                lag = sql_scalar(
                    url,
                    "SELECT extract(epoch FROM created_at - scheduled_for) FROM invocations "
                    "WHERE created_at >= to_timestamp(%s) ORDER BY created_at LIMIT 1",
                    (t_req,),
                )
                restarts.append(
                    {
                        "lease": lease,
                        "call_s": t_resp - t_req,
                        "first_dispatch_s": first - t_req,
                        "slot_lag_s": float(lag or 0),
                        "old_stood_down_s": min(superseded) - t_req,
                        "missed": float(gap or 0),
                    }
                )
                log(
                    f"hand-over: call {t_resp - t_req:.3f} s, first dispatch by new run "
                    f"{first - t_req:.3f} s (slot lag {float(lag or 0) * 1000:.0f} ms)"
                )
                active, standby = standby, active
            dups = sql_scalar(
                url,
                "SELECT count(*) FROM (SELECT scheduled_for FROM invocations "
                "GROUP BY scheduled_for HAVING count(*) > 1) d",
            )
            if dups:
                raise RuntimeError(f"{dups} slots dispatched twice")
        finally:
            for p in procs:
                p.stop()
    return failovers, restarts


def failover_report(fails: list[dict[str, float]], restarts: list[dict[str, float]]) -> list[str]:
    lines = [
        "### 3. Scheduler failover and hand-over",
        "",
        "Two `tickwork serve --role scheduler --role api` processes of one deployment and "
        "one per-second trigger (`* * * * * *`, catch-up `latest`). *Failover*: kill -9 the "
        "active one; *takeover* is its `scheduler active` log line in the standby, *first "
        "dispatch* the standby's first `dispatch batch` (its new run id is then checked "
        "with `GET /api/v1/system/scheduler`); slots that came due meanwhile are recorded "
        "`missed` (catch-up `latest` runs only the newest). A new standby is started after "
        "each kill. Medians (min–max) over the repetitions.",
        "",
        "| lease | repetitions | kill → takeover | kill → first dispatch | slots missed |",
        "|---:|---:|---:|---:|---:|",
    ]

    def cell(values: list[float], fmt: str = "{:.2f} s") -> str:
        if len(values) == 1:
            return fmt.format(values[0])
        return (
            f"{fmt.format(statistics.median(values))} "
            f"({fmt.format(min(values))}–{fmt.format(max(values))})"
        )

    for lease in sorted({f["lease"] for f in fails}, reverse=True):
        group = [f for f in fails if f["lease"] == lease]
        lines.append(
            f"| {lease:g} s | {len(group)} | {cell([g['takeover_s'] for g in group])} | "
            f"{cell([g['first_dispatch_s'] for g in group])} | "
            f"{cell([g['missed'] for g in group], '{:.0f}')} |"
        )
    if restarts:
        lines += [
            "",
            "*Hand-over*: `POST /api/deploy/restart-scheduler` to the standby. *call* is the "
            "request's round trip (the new run id holds the lease when it answers); *first "
            "dispatch* runs from the call to the new run's first `dispatch batch` — the "
            "per-second trigger's next slot, so up to 1 s of it is waiting for the slot; "
            "*slot lag* is that invocation's `created_at − scheduled_for`; *old stands "
            "down* is the old run's `scheduler superseded` line.",
            "",
            "| repetitions | call | call → first dispatch | slot lag | old stands down "
            "| slots missed |",
            "|---:|---:|---:|---:|---:|---:|",
            f"| {len(restarts)} | {cell([r['call_s'] * 1000 for r in restarts], '{:.0f} ms')} "
            f"| {cell([r['first_dispatch_s'] for r in restarts], '{:.2f} s')} "
            f"| {cell([r['slot_lag_s'] * 1000 for r in restarts], '{:.0f} ms')} "
            f"| {cell([r['old_stood_down_s'] for r in restarts], '{:.2f} s')} "
            f"| {cell([r['missed'] for r in restarts], '{:.0f}')} |",
        ]
    lines.append("")
    return lines
