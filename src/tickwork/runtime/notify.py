"""In-process wake-ups: API writes wake the scheduler and workers at once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable


class LocalNotifier:
    """Sets asyncio events from any thread (API handlers run in a thread pool)."""

    def __init__(self) -> None:
        self.triggers = asyncio.Event()
        self.invocations = asyncio.Event()
        # Who schedules or takes new work may have changed (a lease released, a
        # deployment gone): standbys look again at once.
        self.leadership = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cancel_listeners: list[Callable[[list[str]], None]] = []
        self._lock = threading.Lock()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def on_cancel(self, listener: Callable[[list[str]], None]) -> None:
        with self._lock:
            self._cancel_listeners.append(listener)

    def _call(self, fn: Callable[[], None]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            fn()
        else:
            loop.call_soon_threadsafe(fn)

    def triggers_changed(self) -> None:
        self._call(self.triggers.set)

    def invocations_ready(self) -> None:
        self._call(self.invocations.set)

    def leadership_changed(self) -> None:
        self._call(self._leadership_changed)

    def _leadership_changed(self) -> None:
        self.leadership.set()
        self.triggers.set()  # the scheduler loop sleeps on this one

    def invocations_cancelled(self, ids: Iterable[str]) -> None:
        batch = list(ids)
        if not batch:
            return
        with self._lock:
            listeners = list(self._cancel_listeners)
        for listener in listeners:
            self._call(lambda listener=listener: listener(batch))  # type: ignore[misc]
