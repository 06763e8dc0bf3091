"""``tickwork secrets``: keys for target secrets at rest, and their rotation.

See docs/operations.md ("Secret keys") for the rotation steps.
"""

from __future__ import annotations

import typer

from tickwork.cli.common import EXIT_INVALID, DatabaseOpt, open_ctx, read_settings

__all__ = ["register"]

secrets_app = typer.Typer(help="Keys for agent secrets at rest.", no_args_is_help=True)
EXIT_FAILED = 1


def register(app: typer.Typer) -> None:
    app.add_typer(secrets_app, name="secrets")


@secrets_app.command("generate-key")
def generate_key_command() -> None:
    """Print a new key for TICKWORK_SECRET_KEY, alone on stdout."""
    from tickwork.services import secrets

    typer.echo(secrets.generate_key())


@secrets_app.command("rotate")
def rotate_command(database_url: DatabaseOpt = None) -> None:
    """Re-encrypt every stored secret with the first key of TICKWORK_SECRET_KEY, and
    encrypt the secrets still stored in plain text."""
    from tickwork.services import secrets
    from tickwork.storage.errors import StoreError

    settings = read_settings(database_url=database_url)
    if not settings.secret_keys:
        typer.echo(
            "error: TICKWORK_SECRET_KEY is not set: there is no key to encrypt with", err=True
        )
        raise typer.Exit(EXIT_INVALID)
    with open_ctx(settings, upgrade=True) as ctx:
        try:
            report = secrets.rotate(ctx)
        except StoreError as exc:
            typer.echo(f"error: rotating secrets failed: {exc.__class__.__name__}: {exc}", err=True)
            raise typer.Exit(EXIT_FAILED) from None
    typer.echo(
        f"re-encrypted {report.re_encrypted}, encrypted {report.encrypted} stored in plain "
        f"text, left {report.skipped} without a stored secret",
        err=True,
    )
    if report.undecryptable:
        typer.echo(
            f"error: {len(report.undecryptable)} secret(s) decrypt with no key of "
            "TICKWORK_SECRET_KEY; keep the key they were written with in the list:",
            err=True,
        )
        for where in report.undecryptable:
            typer.echo(f"  {where}", err=True)
        raise typer.Exit(EXIT_FAILED)
