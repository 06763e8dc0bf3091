"""``tickwork serve``, ``tickwork db upgrade``, ``tickwork tenants`` and ``tickwork keys``.

This module is the composition root: it reads settings, builds the engine, the context,
the HTTP app and the background roles, and runs them in one event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import socket
import sys
from collections.abc import Iterator
from typing import Annotated, Any

import typer
import uvicorn

from tickwork import logging as tlog
from tickwork import tracing
from tickwork.api.app import create_app
from tickwork.clock import SystemClock, pause
from tickwork.domain.scopes import DEFAULT_SCOPE
from tickwork.errors import NotFound, TickworkError, ValidationError
from tickwork.runtime.code_id import code_deployment_id
from tickwork.runtime.node import ROLES, Node
from tickwork.runtime.notify import LocalNotifier
from tickwork.runtime.pgnotify import PgNotifier
from tickwork.services import tenants
from tickwork.services.context import Context
from tickwork.settings import Settings
from tickwork.storage import migrate
from tickwork.storage.engine import UnsupportedDatabase, create_engine, is_sqlite, vacuum_sqlite
from tickwork.storage.sql import Database
from tickwork.targets.python import AppLoadError, load_app

__all__ = ["register"]

EXIT_INVALID = 2

log = tlog.get_logger("tickwork.cli")

db_app = typer.Typer(help="The database schema (Alembic migrations).", no_args_is_help=True)
tenants_app = typer.Typer(
    help="Tenants: each owns its projects and API keys, isolated from the others.",
    no_args_is_help=True,
)
keys_app = typer.Typer(
    help="API keys: bearer tokens for one tenant's routes.", no_args_is_help=True
)

DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        metavar="URL",
        envvar="TICKWORK_DATABASE_URL",
        show_envvar=True,
        help="Database: sqlite:///path/to/file.db or postgresql://user@host:5432/db "
        "(default: sqlite:///./tickwork.db).",
        show_default=False,
    ),
]


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
    app.add_typer(db_app, name="db")
    app.add_typer(tenants_app, name="tenants")
    app.add_typer(keys_app, name="keys")


def _fail(message: str) -> typer.Exit:
    """One line saying why the command stops: a log line in JSON mode (every line on
    stderr is JSON then), else ``error: ...``."""
    if tlog.json_mode():
        if not tlog.is_configured():  # stopped before the settings were read
            tlog.configure(fmt="json")
        log.error(message)
    else:
        typer.echo(f"error: {message}", err=True)
    return typer.Exit(EXIT_INVALID)


def _settings(*, serving: bool = False, **overrides: object) -> Settings:
    """The settings, with logging set up from them: at their level for ``serve``; the
    one-shot commands (whose output people read) log at WARNING unless asked for DEBUG."""
    try:
        settings = Settings.from_env(**overrides)
    except ValidationError as exc:
        raise _fail(str(exc)) from None
    level = settings.log_level
    if not serving and level == "INFO":
        level = "WARNING"
    tlog.configure(level, settings.log_format)
    return settings


def _open(settings: Settings, *, upgrade: bool) -> Context:
    try:
        engine = create_engine(settings.database_url)
        if upgrade:
            migrate.upgrade(engine)
    except Exception as exc:
        raise _fail(f"cannot open the database {_safe_url(settings.database_url)}: {exc}") from None
    return Context(db=Database(engine), clock=SystemClock(), settings=settings)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable URL>"


def serve_command(
    host: Annotated[
        str | None,
        typer.Option(
            "--host",
            metavar="HOST",
            envvar="TICKWORK_HOST",
            show_envvar=True,
            help="Address to bind (default: 127.0.0.1; 0.0.0.0 for every interface).",
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            min=0,
            max=65535,
            metavar="PORT",
            envvar="TICKWORK_PORT",
            show_envvar=True,
            help="Port to listen on, 0 to 65535 (default: 8080; 0 picks a free one).",
        ),
    ] = None,
    database_url: DatabaseOpt = None,
    app_module: Annotated[
        str | None,
        typer.Option(
            "--app",
            metavar="MODULE",
            envvar="TICKWORK_APP",
            show_envvar=True,
            help="Python module to import: it registers @tickwork.handler functions.",
        ),
    ] = None,
    role: Annotated[
        list[str] | None,
        typer.Option(
            "--role",
            metavar="ROLE",
            help="Run only this role: api, scheduler or worker (repeat for several; "
            "default: all three).",
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=10000,
            metavar="N",
            envvar="TICKWORK_WORKER_CONCURRENCY",
            show_envvar=True,
            help="Attempts run at once by this process's workers (default: 10).",
        ),
    ] = None,
    exit_when_superseded: Annotated[
        bool,
        typer.Option(
            "--exit-when-superseded",
            envvar="TICKWORK_EXIT_WHEN_SUPERSEDED",
            show_envvar=True,
            help="Exit once a newer deployment has taken over and running attempts are done.",
        ),
    ] = False,
) -> None:
    """Run tickwork: the HTTP API and docs, the scheduler and the workers."""
    roles = set(role or ROLES)
    unknown = roles - set(ROLES)
    if unknown:
        raise _fail(f"--role: unknown role {sorted(unknown)[0]!r} (use api, scheduler or worker)")
    settings = _settings(
        serving=True,
        host=host,
        port=port,
        database_url=database_url,
        app_module=app_module,
        worker_concurrency=concurrency,
    )
    # The process takes part (registry, scheduler lease) only once it is fully up, and
    # everything that can fail without touching the database is tried first: the port,
    # then the app module, then the database and its schema.
    sockets = listen(settings.host, settings.port) if "api" in roles else []
    try:
        module = None
        if settings.app_module:
            # Like `python -m`, find the user's module in the current directory.
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            try:
                module = load_app(settings.app_module)
            except AppLoadError as exc:
                raise _fail(str(exc)) from None
        if not os.environ.get("TICKWORK_DEPLOYMENT_ID"):
            settings = settings.with_(deployment_id=code_deployment_id(settings.version, module))
        tlog.set_deployment(settings.deployment_id)
        try:
            traces = tracing.configure_from_env()
        except ValidationError as exc:
            raise _fail(str(exc)) from None
        ctx = _open(settings, upgrade=True)
        first_key = _bootstrap(ctx)
        asyncio.run(_serve(ctx, roles, first_key, exit_when_superseded, sockets, traces))
    finally:
        for sock in sockets:
            sock.close()


def listen(host: str, port: int) -> list[socket.socket]:
    """Bind and listen on ``host:port`` (every address the name resolves to), or stop
    with one line saying what to change."""
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise _fail(
            f"cannot listen on {host!r}: the name does not resolve ({reason}): "
            "pass --host or set TICKWORK_HOST"
        ) from None
    sockets: list[socket.socket] = []
    bound_port = port
    addresses = list(dict.fromkeys((i[0], i[1], i[2], i[4]) for i in infos))
    unavailable: OSError | None = None
    for family, kind, proto, address in addresses:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                # As asyncio does: an IPv6 socket serves IPv6 only; IPv4 gets its own.
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            # Port 0 picks a free port: every address then shares the first one's.
            sock.bind((address[0], bound_port, *address[2:]))
            sock.listen(2048)
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) and len(addresses) > 1:
                unavailable = exc  # say, "localhost" on a machine without IPv6
                continue
            for other in sockets:
                other.close()
            raise _fail(_listen_error(host, port, exc)) from None
        bound_port = sock.getsockname()[1]
        sockets.append(sock)
    if not sockets:
        assert unavailable is not None
        raise _fail(_listen_error(host, port, unavailable))
    return sockets


def _listen_error(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} is in use: pass --port or set TICKWORK_PORT"
    if exc.errno == errno.EACCES:
        return (
            f"port {port} needs privileges this process does not have: pass a port above "
            "1023 with --port or set TICKWORK_PORT"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"cannot listen on {host}: no such address on this machine: "
            "pass --host or set TICKWORK_HOST"
        )
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


def _bootstrap(ctx: Context) -> str | None:
    """On the first start of an empty embedded database: a tenant and one key for it."""
    if not is_sqlite(ctx.settings.database_url):
        return None
    with ctx.db.read() as tx:
        if tx.count_tenants():
            return None
    tenants.create_tenant(ctx, "default")
    _, key = tenants.create_key(ctx, "default", "created at first start")
    return key


async def _serve(
    ctx: Context,
    roles: set[str],
    first_key: str | None,
    exit_when_superseded: bool,
    sockets: list[socket.socket],
    traces: str | None = None,
) -> None:
    settings = ctx.settings
    stop = asyncio.Event()
    notifier = LocalNotifier()
    bridge: PgNotifier | None = None
    if not is_sqlite(settings.database_url):
        bridge = PgNotifier(settings.database_url, notifier)
        ctx.notifier = bridge
    else:
        ctx.notifier = notifier
    node = Node(
        ctx,
        notifier,
        roles,
        exit_when_superseded=exit_when_superseded,
        on_exit=stop.set,
    )
    server: uvicorn.Server | None = None
    if "api" in roles:
        app = create_app(ctx)
        app.state.node = node
        server = _Server(uvicorn_config(app, settings))

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    if bridge is not None:
        bridge.start()
    try:
        # Registers the process (and its handlers, before the API answers anyone) and
        # tries the scheduler lease.
        await node.start()
    except Exception as exc:
        await node.stop()
        if bridge is not None:
            bridge.stop()
        ctx.db.dispose()
        raise _fail(f"cannot start: {type(exc).__name__}: {exc}") from None
    serving: asyncio.Task[None] | None = None
    if server is not None:
        serving = asyncio.create_task(server.serve(sockets=sockets))
        while not server.started and not serving.done():
            await pause(0.01)  # waiting for the server to take the sockets
        if serving.done():
            await node.stop()
            serving.result()
            raise SystemExit(1)
        base = f"http://{_display_host(settings.host)}:{sockets[0].getsockname()[1]}"
        print(f"tickwork {settings.version} serving on {base}", flush=True)
        print(f"  API docs:  {base}/docs   (OpenAPI: {base}/openapi.json)", flush=True)
    else:
        print(f"tickwork {settings.version} running without the API", flush=True)
    print(f"  database:  {_safe_url(settings.database_url)}", flush=True)
    print(
        f"  roles:     {', '.join(sorted(roles))}   deployment: {settings.deployment_id}",
        flush=True,
    )
    for part, doing in node.describe().items():
        print(f"  {part + ':':<10} {doing}", flush=True)
    if traces:
        print(f"  traces:    {traces}", flush=True)
    if first_key:
        print(
            "  first start: created tenant 'default' with this API key (shown once):\n"
            f"    {first_key}",
            flush=True,
        )
    await stop.wait()
    log.info("shutting down (running attempts finish first)")
    if server is not None:
        server.should_exit = True
    await node.stop()
    if serving is not None:
        await serving
    if bridge is not None:
        bridge.stop()
    ctx.db.dispose()


def uvicorn_config(app: Any, settings: Settings) -> uvicorn.Config:
    """The HTTP server's configuration. X-Forwarded-For is read only from the proxies
    in TICKWORK_TRUSTED_PROXIES (none by default, where uvicorn would trust loopback):
    the client address is what failed authentication is counted by."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        # uvicorn's loggers propagate to the root logger, whose one handler renders them
        # as it does every line (tickwork.logging). Its start lines repeat the banner;
        # tickwork writes the access log itself, with the route and the tenant.
        log_config=None,
        log_level="debug" if settings.log_level == "DEBUG" else "warning",
        access_log=False,
        lifespan="off",
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or None,
    )


