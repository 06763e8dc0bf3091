"""What every part of the SQL store shares: the transaction's connection, building
records from rows, one batched UPDATE, and how database errors are told apart."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import fields
from typing import Any, TypeVar

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

_R = TypeVar("_R")


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be reached or used (retry the same
    work later) rather than that it refused this work's values (never retry as is)."""
    if isinstance(exc, sa.exc.DBAPIError):
        return bool(exc.connection_invalidated) or (
            isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError)
            and not _refused_value(exc)
        )
    return isinstance(exc, sa.exc.DisconnectionError | sa.exc.TimeoutError)


def gave_way(exc: BaseException) -> bool:
    """Whether the database aborted this transaction in favour of a concurrent one (a
    deadlock or a serialization failure): the work itself may well succeed on retry."""
    # SQLSTATE class 40: transaction rollback (serialization failure, deadlock).
    orig = getattr(exc, "orig", None)
    return isinstance(orig, psycopg.Error) and str(orig.sqlstate or "").startswith("40")


def _refused_value(exc: sa.exc.DBAPIError) -> bool:
    # SQLite reports a value above its size limit as an OperationalError on some
    # versions of the driver: the value is at fault, not the database.
    return "too big" in str(exc.orig)


_POSITIONAL: dict[tuple[type[Any], tuple[str, ...]], bool] = {}


def record(cls: type[_R], row: Any) -> _R:
    """The record ``cls`` of a result row."""
    # Building from the row's positions is much cheaper than from a mapping; it is used
    # when the row's columns are exactly the record's fields, in order.
    key = (cls, tuple(row._fields))
    positional = _POSITIONAL.get(key)
    if positional is None:
        positional = _POSITIONAL[key] = tuple(f.name for f in fields(cls)) == key[1]  # type: ignore[arg-type]
    return cls(*row) if positional else cls(**row._mapping)


def param(column: sa.Column[Any]) -> sa.BindParameter[Any]:
    """The bound value of ``column`` in each row of a :func:`bulk_update`."""
    return sa.bindparam(f"b_{column.name}", type_=column.type)


def bulk_update(
    conn: sa.Connection,
    table: sa.Table,
    rows: Sequence[Any],
    *,
    match: Iterable[str],
    set_: Iterable[str] = (),
    where: Iterable[sa.ColumnElement[bool]] = (),
    values: Mapping[str, Any] | None = None,
    bound: Iterable[str] = (),
) -> None:
    """One UPDATE run for every row (an executemany): the rows of ``table`` whose
    ``match`` columns equal the record's attributes of those names, and that meet
    ``where``, take the record's ``set_`` attributes and ``values`` (expressions, which
    read the record's ``bound`` attributes through :func:`param`)."""
    if not rows:
        return
    match, set_ = tuple(match), tuple(set_)
    c = table.c
    stmt = (
        table.update()
        .where(*(c[name] == param(c[name]) for name in match), *where)
        .values({**{name: param(c[name]) for name in set_}, **(values or {})})
    )
    names = tuple(dict.fromkeys([*match, *set_, *bound]))
    keys, values_of = tuple(f"b_{name}" for name in names), operator.attrgetter(*names)
    if len(names) == 1:
        conn.execute(stmt, [{keys[0]: values_of(r)} for r in rows])
        return
    conn.execute(stmt, [dict(zip(keys, values_of(r), strict=True)) for r in rows])


class TxBase:
    """One transaction's connection; each part of the store adds its statements."""

    def __init__(self, conn: sa.Connection, postgres: bool) -> None:
        self.conn = conn
        self.postgres = postgres

    def _insert(self, table: sa.Table) -> Any:
        return postgresql.insert(table) if self.postgres else sqlite.insert(table)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: an exception inside undoes only what it did, and the
        enclosing transaction can go on (used to isolate one failing item of a batch)."""
        with self.conn.begin_nested():
            yield
