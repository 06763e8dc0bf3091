"""``tickwork tenants``, ``keys``, ``db`` and ``deploy`` against a real database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool
from typer.testing import CliRunner

from tickwork.cli.main import app
from tickwork.services import tenants
from tickwork.services.context import Context


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_tenants_create_then_keys_create_prints_only_the_key(
    database_url: str, ctx: Context
) -> None:
    code, out, err = invoke("tenants", "create", "acme", "--database-url", database_url)
    assert code == 0, err
    assert out == ""
    assert "tenant acme created" in err
    code, out, err = invoke("tenants", "create", "acme", "--database-url", database_url)
    assert code == 0
    assert "already exists" in err

    code, out, err = invoke("keys", "create", "--tenant", "acme", "--database-url", database_url)
    assert code == 0, err
    key = out.strip()
    assert out == key + "\n"
    assert key.startswith("tw_")
    found = tenants.authenticate(ctx, key)
    assert found is not None
    assert (found.tenant_id, found.scope) == ("acme", "write")


def test_the_database_url_can_come_from_the_environment(database_url: str, ctx: Context) -> None:
    code, _, err = invoke("tenants", "create", "envco", env={"TICKWORK_DATABASE_URL": database_url})
    assert code == 0, err
    code, out, _ = invoke(
        "keys", "create", "--tenant", "envco", env={"TICKWORK_DATABASE_URL": database_url}
    )
    assert code == 0
    found = tenants.authenticate(ctx, out.strip())
    assert found is not None
    assert found.tenant_id == "envco"


def test_a_key_for_an_unknown_tenant_is_refused(database_url: str) -> None:
    code, out, err = invoke("keys", "create", "--tenant", "nobody", "--database-url", database_url)
    assert code == 2
    assert out == ""
    assert err.startswith("error: ")
    assert "nobody" in err


@pytest.mark.parametrize("tenant", ["a b", "../x", "_x", "x" * 65])
def test_a_bad_tenant_name_is_refused_with_the_rule(database_url: str, tenant: str) -> None:
    code, out, err = invoke("tenants", "create", tenant, "--database-url", database_url)
    assert code == 2
    assert out == ""
    assert "tenant: must be 1-64 characters" in err


def test_db_upgrade_reports_the_revision(database_url: str) -> None:
    code, out, err = invoke("db", "upgrade", "--database-url", database_url)
    assert code == 0, err
    assert out.startswith("database at revision ")


def test_an_unreachable_database_is_a_clear_error() -> None:
    code, out, err = invoke(
        "db", "upgrade", "--database-url", "postgresql://nobody@127.0.0.1:1/none"
    )
    assert code == 2
    assert out == ""
    assert err.startswith("error: cannot open the database postgresql")


def test_a_bad_setting_names_the_variable(database_url: str) -> None:
    code, _, err = invoke(
        "db",
        "upgrade",
        "--database-url",
        database_url,
        env={"TICKWORK_WORKER_CONCURRENCY": "many"},
    )
    assert code == 2
    assert "TICKWORK_WORKER_CONCURRENCY" in err


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ((), {}, "--url (or TICKWORK_URL) is required"),
        (("--url", "ftp://x"), {}, "must start with http:// or https://"),
        (("--url", "http://127.0.0.1:1"), {}, "--secret (or TICKWORK_DEPLOY_SECRET) is required"),
    ],
)
def test_deploy_restart_explains_missing_settings(
    args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    code, out, err = invoke(
        "deploy", "restart", *args, env={"TICKWORK_URL": "", "TICKWORK_DEPLOY_SECRET": "", **env}
    )
    assert code == 2
    assert out == ""
    assert message in err


def test_deploy_restart_gives_up_on_a_server_that_is_not_there() -> None:
    code, out, err = invoke(
        "deploy", "restart", "--url", "http://127.0.0.1:1", "--secret", "s", "--attempts", "1"
    )
    assert code == 1
    assert out == ""
    assert "restart failed after 1 tries" in err


@pytest.mark.parametrize("scope", ["read", "operate", "write"])
def test_keys_create_gives_the_key_the_scope_asked_for(
    database_url: str, ctx: Context, scope: str
) -> None:
    tenants.create_tenant(ctx, "acme")
    args = ("keys", "create", "--tenant", "acme", "--scope", scope)
    code, out, err = invoke(*args, "--database-url", database_url)
    assert code == 0, err
    found = tenants.authenticate(ctx, out.strip())
    assert found is not None
    assert found.scope == scope
    assert [k["scope"] for k in tenants.list_keys(ctx, "acme")] == [scope]


def test_keys_create_refuses_an_unknown_scope(database_url: str, ctx: Context) -> None:
    tenants.create_tenant(ctx, "acme")
    args = ("keys", "create", "--tenant", "acme", "--scope", "admin")
    code, out, err = invoke(*args, "--database-url", database_url)
    assert code == 2
    assert out == ""
    assert err == "error: scope: must be one of read, operate, write\n"
    assert tenants.list_keys(ctx, "acme") == []


def test_db_vacuum_turns_an_older_sqlite_file_to_incremental_vacuum(tmp_path: Path) -> None:
    import re
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # as an earlier release created its files
        conn.execute("PRAGMA auto_vacuum=NONE")
        conn.execute("CREATE TABLE filler (x TEXT)")
        conn.executemany("INSERT INTO filler VALUES (?)", [("x" * 1000,)] * 2000)
        conn.execute("DELETE FROM filler")
    assert invoke("db", "upgrade", "--database-url", f"sqlite:///{path}")[0] == 0
    code, out, err = invoke("db", "vacuum", "--database-url", f"sqlite:///{path}")
    assert code == 0, err
    # As docs/operations.md shows it.
    assert re.fullmatch(
        r"vacuumed: auto_vacuum was none, now incremental; the file is \d+ bytes\n", out
    ), out
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
        assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
    assert path.stat().st_size < 1_000_000


def test_db_vacuum_refuses_postgresql_in_words() -> None:
    code, out, err = invoke(
        "db", "vacuum", "--database-url", "postgresql://nobody@127.0.0.1:1/none"
    )
    assert code == 2
    assert out == ""
    assert err.startswith("error: ")


@pytest.mark.parametrize(
    "args",
    [
        ("tenants", "create", "acme"),
        ("tenants", "create", "a b"),
        ("keys", "create", "--tenant", "acme"),
        ("keys", "create", "--tenant", "nobody"),
        ("db", "upgrade"),
    ],
    ids=["tenant", "bad tenant", "key", "unknown tenant", "upgrade"],
)
def test_a_command_closes_every_connection_it_opened(
    database_url: str, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    """A one-shot command gives back its connections whether it succeeds or refuses: a
    script that runs it in a loop (or a test process) keeps no sockets or files open."""
    from tickwork import assembly
    from tickwork.storage.engine import create_engine

    opened: list[Engine] = []

    def recording(url: str, **kwargs: Any) -> Engine:
        opened.append(create_engine(url, **kwargs))
        return opened[-1]

    monkeypatch.setattr(assembly, "create_engine", recording)
    invoke("tenants", "create", "acme", "--database-url", database_url)
    opened.clear()
    invoke(*args, "--database-url", database_url)
    assert opened, "the command opened no database"
    for engine in opened:
        pool = engine.pool
        assert isinstance(pool, QueuePool)
        assert (pool.checkedin(), pool.checkedout()) == (0, 0), pool.status()
