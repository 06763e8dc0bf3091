"""Engines for the two backends, configured for a scheduler's access pattern."""

from __future__ import annotations

import os
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalise_url(url: str) -> str:
    """Accept the plain ``postgresql://`` form users write; psycopg 3 is the driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


SUPPORTED_DATABASES = (
    "sqlite (sqlite:///path/to/tickwork.db) and postgresql (postgresql://user@host:5432/db)"
)


class UnsupportedDatabase(ValueError):
    """A database URL tickwork cannot run on."""


def check_url(url: str) -> str:
    """``url`` in the form the engine takes (see :func:`normalise_url`), or
    :class:`UnsupportedDatabase` naming the databases tickwork runs on. Never says more
    about the URL than its scheme, which holds no secret."""
    normalised = normalise_url(url)
    try:
        parsed = sa.make_url(normalised)
    except sa.exc.ArgumentError:
        raise UnsupportedDatabase(
            f"not a database URL; tickwork runs on {SUPPORTED_DATABASES}"
        ) from None
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if (backend, driver) in (("sqlite", "pysqlite"), ("postgresql", "psycopg")):
        return normalised
    scheme = parsed.drivername
    if backend == "postgresql":
        raise UnsupportedDatabase(
            f"{scheme}:// names the {driver} driver; write postgresql:// (tickwork's "
            "driver is psycopg 3)"
        )
    raise UnsupportedDatabase(
        f"{scheme} databases are not supported; tickwork runs on {SUPPORTED_DATABASES}"
    )


def create_engine(url: str, *, pool_size: int = 10, **kwargs: Any) -> Engine:
    url = check_url(url)
    if is_sqlite(url):
        return _sqlite_engine(url, **kwargs)
    engine = sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        # No ping before each use (a round trip per transaction): a connection that died
        # with the server fails its statement, the pool drops every connection of that
        # generation, and the caller's loop retries on a fresh one.
        pool_pre_ping=False,
        pool_recycle=1800,
        # Server-side $n placeholders: psycopg then sends the statement as is instead of
        # rewriting %(name)s placeholders in Python, which costs ~100 µs per row on a
        # bulk insert whose text is too long for its cache.
        paramstyle="numeric_dollar",
        connect_args={"cursor_factory": psycopg.RawCursor},
        **kwargs,
    )
    return engine


def _create_private_file(url: str) -> None:
    """Create the database file readable by its owner only (0600) if it does not exist.

    SQLite gives the ``-wal`` and ``-shm`` files the mode of the database file, so they
    are private too. An existing file keeps the mode it has: the operator chose it.
    """
    parsed = sa.make_url(url)
    path = parsed.database
    if not path or path == ":memory:" or path.startswith("file:") or parsed.query.get("uri"):
        return
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    except OSError:
        return  # a missing directory and the like: SQLite reports it in its own words
    os.close(fd)


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    memory = url in ("sqlite://", "sqlite:///:memory:")
    if not memory:
        _create_private_file(url)
    pooling: dict[str, Any] = (
        {"poolclass": sa.pool.StaticPool}
        if memory
        else {"poolclass": sa.pool.QueuePool, "pool_size": 8, "max_overflow": 8}
    )
    engine = sa.create_engine(
        url,
        # The driver's own transaction handling is off: we issue BEGIN ourselves, so
        # that writers can take the lock up front (BEGIN IMMEDIATE) and never deadlock
        # upgrading a read lock, which busy_timeout cannot resolve.
        connect_args={"isolation_level": None, "check_same_thread": False},
        **(pooling | kwargs),
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        # Pages freed by retention go back to the file system (tickwork.services.retention
        # runs PRAGMA incremental_vacuum). It takes effect only on a file that has no
        # table yet; an older file keeps its mode until VACUUM (`tickwork db vacuum`).
        cur.execute("PRAGMA auto_vacuum=INCREMENTAL")
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = "DEFERRED" if conn.get_execution_options().get("tickwork_readonly") else "IMMEDIATE"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def vacuum_sqlite(engine: Engine) -> tuple[str, int]:
    """Rewrite a SQLite file in ``auto_vacuum=INCREMENTAL`` mode (one ``VACUUM``: the
    whole file is copied, and writers wait meanwhile), giving its free pages back to the
    file system; returns the mode it had and its size in bytes after. A file created by
    this release is in that mode already; an older one needs this once."""
    if not is_sqlite(str(engine.url)):
        raise UnsupportedDatabase("only a SQLite file is vacuumed; PostgreSQL's autovacuum does it")
    modes = {0: "none", 1: "full", 2: "incremental"}
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        assert conn is not None
        before = modes.get(int(conn.execute("PRAGMA auto_vacuum").fetchone()[0]), "unknown")
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
        size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        raw.close()
    return before, pages * size
