"""Effective slots: a schedule's nominal firings after its calendar has spoken (SPEC §16).

A :class:`CalendarSchedule` is a recurring schedule (cron or rule) with a
:class:`~tickwork.domain.calendars.Calendar` and optional ``starts_at``/``ends_at``
bounds. Its *effective slots* form one fixed sequence of strictly increasing instants,
each a :class:`Slot` with a status:

* a nominal slot on a business day (local date in the trigger's zone) is a ``run``;
* a nominal slot on an excluded date is a ``skip`` at its nominal instant, with the
  exclusion as reason (``holiday: Christmas Day``), when the calendar's shift is
  ``skip`` or the shift is refused (see below);
* with ``next_business_day`` or ``previous_business_day`` it moves to the nearest business
  day in that direction (at most :data:`MAX_SHIFT_DAYS` away) at the same wall time,
  mapped by the fixed-time rule, as a ``run`` whose instant is its canonical key and whose
  reason names the original date (``shifted from 2026-12-25 (holiday: Christmas Day)``).

A shift is refused, and the slot skipped with the reason saying why, when the target
date already has a slot of the trigger (a nominal one, or the slots shifted there from an
excluded date *nearer* to it: of several excluded dates shifting onto one business day,
only the nearest one's slots move), when there is no business day within
:data:`MAX_SHIFT_DAYS`, or when the moved instant would fall after ``ends_at`` (before
``starts_at``). All slots of one excluded date move together. Nominal slots outside
``[starts_at, ends_at]`` are not slots at all.

:func:`slots_after` yields the effective slots strictly after an instant, in order; each
costs a few evaluations of the nominal schedule and a walk of at most
:data:`MAX_SHIFT_DAYS` dates. A ``previous_business_day`` shift moves a slot *earlier*:
the sequence accounts for it because a date's shifted-in slots are produced when the
excluded date they come from is reached, and nothing lies between the two.

One module, longer than most: the calendar's rules and the slot sequence they make
are one definition, and are read together.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal

from tickwork.domain.calendars import Calendar
from tickwork.domain.schedule import (
    MAX_PREVIEW,
    CronSchedule,
    OnceSchedule,
    RRuleSchedule,
    Schedule,
    describe,
)
from tickwork.domain.schedule import next_run_after as schedule_next_run_after
from tickwork.domain.walltime import fixed_instant
from tickwork.errors import ValidationError

__all__ = [
    "MAX_SHIFT_DAYS",
    "CalendarSchedule",
    "Slot",
    "SlotStatus",
    "Timing",
    "describe_timing",
    "next_run_after",
    "next_slot",
    "preview_slots",
    "slot_at",
    "slots_after",
]

SlotStatus = Literal["run", "skip"]
MAX_SHIFT_DAYS = 366
_TICK = timedelta(microseconds=1)
_MIDNIGHT = time(0, 0)


@dataclass(frozen=True)
class Slot:
    """One effective slot. ``at`` (UTC) is its instant and canonical key; ``nominal`` is
    where the schedule put it (differs from ``at`` only when shifted); ``reason`` says
    why it is skipped or shifted (None for a plain run)."""

    at: datetime
    status: SlotStatus
    nominal: datetime
    reason: str | None = None

    @property
    def shifted(self) -> bool:
        return self.at != self.nominal


@dataclass(frozen=True)
class CalendarSchedule:
    """A recurring schedule refined by a calendar, within optional bounds (aware)."""

    schedule: CronSchedule | RRuleSchedule
    calendar: Calendar
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    @property
    def timezone(self) -> str:
        return self.schedule.timezone

    @property
    def zone(self) -> tzinfo:
        return self.schedule.zone


# What a trigger's timing is: a schedule, or a recurring one refined by a calendar.
Timing = Schedule | CalendarSchedule


def next_run_after(timing: Timing, after: datetime) -> datetime | None:
    """The first slot strictly after ``after`` (aware) as UTC, or None: the schedule's
    firing, or for a calendar the next *effective* slot (a run, shifted or not, or a slot
    the calendar skips, which the scheduler records ``skipped``)."""
    if not isinstance(timing, CalendarSchedule):
        return schedule_next_run_after(timing, after)
    found = next_slot(timing, after)
    return None if found is None else found.at


def slot_at(timing: Timing, instant: datetime) -> Slot:
    """The effective slot at ``instant``, which must be one of the timing's slots (as
    :func:`next_run_after` gives them): a run, or a skip, with its reason."""
    if not isinstance(timing, CalendarSchedule):
        return Slot(instant.astimezone(UTC), "run", instant.astimezone(UTC))
    found = next_slot(timing, instant - _TICK)
    if found is None or found.at != instant:
        raise ValueError(f"{instant.isoformat()} is not a slot of this schedule")
    return found


def describe_timing(timing: Timing) -> str:
    """Words for when it fires, and for the calendar's part."""
    if not isinstance(timing, CalendarSchedule):
        return describe(timing)
    return f"{describe(timing.schedule)}; {timing.calendar.describe()}"


