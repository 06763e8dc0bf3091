"""The raw-SQL baseline for dispatch: psycopg 3 directly, no SQLAlchemy, no tickwork
services, on a database migrated by tickwork (same tables, same indexes).

Per batch, ONE transaction, exactly the statements SPEC §4 asks of a dispatch:

1. fence check — ``UPDATE scheduler_state ... WHERE id = 1 AND run_id = %s AND
   generation = %s`` (renews the lease; 0 rows means superseded);
2. claim — ``SELECT <every trigger column> ... WHERE next_run_at <= %s ORDER BY
   next_run_at LIMIT %s FOR UPDATE SKIP LOCKED``;
3. plan — the slot is the stored ``next_run_at``; the next run is NULL for a one-time
   trigger, else the cron's first firing after ``now`` (tickwork's own pure cron
   function, parsed once per expression: the baseline does the same date arithmetic,
   only without the framework around it);
4. insert — the invocations, with the same columns and values tickwork writes (ids and
   idempotency keys from tickwork's pure id functions), ``ON CONFLICT (idempotency_key)
   DO NOTHING``;
5. advance — ``next_run_at`` of the claimed rows.

Two ways to send 4 and 5 are offered, neither uses COPY:

* ``executemany`` — psycopg's ``executemany`` for both, which psycopg 3 sends in pipeline
  mode (one prepared statement per row, no round trip per row);
* ``values`` — one multi-row ``VALUES`` INSERT and one ``UPDATE ... FROM unnest(...)``.
  The INSERT is sent through a :class:`psycopg.RawCursor` (server-side ``$n``
  placeholders): with ``%s`` placeholders psycopg parses the query text in Python on
  every call (texts over 4 KB are not cached), which costs ~0.1 ms per row at 17
  parameters a row — more than the database spends inserting it.

This is a baseline for the common case the benchmark exercises (catch-up ``latest``,
overlap ``allow``, at most one due slot per trigger); it is not a scheduler.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tickwork.domain import catchup
from tickwork.domain.ids import new_id, schedule_key
from tickwork.domain.schedule import CronSchedule, cron_schedule, next_run_after

TRIGGER_COLUMNS = (
    "id",
    "tenant_id",
    "project_id",
    "ref",
    "agent_id",
    "name",
    "description",
    "enabled",
    "cron_expression",
    "run_at",
    "timezone",
    "payload",
    "message_template",
    "max_retries",
    "retry_delay_seconds",
    "timeout_seconds",
    "catchup",
    "catchup_window_seconds",
    "overlap",
    "jitter_seconds",
    "next_run_at",
    "last_error",
    "created_by",
    "created_at",
    "updated_at",
)
INVOCATION_COLUMNS = (
    "id",
    "trigger_id",
    "trigger_name",
    "tenant_id",
    "project_id",
    "ref",
    "agent_id",
    "origin",
    "scheduled_for",
    "idempotency_key",
    "status",
    "status_reason",
    "attempt",
    "not_before",
    "payload",
    "created_at",
    "completed_at",
)
_COL = {name: i for i, name in enumerate(TRIGGER_COLUMNS)}

FENCE_SQL = (
    "UPDATE scheduler_state SET heartbeat_at = %s, lease_expires_at = %s "
    "WHERE id = 1 AND run_id = %s AND generation = %s"
)
CLAIM_SQL = (
    f"SELECT {', '.join(TRIGGER_COLUMNS)} FROM scheduled_triggers "
    "WHERE next_run_at IS NOT NULL AND next_run_at <= %s "
    "ORDER BY next_run_at LIMIT %s FOR UPDATE SKIP LOCKED"
)
EARLIEST_SQL = (
    "SELECT next_run_at FROM scheduled_triggers WHERE next_run_at IS NOT NULL "
    "ORDER BY next_run_at LIMIT 1"
)
_ROW = "(" + ", ".join(["%s"] * len(INVOCATION_COLUMNS)) + ")"
_WIDTH = len(INVOCATION_COLUMNS)
_INSERT_HEAD = f"INSERT INTO invocations ({', '.join(INVOCATION_COLUMNS)}) VALUES "
_INSERT_TAIL = " ON CONFLICT (idempotency_key) DO NOTHING"
INSERT_ONE_SQL = _INSERT_HEAD + _ROW + _INSERT_TAIL
UPDATE_SET_SQL = (
    "UPDATE scheduled_triggers AS t SET next_run_at = v.next_run_at "
    "FROM unnest(%s::text[], %s::timestamptz[]) AS v(id, next_run_at) WHERE t.id = v.id"
)
UPDATE_ONE_SQL = "UPDATE scheduled_triggers SET next_run_at = %s WHERE id = %s"
# PostgreSQL binds at most 65,535 parameters per statement.
_MAX_VALUES_ROWS = 65_535 // len(INVOCATION_COLUMNS)


@functools.lru_cache(maxsize=16)
def _values_sql(rows: int) -> str:
    """``($1, ..., $17), ($18, ...)`` for ``rows`` rows."""
    return ", ".join(
        "(" + ", ".join(f"${r * _WIDTH + c + 1}" for c in range(_WIDTH)) + ")" for r in range(rows)
    )


class Superseded(Exception):
    pass


class RawDispatcher:
    """Dispatch with one psycopg connection; ``mode`` is ``values`` or ``executemany``."""

    def __init__(self, conninfo: str, run_id: str, generation: int, mode: str = "values"):
        if mode not in ("values", "executemany"):
            raise ValueError(mode)
        self.conn = psycopg.connect(conninfo, autocommit=False)
        self.run_id = run_id
        self.generation = generation
        self.mode = mode
        self.lease = timedelta(seconds=10)
        self._crons: dict[tuple[str, str], CronSchedule] = {}

    def close(self) -> None:
        self.conn.close()

    def dispatch_batch(self, now: datetime, limit: int) -> tuple[int, int]:
        """One transaction; returns (triggers claimed, invocations inserted)."""
        conn = self.conn
        with conn.cursor() as cur:
            try:
                cur.execute(FENCE_SQL, (now, now + self.lease, self.run_id, self.generation))
                if cur.rowcount != 1:
                    raise Superseded(self.run_id)
                cur.execute(CLAIM_SQL, (now, limit))
                due = cur.fetchall()
                if not due:
                    conn.commit()
                    return 0, 0
                rows, ids, nexts = self._plan(due, now)
                inserted = self._insert(cur, rows)
                self._advance(cur, ids, nexts)
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
        return len(due), inserted

    def _plan(
        self, due: Sequence[tuple[Any, ...]], now: datetime
    ) -> tuple[list[tuple[Any, ...]], list[str], list[datetime | None]]:
        c = _COL
        rows: list[tuple[Any, ...]] = []
        ids: list[str] = []
        nexts: list[datetime | None] = []
        for t in due:
            trigger_id = t[c["id"]]
            slot = t[c["next_run_at"]]
            cron = t[c["cron_expression"]]
            if cron is None:
                nxt = None
            else:
                key = (cron, t[c["timezone"]])
                schedule = self._crons.get(key)
                if schedule is None:
                    schedule = self._crons[key] = cron_schedule(*key)
                nxt = next_run_after(schedule, now)
            jitter = t[c["jitter_seconds"]]
            not_before = slot + catchup.jitter_offset(trigger_id, slot, jitter) if jitter else slot
            rows.append(
                (
                    new_id("inv", now),
                    trigger_id,
                    t[c["name"]],
                    t[c["tenant_id"]],
                    t[c["project_id"]],
                    t[c["ref"]],
                    t[c["agent_id"]],
                    "schedule",
                    slot,
                    schedule_key(trigger_id, slot),
                    "pending",
                    None,
                    0,
                    not_before,
                    Jsonb(t[c["payload"]]),
                    now,
                    None,
                )
            )
            ids.append(trigger_id)
            nexts.append(nxt)
        return rows, ids, nexts

    def _insert(self, cur: psycopg.Cursor[Any], rows: list[tuple[Any, ...]]) -> int:
        if self.mode == "executemany":
            cur.executemany(INSERT_ONE_SQL, rows)
            return len(rows)  # rowcount of a pipelined executemany is not kept
        inserted = 0
        with psycopg.RawCursor(self.conn) as raw:
            for start in range(0, len(rows), _MAX_VALUES_ROWS):
                chunk = rows[start : start + _MAX_VALUES_ROWS]
                sql = _INSERT_HEAD + _values_sql(len(chunk)) + _INSERT_TAIL
                raw.execute(sql, [v for row in chunk for v in row])
                inserted += raw.rowcount
        return inserted

    def _advance(
        self, cur: psycopg.Cursor[Any], ids: list[str], nexts: list[datetime | None]
    ) -> None:
        if self.mode == "executemany":
            cur.executemany(UPDATE_ONE_SQL, list(zip(nexts, ids, strict=True)))
        else:
            cur.execute(UPDATE_SET_SQL, (ids, nexts))

    def idle_wake(self, now: datetime, limit: int) -> datetime | None:
        """What a scheduler wake-up costs when nothing is due: the fenced claim that
        finds nothing, then the earliest ``next_run_at`` (a second, read-only query)."""
        self.dispatch_batch(now, limit)
        with self.conn.cursor() as cur:
            cur.execute(EARLIEST_SQL)
            row = cur.fetchone()
        self.conn.commit()
        return None if row is None else row[0]
