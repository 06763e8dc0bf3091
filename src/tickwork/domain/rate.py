"""How fast a schedule fires, for the tenant quota on firing rate (SPEC §9).

A schedule's rate is counted in *slots per day*, an exact integer: the number of times
it fires on a day it fires at all. For a cron expression that is the number of values
of its second, minute and hour fields multiplied (``* * * * * *`` = 86,400,
``*/15 * * * *`` = 96, ``0 9 * * 1-5`` = 1); the day fields are ignored, so a
Monday-only schedule counts what it fires on Mondays. A quota in slots per minute is a
rate per day divided by 1440 (``* * * * * *`` = 60 per minute, ``0 9 * * *`` = 1/1440).
Days with a DST change are counted as 24-hour days.

A recurrence rule counts the same way: the wall times it names on its busiest day.

A one-time trigger counts 0: it fires once in its whole life, so it adds nothing to a
sustained rate; the quota on the number of triggers bounds how many there can be.

Everything here is a pure function of the schedule.
"""

from __future__ import annotations

from tickwork.domain.cron import fires_per_day
from tickwork.domain.schedule import OnceSchedule, RRuleSchedule
from tickwork.domain.slots import CalendarSchedule, Timing

__all__ = ["MAX_SLOTS_PER_DAY", "MINUTES_PER_DAY", "slots_per_day"]

MINUTES_PER_DAY = 1440
MAX_SLOTS_PER_DAY = 86_400  # every second


def slots_per_day(schedule: Timing) -> int:
    """The schedule's firings on a day it fires (0 for a one-time schedule). A calendar
    changes nothing: a shift moves slots, it never adds one."""
    if isinstance(schedule, CalendarSchedule):
        schedule = schedule.schedule
    if isinstance(schedule, OnceSchedule):
        return 0
    if isinstance(schedule, RRuleSchedule):
        return schedule.rule.fires_per_day()
    return fires_per_day(schedule.expression)
