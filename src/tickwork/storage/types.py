"""Column types shared by every backend."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """An instant: aware in Python, UTC at rest, naive values refused.

    SQLite stores it as UTC text (which sorts like the instant); PostgreSQL as
    ``timestamptz``.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r} refused: instants must be aware")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    # SQLite: straight to and from the text SQLAlchemy's DATETIME stores
    # ("YYYY-MM-DD HH:MM:SS.ffffff", UTC), with the C ``isoformat``/``fromisoformat``
    # instead of two Python-level conversions per value: the hot paths (dispatch,
    # claims, outcomes) bind and read many instants per row.

    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        return sqlite_instant

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: Any) -> datetime | None:
            if value is None:
                return None
            if isinstance(value, str):
                return datetime.fromisoformat(value).replace(tzinfo=UTC)
            assert isinstance(value, datetime)
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

        return process

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def sqlite_instant(value: datetime | None) -> str | None:
    """An instant as SQLite stores it: UTC text ``YYYY-MM-DD HH:MM:SS.ffffff`` (the bound
    form of :class:`UTCDateTime`; a statement that binds values itself uses this)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    offset = value.utcoffset()
    if offset is None:
        raise ValueError(f"naive datetime {value!r} refused: instants must be aware")
    return (value - offset).replace(tzinfo=None).isoformat(" ", "microseconds")


def aware_instant(value: datetime | None) -> datetime | None:
    """An instant as bound for PostgreSQL's ``timestamptz``: ``value`` itself once it is
    known to be aware (the check :class:`UTCDateTime` makes)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r} refused: instants must be aware")
    return value


JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
