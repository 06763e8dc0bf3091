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
from sqlalchemy.sql import visitors

_R = TypeVar("_R")

# SQLite's limit on one statement's parameters (SQLITE_MAX_VARIABLE_NUMBER since 3.32;
# tickwork needs 3.35 for RETURNING): a statement that binds a batch's values itself
# sends at most this many at once.
SQLITE_MAX_PARAMETERS = 32766


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


_POSITIONAL: dict[tuple[type[Any], tuple[str, ...]], tuple[str, ...]] = {}


def record(cls: type[_R], row: Any) -> _R:
    """The record ``cls`` of a result row."""
    names = _positional(cls, tuple(row._fields))
    if not names:
        return cls(**row._mapping)
    made = object.__new__(cls)
    made.__dict__.update(zip(names, row, strict=True))
    return made


def records(cls: type[_R], result: sa.CursorResult[Any]) -> list[_R]:
    """The records ``cls`` of every row of ``result`` (:func:`record` of each, with the
    columns looked at once for the whole result rather than once per row)."""
    names = _positional(cls, tuple(result.keys()))
    if not names:
        return [cls(**row._mapping) for row in result]
    new, made = object.__new__, []
    for row in result:
        one = new(cls)
        one.__dict__.update(zip(names, row, strict=True))
        made.append(one)
    return made


def _positional(cls: type[Any], columns: tuple[str, ...]) -> tuple[str, ...]:
    """The field names to fill positionally from rows of ``columns``, or () to build
    the record from each row's mapping."""
    # Building from the row's positions is much cheaper than from a mapping; it is used
    # when the row's columns are exactly the record's fields, in order. Records are plain
    # frozen dataclasses (no slots, no __post_init__, every field given by the row), so
    # their field dict is filled at once instead of through the generated __init__, which
    # sets each field with object.__setattr__: the hot paths read thousands of rows.
    key = (cls, columns)
    names = _POSITIONAL.get(key)
    if names is None:
        own = tuple(f.name for f in fields(cls))
        plain = own == columns and hasattr(cls, "__dict__") and "__slots__" not in vars(cls)
        names = _POSITIONAL[key] = own if plain and not hasattr(cls, "__post_init__") else ()
    return names


def param(column: sa.Column[Any], name: str | None = None) -> sa.BindParameter[Any]:
    """The bound value of ``column`` in each row of a :func:`bulk_update`: the record's
    attribute of the column's name, or of ``name``, of the column's type."""
    return sa.bindparam(f"b_{name or column.name}", type_=column.type)


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
    returning: Iterable[sa.ColumnElement[Any]] = (),
    name: str | None = None,
) -> list[sa.Row[Any]]:
    """One UPDATE for every row: the rows of ``table`` whose ``match`` columns equal the
    record's attributes of those names, and that meet ``where``, take the record's
    ``set_`` attributes and ``values`` (expressions, which read the record's ``bound``
    attributes through :func:`param`). On PostgreSQL it is one statement for the whole
    batch (``UPDATE ... FROM unnest(...)``, each attribute one array parameter) and
    returns the ``returning`` columns of the rows it changed; on SQLite, where a
    statement costs no round trip, an executemany (and ``returning`` is not offered).
    Rows must differ in their ``match`` attributes.

    With a ``name``, the statement built on the first call is kept and used by every
    later call of that name, so the hot paths build none: give one only where ``where``
    and ``values`` are the same expressions on every call (reading the records' ``bound``
    attributes, never a value of the call)."""
    if not rows:
        return []
    match, set_, returning = tuple(match), tuple(set_), tuple(returning)
    names = tuple(dict.fromkeys([*match, *set_, *bound]))
    postgres = conn.dialect.name == "postgresql"
    if returning and not postgres:
        raise ValueError("bulk_update returns rows on PostgreSQL only")
    kept = None if name is None else _BUILT.get((name, postgres))
    if kept is None:
        if postgres:
            kept = _unnest_update(table, match, set_, tuple(where), values or {}, names, returning)
        else:
            c = table.c
            kept = (
                table.update()
                .where(*(c[n] == param(c[n]) for n in match), *where)
                .values({**{n: param(c[n]) for n in set_}, **(values or {})})
            )
        if name is not None:
            _BUILT[(name, postgres)] = kept
    if postgres:
        arrays = {f"a_{n}": list(map(operator.attrgetter(n), rows)) for n in names}
        result = conn.execute(kept, arrays)
        return list(result) if returning else []
    stmt = kept
    keys, values_of = tuple(f"b_{n}" for n in names), operator.attrgetter(*names)
    if len(names) == 1:
        conn.execute(stmt, [{keys[0]: values_of(r)} for r in rows])
    else:
        conn.execute(stmt, [dict(zip(keys, values_of(r), strict=True)) for r in rows])
    return []


_POSTGRESQL = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]
# The statements of named bulk updates, by name and whether on PostgreSQL.
_BUILT: dict[tuple[str, bool], sa.Update] = {}


def _array_type(kind: sa.types.TypeEngine[Any]) -> Any:
    # The column's own type, below any decorator: the values are bound as one array
    # each, converted by the driver, with no Python-side processing per value.
    if isinstance(kind, sa.types.TypeDecorator):
        kind = kind.impl_instance
    return postgresql.ARRAY(kind.dialect_impl(_POSTGRESQL))


def _traverse(value: Any, replace: Any) -> Any:
    """``value`` (an expression or a plain value) with bound parameters replaced."""
    if isinstance(value, sa.ClauseElement):
        return visitors.replacement_traverse(value, {}, replace)
    return value


def _unnest_update(
    table: sa.Table,
    match: tuple[str, ...],
    set_: tuple[str, ...],
    where: tuple[sa.ColumnElement[bool], ...],
    values: Mapping[str, Any],
    names: tuple[str, ...],
    returning: tuple[sa.ColumnElement[Any], ...],
) -> sa.Update:
    c = table.c
    kinds: dict[str, Any] = {name: c[name].type for name in (*match, *set_)}
    for expression in (*where, *values.values()):
        if isinstance(expression, sa.ClauseElement):
            for element in visitors.iterate(expression):
                if isinstance(element, sa.BindParameter) and element.key.startswith("b_"):
                    kinds.setdefault(element.key[2:], element.type)
    arrays = [sa.bindparam(f"a_{name}", type_=_array_type(kinds[name])) for name in names]
    v = (
        sa.func.unnest(*arrays)
        .table_valued(*(sa.column(name, kinds[name]) for name in names), name="v")
        .render_derived()
    )
    by_key = {f"b_{name}": v.c[name] for name in names}

    def from_v(element: Any) -> Any:
        if isinstance(element, sa.BindParameter) and element.key in by_key:
            return by_key[element.key]
        return None

    stmt = (
        table.update()
        .where(*(c[name] == v.c[name] for name in match), *(_traverse(w, from_v) for w in where))
        .values(
            {
                **{name: v.c[name] for name in set_},
                **{k: _traverse(e, from_v) for k, e in values.items()},
            }
        )
    )
    return stmt.returning(*returning) if returning else stmt


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
