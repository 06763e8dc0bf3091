"""A loopback HTTP server that records what it receives, and a way to deliver one real
webhook call to any URL with tickwork's own target."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tickwork.clock import SystemClock
from tickwork.targets.base import TargetCall, TargetResult
from tickwork.targets.egress import EgressPolicy
from tickwork.targets.pinning import egress_client
from tickwork.targets.webhook import WebhookTarget


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]  # names in lower case
    body: bytes


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: CaptureServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        with self.server.lock:
            self.server.received.append(Received(headers, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


class CaptureServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.received: list[Received] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/hook"

    def last(self) -> Received:
        with self.lock:
            return self.received[-1]


@contextmanager
def capture_server() -> Iterator[CaptureServer]:
    server = CaptureServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def webhook_call(**changes: Any) -> TargetCall:
    fields: dict[str, Any] = {
        "invocation_id": "inv_01jnvbd5r4m1c7w2x9y8z6t5s3",
        "idempotency_key": "sched:trg_01jnv3x7k2q9c8d4f6g5h3j2kq:2026-03-03T07:30:00Z",
        "trigger_id": "trg_01jnv3x7k2q9c8d4f6g5h3j2kq",
        "trigger_name": "morning-report",
        "tenant": "acme",
        "project": "demo",
        "agent": "writer",
        "ref_name": "main",
        "ref_revision": 2,
        "scheduled_for": datetime(2026, 3, 3, 7, 30, tzinfo=UTC),
        "attempt": 1,
        "origin": "schedule",
        "message": "Schreib den Bericht für das Team — Zürich",
        "payload": {"team": "core", "city": "Zürich"},
        "timezone": "Europe/Berlin",
    }
    fields.update(changes)
    return TargetCall(**fields)


async def deliver(url: str, secret: str | None, call: TargetCall | None = None) -> TargetResult:
    """One real call of tickwork's webhook target to ``url``, signed now (receivers'
    libraries check the timestamp against their own clock)."""
    async with egress_client(EgressPolicy(allow_private=True), timeout=10.0) as client:
        target = WebhookTarget(url, secret, client, SystemClock())
        return await target.call(call or webhook_call())
