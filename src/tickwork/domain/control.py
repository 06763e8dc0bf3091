"""An operator's control of a trigger's slots (SPEC §10), as pure functions of ``now``.

The trigger's *control state* is its pause (``paused``, ``paused_until``), the number of
coming slots to skip (``skip_remaining``), its bounds (``starts_at``, ``ends_at``) and
the slots it may still consume (``remaining_runs``, from ``max_runs``). The rules, with
worked timelines in ``docs/catchup.md``:

* A slot is *consumed* when the scheduler records it: run, missed, skipped (by request or
  by the overlap policy) or replaced. Consumed slots are taken in time order.
* **Bounds.** No firing before ``starts_at`` or after ``ends_at`` (instants; both
  inclusive) is a slot. ``remaining_runs`` slots may still be consumed; it counts down by
  every consumed slot, and at 0 ``next_run_at`` is None. Run now, reruns and backfills
  never count.
* **Skip.** The next ``skip_remaining`` consumed slots are recorded ``skipped`` with
  reason ``skipped by request`` instead of being run or missed (missed slots beyond the
  recorded 100 use up the count without a record, as they do without a skip).
* **Pause.** While paused nothing is consumed and nothing recorded: ``next_run_at`` is
  None, or ``paused_until`` when the pause ends by itself. Then the pause is over, and
  the first slot at or after ``paused_until`` is where dispatch carries on (catch-up
  applies from there, never to the paused period).
* A *wake-up* (``rearm``) marks a ``next_run_at`` that is an instant rather than a slot
  (the end of a pause, the resume of a project): the scheduler carries on from the first
  slot at or after it.

One module, longer than most: pause, skip, bounds and max_runs decide together which
slot is consumed, and each rule reads the others' state; split apart they would have to
import each other.

One module, longer than most: pause, skip, bounds and run limits all act on the same
slot sequence, and their rules are read together.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from tickwork.domain import catchup
from tickwork.domain.ids import schedule_key
from tickwork.domain.schedule import OnceSchedule, format_instant
from tickwork.domain.slots import CalendarSchedule, Slot, Timing, next_run_after, slot_at
from tickwork.errors import ValidationError

__all__ = [
    "BACKFILL_MODES",
    "MAX_BACKFILL_SLOTS",
    "MAX_SKIP",
    "SKIPPED_BY_REQUEST",
    "BackfillKind",
    "BackfillMode",
    "Bounds",
    "Control",
    "DispatchPlan",
    "Recorded",
    "SlotHistory",
    "backfill_key",
    "backfill_key_of",
    "backfill_kind",
    "backfill_slots",
    "bounded_first",
    "coming",
    "coming_slots",
    "first_slot_at_or_after",
    "missed_backfill_key",
    "next_slot_of",
    "plan_dispatch",
    "preview_runs",
    "remaining_after_change",
]

SKIPPED_BY_REQUEST = "skipped by request"
MAX_SKIP = 10_000
MAX_BACKFILL_SLOTS = 10_000
BackfillMode = Literal["missing", "failed", "all"]
BACKFILL_MODES: tuple[str, ...] = ("missing", "failed", "all")

_TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class Bounds:
    """Where a trigger's slots may lie, and how many it may still consume."""

    starts_at: datetime | None = None
    ends_at: datetime | None = None
    remaining_runs: int | None = None

    @property
    def exhausted(self) -> bool:
        return self.remaining_runs is not None and self.remaining_runs <= 0

    def admits(self, instant: datetime) -> bool:
        """Whether ``instant`` lies within ``starts_at``..``ends_at``."""
        if self.starts_at is not None and instant < self.starts_at:
            return False
        return self.ends_at is None or instant <= self.ends_at


@dataclass(frozen=True)
class Control:
    """A trigger's control state as the scheduler reads it."""

    paused: bool = False
    paused_until: datetime | None = None
    rearm: bool = False
    skip_remaining: int = 0
    bounds: Bounds = field(default_factory=Bounds)