def next_slot(schedule: Schedule | CalendarSchedule, after: datetime) -> Slot | None:
    """The first effective slot strictly after ``after`` (aware), or None.

    For a schedule without a calendar every firing is a ``run``.
    """
    return next(slots_after(schedule, after), None)


def slots_after(schedule: Schedule | CalendarSchedule, after: datetime) -> Iterator[Slot]:
    """The effective slots strictly after ``after`` (aware), in order (see the module
    docstring). Ends when the schedule does."""
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError("after must be an aware datetime")
    after = after.astimezone(UTC)
    if not isinstance(schedule, CalendarSchedule):
        return _plain(schedule, after)
    return _Walk(schedule).slots(after)


def preview_slots(schedule: Schedule | CalendarSchedule, after: datetime, count: int) -> list[Slot]:
    """The next ``count`` (1 to 1000) effective slots strictly after ``after``."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_PREVIEW:
        raise ValidationError("count", f"must be between 1 and {MAX_PREVIEW}, got {count!r}")
    found: list[Slot] = []
    for slot in slots_after(schedule, after):
        found.append(slot)
        if len(found) == count:
            break
    return found


def _plain(schedule: Schedule, after: datetime) -> Iterator[Slot]:
    cursor = after
    while True:
        found = schedule_next_run_after(schedule, cursor)
        if found is None:
            return
        yield Slot(found, "run", found)
        cursor = found
        if isinstance(schedule, OnceSchedule):
            return


class _Walk:
    def __init__(self, schedule: CalendarSchedule) -> None:
        self.schedule = schedule
        self.calendar = schedule.calendar
        self.zone = schedule.zone
        self.starts_at = schedule.starts_at
        self.ends_at = schedule.ends_at
        self.shift = schedule.calendar.shift
        # (a, n): the first nominal slot after ``a`` is ``n`` (None: there is none), so
        # it is also the first after any instant in [a, n). Sparse rules are asked from
        # several nearby instants in one walk; each long search is made once.
        self._spans: list[tuple[datetime, datetime | None]] = []

    # -- the nominal schedule ------------------------------------------------------------

    def _next(self, instant: datetime) -> datetime | None:
        for begin, found in self._spans:
            if begin <= instant and (found is None or instant < found):
                return found
        found = schedule_next_run_after(self.schedule.schedule, instant)
        if len(self._spans) >= 32:
            self._spans.pop(0)
        self._spans.append((instant, found))
        return found

    def _nominal_after(self, instant: datetime) -> datetime | None:
        found = self._next(instant)
        if self.starts_at is not None and found is not None and found < self.starts_at:
            found = self._next(self.starts_at - _TICK)
        if found is not None and self.ends_at is not None and found > self.ends_at:
            return None
        return found

    def _date(self, instant: datetime) -> date:
        return instant.astimezone(self.zone).date()

    def _day_start(self, day: date) -> datetime:
        return fixed_instant(datetime.combine(day, _MIDNIGHT), self.zone)

    def _first_on_or_after(self, day: date) -> datetime | None:
        try:
            return self._nominal_after(self._day_start(day) - _TICK)
        except OverflowError:
            return None

    def _slots_of(self, day: date, first: datetime) -> Iterator[datetime]:
        """The nominal slots on ``day`` from ``first`` (itself one of them) on."""
        cursor: datetime | None = first
        while cursor is not None and self._date(cursor) == day:
            yield cursor
            cursor = self._nominal_after(cursor)

    # -- shifting --------------------------------------------------------------------------

    def _target(self, day: date) -> date | None:
        step = 1 if self.shift == "next_business_day" else -1
        return self.calendar.nearest_business_day(day, step, MAX_SHIFT_DAYS)

    def _decide(self, day: date, reason: str) -> tuple[date | None, str]:
        """Where the slots of excluded ``day`` move (None: they are skipped), and the
        reason to record."""
        target = self._target(day)
        if target is None:
            return None, f"{reason}; no business day within {MAX_SHIFT_DAYS} days"
        if self.shift == "next_business_day":
            later = self._first_on_or_after(day + timedelta(days=1))
            later_day = None if later is None else self._date(later)
            if later_day is not None and later_day <= target:
                if later_day == target:
                    return None, f"{reason}; {target.isoformat()} already has a slot"
                return None, (
                    f"{reason}; {target.isoformat()} takes the slots of "
                    f"{later_day.isoformat()} instead"
                )
        else:
            earlier = self._first_on_or_after(target)
            earlier_day = None if earlier is None else self._date(earlier)
            if earlier_day is not None and earlier_day < day:
                if earlier_day == target:
                    return None, f"{reason}; {target.isoformat()} already has a slot"
                return None, (
                    f"{reason}; {target.isoformat()} takes the slots of "
                    f"{earlier_day.isoformat()} instead"
                )
        return target, f"shifted from {day.isoformat()} ({reason})"

    def _moved(self, nominal: datetime, target: date) -> datetime:
        wall = nominal.astimezone(self.zone).replace(tzinfo=None)
        return fixed_instant(datetime.combine(target, wall.time()), self.zone)

    def _shifted_group(
        self,
        day: date,
        first: datetime,
        target: date,
        reason: str,
        exclusion: str,
        since: datetime,
    ) -> Iterator[Slot]:
        """The slots of ``day`` from ``first`` on, moved to ``target``, lazily and in time
        order; those a bound stops are skipped where they stand. Items at or before
        ``since`` may be left out (the caller drops them anyway)."""
        side = "after ends_at" if self.shift == "next_business_day" else "before starts_at"
        note = f"{exclusion}; moving to {target.isoformat()} would fall {side}"
        if self.shift == "next_business_day":
            # Moved instants grow with the wall time: those past ends_at are a suffix,
            # skipped on ``day``, before ``target``'s moved ones in time.
            ends_at = self.ends_at
            cut = None
            if ends_at is not None:
                cut = self._split(day, first, target, lambda at: at > ends_at)
            if cut is not None:
                for nominal in self._slots_of(day, max(cut, self._on_day_after(day, since, cut))):
                    yield Slot(nominal, "skip", nominal, note)
            for nominal in self._slots_of(day, self._moved_start(day, first, target, since)):
                if cut is not None and nominal >= cut:
                    break
                yield Slot(self._moved(nominal, target), "run", nominal, reason)
            return
        # Moving earlier: those that would land before starts_at are a prefix, skipped on
        # ``day``, after ``target``'s moved ones in time.
        starts_at = self.starts_at
        cut = (
            first
            if starts_at is None
            else self._split(day, first, target, lambda at: at >= starts_at)
        )
        if cut is not None:
            for nominal in self._slots_of(
                day, max(cut, self._moved_start(day, cut, target, since))
            ):
                yield Slot(self._moved(nominal, target), "run", nominal, reason)
        for nominal in self._slots_of(day, self._on_day_after(day, since, first)):
            if cut is not None and nominal >= cut:
                break
            yield Slot(nominal, "skip", nominal, note)

    def _on_day_after(self, day: date, since: datetime, first: datetime) -> datetime:
        """The first slot of ``day`` at or after ``first`` that is after ``since`` (or a
        slot of a later day, which ends the caller's walk of ``day``)."""
        if first > since:
            return first
        found = self._nominal_after(since)
        if found is None:
            return self._day_start(day + timedelta(days=1))
        return found

    def _moved_start(self, day: date, first: datetime, target: date, since: datetime) -> datetime:
        """Where to begin walking ``day``'s slots so that their moved instants (on
        ``target``) are after ``since``: wall times earlier than ``since``'s own, on
        ``target``, move to ``since`` or before."""
        if self._date(since) != target:
            if target < self._date(since):
                return self._day_start(day + timedelta(days=1))  # all at or before since
            return first
        clock = since.astimezone(self.zone).replace(tzinfo=None, microsecond=0).time()
        begin = fixed_instant(datetime.combine(day, clock), self.zone) - _TICK
        found = self._nominal_after(begin)
        if found is None or found < first:
            return first
        return found

    def _split(
        self, day: date, first: datetime, target: date, hit: Callable[[datetime], bool]
    ) -> datetime | None:
        """The first slot of ``day`` from ``first`` on whose moved instant satisfies
        ``hit`` (false, then true, as the wall time grows), by bisection; None if none."""
        if hit(self._moved(first, target)):
            return first
        low = first  # a slot that misses
        high = self._day_start(day + timedelta(days=1))
        while high - low > timedelta(seconds=1):
            middle = low + (high - low) / 2
            found = self._nominal_after(middle)
            if found is None or self._date(found) != day or hit(self._moved(found, target)):
                high = middle
            else:
                low = found
        found = self._nominal_after(low)
        while found is not None and self._date(found) == day:
            if hit(self._moved(found, target)):
                return found
            found = self._nominal_after(found)
        return None

    # -- the walk --------------------------------------------------------------------------

    def slots(self, after: datetime) -> Iterator[Slot]:
        last = after
        for slot in self._unfiltered(after):
            if slot.at > last:
                last = slot.at
                yield slot

    def _unfiltered(self, after: datetime) -> Iterator[Slot]:
        cursor = after
        if self.shift == "next_business_day":
            handled = yield from self._look_back(after)
            if handled is not None:
                cursor = handled
        while True:
            first = self._nominal_after(cursor)
            if first is None:
                return
            day = self._date(first)
            exclusion = self.calendar.exclusion(day)
            if exclusion is None:
                for nominal in self._slots_of(day, first):
                    yield Slot(nominal, "run", nominal)
            elif self.shift == "skip":
                for nominal in self._slots_of(day, first):
                    yield Slot(nominal, "skip", nominal, exclusion)
            else:
                target, reason = self._decide(day, exclusion)
                if target is None:
                    for nominal in self._slots_of(day, first):
                        yield Slot(nominal, "skip", nominal, reason)
                else:
                    yield from self._shifted_group(day, first, target, reason, exclusion, after)
            try:
                cursor = self._day_start(day + timedelta(days=1)) - _TICK
            except OverflowError:
                return

    def _look_back(self, after: datetime) -> Generator[Slot, None, datetime | None]:
        """Slots moved forward past ``after`` from an excluded date at or before it.

        Returns the instant the main walk resumes after (None: at ``after``)."""
        today = self._date(after)
        # The excluded run that ends at today (today included when it is excluded).
        newest = today if not self.calendar.is_business_day(today) else today - timedelta(days=1)
        if self.calendar.is_business_day(newest):
            return None
        before = self.calendar.nearest_business_day(newest, -1, MAX_SHIFT_DAYS)
        oldest = (
            newest - timedelta(days=MAX_SHIFT_DAYS - 1)
            if before is None
            else before + timedelta(days=1)
        )
        first = self._first_on_or_after(oldest)
        if first is None or self._date(first) > newest:
            return None
        # The latest date of the run with a slot: only it can move (it is nearest).
        low, high = self._date(first).toordinal(), newest.toordinal()
        while low < high:
            middle = (low + high + 1) // 2
            found = self._first_on_or_after(date.fromordinal(middle))
            if found is not None and self._date(found) <= newest:
                low = self._date(found).toordinal()
            else:
                high = middle - 1
        source = date.fromordinal(low)
        exclusion = self.calendar.exclusion(source)
        assert exclusion is not None
        target, reason = self._decide(source, exclusion)
        if target is None:
            return None  # refused: skipped where they stand, which the main walk sees
        source_first = self._first_on_or_after(source)
        assert source_first is not None
        yield from self._shifted_group(source, source_first, target, reason, exclusion, after)
        if source == today:
            return self._day_start(today + timedelta(days=1)) - _TICK
        return None
