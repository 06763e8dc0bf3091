"""tickwork on PostgreSQL: dispatch throughput beside a raw-SQL baseline, worker
throughput with two worker processes, scheduler failover and hand-over, and the cost of
an idle wake-up over a million stored triggers (issue 5, "Performance").

    .venv/bin/python -m bench.pg_engine [--quick] [--only dispatch,workers,failover,idle]

Needs a PostgreSQL server: ``BENCH_DATABASE_URL`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``) names a database of a role that may
create databases; every measurement runs on throw-away databases made from it and
dropped afterwards.

Method, per section:

1. **Dispatch.** N triggers, all due at one instant ``now``, are seeded once into a
   migrated *template* database (``ANALYZE``d: the server may run without autovacuum).
   Every measured run gets its own copy of it (``CREATE DATABASE ... TEMPLATE``, then a
   ``CHECKPOINT``), so every run starts from the same rows, the same indexes and no dead
   tuples. tickwork: :func:`tickwork.services.dispatch.dispatch_batch` in a loop with a
   real fence (as ``Scheduler.tick`` does: one ``now``, until a batch comes back short).
   Baseline: :class:`bench.raw_dispatch.RawDispatcher`, the same statements on one
   psycopg connection. The runs of one batch size alternate between the two, several
   rounds; the table shows the median round. One-time triggers (``run_at``, spread over
   the minute before ``now``) and cron ``* * * * *`` in UTC (all due at one minute
   boundary), catch-up ``latest``, overlap ``allow``.
2. **Workers.** Two ``tickwork serve --role worker --app bench.noop_app`` processes of
   one deployment. N pending invocations (of N distinct one-time triggers, as a burst
   leaves them) are inserted in one transaction and announced with ``NOTIFY``; the clock
   runs from that commit until no invocation is pending or running.
3. **Failover and hand-over.** Two ``tickwork serve --role scheduler --role api``
   processes of one deployment and a per-second trigger (``* * * * * *``). Kill -9 the
   active one; the instants come from the standby's JSON log (``scheduler active``,
   then its first ``dispatch batch``) and are checked against
   ``GET /api/v1/system/scheduler``. A new standby is started after each kill. Hand-over:
   ``POST /api/deploy/restart-scheduler`` to the standby.
4. **Idle.** N triggers whose next run is a day or more away; 200 wake-ups of
   ``dispatch_batch`` (fenced, finds nothing) + ``earliest_due``, beside the same two
   queries in raw psycopg; then a real ``tickwork serve`` idling over the database.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

from bench.engine import noop_agent, serve_rss
from bench.raw_dispatch import RawDispatcher
from tickwork.clock import SystemClock
from tickwork.services import dispatch, leadership, resources, tenants
from tickwork.services.context import Context
from tickwork.settings import Settings
from tickwork.storage import migrate
from tickwork.storage.engine import create_engine
from tickwork.storage.sql import Database

LIBRARIES = ("sqlalchemy", "psycopg", "psycopg-binary")
ROOT = Path(__file__).resolve().parent.parent
PG_BASE = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DEFAULT_BATCH = Settings().scheduler_batch_size
ADMIN_TOKEN = "bench-admin-token"
DEPLOY_SECRET = "bench-deploy-secret"
SECTIONS = ("dispatch", "workers", "failover", "idle")


def log(message: str) -> None:
    print(f"  [pg_engine {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- throw-away databases ----------------------------------------------------------------


def _libpq(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def db_url(name: str) -> str:
    return sa.make_url(PG_BASE).set(database=name).render_as_string(hide_password=False)


def admin_exec(*statements: str) -> None:
    with psycopg.connect(_libpq(PG_BASE), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def create_db(name: str, template: str | None = None) -> str:
    clause = f' TEMPLATE "{template}"' if template else ""
    admin_exec(
        f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"{clause}'
    )
    return db_url(name)


def drop_db(name: str) -> None:
    admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def throwaway_db(name: str, template: str | None = None) -> Iterator[str]:
    url = create_db(name, template)
    try:
        yield url
    finally:
        drop_db(name)


def open_ctx(url: str, **settings: Any) -> Context:
    values: dict[str, Any] = {
        "database_url": url,
        "deployment_id": "dep_bench",
        "version": "bench",
    } | settings
    return Context(Database(create_engine(url)), SystemClock(), Settings(**values))


def prepare_schema(url: str) -> None:
    """Migrate with tickwork's migrations; a tenant, a project and one python agent."""
    ctx = open_ctx(url)
    try:
        migrate.upgrade(ctx.db.engine)
        tenants.create_tenant(ctx, "bench")
        resources.put_project(ctx, "bench", "p", None, None)
        noop_agent(ctx)
    finally:
        ctx.db.dispose()