def first_slot_at_or_after(
    schedule: Timing, instant: datetime, bounds: Bounds, *, inclusive: bool = True
) -> datetime | None:
    """The first slot at (``inclusive``) or strictly after ``instant`` within ``bounds``;
    None when there is none or no slot may be consumed any more."""
    if bounds.exhausted:
        return None
    base = instant - _TICK if inclusive else instant
    if bounds.starts_at is not None and base < bounds.starts_at - _TICK:
        base = bounds.starts_at - _TICK
    found = next_run_after(schedule, base)
    if found is None or (bounds.ends_at is not None and found > bounds.ends_at):
        return None
    return found


def bounded_first(schedule: Timing, first: datetime | None, bounds: Bounds) -> datetime | None:
    """``first`` (the schedule's first run from now, as computed without bounds) moved
    into ``bounds``: to the first slot at or after ``starts_at`` when it is earlier, None
    when it lies after ``ends_at`` or nothing may be consumed."""
    if first is None or bounds.exhausted:
        return None
    if bounds.starts_at is not None and first < bounds.starts_at:
        return first_slot_at_or_after(schedule, bounds.starts_at, bounds)
    if bounds.ends_at is not None and first > bounds.ends_at:
        return None
    return first


def remaining_after_change(
    old_max: int | None, old_remaining: int | None, new_max: int | None
) -> int | None:
    """``remaining_runs`` once ``max_runs`` changes: the slots already consumed under
    the old cap still count; a cap set where there was none counts from now."""
    if new_max is None:
        return None
    if old_max is None or old_remaining is None:
        return new_max
    return max(new_max - (old_max - old_remaining), 0)


