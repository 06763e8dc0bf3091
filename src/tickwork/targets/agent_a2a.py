"""The ``a2a`` target: run an attempt as a task of an A2A agent (SPEC §13).

Spoken with the official ``a2a-sdk`` client (its ``ClientFactory``, ``Client`` and
protocol types) over JSON-RPC, in the protocol version the pinned release speaks:
``SendMessage`` / ``GetTask`` / ``CancelTask`` for A2A 1.0 (the default), or
``message/send`` / ``tasks/get`` / ``tasks/cancel`` for an agent that speaks 0.3
(``protocol_version: "0.3"``). Every request goes through tickwork's egress guarantees
(:mod:`tickwork.targets.http_transport`).

One attempt:

1. ``SendMessage`` with the rendered message as a text part and the payload as a data
   part, ``return_immediately`` set (so the task id is known at once, and a long task
   can be followed and cancelled), in the previous run's context (``contextId``) when
   the trigger continues its conversation; the message metadata carries ``run_as`` and
   a ``tickwork`` object (invocation id, idempotency key, attempt, scheduled_for,
   trigger, previous run).
2. While the task is not final (submitted, working), ``GetTask`` after a back-off that
   grows from :data:`FIRST_POLL_SECONDS` to :data:`MAX_POLL_SECONDS`, until it is. The
   attempt's timeout bounds the whole call.
3. When the attempt is cancelled (the invocation was cancelled, or its timeout ran out)
   while a task is open, ``CancelTask`` is sent (bounded by
   :data:`CANCEL_TIMEOUT_SECONDS`) before the attempt ends.

Outcome: ``completed`` (or ``input-required``: the agent's question is the output, and a
trigger that continues its conversation sends its next run into the same context)
completes the
invocation with ``task_id``, ``state``, ``text`` (the agent's text output: its artifacts'
text parts, else the final status message's) and ``artifacts`` (id, name, description,
metadata) in the result, and the task's ``contextId`` as the conversation id. ``failed``
is transient (retried); ``rejected``, ``canceled`` and ``auth-required`` are permanent.
HTTP 408, 429 and 5xx, network errors and JSON-RPC internal errors are transient; other
4xx answers and JSON-RPC errors are permanent. A task's ``metadata.usage`` with token
counts, when the agent reports one, is counted for the trigger's budget.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any, Final

import httpx
from a2a.client import A2AClientError, A2AClientTimeoutError, Client, ClientConfig, ClientFactory
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    CancelTaskRequest,
    GetTaskRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    Task,
    TaskState,
)
from a2a.utils.errors import A2AError, InternalError
from google.protobuf import json_format, struct_pb2

from tickwork.clock import pause
from tickwork.errors import PermanentError, TickworkError, TransientError
from tickwork.targets.base import TargetCall, TargetResult
from tickwork.targets.http_transport import DEFAULT_AGENT_RESPONSE_BYTES, guarded_http_client
from tickwork.targets.pinning import EgressClient
from tickwork.targets.webhook import USER_AGENT

__all__ = ["A2ATarget"]

FIRST_POLL_SECONDS: Final = 0.05
MAX_POLL_SECONDS: Final = 2.0
CANCEL_TIMEOUT_SECONDS: Final = 5.0
MAX_TEXT_BYTES: Final = 64 * 1024

_STATE_NAMES: Final = {
    TaskState.TASK_STATE_SUBMITTED: "submitted",
    TaskState.TASK_STATE_WORKING: "working",
    TaskState.TASK_STATE_COMPLETED: "completed",
    TaskState.TASK_STATE_FAILED: "failed",
    TaskState.TASK_STATE_CANCELED: "canceled",
    TaskState.TASK_STATE_INPUT_REQUIRED: "input-required",
    TaskState.TASK_STATE_REJECTED: "rejected",
    TaskState.TASK_STATE_AUTH_REQUIRED: "auth-required",
}
_OPEN: Final = frozenset(
    {TaskState.TASK_STATE_UNSPECIFIED, TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING}
)
_DONE: Final = frozenset({TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_INPUT_REQUIRED})
_RETRY: Final = frozenset({TaskState.TASK_STATE_FAILED})
# Request headers the SDK may send besides tickwork's own.
_SDK_HEADERS: Final = ("content-type", "accept", "a2a-version", "a2a-extensions")


class A2ATarget:
    """Deliver each attempt to the A2A agent at ``url`` (module docstring). ``client``
    is the shared egress client (owned by the caller)."""

    def __init__(
        self,
        url: str,
        secret: str | None,
        client: EgressClient,
        *,
        protocol_version: str = "1.0",
        max_response_bytes: int = DEFAULT_AGENT_RESPONSE_BYTES,
    ) -> None:
        self._url = url
        self._secret = secret or None
        self._client = client
        self._version = protocol_version
        self._max_response_bytes = max_response_bytes

    async def call(self, call: TargetCall) -> TargetResult:
        headers = {
            "User-Agent": USER_AGENT,
            "Idempotency-Key": call.idempotency_key,
            "X-Tickwork-Invocation-Id": call.invocation_id,
        }
        if self._secret is not None:
            headers["Authorization"] = f"Bearer {self._secret}"
        if call.run_as is not None:
            headers["X-Tickwork-Run-As"] = call.run_as
        async with guarded_http_client(
            self._client,
            self._max_response_bytes,
            allowed_headers=_SDK_HEADERS,
            forced_headers=headers,
        ) as http:
            card = AgentCard(
                name="tickwork target",
                supported_interfaces=[
                    AgentInterface(
                        protocol_binding="JSONRPC", url=self._url, protocol_version=self._version
                    )
                ],
                capabilities=AgentCapabilities(streaming=False),
            )
            config = ClientConfig(streaming=False, polling=True, httpx_client=http)
            agent = ClientFactory(config).create(card)
            return await self._run(agent, call)

    async def _run(self, agent: Client, call: TargetCall) -> TargetResult:
        request = SendMessageRequest(
            message=_message(call),
            configuration=SendMessageConfiguration(return_immediately=True),
        )
        task: Task | None = None
        try:
            async for event in agent.send_message(request):
                if event.HasField("message"):
                    return _message_result(event.message)
                if event.HasField("task"):
                    task = event.task
                    break
            if task is None:
                raise PermanentError("the A2A agent answered with neither a task nor a message")
            delay = FIRST_POLL_SECONDS
            while task.status.state in _OPEN:
                await pause(delay)
                delay = min(delay * 2, MAX_POLL_SECONDS)
                task = await agent.get_task(GetTaskRequest(id=task.id))
        except asyncio.CancelledError:
            if task is not None and task.status.state in _OPEN:
                await _cancel(agent, task.id)
            raise
        except A2AError as exc:
            raise _failure(exc) from exc
        return _task_result(task, self._max_response_bytes)


async def _cancel(agent: Client, task_id: str) -> None:
    """Ask the agent to cancel the task; best effort, bounded, and never raising (the
    attempt is being cancelled already)."""
    try:
        async with asyncio.timeout(CANCEL_TIMEOUT_SECONDS):
            await agent.cancel_task(CancelTaskRequest(id=task_id))
    except (Exception, asyncio.CancelledError):
        pass


def _message(call: TargetCall) -> Message:
    tickwork: dict[str, Any] = {
        "invocation_id": call.invocation_id,
        "idempotency_key": call.idempotency_key,
        "attempt": call.attempt,
        "scheduled_for": call.scheduled_for.isoformat().replace("+00:00", "Z"),
        "trigger_id": call.trigger_id,
        "trigger_name": call.trigger_name,
        "timezone": call.timezone,
        "previous": None if call.previous is None else call.previous.to_doc(),
    }
    metadata: dict[str, Any] = {"tickwork": tickwork}
    if call.run_as is not None:
        metadata["run_as"] = call.run_as
    data = json_format.ParseDict(_jsonable(call.payload), struct_pb2.Value())
    return Message(
        # One message per attempt; the idempotency key in the metadata stays the same.
        message_id=f"{call.invocation_id}-{call.attempt}",
        role=Role.ROLE_USER,
        context_id=call.conversation_id or "",
        parts=[Part(text=call.message), Part(data=data, media_type="application/json")],
        metadata=json_format.ParseDict(_jsonable(metadata), struct_pb2.Struct()),
    )


def _jsonable(value: Any) -> Any:
    # Through JSON once: tuples, subclasses and the like become plain JSON values.
    return json.loads(json.dumps(value, default=str))


def _texts(parts: Any) -> list[str]:
    return [part.text for part in parts if part.WhichOneof("content") == "text"]


def _cap(text: str, limit: int) -> str:
    encoded = text.encode("utf-8")
    return text if len(encoded) <= limit else encoded[:limit].decode("utf-8", "ignore")


def _message_result(message: Message) -> TargetResult:
    text = "\n".join(_texts(message.parts))
    return TargetResult(
        conversation_id=message.context_id or None,
        details={"task_id": None, "state": "completed", "text": _cap(text, MAX_TEXT_BYTES)},
    )


def _task_result(task: Task, max_bytes: int) -> TargetResult:
    state = task.status.state
    name = _STATE_NAMES.get(state, "unknown")
    status_text = "\n".join(_texts(task.status.message.parts))
    if state not in _DONE:
        why = f": {status_text}" if status_text else ""
        detail = f"the A2A agent's task {task.id} ended {name}{why}"
        if state in _RETRY:
            raise TransientError(detail)
        raise PermanentError(detail)
    artifact_texts = [text for artifact in task.artifacts for text in _texts(artifact.parts)]
    text = "\n".join(artifact_texts) if artifact_texts else status_text
    artifacts = [
        {
            "artifact_id": artifact.artifact_id,
            "name": artifact.name or None,
            "description": artifact.description or None,
            "metadata": json_format.MessageToDict(artifact.metadata) or None,
        }
        for artifact in task.artifacts
    ]
    metadata = json_format.MessageToDict(task.metadata)
    usage = metadata.get("usage")
    return TargetResult(
        conversation_id=task.context_id or None,
        usage=_usage(usage) if isinstance(usage, Mapping) else None,
        details={
            "task_id": task.id,
            "state": name,
            "text": _cap(text, min(max_bytes, MAX_TEXT_BYTES)),
            "artifacts": artifacts,
        },
    )


def _usage(reported: Mapping[str, Any]) -> dict[str, int]:
    def count(key: str) -> int:
        value = reported.get(key)
        return int(value) if isinstance(value, int | float) and value >= 0 else 0

    given, taken = count("input_tokens"), count("output_tokens")
    return {
        "input_tokens": given,
        "output_tokens": taken,
        "total_tokens": max(count("total_tokens"), given + taken),
    }


def _failure(exc: A2AError) -> TickworkError:
    """A transient or permanent error for what the SDK raised."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, TickworkError):
            return cause  # the egress transport's own (a refused destination, ...)
        if isinstance(cause, httpx.HTTPStatusError):
            status = cause.response.status_code
            excerpt = " ".join(cause.response.text.split())[:200]
            detail = f"the A2A agent answered {status}" + (f": {excerpt}" if excerpt else "")
            if 400 <= status < 500 and status not in (408, 429):
                return PermanentError(detail)
            return TransientError(detail)
        cause = cause.__cause__ or cause.__context__
    text = str(exc) or type(exc).__name__
    if isinstance(exc, A2AClientTimeoutError | InternalError) or (
        isinstance(exc, A2AClientError) and type(exc) is A2AClientError
    ):
        # Network trouble, a timeout, an agent's internal error: worth another try.
        return TransientError(f"A2A call failed: {text}")
    return PermanentError(f"the A2A agent refused the call: {type(exc).__name__}: {text}")
