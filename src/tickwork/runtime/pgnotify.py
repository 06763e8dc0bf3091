"""Wake-ups across processes with PostgreSQL ``LISTEN/NOTIFY``.

Every local notification is also sent on the ``tickwork`` channel; notifications from
other processes set the local events. Both directions reconnect by themselves after the
database goes away; until then the loops' capped sleeps are the fallback, so a lost
notification delays work by at most one poll interval and loses nothing.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable

import psycopg

from tickwork.clock import blocking_pause
from tickwork.logging import get_logger
from tickwork.runtime.notify import LocalNotifier
from tickwork.storage.urls import libpq_url

log = get_logger("tickwork.notify")

CHANNEL = "tickwork"
# NOTIFY payloads must stay under 8000 bytes.
MAX_IDS_PER_NOTIFY = 200
RECONNECT_BACKOFF = (0.5, 1.0, 2.0, 5.0)
_STOP = object()


class PgNotifier:
    """A :class:`~tickwork.services.context.Notifier` that reaches every process."""

    def __init__(self, url: str, local: LocalNotifier) -> None:
        self.url = libpq_url(url)
        self.local = local
        self._outbox: queue.Queue[object] = queue.Queue()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.listening = threading.Event()

    # -- Notifier -----------------------------------------------------------------------

    def triggers_changed(self) -> None:
        self.local.triggers_changed()
        self._outbox.put("t")

    def invocations_ready(self) -> None:
        self.local.invocations_ready()
        self._outbox.put("i")

    def leadership_changed(self) -> None:
        self.local.leadership_changed()
        self._outbox.put("s")

    def invocations_cancelled(self, ids: Iterable[str]) -> None:
        batch = list(ids)
        if not batch:
            return
        self.local.invocations_cancelled(batch)
        for start in range(0, len(batch), MAX_IDS_PER_NOTIFY):
            self._outbox.put("c:" + ",".join(batch[start : start + MAX_IDS_PER_NOTIFY]))

    # -- threads ------------------------------------------------------------------------

    def start(self) -> None:
        for target, name in ((self._listen, "listen"), (self._send, "notify")):
            thread = threading.Thread(target=target, name=f"tickwork-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        self._outbox.put(_STOP)
        for thread in self._threads:
            thread.join(timeout=5)

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url, autocommit=True, connect_timeout=5)

    def _listen(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                with self._connect() as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    if failures:
                        log.info("listening for notifications again")
                        # Anything sent while we were away is lost: look at everything.
                        self.local.triggers_changed()
                        self.local.invocations_ready()
                        self.local.leadership_changed()
                    failures = 0
                    self.listening.set()
                    while not self._stopping.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self._deliver(note.payload)
            except Exception as exc:
                self.listening.clear()
                if self._stopping.is_set():
                    return
                delay = RECONNECT_BACKOFF[min(failures, len(RECONNECT_BACKOFF) - 1)]
                failures += 1
                log.warning(
                    "notification listener lost its connection; reconnecting",
                    error=f"{type(exc).__name__}: {exc}",
                    retry_in_seconds=delay,
                )
                blocking_pause(delay)

    def _deliver(self, payload: str) -> None:
        if payload == "t":
            self.local.triggers_changed()
        elif payload == "i":
            self.local.invocations_ready()
        elif payload == "s":
            self.local.leadership_changed()
        elif payload.startswith("c:"):
            self.local.invocations_cancelled([i for i in payload[2:].split(",") if i])

    def _send(self) -> None:
        conn: psycopg.Connection[tuple[object, ...]] | None = None
        while True:
            item = self._outbox.get()
            if item is _STOP:
                break
            # Coalesce a burst of identical wake-ups into one message each.
            pending = [item]
            while not self._outbox.empty():
                more = self._outbox.get_nowait()
                if more is _STOP:
                    self._outbox.put(_STOP)
                    break
                pending.append(more)
            payloads = list(dict.fromkeys(str(p) for p in pending))
            try:
                if conn is None or conn.closed:
                    conn = self._connect()
                for payload in payloads:
                    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
            except Exception as exc:
                log.warning(
                    "could not send a notification; others will notice on their next poll",
                    error=f"{type(exc).__name__}: {exc}",
                )
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()
