"""``tickwork serve``: the HTTP API and docs, the scheduler and the workers in one
process.

The command checks what it can before touching the database (the port, the app
module), builds the process with :func:`tickwork.assembly.assemble` and runs it in one
event loop until SIGINT or SIGTERM. The server's modules are imported when the command
runs, not when the command line starts.
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
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tickwork.cli.common import DatabaseOpt, fail, read_settings

if TYPE_CHECKING:
    import uvicorn

    from tickwork.assembly import Assembly, Database
    from tickwork.settings import Settings

__all__ = ["listen", "register", "uvicorn_config"]

# The roles a process can run (tickwork.runtime.node.ROLES; a test holds them equal),
# here so that reading the options needs no import of the runtime.
ROLES = ("api", "scheduler", "worker")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)


def _database(settings: Settings) -> Database:
    """The database, its schema up to date; or stop saying why it cannot be opened."""
    from tickwork.assembly import open_database
    from tickwork.settings import safe_url

    try:
        return open_database(settings, upgrade=True)
    except Exception as exc:
        raise fail(f"cannot open the database {safe_url(settings.database_url)}: {exc}") from None


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
        raise fail(f"--role: unknown role {sorted(unknown)[0]!r} (use api, scheduler or worker)")
    settings = read_settings(
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
        # Imported once the port is held: a port in use is said without loading them.
        from tickwork import logging as tlog
        from tickwork import tracing
        from tickwork.assembly import assemble, first_start
        from tickwork.errors import ValidationError
        from tickwork.runtime.code_id import code_deployment_id
        from tickwork.targets.python import AppLoadError, load_app

        module = None
        if settings.app_module:
            # Like `python -m`, find the user's module in the current directory.
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            try:
                module = load_app(settings.app_module)
            except AppLoadError as exc:
                raise fail(str(exc)) from None
        if not os.environ.get("TICKWORK_DEPLOYMENT_ID"):
            settings = settings.with_(deployment_id=code_deployment_id(settings.version, module))
        tlog.set_deployment(settings.deployment_id)
        try:
            traces = tracing.configure_from_env()
        except ValidationError as exc:
            raise fail(str(exc)) from None
        stop = asyncio.Event()
        parts = assemble(
            settings,
            _database(settings),
            roles,
            exit_when_superseded=exit_when_superseded,
            on_exit=stop.set,
        )
        first_key = first_start(parts.ctx)
        asyncio.run(_serve(parts, stop, first_key, sockets, traces))
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
        raise fail(
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
            raise fail(_listen_error(host, port, exc)) from None
        bound_port = sock.getsockname()[1]
        sockets.append(sock)
    if not sockets:
        assert unavailable is not None
        raise fail(_listen_error(host, port, unavailable))
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


async def _serve(
    parts: Assembly,
    stop: asyncio.Event,
    first_key: str | None,
    sockets: list[socket.socket],
    traces: str | None = None,
) -> None:
    """Run the assembled process until SIGINT or SIGTERM (or, with
    ``--exit-when-superseded``, until it has drained), then stop it gracefully."""
    from tickwork.logging import get_logger

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await _start(parts)
    server = _server(uvicorn_config(parts.app, parts.ctx.settings)) if parts.app else None
    serving = await _start_http(parts, server, sockets) if server is not None else None
    _banner(parts, sockets if server is not None else [], first_key, traces)
    await stop.wait()
    get_logger("tickwork.cli").info("shutting down (running attempts finish first)")
    if server is not None:
        server.should_exit = True
    await parts.node.stop()
    if serving is not None:
        await serving
    parts.close()


async def _start(parts: Assembly) -> None:
    """Start the notifier bridge, register the process (and its handlers, before the API
    answers anyone) and try the scheduler lease; or stop with the reason."""
    parts.start_bridge()
    try:
        await parts.node.start()
    except Exception as exc:
        await parts.node.stop()
        parts.close()
        raise fail(f"cannot start: {type(exc).__name__}: {exc}") from None


async def _start_http(
    parts: Assembly, server: uvicorn.Server, sockets: list[socket.socket]
) -> asyncio.Task[None]:
    """Serve HTTP on the bound sockets; returns once the server has taken them."""
    from tickwork.clock import pause

    serving = asyncio.create_task(server.serve(sockets=sockets))
    while not server.started and not serving.done():
        await pause(0.01)  # waiting for the server to take the sockets
    if serving.done():
        await parts.node.stop()
        serving.result()
        raise SystemExit(1)
    return serving


def _banner(
    parts: Assembly, sockets: list[socket.socket], first_key: str | None, traces: str | None
) -> None:
    from tickwork.settings import safe_url

    settings = parts.ctx.settings
    lines: list[str] = []
    if sockets:
        base = f"http://{_display_host(settings.host)}:{sockets[0].getsockname()[1]}"
        lines.append(f"tickwork {settings.version} serving on {base}")
        lines.append(f"  API docs:  {base}/docs   (OpenAPI: {base}/openapi.json)")
    else:
        lines.append(f"tickwork {settings.version} running without the API")
    lines.append(f"  database:  {safe_url(settings.database_url)}")
    roles = ", ".join(sorted(parts.node.roles))
    lines.append(f"  roles:     {roles}   deployment: {settings.deployment_id}")
    lines.extend(f"  {part + ':':<10} {doing}" for part, doing in parts.node.describe().items())
    if traces:
        lines.append(f"  traces:    {traces}")
    if first_key:
        lines.append(
            "  first start: created tenant 'default' with this API key (shown once):\n"
            f"    {first_key}"
        )
    for line in lines:
        print(line, flush=True)


def uvicorn_config(app: Any, settings: Settings) -> uvicorn.Config:
    """The HTTP server's configuration. X-Forwarded-For is read only from the proxies
    in TICKWORK_TRUSTED_PROXIES (none by default, where uvicorn would trust loopback):
    the client address is what failed authentication is counted by."""
    import uvicorn

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


def _server(config: uvicorn.Config) -> uvicorn.Server:
    import uvicorn

    class Server(uvicorn.Server):
        # tickwork handles SIGINT/SIGTERM itself, to stop the scheduler and workers too.
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return Server(config)


def _display_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
