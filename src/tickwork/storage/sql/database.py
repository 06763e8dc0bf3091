"""The database and its transactions."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from tickwork.storage.ports import Store
from tickwork.storage.sql.catalog import CatalogSql
from tickwork.storage.sql.control import ControlSql
from tickwork.storage.sql.health import HealthSql, NotificationsSql
from tickwork.storage.sql.history import HistorySql
from tickwork.storage.sql.idempotency import IdempotencySql
from tickwork.storage.sql.leadership import LeadershipSql
from tickwork.storage.sql.lookups import LookupsSql
from tickwork.storage.sql.queue import QueueSql
from tickwork.storage.sql.retention import RetentionSql
from tickwork.storage.sql.run_context import RunContextSql
from tickwork.storage.sql.scheduling import SchedulingSql
from tickwork.storage.sql.tenancy import TenancySql


class Tx(
    TenancySql,
    CatalogSql,
    SchedulingSql,
    HistorySql,
    QueueSql,
    LeadershipSql,
    RunContextSql,
    ControlSql,
    LookupsSql,
    IdempotencySql,
    RetentionSql,
    HealthSql,
    NotificationsSql,
):
    """Queries and commands inside one transaction: every port of
    :mod:`tickwork.storage.ports` on one connection."""


class Database:
    """An engine plus the transactions tickwork runs on it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """A read-write transaction (on SQLite it takes the write lock at BEGIN)."""
        if self._write_lock is None:
            with self.engine.connect() as conn, conn.begin():
                yield Tx(conn, self.is_postgres)
            return
        # SQLite has one writer at a time. Threads of this process queue here rather
        # than in SQLite's busy handler, which polls with sleeps of up to 100 ms.
        with self._write_lock, self.engine.connect() as conn, conn.begin():
            yield Tx(conn, self.is_postgres)

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """A transaction that only reads (never blocks writers on SQLite)."""
        with (
            self.engine.connect().execution_options(tickwork_readonly=True) as conn,
            conn.begin(),
        ):
            yield Tx(conn, self.is_postgres)

    def dispose(self) -> None:
        self.engine.dispose()


if TYPE_CHECKING:

    def _implements_every_port(tx: Tx) -> Store:
        return tx
