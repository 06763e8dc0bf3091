"""The SQL store: one implementation for SQLite and PostgreSQL.

Every method runs inside a transaction opened by the caller (:meth:`Database.write` or
:meth:`Database.read`); services decide where transactions begin and end. The current
instant is always a bound parameter: the store never asks the database for the time.

Each module implements one port of :mod:`tickwork.storage.ports` (tenancy, catalog,
scheduling, history, queue, leadership); :class:`Tx` is all of them on one connection.
"""

from tickwork.storage.sql.base import gave_way, is_outage
from tickwork.storage.sql.database import Database, Tx

__all__ = ["Database", "Tx", "gave_way", "is_outage"]
