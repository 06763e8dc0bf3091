"""From naive wall times to instants: the daylight-saving rule of SPEC §3, once.

Calendar libraries (cronsim for cron, dateutil for RFC 5545 rules) work on *naive wall
times*: dates and clock readings with no zone. Which instant a wall time fires at is
decided here, for every kind of schedule alike, by :func:`next_instant`:

* A *wildcard* schedule follows elapsed time: it fires at every instant whose local wall
  time matches. Wall times inside a spring-forward gap never occur, so they never fire;
  both copies of a repeated fall-back hour fire.
* Every other schedule is *fixed-time*: each matching wall time fires once, at its first
  occurrence when it occurs twice, and at the first instant after the gap when it does
  not occur at all (several matching times in one gap collapse into one firing).

A schedule hands over its wall times as a :data:`Walls` function: given a naive wall time
``x``, an iterator over the matching wall times strictly after ``x``, in increasing
order, each a whole second. The iterator may end (no further match); it must end, or
become sparse, within reasonable work: :func:`next_instant` may ask it from several
starting points, but reads only a few items each time.

Every answer is strictly after the instant asked about and has whole seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, tzinfo

from tickwork.domain.zones import is_utc, offset_at

__all__ = [
    "DEFAULT_HORIZON",
    "Walls",
    "fixed_instant",
    "next_instant",
]

Walls = Callable[[datetime], Iterator[datetime]]

_ONE_SECOND = timedelta(seconds=1)
# Shorter than any stay at one offset, so that a change and its reversal can never both
# fall between two probes. tzdata's shortest stays are just under seven days (Brazil in
# October 2000; Gaza and Hebron in predicted future Ramadans), hence one day, not a week.
_PROBE_STEP = timedelta(days=1)
# Two UTC offsets always differ by less than this: datetime keeps each within ±24 hours.
_MAX_SHIFT = timedelta(hours=48)
# How far ahead in elapsed time a wildcard schedule's next firing is looked for. A wall
# time it names can be skipped by a daylight-saving gap, and a schedule may name only
# such wall times (``* 2 * 3 0#2`` in New York): then it never fires, and this bound is
# what makes finding so quick. Zone rules repeat with the calendar, whose weekdays repeat
# every 28 years (within a century), so a cron expression that has not fired for 29
# years never will; one that fires at all fires at least every 8 years (February 29).
# Schedules whose own calendar is sparser pass a longer horizon.
DEFAULT_HORIZON = timedelta(days=366 * 29)


def next_instant(
    walls: Walls,
    after: datetime,
    zone: tzinfo,
    *,
    wildcard: bool,
    horizon: timedelta = DEFAULT_HORIZON,
) -> datetime | None:
    """The first firing strictly after ``after`` (aware), as UTC; None if there is none.

    ``walls`` gives the matching wall times (see the module docstring); ``wildcard``
    chooses the rule; ``horizon`` bounds, in elapsed time, how far a wildcard schedule
    looks for a wall time that occurs (a fixed-time schedule fires at its next matching
    wall time, whatever the zone, so only ``walls`` bounds its search).
    """
    if after.tzinfo is None:
        raise ValueError("next_instant needs an aware datetime")
    start = after.astimezone(UTC)
    try:
        if is_utc(zone):
            wall = next(walls(start.replace(tzinfo=None)))
            return wall.replace(tzinfo=UTC)
        if wildcard:
            return _next_wildcard(walls, start, zone, horizon)
        return _next_fixed(walls, start, zone)
    except (StopIteration, OverflowError):
        # The walls ran out; OverflowError means the next firing would lie beyond year
        # 9999. Either way there is no answer.
        return None


def _next_fixed(walls: Walls, start: datetime, zone: tzinfo) -> datetime:
    # Map each matching wall time to the instant it fires at; that map never goes
    # backwards, and no wall time earlier than start's own wall time can fire after
    # start, so the first mapped instant after start is the answer. Wall times in the
    # second copy of a repeated hour map to the first copy and are skipped here.
    local_aware = start.astimezone(zone)
    local = local_aware.replace(tzinfo=None)
    if local_aware.fold:
        # start lies in the second copy of a repeated hour: every wall time from here
        # to the end of the repeated span fired at its first copy, before start, so
        # the walk resumes after the span (one step, not one per wall time).
        local = _end_of_repeat(local_aware, start, zone) - _ONE_SECOND
    for wall in walls(local):
        instant = fixed_instant(wall, zone)
        if instant > start:
            return instant
    raise StopIteration


def _next_wildcard(walls: Walls, start: datetime, zone: tzinfo, horizon: timedelta) -> datetime:
    # Walk elapsed time in spans of constant UTC offset: inside a span, wall time is
    # the instant plus that offset, so the next matching wall time gives the instant.
    # When the offset changed before that instant, restart at the change.
    t = start
    inclusive = False
    end = start + horizon
    while t < end:
        offset = offset_at(zone, t)
        wall = (t + offset).replace(tzinfo=None)
        if inclusive:
            wall -= _ONE_SECOND
        candidate = next(walls(wall))
        instant = (candidate - offset).replace(tzinfo=UTC)
        if instant - t <= 2 * _MAX_SHIFT:
            change = _first_change(zone, t, instant, offset)
            if change is None:
                return instant
        else:
            # A distant candidate (rare day fields): no need to probe the whole span.
            # Whatever the offsets in between, an instant more than _MAX_SHIFT after t
            # and before the candidate's instant shows a wall time strictly between
            # this wall time and the candidate, and nothing there matches. Only a
            # change soon after t can bring back earlier wall times; without one,
            # resume a safe distance before the candidate.
            change = _first_change(zone, t, t + _MAX_SHIFT, offset)
            if change is None:
                t, inclusive = instant - _MAX_SHIFT, False
                if offset_at(zone, t) != offset:
                    continue
                # Same offset there: the next matching wall time from t is this same
                # candidate, so go straight to checking the span up to it.
                change = _first_change(zone, t, instant, offset)
                if change is None:
                    return instant
        t, inclusive = change, True
    raise StopIteration


def _end_of_repeat(local: datetime, start: datetime, zone: tzinfo) -> datetime:
    """The first naive wall time after the repeated span that ``local`` (``start`` seen in
    ``zone``, second copy of a repeated wall time) belongs to."""
    first = local.replace(fold=0).utcoffset()
    second = local.utcoffset()
    assert first is not None and second is not None and first > second
    # The change happened less than the repeated span's length before start.
    change = _bisect_change(zone, start - (first - second), start, first)
    return (change + first).replace(tzinfo=None)


def fixed_instant(wall: datetime, zone: tzinfo) -> datetime:
    """When a fixed-time wall time fires: its first occurrence, or the end of its gap.

    ``wall`` is naive; the answer is UTC.
    """
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # In a gap, fold=1 applies the offset after the change (an instant before it) and
    # fold=0 the offset before it (an instant after it): the change lies between.
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    change = _first_change(zone, before, first, offset_at(zone, before))
    assert change is not None
    return change


def _first_change(
    zone: tzinfo, start: datetime, end: datetime, offset: timedelta
) -> datetime | None:
    """The first instant in (start, end] whose offset differs from ``offset``, if any.

    Offsets change on whole seconds. Long spans are probed every ``_PROBE_STEP`` so that
    a change and its reversal between the two ends are not missed.
    """
    probe = start
    while True:
        step_end = min(probe + _PROBE_STEP, end)
        if offset_at(zone, step_end) != offset:
            return _bisect_change(zone, probe, step_end, offset)
        if step_end >= end:
            return None
        probe = step_end


def _bisect_change(zone: tzinfo, lo: datetime, hi: datetime, offset: timedelta) -> datetime:
    # Invariant: offset at lo == offset (or lo is the start), offset at hi != offset.
    lo_s = int(lo.timestamp())
    hi_s = int(hi.timestamp())
    if hi.microsecond and hi_s < hi.timestamp():
        hi_s += 1
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if offset_at(zone, datetime.fromtimestamp(mid, UTC)) == offset:
            lo_s = mid
        else:
            hi_s = mid
    return datetime.fromtimestamp(hi_s, UTC)
