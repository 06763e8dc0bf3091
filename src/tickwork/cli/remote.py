"""What the commands over the HTTP API share: the connection options, the client, output
(rich tables for people, ``--json`` for scripts) and errors.

Exit codes (docs/client.md): 0 done; 1 the server answered with an error (its problem's
status, title and detail are printed on one line); 2 a usage error (a missing or invalid
option, an unreadable or invalid file), nothing sent; 3 the server could not be reached.

These commands never import the server: they talk to one over HTTP with
:class:`tickwork.Client` (an import-linter contract holds this).
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import httpx
import typer
from pydantic import BaseModel
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from tickwork.client import ApiConnectionError, ApiError, Client, ClientError

__all__ = [
    "EXIT_API",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "Remote",
    "UsageError",
    "command",
]

EXIT_API = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
DEFAULT_URL = "http://127.0.0.1:8080"

F = TypeVar("F", bound=Callable[..., Any])

# Tests point the commands at the app in-process: a factory of the httpx client to send
# with (None: the client makes its own).
http_client_factory: Callable[[], httpx.Client] | None = None


class UsageError(Exception):
    """A command cannot run as asked: exit 2 with this message, nothing sent."""


UrlOpt = Annotated[
    str,
    typer.Option(
        "--url",
        metavar="URL",
        envvar="TICKWORK_URL",
        show_envvar=True,
        help="Base URL of the tickwork server.",
    ),
]
ApiKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        metavar="KEY",
        envvar="TICKWORK_API_KEY",
        show_envvar=True,
        show_default=False,
        help="An API key of the tenant (required).",
    ),
]
TenantOpt = Annotated[
    str,
    typer.Option(
        "--tenant",
        metavar="TENANT",
        envvar="TICKWORK_TENANT",
        show_envvar=True,
        help="The tenant the key belongs to.",
    ),
]
ProjectOpt = Annotated[
    str | None,
    typer.Option(
        "--project",
        metavar="PROJECT",
        envvar="TICKWORK_PROJECT",
        show_envvar=True,
        show_default=False,
        help="The project (required).",
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print JSON, for scripts, instead of a table.")
]
_COMMON = ("url", "api_key", "tenant", "project", "as_json")


@dataclass
class Remote:
    """A command's connection to the server and its way of printing."""

    client: Client
    json: bool
    console: Console
    project: str

    def emit(
        self, value: Any, show: Callable[[], RenderableType | Iterable[RenderableType]]
    ) -> None:
        """Print ``value`` as JSON with ``--json``, else what ``show`` makes for people."""
        if self.json:
            typer.echo(json.dumps(to_json(value), indent=2, ensure_ascii=False))
            return
        made = show()
        for one in made if isinstance(made, Iterable) and not isinstance(made, str) else [made]:
            self.console.print(one)

    def say(self, message: str) -> None:
        """A note for people, on stderr (stdout stays the command's answer)."""
        typer.echo(message, err=True)


