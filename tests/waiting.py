"""Bounded waits: every wait in the tests is for a signal, never for time to pass.

A signal is an event that whoever makes the change sets as it makes it: the scheduler
after each tick (``Scheduler.ticked``), a process after each look at the registry
(``Node.checked``), the worker pool whenever its attempts move (``WorkerPool.changed``),
the pruner after each pass, a test server as a request arrives. A wait that outlasts
:data:`WAIT_SECONDS` fails the test, saying what never happened; a healthy run never
comes near it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

# Long enough never to fire on a healthy run, short enough to fail a broken one quickly.
WAIT_SECONDS = 10.0

_T = TypeVar("_T")


async def within(awaitable: Awaitable[_T], what: str, seconds: float = WAIT_SECONDS) -> _T:
    """Await ``awaitable`` for ``seconds`` at most; after that, fail: ``what`` never
    happened."""
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except TimeoutError:
        raise AssertionError(f"{what}: not within {seconds:g} s") from None


async def until(
    check: Callable[[], bool],
    *signals: asyncio.Event,
    what: str = "the condition",
    seconds: float = WAIT_SECONDS,
) -> None:
    """Wait until ``check()`` holds, looking again each time one of ``signals`` is set.

    The signals are cleared before each look, so a change made after it wakes the next
    wait; ``check`` must read only state whose changes set one of them.
    """

    async def wait() -> None:
        while True:
            for signal in signals:
                signal.clear()
            if check():
                return
            waiters = [asyncio.ensure_future(signal.wait()) for signal in signals]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()

    await within(wait(), what, seconds)


async def until_in_thread(
    check: Callable[[], bool],
    changed: threading.Condition,
    *,
    what: str = "the condition",
    seconds: float = WAIT_SECONDS,
) -> None:
    """Wait, off the event loop, until ``check()`` holds, for state kept by another thread
    (a server on loopback) that notifies ``changed`` as the state moves."""

    def wait() -> bool:
        with changed:
            return changed.wait_for(check, seconds)

    if not await asyncio.to_thread(wait):
        raise AssertionError(f"{what}: not within {seconds:g} s")


async def set_in_thread(
    event: threading.Event, *, what: str = "the event", seconds: float = WAIT_SECONDS
) -> None:
    """Wait, off the event loop, for another thread to set ``event``."""
    if not await asyncio.to_thread(event.wait, seconds):
        raise AssertionError(f"{what}: not within {seconds:g} s")
