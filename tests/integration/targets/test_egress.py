"""Egress attacks against the webhook client, as a tenant would try them (SPEC §9).

Real servers on loopback play both sides: 127.0.0.1 is the address the operator allows
(standing in for a public one) and 127.0.0.2, on the same port, is the internal service
an attacker wants to reach. A scripted resolver (``socket.getaddrinfo``, the lowest
level, so a second resolution anywhere would show) plays the attacker's DNS.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import ssl
import threading
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import trustme

from tickwork.errors import PermanentError, TransientError
from tickwork.settings import parse_allowed_networks
from tickwork.targets.base import TargetCall
from tickwork.targets.egress import EgressPolicy
from tickwork.targets.pinning import EgressClient, egress_client
from tickwork.targets.webhook import WebhookTarget
from tickwork.testing import FakeClock

NOW = datetime(2026, 3, 8, 7, 0, 5, tzinfo=UTC)
PROMPT = 10.0
PUBLIC, INTERNAL = "127.0.0.1", "127.0.0.2"
NAME, OTHER_NAME = "rebind.test", "other.test"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- servers ---------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int) -> None:
        super().__init__((host, port), _Handler)
        self.hits: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hang up on capped bodies and failed handshakes on purpose


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            headers = {k.lower(): v for k, v in self.headers.items()}
            self.server.hits.append((self.path, headers))
        with contextlib.suppress(OSError):
            if self.path == "/bomb":
                self._reply(GZIP_BOMB, {"Content-Encoding": "gzip"})
            elif self.path == "/cookie":
                self._reply(b"{}", {"Set-Cookie": "session=tenant-a; Path=/; Max-Age=3600"})
            else:
                host = self.server.server_address[0]
                assert isinstance(host, str)
                self._reply(f"served by {host}".encode())

    def _reply(self, body: bytes, extra: dict[str, str] | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def _gzip_bomb(size: int = 1_000_000) -> bytes:
    """About ``size`` bytes of gzip that inflate a thousandfold (zeros)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"\0" * (1 << 20)
    parts: list[bytes] = []
    while sum(map(len, parts)) < size:
        parts.append(packer.compress(zeros))
    parts.append(packer.flush())
    return b"".join(parts)


GZIP_BOMB = _gzip_bomb()


def _start(host: str, port: int, tls: ssl.SSLContext | None) -> _Server:
    server = _Server(host, port)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@contextlib.contextmanager
def _server_pair(tls: ssl.SSLContext | None) -> Iterator[tuple[_Server, _Server]]:
    """A server on PUBLIC and one on INTERNAL, on the same port."""
    for _ in range(20):
        public = _start(PUBLIC, 0, tls)
        try:
            internal = _start(INTERNAL, public.server_port, tls)
        except OSError:  # that port is taken on 127.0.0.2: try another
            public.shutdown()
            public.server_close()
            continue
        try:
            yield public, internal
        finally:
            for server in (public, internal):
                server.shutdown()
                server.server_close()
        return
    raise RuntimeError("no port free on both loopback addresses")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module", params=["http", "https"])
def scheme_servers(
    request: pytest.FixtureRequest, ca: trustme.CA
) -> Iterator[tuple[str, _Server, _Server]]:
    tls = None
    if request.param == "https":
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(NAME).configure_cert(tls)  # valid for NAME only
    with _server_pair(tls) as (public, internal):
        yield request.param, public, internal


@pytest.fixture
def servers(
    scheme_servers: tuple[str, _Server, _Server],
) -> tuple[str, _Server, _Server]:
    for server in scheme_servers[1:]:
        with server.lock:
            server.hits.clear()
    return scheme_servers


@pytest.fixture(scope="module")
def _plain_pair() -> Iterator[tuple[_Server, _Server]]:
    with _server_pair(None) as pair:
        yield pair


@pytest.fixture
def plain(_plain_pair: tuple[_Server, _Server]) -> _Server:
    """The plain http server on PUBLIC, with a clean record."""
    for server in _plain_pair:
        with server.lock:
            server.hits.clear()
    return _plain_pair[0]


@pytest.fixture
def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


