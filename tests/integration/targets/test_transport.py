"""The webhook transport's connections, watched from the server's side: kept alive per
host name, bounded, closed when an answer is cut short or a call is cancelled, never sent
through a proxy from the environment (SPEC §9 "Egress")."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.waiting import until
from tickwork.errors import PermanentError
from tickwork.targets import egress
from tickwork.targets.base import TargetCall, TargetResult
from tickwork.targets.egress import EgressPolicy
from tickwork.targets.pinning import EgressClient, egress_client
from tickwork.targets.webhook import WebhookTarget
from tickwork.testing import FakeClock

NOW = datetime(2026, 3, 8, 7, 0, 5, tzinfo=UTC)
PROMPT = 10.0
LOOPBACK_ALLOWED = EgressPolicy(allow_private=True)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Server:
    """An HTTP/1.1 server on loopback that counts connections as they open and close.

    ``/ok`` answers at once and keeps the connection, ``/close`` answers and closes it,
    ``/cookie`` sets a cookie; ``/hang`` never answers; ``/drip`` announces a large body,
    sends a little of it and stops; ``/huge`` sends a large one.
    """

    def __init__(self) -> None:
        self.opened = 0
        self.closed = 0
        # Answers to /drip cut short after their first bytes.
        self.dripped = 0
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        # Set as a connection opens or closes and as a request arrives.
        self.changed = asyncio.Event()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    @property
    def open(self) -> int:
        return self.opened - self.closed

    async def wait_until(self, condition: Callable[[Server], bool]) -> None:
        await until(lambda: condition(self), self.changed, what="the server seeing it")

    def _note(self, **changes: int) -> None:
        for name, step in changes.items():
            setattr(self, name, getattr(self, name) + step)
        self.changed.set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._note(opened=1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name:
                        headers[name.strip().lower()] = value.strip()
                await reader.readexactly(int(headers.get("content-length", "0")))
                path = lines[0].split(" ")[1]
                self.paths.append(path)
                self.headers.append(headers)
                self.changed.set()
                if not await self._answer(path, reader, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client hung up
        finally:
            writer.close()
            self._handlers.discard(task)
            self._note(closed=1)

    async def _answer(
        self, path: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        if path == "/hang":
            await reader.read()  # until the client hangs up
            return False
        if path in ("/drip", "/huge"):
            size = 10 * 1024 * 1024
            writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
            if path == "/drip":
                writer.write(b"x" * 100)
                await writer.drain()
                self._note(dripped=1)
                await reader.read()
                return False
            chunk = b"x" * 65536
            for _ in range(size // len(chunk)):
                writer.write(chunk)
                await writer.drain()
            return True
        extra = b""
        if path == "/close":
            extra = b"Connection: close\r\n"
        elif path == "/cookie":
            extra = b"Set-Cookie: session=tenant-a; Path=/; Max-Age=3600\r\n"
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + extra + b"\r\nok")
        await writer.drain()
        return path != "/close"


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every name under .test resolves to 127.0.0.1; the list of names resolved."""
    real = egress.resolve
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[Any]:
        if host.endswith(".test"):
            asked.append(host)
            return [ipaddress.ip_address("127.0.0.1")]
        return await real(host, port)

    monkeypatch.setattr(egress, "resolve", resolve)
    return asked


def call() -> TargetCall:
    return TargetCall(
        invocation_id="inv_01",
        idempotency_key="sched:trg_01:2026-03-08T07:00:00Z",
        trigger_id="trg_01",
        trigger_name="t",
        tenant="acme",
        project="ops",
        agent="bot",
        ref_name="main",
        ref_revision=1,
        scheduled_for=NOW,
        attempt=1,
        origin="schedule",
        message="hello",
        payload={},
        timezone="UTC",
    )


async def deliver(client: EgressClient, url: str, max_bytes: int = 64 * 1024) -> TargetResult:
    return await WebhookTarget(url, "s3cret", client, FakeClock(NOW), max_bytes).call(call())


# --- pooling ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_calls_to_one_host_name_share_a_kept_alive_connection(
    server: Server, names: list[str]
) -> None:
    async with egress_client(LOOPBACK_ALLOWED, timeout=PROMPT) as http:
        for _ in range(3):
            assert (await deliver(http, server.url("/ok"))).response == "ok"
        assert server.opened == 1
        # Another name for the same address gets a connection of its own.
        await deliver(http, server.url("/ok", host="other.test"))
        assert server.opened == 2
    await server.wait_until(lambda s: s.open == 0)


