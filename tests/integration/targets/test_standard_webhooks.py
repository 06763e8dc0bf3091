"""Real deliveries verify with the ``standardwebhooks`` library itself (SPEC §15), and
with tickwork's own ``verify_signature``, for both forms of secret."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Iterator

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from tickwork.clock import SystemClock
from tickwork.domain.target_spec import signing_key
from tickwork.errors import PermanentError
from tickwork.targets.webhook import standard_signature, verify_signature

from .capture import CaptureServer, Received, capture_server, deliver, webhook_call

WHSEC = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
PLAIN = "plain secret — ünïcode"


@pytest.fixture
def server() -> Iterator[CaptureServer]:
    with capture_server() as srv:
        yield srv


def delivered(server: CaptureServer, secret: str | None, attempt: int = 1) -> Received:
    asyncio.run(deliver(server.url, secret, webhook_call(attempt=attempt)))
    return server.last()


def test_a_whsec_secret_verifies_with_the_standard_webhooks_library(server: CaptureServer) -> None:
    sent = delivered(server, WHSEC)
    assert sent.headers["webhook-id"] == "inv_01jnvbd5r4m1c7w2x9y8z6t5s3"
    assert sent.headers["webhook-timestamp"] == sent.headers["x-tickwork-timestamp"]
    assert sent.headers["webhook-signature"].startswith("v1,")
    run = Webhook(WHSEC).verify(sent.body, sent.headers)
    assert run == json.loads(sent.body)
    assert run["invocation_id"] == sent.headers["webhook-id"]


def test_any_other_secret_verifies_as_its_utf8_bytes(server: CaptureServer) -> None:
    sent = delivered(server, PLAIN)
    assert Webhook(PLAIN.encode("utf-8")).verify(sent.body, sent.headers)["attempt"] == 1


def test_the_existing_signature_keeps_verifying_with_either_secret(server: CaptureServer) -> None:
    now = SystemClock().now()
    for secret in (WHSEC, PLAIN):
        sent = delivered(server, secret)
        stamp, signature = (
            sent.headers["x-tickwork-timestamp"],
            sent.headers["x-tickwork-signature"],
        )
        assert verify_signature(secret, stamp, sent.body, signature, now=now)
        assert not verify_signature("another", stamp, sent.body, signature, now=now)


def test_a_retry_keeps_the_message_id_and_is_signed_afresh(server: CaptureServer) -> None:
    first = delivered(server, WHSEC, attempt=1)
    retry = delivered(server, WHSEC, attempt=2)
    assert first.headers["webhook-id"] == retry.headers["webhook-id"]
    assert first.headers["idempotency-key"] == retry.headers["idempotency-key"]
    assert first.headers["webhook-signature"] != retry.headers["webhook-signature"]
    assert Webhook(WHSEC).verify(retry.body, retry.headers)["attempt"] == 2


def test_a_tampered_request_or_a_wrong_secret_fails_the_library(server: CaptureServer) -> None:
    sent = delivered(server, WHSEC)
    with pytest.raises(WebhookVerificationError):
        Webhook(WHSEC).verify(sent.body.replace(b"core", b"evil"), sent.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(WHSEC).verify(sent.body, {**sent.headers, "webhook-id": "inv_other"})
    other = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(sent.body, sent.headers)
    # The plain secret's string is not a whsec_ key: the library would decode it.
    plain = delivered(server, PLAIN)
    with pytest.raises((WebhookVerificationError, ValueError)):
        Webhook(base64.b64encode(PLAIN.encode()[::-1]).decode()).verify(plain.body, plain.headers)


def test_without_a_secret_the_id_and_timestamp_are_sent_but_no_signature(
    server: CaptureServer,
) -> None:
    sent = delivered(server, None)
    assert sent.headers["webhook-id"] == "inv_01jnvbd5r4m1c7w2x9y8z6t5s3"
    assert "webhook-timestamp" in sent.headers
    assert "webhook-signature" not in sent.headers
    assert "x-tickwork-signature" not in sent.headers


def test_the_signature_is_the_standard_one_over_id_timestamp_and_body() -> None:
    # The Standard Webhooks specification's own example.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    signature = standard_signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.mark.parametrize(
    ("secret", "key"),
    [
        ("whsec_AAEC", b"\x00\x01\x02"),
        ("whsec_AAE", b"\x00\x01"),  # padding left out, as the Python library allows
        ("whsec_AAE=", b"\x00\x01"),
        ("plain", b"plain"),
        ("ünï", "ünï".encode()),
    ],
)
def test_signing_keys(secret: str, key: bytes) -> None:
    assert signing_key(secret) == key
    if secret.startswith("whsec_"):
        assert Webhook(secret)._whsecret == key


@pytest.mark.parametrize("secret", ["whsec_", "whsec_not base64!", "whsec_A", "whsec_AA=A"])
def test_a_whsec_secret_that_is_not_base64_cannot_sign(secret: str) -> None:
    with pytest.raises(ValueError, match=r"base64|at least one byte"):
        signing_key(secret)


def test_a_bad_whsec_secret_from_the_environment_fails_the_call_permanently(
    server: CaptureServer,
) -> None:
    with pytest.raises(PermanentError, match="whsec_"):
        asyncio.run(deliver(server.url, "whsec_***", webhook_call()))
    assert server.received == []