_TRIGGER_INSERT = """
INSERT INTO scheduled_triggers (
    id, tenant_id, project_id, ref, agent_id, name, description, enabled,
    cron_expression, run_at, timezone, payload, message_template, max_retries,
    retry_delay_seconds, timeout_seconds, catchup, catchup_window_seconds, overlap,
    jitter_seconds, next_run_at, last_error, created_by, created_at, updated_at)
SELECT 'trg_' || lpad(to_hex(i), 26, '0'), 'bench', 'p', 'main', 'noop', 't' || i, '', true,
    %(cron)s, s.at, 'UTC', jsonb_build_object('i', i), NULL, 1,
    60, 60, 'latest', 3600, 'allow',
    0, s.next_at, NULL, 'bench', %(created)s, %(created)s
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i,
LATERAL (SELECT
    CASE WHEN %(cron)s::text IS NULL
         THEN %(start)s::timestamptz + (i - %(first)s) * %(step)s::interval END AS at,
    CASE WHEN %(next_null)s THEN NULL
         ELSE %(start)s::timestamptz + (i - %(first)s) * %(step)s::interval END AS next_at
) AS s
"""


def seed_triggers(
    url: str,
    n: int,
    *,
    start: datetime,
    step: timedelta,
    cron: str | None = None,
    next_null: bool = False,
    chunk: int = 100_000,
) -> None:
    """``n`` triggers made by the server (a million in seconds, not minutes). One-time
    triggers (``cron`` None) fire at ``start + i * step``; cron ones have their
    ``next_run_at`` there. ``next_null``: already dispatched."""
    created = datetime.now(UTC)
    with psycopg.connect(_libpq(url)) as conn:
        for first in range(0, n, chunk):
            last = min(n, first + chunk) - 1
            conn.execute(
                _TRIGGER_INSERT,
                {
                    "cron": cron,
                    "start": start + first * step,
                    "step": step,
                    "first": first,
                    "last": last,
                    "created": created,
                    "next_null": next_null,
                },
            )
            conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE")


def sql_scalar(url: str, query: str, params: Any = None) -> Any:
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)


def _busy_percent(before: tuple[float, float], after: tuple[float, float]) -> float:
    busy, total = after[0] - before[0], after[1] - before[1]
    return 100.0 * busy / total if total else float("nan")


# -- 1. dispatch throughput --------------------------------------------------------------


@dataclass
class DispatchRun:
    impl: str
    kind: str
    batch: int
    n: int
    seconds: float
    batches: list[float] = field(default_factory=list)
    client_cpu: float = float("nan")  # this process, seconds
    server_cpu: float = float("nan")  # the PostgreSQL backend(s) it used, seconds

    @property
    def rate(self) -> float:
        return self.n / self.seconds


def _make_dispatch_template(name: str, n: int, kind: str, due: datetime) -> None:
    url = create_db(name)
    prepare_schema(url)
    if kind == "once":
        # run_at spread over the minute before ``due``: all due, oldest first.
        seed_triggers(url, n, start=due - timedelta(seconds=60), step=timedelta(seconds=60) / n)
    else:
        seed_triggers(url, n, start=due, step=timedelta(0), cron="* * * * *")
    admin_exec("CHECKPOINT")


class BackendCpu:
    """CPU time of the PostgreSQL backends serving one database (other than the probe's
    own), read from /proc: the server's share of a run. A backend that connects during
    the run counts in full; one that disconnects before the end is missed."""

    def __init__(self, url: str, exclude: tuple[int, ...] = ()) -> None:
        self.conn = psycopg.connect(_libpq(url), autocommit=True)
        self.exclude = exclude
        self.start: dict[int, float] = {}

    def _pids(self) -> list[int]:
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
        return [int(r[0]) for r in rows if int(r[0]) not in self.exclude]

    def begin(self) -> None:
        self.start = {pid: _cpu_seconds(pid) for pid in self._pids()}

    def end(self) -> float:
        return sum(_cpu_seconds(pid) - self.start.get(pid, 0.0) for pid in self._pids())

    def close(self) -> None:
        self.conn.close()


