"""``tickwork serve`` as a real process against a real webhook receiver.

These tests run in real time, so they are few and short: each waits a few seconds at
most, polling the API.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from tickwork.domain.schedule import format_instant
from tickwork.targets.webhook import verify_signature

from .conftest import Api, Receiver, Server, wait_until

pytestmark = pytest.mark.slow
Start = Callable[..., tuple[Server, Api]]


def soon(seconds: float) -> str:
    return format_instant((datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0))


def final(api: Api, trigger_id: str, agent: str = "bot") -> list[dict[str, object]]:
    items = api.invocations(trigger_id, agent)
    done = {"completed", "failed", "cancelled", "missed", "skipped"}
    return items if items and all(i["status"] in done for i in items) else []


def test_a_one_time_trigger_fires_once_with_a_signed_request(
    tickwork: Start, receiver: Receiver
) -> None:
    server, api = tickwork()
    trigger = api.create_trigger(
        run_at=soon(1.5), payload={"who": "Ada"}, message_template="hi {{who}}"
    )
    [inv] = wait_until(lambda: final(api, trigger["id"]), what="the invocation to finish")
    assert inv["status"] == "completed"
    assert inv["conversation_id"] == "conv-" + str(inv["id"])[-6:]
    [req] = receiver.received("/ok")
    assert req.body["message"] == "hi Ada"
    assert req.body["idempotency_key"] == f"sched:{trigger['id']}:{trigger['run_at']}"
    assert req.headers["Idempotency-Key"] == req.body["idempotency_key"]
    timestamp = req.headers["X-Tickwork-Timestamp"]
    signature = req.headers["X-Tickwork-Signature"]
    expected = hmac.new(b"s3cret", f"{timestamp}.".encode() + req.raw, hashlib.sha256)
    assert signature == "v1=" + expected.hexdigest()
    assert verify_signature("s3cret", timestamp, req.raw, signature, datetime.now(UTC))
    assert not verify_signature("s3cret", timestamp, req.raw + b" ", signature, datetime.now(UTC))
    assert server.stop() == 0


def test_a_seconds_cron_fires_every_slot_once(tickwork: Start, receiver: Receiver) -> None:
    _, api = tickwork()
    trigger = api.create_trigger(cron_expression="* * * * * *")
    wait_until(lambda: len(receiver.received("/ok")) >= 4, what="four slots")
    r = api.client.patch(
        api.url(f"/agents/bot/scheduled-triggers/{trigger['id']}"), json={"enabled": False}
    )
    assert r.status_code == 200
    items = api.invocations(trigger["id"])
    slots = sorted(str(i["scheduled_for"]) for i in items)
    assert len(slots) == len(set(slots))
    starts = [datetime.fromisoformat(s) for s in slots]
    assert all((b - a) == timedelta(seconds=1) for a, b in itertools.pairwise(starts))
    keys = Counter(r.body["idempotency_key"] for r in receiver.received("/ok"))
    assert all(n == 1 for n in keys.values())


def test_a_failing_receiver_is_retried_with_backoff_then_failed(
    tickwork: Start, receiver: Receiver
) -> None:
    _, api = tickwork()
    trigger = api.create_trigger(
        agent="failing", run_at=soon(1), max_retries=1, retry_delay_seconds=1
    )
    [inv] = wait_until(lambda: final(api, trigger["id"], "failing"), what="the failure")
    assert inv["status"] == "failed"
    assert inv["attempt"] == 2
    first, second = receiver.received("/fail")
    assert second.at - first.at >= 1.0
    assert first.body["attempt"] == 1
    assert second.body["attempt"] == 2
    assert first.body["invocation_id"] == second.body["invocation_id"]


def test_a_slow_receiver_is_cut_off_by_the_timeout(tickwork: Start, receiver: Receiver) -> None:
    _, api = tickwork()
    trigger = api.create_trigger(agent="slow", run_at=soon(1), timeout_seconds=1, max_retries=0)
    [inv] = wait_until(lambda: final(api, trigger["id"], "slow"), what="the timeout")
    assert inv["status"] == "failed"
    assert inv["last_error"] == "timed out after 1 s"


def test_a_cancel_stops_a_running_attempt(tickwork: Start, receiver: Receiver) -> None:
    _, api = tickwork()
    trigger = api.create_trigger(agent="slow", run_at=soon(1), timeout_seconds=600)
    wait_until(lambda: receiver.received("/slow"), what="the attempt to start")
    [inv] = api.invocations(trigger["id"], "slow")
    r = api.client.post(
        api.url(f"/agents/slow/scheduled-triggers/{trigger['id']}/invocations/{inv['id']}/cancel")
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    [after] = api.invocations(trigger["id"], "slow")
    assert after["status"] == "cancelled"
    detail = api.client.get(
        api.url(f"/agents/slow/scheduled-triggers/{trigger['id']}/invocations/{inv['id']}")
    ).json()
    assert detail["attempts"][0]["outcome"] == "cancelled"


def test_kill_9_during_a_burst_loses_and_duplicates_no_slot(
    tickwork: Start, receiver: Receiver
) -> None:
    server, api = tickwork()
    base = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    created = [
        api.create_trigger(run_at=format_instant(base + timedelta(milliseconds=10 * i)))
        for i in range(150)
    ]
    wait_until(lambda: len(receiver.received("/ok")) >= 20, what="the burst to start")
    server.kill()
    _, api = tickwork()
    ids = {t["id"] for t in created}

    def all_done() -> bool:
        r = api.client.get(api.url("/invocations"), params={"limit": 200, "status": "completed"})
        page = r.json()
        return len(page["items"]) == len(ids) and page["next_cursor"] is None

    try:
        wait_until(all_done, timeout=60, what="every invocation to complete")
    except AssertionError:
        r = api.client.get(api.url("/invocations"), params={"limit": 200})
        print(Counter((i["status"], i["attempt"]) for i in r.json()["items"]))
        print(server.log.read_text()[-3000:])
        raise
    for trigger in created:
        items = api.invocations(trigger["id"])
        assert len(items) == 1, items
        assert items[0]["status"] == "completed"
        assert items[0]["origin"] == "schedule"
    delivered = {r.body["trigger_id"] for r in receiver.received("/ok")}
    assert delivered == ids


def test_failed_authentication_is_limited_per_client_behind_trusted_proxies_only(
    tickwork: Start,
) -> None:
    wrong = {"Authorization": "Bearer tw_wrong"}

    def guess(api: Api, forwarded_for: str) -> int:
        headers = wrong | {"X-Forwarded-For": forwarded_for}
        return api.client.get(
            f"{api.base}/api/v1/tenants/acme/projects", headers=headers
        ).status_code

    # No trusted proxy (the default): X-Forwarded-For is ignored, the peer is the client.
    server, api = tickwork(TICKWORK_AUTH_FAILURE_LIMIT="2")
    assert [guess(api, f"203.0.113.{i}") for i in range(3)] == [401, 401, 429]
    r = api.client.get(api.url(""))
    assert r.status_code == 429
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert server.stop() == 0
    # Loopback trusted as a proxy: the forwarded address is the client.
    server, api = tickwork(TICKWORK_AUTH_FAILURE_LIMIT="2", TICKWORK_TRUSTED_PROXIES="127.0.0.1")
    assert [guess(api, "203.0.113.9") for _ in range(3)] == [401, 401, 429]
    assert guess(api, "203.0.113.10") == 401
    assert api.client.get(api.url("")).status_code == 200
    assert server.stop() == 0
