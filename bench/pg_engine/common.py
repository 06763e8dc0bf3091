"""What the sections share: throw-away databases made from a migrated template, seeded
triggers, and small measures (percentiles, CPU seconds, how busy the machine is)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

from bench.engine import noop_agent
from tickwork.clock import SystemClock
from tickwork.services import resources, tenants
from tickwork.services.context import Context
from tickwork.settings import Settings
from tickwork.storage import migrate
from tickwork.storage.engine import create_engine
from tickwork.storage.sql import Database

LIBRARIES = ("sqlalchemy", "psycopg", "psycopg-binary")
ROOT = Path(__file__).resolve().parents[2]
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
