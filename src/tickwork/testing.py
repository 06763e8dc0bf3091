"""Public test helpers for tickwork users and tickwork's own tests."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import os
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tickwork.services.context import Context

__all__ = ["FakeClock", "register_handlers"]


class FakeClock:
    """A clock that moves only when told to.

    ``advance``/``set`` move time forward and release every ``sleep_until`` whose deadline
    has been reached, so a loop under test runs exactly as it would in real time, without
    waiting.
    """

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2026, 1, 1, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._mono = 0.0
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def set(self, instant: datetime) -> None:
        """Move to ``instant`` (never backwards)."""
        if instant.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        instant = instant.astimezone(UTC)
        if instant < self._now:
            raise ValueError("FakeClock cannot move backwards")
        self._mono += (instant - self._now).total_seconds()
        self._now = instant
        self._release()

    def advance(self, seconds: float = 0, **kwargs: float) -> datetime:
        """Move forward by ``seconds`` (or ``timedelta`` keyword arguments)."""
        self.set(self._now + timedelta(seconds=seconds, **kwargs))
        return self._now

    def next_deadline(self) -> datetime | None:
        """The earliest deadline anyone is sleeping until, if any."""
        self._sleepers = [s for s in self._sleepers if not s[2].done()]
        heapq.heapify(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    def _release(self) -> None:
        while self._sleepers and (self._sleepers[0][0] <= self._now or self._sleepers[0][2].done()):
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    async def sleep_until(self, deadline: datetime, wake: asyncio.Event | None = None) -> bool:
        if wake is not None and wake.is_set():
            return True
        if deadline <= self._now:
            return False
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._seq), fut))
        if wake is None:
            await fut
            return False
        waiter: asyncio.Future[None] = asyncio.ensure_future(_wait_event(wake))
        try:
            await asyncio.wait([fut, waiter], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            if not fut.done():
                fut.cancel()
        return wake.is_set() and not (fut.done() and not fut.cancelled())


async def _wait_event(event: asyncio.Event) -> None:
    await event.wait()


def register_handlers(
    ctx: Context, names: Iterable[str], *, live_for: timedelta = timedelta(days=3650)
) -> str:
    """Record a live worker process of ``ctx``'s deployment that registered these python
    handler names, so the API accepts agents naming them without a running worker.

    The process stays live for ``live_for`` of ``ctx.clock``'s time (long by default, so
    a fake clock moved by days keeps it). Returns its process id.
    """
    from tickwork.domain.ids import new_id
    from tickwork.storage.records import Process

    now = ctx.clock.now()
    process = Process(
        id=new_id("prc", now),
        deployment_id=ctx.settings.deployment_id,
        version=ctx.settings.version,
        host="test",
        pid=os.getpid(),
        roles=["worker"],
        handlers=sorted(set(names)),
        started_at=now,
        heartbeat_at=now,
        expires_at=now + live_for,
    )
    with ctx.db.write() as tx:
        tx.upsert_deployment(ctx.settings.deployment_id, ctx.settings.version, now)
        tx.upsert_process(process)
    return process.id
