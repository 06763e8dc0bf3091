"""What an invocation can be (SPEC §2): its statuses and where it came from.

The one definition of these names: the store writes them, the services decide on them
and the API's document spells them out (:mod:`tickwork.wire.triggers` checks that its
literals are these).
"""

from __future__ import annotations

from enum import StrEnum


class InvocationStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    MISSED = "missed"
    SKIPPED = "skipped"


class Origin(StrEnum):
    """Why an invocation exists: its trigger's schedule, a run now, a rerun."""

    SCHEDULE = "schedule"
    MANUAL = "manual"
    RERUN = "rerun"
    BACKFILL = "backfill"


PENDING = InvocationStatus.PENDING
RUNNING = InvocationStatus.RUNNING
COMPLETED = InvocationStatus.COMPLETED
FAILED = InvocationStatus.FAILED
CANCELLED = InvocationStatus.CANCELLED
MISSED = InvocationStatus.MISSED
SKIPPED = InvocationStatus.SKIPPED

# In the order the API lists them.
STATUSES: tuple[str, ...] = tuple(InvocationStatus)
ORIGINS: tuple[str, ...] = tuple(Origin)
# An invocation in one of these never changes again.
FINAL_STATUSES: frozenset[str] = frozenset({COMPLETED, FAILED, CANCELLED, MISSED, SKIPPED})
# Those a worker still has to start or finish.
ACTIVE_STATUSES: frozenset[str] = frozenset({PENDING, RUNNING})

# The status reason of a pending invocation that must wait until its trigger has nothing
# running (overlap=buffer_one). The reason is what the store keeps of it: a worker that
# claims such an invocation while another one runs hands it back.
BUFFERED = "buffered: waits for the running invocation (overlap=buffer_one)"
