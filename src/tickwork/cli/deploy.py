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
        typer.Option(help="Base URL of the new deployment (default: TICKWORK_URL)."),
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option(
            help="The deploy secret (default: TICKWORK_DEPLOY_SECRET).", show_default=False
        ),
    ] = None,
    attempts: Annotated[
        int, typer.Option(min=1, max=100, help="Tries while the server is still starting.")
    ] = 10,
) -> None:
    """Call POST /api/deploy/restart-scheduler and print its JSON answer."""
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
            blocking_pause(min(2.0**attempt, 10.0))
    typer.echo(f"error: restart failed after {attempts} tries: {last_error}", err=True)
    raise typer.Exit(EXIT_FAILED)


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("detail") or body.get("title") or body)
