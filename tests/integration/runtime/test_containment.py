"""One tenant's input or answer never stops, slows or loses another tenant's work
(SPEC §9): every attack here is run as the attacker would, and the test asserts that the
other tenant's run-now completes, exactly once."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa

from tests.waiting import until
from tickwork.runtime.notify import LocalNotifier
from tickwork.runtime.workers import Targets, WorkerPool
from tickwork.services import dispatch, execution, resources, tenants, triggers
from tickwork.services.context import Context
from tickwork.storage.ports import InvocationFilter
from tickwork.storage.records import COMPLETED, FAILED, PENDING, RUNNING, Invocation
from tickwork.storage.sql import Tx
from tickwork.targets.base import TargetCall
from tickwork.targets.python import HandlerRegistry
from tickwork.testing import FakeClock, register_handlers

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout=30))


@dataclass
class Handlers:
    """Python targets per tenant: ``answers`` says what each tenant's handler returns."""

    answers: dict[str, Any] = field(default_factory=dict)
    calls: list[TargetCall] = field(default_factory=list)
    blocked: dict[str, asyncio.Event] = field(default_factory=dict)
    # Set as each call arrives.
    called_now: asyncio.Event = field(default_factory=asyncio.Event)

    def registry(self) -> HandlerRegistry:
        registry = HandlerRegistry()
        for tenant in ("attacker", "victim", "other"):
            registry.register(f"{tenant}-agent", self._handler(tenant))
        return registry

    def _handler(self, tenant: str) -> Any:
        async def handle(call: TargetCall) -> Any:
            self.calls.append(call)
            self.called_now.set()
            gate = self.blocked.get(tenant)
            if gate is not None:
                await gate.wait()
            answer = self.answers.get(tenant, {"conversation_id": f"c-{call.invocation_id}"})
            if isinstance(answer, Exception):
                raise answer
            return answer

        return handle

    def called(self, tenant: str) -> list[TargetCall]:
        return [c for c in self.calls if c.tenant == tenant]


@pytest.fixture
def handlers() -> Handlers:
    return Handlers()


def setup_tenant(ctx: Context, tenant: str, **trigger_fields: Any) -> str:
    """A tenant with one agent (its own python handler) and one daily trigger."""
    tenants.create_tenant(ctx, tenant)
    resources.put_project(ctx, tenant, "p", None, None)
    register_handlers(ctx, [f"{tenant}-agent"])
    target = {"type": "python", "handler": f"{tenant}-agent"}
    resources.put_agent(ctx, tenant, "p", "main", "bot", None, target)
    fields = {"name": "t", "cron_expression": "0 3 * * *"} | trigger_fields
    return triggers.create_trigger(ctx, tenant, "p", "bot", fields).id


def run_now(ctx: Context, tenant: str, trigger_id: str) -> str:
    return triggers.run_now(ctx, tenant, "p", "bot", trigger_id).id


def invocation(ctx: Context, invocation_id: str) -> Invocation:
    with ctx.db.read() as tx:
        found = tx.get_invocation(invocation_id)
    assert found is not None
    return found


def pool(ctx: Context, handlers: Handlers, concurrency: int = 10) -> WorkerPool:
    ctx.settings = ctx.settings.with_(worker_concurrency=concurrency)
    notifier = LocalNotifier()
    notifier.bind(asyncio.get_running_loop())
    return WorkerPool(ctx, notifier, Targets(ctx, handlers.registry()))


async def work(workers: WorkerPool) -> None:
    """Run everything due to its end, claim after claim."""
    while True:
        await workers.run_once()
        if not workers.inflight:
            # Attempts that ended before this claim have outcomes still to store.
            await workers.flush()
            return
        await workers.wait_idle()


# -- a message that renders too large -------------------------------------------------


