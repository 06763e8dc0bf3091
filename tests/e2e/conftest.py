"""End-to-end harness: ``tickwork serve`` as a real process (``tests.serving``), a real
HTTP receiver."""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving import Serve
from tickwork.services import resources, tenants
from tickwork.services.context import Context

pytestmark = pytest.mark.slow


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    """Poll a real process until ``predicate`` is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.05)  # real-time: polling another process


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float
    raw: bytes = b""


@dataclass
class Receiver:
    """An HTTP server on loopback that records every request.

    Paths: ``/ok`` answers 200 with a conversation id, ``/fail`` 500, ``/slow`` blocks
    until released (or the client goes away).
    """

    requests: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def received(self, path: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if path is None or r.path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            raw = self.rfile.read(length)
            if len(raw) < length or not raw:
                return  # the sender died mid-request
            body = json.loads(raw)
            with rec.lock:
                rec.requests.append(
                    Received(self.path, dict(self.headers.items()), body, time.monotonic(), raw)
                )
            if self.path == "/slow":
                rec.release.wait(30)
            status = 500 if self.path == "/fail" else 200
            payload = json.dumps({"conversation_id": "conv-" + body["invocation_id"][-6:]})
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload.encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    rec.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec
    rec.release.set()
    server.shutdown()
    server.server_close()


class Server(Serve):
    """``tickwork serve --port 0`` over a test database, as these tests run it: JSON log
    lines to ``server-N.log`` in the test's folder, private targets allowed (the receiver
    is on loopback), a 3 s worker lease; ``env`` adds to or overrides that."""

    started = 0
    log: Path

    def __init__(self, database_url: str, workdir: Path, *args: str, **env: str) -> None:
        Server.started += 1
        super().__init__(
            "--port",
            "0",
            *args,
            cwd=workdir,
            env={
                **os.environ,
                "TICKWORK_DATABASE_URL": database_url,
                "TICKWORK_ALLOW_PRIVATE_TARGETS": "1",
                "TICKWORK_LOG_FORMAT": "json",
                "TICKWORK_WORKER_LEASE_SECONDS": "3",
                **env,
            },
            log=workdir / f"server-{Server.started}.log",
        )


_NAMES = itertools.count(1)


@dataclass
class Api:
    client: httpx.Client
    base: str

    def url(self, path: str) -> str:
        return f"{self.base}/api/v1/tenants/acme/projects/proj{path}"

    def create_trigger(self, agent: str = "bot", **body: Any) -> dict[str, Any]:
        # Names are unique per agent and ref: each trigger made here gets its own.
        body.setdefault("name", f"t{next(_NAMES)}")
        r = self.client.post(self.url(f"/agents/{agent}/scheduled-triggers"), json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def invocations(self, trigger_id: str, agent: str = "bot") -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 200}
            if cursor:
                params["cursor"] = cursor
            r = self.client.get(
                self.url(f"/agents/{agent}/scheduled-triggers/{trigger_id}/invocations"),
                params=params,
            )
            assert r.status_code == 200, r.text
            page = r.json()
            items += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                return items


@pytest.fixture
def tickwork(
    ctx: Context, database_url: str, tmp_path: Path, receiver: Receiver
) -> Iterator[Callable[..., tuple[Server, Api]]]:
    """Start a server over the test database with tenant acme, project proj and webhook
    agents ``bot`` (→ /ok), ``failing`` (→ /fail) and ``slow`` (→ /slow)."""
    tenants.create_tenant(ctx, "acme")
    _, key = tenants.create_key(ctx, "acme")
    resources.put_project(ctx, "acme", "proj", None, None)
    for agent, path in (("bot", "/ok"), ("failing", "/fail"), ("slow", "/slow")):
        resources.put_agent(
            ctx,
            "acme",
            "proj",
            "main",
            agent,
            None,
            {"type": "webhook", "url": receiver.url + path, "secret": "s3cret"},
        )
    servers: list[Server] = []
    clients: list[httpx.Client] = []

    def start(*args: str, **env: str) -> tuple[Server, Api]:
        server = Server(database_url, tmp_path, *args, **env)
        server.start()  # on failure, stopped and reported
        servers.append(server)
        client = httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=10)
        clients.append(client)
        return server, Api(client, server.url)

    yield start
    for client in clients:
        client.close()
    # What a test left running is killed: its teardown needs no graceful stop.
    for server in servers:
        server.kill()
    # Logs of every process, for a failing test's report.
    for server in servers:
        if server.log.exists():
            print(f"--- {server.log.name}\n{server.log.read_text()[-4000:]}")
