"""What a target is given for one attempt, and what it gives back.

A target raises :class:`tickwork.errors.TransientError` for failures worth retrying and
:class:`tickwork.errors.PermanentError` for failures that will not change; anything else
it raises is treated as transient. The runtime enforces the timeout and cancels the call
(asyncio cancellation); targets must leave nothing behind when cancelled.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class PreviousRun:
    """The trigger's previous completed invocation, as every call receives it (SPEC §13)."""

    id: str
    scheduled_for: datetime
    status: str
    conversation_id: str | None
    result: Any

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any] | None) -> PreviousRun | None:
        """From its JSON form (``scheduled_for`` as ISO-8601 UTC), None for None."""
        if doc is None:
            return None
        when = datetime.fromisoformat(str(doc["scheduled_for"]).replace("Z", "+00:00"))
        return cls(
            id=str(doc["id"]),
            scheduled_for=when.astimezone(UTC),
            status=str(doc["status"]),
            conversation_id=doc.get("conversation_id"),
            result=doc.get("result"),
        )

    def to_doc(self) -> dict[str, Any]:
        """Its JSON form, as the webhook body and templates carry it."""
        return {
            "id": self.id,
            "scheduled_for": self.scheduled_for.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "status": self.status,
            "conversation_id": self.conversation_id,
            "result": self.result,
        }


@dataclass(frozen=True)
class TargetCall:
    """One attempt of one invocation, as the target sees it."""

    invocation_id: str
    idempotency_key: str
    trigger_id: str
    trigger_name: str
    tenant: str
    project: str
    agent: str
    ref_name: str
    ref_revision: int
    scheduled_for: datetime
    attempt: int
    origin: str
    message: str
    payload: dict[str, Any]
    timezone: str
    # Set when the runtime gives up on the attempt (timeout or cancel); sync handlers
    # running in a thread can poll it, since a thread cannot be interrupted.
    cancelled: threading.Event = field(default_factory=threading.Event, compare=False)
    # Run context (SPEC §13): the trigger's previous completed run; with
    # conversation=continue, the conversation to continue (the previous run's
    # conversation id); the subject the run acts for (the trigger's run_as).
    previous: PreviousRun | None = None
    conversation_id: str | None = None
    run_as: str | None = None


@dataclass(frozen=True)
class TargetResult:
    """What a successful call returned."""

    conversation_id: str | None = None
    status_code: int | None = None
    # The response body (or a handler's return value as JSON), capped in size.
    response: str | None = None
    # Tokens used: {"input_tokens", "output_tokens", "total_tokens"} (SPEC §13).
    usage: Mapping[str, int] | None = None
    # Further members of the stored result (an agent's task id, state, output text...).
    details: Mapping[str, Any] | None = None


class Target(Protocol):
    """Something an invocation can be delivered to."""

    async def call(self, call: TargetCall) -> TargetResult:
        """Deliver one attempt. Raise TransientError/PermanentError on failure."""
        ...
