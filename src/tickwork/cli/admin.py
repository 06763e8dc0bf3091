"""``tickwork db upgrade``, ``tickwork tenants`` and ``tickwork keys``: the one-shot
commands an operator runs against the database itself (not over the API).

Each imports what it uses when it runs: ``tickwork --help`` loads no database code.
"""

from __future__ import annotations

from typing import Annotated

import typer

from tickwork.cli.common import DatabaseOpt, fail, open_ctx, read_settings
from tickwork.domain.scopes import DEFAULT_SCOPE

__all__ = ["register"]

db_app = typer.Typer(help="The database schema (Alembic migrations).", no_args_is_help=True)
tenants_app = typer.Typer(
    help="Tenants: each owns its projects and API keys, isolated from the others.",
    no_args_is_help=True,
)
keys_app = typer.Typer(
    help="API keys: bearer tokens for one tenant's routes.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    app.add_typer(tenants_app, name="tenants")
    app.add_typer(keys_app, name="keys")


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseOpt = None) -> None:
    """Bring the database schema up to date."""
    from tickwork.storage import migrate

    with open_ctx(read_settings(database_url=database_url), upgrade=True) as ctx:
        revision = migrate.current_revision(ctx.db.engine)
    typer.echo(f"database at revision {revision}")


@db_app.command("vacuum")
def db_vacuum(database_url: DatabaseOpt = None) -> None:
    """Give a SQLite file's free pages back to the file system, and keep doing so from
    then on (auto_vacuum=INCREMENTAL). Rewrites the whole file once: run it while
    tickwork is stopped, or at a quiet time (writers wait until it ends)."""
    from tickwork.services import retention

    with open_ctx(read_settings(database_url=database_url), upgrade=False) as ctx:
        try:
            before, size = retention.vacuum_file(ctx)
        except ValueError as exc:  # not a SQLite file
            raise fail(str(exc)) from None
    typer.echo(f"vacuumed: auto_vacuum was {before}, now incremental; the file is {size} bytes")


@tenants_app.command("create")
def tenants_create(
    tenant: Annotated[
        str,
        typer.Argument(
            metavar="TENANT",
            help="The tenant's id: 1-64 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit.",
        ),
    ],
    database_url: DatabaseOpt = None,
) -> None:
    """Create a tenant: the isolation boundary that owns projects, their agents and
    triggers, and API keys (a key sees only its own tenant). Does nothing if it exists.
    Then make a key for it with `tickwork keys create --tenant TENANT`."""
    from tickwork.errors import TickworkError
    from tickwork.services import tenants

    with open_ctx(read_settings(database_url=database_url), upgrade=True) as ctx:
        try:
            created = tenants.create_tenant(ctx, tenant)
        except TickworkError as exc:
            raise fail(str(exc)) from None
    typer.echo(f"tenant {tenant} {'created' if created else 'already exists'}", err=True)


@keys_app.command("create")
def keys_create(
    tenant: Annotated[
        str, typer.Option("--tenant", metavar="TENANT", help="The tenant the key belongs to.")
    ],
    name: Annotated[
        str,
        typer.Option(
            "--name",
            metavar="NAME",
            help="A label for the key, shown in key lists (default: none).",
        ),
    ] = "",
    scope: Annotated[
        str,
        typer.Option(
            "--scope",
            metavar="SCOPE",
            help="What the key may do: read (GET only), operate (read, run now, cancel, "
            "rerun) or write (everything in the tenant; default: write).",
        ),
    ] = DEFAULT_SCOPE,
    database_url: DatabaseOpt = None,
) -> None:
    """Create an API key; prints the key alone on stdout (it is shown only once)."""
    from tickwork.errors import NotFound, TickworkError
    from tickwork.services import tenants

    with open_ctx(read_settings(database_url=database_url), upgrade=True) as ctx:
        try:
            _, key = tenants.create_key(ctx, tenant, name, scope)
        except (TickworkError, NotFound) as exc:
            raise fail(str(exc)) from None
    typer.echo(key)
