"""What a target is given for one attempt, and what it gives back.

A target raises :class:`tickwork.errors.TransientError` for failures worth retrying and
:class:`tickwork.errors.PermanentError` for failures that will not change; anything else
it raises is treated as transient. The runtime enforces the timeout and cancels the call
(asyncio cancellation); targets must leave nothing behind when cancelled.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


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


@dataclass(frozen=True)
class TargetResult:
    """What a successful call returned."""

    conversation_id: str | None = None
    status_code: int | None = None
    # The response body (or a handler's return value as JSON), capped in size.
    response: str | None = None


class Target(Protocol):
    """Something an invocation can be delivered to."""

    async def call(self, call: TargetCall) -> TargetResult:
        """Deliver one attempt. Raise TransientError/PermanentError on failure."""
        ...