@dataclass
class Timed:
    seconds: float
    batches: list[float]
    created: int
    client_cpu: float
    server_cpu: float


def _timed_loop(url: str, step: Callable[[], tuple[int, int]], batch: int) -> Timed:
    """Call ``step`` (one batch: returns claimed, created) until a batch comes back
    short, as ``Scheduler.tick`` does."""
    probe = BackendCpu(url)
    try:
        probe.begin()
        created = 0
        lat: list[float] = []
        c0 = time.process_time()
        t0 = time.perf_counter()
        while True:
            b0 = time.perf_counter()
            claimed, made = step()
            lat.append(time.perf_counter() - b0)
            created += made
            if claimed < batch:
                break
        seconds = time.perf_counter() - t0
        client = time.process_time() - c0
        server = probe.end()
    finally:
        probe.close()
    return Timed(seconds, lat, created, client, server)


def _time_tickwork(url: str, now: datetime, batch: int) -> Timed:
    ctx = open_ctx(url)
    try:
        fence = leadership.acquire(ctx, "run_bench_tickwork", force=True)
        assert fence is not None
        with ctx.db.read() as tx:  # a warm pool, as in a running scheduler
            tx.conn.exec_driver_sql("SELECT 1")

        def step() -> tuple[int, int]:
            result = dispatch.dispatch_batch(ctx, now, batch, fence)
            return result.triggers, result.created

        return _timed_loop(url, step, batch)
    finally:
        ctx.db.dispose()


def _time_raw(url: str, now: datetime, batch: int, mode: str) -> Timed:
    ctx = open_ctx(url)
    try:
        fence = leadership.acquire(ctx, "run_bench_raw", force=True)
        assert fence is not None
    finally:
        ctx.db.dispose()
    raw = RawDispatcher(_libpq(url), fence.run_id, fence.generation, mode)
    try:
        raw.conn.execute("SELECT 1")
        raw.conn.commit()
        return _timed_loop(url, lambda: raw.dispatch_batch(now, batch), batch)
    finally:
        raw.close()


def _check_dispatched(url: str, n: int, now: datetime, kind: str) -> None:
    invocations = sql_scalar(url, "SELECT count(*) FROM invocations WHERE status = 'pending'")
    left = sql_scalar(
        url,
        "SELECT count(*) FROM scheduled_triggers WHERE next_run_at <= %s",
        (now,),
    )
    if kind == "cron":
        moved = sql_scalar(
            url,
            "SELECT count(*) FROM scheduled_triggers WHERE next_run_at = %s",
            (now.replace(second=0, microsecond=0) + timedelta(minutes=1),),
        )
    else:
        moved = sql_scalar(url, "SELECT count(*) FROM scheduled_triggers WHERE next_run_at IS NULL")
    if (invocations, left, moved) != (n, 0, n):
        raise RuntimeError(
            f"dispatch check failed ({kind}): {invocations} invocations, {left} still due, "
            f"{moved} advanced; expected {n}, 0, {n}"
        )


IMPLS = ("tickwork", "raw-executemany", "raw-values")


def dispatch_section(n: int, rounds: dict[int, int]) -> list[DispatchRun]:
    """``rounds``: batch size → how many alternating rounds of every implementation."""
    # One ``now`` for the whole section: a minute boundary a few minutes ago plus 1 s.
    due = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    now = due + timedelta(seconds=1)
    pid = os.getpid()
    runs: list[DispatchRun] = []
    for kind in ("once", "cron"):
        template = f"tw_bench_tpl_{kind}_{pid}"
        log(f"dispatch: seeding {n:,} {kind} triggers")
        _make_dispatch_template(template, n, kind, due)
        try:
            for batch, count in rounds.items():
                for rnd in range(count):
                    order = IMPLS if rnd % 2 == 0 else tuple(reversed(IMPLS))
                    for impl in order:
                        name = f"tw_bench_run_{pid}"
                        with throwaway_db(name, template) as url:
                            admin_exec("CHECKPOINT")
                            if impl == "tickwork":
                                timed = _time_tickwork(url, now, batch)
                            else:
                                mode = impl.removeprefix("raw-")
                                timed = _time_raw(url, now, batch, mode)
                            _check_dispatched(url, n, now, kind)
                        run = DispatchRun(
                            impl,
                            kind,
                            batch,
                            n,
                            timed.seconds,
                            timed.batches,
                            timed.client_cpu,
                            timed.server_cpu,
                        )
                        runs.append(run)
                        log(
                            f"dispatch {kind} batch={batch} {impl}: {run.seconds:.2f} s, "
                            f"{run.rate:,.0f}/s, client CPU {run.client_cpu:.2f} s, "
                            f"server CPU {run.server_cpu:.2f} s (created {timed.created:,})"
                        )
        finally:
            drop_db(template)
    return runs


