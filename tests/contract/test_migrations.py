"""The migrations build exactly the schema in ``tables.py``, and can be undone.

Each test runs on a fresh, empty database of the backend under test: a new SQLite file,
or a throw-away PostgreSQL database created beside the one TICKWORK_TEST_DATABASE names.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine

from tickwork.storage import migrate, tables
from tickwork.storage.engine import create_engine, normalise_url

TEST_DATABASE = os.environ.get("TICKWORK_TEST_DATABASE", "sqlite")


@pytest.fixture
def fresh_engine(tmp_path: Path) -> Iterator[Engine]:
    """An engine on a database with nothing in it."""
    if not TEST_DATABASE.startswith("postgres"):
        engine = create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
        yield engine
        engine.dispose()
        return
    name = "tickwork_mig_" + secrets.token_hex(4)
    admin = sa.create_engine(normalise_url(TEST_DATABASE), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(normalise_url(TEST_DATABASE)).set(database=name)
    engine = create_engine(url.render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _unquote(default: str) -> str:
    while default.startswith("(") and default.endswith(")"):
        default = default[1:-1]
    if len(default) >= 2 and default[0] == default[-1] == "'":
        default = default[1:-1].replace("''", "'")
    return default


def _same_server_default(
    context: MigrationContext,
    inspected_column: sa.Column[Any],
    metadata_column: sa.Column[Any],
    inspected_default: str | None,
    metadata_default: Any,
    rendered_metadata_default: str | None,
) -> bool | None:
    """Whether the defaults differ; None leaves the decision to alembic.

    Alembic's SQLite comparison unquotes only non-empty literals, so the ``('')`` SQLite
    reports for ``server_default=""`` never equals it. Compare the literals unquoted.
    """
    if context.dialect.name != "sqlite" or None in (inspected_default, rendered_metadata_default):
        return None
    assert inspected_default is not None
    assert rendered_metadata_default is not None
    return _unquote(inspected_default) != _unquote(rendered_metadata_default)


def schema_differences(engine: Engine, metadata: sa.MetaData = tables.metadata) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={"compare_type": True, "compare_server_default": _same_server_default},
        )
        return list(compare_metadata(context, metadata))


def copy_of_tables() -> sa.MetaData:
    copy = sa.MetaData(naming_convention=tables.metadata.naming_convention)
    for table in tables.metadata.sorted_tables:
        table.to_metadata(copy)
    return copy


def _normalise_sql(text: str) -> str:
    """Drop what PostgreSQL adds when it prints an expression back: casts, parentheses."""
    text = re.sub(r"::[a-z ]+", "", str(text).lower())
    return " ".join(text.replace("(", " ").replace(")", " ").split())


def predicates_in_metadata(dialect: str) -> dict[str, str]:
    return {
        index.name: _normalise_sql(str(index.dialect_options[dialect]["where"]))
        for table in tables.metadata.sorted_tables
        for index in table.indexes
        if index.name and index.dialect_options[dialect]["where"] is not None
    }


def predicates_in_database(engine: Engine) -> dict[str, str]:
    inspector = sa.inspect(engine)
    key = f"{engine.dialect.name}_where"
    return {
        str(index["name"]): _normalise_sql(str(index["dialect_options"][key]))
        for table in inspector.get_table_names()
        for index in inspector.get_indexes(table)
        if key in index.get("dialect_options", {})
    }


def check_constraints(engine: Engine) -> dict[str, str]:
    inspector = sa.inspect(engine)
    return {
        str(ck["name"]): _normalise_sql(ck["sqltext"])
        for table in inspector.get_table_names()
        for ck in inspector.get_check_constraints(table)
    }


def table_names(engine: Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def scheduler_rows(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(tables.scheduler_state))]


def test_upgrading_to_head_builds_exactly_the_tables_module(fresh_engine: Engine) -> None:
    migrate.upgrade(fresh_engine)
    assert schema_differences(fresh_engine) == []
    # Alembic does not compare partial-index predicates or CHECK constraints: do it here.
    dialect = fresh_engine.dialect.name
    assert predicates_in_database(fresh_engine) == predicates_in_metadata(dialect)
    assert set(predicates_in_metadata(dialect)) == {
        "ix_scheduled_triggers_due",
        "ix_invocations_claimable",
        "ix_invocations_pending_tenant",
        "ix_invocations_leases",
        "ix_invocations_completed",
        "ix_invocations_backfill",
        "ix_projects_paused_until",
        "ix_backfills_running",
        "ix_invocations_retention",
        "ix_invocations_finished",
        "ix_scheduled_triggers_late",
        "ix_invocations_pending_trigger",
        "ix_notification_outbox_due",
    }
    assert check_constraints(fresh_engine) == {"ck_scheduler_state_singleton": "id = 1"}


def test_the_comparison_would_notice_a_difference(fresh_engine: Engine) -> None:
    migrate.upgrade(fresh_engine)
    assert schema_differences(fresh_engine, copy_of_tables()) == []
    changes: list[tuple[str, str, dict[str, Any]]] = [
        ("projects", "description", {"server_default": sa.text("'none'")}),
        ("invocations", "attempt", {"server_default": None}),
        ("deployments", "version", {"type": sa.String(65)}),
        ("invocations", "lease_owner", {"nullable": False}),
    ]
    for table, column, change in changes:
        changed = copy_of_tables()
        target = changed.tables[table].c[column]
        for key, value in change.items():
            if key == "server_default":
                target.server_default = None if value is None else sa.DefaultClause(value)
            else:
                setattr(target, key, value)
        assert schema_differences(fresh_engine, changed) != [], (table, column, change)
    with fresh_engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_invocations_leases")
        conn.exec_driver_sql("CREATE INDEX ix_invocations_leases ON invocations (lease_owner)")
    assert schema_differences(fresh_engine) != []


def test_it_upgrades_downgrades_to_nothing_and_upgrades_again(fresh_engine: Engine) -> None:
    assert table_names(fresh_engine) == set()
    migrate.upgrade(fresh_engine)
    assert table_names(fresh_engine) == {t.name for t in tables.metadata.sorted_tables} | {
        "alembic_version"
    }
    migrate.downgrade(fresh_engine, "base")
    assert table_names(fresh_engine) == {"alembic_version"}
    assert migrate.current_revision(fresh_engine) is None
    migrate.upgrade(fresh_engine)
    assert schema_differences(fresh_engine) == []
    assert scheduler_rows(fresh_engine) == [(1, None, None, 0, None, None)]


def test_is_current_only_at_head(fresh_engine: Engine) -> None:
    assert migrate.head_revision() is not None
    assert not migrate.is_current(fresh_engine)
    migrate.upgrade(fresh_engine)
    assert migrate.is_current(fresh_engine)
    assert migrate.current_revision(fresh_engine) == migrate.head_revision()
    migrate.downgrade(fresh_engine, "base")
    assert not migrate.is_current(fresh_engine)


def test_the_scheduler_state_singleton_exists_after_upgrade(fresh_engine: Engine) -> None:
    migrate.upgrade(fresh_engine)
    assert scheduler_rows(fresh_engine) == [(1, None, None, 0, None, None)]
    with pytest.raises(sa.exc.IntegrityError), fresh_engine.begin() as conn:
        conn.execute(tables.scheduler_state.insert().values(id=2, generation=0))


def test_the_tenancy_migration_makes_old_keys_write_keys_and_backfills_rates(
    fresh_engine: Engine,
) -> None:
    migrate.upgrade(fresh_engine, "0001")
    now = "2026-03-02 09:00:00"
    with fresh_engine.begin() as conn:
        conn.exec_driver_sql(f"INSERT INTO tenants (id, created_at) VALUES ('acme', '{now}')")
        conn.exec_driver_sql(
            "INSERT INTO api_keys (id, tenant_id, name, key_hash, prefix, created_at) "
            f"VALUES ('key_1', 'acme', 'old', 'h', 'tw_', '{now}')"
        )
        conn.exec_driver_sql(
            "INSERT INTO projects (tenant_id, id, name, created_at, updated_at) "
            f"VALUES ('acme', 'p', 'p', '{now}', '{now}')"
        )
        conn.exec_driver_sql(
            "INSERT INTO refs (tenant_id, project_id, name, revision, created_at, updated_at) "
            f"VALUES ('acme', 'p', 'main', 0, '{now}', '{now}')"
        )
        conn.exec_driver_sql(
            "INSERT INTO agents (tenant_id, project_id, ref, id, name, target, created_at, "
            f"updated_at) VALUES ('acme', 'p', 'main', 'a', 'a', '{{}}', '{now}', '{now}')"
        )
        crons = ["* * * * * *", "*/15 * * * *", "@hourly", None, "*/15 * * * *", "not a cron"]
        for i, cron in enumerate(crons):
            run_at = now if cron is None else None
            conn.execute(
                sa.text(
                    "INSERT INTO scheduled_triggers (id, tenant_id, project_id, ref, agent_id, "
                    "name, enabled, cron_expression, run_at, timezone, payload, max_retries, "
                    "retry_delay_seconds, timeout_seconds, catchup, catchup_window_seconds, "
                    "overlap, jitter_seconds, created_at, updated_at) VALUES (:id, 'acme', 'p', "
                    "'main', 'a', :id, true, :cron, :run_at, 'UTC', '{}', 1, 60, 780, 'latest', "
                    "3600, 'allow', 0, :now, :now)"
                ),
                {"id": f"trg_{i}", "cron": cron, "run_at": run_at, "now": now},
            )
    migrate.upgrade(fresh_engine)
    with fresh_engine.connect() as conn:
        scopes = conn.execute(sa.select(tables.api_keys.c.scope)).scalars().all()
        rates = dict(
            conn.execute(
                sa.select(tables.scheduled_triggers.c.id, tables.scheduled_triggers.c.slots_per_day)
            ).all()
        )
        overrides = conn.execute(sa.select(tables.tenants.c.quota_triggers)).scalars().all()
    assert scopes == ["write"]
    assert rates == {
        "trg_0": 86_400,
        "trg_1": 96,
        "trg_2": 24,
        "trg_3": 0,  # one-time
        "trg_4": 96,
        "trg_5": 0,  # not computable: the scheduler disables it when due
    }
    assert overrides == [None]
    migrate.downgrade(fresh_engine, "0001")
    assert "scope" not in {c["name"] for c in sa.inspect(fresh_engine).get_columns("api_keys")}
    with fresh_engine.connect() as conn:  # nothing else was lost on the way down
        assert conn.exec_driver_sql("SELECT count(*) FROM scheduled_triggers").scalar() == 6
        assert conn.exec_driver_sql("SELECT count(*) FROM api_keys").scalar() == 1


def test_the_conventions_migration_renames_duplicate_trigger_names_and_keeps_the_oldest(
    fresh_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    migrate.upgrade(fresh_engine, "0007_lifecycle")
    now = "2026-03-02 09:00:00"
    later = "2026-03-02 10:00:00"
    with fresh_engine.begin() as conn:
        conn.exec_driver_sql(f"INSERT INTO tenants (id, created_at) VALUES ('acme', '{now}')")
        conn.exec_driver_sql(
            "INSERT INTO projects (tenant_id, id, name, created_at, updated_at) "
            f"VALUES ('acme', 'p', 'p', '{now}', '{now}')"
        )
        for ref in ("main", "feature/x"):
            conn.exec_driver_sql(
                "INSERT INTO refs (tenant_id, project_id, name, revision, created_at, "
                f"updated_at) VALUES ('acme', 'p', '{ref}', 0, '{now}', '{now}')"
            )
            for agent in ("a", "b"):
                conn.exec_driver_sql(
                    "INSERT INTO agents (tenant_id, project_id, ref, id, name, target, "
                    f"created_at, updated_at) VALUES ('acme', 'p', '{ref}', '{agent}', "
                    f"'{agent}', '{{}}', '{now}', '{now}')"
                )
        long_name = "n" * 200
        rows = [
            # id, ref, agent, name, created_at: ids sort against creation on purpose.
            ("trg_3", "main", "a", "report", later),
            ("trg_1", "main", "a", "report", now),
            ("trg_2", "main", "a", "report", later),
            ("trg_4", "main", "a", "report (2)", now),  # the first new name is taken
            ("trg_5", "main", "b", "report", now),  # another agent: its own name
            ("trg_6", "feature/x", "a", "report", now),  # another ref: its own name
            ("trg_7", "main", "b", long_name, now),
            ("trg_8", "main", "b", long_name, later),
        ]
        for trigger_id, ref, agent, name, created in rows:
            conn.execute(
                sa.text(
                    "INSERT INTO scheduled_triggers (id, tenant_id, project_id, ref, agent_id, "
                    "name, enabled, cron_expression, timezone, payload, max_retries, "
                    "retry_delay_seconds, timeout_seconds, catchup, catchup_window_seconds, "
                    "overlap, jitter_seconds, created_at, updated_at) VALUES (:id, 'acme', "
                    "'p', :ref, :agent, :name, true, '@daily', 'UTC', '{}', 1, 60, 780, "
                    "'latest', 3600, 'allow', 0, :created, :created)"
                ),
                {"id": trigger_id, "ref": ref, "agent": agent, "name": name, "created": created},
            )
    with caplog.at_level("WARNING", logger="tickwork.migrations"):
        migrate.upgrade(fresh_engine)
    with fresh_engine.connect() as conn:
        c = tables.scheduled_triggers.c
        named = dict(conn.execute(sa.select(c.id, c.name).order_by(c.id)).all())
    assert named == {
        "trg_1": "report",  # the oldest keeps the name
        "trg_2": "report (3)",
        "trg_3": "report (4)",
        "trg_4": "report (2)",
        "trg_5": "report",
        "trg_6": "report",
        "trg_7": long_name,
        "trg_8": "n" * 196 + " (2)",
    }
    assert len(named["trg_8"]) == 200
    logged = [r.getMessage() for r in caplog.records if r.name == "tickwork.migrations"]
    assert len(logged) == 3
    assert any("trigger=trg_3" in line and "new_name='report (4)'" in line for line in logged)
    with pytest.raises(sa.exc.IntegrityError), fresh_engine.begin() as conn:
        conn.execute(sa.text("UPDATE scheduled_triggers SET name = 'report' WHERE id = 'trg_2'"))
    migrate.downgrade(fresh_engine, "0007_lifecycle")
    with fresh_engine.connect() as conn:  # the names stay as they were made
        assert (
            conn.exec_driver_sql("SELECT name FROM scheduled_triggers WHERE id = 'trg_3'").scalar()
            == "report (4)"
        )


def test_the_health_migration_counts_each_triggers_failures_from_its_history(
    fresh_engine: Engine,
) -> None:
    migrate.upgrade(fresh_engine, "0008_conventions")
    now = "2026-03-02 09:00:00"
    with fresh_engine.begin() as conn:
        conn.exec_driver_sql(f"INSERT INTO tenants (id, created_at) VALUES ('acme', '{now}')")
        conn.exec_driver_sql(
            "INSERT INTO projects (tenant_id, id, name, created_at, updated_at) "
            f"VALUES ('acme', 'p', 'p', '{now}', '{now}')"
        )
        conn.exec_driver_sql(
            "INSERT INTO refs (tenant_id, project_id, name, revision, created_at, updated_at) "
            f"VALUES ('acme', 'p', 'main', 0, '{now}', '{now}')"
        )
        conn.exec_driver_sql(
            "INSERT INTO agents (tenant_id, project_id, ref, id, name, target, created_at, "
            f"updated_at) VALUES ('acme', 'p', 'main', 'a', 'a', '{{}}', '{now}', '{now}')"
        )
        for trigger_id in ("trg_fails", "trg_fine", "trg_new"):
            conn.execute(
                sa.text(
                    "INSERT INTO scheduled_triggers (id, tenant_id, project_id, ref, agent_id, "
                    "name, enabled, cron_expression, timezone, payload, max_retries, "
                    "retry_delay_seconds, timeout_seconds, catchup, catchup_window_seconds, "
                    "overlap, jitter_seconds, created_at, updated_at) VALUES (:id, 'acme', "
                    "'p', 'main', 'a', :id, true, '@daily', 'UTC', '{}', 1, 60, 780, "
                    "'latest', 3600, 'allow', 0, :at, :at)"
                ),
                {"id": trigger_id, "at": datetime(2026, 3, 2, 9, tzinfo=UTC)},
            )
        history = [
            ("trg_fails", "completed", 1),
            ("trg_fails", "failed", 2),
            ("trg_fails", "cancelled", 3),
            ("trg_fails", "failed", 4),
            ("trg_fine", "failed", 1),
            ("trg_fine", "completed", 2),
        ]
        for n, (trigger_id, status, ended_hour) in enumerate(history):
            ended = datetime(2026, 3, 2, ended_hour, tzinfo=UTC)
            conn.execute(
                tables.invocations.insert().values(
                    id=f"inv_{n}",
                    trigger_id=trigger_id,
                    trigger_name=trigger_id,
                    tenant_id="acme",
                    project_id="p",
                    ref="main",
                    agent_id="a",
                    origin="schedule",
                    scheduled_for=ended,
                    idempotency_key=f"k{n}",
                    status=status,
                    attempt=1,
                    not_before=ended,
                    payload={},
                    created_at=ended,
                    completed_at=ended,
                )
            )
    migrate.upgrade(fresh_engine)
    with fresh_engine.connect() as conn:
        c = tables.scheduled_triggers.c
        rows = {
            r.id: (r.consecutive_failures, r.last_success_at, r.last_failure_at)
            for r in conn.execute(
                sa.select(c.id, c.consecutive_failures, c.last_success_at, c.last_failure_at)
            )
        }

    def hour(h: int) -> datetime:
        return datetime(2026, 3, 2, h, tzinfo=UTC)

    assert rows == {
        "trg_fails": (2, hour(1), hour(4)),
        "trg_fine": (0, hour(2), hour(1)),
        "trg_new": (0, None, None),
    }
    migrate.downgrade(fresh_engine, "0008_conventions")
    migrate.upgrade(fresh_engine)