class _Server(uvicorn.Server):
    # tickwork handles SIGINT/SIGTERM itself, to stop the scheduler and workers too.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _display_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseOpt = None) -> None:
    """Bring the database schema up to date."""
    settings = _settings(database_url=database_url)
    ctx = _open(settings, upgrade=True)
    typer.echo(f"database at revision {migrate.current_revision(ctx.db.engine)}")
    ctx.db.dispose()


@db_app.command("vacuum")
def db_vacuum(database_url: DatabaseOpt = None) -> None:
    """Give a SQLite file's free pages back to the file system, and keep doing so from
    then on (auto_vacuum=INCREMENTAL). Rewrites the whole file once: run it while
    tickwork is stopped, or at a quiet time (writers wait until it ends)."""
    settings = _settings(database_url=database_url)
    ctx = _open(settings, upgrade=False)
    try:
        before, size = vacuum_sqlite(ctx.db.engine)
    except UnsupportedDatabase as exc:
        raise _fail(str(exc)) from None
    finally:
        ctx.db.dispose()
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
    ctx = _open(_settings(database_url=database_url), upgrade=True)
    try:
        created = tenants.create_tenant(ctx, tenant)
    except TickworkError as exc:
        raise _fail(str(exc)) from None
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
    ctx = _open(_settings(database_url=database_url), upgrade=True)
    try:
        _, key = tenants.create_key(ctx, tenant, name, scope)
    except (TickworkError, NotFound) as exc:
        raise _fail(str(exc)) from None
    typer.echo(key)
