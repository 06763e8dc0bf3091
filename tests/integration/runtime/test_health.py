"""Health, auto-pause, late triggers and notifications as the runtime keeps them (fake
clock, SPEC §11). Deliveries go to a real HTTP server on loopback.

The clock starts at 2026-03-02T09:00:00Z.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.waiting import set_in_thread, within
from tickwork.runtime.notifications import NotificationSender
from tickwork.services import control, health, notifications, triggers
from tickwork.services.context import Context
from tickwork.storage.ports import OutboxRow
from tickwork.storage.records import Trigger
from tickwork.targets.egress import EgressPolicy
from tickwork.targets.pinning import egress_client

from .conftest import World

Make = Callable[..., Coroutine[Any, Any, World]]
SECRET = "notify-secret"


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout=60))


def current(w: World, trigger_id: str) -> Trigger:
    return triggers.get_trigger(w.ctx, "acme", "proj", "bot", trigger_id)


def health_of(w: World, trigger_id: str) -> str:
    return health.healths(w.ctx, [current(w, trigger_id)])[trigger_id]


def outbox(ctx: Context) -> list[OutboxRow]:
    with ctx.db.read() as tx:
        return list(reversed(tx.list_notifications("acme", "proj", None, 200)))


def events(ctx: Context) -> list[str]:
    return [row.event_type for row in outbox(ctx)]


async def next_minute(w: World) -> None:
    w.advance(60)
    await w.dispatch()
    await w.work()


def notify_everything(ctx: Context, url: str = "http://127.0.0.1:9/hook") -> None:
    notifications.put_config(
        ctx, "acme", "proj", [{"name": "ops", "url": url, "secret": SECRET, "events": None}]
    )


# -- health ----------------------------------------------------------------------------------


def test_health_follows_each_end_failing_then_ok_again(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        t = w.trigger(cron_expression="* * * * *", max_retries=0)
        assert health_of(w, t.id) == "ok"
        w.recorder.permanent = True
        await next_minute(w)
        await next_minute(w)
        failing = current(w, t.id)
        assert failing.consecutive_failures == 2
        assert failing.last_failure_at == w.clock.now()
        assert failing.last_success_at is None
        assert health_of(w, t.id) == "failing"
        w.recorder.permanent = False
        await next_minute(w)
        ok = current(w, t.id)
        assert (ok.consecutive_failures, ok.last_success_at) == (0, w.clock.now())
        assert ok.last_failure_at == w.clock.now() - timedelta(seconds=60)
        assert health_of(w, t.id) == "ok"

    run(scenario())


def test_a_retry_is_not_a_failure_until_the_invocation_ends_failed(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        t = w.trigger(cron_expression="0 10 * * *", max_retries=2, retry_delay_seconds=10)
        w.recorder.fail_times = 1  # the first attempt fails, its retry completes
        w.clock.set(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
        await w.dispatch()
        await w.work()
        assert current(w, t.id).consecutive_failures == 0
        w.advance(15)
        await w.work()
        assert current(w, t.id).last_success_at == w.clock.now()
        assert current(w, t.id).consecutive_failures == 0

    run(scenario())


def test_disabled_and_paused_take_precedence_over_failing(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        t = w.trigger(cron_expression="* * * * *", max_retries=0)
        w.recorder.permanent = True
        await next_minute(w)
        control.pause_trigger(w.ctx, "acme", "proj", "bot", t.id, reason="looking")
        assert health_of(w, t.id) == "paused"
        triggers.update_trigger(w.ctx, "acme", "proj", "bot", t.id, {"enabled": False})
        assert health_of(w, t.id) == "disabled"

    run(scenario())


# -- auto-pause ------------------------------------------------------------------------------


def test_a_trigger_pauses_itself_after_its_pause_after_failures(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        notify_everything(w.ctx)
        t = w.trigger(cron_expression="* * * * *", max_retries=0, pause_after_failures=3)
        w.recorder.permanent = True
        await next_minute(w)
        await next_minute(w)
        assert not current(w, t.id).paused
        await next_minute(w)
        paused = current(w, t.id)
        assert paused.paused
        assert paused.paused_by == "tickwork"
        assert paused.paused_reason is not None
        assert "3 consecutive failed invocations" in paused.paused_reason
        assert paused.paused_at == w.clock.now()
        assert paused.next_run_at is None
        calls = len(w.recorder.calls)
        await next_minute(w)
        await next_minute(w)
        assert len(w.recorder.calls) == calls  # nothing more is dispatched
        assert events(w.ctx) == ["invocation.failed"] * 3 + ["trigger.paused"]
        # Resuming is an operator's resume as for any pause.
        resumed = control.resume_trigger(w.ctx, "acme", "proj", "bot", t.id)
        assert not resumed.paused
        assert resumed.consecutive_failures == 3
        assert health_of(w, t.id) == "failing"

    run(scenario())


def test_the_default_comes_from_settings_and_zero_turns_it_off(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        w.ctx.settings = w.ctx.settings.with_(pause_after_failures=2)
        by_default = w.trigger(name="default", cron_expression="* * * * *", max_retries=0)
        never = w.trigger(
            name="never", cron_expression="* * * * *", max_retries=0, pause_after_failures=0
        )
        w.recorder.permanent = True
        await next_minute(w)
        await next_minute(w)
        assert current(w, by_default.id).paused_by == "tickwork"
        assert not current(w, never.id).paused
        assert current(w, never.id).consecutive_failures == 2

    run(scenario())


# -- late ------------------------------------------------------------------------------------


def test_a_trigger_is_late_when_its_slot_waits_past_the_grace_and_told_once(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        w.ctx.settings = w.ctx.settings.with_(late_grace=120)
        notify_everything(w.ctx)
        t = w.trigger(cron_expression="*/5 * * * *")  # next at 09:05
        w.clock.set(datetime(2026, 3, 2, 9, 7, tzinfo=UTC))  # no scheduler ran: 2 min behind
        assert health_of(w, t.id) == "ok"
        assert health.check_late(w.ctx, w.clock.now()) == 0
        w.advance(1)
        assert health_of(w, t.id) == "late"
        assert health.check_late(w.ctx, w.clock.now()) == 1
        assert health.check_late(w.ctx, w.clock.now()) == 0  # told once
        assert events(w.ctx) == ["trigger.late"]
        body = outbox(w.ctx)[0].body
        assert body["data"]["late_since"] == "2026-03-02T09:05:00Z"
        # Dispatch catches up (latest): back on time, and the next lateness is told again.
        await w.dispatch()
        await w.work()
        assert health_of(w, t.id) == "ok"
        health.check_late(w.ctx, w.clock.now())
        assert current(w, t.id).late_notified_at is None

    run(scenario())


def test_a_pending_invocation_no_worker_starts_makes_its_trigger_late(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        w.ctx.settings = w.ctx.settings.with_(late_grace=60)
        t = w.trigger(cron_expression="0 10 * * *")
        w.clock.set(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
        await w.dispatch()  # pending; no worker claims it
        w.advance(30)
        assert health_of(w, t.id) == "ok"
        w.advance(31)
        assert current(w, t.id).next_run_at == datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
        assert health_of(w, t.id) == "late"
        page = triggers.search_triggers(w.ctx, "acme", "proj", health="late")
        assert [x.id for x in page] == [t.id]
        await w.work()
        assert health_of(w, t.id) == "ok"

    run(scenario())


# -- notifications ---------------------------------------------------------------------------


@dataclass
class Receiver:
    """A loopback webhook receiver that fails ``failures`` times before it answers 2xx."""

    failures: int = 0
    status: int = 503
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def answer(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            self.received.append((headers, body))
            if self.failures > 0:
                self.failures -= 1
                return self.status
            self.arrived.set()
            return 204

    def ids(self) -> list[str]:
        with self.lock:
            return [h["webhook-id"] for h, _ in self.received]


@contextmanager
def receiver(**fields: Any) -> Iterator[Receiver]:
    state = Receiver(**fields)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = state.answer({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_port}/events"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def sender(ctx: Context) -> NotificationSender:
    policy = EgressPolicy.from_entries(("127.0.0.0/8",), allow_private=False)
    return NotificationSender(ctx, egress_client(policy))


def loopback(ctx: Context) -> None:
    ctx.settings = ctx.settings.with_(
        allowed_target_networks=("127.0.0.0/8",),
        notification_retry_seconds=10,
        notification_max_retry_seconds=60,
    )


def test_a_failure_is_delivered_signed_after_the_receiver_recovers(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        loopback(w.ctx)
        with receiver(failures=2) as rx:
            notifications.put_config(
                w.ctx,
                "acme",
                "proj",
                [{"name": "ops", "url": rx.url, "secret": SECRET, "events": ["invocation.failed"]}],
            )
            t = w.trigger(cron_expression="* * * * *", max_retries=0)
            w.recorder.permanent = True
            await next_minute(w)
            out = sender(w.ctx)
            try:
                assert await out.run_once() == 1  # 503
                row = outbox(w.ctx)[0]
                assert (row.status, row.attempts) == ("pending", 1)
                assert row.last_error == "answered 503"
                assert await out.run_once() == 0  # not due before its retry delay
                w.advance(14)
                assert await out.run_once() == 1  # 503 again
                w.advance(60 * 1.3)
                assert await out.run_once() == 1  # delivered
                assert await out.run_once() == 0
            finally:
                await out.client.aclose()
            row = outbox(w.ctx)[0]
            assert (row.status, row.attempts) == ("delivered", 3)
            assert row.delivered_at == w.clock.now()
            # Every try carries the same event id; the receiver deduplicates on it.
            assert rx.ids() == [row.event_id] * 3
            headers, body = rx.received[-1]
            assert headers["x-tickwork-event"] == "invocation.failed"
            signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
            digest = hmac.new(SECRET.encode(), signed, hashlib.sha256).digest()
            assert headers["webhook-signature"] == "v1," + base64.b64encode(digest).decode()
            event = json.loads(body)
            assert event["type"] == "invocation.failed"
            assert event["data"]["trigger"]["id"] == t.id
            assert event["data"]["invocation"]["error"] == "the agent refused the message"

    run(scenario())


def test_events_survive_a_sender_that_dies_mid_delivery(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        loopback(w.ctx)
        with receiver() as rx:
            notify_everything(w.ctx, rx.url)
            event_id = notifications.send_test(w.ctx, "acme", "proj")
            # A sender claims the delivery and dies before it sends anything.
            claimed = notifications.claim_deliveries(w.ctx, 10)
            assert [d.row.event_id for d in claimed] == [event_id]
            fresh = sender(w.ctx)  # the restarted process
            try:
                assert await fresh.run_once() == 0  # still leased to the dead one
                w.advance(w.ctx.settings.notification_timeout_seconds * 2 + 6)
                assert await fresh.run_once() == 1
            finally:
                await fresh.client.aclose()
            assert rx.ids() == [event_id]
            assert outbox(w.ctx)[0].status == "delivered"

    run(scenario())


def test_a_receiver_that_never_recovers_fails_after_the_last_try(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        loopback(w.ctx)
        w.ctx.settings = w.ctx.settings.with_(notification_max_attempts=3)
        with receiver(failures=100, status=500) as rx:
            notify_everything(w.ctx, rx.url)
            notifications.send_test(w.ctx, "acme", "proj")
            out = sender(w.ctx)
            try:
                for _ in range(3):
                    assert await out.run_once() == 1
                    w.advance(120)
                assert await out.run_once() == 0
            finally:
                await out.client.aclose()
            row = outbox(w.ctx)[0]
            assert (row.status, row.attempts, row.last_error) == ("failed", 3, "answered 500")
            assert len(rx.received) == 3

    run(scenario())


def test_delivery_never_blocks_dispatch_and_work(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        loopback(w.ctx)
        # Nothing listens on this port: every delivery fails, and runs go on regardless.
        notify_everything(w.ctx, "http://127.0.0.1:9/hook")
        t = w.trigger(cron_expression="* * * * *", max_retries=0)
        w.recorder.permanent = True
        out = sender(w.ctx)
        try:
            for _ in range(3):
                await next_minute(w)
                await out.run_once()
        finally:
            await out.client.aclose()
        assert current(w, t.id).consecutive_failures == 3
        assert all(row.status == "pending" for row in outbox(w.ctx))
        assert len(outbox(w.ctx)) == 3

    run(scenario())


def test_a_missed_slot_and_a_disabled_trigger_are_told(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        notify_everything(w.ctx)
        t = w.trigger(cron_expression="* * * * *", catchup="none")
        w.clock.set(datetime(2026, 3, 2, 9, 5, 30, tzinfo=UTC))
        await w.dispatch()
        missed = [r for r in outbox(w.ctx) if r.event_type == "slot.missed"]
        assert len(missed) == 1
        recorded = [i for i in w.invocations(t.id) if i.status == "missed"]
        assert len(recorded) >= 4
        assert missed[0].body["data"]["count"] == len(recorded)
        assert missed[0].body["data"]["trigger"]["id"] == t.id
        # A schedule that can no longer be computed disables the trigger, and says so.
        with w.ctx.db.write() as tx:
            tx.update_trigger(t.id, {"cron_expression": "not a cron"})
        w.advance(60)
        await w.dispatch()
        assert "trigger.disabled" in events(w.ctx)
        assert health_of(w, t.id) == "disabled"

    run(scenario())


def test_only_the_event_types_a_target_wants_are_queued(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        notifications.put_config(
            w.ctx,
            "acme",
            "proj",
            [
                {"name": "pager", "url": "http://127.0.0.1:9/a", "events": ["trigger.paused"]},
                {"name": "chat", "url": "http://127.0.0.1:9/b", "events": None},
            ],
        )
        t = w.trigger(cron_expression="* * * * *", max_retries=0, pause_after_failures=1)
        w.recorder.permanent = True
        await next_minute(w)
        assert current(w, t.id).paused
        shown = [(r.target["name"], r.event_type) for r in outbox(w.ctx)]
        assert sorted(shown) == [
            ("chat", "invocation.failed"),
            ("chat", "trigger.paused"),
            ("pager", "trigger.paused"),
        ]
        # One event, one id, whichever target it goes to.
        paused = {r.event_id for r in outbox(w.ctx) if r.event_type == "trigger.paused"}
        assert len(paused) == 1

    run(scenario())


def test_a_running_node_delivers_with_its_workers(world: Make, ctx: Context) -> None:
    loopback(ctx)  # before the node is built: its egress client takes the policy then

    async def scenario() -> None:
        with receiver() as rx:
            w = await world()
            notify_everything(w.ctx, rx.url)
            event_id = notifications.send_test(w.ctx, "acme", "proj")
            sender = w.node.sender
            assert sender is not None
            stop = asyncio.Event()
            # The node's own sender loop, as `tickwork serve` runs it beside the workers.
            task = asyncio.create_task(sender.run(stop))
            try:
                await set_in_thread(rx.arrived, what="the notification arriving")
            finally:
                stop.set()
                sender.wake.set()
                await within(task, "the sender stopping")
                assert w.node.targets is not None
                await w.node.targets.close()
            assert rx.ids() == [event_id]

    run(scenario())
