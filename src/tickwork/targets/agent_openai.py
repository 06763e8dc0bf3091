"""The ``openai`` target: run an attempt against any OpenAI-compatible server (SPEC §13).

Spoken with the official ``openai`` client, given tickwork's guarded HTTP client
(:mod:`tickwork.targets.http_transport`: the webhooks' egress guarantees) and with its
own retries off: tickwork retries durably, with the trigger's ``max_retries`` and
back-off. Only the headers tickwork sets and the SDK's ``Content-Type``/``Accept`` leave,
so nothing the SDK reads from the worker's environment (``OPENAI_ORG_ID``,
``OPENAI_CUSTOM_HEADERS``, ``OPENAI_API_KEY``...) reaches a tenant's server.

- ``api: responses`` (the default): ``responses.create`` with the rendered message as
  the input, the target's ``instructions``, ``previous_response_id`` = the previous
  run's response id when the trigger continues its conversation, ``user`` = the
  trigger's ``run_as``.
- ``api: chat``: ``chat.completions.create`` with the instructions as the system
  message and the message as the user message; a trigger that continues its
  conversation also sends the previous run's output as the assistant's message before
  it (Chat Completions keeps no state on the server).

The result stores ``response_id``, ``model``, ``output_text`` and ``usage`` (input,
output and total tokens, counted for the trigger's ``daily_token_budget``); the response
id is the conversation id. HTTP 408, 409, 429 and 5xx, timeouts and network errors are
transient; other 4xx answers are permanent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import openai
from openai import AsyncOpenAI, omit

from tickwork.errors import PermanentError, TickworkError, TransientError
from tickwork.targets.base import TargetCall, TargetResult
from tickwork.targets.http_transport import DEFAULT_AGENT_RESPONSE_BYTES, guarded_http_client
from tickwork.targets.pinning import EgressClient
from tickwork.targets.webhook import USER_AGENT

__all__ = ["OpenAITarget"]

MAX_TEXT_BYTES: Final = 64 * 1024
# Request headers the SDK may send besides tickwork's own.
_SDK_HEADERS: Final = ("content-type", "accept")
# Without a secret no Authorization is sent; the SDK insists on some key meanwhile.
_NO_KEY: Final = "tickwork-no-key"


class OpenAITarget:
    """Deliver each attempt as a model request (module docstring)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        secret: str | None,
        client: EgressClient,
        *,
        api: str = "responses",
        instructions: str | None = None,
        max_response_bytes: int = DEFAULT_AGENT_RESPONSE_BYTES,
    ) -> None:
        self._base_url = base_url
        self._model = model
        self._secret = secret or None
        self._client = client
        self._api = api
        self._instructions = instructions or None
        self._max_response_bytes = max_response_bytes

    async def call(self, call: TargetCall) -> TargetResult:
        headers = {"User-Agent": USER_AGENT, "X-Tickwork-Invocation-Id": call.invocation_id}
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
            model_client = AsyncOpenAI(
                api_key=self._secret or _NO_KEY,
                organization="",
                project="",
                base_url=self._base_url,
                max_retries=0,
                # The SDK accepts an httpx (as well as an httpx2) client at run time; its
                # annotation names httpx2's only.
                http_client=http,  # type: ignore[arg-type]
            )
            try:
                if self._api == "chat":
                    return await self._chat(model_client, call)
                return await self._responses(model_client, call)
            except openai.APIStatusError as exc:
                raise _status_failure(exc) from exc
            except openai.OpenAIError as exc:
                raise _failure(exc) from exc

    async def _responses(self, model_client: AsyncOpenAI, call: TargetCall) -> TargetResult:
        response = await model_client.responses.create(
            model=self._model,
            input=call.message,
            instructions=self._instructions if self._instructions is not None else omit,
            previous_response_id=call.conversation_id or omit,
            user=call.run_as if call.run_as is not None else omit,
        )
        usage = response.usage
        counts = (
            None
            if usage is None
            else {
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "total_tokens": usage.total_tokens,
            }
        )
        return _result(response.id, response.model, response.output_text, counts)

    async def _chat(self, model_client: AsyncOpenAI, call: TargetCall) -> TargetResult:
        messages: list[Any] = []
        if self._instructions is not None:
            messages.append({"role": "system", "content": self._instructions})
        before = _previous_output(call)
        if before is not None:
            messages.append({"role": "assistant", "content": before})
        messages.append({"role": "user", "content": call.message})
        completion = await model_client.chat.completions.create(
            model=self._model,
            messages=messages,
            user=call.run_as if call.run_as is not None else omit,
        )
        text = ""
        if completion.choices:
            text = completion.choices[0].message.content or ""
        usage = completion.usage
        counts = (
            None
            if usage is None
            else {
                "input_tokens": usage.prompt_tokens,
                "output_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
            }
        )
        return _result(completion.id, completion.model, text, counts)


def _previous_output(call: TargetCall) -> str | None:
    """With conversation=continue, what the model answered last time."""
    if call.conversation_id is None or call.previous is None:
        return None
    result = call.previous.result
    if isinstance(result, Mapping):
        text = result.get("output_text")
        if isinstance(text, str) and text:
            return text
    return None


def _cap(text: str) -> str:
    encoded = text.encode("utf-8")
    return (
        text
        if len(encoded) <= MAX_TEXT_BYTES
        else encoded[:MAX_TEXT_BYTES].decode("utf-8", "ignore")
    )


def _result(
    response_id: str, model: str, text: str, usage: Mapping[str, int] | None
) -> TargetResult:
    return TargetResult(
        conversation_id=response_id or None,
        usage=usage,
        details={
            "response_id": response_id,
            "model": model,
            "output_text": _cap(text),
            "usage": None if usage is None else dict(usage),
        },
    )


def _status_failure(exc: openai.APIStatusError) -> TickworkError:
    status = exc.status_code
    excerpt = " ".join(str(exc.message).split())[:200]
    detail = f"the model server answered {status}" + (f": {excerpt}" if excerpt else "")
    if 400 <= status < 500 and status not in (408, 409, 429):
        return PermanentError(detail)
    return TransientError(detail)


def _failure(exc: openai.OpenAIError) -> TickworkError:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, TickworkError):
            return cause  # the egress transport's own (a refused destination, ...)
        cause = cause.__cause__ or cause.__context__
    text = str(exc) or type(exc).__name__
    if isinstance(exc, openai.APIConnectionError):
        return TransientError(f"the model server could not be reached: {text}")
    return TransientError(f"the model call failed: {type(exc).__name__}: {text}")
