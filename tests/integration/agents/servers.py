"""Real agent servers on loopback, for the agent targets' tests.

- :func:`a2a_agent`: an A2A agent built with a2a-sdk's own server classes
  (``DefaultRequestHandler``, ``InMemoryTaskStore``, the JSON-RPC routes with 0.3
  compatibility, ``TaskUpdater``). What it does depends on the first word of the
  message: ``echo`` (the default) completes at once with the message as an artifact;
  ``slow`` reports ``working`` and completes once :attr:`A2AAgent.release` is set;
  ``stuck`` stays ``working`` until cancelled; ``fail`` ends ``failed``; ``ask`` ends
  ``input-required``.
- :func:`model_server`: an OpenAI-compatible server whose answers are the ``openai``
  package's own models (``Response``, ``ChatCompletion``), so the wire shape is the
  SDK's.

Both record what they receive and can be told to answer the next requests with given
HTTP statuses (:attr:`Recorder.fail_next`), for retries and permanent failures.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from a2a.helpers.proto_helpers import new_task
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    Part,
    TaskState,
)
from openai.types.chat import ChatCompletion, ChatCompletionMessage
from openai.types.chat.chat_completion import Choice
from openai.types.completion_usage import CompletionUsage
from openai.types.responses import (
    Response,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseUsage,
)
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.waiting import until_in_thread


@dataclass
class Seen:
    """One request as the server got it."""

    path: str
    headers: dict[str, str]  # lower-case names
    body: Any


@dataclass
class Recorder:
    requests: list[Seen] = field(default_factory=list)
    # Statuses to answer the next requests with, before the real handler sees them.
    fail_next: list[int] = field(default_factory=list)
    # A Set-Cookie header to add to every answer.
    set_cookie: str | None = None
    lock: threading.Condition = field(default_factory=threading.Condition)

    def bodies(self) -> list[Any]:
        with self.lock:
            return [seen.body for seen in self.requests]

    async def until(self, check: Callable[[], bool]) -> None:
        """Wait (off the event loop, bounded) until ``check()`` holds, checked again on
        each request."""
        await until_in_thread(check, self.lock, what="the server seeing it")


class _Recording:
    """ASGI middleware: record each request; answer a scripted failure status."""

    def __init__(self, app: ASGIApp, recorder: Recorder) -> None:
        self.app = app
        self.recorder = recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        with self.recorder.lock:
            self.recorder.requests.append(Seen(scope["path"], headers, body))
            status = self.recorder.fail_next.pop(0) if self.recorder.fail_next else None
            self.recorder.lock.notify_all()
        if status is not None:
            error = JSONResponse({"error": {"message": f"scripted {status}"}}, status_code=status)
            await error(scope, receive, send)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        async def cookie_send(message: Message) -> None:
            cookie = self.recorder.set_cookie
            if message["type"] == "http.response.start" and cookie is not None:
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"set-cookie", cookie.encode())],
                }
            await send(message)

        await self.app(scope, replay, cookie_send)


@contextmanager
def _serve(app: ASGIApp) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 in a thread; yields the base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning")  # with its lifespan: startup, shutdown
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


# --- the A2A agent ------------------------------------------------------------------------


@dataclass
class A2AAgent:
    url: str  # the JSON-RPC endpoint
    recorder: Recorder
    executor: _Executor

    @property
    def release(self) -> threading.Event:
        return self.executor.release

    def calls(self, method: str) -> list[dict[str, Any]]:
        """The JSON-RPC requests of ``method`` (either protocol version's name)."""
        return [b for b in self.recorder.bodies() if _method(b) == method]

    async def asked(self, method: str, times: int = 1) -> None:
        """Wait until the agent has had ``method`` at least ``times`` times."""

        def check() -> bool:
            return sum(1 for s in self.recorder.requests if _method(s.body) == method) >= times

        await self.recorder.until(check)


def _method(body: Any) -> Any:
    return body.get("method") if isinstance(body, dict) else None


class _Executor(AgentExecutor):
    def __init__(self) -> None:
        self.release = threading.Event()
        self.stopping = threading.Event()
        self.cancelled: list[str] = []
        self.started = threading.Event()

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id is not None
        assert context.context_id is not None
        if context.current_task is None:
            await event_queue.enqueue_event(
                new_task(context.task_id, context.context_id, TaskState.TASK_STATE_SUBMITTED)
            )
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        text = context.get_user_input()
        mode = text.split(" ", 1)[0] if text else "echo"
        await updater.start_work()
        self.started.set()
        if mode in ("slow", "stuck"):
            # A long-running agent: until the test releases it (or, stuck, until the
            # server stops; cancelling the task stops waiting for it).
            await asyncio.to_thread((self.release if mode == "slow" else self.stopping).wait)
        if mode == "fail":
            await updater.failed(updater.new_agent_message([Part(text="the tool is down")]))
            return
        if mode == "ask":
            await updater.requires_input(updater.new_agent_message([Part(text="Which team?")]))
            return
        await updater.add_artifact(
            [Part(text=f"echo: {text}")], name="reply", metadata={"context": context.context_id}
        )
        await updater.complete(updater.new_agent_message([Part(text="done")]))

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id is not None
        assert context.context_id is not None
        self.cancelled.append(context.task_id)
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await updater.cancel()


@contextmanager
def a2a_agent() -> Iterator[A2AAgent]:
    executor = _Executor()
    recorder = Recorder()
    card = AgentCard(
        name="echo",
        description="echoes, slowly or not",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(
                protocol_binding="JSONRPC", url="http://127.0.0.1/", protocol_version="1.0"
            )
        ],
        capabilities=AgentCapabilities(streaming=False),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="echo", name="echo", description="echo", tags=["echo"])],
    )
    handler = DefaultRequestHandler(
        agent_executor=executor, task_store=InMemoryTaskStore(), agent_card=card
    )
    routes = [
        *create_agent_card_routes(card),
        *create_jsonrpc_routes(handler, "/a2a", enable_v0_3_compat=True),
    ]
    app = _Recording(Starlette(routes=routes), recorder)
    with _serve(app) as base:
        yield A2AAgent(f"{base}/a2a", recorder, executor)
        executor.release.set()
        executor.stopping.set()


