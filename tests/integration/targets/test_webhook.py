"""The webhook target against a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.waiting import set_in_thread, within
from tickwork.errors import PermanentError, TransientError, ValidationError
from tickwork.targets import egress, webhook
from tickwork.targets.base import TargetCall
from tickwork.targets.egress import EgressPolicy
from tickwork.targets.pinning import EgressClient, egress_client
from tickwork.targets.webhook import (
    WebhookTarget,
    is_private_address,
    signature_header,
    validate_webhook_url,
    verify_signature,
)
from tickwork.testing import FakeClock

NOW = datetime(2026, 3, 8, 7, 0, 5, tzinfo=UTC)
SCHEDULED = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
SECRET = "agent-secret"
# Generous bounds so a broken implementation fails instead of hanging the suite.
PROMPT = 10.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- a real server ---------------------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.slow_request_arrived = threading.Event()
        self.release_slow = threading.Event()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.server_port}{path}"

    def paths(self) -> list[str]:
        with self.lock:
            return [r.path for r in self.received]

    def only_request(self) -> Received:
        with self.lock:
            assert len(self.received) == 1, self.received
            return self.received[0]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle(b"")

    def do_POST(self) -> None:
        self._handle(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def _handle(self, body: bytes) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        with self.server.lock:
            self.server.received.append(Received(self.command, self.path, headers, body))
        # The client hanging up (capped body, cancelled call) is expected.
        with contextlib.suppress(OSError):
            self._route()

    def _route(self) -> None:
        path = self.path
        if path == "/json":
            self._reply(200, b'{"conversation_id": "conv-42", "ok": true}', "application/json")
        elif path == "/text":
            self._reply(200, b"accepted", "text/plain")
        elif path == "/cookie":
            self._reply(200, b"{}", "application/json", {"Set-Cookie": "session=other; Path=/"})
        elif path.startswith("/status/"):
            status = int(path.removeprefix("/status/"))
            self._reply(status, f"status {status}: no such agent here".encode(), "text/plain")
        elif path == "/redirect":
            self._reply(302, b"", "text/plain", {"Location": self.server.url("/landing")})
        elif path == "/huge":
            self._stream(10 * 1024 * 1024, declare_length=True)
        elif path == "/endless":
            self._stream(None, declare_length=False)
        elif path == "/slow":
            self.server.slow_request_arrived.set()
            self.server.release_slow.wait(timeout=60)
            self._reply(200, b"too late", "text/plain")
        else:
            self._reply(200, b"ok", "text/plain")

    def _reply(
        self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, total: int | None, declare_length: bool) -> None:
        """Send ``total`` bytes of body, or an endless one (until the client hangs up)."""
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        if declare_length and total is not None:
            self.send_header("Content-Length", str(total))
        else:
            # Length unknown: the body runs until the connection closes.
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        chunk = b"x" * 65536
        sent = 0
        while total is None or sent < total:
            self.wfile.write(chunk)
            sent += len(chunk)


@pytest.fixture(scope="module")
def running_server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.release_slow.set()
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


@pytest.fixture
def server(running_server: _Server) -> Iterator[_Server]:
    """The shared server, with a clean record; releases any request still held."""
    with running_server.lock:
        running_server.received.clear()
    running_server.slow_request_arrived.clear()
    running_server.release_slow.clear()
    yield running_server
    running_server.release_slow.set()


# The test servers are on loopback, which the operator must allow.
LOOPBACK_ALLOWED = EgressPolicy(allow_private=True)


@pytest.fixture
async def client() -> AsyncIterator[EgressClient]:
    async with egress_client(LOOPBACK_ALLOWED, timeout=PROMPT) as http:
        yield http


@pytest.fixture
async def strict_client() -> AsyncIterator[EgressClient]:
    """A client under the default policy: no private destination allowed."""
    async with egress_client(EgressPolicy(), timeout=PROMPT) as http:
        yield http


def make_call(**changes: Any) -> TargetCall:
    fields: dict[str, Any] = {
        "invocation_id": "inv_01",
        "idempotency_key": "sched:trg_01:2026-03-08T07:00:00Z",
        "trigger_id": "trg_01",
        "trigger_name": "Morning brief",
        "tenant": "acme",
        "project": "ops",
        "agent": "briefer",
        "ref_name": "main",
        "ref_revision": 3,
        "scheduled_for": SCHEDULED,
        "attempt": 2,
        "origin": "schedule",
        "message": "Guten Morgen — résumé attached",
        "payload": {"city": "Zürich", "count": 1, "tags": ["a", "b"]},
        "timezone": "Europe/Berlin",
    }
    fields.update(changes)
    return TargetCall(**fields)


def make_target(
    url: str,
    client: EgressClient,
    *,
    secret: str | None = SECRET,
    max_response_bytes: int = webhook.DEFAULT_MAX_RESPONSE_BYTES,
) -> WebhookTarget:
    return WebhookTarget(url, secret, client, FakeClock(NOW), max_response_bytes=max_response_bytes)


# --- what is sent ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_it_posts_the_invocation_as_json_with_every_header(
    server: _Server, client: EgressClient
) -> None:
    result = await make_target(server.url("/json"), client).call(make_call())

    assert result.conversation_id == "conv-42"
    assert result.status_code == 200
    assert result.response == '{"conversation_id": "conv-42", "ok": true}'

    sent = server.only_request()
    assert (sent.method, sent.path) == ("POST", "/json")
    assert json.loads(sent.body) == {
        "invocation_id": "inv_01",
        "idempotency_key": "sched:trg_01:2026-03-08T07:00:00Z",
        "trigger_id": "trg_01",
        "trigger_name": "Morning brief",
        "tenant": "acme",
        "project": "ops",
        "agent": "briefer",
        "ref": {"name": "main", "revision": 3},
        "scheduled_for": "2026-03-08T07:00:00Z",
        "attempt": 2,
        "origin": "schedule",
        "message": "Guten Morgen — résumé attached",
        "payload": {"city": "Zürich", "count": 1, "tags": ["a", "b"]},
        "timezone": "Europe/Berlin",
        "conversation_id": None,
        "run_as": None,
        "previous": None,
    }
    headers = sent.headers
    assert headers["content-type"] == "application/json"
    assert headers["idempotency-key"] == "sched:trg_01:2026-03-08T07:00:00Z"
    assert headers["user-agent"].startswith("tickwork/")
    assert headers["x-tickwork-timestamp"] == str(int(NOW.timestamp()))
    assert headers["x-tickwork-timezone"] == "Europe/Berlin"
    assert headers["x-tickwork-scheduled-for"] == "2026-03-08T07:00:00Z"
    assert headers["x-tickwork-invocation-id"] == "inv_01"
    assert headers["x-tickwork-attempt"] == "2"
    assert headers["x-tickwork-signature"].startswith("v1=")


@pytest.mark.anyio
async def test_the_signature_verifies_and_a_tampered_body_does_not(
    server: _Server, client: EgressClient
) -> None:
    await make_target(server.url("/json"), client).call(make_call())
    sent = server.only_request()
    stamp = sent.headers["x-tickwork-timestamp"]
    signature = sent.headers["x-tickwork-signature"]

    assert verify_signature(SECRET, stamp, sent.body, signature, now=NOW)
    assert signature == signature_header(SECRET, stamp, sent.body)
    tampered = sent.body.replace(b"Morning brief", b"Evening brief")
    assert not verify_signature(SECRET, stamp, tampered, signature, now=NOW)
    assert not verify_signature("another-secret", stamp, sent.body, signature, now=NOW)
    assert not verify_signature(SECRET, str(int(stamp) + 1), sent.body, signature, now=NOW)
    late = NOW + timedelta(seconds=301)
    assert not verify_signature(SECRET, stamp, sent.body, signature, now=late)
    assert verify_signature(SECRET, stamp, sent.body, signature, now=late, tolerance=600)


@pytest.mark.anyio
async def test_it_sends_no_signature_without_a_secret(
    server: _Server, client: EgressClient
) -> None:
    await make_target(server.url("/json"), client, secret=None).call(make_call())

    assert "x-tickwork-signature" not in server.only_request().headers


@pytest.mark.anyio
async def test_cookies_set_by_one_endpoint_are_never_sent_on(
    server: _Server, client: EgressClient
) -> None:
    await make_target(server.url("/cookie"), client).call(make_call())
    await make_target(server.url("/json"), client).call(make_call())

    assert not client.cookies  # the shared client never stored it...
    assert all("cookie" not in r.headers for r in server.received)  # ...nor sent it


# --- what comes back -------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_2xx_with_a_plain_text_body_succeeds(server: _Server, client: EgressClient) -> None:
    result = await make_target(server.url("/text"), client).call(make_call())

    assert result.conversation_id is None
    assert result.status_code == 200
    assert result.response == "accepted"


@pytest.mark.anyio
@pytest.mark.parametrize("status", [500, 502, 503, 408, 429])
async def test_5xx_408_and_429_are_transient(
    server: _Server, client: EgressClient, status: int
) -> None:
    with pytest.raises(TransientError, match=f"webhook answered {status}: status {status}"):
        await make_target(server.url(f"/status/{status}"), client).call(make_call())


@pytest.mark.anyio
@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
async def test_other_4xx_are_permanent_and_quote_the_body(
    server: _Server, client: EgressClient, status: int
) -> None:
    with pytest.raises(PermanentError, match=f"webhook answered {status}: .*no such agent here"):
        await make_target(server.url(f"/status/{status}"), client).call(make_call())


@pytest.mark.anyio
async def test_a_redirect_is_permanent_and_never_followed(server: _Server) -> None:
    # aiohttp follows redirects unless each request says otherwise: this one must not.
    async with egress_client(LOOPBACK_ALLOWED, timeout=PROMPT) as http:
        with pytest.raises(PermanentError) as caught:
            await make_target(server.url("/redirect"), http).call(make_call())

    message = str(caught.value)
    assert "302" in message
    assert "redirects are not followed" in message
    assert server.url("/landing") in message
    assert server.paths() == ["/redirect"]


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/huge", "/endless"])
async def test_a_huge_body_is_capped_without_being_read_whole(
    server: _Server, client: EgressClient, path: str
) -> None:
    target = make_target(server.url(path), client, max_response_bytes=1000)

    # /endless never ends: only a read that stops at the cap can return at all.
    result = await within(target.call(make_call()), "the capped read", PROMPT)

    assert result.status_code == 200
    assert result.response == "x" * 1000
    assert result.conversation_id is None


@pytest.mark.anyio
async def test_the_default_cap_is_64_kib(server: _Server, client: EgressClient) -> None:
    result = await make_target(server.url("/huge"), client).call(make_call())

    assert result.response is not None
    assert len(result.response.encode()) == 64 * 1024


# --- failures on the way ---------------------------------------------------------------


@pytest.mark.anyio
async def test_a_slow_server_is_cancelled_cleanly_by_a_timeout(
    server: _Server, client: EgressClient
) -> None:
    call = asyncio.create_task(make_target(server.url("/slow"), client).call(make_call()))
    await set_in_thread(server.slow_request_arrived, what="the slow request arriving")

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(call, timeout=0.05)

    assert call.cancelled()
    # Nothing is left wedged: the same client delivers the next call at once.
    result = await within(
        make_target(server.url("/json"), client).call(make_call()), "the next call", PROMPT
    )
    assert result.conversation_id == "conv-42"


@pytest.mark.anyio
async def test_connection_refused_is_transient(client: EgressClient) -> None:
    # A bound socket that does not listen refuses connections, and keeps the port taken.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/json"

        with pytest.raises(TransientError, match="connection failed"):
            await make_target(url, client).call(make_call())


@pytest.mark.anyio
async def test_an_invalid_url_fails_permanently_at_call_time(client: EgressClient) -> None:
    with pytest.raises(PermanentError, match="webhook URL is invalid: must be an absolute http"):
        await make_target("ftp://files.example.com/drop", client).call(make_call())


# --- private destinations --------------------------------------------------------------


@pytest.mark.anyio
async def test_loopback_is_refused_unless_the_operator_allows_it(
    server: _Server, strict_client: EgressClient
) -> None:
    target = make_target(server.url("/json"), strict_client)

    with pytest.raises(PermanentError) as caught:
        await target.call(make_call())

    assert str(caught.value) == (
        "webhook destination 127.0.0.1 is a private, loopback or link-local address; "
        "list its network or host name in TICKWORK_ALLOWED_TARGET_NETWORKS to allow it"
    )
    assert server.paths() == []


@pytest.mark.anyio
async def test_a_name_that_resolves_to_loopback_is_refused_without_saying_where(
    server: _Server, strict_client: EgressClient
) -> None:
    target = make_target(server.url("/json", host="localhost"), strict_client)

    with pytest.raises(PermanentError) as caught:
        await target.call(make_call())

    message = str(caught.value)
    assert message.startswith("webhook destination localhost resolves to a private")
    assert "TICKWORK_ALLOWED_TARGET_NETWORKS" in message
    assert "127.0.0.1" not in message
    assert "::1" not in message
    assert server.paths() == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    "host",
    [
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "[::1]",
        "[::]",
        "[fe80::1]",
        "[fc00::1]",
        "[ff02::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:10.0.0.1]",
        "[64:ff9b::7f00:1]",
        "[2002:7f00:1::]",
    ],
)
async def test_private_addresses_are_refused_without_connecting(
    strict_client: EgressClient, host: str
) -> None:
    target = make_target(f"http://{host}:9/hook", strict_client)

    with pytest.raises(PermanentError, match=r"is (a private|a cloud metadata)"):
        await target.call(make_call())


@pytest.mark.anyio
async def test_the_connection_tries_the_next_checked_address_when_one_refuses(
    server: _Server, client: EgressClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A name that never resolves (.invalid): the call can only reach the server if it
    # connects to the checked addresses. The first one refuses; the second is the server.
    checked = [ipaddress.ip_address("127.0.0.2"), ipaddress.ip_address("127.0.0.1")]
    resolved: list[str] = []

    async def resolve(host: str, port: int) -> list[Any]:
        resolved.append(host)
        return checked

    monkeypatch.setattr(egress, "resolve", resolve)
    url = server.url("/json", host="hooks.tickwork.invalid")

    result = await make_target(url, client).call(make_call())

    assert result.conversation_id == "conv-42"
    assert resolved == ["hooks.tickwork.invalid"]
    assert server.only_request().headers["host"] == f"hooks.tickwork.invalid:{server.server_port}"


@pytest.mark.parametrize(
    "ip",
    ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"],
)
def test_public_addresses_are_allowed(ip: str) -> None:
    assert not is_private_address(ipaddress.ip_address(ip))


# --- API-time URL validation -----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "a webhook URL is required"),
        ("https://hooks.example.com/" + "a" * 2048, "at most 2048 characters"),
        ("ftp://hooks.example.com/", "must be an absolute http or https URL"),
        ("hooks.example.com/path", "must be an absolute http or https URL"),
        ("/relative/path", "must be an absolute http or https URL"),
        ("https://user:pass@hooks.example.com/", "must not contain credentials"),
        ("https://token@hooks.example.com/", "must not contain credentials"),
        ("https:///path-only", "must include a host"),
        ("https://hooks example.com/", "whitespace"),
        ("https://hooks.example.com/\n", "whitespace"),
        ("https://hooks.example.com:99999/", "not a valid URL"),
        ("https://hooks.example.com:0/", "invalid port"),
        ("https://[::1/", "not a valid URL"),
        ("https://hooks%2eexample.com/", "invalid host"),
    ],
)
def test_validate_webhook_url_rejects(url: str, problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_webhook_url(url)

    assert caught.value.field == "target.url"
    assert problem in caught.value.message


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/agents/briefer?tenant=acme",
        "http://hooks.example.com:8080/",
        "HTTPS://HOOKS.EXAMPLE.COM/x",
        "https://bücher.example/hook",
        "http://10.0.0.5/internal",  # refused or not at call time, by the setting
        "http://[2001:db8::1]:8443/",
    ],
)
def test_validate_webhook_url_accepts(url: str) -> None:
    assert validate_webhook_url(url) == url


def test_verify_signature_tolerates_rotation_lists_and_rejects_garbage() -> None:
    body = b'{"a":1}'
    stamp = str(int(NOW.timestamp()))
    good = signature_header(SECRET, stamp, body)

    assert verify_signature(SECRET, stamp, body, f"v1=deadbeef, {good}", now=NOW)
    assert verify_signature(SECRET, int(stamp), body.decode(), good, now=NOW.timestamp())
    assert not verify_signature(SECRET, "not-a-number", body, good, now=NOW)
    assert not verify_signature(SECRET, stamp, body, good.removeprefix("v1="), now=NOW)
    assert not verify_signature(SECRET, stamp, body, "", now=NOW)
    with pytest.raises(ValueError, match="aware"):
        verify_signature(SECRET, stamp, body, good, now=NOW.replace(tzinfo=None))
