"""The composition root: the one place that builds a tickwork process from its settings.

:func:`assemble` builds, in order and each once: the database, the notifiers (the
in-process one, and on PostgreSQL the ``LISTEN``/``NOTIFY`` bridge that reaches every
process), the :class:`~tickwork.services.context.Context` that carries them, the
:class:`~tickwork.runtime.node.Node` with the roles asked for, and the HTTP app given the
node's scheduler for the restart call. Nothing is swapped or read back afterwards.

:func:`open_context` is the smaller assembly the one-shot admin commands need: a context
over the database, with no notifier (they wake nobody) and no background role.

The command line (``tickwork serve``, ``tickwork db``/``tenants``/``keys``) and tests that
run whole processes use these; nothing else builds a context, a node and an app together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from fastapi import FastAPI

from tickwork import ui
from tickwork.api.app import create_app
from tickwork.clock import Clock, SystemClock
from tickwork.runtime.node import ROLES, Node
from tickwork.runtime.notify import LocalNotifier
from tickwork.runtime.pgnotify import PgNotifier
from tickwork.services import tenants
from tickwork.services.context import Context
from tickwork.settings import Settings
from tickwork.storage import migrate
from tickwork.storage.engine import create_engine, is_sqlite
from tickwork.storage.sql import Database
from tickwork.targets.python import HandlerRegistry

__all__ = ["Assembly", "Database", "assemble", "first_start", "open_context", "open_database"]


@dataclass(frozen=True, slots=True)
class Assembly:
    """A process's parts, built by :func:`assemble`."""

    ctx: Context
    notifier: LocalNotifier
    # On PostgreSQL: the bridge that carries the local notifier's wake-ups to every
    # process (start it in the event loop, stop it last). None on SQLite.
    bridge: PgNotifier | None
    node: Node
    # None when the process runs without the api role.
    app: FastAPI | None

    def start_bridge(self) -> None:
        if self.bridge is not None:
            self.bridge.start()

    def close(self) -> None:
        """Stop the bridge and close the database's connections (after the node stopped)."""
        if self.bridge is not None:
            self.bridge.stop()
        self.ctx.db.dispose()


def open_database(settings: Settings, *, upgrade: bool) -> Database:
    """The database of ``settings``, its schema brought up to date when ``upgrade``."""
    engine = create_engine(settings.database_url)
    if upgrade:
        try:
            migrate.upgrade(engine)
        except BaseException:
            engine.dispose()
            raise
    return Database(engine)


def open_context(settings: Settings, *, upgrade: bool, clock: Clock | None = None) -> Context:
    """A context for one-shot commands: the database, the clock, no notifier."""
    db = open_database(settings, upgrade=upgrade)
    return Context(db=db, clock=clock or SystemClock(), settings=settings)


def assemble(
    settings: Settings,
    db: Database,
    roles: Iterable[str] = ROLES,
    *,
    clock: Clock | None = None,
    registry: HandlerRegistry | None = None,
    exit_when_superseded: bool = False,
    on_exit: Callable[[], None] | None = None,
) -> Assembly:
    """Build the context, the notifier, the node and (with the api role) the app."""
    roles = set(roles)
    local = LocalNotifier()
    bridge = None if is_sqlite(settings.database_url) else PgNotifier(settings.database_url, local)
    ctx = Context(
        db=db,
        clock=clock or SystemClock(),
        settings=settings,
        notifier=bridge if bridge is not None else local,
    )
    node = Node(
        ctx,
        local,
        roles,
        registry,
        exit_when_superseded=exit_when_superseded,
        on_exit=on_exit,
    )
    app = create_app(ctx, scheduler=node.scheduler) if "api" in roles else None
    if app is not None:
        ui.install(app)
    return Assembly(ctx=ctx, notifier=local, bridge=bridge, node=node, app=app)


def first_start(ctx: Context) -> str | None:
    """On the first start of an empty embedded database: a tenant ``default`` and one key
    for it, returned to be shown once (None: not embedded, or not empty)."""
    if not is_sqlite(ctx.settings.database_url):
        return None
    return tenants.first_start(ctx)