class Resolver:
    """The attacker's DNS: scripted answers per name, every question recorded."""

    def __init__(self) -> None:
        self.answers: dict[str, list[str]] = {}
        self.asked: list[str] = []

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        self.asked.append(name)
        script = self.answers[name]
        address = script.pop(0) if len(script) > 1 else script[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 0)))]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Resolver:
    resolver = Resolver()
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.endswith(".test"):
            return resolver(host, *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return resolver


def policy(setting: str) -> EgressPolicy:
    return EgressPolicy.from_entries(parse_allowed_networks(setting))


@contextlib.asynccontextmanager
async def client_for(
    setting: str, verify: ssl.SSLContext | bool = True, socket_factory: Any = None
) -> AsyncIterator[EgressClient]:
    async with egress_client(
        policy(setting), timeout=PROMPT, verify=verify, socket_factory=socket_factory
    ) as http:
        yield http


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


async def deliver(client: EgressClient, url: str, max_bytes: int = 64 * 1024) -> Any:
    return await WebhookTarget(url, "s3cret", client, FakeClock(NOW), max_bytes).call(call())


# --- DNS rebinding ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_rebound_name_still_connects_to_the_address_that_was_checked(
    servers: tuple[str, _Server, _Server], dns: Resolver, trusting: ssl.SSLContext
) -> None:
    scheme, public, internal = servers
    # Allowed at the check, internal for every question after it.
    dns.answers[NAME] = [PUBLIC, INTERNAL]
    url = f"{scheme}://{NAME}:{public.server_port}/hook"

    async with client_for(f"{PUBLIC}/32", trusting) as http:
        result = await deliver(http, url)

    assert result.response == f"served by {PUBLIC}"
    assert dns.asked == [NAME]  # resolved once: the check and the connection agree
    assert [path for path, _ in public.hits] == ["/hook"]
    assert public.hits[0][1]["host"] == f"{NAME}:{public.server_port}"  # the name is kept
    assert internal.hits == []


@pytest.mark.anyio
async def test_a_new_connection_after_rebinding_is_refused_and_says_not_where(
    servers: tuple[str, _Server, _Server], dns: Resolver, trusting: ssl.SSLContext
) -> None:
    scheme, public, internal = servers
    dns.answers[NAME] = [PUBLIC, INTERNAL]
    url = f"{scheme}://{NAME}:{public.server_port}/hook"
    async with client_for(f"{PUBLIC}/32", trusting) as http:
        await deliver(http, url)
    # A fresh pool must resolve again: the answer is now the internal address.
    async with client_for(f"{PUBLIC}/32", trusting) as http:
        with pytest.raises(PermanentError) as caught:
            await deliver(http, url)

    message = str(caught.value)
    assert message.startswith(f"webhook destination {NAME} resolves to a private")
    assert INTERNAL not in message
    assert internal.hits == []


@pytest.mark.anyio
async def test_a_pooled_connection_for_one_name_never_carries_another_names_request(
    ca: trustme.CA, dns: Resolver, trusting: ssl.SSLContext
) -> None:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(NAME).configure_cert(tls)
    with _server_pair(tls) as (public, _):
        await _two_names_on_one_address(public, dns, trusting)


async def _two_names_on_one_address(
    public: _Server, dns: Resolver, trusting: ssl.SSLContext
) -> None:
    # Both names on one address; the certificate there is valid for NAME only.
    dns.answers[NAME] = [PUBLIC]
    dns.answers[OTHER_NAME] = [PUBLIC]
    async with client_for(f"{PUBLIC}/32", trusting) as http:
        await deliver(http, f"https://{NAME}:{public.server_port}/first")
        with pytest.raises(TransientError, match="certificate") as caught:
            await deliver(http, f"https://{OTHER_NAME}:{public.server_port}/second")

    assert [path for path, _ in public.hits] == ["/first"]
    assert PUBLIC not in str(caught.value)


# --- what the operator allows ----------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("setting", "host", "allowed"),
    [
        ("", "127.0.0.1", False),
        ("10.0.0.0/8", "127.0.0.1", False),
        ("127.0.0.0/8", "127.0.0.1", True),
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.2/32", "127.0.0.1", False),
        ("localhost", "localhost", True),
        ("LocalHost.", "localhost", True),
        ("localhost", "127.0.0.1", False),  # the name is listed, not its address
        ("hooks.example.com", "localhost", False),
        ("*", "127.0.0.1", True),
        ("*", "localhost", True),
    ],
)
async def test_private_destinations_follow_the_allowed_networks(
    plain: _Server, setting: str, host: str, allowed: bool
) -> None:
    url = f"http://{host}:{plain.server_port}/hook"
    async with client_for(setting) as http:
        if allowed:
            assert (await deliver(http, url)).response == f"served by {PUBLIC}"
        else:
            with pytest.raises(PermanentError, match="TICKWORK_ALLOWED_TARGET_NETWORKS"):
                await deliver(http, url)
            assert plain.hits == []


