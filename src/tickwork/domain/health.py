"""A trigger's health (SPEC §11), as pure functions of ``now``.

``health`` is one of, in this order of precedence:

* ``disabled`` — its definition has it disabled (``enabled: false``, or a schedule
  error disabled it);
* ``paused`` — an operator, or tickwork after ``pause_after_failures``, paused it;
* ``late`` — a due slot (``next_run_at``) or a pending invocation that may start
  (``not_before``) is more than the grace (``TICKWORK_LATE_GRACE``) behind ``now``:
  nothing is dispatching or running it;
* ``failing`` — its last invocation to end failed (``consecutive_failures`` > 0);
* ``ok`` — none of these.

``consecutive_failures``, ``last_success_at`` and ``last_failure_at`` are kept as
invocations end (a completed one resets the count; a cancelled one changes nothing).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal, get_args

__all__ = [
    "EVENT_TYPES",
    "HEALTHS",
    "EventType",
    "Health",
    "auto_pause_reason",
    "health_of",
    "is_late",
    "should_auto_pause",
]

Health = Literal["ok", "failing", "late", "paused", "disabled"]
HEALTHS: tuple[str, ...] = get_args(Health)

EventType = Literal[
    "invocation.failed",
    "trigger.paused",
    "trigger.disabled",
    "slot.missed",
    "trigger.late",
    "trigger.recovered",
    "notification.test",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)


def is_late(
    now: datetime,
    grace: timedelta,
    next_run_at: datetime | None,
    oldest_pending: datetime | None,
) -> bool:
    """Whether a due slot or a pending invocation is more than ``grace`` behind ``now``."""
    cutoff = now - grace
    return any(at is not None and at < cutoff for at in (next_run_at, oldest_pending))


def health_of(
    *,
    enabled: bool,
    paused: bool,
    consecutive_failures: int,
    late: bool,
) -> Health:
    """The trigger's health from its state (see the module docstring for the order)."""
    if not enabled:
        return "disabled"
    if paused:
        return "paused"
    if late:
        return "late"
    if consecutive_failures > 0:
        return "failing"
    return "ok"


def should_auto_pause(threshold: int, consecutive_failures: int, *, paused: bool) -> bool:
    """Whether ``consecutive_failures`` reached ``threshold`` (0: never) on a trigger
    that is not paused yet."""
    return threshold > 0 and not paused and consecutive_failures >= threshold


def auto_pause_reason(consecutive_failures: int) -> str:
    """The ``paused_reason`` of a trigger tickwork paused."""
    runs = "invocation" if consecutive_failures == 1 else "invocations"
    return (
        f"paused by tickwork after {consecutive_failures} consecutive failed {runs} "
        "(pause_after_failures); resume it once the cause is fixed"
    )