def test_an_invocation_whose_message_renders_too_large_fails_alone(
    ctx: Context, handlers: Handlers
) -> None:
    async def scenario() -> None:
        big = setup_tenant(
            ctx, "attacker", payload={"a": "x" * 10_000}, message_template="{{a}}" * 50
        )
        victim = setup_tenant(ctx, "victim")
        # Accepted under the default cap; the operator then lowers it.
        ctx.settings = ctx.settings.with_(max_message_bytes=100_000)
        attack, wanted = run_now(ctx, "attacker", big), run_now(ctx, "victim", victim)
        await work(pool(ctx, handlers))
        failed = invocation(ctx, attack)
        assert failed.status == FAILED
        assert failed.last_error is not None
        assert "renders to 500000 bytes; the limit is 100000" in failed.last_error
        assert "TICKWORK_MAX_MESSAGE_BYTES" in failed.last_error
        assert handlers.called("attacker") == []
        assert invocation(ctx, wanted).status == COMPLETED
        assert len(handlers.called("victim")) == 1

    run(scenario())


# -- answers the database cannot store ------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param({"conversation_id": "c" * 300}, id="a 300-character conversation id"),
        pytest.param({"conversation_id": "ok", "text": "nul\x00byte"}, id="a NUL in the answer"),
        pytest.param({"conversation_id": "a\x00b"}, id="a NUL in the conversation id"),
        pytest.param({"text": "lone \udc80 surrogate"}, id="a lone surrogate"),
        pytest.param({"score": float("nan")}, id="NaN in the answer"),
        pytest.param(RuntimeError("failed with \x00 and \udcff"), id="an error text with NUL"),
    ],
)
def test_an_answer_the_database_cannot_store_loses_no_other_outcome(
    ctx: Context, handlers: Handlers, answer: Any
) -> None:
    async def scenario() -> None:
        attacker = setup_tenant(ctx, "attacker", max_retries=0)
        victim = setup_tenant(ctx, "victim")
        handlers.answers["attacker"] = answer
        attacks = [run_now(ctx, "attacker", attacker) for _ in range(3)]
        wanted = [run_now(ctx, "victim", victim) for _ in range(3)]
        await work(pool(ctx, handlers))
        for invocation_id in wanted:
            assert invocation(ctx, invocation_id).status == COMPLETED
        for invocation_id in attacks:
            assert invocation(ctx, invocation_id).status in (COMPLETED, FAILED)
        # Each delivered exactly once: no outcome was lost and retried.
        assert len(handlers.called("victim")) == 3
        assert len(handlers.called("attacker")) == 3

    run(scenario())


def test_a_conversation_id_too_long_to_be_one_is_not_stored_as_one(
    ctx: Context, handlers: Handlers
) -> None:
    async def scenario() -> None:
        trigger_id = setup_tenant(ctx, "attacker")
        handlers.answers["attacker"] = {"conversation_id": "c" * 300}
        invocation_id = run_now(ctx, "attacker", trigger_id)
        await work(pool(ctx, handlers))
        stored = invocation(ctx, invocation_id)
        assert stored.status == COMPLETED
        assert stored.conversation_id is None
        assert stored.result["response"]["conversation_id"] == "c" * 300

    run(scenario())


