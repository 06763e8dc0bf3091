"""Connections taken from a SQLAlchemy pool and never given back.

Every test's database is watched (see ``tests/conftest.py``): when the test ends, each
connection checked out of the engine's pool must be back in it. A connection kept holds
a SQLite read snapshot or write lock, or one of PostgreSQL's connection slots, for as
long as the process lives, and a pool that runs dry makes the next caller wait.

The watch notes where each connection was taken, so a failure names the code that kept
it. The engines use a ``QueuePool`` on a SQLite file and on PostgreSQL (its own count,
``checkedout()``, must agree); an in-memory SQLite database uses a ``StaticPool``, which
has no count, so there the watch's own bookkeeping is the check.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

# Frames inside these are the machinery of taking a connection, not who took it.
_MACHINERY = (
    str(Path(sa.__file__).parent),
    str(Path(__file__)),
    "contextlib.py",
    "threading.py",
    "concurrent/futures",
    "asyncio/",
)
_FRAMES = 6


class PoolWatch:
    """Counts the connections checked out of ``engine``'s pool, and where each was taken."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        # Connection record -> where each checkout of it not yet returned was made.
        self._out: dict[int, list[list[str]]] = {}
        # ``dispose()`` replaces the pool with one that has the same listeners.
        self._pool = engine.pool
        event.listen(engine.pool, "checkout", self._checked_out)
        event.listen(engine.pool, "checkin", self._checked_in)

    def close(self) -> None:
        for pool in {self._pool, self.engine.pool}:
            for name, listener in (("checkout", self._checked_out), ("checkin", self._checked_in)):
                if event.contains(pool, name, listener):
                    event.remove(pool, name, listener)

    def _checked_out(self, _dbapi: Any, record: Any, _proxy: Any) -> None:
        site = _caller()
        with self._lock:
            self._out.setdefault(id(record), []).append(site)

    def _checked_in(self, _dbapi: Any, record: Any) -> None:
        with self._lock:
            sites = self._out.get(id(record))
            if sites:
                sites.pop(0)
                if not sites:
                    del self._out[id(record)]

    def leaks(self) -> list[list[str]]:
        """Where each connection still checked out was taken (innermost frame first)."""
        with self._lock:
            return [site for sites in self._out.values() for site in sites]

    def assert_all_returned(self) -> None:
        """Fail, naming where each was taken, if a connection is still checked out."""
        leaks = self.leaks()
        pool = self.engine.pool
        counted = pool.checkedout() if isinstance(pool, sa.pool.QueuePool) else len(leaks)
        if not leaks and counted == 0:
            return
        lines = [
            f"{max(counted, len(leaks))} connection(s) of {self.engine.url.render_as_string()} "
            "were checked out of the pool and never returned (close the connection, or "
            "leave the `with` block that opened it, before the test ends)"
        ]
        for n, site in enumerate(leaks, 1):
            lines.append(f"  leak {n}, taken at:")
            lines.extend(f"    {frame}" for frame in site)
        if counted != len(leaks):
            lines.append(f"  (the pool counts {counted} checked out; the watch saw {len(leaks)})")
        raise AssertionError("\n".join(lines))


@contextmanager
def watched(engine: sa.Engine) -> Iterator[PoolWatch]:
    """Watch ``engine``'s pool for the block; fail at its end if a connection is kept."""
    watch = PoolWatch(engine)
    try:
        yield watch
        watch.assert_all_returned()
    finally:
        watch.close()


def _caller() -> list[str]:
    """The innermost frames outside SQLAlchemy and the standard library's plumbing, as
    ``file:line in function`` (cheap: no source lines are read until a leak is shown)."""
    frame = sys._getframe(2)
    site: list[str] = []
    while frame is not None and len(site) < _FRAMES:
        filename = frame.f_code.co_filename
        if not any(part in filename for part in _MACHINERY):
            site.append(f"{_short(filename)}:{frame.f_lineno} in {frame.f_code.co_name}")
        frame = frame.f_back  # type: ignore[assignment]
    thread = threading.current_thread()
    if thread is not threading.main_thread():
        site.append(f"(in thread {thread.name})")
    return site


def _short(filename: str) -> str:
    for marker in ("/src/", "/tests/"):
        index = filename.rfind(marker)
        if index >= 0:
            return filename[index + 1 :]
    return filename