@pytest.mark.anyio
async def test_idle_connections_are_bounded_closing_the_least_recently_used(
    server: Server, names: list[str]
) -> None:
    async with egress_client(LOOPBACK_ALLOWED, timeout=PROMPT, max_idle_connections=2) as http:
        for name in ("a.test", "b.test", "c.test", "d.test"):
            await deliver(http, server.url("/ok", host=name))
        await server.wait_until(lambda s: s.opened == 4 and s.open == 2)
        # The two kept are the most recent: d.test reuses its connection.
        await deliver(http, server.url("/ok", host="d.test"))
        assert server.opened == 4


@pytest.mark.anyio
async def test_every_new_connection_resolves_and_checks_the_name_again(
    server: Server, names: list[str]
) -> None:
    async with egress_client(LOOPBACK_ALLOWED, timeout=PROMPT) as http:
        await deliver(http, server.url("/close", host="hooks.test"))
        await deliver(http, server.url("/ok", host="hooks.test"))
        await deliver(http, server.url("/ok", host="hooks.test"))

    # The first connection was closed by the server: the second one resolved again,
    # and the third call reused the second connection.
    assert names == ["hooks.test", "hooks.test"]
    assert server.opened == 2


@pytest.mark.anyio
async def test_a_cookie_set_for_a_name_is_never_sent_back(server: Server, names: list[str]) -> None:
    # A name, not an address: a cookie jar would keep this cookie and send it on.
    async with egress_client(LOOPBACK_ALLOWED, timeout=PROMPT) as http:
        await deliver(http, server.url("/cookie", host="shop.test"))
        await deliver(http, server.url("/ok", host="shop.test"))
        assert not http.cookies

    assert server.paths == ["/cookie", "/ok"]
    assert all("cookie" not in headers for headers in server.headers)


# --- connections that must not go back to the pool ------------------------------------


@pytest.mark.anyio
async def test_a_call_cancelled_while_waiting_for_the_answer_closes_its_connection(
    server: Server,
) -> None:
    async with egress_client(LOOPBACK_ALLOWED, timeout=PROMPT) as http:
        attempt = asyncio.create_task(deliver(http, server.url("/hang")))
        await server.wait_until(lambda s: "/hang" in s.paths)

        attempt.cancel()
        with pytest.raises(asyncio.CancelledError):
            await attempt

        # The server sees the client hang up, and the next call opens a new connection.
        await server.wait_until(lambda s: s.closed == 1)
        assert (await deliver(http, server.url("/ok"))).response == "ok"
        assert server.opened == 2


@pytest.mark.anyio
async def test_a_call_cancelled_while_reading_the_body_closes_its_connection(
    server: Server,
) -> None:
    async with egress_client(LOOPBACK_ALLOWED, timeout=PROMPT) as http:
        attempt = asyncio.create_task(deliver(http, server.url("/drip")))
        await server.wait_until(lambda s: s.dripped == 1)

        attempt.cancel()
        with pytest.raises(asyncio.CancelledError):
            await attempt

        assert attempt.cancelled()
        await server.wait_until(lambda s: s.closed == 1)


@pytest.mark.anyio
async def test_an_answer_cut_at_the_cap_closes_its_connection(server: Server) -> None:
    async with egress_client(LOOPBACK_ALLOWED, timeout=PROMPT) as http:
        result = await deliver(http, server.url("/huge"), max_bytes=1000)

        assert result.response == "x" * 1000
        await server.wait_until(lambda s: s.closed == 1)


# --- what the environment cannot change ------------------------------------------------


@pytest.mark.anyio
async def test_proxy_settings_in_the_environment_are_ignored(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = Server()
    await proxy.start()
    try:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)

        async with egress_client(LOOPBACK_ALLOWED, timeout=PROMPT) as http:
            assert (await deliver(http, server.url("/ok"))).response == "ok"

        assert proxy.opened == 0
        assert server.paths == ["/ok"]
    finally:
        await proxy.stop()


class _RecordingSockets:
    def __init__(self) -> None:
        self.attempts: list[str] = []

    def __call__(self, addr_info: Any) -> socket.socket:
        self.attempts.append(addr_info[4][0])
        raise OSError(errno.ECONNREFUSED, "not connecting in tests")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "host",
    [
        "2852039166",  # 169.254.169.254 as one number
        "0251.0376.0251.0376",  # ...in octal
        "0xa9.0xfe.0xa9.0xfe",  # ...in hex
        "169.254.43518",  # ...in the short form
    ],
)
async def test_legacy_numeric_forms_of_a_metadata_address_never_connect(host: str) -> None:
    sockets = _RecordingSockets()
    policy = EgressPolicy.from_entries(["*"])
    async with egress_client(policy, timeout=PROMPT, socket_factory=sockets) as http:
        with pytest.raises(PermanentError, match="webhook destination"):
            await deliver(http, f"http://{host}/hook")

    assert sockets.attempts == []