@pytest.fixture
def refuse_outcomes_of(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The database refuses to store the outcome of these invocations (as it would a
    value it cannot hold)."""
    refused: set[str] = set()
    real = Tx.settle_invocations

    def settle(self: Tx, rows: Any) -> list[str]:
        if any(r.id in refused and r.status != FAILED for r in rows):
            raise sa.exc.DataError("UPDATE invocations", {}, ValueError("value refused"))
        return real(self, rows)

    monkeypatch.setattr(Tx, "settle_invocations", settle)
    return refused


def test_an_outcome_the_database_refuses_fails_its_invocation_and_stores_the_rest(
    ctx: Context, handlers: Handlers, refuse_outcomes_of: set[str]
) -> None:
    async def scenario() -> None:
        attacker = setup_tenant(ctx, "attacker")
        victim = setup_tenant(ctx, "victim")
        attack = run_now(ctx, "attacker", attacker)
        wanted = [run_now(ctx, "victim", victim) for _ in range(4)]
        refuse_outcomes_of.add(attack)
        await work(pool(ctx, handlers))
        failed = invocation(ctx, attack)
        assert failed.status == FAILED
        assert failed.last_error is not None
        assert "could not be stored" in failed.last_error
        assert "value refused" in failed.last_error
        assert [invocation(ctx, i).status for i in wanted] == [COMPLETED] * 4
        assert len(handlers.called("victim")) == 4

    run(scenario())


def test_outcomes_survive_a_database_outage_and_are_stored_once_it_is_back(
    ctx: Context, handlers: Handlers, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        victim = setup_tenant(ctx, "victim")
        wanted = [run_now(ctx, "victim", victim) for _ in range(3)]
        real = execution.settle
        outages = [1]

        def settle(ctx_: Context, outcomes: list[execution.Outcome]) -> list[str]:
            if outages[0]:
                outages[0] -= 1
                raise sa.exc.OperationalError("COMMIT", {}, ConnectionError("server gone"))
            return real(ctx_, outcomes)

        monkeypatch.setattr(execution, "settle", settle)
        workers = pool(ctx, handlers)
        while await workers.run_once():
            pass
        while workers.inflight:
            await asyncio.gather(*[t for _, t in workers.inflight.values()])
        with pytest.raises(sa.exc.OperationalError):
            await workers.flush()
        await workers.flush()
        assert [invocation(ctx, i).status for i in wanted] == [COMPLETED] * 3

    run(scenario())


# -- dispatch --------------------------------------------------------------------------


def test_a_trigger_whose_invocations_cannot_be_stored_is_disabled_and_the_rest_dispatch(
    ctx: Context, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    poison = setup_tenant(ctx, "attacker", cron_expression="* * * * *")
    victim = setup_tenant(ctx, "victim", cron_expression="* * * * *")
    real = Tx.insert_invocations

    def insert(self: Tx, rows: Any) -> list[str]:
        if any(r.trigger_id == poison for r in rows):
            raise sa.exc.DataError("INSERT INTO invocations", {}, ValueError("value refused"))
        return real(self, rows)

    monkeypatch.setattr(Tx, "insert_invocations", insert)
    clock.advance(60)
    result = dispatch.dispatch_batch(ctx, clock.now(), 100)
    assert (result.created, result.disabled) == (1, 1)
    with ctx.db.read() as tx:
        disabled = tx.get_trigger(poison)
        assert disabled is not None
        assert not disabled.enabled
        assert disabled.next_run_at is None
        assert disabled.last_error is not None
        assert "could not be stored" in disabled.last_error
        [dispatched] = tx.list_invocations("victim", "p", InvocationFilter(victim))
    assert dispatched.status == PENDING
    # The next minute goes on as usual for the other tenant.
    clock.advance(60)
    assert dispatch.dispatch_batch(ctx, clock.now(), 100).created == 1


def test_an_edit_made_while_a_batch_is_planned_wins_over_the_batch(
    ctx: Context, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    edited = setup_tenant(ctx, "victim", cron_expression="* * * * *")
    clock.advance(60)
    real_plan = dispatch._plan

    def plan_then_edit(trigger: Any, now: datetime, active: int, *rest: Any) -> Any:
        planned = real_plan(trigger, now, active, *rest)
        # The owner disables the trigger between the planning and the write.
        clock.advance(0.001)
        triggers.update_trigger(ctx, "victim", "p", "bot", edited, {"enabled": False})
        return planned

    monkeypatch.setattr(dispatch, "_plan", plan_then_edit)
    assert dispatch.dispatch_batch(ctx, clock.now(), 100).created == 0
    with ctx.db.read() as tx:
        trigger = tx.get_trigger(edited)
        assert trigger is not None
        assert (trigger.enabled, trigger.next_run_at) == (False, None)
        assert tx.list_invocations("victim", "p", InvocationFilter(edited)) == []


# -- claims ----------------------------------------------------------------------------


def test_an_invocation_that_cannot_be_claimed_fails_alone(
    ctx: Context, handlers: Handlers, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        attacker = setup_tenant(ctx, "attacker")
        victim = setup_tenant(ctx, "victim")
        poison = run_now(ctx, "attacker", attacker)
        wanted = run_now(ctx, "victim", victim)
        real = Tx.claim_ids

        def claim_ids(self: Tx, ids: Any, *args: Any) -> Any:
            if poison in ids:
                raise sa.exc.DataError("UPDATE invocations", {}, ValueError("cannot decode"))
            return real(self, ids, *args)

        monkeypatch.setattr(Tx, "claim_ids", claim_ids)
        await work(pool(ctx, handlers))
        failed = invocation(ctx, poison)
        assert failed.status == FAILED
        assert failed.last_error is not None
        assert "could not be started" in failed.last_error
        assert invocation(ctx, wanted).status == COMPLETED
        # And it does not come back: the next claims go on without it.
        again = run_now(ctx, "victim", victim)
        await work(pool(ctx, handlers))
        assert invocation(ctx, again).status == COMPLETED

    run(scenario())


# -- fair share --------------------------------------------------------------------------


def test_a_busy_tenant_never_holds_the_whole_pool(ctx: Context, handlers: Handlers) -> None:
    async def scenario() -> None:
        attacker = setup_tenant(ctx, "attacker")
        victim = setup_tenant(ctx, "victim")
        handlers.blocked["attacker"] = asyncio.Event()
        for _ in range(2):
            run_now(ctx, "attacker", attacker)
        workers = pool(ctx, handlers, concurrency=2)
        await workers.run_once()
        # The attacker's two slow calls: one runs, the other waits for its share.
        assert [j.invocation.tenant_id for j, _ in workers.inflight.values()] == ["attacker"]
        wanted = run_now(ctx, "victim", victim)
        assert await workers.run_once() == 1
        await until(lambda: len(handlers.called("victim")) == 1, handlers.called_now)
        handlers.blocked["attacker"].set()
        await work(workers)
        assert invocation(ctx, wanted).status == COMPLETED

    run(scenario())


def test_another_tenants_due_invocation_is_found_behind_a_backlog(
    ctx: Context, clock: FakeClock, handlers: Handlers
) -> None:
    # The backlog is made before the scenario's time limit starts: only claiming counts.
    attacker = setup_tenant(ctx, "attacker")
    victim = setup_tenant(ctx, "victim")
    backlog = [run_now(ctx, "attacker", attacker) for _ in range(500)]
    clock.advance(1)
    wanted = run_now(ctx, "victim", victim)

    async def scenario() -> None:
        workers = pool(ctx, handlers, concurrency=10)
        handlers.blocked["attacker"] = asyncio.Event()
        await workers.run_once()
        running = sorted(j.invocation.tenant_id for j, _ in workers.inflight.values())
        # The attacker's share (8 of 10) and the victim's invocation, in the first claim.
        assert running == ["attacker"] * 8 + ["victim"]
        await until(lambda: bool(handlers.called("victim")), handlers.called_now)
        assert invocation(ctx, wanted).status in (RUNNING, COMPLETED)
        assert len(backlog) == 500

    run(scenario())


def test_free_slots_go_to_the_tenant_with_the_fewest_running(
    ctx: Context, handlers: Handlers
) -> None:
    async def scenario() -> None:
        ids = {tenant: setup_tenant(ctx, tenant) for tenant in ("attacker", "victim", "other")}
        for tenant in ids:
            handlers.blocked[tenant] = asyncio.Event()
        for _ in range(6):
            run_now(ctx, "attacker", ids["attacker"])
        for _ in range(3):
            run_now(ctx, "victim", ids["victim"])
        run_now(ctx, "other", ids["other"])
        workers = pool(ctx, handlers, concurrency=5)
        await workers.run_once()
        running = sorted(j.invocation.tenant_id for j, _ in workers.inflight.values())
        assert running == ["attacker", "attacker", "other", "victim", "victim"]
        for gate in handlers.blocked.values():
            gate.set()
        await work(workers)

    run(scenario())


def test_an_agent_with_max_concurrency_never_runs_more_at_once_across_workers(
    ctx: Context, handlers: Handlers
) -> None:
    async def scenario() -> None:
        trigger_id = setup_tenant(ctx, "victim")
        target = {"type": "python", "handler": "victim-agent"}
        resources.put_agent(ctx, "victim", "p", "main", "bot", None, target, max_concurrency=2)
        handlers.blocked["victim"] = asyncio.Event()
        for _ in range(5):
            run_now(ctx, "victim", trigger_id)
        first, second = pool(ctx, handlers), pool(ctx, handlers)
        await first.run_once()
        await second.run_once()
        assert len(first.inflight) + len(second.inflight) == 2
        handlers.blocked["victim"].set()
        for _ in range(5):
            for workers in (first, second):
                await workers.wait_idle()
                await workers.run_once()
                assert len(first.inflight) + len(second.inflight) <= 2
        await first.wait_idle()
        await second.wait_idle()
        assert len(handlers.called("victim")) == 5

    run(scenario())


def test_recovering_lost_attempts_isolates_one_the_database_refuses(
    ctx: Context, clock: FakeClock, refuse_outcomes_of: set[str]
) -> None:
    attacker = setup_tenant(ctx, "attacker")
    victim = setup_tenant(ctx, "victim")
    poison = run_now(ctx, "attacker", attacker)
    wanted = run_now(ctx, "victim", victim)
    assert len(execution.claim_jobs(ctx, "dead-worker", 10)) == 2
    refuse_outcomes_of.add(poison)
    clock.advance(ctx.settings.worker_lease_seconds + 1)
    recovered = execution.recover_expired_leases(ctx)
    assert sorted(i.id for i in recovered) == sorted([poison, wanted])
    assert invocation(ctx, wanted).status == PENDING  # retried by a live worker
    failed = invocation(ctx, poison)
    assert failed.status == FAILED
    assert failed.last_error is not None
    assert "could not be stored" in failed.last_error


# -- the same attacks through real webhooks --------------------------------------------


class _Answers(BaseHTTPRequestHandler):
    """Loopback webhook receiver: each path answers as one tenant's endpoint would."""

    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.hits[self.path] += 1
        status, body = {
            "/long-id": (200, json.dumps({"conversation_id": "c" * 300}).encode()),
            "/nul-500": (500, b"upstream failed \x00 badly"),
            "/json-nul": (200, b'{"conversation_id": "ok", "note": "a\\u0000b"}'),
            "/ok": (200, b'{"conversation_id": "fine"}'),
        }[self.path]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def answers() -> Iterator[Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    server.daemon_threads = True
    server.lock = threading.Lock()  # type: ignore[attr-defined]
    server.hits = Counter()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_webhook_answers_the_database_cannot_store_lose_no_other_tenants_outcome(
    ctx: Context, answers: Any
) -> None:
    async def scenario() -> None:
        base = f"http://127.0.0.1:{answers.server_port}"
        ctx.settings = ctx.settings.with_(allowed_target_networks=("127.0.0.0/8",))
        wanted: list[str] = []
        attacks: list[str] = []
        for tenant, path in (
            ("long", "/long-id"),
            ("nul", "/nul-500"),
            ("jsonnul", "/json-nul"),
            ("victim", "/ok"),
        ):
            tenants.create_tenant(ctx, tenant)
            resources.put_project(ctx, tenant, "p", None, None)
            target = {"type": "webhook", "url": base + path}
            resources.put_agent(ctx, tenant, "p", "main", "bot", None, target)
            fields = {"name": "t", "cron_expression": "0 3 * * *", "max_retries": 0}
            trigger = triggers.create_trigger(ctx, tenant, "p", "bot", fields).id
            made = [run_now(ctx, tenant, trigger) for _ in range(3)]
            (wanted if tenant == "victim" else attacks).extend(made)
        workers = pool(ctx, Handlers())
        try:
            await work(workers)
        finally:
            await workers.targets.close()  # the webhooks' connections
        assert [invocation(ctx, i).status for i in wanted] == [COMPLETED] * 3
        assert {invocation(ctx, i).status for i in attacks} <= {COMPLETED, FAILED}
        # Every endpoint was called exactly once per invocation: no outcome was dropped
        # and delivered again.
        assert dict(answers.hits) == {"/long-id": 3, "/nul-500": 3, "/json-nul": 3, "/ok": 3}

    run(scenario())
