"""Catch-up, overlap and jitter planning (SPEC §3), as pure functions.

When the scheduler finds a trigger due, :func:`plan_catchup` decides which of the slots
that came due since the stored ``next_run_at`` are run, which are recorded as missed, and
where ``next_run_at`` goes next. Definitions (``docs/catchup.md`` has worked examples):

* The *due slots* are the stored ``next_run_at`` itself and every later firing of the
  schedule up to and including ``now``.
* A slot is *in the window* when ``now - slot`` is at most the effective window:
  ``max(catchup_window_seconds, grace_seconds)`` for ``latest`` and ``all``, and
  ``grace_seconds`` alone for ``none``. The grace (default 120 s) keeps a slot that the
  scheduler reaches a little late (a busy tick, a failover) from counting as missed under
  any policy, including ``none``; it is larger than the 60 s that a one-time ``run_at``
  may lie in the past at creation, so such a trigger runs even with ``none``.
* ``latest`` and ``none`` run the most recent due slot when it is in the window; every
  other due slot is missed. ``all`` runs the due slots in the window oldest first, at
  most 1000 per pass; when more are due, ``next_run_at`` is the first one not handled,
  so the next pass carries on and nothing is lost. Older slots are missed.
* At most 100 missed slots are listed (the oldest); the rest are counted in
  ``missed_uncounted``. Counting walks at most 1000 further slots; past that the rest is
  estimated from the rate seen so far and ``missed_estimated`` is set. The last due slot
  and the start of the window are found by bisection, never by walking: a plan costs a
  few dozen schedule evaluations plus the capped walks (at most 1100 missed slots and
  1000 runs), so a per-second trigger that was down for a year plans in tens of ms.
* ``next_run_at`` is the first firing strictly after the last slot handled (None for a
  one-time trigger, whose only slot has then been run or missed).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from tickwork.domain.policies import (
    CATCHUP_POLICIES,
    OVERLAP_POLICIES,
    CatchupPolicy,
    OverlapPolicy,
)
from tickwork.domain.schedule import format_instant
from tickwork.domain.slots import Timing, next_run_after
from tickwork.errors import ValidationError

__all__ = [
    "CATCHUP_POLICIES",
    "DEFAULT_CATCHUP_WINDOW_SECONDS",
    "DEFAULT_GRACE_SECONDS",
    "MAX_MISSED_RECORDED",
    "MAX_MISSED_WALKED",
    "MAX_RUN_PER_PASS",
    "OVERLAP_POLICIES",
    "CatchupPlan",
    "CatchupPolicy",
    "OverlapAction",
    "OverlapDecision",
    "OverlapPolicy",
    "jitter_offset",
    "plan_catchup",
    "plan_overlap",
    "plan_overlap_many",
]

OverlapAction = Literal["run", "buffer", "skip"]

DEFAULT_CATCHUP_WINDOW_SECONDS = 3600
DEFAULT_GRACE_SECONDS = 120
MAX_RUN_PER_PASS = 1000
MAX_MISSED_RECORDED = 100
# Slots walked one by one to count missed slots exactly, beyond the recorded ones.
MAX_MISSED_WALKED = 1000

_SECOND = timedelta(seconds=1)
_TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class CatchupPlan:
    """What to do with the slots that came due.

    ``run`` and ``missed`` are disjoint and oldest first. ``missed_uncounted`` is how many
    further slots were missed without being listed (an estimate when
    ``missed_estimated``). ``next_run_at`` is the new value to store.
    """

    run: list[datetime]
    missed: list[datetime]
    missed_uncounted: int
    next_run_at: datetime | None
    missed_estimated: bool = field(default=False)

    @property
    def missed_total(self) -> int:
        return len(self.missed) + self.missed_uncounted


def plan_catchup(
    schedule: Timing,
    due: datetime,
    now: datetime,
    policy: str = CatchupPolicy.LATEST,
    catchup_window_seconds: float = DEFAULT_CATCHUP_WINDOW_SECONDS,
    *,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    ends_at: datetime | None = None,
) -> CatchupPlan:
    """Plan the due slots from the stored ``next_run_at`` (``due``) up to ``now``.

    See the module docstring for the rules. When ``due`` is after ``now`` nothing is due
    and the plan keeps ``due``. With ``ends_at``, no firing after it is a slot: the plan
    stops there and ``next_run_at`` is None once it is passed (the window is still
    measured from ``now``).
    """
    if policy not in CATCHUP_POLICIES:
        raise ValidationError(
            "catchup", f"unknown policy {policy!r} (use one of {', '.join(CATCHUP_POLICIES)})"
        )
    if catchup_window_seconds < 0:
        raise ValidationError("catchup_window_seconds", "must not be negative")
    if grace_seconds < 0:
        raise ValueError("grace_seconds must not be negative")
    for value, name in ((due, "due"), (now, "now")):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be an aware datetime")
    if ends_at is not None and due > ends_at:
        return CatchupPlan(run=[], missed=[], missed_uncounted=0, next_run_at=None)
    if due > now:
        return CatchupPlan(run=[], missed=[], missed_uncounted=0, next_run_at=due)

    slots = _Slots(schedule, due, ends_at)
    if policy == CatchupPolicy.NONE:
        window = timedelta(seconds=grace_seconds)
    else:
        window = timedelta(seconds=max(catchup_window_seconds, grace_seconds))
    cutoff = now - window  # a slot at or after cutoff is in the window

    if policy == CatchupPolicy.ALL:
        return _plan_all(slots, now, cutoff)

    last = slots.last_at_or_before(now)
    if last >= cutoff:
        run = [last]
        missed_end = slots.last_at_or_before(last - _TICK) if last > due else None
    else:
        run = []
        missed_end = last
    recorded, uncounted, estimated = _count_missed(slots, missed_end)
    return CatchupPlan(
        run=run,
        missed=recorded,
        missed_uncounted=uncounted,
        next_run_at=slots.after(last),
        missed_estimated=estimated,
    )


def _plan_all(slots: _Slots, now: datetime, cutoff: datetime) -> CatchupPlan:
    due = slots.first
    if due >= cutoff:
        missed_end: datetime | None = None
        first_run: datetime | None = due
    else:
        missed_end = slots.last_at_or_before(cutoff - _TICK)
        first_run = slots.after(missed_end)
    recorded, uncounted, estimated = _count_missed(slots, missed_end)

    run: list[datetime] = []
    cursor = first_run
    while cursor is not None and cursor <= now and len(run) < MAX_RUN_PER_PASS:
        run.append(cursor)
        cursor = slots.after(cursor)
    # Either the cursor is past now (every due slot is handled) or the cap stopped the
    # walk at a due slot that the next pass must start from: in both cases it is the
    # first slot not handled.
    return CatchupPlan(
        run=run,
        missed=recorded,
        missed_uncounted=uncounted,
        next_run_at=cursor,
        missed_estimated=estimated,
    )


def _count_missed(slots: _Slots, end: datetime | None) -> tuple[list[datetime], int, bool]:
    """List and count the due slots from the first one through ``end`` (a slot)."""
    if end is None:
        return [], 0, False
    recorded: list[datetime] = []
    walked = 0
    cursor: datetime | None = slots.first
    last_seen = slots.first
    while cursor is not None and cursor <= end:
        if len(recorded) < MAX_MISSED_RECORDED:
            recorded.append(cursor)
        elif walked < MAX_MISSED_WALKED:
            walked += 1
        else:
            break
        last_seen = cursor
        cursor = slots.after(cursor)
    else:
        return recorded, walked, False
    # Too many to walk: estimate the slots in (last_seen, end] from the average spacing
    # seen so far (at least one: end itself lies there).
    seen = len(recorded) + walked
    spacing = (last_seen - slots.first) / max(seen - 1, 1)
    rest = (end - last_seen) / spacing if spacing > timedelta(0) else 1
    return recorded, walked + max(1, round(rest)), True


class _Slots:
    """The due slots of one plan: ``first`` (the stored next_run_at) and the schedule's
    firings after it."""

    def __init__(self, schedule: Timing, first: datetime, end: datetime | None = None) -> None:
        self.schedule = schedule
        self.first = first
        self.end = end
        # The same instants are asked about more than once in one plan (the common case,
        # one slot due, asks for the firing after ``first`` twice): remember them.
        self._memo: dict[datetime, datetime | None] = {}

    def after(self, instant: datetime) -> datetime | None:
        if instant not in self._memo:
            found = next_run_after(self.schedule, instant)
            if found is not None and self.end is not None and found > self.end:
                found = None
            self._memo[instant] = found
        return self._memo[instant]

    def last_at_or_before(self, bound: datetime) -> datetime:
        """The latest slot at or before ``bound`` (requires ``first <= bound``).

        Bisection on time: ``lo`` always has a slot in (lo, bound] and ``hi`` has none
        in (hi, bound]. Cron firings are whole seconds, so once the interval is shorter
        than a second it holds exactly one candidate. Cost: about log2(span in seconds)
        evaluations of the schedule.
        """
        nxt = self.after(self.first)
        if nxt is None or nxt > bound:
            return self.first
        lo, hi = self.first, bound
        while hi - lo > _SECOND:
            mid = lo + (hi - lo) / 2
            found = self.after(mid)
            if found is not None and found <= bound:
                lo = found - _TICK
            else:
                hi = mid
        last = self.after(lo)
        assert last is not None and last <= bound
        return last


# -- overlap ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OverlapDecision:
    """What to do with a new slot of a trigger that may have invocations in flight.

    ``action``: ``run`` (insert a pending invocation), ``buffer`` (insert it, but it may
    start only after the trigger's earlier invocations end) or ``skip`` (record it as
    ``skipped`` with ``reason``). ``cancel_active``: cancel the trigger's pending and
    running invocations first.
    """

    action: OverlapAction
    cancel_active: bool = False
    reason: str | None = None


def plan_overlap(policy: str, active_count: int) -> OverlapDecision:
    """Decide for one new slot, given how many of the trigger's invocations are pending
    or running.

    * ``allow``: always run.
    * ``skip``: skip while any invocation is active.
    * ``buffer_one``: run when idle; buffer one behind the active one; skip when one is
      already buffered (two or more active).
    * ``cancel_previous``: cancel whatever is active, then run.
    """
    if policy not in OVERLAP_POLICIES:
        raise ValidationError(
            "overlap", f"unknown policy {policy!r} (use one of {', '.join(OVERLAP_POLICIES)})"
        )
    if active_count < 0:
        raise ValueError("active_count must not be negative")
    if policy == OverlapPolicy.ALLOW or active_count == 0:
        return OverlapDecision("run")
    if policy == OverlapPolicy.SKIP:
        return OverlapDecision(
            "skip", reason=f"overlap=skip: {active_count} earlier invocation(s) still active"
        )
    if policy == OverlapPolicy.BUFFER_ONE:
        if active_count == 1:
            return OverlapDecision("buffer")
        return OverlapDecision(
            "skip", reason="overlap=buffer_one: an invocation is already waiting its turn"
        )
    return OverlapDecision("run", cancel_active=True)


def plan_overlap_many(policy: str, active_count: int, slots: int) -> list[OverlapDecision]:
    """Decisions for ``slots`` new slots inserted one after another in the same pass.

    Each decision sees the invocations that the earlier ones created (a run or a buffer
    adds one; cancelling empties the set first).
    """
    decisions: list[OverlapDecision] = []
    active = active_count
    for _ in range(slots):
        decision = plan_overlap(policy, active)
        if decision.cancel_active:
            active = 0
        if decision.action != "skip":
            active += 1
        decisions.append(decision)
    return decisions


# -- jitter ----------------------------------------------------------------------------


def jitter_offset(trigger_id: str, slot: datetime, jitter_seconds: float) -> timedelta:
    """A delay in [0, jitter_seconds] (millisecond steps) fixed by (trigger, slot).

    Derived from SHA-256, so every process and every retry of the scheduler computes the
    same offset: it is added to ``not_before`` only, never to ``scheduled_for``.
    """
    if jitter_seconds < 0:
        raise ValueError("jitter_seconds must not be negative")
    span_ms = int(jitter_seconds * 1000)
    if span_ms == 0:
        return timedelta(0)
    digest = hashlib.sha256(f"{trigger_id}\x00{format_instant(slot)}".encode()).digest()
    return timedelta(milliseconds=int.from_bytes(digest[:8], "big") % (span_ms + 1))
