"""The one place tickwork reads the time.

Every component takes a :class:`Clock`. Production uses :class:`SystemClock`; tests use
:class:`tickwork.testing.FakeClock`, which moves only when told to, so schedules, leases
and retries are driven deterministically. Queries never call SQL ``now()``: the clock's
instant crosses into SQL as a bound parameter.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """A source of the current instant and a way to wait for a deadline."""

    def now(self) -> datetime:
        """The current instant, an aware UTC datetime."""
        ...

    def monotonic(self) -> float:
        """Seconds on a monotonic scale, for measuring durations."""
        ...

    async def sleep_until(self, deadline: datetime, wake: asyncio.Event | None = None) -> bool:
        """Wait until ``deadline`` or until ``wake`` is set, whichever comes first.

        Returns True when woken by the event, False when the deadline passed. Does not
        clear the event.
        """
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep_until(self, deadline: datetime, wake: asyncio.Event | None = None) -> bool:
        delay = (deadline - self.now()).total_seconds()
        if wake is None:
            if delay > 0:
                await asyncio.sleep(delay)
            return False
        if wake.is_set():
            return True
        if delay <= 0:
            return False
        try:
            await asyncio.wait_for(wake.wait(), timeout=delay)
        except TimeoutError:
            return False
        return True


async def pause(seconds: float) -> None:
    """A real pause, for back-off against an external system (never to wait for time)."""
    await asyncio.sleep(seconds)


def blocking_pause(seconds: float) -> None:
    """A real blocking pause, for threads polling an external system."""
    time.sleep(seconds)
