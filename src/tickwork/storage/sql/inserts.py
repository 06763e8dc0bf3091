"""Inserting invocations as one set-based statement per batch.

The scheduler inserts a batch of invocations on every dispatch pass, so this is a hot
path: each row's values are put in the database's own form here, once (UTC text for a
SQLite instant, the JSON text of the payload; aware datetimes for PostgreSQL's
``timestamptz``), and the batch is sent as one statement, instead of letting SQLAlchemy
build a parameter set and run each column's bind processing per row.

* SQLite: one multi-row ``VALUES`` per at most :data:`SQLITE_MAX_PARAMETERS` values.
* PostgreSQL: one ``INSERT ... SELECT FROM unnest(...)`` with one array per column, so
  the statement and its plan are the same whatever the batch size.

Both skip a row whose idempotency key exists already and return the ids inserted.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from tickwork.storage import tables as t
from tickwork.storage.ports import NewInvocation
from tickwork.storage.sql.base import SQLITE_MAX_PARAMETERS
from tickwork.storage.types import UTCDateTime, aware_instant, sqlite_instant

_COLUMNS = tuple(f.name for f in fields(NewInvocation))
_values_of = operator.attrgetter(*_COLUMNS)
_INSTANTS = tuple(
    i for i, name in enumerate(_COLUMNS) if isinstance(t.invocations.c[name].type, UTCDateTime)
)
_DOCUMENTS = tuple(
    i for i, name in enumerate(_COLUMNS) if isinstance(t.invocations.c[name].type, sa.JSON)
)
_SQLITE_ROWS = SQLITE_MAX_PARAMETERS // len(_COLUMNS)
_SQLITE_ROW = "(" + ", ".join("?" * len(_COLUMNS)) + ")"
_SQLITE_HEAD = f"INSERT INTO invocations ({', '.join(_COLUMNS)}) VALUES "
_SQLITE_TAIL = " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"


def _pg_array_type(column: sa.Column[Any]) -> Any:
    kind = column.type
    if isinstance(kind, UTCDateTime):
        return postgresql.ARRAY(sa.DateTime(timezone=True))
    if isinstance(kind, sa.Integer):
        return postgresql.ARRAY(sa.BigInteger())
    # Text, and the payload as its JSON text (cast to jsonb in the statement).
    return postgresql.ARRAY(sa.Text())


def _pg_cast(name: str) -> str:
    column = t.invocations.c[name]
    if isinstance(column.type, sa.JSON):
        return f"v.{name}::jsonb"
    if isinstance(column.type, sa.Integer):
        return f"v.{name}::integer"
    return f"v.{name}"


_PG_INSERT = sa.text(
    f"INSERT INTO invocations ({', '.join(_COLUMNS)}) "
    f"SELECT {', '.join(_pg_cast(name) for name in _COLUMNS)} "
    f"FROM unnest({', '.join(f':{name}' for name in _COLUMNS)}) AS v({', '.join(_COLUMNS)}) "
    "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
).bindparams(
    *(sa.bindparam(name, type_=_pg_array_type(t.invocations.c[name])) for name in _COLUMNS)
)


def insert_invocations(
    conn: sa.Connection, postgres: bool, rows: Sequence[NewInvocation]
) -> list[str]:
    """Insert ``rows``, skipping any whose idempotency key exists; the ids inserted."""
    if not rows:
        return []
    if postgres:
        return _insert_postgres(conn, rows)
    return _insert_sqlite(conn, rows)


def _insert_sqlite(conn: sa.Connection, rows: Sequence[NewInvocation]) -> list[str]:
    document = _document_form(conn)
    # A batch shares few instants (its rows' created_at, the slots of one tick): each
    # is written once. Equal aware instants have equal UTC text, so they may share it.
    texts: dict[datetime | None, str | None] = {None: None}
    inserted: list[str] = []
    for start in range(0, len(rows), _SQLITE_ROWS):
        chunk = rows[start : start + _SQLITE_ROWS]
        flat: list[Any] = []
        for row in chunk:
            values = list(_values_of(row))
            for i in _INSTANTS:
                instant = values[i]
                if instant not in texts:
                    texts[instant] = sqlite_instant(instant)
                values[i] = texts[instant]
            for i in _DOCUMENTS:
                values[i] = document(values[i])
            flat += values
        sql = _SQLITE_HEAD + ", ".join([_SQLITE_ROW] * len(chunk)) + _SQLITE_TAIL
        inserted += [str(r[0]) for r in conn.exec_driver_sql(sql, tuple(flat))]
    return inserted


def _document_form(conn: sa.Connection) -> Callable[[Any], Any]:
    """The payload column's own bind processing on this dialect: the JSON text it
    stores (so a row inserted here reads exactly like one inserted through the table)."""
    kind = t.invocations.c.payload.type
    process = kind.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return process if process is not None else json.dumps


def _insert_postgres(conn: sa.Connection, rows: Sequence[NewInvocation]) -> list[str]:
    columns = [list(values) for values in zip(*map(_values_of, rows), strict=True)]
    for i in _INSTANTS:
        columns[i] = [aware_instant(value) for value in columns[i]]
    for i in _DOCUMENTS:
        # jsonb keeps the document, not the text: any valid JSON text of it will do.
        columns[i] = [json.dumps(value) for value in columns[i]]
    params = dict(zip(_COLUMNS, columns, strict=True))
    return [str(r[0]) for r in conn.execute(_PG_INSERT, params)]