# -- dispatch ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """A consumed slot that does not run: ``missed`` (catch-up), ``skipped`` (by
    request) or ``excluded`` (its calendar skips it: recorded ``skipped`` with the
    calendar's reason, see :attr:`DispatchPlan.slots`)."""

    at: datetime
    status: Literal["missed", "skipped", "excluded"]


@dataclass(frozen=True)
class DispatchPlan:
    """What one pass of the scheduler does with a due trigger.

    ``recorded`` and ``run`` are oldest first; skips by request and misses take the
    oldest consumed slots, so they precede every run (a slot its calendar excludes is
    recorded where it falls). ``run`` is still subject to the
    overlap policy. ``consumed`` counts every consumed slot, unrecorded misses included.
    """

    run: list[datetime]
    recorded: list[Recorded]
    missed_uncounted: int
    missed_estimated: bool
    next_run_at: datetime | None
    rearm: bool
    resumed: bool
    skip_remaining: int
    remaining_runs: int | None
    consumed: int
    # With a calendar: the effective slot of every consumed instant that the calendar
    # skips or shifts (its reason); empty without one.
    slots: dict[datetime, Slot] = field(default_factory=dict)

    @property
    def missed(self) -> list[datetime]:
        return [r.at for r in self.recorded if r.status == "missed"]

    @property
    def skipped(self) -> list[datetime]:
        return [r.at for r in self.recorded if r.status == "skipped"]


def plan_dispatch(
    schedule: Timing,
    due: datetime,
    now: datetime,
    control: Control,
    policy: str = "latest",
    catchup_window_seconds: float = catchup.DEFAULT_CATCHUP_WINDOW_SECONDS,
    *,
    grace_seconds: float = catchup.DEFAULT_GRACE_SECONDS,
) -> DispatchPlan:
    """Plan a due trigger (stored ``next_run_at`` = ``due``) at ``now``: its pause, its
    wake-up, catch-up (:func:`tickwork.domain.catchup.plan_catchup`) within its bounds,
    then ``remaining_runs`` and skips over the consumed slots in time order."""
    single = _single_slot(
        schedule, due, now, control, policy, catchup_window_seconds, grace_seconds
    )
    if single is not None:
        return single
    return _plan_in_full(schedule, due, now, control, policy, catchup_window_seconds, grace_seconds)


def _plan_in_full(
    schedule: Timing,
    due: datetime,
    now: datetime,
    control: Control,
    policy: str,
    catchup_window_seconds: float,
    grace_seconds: float,
) -> DispatchPlan:
    """:func:`plan_dispatch` of any pass: the general walk."""
    bounds = control.bounds
    idle = DispatchPlan(
        run=[],
        recorded=[],
        missed_uncounted=0,
        missed_estimated=False,
        next_run_at=due,
        rearm=control.rearm,
        resumed=False,
        skip_remaining=control.skip_remaining,
        remaining_runs=bounds.remaining_runs,
        consumed=0,
    )
    resumed = False
    rearm = control.rearm
    if control.paused:
        until = control.paused_until
        if until is None or until > now:
            # Woken early (the pause moved, or a wake-up found it paused): look again
            # when the pause ends, consuming nothing.
            return replace(idle, next_run_at=until, rearm=until is not None)
        # From the end of the pause, or later when the stored wake-up is later (a
        # project resumed after it): never from inside a pause.
        resumed, rearm, due = True, True, max(until, due)
    if rearm:
        found = first_slot_at_or_after(schedule, due, bounds)
        if found is None:
            return replace(idle, next_run_at=None, rearm=False, resumed=resumed)
        due = found
    elif bounds.exhausted:
        return replace(idle, next_run_at=None, rearm=False)
    if due > now:
        return replace(idle, next_run_at=due, rearm=False, resumed=resumed)

    plan = catchup.plan_catchup(
        schedule,
        due,
        now,
        policy,
        catchup_window_seconds,
        grace_seconds=grace_seconds,
        ends_at=bounds.ends_at,
    )
    missed, uncounted, run = list(plan.missed), plan.missed_uncounted, list(plan.run)
    next_run_at = None if isinstance(schedule, OnceSchedule) else plan.next_run_at
    remaining = bounds.remaining_runs
    if remaining is not None and len(missed) + uncounted + len(run) >= remaining:
        # The cap falls inside this pass: keep the oldest ``remaining`` slots.
        left = remaining
        missed, left = missed[:left], left - min(len(missed), left)
        uncounted, left = min(uncounted, left), left - min(uncounted, left)
        run = run[:left]
        next_run_at = None
    consumed = len(missed) + uncounted + len(run)

    # A calendar's skips are recorded as such, whether their time passed while the
    # scheduler was down or not; a skip by request is never spent on one.
    slots = _calendar_slots(schedule, [*missed, *run])
    excluded = {at for at, slot in slots.items() if slot.status == "skip"}
    skip = control.skip_remaining
    recorded: list[Recorded] = []
    for slot in missed:
        if slot in excluded:
            recorded.append(Recorded(slot, "excluded"))
        elif skip > 0:
            skip -= 1
            recorded.append(Recorded(slot, "skipped"))
        else:
            recorded.append(Recorded(slot, "missed"))
    unrecorded_skips = min(skip, uncounted)
    skip -= unrecorded_skips
    recorded += [Recorded(slot, "excluded") for slot in run if slot in excluded]
    run = [slot for slot in run if slot not in excluded]
    skipped_runs = min(skip, len(run))
    skip -= skipped_runs
    recorded += [Recorded(slot, "skipped") for slot in run[:skipped_runs]]
    return DispatchPlan(
        slots=slots,
        run=run[skipped_runs:],
        recorded=recorded,
        missed_uncounted=uncounted,
        missed_estimated=plan.missed_estimated and uncounted > 0,
        next_run_at=next_run_at,
        rearm=False,
        resumed=resumed,
        skip_remaining=skip,
        remaining_runs=None if remaining is None else remaining - consumed,
        consumed=consumed,
    )


def _single_slot(
    schedule: Timing,
    due: datetime,
    now: datetime,
    control: Control,
    policy: str,
    catchup_window_seconds: float,
    grace_seconds: float,
) -> DispatchPlan | None:
    """The plan of the common pass, found without the general walk: exactly one slot is
    due (``due`` itself, in the window, the next firing after ``now``) and nothing of
    the control state is in play (no pause, wake-up, skip, cap, end or calendar). None
    when the pass is not that simple; :func:`plan_dispatch` then plans it in full, with
    the same result for a pass this function does plan."""
    bounds = control.bounds
    if (
        control.paused
        or control.rearm
        or control.skip_remaining
        or bounds.remaining_runs is not None
        or bounds.ends_at is not None
        or isinstance(schedule, CalendarSchedule)
        or policy not in catchup.CATCHUP_POLICIES
        or catchup_window_seconds < 0
        or grace_seconds < 0
        or due.utcoffset() is None
        or now.utcoffset() is None
        or due > now
    ):
        return None
    window = grace_seconds
    if policy != catchup.CatchupPolicy.NONE:
        window = max(catchup_window_seconds, grace_seconds)
    if due < now - timedelta(seconds=window):
        return None  # missed: recorded as such
    after = next_run_after(schedule, due)
    if after is not None and after <= now:
        return None  # more than one slot due
    return DispatchPlan(
        run=[due],
        recorded=[],
        missed_uncounted=0,
        missed_estimated=False,
        next_run_at=None if isinstance(schedule, OnceSchedule) else after,
        rearm=False,
        resumed=False,
        skip_remaining=0,
        remaining_runs=None,
        consumed=1,
    )


def _calendar_slots(schedule: Timing, instants: list[datetime]) -> dict[datetime, Slot]:
    """The effective slots among ``instants`` that a calendar skips or shifts."""
    if not isinstance(schedule, CalendarSchedule):
        return {}
    found = (slot_at(schedule, at) for at in instants)
    return {slot.at: slot for slot in found if slot.status == "skip" or slot.shifted}


# -- what comes next ---------------------------------------------------------------------


def coming_slots(
    schedule: Timing,
    first: datetime | None,
    control: Control,
    *,
    gap_until: datetime | None = None,
) -> Iterator[tuple[datetime, bool]]:
    """The slots a trigger will consume from ``first`` (its next slot) on, each with
    whether it is skipped by request; ends at ``ends_at`` or when ``remaining_runs``
    is used up. After ``first``, slots up to ``gap_until`` are left out (they are due
    already: catch-up decides about them). See :func:`coming` for the calendar's part."""
    for slot, skipped in coming(schedule, first, control, gap_until=gap_until):
        yield slot.at, skipped


def coming(
    schedule: Timing,
    first: datetime | None,
    control: Control,
    *,
    gap_until: datetime | None = None,
) -> Iterator[tuple[Slot, bool]]:
    """:func:`coming_slots` with each slot's effect: a run (shifted or not, with the
    reason) or a slot its calendar skips, which no skip by request is spent on."""
    bounds = control.bounds
    window = replace(bounds, remaining_runs=None)
    skip = control.skip_remaining
    left = bounds.remaining_runs
    cursor = first
    while cursor is not None:
        if left is not None:
            if left <= 0:
                return
            left -= 1
        slot = slot_at(schedule, cursor)
        skipped = skip > 0 and slot.status == "run"
        skip -= 1 if skipped else 0
        yield slot, skipped
        base = cursor if gap_until is None else max(cursor, gap_until)
        cursor = first_slot_at_or_after(schedule, base, window, inclusive=False)
        if isinstance(schedule, OnceSchedule):
            return


def next_slot_of(
    schedule: Timing, next_run_at: datetime | None, control: Control
) -> datetime | None:
    """The first slot a trigger with this stored ``next_run_at`` will consume: the
    stored one, or for a wake-up the first slot at or after it."""
    if next_run_at is None:
        return None
    if control.rearm or control.paused:
        return first_slot_at_or_after(schedule, next_run_at, control.bounds)
    return next_run_at


def preview_runs(
    schedule: Timing, now: datetime, count: int, control: Control
) -> tuple[list[datetime], list[datetime], list[Slot]]:
    """The next ``count`` slots after ``now`` that will run, the slots before the last of
    them that are skipped by request, and those its calendar skips or shifts (with the
    reason; a shifted one is among the runs too). A pause that ends by itself starts
    them at its end; one that does not shows none."""
    if control.paused:
        if control.paused_until is None:
            return [], [], []
        first = first_slot_at_or_after(schedule, max(control.paused_until, now), control.bounds)
    else:
        first = first_slot_at_or_after(schedule, now, control.bounds, inclusive=False)
    runs: list[datetime] = []
    skipped: list[datetime] = []
    calendar: list[Slot] = []
    for slot, is_skipped in coming(schedule, first, control):
        if slot.status == "skip" or slot.shifted:
            calendar.append(slot)
        if slot.status == "skip":
            if len(calendar) > MAX_SKIP:
                break
            continue
        if is_skipped:
            skipped.append(slot.at)
            if len(skipped) > MAX_SKIP:
                break
            continue
        runs.append(slot.at)
        if len(runs) == count:
            break
    return runs, skipped, calendar


# -- backfill ----------------------------------------------------------------------------


def backfill_slots(
    schedule: Timing,
    start: datetime,
    end: datetime,
    bounds: Bounds,
    limit: int = MAX_BACKFILL_SLOTS,
) -> list[datetime]:
    """The trigger's slots in [``start``, ``end``) within ``starts_at``..``ends_at``
    (``remaining_runs`` does not apply), oldest first; more than ``limit`` is refused."""
    if end <= start:
        raise ValidationError("to", "must be after from")
    window = replace(bounds, remaining_runs=None)
    found: list[datetime] = []
    cursor = first_slot_at_or_after(schedule, start, window)
    while cursor is not None and cursor < end:
        if isinstance(schedule, CalendarSchedule) and slot_at(schedule, cursor).status == "skip":
            # A date its calendar excludes has nothing to backfill.
            cursor = first_slot_at_or_after(schedule, cursor, window, inclusive=False)
            continue
        if len(found) == limit:
            raise ValidationError(
                "to",
                f"the range {format_instant(start)} to {format_instant(end)} holds more than "
                f"{limit} slots of this trigger; backfill it in smaller ranges",
            )
        found.append(cursor)
        if isinstance(schedule, OnceSchedule):
            break
        cursor = first_slot_at_or_after(schedule, cursor, window, inclusive=False)
    return found


@dataclass(frozen=True)
class SlotHistory:
    """What exists of one slot: the status of its canonical (``sched:``) invocation,
    whether the slot's own backfill key is taken, and the status of its latest
    invocation of any origin."""

    canonical: str | None = None
    backfilled: bool = False
    latest: str | None = None


BackfillKind = Literal["canonical", "missed", "own"]


def backfill_kind(mode: str, history: SlotHistory) -> BackfillKind | None:
    """Which key a backfill in ``mode`` gives a slot with this history (None: the mode
    leaves the slot alone).

    * ``missing``: a slot that has no invocation gets its canonical key, so the normal
      schedule and every other backfill see it as taken; one recorded ``missed`` (never
      attempted) gets the slot's backfill key ``backfill:{trigger}:{slot}``, which every
      ``missing`` backfill shares; any other slot is left alone.
    * ``failed``: a slot whose latest invocation failed, under a key of this backfill.
    * ``all``: every slot, under a key of this backfill.
    """
    if mode == "missing":
        if history.canonical is None:
            return "canonical"
        if history.canonical == "missed" and not history.backfilled:
            return "missed"
        return None
    if mode == "failed":
        return "own" if history.latest == "failed" else None
    if mode == "all":
        return "own"
    raise ValidationError("mode", f"must be one of {', '.join(BACKFILL_MODES)}")


def backfill_key_of(kind: str, trigger_id: str, backfill_id: str, slot: datetime) -> str:
    if kind == "canonical":
        return schedule_key(trigger_id, slot)
    if kind == "missed":
        return missed_backfill_key(trigger_id, slot)
    return f"backfill:{backfill_id}:{format_instant(slot)}"


def backfill_key(
    mode: str, trigger_id: str, backfill_id: str, slot: datetime, history: SlotHistory
) -> str | None:
    """The idempotency key of a backfill's invocation of ``slot``, or None when the
    mode leaves the slot alone (see :func:`backfill_kind`)."""
    kind = backfill_kind(mode, history)
    return None if kind is None else backfill_key_of(kind, trigger_id, backfill_id, slot)


def missed_backfill_key(trigger_id: str, slot: datetime) -> str:
    """The key a ``missing`` backfill gives a slot recorded ``missed``."""
    return f"backfill:{trigger_id}:{format_instant(slot)}"
