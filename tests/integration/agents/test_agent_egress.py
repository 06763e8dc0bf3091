"""Egress attacks through the agent targets (SPEC §9 "Egress" holds for a2a and openai
as for webhooks): a tenant points an agent at cloud metadata, at a private address, at a
name that resolves to one; or the server it reaches answers with a redirect, a
compressed body, an endless body or cookies. The SDKs send through tickwork's transport,
so each is refused as a webhook's would be. Real servers on loopback; a scripted
resolver plays the attacker's DNS; a socket factory records every connection attempt."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import threading
import zlib
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from tests.integration.targets.capture import webhook_call
from tickwork.errors import PermanentError
from tickwork.settings import Settings, parse_allowed_networks
from tickwork.storage.records import FAILED
from tickwork.targets.agent_a2a import A2ATarget
from tickwork.targets.agent_openai import OpenAITarget
from tickwork.targets.base import Target
from tickwork.targets.egress import EgressPolicy
from tickwork.targets.pinning import EgressClient, egress_client

from .conftest import World
from .servers import A2AAgent, ModelServer

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
KINDS = ("a2a", "openai")


class _Sockets:
    """A socket factory that records every connection attempt and makes none."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    def __call__(self, addr_info: Any) -> socket.socket:
        self.attempts.append(addr_info[4][0])
        raise OSError(errno.ECONNREFUSED, "not connecting in tests")


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Names under .test resolve to what the test says."""
    answers: dict[str, str] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[name], int(port or 0)))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def client(setting: str, sockets: Any = None) -> EgressClient:
    policy = EgressPolicy.from_entries(parse_allowed_networks(setting))
    return egress_client(policy, timeout=10.0, socket_factory=sockets, label="agent")


def target(kind: str, base: str, http: EgressClient) -> Target:
    if kind == "a2a":
        return A2ATarget(f"{base}/a2a", "token", http)
    return OpenAITarget(f"{base}/v1", "m", "sk-test", http)


async def attempt(kind: str, base: str, setting: str, sockets: Any = None) -> None:
    async with client(setting, sockets) as http:
        await target(kind, base, http).call(webhook_call(message="echo hi"))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("setting", ["", "*", "169.254.0.0/16", "metadata.test"])
def test_cloud_metadata_is_refused_whatever_the_setting(
    dns: dict[str, str], kind: str, setting: str
) -> None:
    dns["metadata.test"] = "169.254.169.254"
    for base in (
        "http://169.254.169.254",
        "http://metadata.test",
        "http://[::ffff:169.254.169.254]",
    ):
        sockets = _Sockets()
        with pytest.raises(PermanentError, match="cloud metadata address, which is always refused"):
            asyncio.run(attempt(kind, base, setting, sockets))
        assert sockets.attempts == []


@pytest.mark.parametrize("kind", KINDS)
def test_a_private_address_is_refused_unless_listed(
    dns: dict[str, str], kind: str, agent: A2AAgent, models: ModelServer
) -> None:
    real = agent.url.removesuffix("/a2a") if kind == "a2a" else models.base_url.removesuffix("/v1")
    port = real.rsplit(":", 1)[1]
    dns["inside.test"] = "127.0.0.1"
    for base in (real, f"http://inside.test:{port}"):
        with pytest.raises(PermanentError, match="private, loopback or link-local") as refused:
            asyncio.run(attempt(kind, base, ""))
        # The refusal says how to allow it, never what a name resolved to.
        assert "TICKWORK_ALLOWED_TARGET_NETWORKS" in str(refused.value)
        if "inside.test" in base:
            assert "127.0.0.1" not in str(refused.value)
    assert agent.recorder.requests == []
    assert models.recorder.requests == []
    # Listed, the same agent is reached.
    asyncio.run(attempt(kind, real, "127.0.0.0/8"))
    assert agent.recorder.requests or models.recorder.requests


def test_the_worker_fails_an_agent_pointed_at_a_private_network(
    database_url: str, world_with: Callable[[Settings], Coroutine[Any, Any, World]]
) -> None:
    async def scenario() -> None:
        # The operator allows nothing private: the defaults.
        w = await world_with(
            Settings(database_url=database_url, deployment_id="dep_test", version="test")
        )
        w.agent("a2a", {"type": "a2a", "url": "http://10.0.0.7/a2a"})
        w.agent("model", {"type": "openai", "base_url": "http://169.254.169.254/v1", "model": "m"})
        at = {"run_at": T0 + timedelta(seconds=5), "max_retries": 3}
        a2a, model = w.trigger("a2a", **at), w.trigger("model", **at)
        await w.run_next(5)
        [first] = w.invocations(a2a.id)
        [second] = w.invocations(model.id)
        # Permanent at once: no retry can make the destination allowed.
        assert (first.status, first.attempt) == (FAILED, 1)
        assert first.last_error == (
            "agent destination 10.0.0.7 is a private, loopback or link-local address; list "
            "its network or host name in TICKWORK_ALLOWED_TARGET_NETWORKS to allow it"
        )
        assert (second.status, second.attempt) == (FAILED, 1)
        assert "cloud metadata address, which is always refused" in (second.last_error or "")

    asyncio.run(asyncio.wait_for(scenario(), timeout=30))


# --- what comes back ----------------------------------------------------------------------------


def _gzip_bomb(size: int = 200_000) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"\0" * (1 << 20)
    parts: list[bytes] = []
    while sum(map(len, parts)) < size:
        parts.append(packer.compress(zeros))
    parts.append(packer.flush())
    return b"".join(parts)


class _Hostile(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    answers: ClassVar[dict[str, tuple[int, dict[str, str], bytes]]] = {}
    hits: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).hits.append(self.path)
        status, headers, body = type(self).answers[self.server.mode]  # type: ignore[attr-defined]
        with contextlib.suppress(OSError):
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)


@contextlib.contextmanager
def hostile(mode: str) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    server.daemon_threads = True
    server.mode = mode  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


_Hostile.answers = {
    "redirect": (307, {"Location": "http://127.0.0.1:9/elsewhere"}, b""),
    "gzip": (200, {"Content-Encoding": "gzip", "Content-Type": "application/json"}, _gzip_bomb()),
    "huge": (200, {"Content-Type": "application/json"}, b"[" + b"0," * 3_000_000 + b"0]"),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("redirect", "answered 307 redirecting to http://127.0.0.1:9/elsewhere; redirects are not"),
        ("gzip", "Content-Encoding 'gzip' although tickwork asks for identity"),
        ("huge", "larger than 4194304 bytes"),
    ],
)
def test_redirects_compressed_and_oversized_answers_fail_the_call(
    kind: str, mode: str, words: str
) -> None:
    with hostile(mode) as base:
        _Hostile.hits = []
        with pytest.raises(PermanentError, match=words):
            asyncio.run(attempt(kind, base, "127.0.0.0/8"))
        assert len(_Hostile.hits) == 1  # one request; the redirect was not followed


def test_cookies_an_agent_sets_are_never_sent_back(agent: A2AAgent) -> None:
    agent.recorder.set_cookie = "session=tenant-a; Path=/"

    async def followed() -> None:
        async with client("127.0.0.0/8") as http:
            task = asyncio.create_task(
                A2ATarget(agent.url, None, http).call(webhook_call(message="slow job"))
            )
            await agent.asked("GetTask")
            agent.release.set()
            await task

    asyncio.run(asyncio.wait_for(followed(), timeout=30))
    assert len(agent.recorder.requests) >= 2
    assert all("cookie" not in seen.headers for seen in agent.recorder.requests)
