"""docs/webhooks.md tells the truth: its Python receivers run against real deliveries of
tickwork's webhook target, its sample request is really signed, and its tables list
exactly the headers and body fields a delivery carries."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from opentelemetry.sdk.trace import TracerProvider

from tickwork import tracing
from tickwork.targets.webhook import signature_header, standard_signature, verify_signature

from .capture import CaptureServer, Received, capture_server, deliver, webhook_call

DOC = Path(__file__).resolve().parents[3] / "docs" / "webhooks.md"
WHSEC = "whsec_" + base64.b64encode(b"docs-example-key-32-bytes-long!!").decode()
PLAIN = "a plain secret"
# Added by the HTTP client, not by tickwork: nothing to document.
TRANSPORT_HEADERS = {"host", "content-length", "accept", "connection"}


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", DOC.read_text(), re.MULTILINE | re.DOTALL)


def run_block(code: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "webhooks_doc_example"}
    exec(compile(code, str(DOC), "exec"), namespace)
    return namespace


def table_after(heading: str) -> list[str]:
    """The names in backticks in the first column of the table under a heading."""
    text = DOC.read_text()
    section = text[text.index(heading) + len(heading) :].split("\n#")[0]
    names = [
        name
        for line in section.splitlines()
        if line.startswith("| `")
        for name in re.findall(r"`([^`]+)`", line.split("|")[1])
    ]
    assert names, heading
    return names


@pytest.fixture
def server() -> Iterator[CaptureServer]:
    with capture_server() as srv:
        yield srv


def delivered(server: CaptureServer, secret: str | None, **changes: Any) -> Received:
    asyncio.run(deliver(server.url, secret, webhook_call(**changes)))
    return server.last()


# --- the sample request and the tables ------------------------------------------------------


def test_the_sample_request_is_signed_with_the_secret_it_names() -> None:
    [sample] = blocks("http")
    head, _, body_text = sample.partition("\n\n")
    headers = dict(line.split(": ", 1) for line in head.splitlines()[1:])
    body = body_text.strip("\n").encode()
    secret = re.search(r"`(whsec_[A-Za-z0-9+/=]+)`", DOC.read_text())
    assert secret is not None
    stamp = headers["X-Tickwork-Timestamp"]
    assert verify_signature(
        secret.group(1), stamp, body, headers["X-Tickwork-Signature"], now=int(stamp)
    )
    assert headers["webhook-signature"] == standard_signature(
        secret.group(1), headers["webhook-id"], headers["webhook-timestamp"], body
    )
    assert headers["webhook-id"] == json.loads(body)["invocation_id"]


def test_the_headers_table_lists_exactly_what_a_delivery_carries(server: CaptureServer) -> None:
    sent = set(delivered(server, WHSEC).headers) - TRANSPORT_HEADERS
    documented = {name.lower() for name in table_after("### Headers")}
    assert documented == sent | {"traceparent"}
    # traceparent: when tracing is on, inside the attempt's span.
    provider = TracerProvider()
    tracing.use(provider)
    try:
        with tracing.span(tracing.ATTEMPT_SPAN):
            traced = set(delivered(server, WHSEC).headers) - TRANSPORT_HEADERS
    finally:
        tracing.use(None)
        provider.shutdown()
    assert documented == traced
    [sample] = blocks("http")
    shown = {line.split(":")[0].lower() for line in sample.split("\n\n")[0].splitlines()[1:]}
    assert shown - {"host"} == sent


def test_the_body_table_lists_exactly_the_fields_of_a_delivery(server: CaptureServer) -> None:
    body = json.loads(delivered(server, None).body)
    assert set(table_after("### Body")) == set(body)


def test_without_a_template_the_message_is_the_payload_as_compact_json() -> None:
    from tickwork.domain.template import render_message

    assert render_message(None, {"team": "core"}) == '{"team":"core"}'
    assert render_message("", {}) == "{}"
    assert '`{"team":"core"}`' in DOC.read_text()


# --- the receivers ------------------------------------------------------------------------


@pytest.fixture
def fastapi_receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The doc's FastAPI receiver, served by uvicorn on loopback; yields its URL."""
    monkeypatch.setenv("TICKWORK_WEBHOOK_SECRET", WHSEC)
    example = run_block(blocks("python")[0])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    # Listening already: a request sent before uvicorn's thread is up waits in the backlog.
    sock.listen(16)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(example["app"], log_level="error", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/hooks/writer"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_the_python_receiver_accepts_a_delivery_once_and_refuses_forgeries(
    fastapi_receiver: str, server: CaptureServer
) -> None:
    call = webhook_call()
    first = asyncio.run(deliver(fastapi_receiver, WHSEC, call))
    assert first.status_code == 200
    assert first.conversation_id == f"conv-{call.invocation_id}"
    # At least once: the same invocation again is recognised by its key.
    again = asyncio.run(deliver(fastapi_receiver, WHSEC, webhook_call(attempt=2)))
    assert again.response is not None
    assert json.loads(again.response) == {"status": "duplicate"}
    # A forged body with captured headers is refused.
    sent = delivered(server, WHSEC)
    forged = httpx.post(
        fastapi_receiver,
        content=sent.body.replace(b"core", b"evil"),
        headers={k: v for k, v in sent.headers.items() if k not in TRANSPORT_HEADERS},
    )
    assert forged.status_code == 401


def test_the_standard_library_verifiers_check_both_signatures(server: CaptureServer) -> None:
    example = run_block(blocks("python")[1])
    verify_standard, verify_tickwork = example["verify_standard"], example["verify_tickwork"]
    for secret in (WHSEC, PLAIN):
        sent = delivered(server, secret)
        assert verify_standard(secret, sent.headers, sent.body)
        assert verify_tickwork(secret, sent.headers, sent.body)
        tampered = sent.body.replace(b"core", b"evil")
        assert not verify_standard(secret, sent.headers, tampered)
        assert not verify_tickwork(secret, sent.headers, tampered)
        assert not verify_standard("other", sent.headers, sent.body)
    # A request signed long ago is refused, however well signed.
    sent = delivered(server, WHSEC)
    old = str(int(sent.headers["webhook-timestamp"]) - 301)
    replay = dict(sent.headers)
    replay["webhook-timestamp"] = replay["x-tickwork-timestamp"] = old
    replay["webhook-signature"] = standard_signature(WHSEC, replay["webhook-id"], old, sent.body)
    replay["x-tickwork-signature"] = signature_header(WHSEC, old, sent.body)
    assert not verify_standard(WHSEC, replay, sent.body)
    assert not verify_tickwork(WHSEC, replay, sent.body)


def test_every_python_example_of_the_page_is_run_here() -> None:
    assert len(blocks("python")) == 2
