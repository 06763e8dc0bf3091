"""The a2a and openai targets end to end: the scheduler and workers on a fake clock, the
agents real servers on loopback (a2a-sdk's server classes; the openai package's own
response models), everything between them tickwork's real code (SPEC §13)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Coroutine, Iterable
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa

from tests.waiting import within
from tickwork.services import invocations
from tickwork.storage import tables
from tickwork.storage.records import (
    CANCELLED,
    COMPLETED,
    FAILED,
    PENDING,
    RUNNING,
    SKIPPED,
    Invocation,
)
from tickwork.storage.sql.run_context import RunContextSql

from .conftest import World, wait_for
from .servers import A2AAgent, ModelServer

Make = Callable[[], Coroutine[Any, Any, World]]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout=20))


def once(seconds: int = 5) -> dict[str, Any]:
    return {"run_at": T0 + timedelta(seconds=seconds)}


async def followed(agent: A2AAgent) -> None:
    """Until the attempt holds the agent's task: it has asked for it once."""
    await wait_for(agent.executor.started)
    await agent.asked("GetTask")


# --- A2A ----------------------------------------------------------------------------------


def test_an_a2a_agent_runs_the_message_and_its_task_is_the_result(
    world: Make, agent: A2AAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKWORK_TARGET_SECRET_A2A", "agent-token")

    async def scenario() -> None:
        w = await world()
        secret = {"env": "TICKWORK_TARGET_SECRET_A2A"}
        w.agent("helper", {"type": "a2a", "url": agent.url, "secret": secret})
        t = w.trigger(
            "helper",
            **once(),
            payload={"team": "core"},
            message_template="echo report for {{ team }}",
            run_as="user:ada@example.com",
        )
        await w.run_next(5)
        [inv] = w.invocations(t.id)
        assert inv.status == COMPLETED, inv.last_error
        assert inv.result["state"] == "completed"
        assert inv.result["text"] == "echo: echo report for core"
        assert inv.result["task_id"]
        [artifact] = inv.result["artifacts"]
        assert artifact["name"] == "reply"
        assert artifact["metadata"] == {"context": inv.conversation_id}
        [send] = agent.calls("SendMessage")
        message = send["params"]["message"]
        assert message["role"] == "ROLE_USER"
        assert message["parts"][0] == {"text": "echo report for core"}
        assert message["parts"][1]["data"] == {"team": "core"}
        assert message["metadata"]["run_as"] == "user:ada@example.com"
        assert message["metadata"]["tickwork"]["idempotency_key"] == inv.idempotency_key
        assert message["metadata"]["tickwork"]["previous"] is None
        assert "contextId" not in message  # a new conversation
        assert send["params"]["configuration"]["returnImmediately"] is True
        seen = agent.recorder.requests[0].headers
        assert seen["authorization"] == "Bearer agent-token"
        assert seen["x-tickwork-run-as"] == "user:ada@example.com"
        assert seen["idempotency-key"] == inv.idempotency_key

    run(scenario())


def test_an_agent_speaking_a2a_0_3_gets_message_send(world: Make, agent: A2AAgent) -> None:
    async def scenario() -> None:
        w = await world()
        w.agent("old", {"type": "a2a", "url": agent.url, "protocol_version": "0.3"})
        t = w.trigger("old", **once(), message_template="echo hello")
        await w.run_next(5)
        [inv] = w.invocations(t.id)
        assert inv.status == COMPLETED, inv.last_error
        assert inv.result["text"] == "echo: echo hello"
        assert agent.calls("message/send")
        assert not agent.calls("SendMessage")

    run(scenario())


def test_a_task_that_stays_working_is_followed_until_it_completes(
    world: Make, agent: A2AAgent
) -> None:
    async def scenario() -> None:
        w = await world()
        w.agent("helper", {"type": "a2a", "url": agent.url})
        t = w.trigger("helper", **once(), message_template="slow job")
        w.clock.advance(5)
        await w.dispatch()
        working = asyncio.create_task(w.work())
        await wait_for(agent.executor.started)
        # The task is open: the attempt keeps asking until it is final.
        await agent.asked("GetTask", times=2)
        assert w.invocations(t.id)[0].status == RUNNING
        agent.release.set()
        await working
        [inv] = w.invocations(t.id)
        assert inv.status == COMPLETED, inv.last_error
        assert inv.result["text"] == "echo: slow job"
        task_id = inv.result["task_id"]
        assert {c["params"]["id"] for c in agent.calls("GetTask")} == {task_id}

    run(scenario())


def test_cancelling_the_invocation_cancels_the_agents_task(world: Make, agent: A2AAgent) -> None:
    async def scenario() -> None:
        w = await world()
        w.agent("helper", {"type": "a2a", "url": agent.url})
        t = w.trigger("helper", **once(), message_template="stuck forever")
        w.clock.advance(5)
        await w.dispatch()
        working = asyncio.create_task(w.work())
        await followed(agent)
        [inv] = w.invocations(t.id)
        invocations.cancel_invocation(w.ctx, "acme", "proj", t.id, inv.id)
        await working
        [cancel] = agent.calls("CancelTask")
        assert agent.executor.cancelled == [cancel["params"]["id"]]
        assert w.invocations(t.id)[0].status == CANCELLED

    run(scenario())


def test_a_timeout_cancels_the_task_and_the_attempt_is_retried(
    world: Make, agent: A2AAgent
) -> None:
    async def scenario() -> None:
        w = await world()
        w.agent("helper", {"type": "a2a", "url": agent.url})
        t = w.trigger("helper", **once(), message_template="stuck", timeout_seconds=30)
        w.clock.advance(5)
        await w.dispatch()
        working = asyncio.create_task(w.work())
        await followed(agent)
        w.clock.advance(30)
        await working
        [inv] = w.invocations(t.id)
        assert inv.status == PENDING
        assert inv.last_error == "timed out after 30 s"
        assert len(agent.calls("CancelTask")) == 1
        assert len(agent.executor.cancelled) == 1

    run(scenario())


@pytest.mark.parametrize(
    ("mode", "status", "words"),
    [
        ("fail", PENDING, "ended failed: the tool is down"),  # retried
        ("ask", COMPLETED, None),  # the question is the output
    ],
)
def test_the_tasks_final_state_decides_the_outcome(
    world: Make, agent: A2AAgent, mode: str, status: str, words: str | None
) -> None:
    async def scenario() -> None:
        w = await world()
        w.agent("helper", {"type": "a2a", "url": agent.url})
        t = w.trigger("helper", **once(), message_template=f"{mode} now")
        await w.run_next(5)
        [inv] = w.invocations(t.id)
        assert inv.status == status
        if words is not None:
            assert words in (inv.last_error or "")
        else:
            assert inv.result["state"] == "input-required"
            assert inv.result["text"] == "Which team?"

    run(scenario())


def test_a_continued_conversation_carries_the_previous_context_id(
    world: Make, agent: A2AAgent
) -> None:
    async def scenario() -> None:
        w = await world()
        w.agent("helper", {"type": "a2a", "url": agent.url})
        t = w.trigger(
            "helper",
            cron_expression="0 * * * *",
            conversation="continue",
            message_template="echo {{ previous.result.text }}",
        )
        await w.run_next(3600)
        await w.run_next(3600)
        first, second = w.invocations(t.id)
        assert first.status == second.status == COMPLETED
        assert second.conversation_id == first.conversation_id
        sends = agent.calls("SendMessage")
        assert "contextId" not in sends[0]["params"]["message"]
        assert sends[1]["params"]["message"]["contextId"] == first.conversation_id
        # The template read the previous run's output.
        assert second.message == "echo echo: echo "
        previous = sends[1]["params"]["message"]["metadata"]["tickwork"]["previous"]
        assert previous["id"] == first.id
        assert previous["conversation_id"] == first.conversation_id

    run(scenario())


def test_a2a_retries_on_503_and_429_and_fails_at_once_on_403(world: Make, agent: A2AAgent) -> None:
    async def scenario() -> None:
        w = await world()
        w.agent("helper", {"type": "a2a", "url": agent.url})
        agent.recorder.fail_next.extend([503, 429])
        t = w.trigger("helper", **once(), message_template="echo", max_retries=3)
        await w.run_next(5)
        assert w.invocations(t.id)[0].status == PENDING
        assert "answered 503" in (w.invocations(t.id)[0].last_error or "")
        await w.run_next(120)
        assert "answered 429" in (w.invocations(t.id)[0].last_error or "")
        await w.run_next(240)
        [inv] = w.invocations(t.id)
        assert (inv.status, inv.attempt) == (COMPLETED, 3)
        agent.recorder.fail_next.append(403)
        denied = w.trigger("helper", name="denied", **once(600), max_retries=3)
        await w.run_next(600)
        [inv] = w.invocations(denied.id)
        assert (inv.status, inv.attempt) == (FAILED, 1)
        assert "answered 403" in (inv.last_error or "")

    run(scenario())


# --- OpenAI-compatible ------------------------------------------------------------------------


def test_a_model_gets_the_message_with_the_instructions_and_reports_usage(
    world: Make, models: ModelServer
) -> None:
    async def scenario() -> None:
        w = await world()
        w.agent(
            "writer",
            {
                "type": "openai",
                "base_url": models.base_url,
                "model": "small-1",
                "instructions": "Answer in one line.",
                "secret": "sk-test",
            },
        )
        t = w.trigger("writer", **once(), message_template="Summarise the day", run_as="svc:ops")
        await w.run_next(5)
        [inv] = w.invocations(t.id)
        assert inv.status == COMPLETED, inv.last_error
        assert inv.result["output_text"] == "[small-1] Answer in one line. | Summarise the day"
        assert inv.result["response_id"] == inv.conversation_id == "resp_1"
        assert inv.result["model"] == "small-1"
        assert inv.usage == {"input_tokens": 30, "output_tokens": 25, "total_tokens": 55}
        assert inv.result["usage"] == inv.usage
        [body] = models.bodies("/v1/responses")
        assert body["input"] == "Summarise the day"
        assert body["instructions"] == "Answer in one line."
        assert body["user"] == "svc:ops"
        assert "previous_response_id" not in body
        headers = models.recorder.requests[0].headers
        assert headers["authorization"] == "Bearer sk-test"
        # No header the SDK would take from the worker's environment or add itself.
        assert not {h for h in headers if h.startswith(("openai-", "x-stainless"))}

    run(scenario())


def test_a_continued_model_conversation_passes_the_previous_response_id(
    world: Make, models: ModelServer
) -> None:
    async def scenario() -> None:
        w = await world()
        w.agent("writer", {"type": "openai", "base_url": models.base_url, "model": "m"})
        t = w.trigger(
            "writer",
            cron_expression="0 * * * *",
            conversation="continue",
            message_template="Go on from: {{ previous.result.output_text }}",
        )
        await w.run_next(3600)
        await w.run_next(3600)
        first, second = models.bodies("/v1/responses")
        assert "previous_response_id" not in first
        assert second["previous_response_id"] == "resp_1"
        assert second["input"] == "Go on from: [m]  | Go on from: "
        assert w.invocations(t.id)[1].message == second["input"]
        assert "authorization" not in models.recorder.requests[0].headers  # no secret

    run(scenario())


def test_the_chat_api_sends_instructions_and_the_previous_answer(
    world: Make, models: ModelServer
) -> None:
    async def scenario() -> None:
        w = await world()
        w.agent(
            "chat",
            {
                "type": "openai",
                "base_url": models.base_url,
                "model": "m",
                "api": "chat",
                "instructions": "Be terse.",
            },
        )
        t = w.trigger("chat", cron_expression="0 * * * *", conversation="continue")
        await w.run_next(3600)
        await w.run_next(3600)
        first, second = models.bodies("/v1/chat/completions")
        assert [m["role"] for m in first["messages"]] == ["system", "user"]
        assert [m["role"] for m in second["messages"]] == ["system", "assistant", "user"]
        runs = w.invocations(t.id)
        assert second["messages"][1]["content"] == runs[0].result["output_text"]
        assert runs[1].usage is not None
        assert runs[1].usage["total_tokens"] > 0

    run(scenario())


def test_the_model_target_retries_5xx_and_429_and_fails_on_400(
    world: Make, models: ModelServer
) -> None:
    async def scenario() -> None:
        w = await world()
        w.agent("writer", {"type": "openai", "base_url": models.base_url, "model": "m"})
        models.recorder.fail_next.extend([500, 429])
        t = w.trigger("writer", **once(), max_retries=2)
        await w.run_next(5)
        assert "answered 500" in (w.invocations(t.id)[0].last_error or "")
        await w.run_next(120)
        assert "answered 429" in (w.invocations(t.id)[0].last_error or "")
        await w.run_next(240)
        [inv] = w.invocations(t.id)
        assert (inv.status, inv.attempt) == (COMPLETED, 3)
        # One request per attempt: the SDK's own retries are off.
        assert len(models.bodies("/v1/responses")) == 3
        models.recorder.fail_next.append(400)
        bad = w.trigger("writer", name="bad", **once(600), max_retries=2)
        await w.run_next(600)
        [inv] = w.invocations(bad.id)
        assert (inv.status, inv.attempt) == (FAILED, 1)
        assert "answered 400" in (inv.last_error or "")

    run(scenario())


def test_a_model_that_does_not_answer_in_time_times_out(world: Make) -> None:
    async def scenario() -> None:
        # A server that accepts the connection and never answers.
        connected = asyncio.Event()
        accepted: list[asyncio.StreamWriter] = []

        def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(writer)
            connected.set()

        hung = await asyncio.start_server(accept, "127.0.0.1", 0)
        port = hung.sockets[0].getsockname()[1]
        w = await world()
        w.agent(
            "writer", {"type": "openai", "base_url": f"http://127.0.0.1:{port}/v1", "model": "m"}
        )
        t = w.trigger("writer", **once(), timeout_seconds=20, max_retries=0)
        w.clock.advance(5)
        await w.dispatch()
        working = asyncio.create_task(w.work())
        await within(connected.wait(), "the attempt connecting")  # its timer is running
        assert w.invocations(t.id)[0].status == RUNNING
        w.clock.advance(20)
        await working
        hung.close()
        for writer in accepted:
            writer.close()
        await hung.wait_closed()
        [inv] = w.invocations(t.id)
        assert (inv.status, inv.last_error) == (FAILED, "timed out after 20 s")

    run(scenario())


# --- budgets ------------------------------------------------------------------------------


def test_a_daily_token_budget_skips_slots_until_the_next_utc_day(
    world: Make, models: ModelServer
) -> None:
    async def scenario() -> None:
        w = await world()
        w.agent("writer", {"type": "openai", "base_url": models.base_url, "model": "m"})
        # Each run: 10 input + 25 output tokens; two runs reach the budget of 60.
        t = w.trigger(
            "writer", cron_expression="0 * * * *", message_template="hi", daily_token_budget=60
        )
        for _ in range(15):  # 10:00 ... 24:00 (00:00 of the next UTC day)
            await w.run_next(3600)
        runs = w.invocations(t.id)
        assert [r.scheduled_for.hour for r in runs] == [*range(10, 24), 0]
        assert [r.status for r in runs] == [COMPLETED, COMPLETED] + [SKIPPED] * 12 + [COMPLETED]
        assert {r.status_reason for r in runs if r.status == SKIPPED} == {"budget exceeded"}
        assert [r.usage for r in runs if r.usage] == [
            {"input_tokens": 10, "output_tokens": 25, "total_tokens": 35}
        ] * 3
        usage = tables.trigger_token_usage
        with w.ctx.db.read() as tx:
            days = tx.conn.execute(
                sa.select(usage.c.day, usage.c.tokens, usage.c.invocations)
                .where(usage.c.trigger_id == t.id)
                .order_by(usage.c.day)
            ).all()
        assert [tuple(d) for d in days] == [(date(2026, 3, 2), 70, 2), (date(2026, 3, 3), 35, 1)]

    run(scenario())


# --- every target kind gets the run context ------------------------------------------------


def test_python_handlers_get_the_previous_run_the_conversation_and_run_as(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        w.agent("py", {"type": "python", "handler": "record"})
        t = w.trigger("py", cron_expression="0 * * * *", conversation="continue", run_as="user:42")
        await w.run_next(3600)
        await w.run_next(3600)
        first, second = w.calls.seen
        assert first.previous is None
        assert first.conversation_id is None
        runs = w.invocations(t.id)
        assert second.previous is not None
        assert second.previous.id == runs[0].id
        assert second.previous.scheduled_for == runs[0].scheduled_for
        assert second.previous.status == COMPLETED
        assert second.previous.result == runs[0].result
        assert second.conversation_id == "conv-1"
        assert first.run_as == second.run_as == "user:42"

    run(scenario())


def test_only_a_trigger_that_succeeded_before_has_its_previous_run_read(
    world: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[list[str]] = []
    read = RunContextSql.previous_runs

    def spy(self: RunContextSql, trigger_ids: Iterable[str]) -> dict[str, Invocation]:
        asked.append(list(trigger_ids))
        return read(self, trigger_ids=asked[-1])

    monkeypatch.setattr(RunContextSql, "previous_runs", spy)

    async def scenario() -> None:
        w = await world()
        w.agent("py", {"type": "python", "handler": "record"})
        t = w.trigger("py", cron_expression="0 * * * *")
        await w.run_next(3600)
        await w.run_next(3600)
        assert [ids for ids in asked if ids] == [[t.id]]
        first, second = w.calls.seen
        assert first.previous is None
        assert second.previous is not None

    run(scenario())


def test_a_new_conversation_gets_the_previous_run_but_no_conversation_id(world: Make) -> None:
    async def scenario() -> None:
        w = await world()
        w.agent("py", {"type": "python", "handler": "record"})
        w.trigger("py", cron_expression="0 * * * *")
        await w.run_next(3600)
        await w.run_next(3600)
        second = w.calls.seen[1]
        assert second.previous is not None
        assert second.previous.conversation_id == "conv-1"
        assert second.conversation_id is None
        assert second.run_as is None

    run(scenario())


class _Hook(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[tuple[dict[str, str], dict[str, Any]]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        type(self).seen.append(({k.lower(): v for k, v in self.headers.items()}, body))
        answer = json.dumps(
            {"conversation_id": "thread-1", "usage": {"input_tokens": 6, "output_tokens": 4}}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


def test_webhooks_get_the_run_context_and_may_report_usage(world: Make) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hook.seen = []

    async def scenario() -> None:
        w = await world()
        w.agent("hook", {"type": "webhook", "url": f"http://127.0.0.1:{server.server_port}/h"})
        t = w.trigger(
            "hook",
            cron_expression="0 * * * *",
            conversation="continue",
            run_as="user:7",
            daily_token_budget=15,
        )
        for _ in range(3):
            await w.run_next(3600)
        first, second, third = w.invocations(t.id)
        assert [first.status, second.status, third.status] == [COMPLETED, COMPLETED, SKIPPED]
        assert third.status_reason == "budget exceeded"
        assert first.usage == {"input_tokens": 6, "output_tokens": 4, "total_tokens": 10}
        (headers_1, body_1), (headers_2, body_2) = _Hook.seen
        assert (body_1["previous"], body_1["conversation_id"], body_1["run_as"]) == (
            None,
            None,
            "user:7",
        )
        assert headers_1["x-tickwork-run-as"] == headers_2["x-tickwork-run-as"] == "user:7"
        assert body_2["conversation_id"] == "thread-1"
        assert body_2["previous"] == {
            "id": first.id,
            "scheduled_for": "2026-03-02T10:00:00Z",
            "status": "completed",
            "conversation_id": "thread-1",
            "result": first.result,
        }

    try:
        run(scenario())
    finally:
        server.shutdown()
        server.server_close()
