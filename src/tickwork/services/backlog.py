"""The queue of work waiting in the database, for the backlog gauges of ``/metrics``.

Three indexed queries in one read transaction (each a count or a first row of a partial
index on the active statuses: its cost grows with the backlog, never with the history),
and the answer is kept for a second, so scrapes at any rate cost at most one round of
them per second per process.
"""

from __future__ import annotations

import threading
import weakref
from datetime import datetime, timedelta

from tickwork.logging import get_logger
from tickwork.metrics import Backlog
from tickwork.services.context import Context
from tickwork.storage.records import PENDING, RUNNING
from tickwork.storage.sql import Database

__all__ = ["CACHE_FOR", "backlog", "read_backlog"]

CACHE_FOR = timedelta(seconds=1)

log = get_logger("tickwork.metrics")
_lock = threading.Lock()
# Per database: (when it was read, what was read; None when the database did not answer).
_cache: weakref.WeakKeyDictionary[Database, tuple[datetime, Backlog | None]] = (
    weakref.WeakKeyDictionary()
)


def read_backlog(ctx: Context) -> Backlog:
    """Read the backlog now (raises what the database raises)."""
    now = ctx.clock.now()
    with ctx.db.read() as tx:
        pending = tx.count_active(PENDING)
        running = tx.count_active(RUNNING)
        earliest = tx.earliest_claimable()
    age = 0.0 if earliest is None else max(0.0, (now - earliest).total_seconds())
    return Backlog(pending=pending, running=running, oldest_pending_age_seconds=age)


def backlog(ctx: Context) -> Backlog | None:
    """The backlog, read at most once per :data:`CACHE_FOR`; None while the database does
    not answer (the gauges are then left out of the scrape: ``/readyz`` says why)."""
    now = ctx.clock.now()
    with _lock:
        cached = _cache.get(ctx.db)
        if cached is not None and now - cached[0] < CACHE_FOR and cached[0] <= now:
            return cached[1]
        try:
            value: Backlog | None = read_backlog(ctx)
        except Exception as exc:  # an outage: no gauges rather than a failed scrape
            log.warning(
                "backlog gauges left out: the database did not answer", error=type(exc).__name__
            )
            value = None
        _cache[ctx.db] = (now, value)
        return value