# --- the OpenAI-compatible model server ---------------------------------------------------


@dataclass
class ModelServer:
    base_url: str  # ends in /v1
    recorder: Recorder

    def bodies(self, path: str) -> list[dict[str, Any]]:
        with self.recorder.lock:
            return [s.body for s in self.recorder.requests if s.path == path]


def _usage_counts(text: str) -> tuple[int, int]:
    return len(text.split()) * 10, 25


def model_app(recorder: Recorder) -> ASGIApp:
    ids = itertools.count(1)

    async def responses(request: Request) -> JSONResponse:
        body = await request.json()
        number = next(ids)
        text = f"[{body['model']}] {body.get('instructions') or ''} | {body['input']}"
        if body.get("previous_response_id"):
            text += f" (after {body['previous_response_id']})"
        given, taken = _usage_counts(str(body["input"]))
        answer = Response(
            id=f"resp_{number}",
            created_at=1772523002,
            model=body["model"],
            object="response",
            output=[
                ResponseOutputMessage(
                    id=f"msg_{number}",
                    type="message",
                    role="assistant",
                    status="completed",
                    content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
                )
            ],
            parallel_tool_calls=False,
            tool_choice="auto",
            tools=[],
            previous_response_id=body.get("previous_response_id"),
            usage=ResponseUsage(
                input_tokens=given,
                input_tokens_details=InputTokensDetails(cache_write_tokens=0, cached_tokens=0),
                output_tokens=taken,
                output_tokens_details=OutputTokensDetails(reasoning_tokens=0),
                total_tokens=given + taken,
            ),
        )
        return JSONResponse(answer.model_dump(mode="json", exclude_unset=True))

    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        number = next(ids)
        said = " / ".join(f"{m['role']}: {m['content']}" for m in body["messages"])
        given, taken = _usage_counts(said)
        answer = ChatCompletion(
            id=f"chatcmpl_{number}",
            created=1772523002,
            model=body["model"],
            object="chat.completion",
            choices=[
                Choice(
                    index=0,
                    finish_reason="stop",
                    message=ChatCompletionMessage(role="assistant", content=f"heard {said}"),
                )
            ],
            usage=CompletionUsage(
                prompt_tokens=given, completion_tokens=taken, total_tokens=given + taken
            ),
        )
        return JSONResponse(answer.model_dump(mode="json", exclude_unset=True))

    app = Starlette(
        routes=[
            Route("/v1/responses", responses, methods=["POST"]),
            Route("/v1/chat/completions", chat, methods=["POST"]),
        ]
    )
    return _Recording(app, recorder)


@contextmanager
def model_server() -> Iterator[ModelServer]:
    recorder = Recorder()
    with _serve(model_app(recorder)) as base:
        yield ModelServer(f"{base}/v1", recorder)
