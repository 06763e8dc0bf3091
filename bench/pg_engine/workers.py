"""Section 2, worker throughput: two worker processes drain a burst of pending invocations."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench.pg_engine.common import (
    _busy_percent,
    _cpu_seconds,
    _libpq,
    _machine_busy,
    prepare_schema,
    seed_triggers,
    sql_scalar,
    throwaway_db,
)
from bench.pg_engine.dispatching import BackendCpu
from bench.pg_engine.serving import start_serve, wait_for, wait_ready

# -- 2. worker throughput ----------------------------------------------------------------

_INVOCATION_INSERT = """
INSERT INTO invocations (
    id, trigger_id, trigger_name, tenant_id, project_id, ref, agent_id, origin,
    scheduled_for, idempotency_key, status, attempt, not_before, payload, created_at)
SELECT 'inv_' || lpad(to_hex(i), 26, '0'), 'trg_' || lpad(to_hex(i), 26, '0'), 't' || i,
    'bench', 'p', 'main', 'noop', 'schedule', %(at)s,
    'sched:trg_' || lpad(to_hex(i), 26, '0') || ':' || %(at_text)s, 'pending', 0, %(at)s,
    jsonb_build_object('i', i), %(at)s
FROM generate_series(0, %(n)s - 1) AS i
"""


def workers_run(n: int, concurrency: int, logdir: Path) -> dict[str, Any]:
    name = f"tw_bench_workers_{os.getpid()}"
    with throwaway_db(name) as url:
        prepare_schema(url)
        at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
        seed_triggers(url, n, start=at, step=timedelta(0), next_null=True)
        env = {
            "TICKWORK_DEPLOYMENT_ID": "dep_bench_workers",
            "TICKWORK_WORKER_CONCURRENCY": str(concurrency),
        }
        procs = [
            start_serve(
                url, ("worker",), logdir, f"worker{i}_c{concurrency}", env, "bench.noop_app"
            )
            for i in range(2)
        ]
        try:
            for p in procs:
                wait_ready(p)
            # Both listeners are connected: the NOTIFY below wakes them at once.
            wait_for(
                lambda: sql_scalar(
                    url,
                    "SELECT count(*) >= 2 FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query = 'LISTEN tickwork'",
                ),
                20,
            )
            time.sleep(0.5)
            with psycopg.connect(_libpq(url)) as conn:
                probe = BackendCpu(url, exclude=(conn.info.backend_pid,))
                conn.execute(
                    _INVOCATION_INSERT,
                    {"n": n, "at": at, "at_text": at.strftime("%Y-%m-%dT%H:%M:%SZ")},
                )
                conn.commit()
                t0 = time.time()
                probe.begin()
                cpu0 = [_cpu_seconds(p.pid) for p in procs]
                busy0 = _machine_busy()
                conn.autocommit = True
                conn.execute("SELECT pg_notify('tickwork', 'i')")
                with conn.cursor() as cur:
                    deadline = time.monotonic() + 600
                    while time.monotonic() < deadline:
                        cur.execute(
                            "SELECT count(*) FROM invocations "
                            "WHERE status IN ('pending', 'running')"
                        )
                        row = cur.fetchone()
                        assert row is not None
                        if row[0] == 0:
                            break
                        time.sleep(0.05)
                    else:
                        raise RuntimeError("the invocations did not complete in time")
                t1 = time.time()
                busy1 = _machine_busy()
                cpu1 = [_cpu_seconds(p.pid) for p in procs]
                server_cpu = probe.end()
                probe.close()
                row = conn.execute(
                    "SELECT count(*) FILTER (WHERE status = 'completed'), "
                    "count(DISTINCT deployment_id), "
                    "(SELECT count(*) FROM invocation_attempts), "
                    "count(DISTINCT split_part(lease_owner, '/', 2)) "
                    "FROM invocations"
                ).fetchone()
                per_worker = conn.execute(
                    "SELECT worker_id, count(*) FROM invocation_attempts GROUP BY worker_id"
                ).fetchall()
            assert row is not None
            completed, _, attempts, _ = row
            if completed != n or attempts != n:
                raise RuntimeError(f"workers: {completed} completed, {attempts} attempts of {n}")
        finally:
            for p in procs:
                p.stop()
    secs = t1 - t0
    shares = sorted(int(c) for _, c in per_worker)
    return {
        "n": n,
        "concurrency": concurrency,
        "seconds": secs,
        "rate": n / secs,
        "worker_cpu_s": sum(b - a for a, b in zip(cpu0, cpu1, strict=True)),
        "server_cpu_s": server_cpu,
        "machine_busy": _busy_percent(busy0, busy1),
        "split": "/".join(str(s) for s in shares),
    }


def workers_report(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "### 2. Completed invocations per second — two worker processes",
        "",
        "Two `tickwork serve --role worker --app bench.noop_app` processes (one "
        "deployment; async no-op handler; default logging, INFO, JSON to a file). The "
        "pending invocations are inserted in one transaction and announced with `NOTIFY`; "
        "the time runs from that commit until none is pending or running. *worker CPU* is "
        "both processes' user+system time per invocation, *server CPU* that of the "
        "PostgreSQL backends serving them; *CPU ceiling* = 2 cores / (worker + server CPU "
        "per invocation), the rate on an otherwise idle machine; *machine busy* is the "
        "share of both cores in use by anything (PostgreSQL, the workers, other users of "
        "the machine). Target: ≥ 2,000 completed/s.",
        "",
        "| invocations | concurrency / process | time | completed/s | ÷ 2,000/s "
        "| worker CPU | server CPU | CPU ceiling | machine busy | attempts per process |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['n']:,} | {r['concurrency']} | {r['seconds']:.2f} s | {r['rate']:,.0f} | "
            f"{r['rate'] / 2000:.2f}× | {r['worker_cpu_s'] / r['n'] * 1e6:.0f} µs "
            f"| {r['server_cpu_s'] / r['n'] * 1e6:.0f} µs "
            f"| {2 * r['n'] / (r['worker_cpu_s'] + r['server_cpu_s']):,.0f}/s "
            f"| {r['machine_busy']:.0f} % "
            f"| {r['split']} |"
        )
    lines.append("")
    return lines