def _median_run(runs: list[DispatchRun]) -> DispatchRun:
    ordered = sorted(runs, key=lambda r: r.seconds)
    return ordered[(len(ordered) - 1) // 2]


def dispatch_report(runs: list[DispatchRun], n: int, rounds: dict[int, int]) -> list[str]:
    how_many = ", ".join(f"{c} at batch {b}" for b, c in rounds.items())
    lines = [
        f"### 1. Dispatch throughput — {n:,} triggers due at once",
        "",
        "`dispatch_batch` in a loop with a real fence (one transaction per batch: fence "
        "check, `FOR UPDATE SKIP LOCKED` claim, catch-up planning, `INSERT ... ON CONFLICT "
        "DO NOTHING`, `UPDATE next_run_at`) beside the raw psycopg baseline "
        "(`bench/raw_dispatch.py`: the same statements on the same migrated schema; "
        "`executemany` = psycopg's pipelined executemany for the INSERT and the UPDATE, "
        "`values` = one multi-row `VALUES` INSERT and one `UPDATE ... FROM unnest()` per "
        "batch). Each run starts from an identical copy of the seeded database; the "
        f"implementations alternate within each round (rounds: {how_many}); the median "
        "run of each is shown. *client CPU* is the dispatching process's CPU time, "
        "*server CPU* that of its PostgreSQL backend, both per trigger. In one session "
        "client and server mostly take turns, so *CPU ceiling* = 1 / (client + server "
        "CPU) is about the rate this code reaches on an otherwise idle machine, whatever "
        "else runs on this one (pipelined statements overlap the two a little, so a run "
        "may beat it). *÷ best raw* compares with the faster raw variant. "
        "Targets: ≥ 20,000 triggers/s and ≥ 70 % of the raw baseline.",
        "",
        "| triggers | batch | implementation | time | triggers/s | batch p50 | batch p99 "
        "| client CPU | server CPU | CPU ceiling | ÷ best raw | ÷ 20,000/s |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    keys = sorted({(r.kind, r.batch) for r in runs}, key=lambda k: (k[0] != "once", k[1]))
    for kind, batch in keys:
        group = [r for r in runs if (r.kind, r.batch) == (kind, batch)]
        by_impl = {
            impl: _median_run([r for r in group if r.impl == impl])
            for impl in IMPLS
            if any(r.impl == impl for r in group)
        }
        best_raw = max(
            (r for impl, r in by_impl.items() if impl != "tickwork"), key=lambda r: r.rate
        )
        label = "one-time" if kind == "once" else "cron `* * * * *`"
        for impl, r in by_impl.items():
            ratio = "—" if r is best_raw else f"{r.rate / best_raw.rate:.0%}"
            lines.append(
                f"| {label} | {batch} | {impl} | {r.seconds:.2f} s | {r.rate:,.0f} | "
                f"{statistics.median(r.batches) * 1000:.1f} ms | "
                f"{pct(r.batches, 99) * 1000:.1f} ms | "
                f"{r.client_cpu / r.n * 1e6:.0f} µs | {r.server_cpu / r.n * 1e6:.0f} µs | "
                f"{r.n / (r.client_cpu + r.server_cpu):,.0f}/s | "
                f"{ratio} | {r.rate / 20_000:.2f}× |"
            )
    lines.append("")
    return lines


# -- subprocesses: tickwork serve --------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Serve:
    proc: subprocess.Popen[bytes]
    log_path: Path
    port: int | None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with suppress(ValueError):
                    out.append(json.loads(line))
        return out

    def events(self, event: str, after: float = 0.0) -> list[float]:
        """Instants (epoch seconds) of the JSON log lines with this event, after ``after``."""
        found = []
        for doc in self.lines():
            if doc.get("event") == event:
                ts = datetime.fromisoformat(doc["ts"].replace("Z", "+00:00")).timestamp()
                if ts > after:
                    found.append(ts)
        return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


def start_serve(
    url: str,
    roles: tuple[str, ...],
    logdir: Path,
    name: str,
    env: dict[str, str] | None = None,
    app: str | None = None,
    api: bool = False,
) -> Serve:
    port = _free_port() if api else None
    cmd = [sys.executable, "-m", "tickwork", "serve"]
    for role in roles:
        cmd += ["--role", role]
    if port is not None:
        cmd += ["--port", str(port)]
    if app:
        cmd += ["--app", app]
    full_env = {
        **os.environ,
        "TICKWORK_DATABASE_URL": url,
        "TICKWORK_LOG_FORMAT": "json",
        **(env or {}),
    }
    log_path = logdir / f"{name}.log"
    out = log_path.open("wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    return Serve(proc, log_path, port)


def wait_ready(serve: Serve, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if serve.proc.poll() is not None:
            raise RuntimeError(
                f"tickwork serve exited ({serve.proc.returncode}):\n"
                + serve.log_path.read_text(errors="replace")[-3000:]
            )
        if "  roles:" in serve.log_path.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise RuntimeError(f"tickwork serve did not start in {timeout} s")


def http(method: str, url: str, token: str, timeout: float = 10.0) -> dict[str, Any]:
    req = urllib.request.Request(
        url,
        method=method,
        headers={"Authorization": f"Bearer {token}"},
        data=b"" if method == "POST" else None,
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return dict(json.loads(resp.read()))


def wait_for(check: Callable[[], Any], timeout: float, every: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise RuntimeError(f"timed out after {timeout} s waiting for {check}")


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


# -- 4. idle wake-up ---------------------------------------------------------------------


def idle_run(n: int, wakes: int, workdir: Path, with_empty_rss: bool) -> dict[str, float]:
    name = f"tw_bench_idle_{os.getpid()}"
    with throwaway_db(name) as url:
        prepare_schema(url)
        out: dict[str, float] = {"n": n}
        if with_empty_rss:
            out["rss_empty_mb"] = serve_rss(url, workdir)["serve_rss_mb"]
        t0 = time.perf_counter()
        far = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
        seed_triggers(url, n, start=far, step=timedelta(seconds=1))
        out["seed_s"] = time.perf_counter() - t0
        admin_exec("CHECKPOINT")
        ctx = open_ctx(url)
        try:
            fence = leadership.acquire(ctx, "run_bench_idle", force=True)
            assert fence is not None
            tw: list[float] = []
            for i in range(wakes + 5):
                s = time.perf_counter()
                result = dispatch.dispatch_batch(ctx, datetime.now(UTC), DEFAULT_BATCH, fence)
                earliest = dispatch.earliest_due(ctx)
                if i >= 5:  # the first few warm the pool and the statement cache
                    tw.append(time.perf_counter() - s)
                assert result.triggers == 0
                assert earliest is not None
        finally:
            ctx.db.dispose()
        raw = RawDispatcher(_libpq(url), fence.run_id, fence.generation)
        try:
            rw: list[float] = []
            for i in range(wakes + 5):
                s = time.perf_counter()
                raw.idle_wake(datetime.now(UTC), DEFAULT_BATCH)
                if i >= 5:
                    rw.append(time.perf_counter() - s)
        finally:
            raw.close()
        rss = serve_rss(url, workdir)
        out |= {
            "tw_p50_ms": statistics.median(tw) * 1000,
            "tw_p99_ms": pct(tw, 99) * 1000,
            "raw_p50_ms": statistics.median(rw) * 1000,
            "raw_p99_ms": pct(rw, 99) * 1000,
            "rss_mb": rss["serve_rss_mb"],
            "idle_cpu": rss["idle_cpu_percent"],
            "size_mb": float(
                sql_scalar(url, "SELECT pg_total_relation_size('scheduled_triggers')") / 2**20
            ),
        }
    return out


def idle_report(r: dict[str, float], wakes: int) -> list[str]:
    lines = [
        f"### 4. Idle wake-up over {r['n']:,.0f} stored triggers",
        "",
        f"{r['n']:,.0f} triggers whose next run is a day or more away "
        f"(`scheduled_triggers` {r['size_mb']:.0f} MB with indexes, seeded in "
        f"{r['seed_s']:.1f} s, `ANALYZE`d). One wake-up = `dispatch_batch` (fenced, finds "
        f"nothing) + `earliest_due`, {wakes} times; the raw line does the same statements "
        "with psycopg. Then a real `tickwork serve` (all roles) idling over the database "
        "for 6 s (target < 5 ms per wake-up, RSS < 150 MB).",
        "",
        "| | p50 | p99 |",
        "|---|---:|---:|",
        f"| tickwork wake-up | {r['tw_p50_ms']:.2f} ms | {r['tw_p99_ms']:.2f} ms |",
        f"| raw psycopg wake-up | {r['raw_p50_ms']:.2f} ms | {r['raw_p99_ms']:.2f} ms |",
        "",
        "| `tickwork serve` idling | RSS | CPU |",
        "|---|---:|---:|",
    ]
    if "rss_empty_mb" in r:
        lines.append(f"| over an empty database | {r['rss_empty_mb']:.0f} MB | — |")
    lines.append(f"| over {r['n']:,.0f} triggers | {r['rss_mb']:.0f} MB | {r['idle_cpu']:.1f} % |")
    lines.append("")
    return lines


# -- report ------------------------------------------------------------------------------


def run(quick: bool, only: tuple[str, ...] = SECTIONS) -> str:
    started = time.monotonic()
    load = os.getloadavg()
    n_dispatch = 5_000 if quick else 100_000
    rounds = {DEFAULT_BATCH: 1} if quick else {DEFAULT_BATCH: 2, 1000: 1, 2000: 1}
    n_workers = 2_000 if quick else 20_000
    concurrencies = (10, 50)
    n_idle = 10_000 if quick else 1_000_000
    wakes = 50 if quick else 200
    server = sql_scalar(PG_BASE, "SHOW server_version")
    autovacuum = sql_scalar(PG_BASE, "SHOW autovacuum")
    lines = [
        "## tickwork on PostgreSQL (dispatch, workers, failover, idle)",
        "",
        f"PostgreSQL {server} on the same machine (autovacuum {autovacuum}, synchronous "
        f"commit on), `bench/pg_engine.py`. Load average when the run began: "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} cores — the "
        "machine is shared, so absolute figures are noisy; the ratios of runs that "
        "alternate are the robust part.",
        "",
    ]
    with tempfile.TemporaryDirectory(prefix="tickwork-pgbench-") as tmp:
        workdir = Path(tmp)
        if "dispatch" in only:
            runs = dispatch_section(n_dispatch, rounds)
            lines += dispatch_report(runs, n_dispatch, rounds)
        if "workers" in only:
            results = []
            for conc in concurrencies:
                log(f"workers: {n_workers:,} invocations, concurrency {conc}")
                results.append(workers_run(n_workers, conc, workdir))
                log(f"workers c={conc}: {results[-1]['rate']:,.0f}/s")
            lines += workers_report(results)
        if "failover" in only:
            fails, restarts = [], []
            plan = ((10.0, 1, 1),) if quick else ((10.0, 5, 5), (3.0, 5, 0))
            for lease, reps, handovers in plan:
                log(f"failover: lease {lease:g} s, {reps} kill(s), {handovers} hand-over(s)")
                f, r = failover_run(lease, reps, handovers, workdir)
                fails += f
                restarts += r
            lines += failover_report(fails, restarts)
        if "idle" in only:
            log(f"idle: {n_idle:,} triggers")
            lines += idle_report(idle_run(n_idle, wakes, workdir, not quick), wakes)
    lines += [f"(This section took {time.monotonic() - started:.0f} s.)", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pg_engine")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default=",".join(SECTIONS))
    args = parser.parse_args()
    only = tuple(s for s in args.only.split(",") if s)
    print(run(args.quick, only))


if __name__ == "__main__":
    main()
