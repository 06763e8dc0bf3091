"""``tickwork tenants``, ``keys``, ``db`` and ``deploy`` against a real database."""

from __future__ import annotations

import pytest
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