def to_json(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [to_json(v) for v in value]
    return value


def command(
    group: typer.Typer, name: str, *, project: bool = True
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register ``fn(remote, **options)`` as command ``name`` of ``group``, with the
    connection options (``--url``, ``--api-key``, ``--tenant``, ``--project`` unless
    ``project`` is False, ``--json``) added and errors turned into one line on stderr
    and an exit code."""

    def register(fn: Callable[..., None]) -> Callable[..., None]:
        own = inspect.signature(fn, eval_str=True)
        params = list(own.parameters.values())[1:]  # the first is the Remote
        common = [
            inspect.Parameter(
                "url", inspect.Parameter.KEYWORD_ONLY, default=DEFAULT_URL, annotation=UrlOpt
            ),
            inspect.Parameter(
                "api_key", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ApiKeyOpt
            ),
            inspect.Parameter(
                "tenant", inspect.Parameter.KEYWORD_ONLY, default="default", annotation=TenantOpt
            ),
        ]
        if project:
            common.append(
                inspect.Parameter(
                    "project", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ProjectOpt
                )
            )
        common.append(
            inspect.Parameter(
                "as_json", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=JsonOpt
            )
        )
        added = {p.name for p in common}
        clash = added & {p.name for p in params}
        if clash:
            raise TypeError(f"{fn.__name__}: parameters {sorted(clash)} are connection options")
        positional = [p for p in params if p.kind is not inspect.Parameter.KEYWORD_ONLY]
        keyword = [p for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> None:
            connection = {key: kwargs.pop(key) if key in added else None for key in _COMMON}
            try:
                remote = _connect(connection, need_project=project)
                try:
                    fn(remote, *args, **kwargs)
                finally:
                    remote.client.close()
            except UsageError as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(EXIT_USAGE) from None
            except ApiError as exc:
                typer.echo(f"error: {exc.summary}", err=True)
                raise typer.Exit(EXIT_API) from None
            except ApiConnectionError as exc:
                typer.echo(f"error: cannot reach tickwork: {exc}", err=True)
                raise typer.Exit(EXIT_UNREACHABLE) from None
            except ClientError as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(EXIT_API) from None
            except ValueError as exc:  # an argument the client refuses before sending
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(EXIT_USAGE) from None

        signature = own.replace(parameters=[*positional, *keyword, *common])
        run.__signature__ = signature  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}
        del run.__wrapped__  # typer must see the new signature, not fn's
        group.command(name)(run)
        return fn

    return register


def _connect(options: Mapping[str, Any], *, need_project: bool) -> Remote:
    url = (options["url"] or DEFAULT_URL).strip()
    key = options["api_key"]
    if not key:
        raise UsageError("--api-key (or TICKWORK_API_KEY) is required")
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--url must start with http:// or https://, got {url!r}")
    project = options.get("project") or ""
    if need_project and not project:
        raise UsageError("--project (or TICKWORK_PROJECT) is required")
    http = http_client_factory() if http_client_factory is not None else None
    client = Client(
        url, key, tenant=options["tenant"] or None, project=project or None, http_client=http
    )
    return Remote(client, bool(options["as_json"]), Console(highlight=False), project)


# --- tables ----------------------------------------------------------------------------


def instant(value: datetime | None) -> str:
    """An instant as the API writes it: ISO-8601 UTC with a Z."""
    if value is None:
        return "-"
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return instant(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, BaseModel):
        return json.dumps(value.model_dump(mode="json"), ensure_ascii=False)
    return str(value)


def titled(title: str | None, body: Table) -> RenderableType:
    """A table under a title line (as wide as the terminal, not the table)."""
    return body if title is None else Group(Text(title, style="bold"), body)


def table(
    title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> RenderableType:
    """A table; a column named ``id`` (or ending in ``id``) never wraps: ids are copied."""
    out = Table(show_edge=False, pad_edge=False)
    for column in columns:
        is_id = column == "id" or column.endswith(" id")
        out.add_column(column, no_wrap=is_id, overflow="fold")
    for row in rows:
        out.add_row(*(text(cell) for cell in row))
    return titled(title, out)


def fields(title: str | None, model: BaseModel, skip: Sequence[str] = ()) -> RenderableType:
    """One object as a two-column table of its fields."""
    out = Table(show_header=False, show_edge=False)
    out.add_column("field", style="bold", no_wrap=True)
    out.add_column("value", overflow="fold")
    for name in type(model).model_fields:
        if name not in skip:
            out.add_row(name, text(getattr(model, name)))
    return titled(title, out)


def parse_json_object(value: str | None, option: str) -> dict[str, Any] | None:
    """``--payload '{"a": 1}'``: a JSON object, or a usage error naming the option."""
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{option}: not valid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(parsed, dict):
        raise UsageError(f'{option}: must be a JSON object, like \'{{"key": "value"}}\'')
    return parsed