class _RecordingSockets:
    """A socket factory for the client's connector: records every connection attempt
    and makes none."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    def __call__(self, addr_info: Any) -> socket.socket:
        self.attempts.append(addr_info[4][0])
        raise OSError(errno.ECONNREFUSED, "not connecting in tests")


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/hook" if ":" in host else f"http://{host}:{port}/hook"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "host",
    [
        "169.254.169.254",
        "169.254.170.2",
        "169.254.170.23",
        "100.100.100.200",
        "fd00:ec2::254",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",
        "metadata.test",  # a name that resolves there
    ],
)
@pytest.mark.parametrize(
    "setting", ["*", "169.254.0.0/16, 100.64.0.0/10, fd00::/8, ::/0", "metadata.test, *"]
)
async def test_metadata_addresses_are_refused_whatever_is_allowed(
    dns: Resolver, host: str, setting: str
) -> None:
    dns.answers["metadata.test"] = ["169.254.169.254"]
    sockets = _RecordingSockets()

    async with client_for(setting, socket_factory=sockets) as http:
        with pytest.raises(PermanentError, match="cloud metadata address, which is always refused"):
            await deliver(http, _url(host, 80))

    assert sockets.attempts == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("setting", "allowed"),
    [("*", False), ("169.254.10.0/24", True), ("link.test", True), ("169.254.11.0/24", False)],
)
async def test_link_local_needs_its_own_listing(dns: Resolver, setting: str, allowed: bool) -> None:
    dns.answers["link.test"] = ["169.254.10.7"]
    sockets = _RecordingSockets()

    async with client_for(setting, socket_factory=sockets) as http:
        with pytest.raises(TransientError if allowed else PermanentError):
            await deliver(http, _url("link.test", 80))

    assert sockets.attempts == (["169.254.10.7"] if allowed else [])


# --- what comes back -------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_gzip_bomb_is_stored_as_capped_raw_bytes_and_never_inflated(
    plain: _Server,
) -> None:
    async with client_for("*") as http:
        tracemalloc.start()
        try:
            result = await deliver(http, f"http://{PUBLIC}:{plain.server_port}/bomb", 4096)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    assert plain.hits[0][1]["accept-encoding"] == "identity"
    # The raw gzip stream (magic 1f 8b 08), cut at the cap: not a megabyte of zeros.
    assert result.response.startswith("\x1f\ufffd\x08")
    assert len(result.response.encode()) <= 4096
    assert GZIP_BOMB[:4096].decode("utf-8", "replace").startswith(result.response[:1000])
    # Inflating even one 64 KiB chunk of it takes 64 MB.
    assert peak < 8 * 1024 * 1024, peak


@pytest.mark.anyio
async def test_a_cookie_set_by_one_target_never_reaches_the_next_request(plain: _Server) -> None:
    async with client_for("*") as http:
        await deliver(http, f"http://{PUBLIC}:{plain.server_port}/cookie")
        await deliver(http, f"http://{PUBLIC}:{plain.server_port}/next")
        await deliver(http, f"http://localhost:{plain.server_port}/other-name")
        assert not http.cookies

    assert [path for path, _ in plain.hits] == ["/cookie", "/next", "/other-name"]
    assert all("cookie" not in headers for _, headers in plain.hits)


@pytest.mark.anyio
async def test_a_connection_failure_to_a_name_says_not_where(dns: Resolver) -> None:
    # Bound but not listening: refuses connections, and keeps the port taken.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed:
        closed.bind((INTERNAL, 0))
        port = closed.getsockname()[1]
        dns.answers["internal.test"] = [INTERNAL]
        async with client_for("*") as http:
            with pytest.raises(TransientError) as caught:
                await deliver(http, f"http://internal.test:{port}/hook")

    message = str(caught.value)
    assert message.startswith("webhook connection failed: ConnectError: could not connect")
    assert "internal.test" in message
    assert INTERNAL not in message


@pytest.mark.anyio
async def test_a_name_that_does_not_resolve_is_transient_and_says_so(dns: Resolver) -> None:
    async with client_for("*") as http:
        with pytest.raises(
            TransientError, match=r"webhook host nowhere\.test could not be resolved"
        ):
            await deliver(http, "http://nowhere.test/hook")
