"""``tickwork deploy restart``: tell the newly deployed tickwork to take the scheduler."""

from __future__ import annotations

import json
import os
from typing import Annotated

import httpx
import typer

from tickwork.clock import blocking_pause

__all__ = ["register"]

deploy_app = typer.Typer(help="Deployment hooks for CI pipelines.", no_args_is_help=True)
EXIT_INVALID = 2
EXIT_FAILED = 1


def register(app: typer.Typer) -> None:
    app.add_typer(deploy_app, name="deploy")


@deploy_app.command("restart")
def restart_command(
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            metavar="URL",
            envvar="TICKWORK_URL",
            show_envvar=True,
            help="Base URL of the new deployment, e.g. https://tickwork.example.",
        ),
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret",
            metavar="SECRET",
            envvar="TICKWORK_DEPLOY_SECRET",
            show_envvar=True,
            help="The deploy secret the server was started with.",
            show_default=False,
        ),
    ] = None,
    attempts: Annotated[
        int,
        typer.Option(
            min=1,
            max=100,
            metavar="N",
            help="Tries while the server is still starting (1 to 100), waiting 1, 2, 4, "
            "8, then 10 s between them.",
        ),
    ] = 10,
) -> None:
    """Make the newly deployed tickwork take the scheduler at once: call POST
    /api/deploy/restart-scheduler and print its JSON answer on stdout. Progress and
    errors go to stderr."""
    base = (url or os.environ.get("TICKWORK_URL") or "").rstrip("/")
    token = secret or os.environ.get("TICKWORK_DEPLOY_SECRET")
    if not base:
        typer.echo("error: --url (or TICKWORK_URL) is required", err=True)
        raise typer.Exit(EXIT_INVALID)
    if not base.startswith(("http://", "https://")):
        typer.echo(f"error: --url must start with http:// or https://, got {base!r}", err=True)
        raise typer.Exit(EXIT_INVALID)
    if not token:
        typer.echo("error: --secret (or TICKWORK_DEPLOY_SECRET) is required", err=True)
        raise typer.Exit(EXIT_INVALID)
    endpoint = base + "/api/deploy/restart-scheduler"
    last_error = ""
    typer.echo(f"restarting the scheduler: POST {endpoint}", err=True)
    for attempt in range(attempts):
        try:
            response = httpx.post(
                endpoint, headers={"Authorization": f"Bearer {token}"}, timeout=30
            )
        except httpx.HTTPError as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code == 200:
                typer.echo(json.dumps(response.json()))
                return
            detail = _detail(response)
            if response.status_code < 500 or response.status_code == 503:
                typer.echo(f"error: {response.status_code}: {detail}", err=True)
                raise typer.Exit(EXIT_FAILED)
            last_error = f"{response.status_code}: {detail}"
        if attempt + 1 < attempts:
            wait = min(2.0**attempt, 10.0)
            typer.echo(
                f"try {attempt + 1} of {attempts} failed ({last_error}); retrying in {wait:g} s",
                err=True,
            )
            blocking_pause(wait)
    typer.echo(f"error: restart failed after {attempts} tries: {last_error}", err=True)
    raise typer.Exit(EXIT_FAILED)


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("detail") or body.get("title") or body)
