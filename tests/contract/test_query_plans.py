"""The hot queries are index range scans, whatever the number of rows (SPEC §4, §5).

The statements checked are the ones ``Tx`` really sends: each query runs once while a
listener records its SQL and parameters, and the database then explains that same SQL
with those same parameters. The tables hold many rows of which few are due, and have
fresh statistics, so the plan is the one the planner would choose in production, not one
forced on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from tests import rows
from tests.rows import AGENT, NOW, PROJECT, TENANT
from tickwork.storage import tables
from tickwork.storage.records import COMPLETED, PENDING, RUNNING
from tickwork.storage.sql import Database, Tx

ROWS = 20_000
DUE = 20


def _trigger(i: int) -> dict[str, Any]:
    # Most triggers are due some time in the next month, one in ten has nothing
    # scheduled, and DUE of them are due now.
    if i < DUE:
        next_run_at: datetime | None = NOW - timedelta(seconds=i + 1)
    elif i % 10 == 0:
        next_run_at = None
    else:
        next_run_at = NOW + timedelta(seconds=97 * i % (30 * 86400) + 1)
    return rows.trigger_columns(
        f"trg_{i:06d}", enabled=next_run_at is not None, next_run_at=next_run_at
    )


def _invocation(i: int) -> dict[str, Any]:
    # History is mostly finished; DUE invocations may start now, a few hundred wait for
    # a retry, a few hundred run under a lease.
    scheduled_for = NOW - timedelta(minutes=i)
    status, not_before, lease = COMPLETED, scheduled_for, None
    if i < DUE:
        status = PENDING
    elif i < 300:
        status, not_before = PENDING, NOW + timedelta(seconds=i)
    elif i < 600:
        status, lease = RUNNING, NOW + timedelta(seconds=i)
    return rows.invocation_columns(
        f"inv_{i:06d}",
        trigger_id=f"trg_{i % 1000:06d}",
        scheduled_for=scheduled_for,
        idempotency_key=f"sched:{i}",
        status=status,
        attempt=1 if status != PENDING else 0,
        not_before=not_before,
        lease_owner="w0" if lease else None,
        lease_expires_at=lease,
        created_at=scheduled_for,
        completed_at=scheduled_for if status == COMPLETED else None,
    )


@pytest.fixture
def loaded(db: Database) -> Database:
    with db.write() as tx:
        tx.create_tenant(TENANT, NOW)
        tx.upsert_project(TENANT, PROJECT, "Web", "", NOW)
        tx.upsert_agent(TENANT, PROJECT, "main", AGENT, "Bot", {"type": "python"}, NOW)
        tx.conn.execute(tables.scheduled_triggers.insert(), [_trigger(i) for i in range(ROWS)])
        tx.conn.execute(tables.invocations.insert(), [_invocation(i) for i in range(ROWS)])
    # Fresh statistics, as autovacuum (PostgreSQL) or ``PRAGMA optimize`` would give.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("scheduled_triggers", "invocations"):
            conn.exec_driver_sql(f"ANALYZE {table}")
    return db


@contextmanager
def recorded(engine: sa.Engine) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def record(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def plan_of(db: Database, query: Callable[[Tx], Any]) -> list[str]:
    """The plan of the first statement ``query`` sends, one line per node."""
    with db.engine.connect() as conn:
        with conn.begin() as transaction:
            with recorded(db.engine) as statements:
                query(Tx(conn, db.is_postgres))
            transaction.rollback()
        statement, parameters = statements[0]
        explain = "EXPLAIN " if db.is_postgres else "EXPLAIN QUERY PLAN "
        with conn.begin():
            plan = conn.exec_driver_sql(explain + statement, parameters).all()
    return [str(row[0]) if db.is_postgres else str(row[-1]) for row in plan]


def assert_index_range_scan(
    db: Database, plan: list[str], table: str, index: str, column: str
) -> None:
    text = "\n".join(plan)
    if db.is_postgres:
        assert re.search(rf"Index Scan using {index} on {table}\b", text), text
        assert re.search(rf"Index Cond: .*\b{column} <=? ", text), text
        assert "Seq Scan" not in text, text
        return
    # SQLite: SEARCH is a range or key lookup; SCAN reads the whole table (or index).
    range_scan = rf"SEARCH {table} USING INDEX {index} \(({column}>\? AND )?{column}<\?\)"
    assert any(re.fullmatch(range_scan, line) for line in plan), text
    assert not any(re.match(rf"SCAN {table}\b", line) for line in plan), text


def test_the_hot_queries_are_range_scans_of_their_indexes(loaded: Database) -> None:
    # One test for the three queries: loading the rows is what takes the time.
    due = plan_of(loaded, lambda tx: tx.due_triggers(NOW, 100))
    assert_index_range_scan(
        loaded, due, "scheduled_triggers", "ix_scheduled_triggers_due", "next_run_at"
    )
    claim = plan_of(loaded, lambda tx: tx.claim_invocations(NOW, 10, "w1", NOW, "dep_a"))
    assert_index_range_scan(loaded, claim, "invocations", "ix_invocations_claimable", "not_before")
    expired = plan_of(loaded, lambda tx: tx.expired_leases(NOW + timedelta(seconds=320), 100))
    assert_index_range_scan(
        loaded, expired, "invocations", "ix_invocations_leases", "lease_expires_at"
    )
    # The data is what the comment on ``_trigger`` and ``_invocation`` says.
    with loaded.read() as tx:
        assert len(tx.due_triggers(NOW, 100)) == DUE
        assert len(tx.expired_leases(NOW + timedelta(seconds=320), 100)) == 20
    with loaded.write() as tx:
        assert len(tx.claim_invocations(NOW, 100, "w1", NOW, "dep_a")) == DUE


def test_a_tenants_quota_use_is_an_index_aggregate_not_a_scan(loaded: Database) -> None:
    # Another tenant's use, while acme holds every row: the cost of a quota check grows
    # with the tenant's own triggers, not with everyone's.
    rate = "\n".join(plan_of(loaded, lambda tx: tx.tenant_usage("rival", "slots_per_day")))
    count = "\n".join(plan_of(loaded, lambda tx: tx.tenant_usage("rival", "triggers")))
    index = "ix_scheduled_triggers_tenant_id_enabled_slots_per_day"
    for plan in (rate, count):
        if loaded.is_postgres:
            assert "Seq Scan" not in plan, plan
            assert re.search(r"Index (Only )?Scan using ix_scheduled_triggers_tenant_id", plan)
        else:
            assert not re.search(r"^SCAN scheduled_triggers\b", plan, re.MULTILINE), plan
            assert "USING COVERING INDEX ix_scheduled_triggers_tenant_id" in plan, plan
    if not loaded.is_postgres:  # PostgreSQL may take either tenant index for so few rows
        assert index in rate
    with loaded.read() as tx:
        assert tx.tenant_usage("acme", "triggers") == ROWS
        # Every loaded trigger is */5 (0 slots stored: rows written by hand), enabled or not.
        assert tx.tenant_usage("acme", "slots_per_day") == 0


def test_the_backlog_gauges_read_only_the_active_statuses_partial_indexes(
    loaded: Database,
) -> None:
    indexes = {PENDING: "ix_invocations_claimable", RUNNING: "ix_invocations_leases"}
    for status, index in indexes.items():
        plan = plan_of(loaded, partial(Tx.count_active, status=status))
        text = "\n".join(plan)
        if loaded.is_postgres:
            assert re.search(rf"Index (Only )?Scan using {index} on invocations\b", text), text
            assert "Seq Scan" not in text, text
        else:
            # The partial index holds only rows of that status: reading it whole costs
            # the backlog, not the history.
            assert any(
                re.fullmatch(rf"SCAN invocations USING (COVERING )?INDEX {index}", line)
                for line in plan
            ), text
    oldest = plan_of(loaded, lambda tx: tx.earliest_claimable())
    text = "\n".join(oldest)
    if loaded.is_postgres:
        assert re.search(r"Index (Only )?Scan using ix_invocations_claimable on invocations", text)
        assert "Seq Scan" not in text, text
    else:
        assert any(
            re.fullmatch(r"SCAN invocations USING (COVERING )?INDEX ix_invocations_claimable", line)
            for line in oldest
        ), text
    with loaded.read() as tx:
        assert tx.count_active(PENDING) == 300
        assert tx.count_active(RUNNING) == 300


def test_a_backfills_in_flight_are_counted_from_its_own_index(loaded: Database) -> None:
    # Asked for every running backfill on every scheduler pass: it must cost the
    # backfill's invocations, never the history.

    plan = plan_of(loaded, lambda tx: tx.active_per_backfill(["bf_1", "bf_2"]))
    text = "\n".join(plan)
    if loaded.is_postgres:
        assert re.search(r"Index (Only )?Scan using ix_invocations_backfill on invocations", text)
        assert "Seq Scan" not in text, text
    else:
        assert any(
            re.match(r"SEARCH invocations USING (COVERING )?INDEX ix_invocations_backfill", line)
            for line in plan
        ), text
    with loaded.read() as tx:
        assert tx.active_per_backfill(["bf_1"]) == {}


def test_last_runs_and_names_are_index_lookups_not_scans(loaded: Database) -> None:
    ids = [f"trg_{i:06d}" for i in range(0, 400, 7)]
    last = "\n".join(plan_of(loaded, lambda tx: tx.last_runs(ids)))
    named = "\n".join(
        plan_of(
            loaded,
            lambda tx: tx.trigger_named(TENANT, PROJECT, "main", AGENT, "trigger 7"),
        )
    )
    if loaded.is_postgres:
        assert "Seq Scan on invocations" not in last, last
        assert re.search(r"Index (Only )?Scan( Backward)? using ix_invocations_trigger_id_id", last)
        assert "Seq Scan" not in named, named
        assert "uq_scheduled_triggers_name" in named, named
    else:
        assert not re.search(r"^SCAN invocations\b", last, re.MULTILINE), last
        assert "SEARCH invocations USING INDEX ix_invocations_trigger_id_id" in last, last
        assert "SEARCH scheduled_triggers USING INDEX uq_scheduled_triggers_name" in named, named
    with loaded.read() as tx:
        found = tx.last_runs(ids)
    # trg_i has the invocations i, i + 1000, ...: the newest (highest id) is its last run.
    assert found["trg_000007"].id == "inv_019007"
    assert len(found) == len(ids)


def test_previous_runs_are_one_statement_probing_the_completed_index(loaded: Database) -> None:
    # Many triggers' previous runs in one statement; each is one probe of the partial
    # index of completed invocations, never a scan of the history.
    ids = [f"trg_{i:06d}" for i in range(0, 1000, 7)]
    with recorded(loaded.engine) as statements, loaded.read() as tx:
        found = tx.previous_runs(ids)
    assert len([s for s, _ in statements if s.lstrip().upper().startswith("SELECT")]) == 1
    text = "\n".join(plan_of(loaded, lambda tx: tx.previous_runs(ids)))
    if loaded.is_postgres:
        assert "ix_invocations_completed" in text, text
        assert not re.search(r"Seq Scan on invocations\b", text), text
    else:
        assert "USING INDEX ix_invocations_completed" in text, text
        assert not re.search(r"^SCAN (invocations|previous)\b", text, re.MULTILINE), text
    # Each trigger's latest completed run, by completion (then id).
    latest: dict[str, tuple[Any, str]] = {}
    for i in range(ROWS):
        row = _invocation(i)
        if row["status"] == COMPLETED and row["trigger_id"] in ids:
            key = (row["completed_at"], row["id"])
            if row["trigger_id"] not in latest or key > latest[row["trigger_id"]]:
                latest[row["trigger_id"]] = key
    assert {k: v.id for k, v in found.items()} == {k: v[1] for k, v in latest.items()}


def test_each_retention_batch_is_a_range_scan_of_finished_invocations(
    loaded: Database,
) -> None:
    # Retention reads the oldest finished invocations of a project, and those of a trigger
    # beyond its newest N: each a range scan of its partial index, whatever the history.
    cutoff = NOW - timedelta(days=7)
    queries: list[tuple[Callable[[Tx], Any], str, str]] = [
        (
            lambda tx: tx.expired_history(TENANT, PROJECT, cutoff, None, 500),
            "ix_invocations_retention",
            r"tenant_id=\? AND project_id=\? AND (completed_at>\? AND )?completed_at<\?",
        ),
        (
            lambda tx: tx.expired_history(TENANT, PROJECT, cutoff, cutoff - timedelta(days=1), 500),
            "ix_invocations_retention",
            r"tenant_id=\? AND project_id=\? AND completed_at>\? AND completed_at<\?",
        ),
        (
            lambda tx: tx.history_before("trg_000007", cutoff, 500),
            "ix_invocations_finished",
            r"trigger_id=\? AND (completed_at>\? AND )?completed_at<\?",
        ),
        (
            lambda tx: tx.history_boundary("trg_000007", 10),
            "ix_invocations_finished",
            r"trigger_id=\?( AND completed_at>\?)?",
        ),
    ]
    for query, index, condition in queries:
        plan = plan_of(loaded, query)
        text = "\n".join(plan)
        if loaded.is_postgres:
            # A plain or bitmap scan of the index (the planner takes the bitmap for few
            # rows): either reads only the range, never the table.
            scans = rf"(Index (Only )?Scan( Backward)? using {index} on invocations"
            assert re.search(scans + rf"|Bitmap Index Scan on {index})", text), text
            assert "Seq Scan" not in text, text
        else:
            assert any(
                re.fullmatch(
                    rf"SEARCH invocations USING (COVERING )?INDEX {index} \({condition}\)", line
                )
                for line in plan
            ), text
            assert "USE TEMP B-TREE" not in text, text  # read in index order: no sort
    with loaded.read() as tx:
        # 20,000 invocations a minute apart, the newest at NOW: those completed over a
        # week ago (minus the 600 not finished, all recent) are due.
        due = tx.expired_history(TENANT, PROJECT, cutoff, None, 100_000)
        assert len(due) == ROWS - 7 * 24 * 60 - 1
        # trg_000007 has invocations 7, 1007, …, 19007 minutes old: 11007 on are due.
        assert len(tx.history_before("trg_000007", cutoff, 500)) == 9


def test_the_late_check_and_the_outbox_are_range_scans(loaded: Database) -> None:
    late = plan_of(loaded, lambda tx: tx.late_triggers(NOW - timedelta(seconds=5), 100))
    assert_index_range_scan(
        loaded, late, "scheduled_triggers", "ix_scheduled_triggers_due", "next_run_at"
    )
    claim = plan_of(loaded, lambda tx: tx.claim_notifications(NOW, 10, NOW))
    assert_index_range_scan(
        loaded, claim, "notification_outbox", "ix_notification_outbox_due", "next_attempt_at"
    )
    pending = "\n".join(plan_of(loaded, lambda tx: tx.oldest_pending(["trg_000001"])))
    assert "ix_invocations_pending_trigger" in pending, pending
    with loaded.read() as tx:
        # The DUE triggers due before now, and those with a pending invocation behind it.
        assert {t.id for t in tx.late_triggers(NOW, 100)} >= {f"trg_{i:06d}" for i in range(DUE)}


def plans_of(db: Database, query: Callable[[Tx], Any]) -> list[list[str]]:
    """The plan of every statement ``query`` sends."""
    with db.engine.connect() as conn:
        with conn.begin() as transaction:
            with recorded(db.engine) as statements:
                query(Tx(conn, db.is_postgres))
            transaction.rollback()
        explain = "EXPLAIN " if db.is_postgres else "EXPLAIN QUERY PLAN "
        plans = []
        for statement, parameters in statements:
            with conn.begin():
                plan = conn.exec_driver_sql(explain + statement, parameters).all()
            plans.append([str(row[0]) if db.is_postgres else str(row[-1]) for row in plan])
    return plans


def test_looking_past_a_tenants_backlog_reads_only_the_pending_tenant_index(
    loaded: Database,
) -> None:
    # Past rival's (absent) backlog: acme's due rows; past acme's: nothing. Neither walks
    # the claimable index, whose every row is acme's.
    for excluded in ({"rival"}, {TENANT}):
        plans = plans_of(
            loaded, partial(Tx.claim_candidates, now=NOW, limit=10, exclude_tenants=excluded)
        )
        assert len(plans) == (2 if excluded == {"rival"} else 1)
        for plan in plans:
            text = "\n".join(plan)
            assert "ix_invocations_pending_tenant" in text, text
            assert "ix_invocations_claimable" not in text, text
            if loaded.is_postgres:
                assert "Seq Scan on invocations" not in text, text
            else:
                assert not re.search(r"^SCAN invocations\b", text, re.MULTILINE), text
    with loaded.write() as tx:
        assert len(tx.claim_candidates(NOW, 100, {"rival"})) == DUE
        assert tx.claim_candidates(NOW, 100, {TENANT}) == []
