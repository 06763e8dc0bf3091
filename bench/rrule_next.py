"""Recurrence rules and calendars (SPEC §16): the worst next-slot time, not the median.

An adversarial corpus of RFC 5545 rules (and a few cron expressions) is combined with
calendars and zones, and the next effective slot (``tickwork.domain.slots.next_slot``) is
timed from many start instants: every few minutes within four hours of each DST change
of 2026-2027, and at random over four centuries. Each call is timed alone, garbage
collection off; building the schedule (validation, where tables are built and COUNT is
resolved) is outside the timing, as it is done once when a trigger is saved. Each call is
made three times: the *first* includes whatever it warms (a year's holiday table, a zone's
transitions), and also any pause the shared machine imposes; the *best* of the three is
the call's own cost. Reported: the slowest call by both measures (target: at most 10 ms),
the 99th percentile, and the worst case; then the twenty slowest calls are timed again,
best of twenty, in elapsed time and in the CPU time of the thread, which tells a call
that lost its three tries to another process on a shared machine from one that is slow
on its own.

The corpus aims at the costly paths: rules that fire once in decades (29 February on a
Monday, every fourth year from a leap year, week 53), strides that do not divide a day
with day filters, whole-period BYSETPOS over large sets, every second of a repeated
hour, wall times that exist only outside daylight-saving gaps, a COUNT of 1000, and
calendars with a holiday calendar, both shift directions and a year-long exclusion.
"""

from __future__ import annotations

import gc
import heapq
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from tickwork.domain import schedule as sched
from tickwork.domain.calendars import parse_calendar
from tickwork.domain.slots import CalendarSchedule, next_slot

LIBRARIES = ("python-dateutil", "holidays", "tzdata")
ZONES = ("America/New_York", "Europe/London", "Australia/Lord_Howe", "Pacific/Apia")
TARGET_MS = 10.0
RETIMED = 20
RETRIES = 20
_ALL_MINUTES = ",".join(str(m) for m in range(60))
_ALL_SECONDS = _ALL_MINUTES
_ALL_HOURS = ",".join(str(h) for h in range(24))
CORPUS = {
    "sparse days": (
        "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO;BYHOUR=9",
        "FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO",
        "FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=SU;BYHOUR=2",
        "FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29;BYHOUR=2;BYMINUTE=30",
        "FREQ=MONTHLY;INTERVAL=7;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO",
        "FREQ=YEARLY;BYWEEKNO=53;BYDAY=TH;BYHOUR=1;BYMINUTE=30",
        "FREQ=WEEKLY;INTERVAL=52;BYMONTH=2;BYDAY=MO",
        "FREQ=DAILY;INTERVAL=365;BYMONTH=1",
    ),
    "strides and phases": (
        "FREQ=MINUTELY;INTERVAL=7",
        "FREQ=HOURLY;INTERVAL=169;BYDAY=MO;BYMONTH=3,11",
        "FREQ=SECONDLY;INTERVAL=86399;BYMONTHDAY=1",
        "FREQ=SECONDLY;INTERVAL=7;BYDAY=SU;BYMONTH=3,4,10,11",
        "FREQ=HOURLY;INTERVAL=36;BYMINUTE=0,30",
    ),
    "large sets, BYSETPOS": (
        "FREQ=YEARLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR="
        + _ALL_HOURS
        + ";BYMINUTE="
        + _ALL_MINUTES
        + ";BYSECOND="
        + _ALL_SECONDS
        + ";BYSETPOS=1,-1,366,-366",
        "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;BYHOUR=2;BYMINUTE=30",
        "FREQ=WEEKLY;BYDAY=SA,SU;BYHOUR=1,2;BYMINUTE=" + _ALL_MINUTES + ";BYSETPOS=1,-1,60",
        "FREQ=MONTHLY;BYDAY=1SU,-1SU,2SU;BYHOUR=2;BYMINUTE=0,15,30,45;BYSETPOS=2,-2",
    ),
    "dense and DST": (
        "FREQ=SECONDLY",
        "FREQ=SECONDLY;BYHOUR=1,2,3",
        "FREQ=DAILY;BYHOUR=2;BYMINUTE=" + _ALL_MINUTES,
        "FREQ=YEARLY;BYMONTH=3,4,9,10,11;BYDAY=1SU,2SU,-1SU;BYHOUR=1,2,3;BYMINUTE=" + _ALL_MINUTES,
        "FREQ=SECONDLY;COUNT=1000",
    ),
}
CRON_CORPUS = ("0 9 * * *", "30 2 * * 0", "* * * * * *", "0 9 29 2 1")
CALENDARS: dict[str, dict[str, Any] | None] = {
    "none": None,
    "US holidays, weekends, next business day": {
        "holidays": "US",
        "weekends": "exclude",
        "shift": "next_business_day",
    },
    "DE-BY, weekends, August, previous business day": {
        "holidays": "DE-BY",
        "weekends": "exclude",
        "exclude_ranges": [["2026-08-01", "2026-08-31"], ["2027-08-01", "2027-08-31"]],
        "shift": "previous_business_day",
    },
    "a year-long exclusion, next business day": {
        "exclude_ranges": [["2026-06-01", "2027-06-01"]],
        "exclude_dates": ["2026-03-08", "2026-11-01", "2027-03-14"],
        "weekends": "exclude",
        "shift": "next_business_day",
    },
}
RULE_START = "2024-02-29T00:00:00"
SEED = 20261201


def _changes(zone: str) -> list[datetime]:
    tz = sched.cron_schedule("* * * * *", zone).zone
    found = []
    t = datetime(2026, 1, 1, tzinfo=UTC)
    while t < datetime(2028, 1, 1, tzinfo=UTC):
        if (t + timedelta(hours=6)).astimezone(tz).utcoffset() != t.astimezone(tz).utcoffset():
            found.append(t + timedelta(hours=3))
        t += timedelta(hours=6)
    return found


def _starts(zone: str, quick: bool) -> list[datetime]:
    step = timedelta(minutes=53) if quick else timedelta(minutes=7)
    starts = []
    for change in _changes(zone):
        t = change - timedelta(hours=4)
        while t < change + timedelta(hours=4):
            starts.append(t)
            t += step
    rng = random.Random(SEED)
    span = int(timedelta(days=365 * 400).total_seconds())
    origin = datetime(2024, 1, 1, tzinfo=UTC)
    starts += [origin + timedelta(seconds=rng.randrange(span)) for _ in range(5 if quick else 60)]
    return starts


def _schedules(zone: str) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for kind, rules in CORPUS.items():
        for rule in rules:
            found.append((kind, sched.rrule_schedule(rule, RULE_START, zone)))
    for expression in CRON_CORPUS:
        found.append(("cron", sched.cron_schedule(expression, zone)))
    return found


def measure(quick: bool) -> dict[str, Any]:
    rows: dict[str, list[float]] = {}
    cold: dict[str, list[float]] = {}
    worst: tuple[float, str] = (0.0, "")
    # The slowest calls, kept to be timed again: on a shared machine a few calls lose
    # all three tries to another process, and timing them again tells that apart from
    # a call that is slow on its own.
    slowest: list[tuple[float, int, Any, datetime, str]] = []
    calls = 0
    for zone in ZONES:
        starts = _starts(zone, quick)
        for kind, base in _schedules(zone):
            for calendar_name, value in CALENDARS.items():
                target = base if value is None else CalendarSchedule(base, parse_calendar(value))
                key = f"{kind} / calendar: {calendar_name}"
                durations = rows.setdefault(key, [])
                firsts = cold.setdefault(key, [])
                gc.disable()
                try:
                    for start in starts:
                        times = []
                        for _ in range(3):
                            began = time.perf_counter()
                            next_slot(target, start)
                            times.append((time.perf_counter() - began) * 1e3)
                        firsts.append(times[0])
                        elapsed = min(times)
                        durations.append(elapsed)
                        calls += 1
                        if (
                            elapsed > worst[0]
                            or len(slowest) < RETIMED
                            or (elapsed > slowest[0][0])
                        ):
                            text = str(
                                getattr(getattr(base, "rule", None), "text", None)
                                or getattr(base.expression, "source", "")
                            )
                            where = (
                                f"`{text[:70]}` in {zone}, calendar {calendar_name}, after "
                                f"{sched.format_instant(start)}"
                            )
                            if elapsed > worst[0]:
                                worst = (elapsed, where)
                            heapq.heappush(slowest, (elapsed, calls, target, start, where))
                            if len(slowest) > RETIMED:
                                heapq.heappop(slowest)
                finally:
                    gc.enable()
    retimed: tuple[float, str] = (0.0, "")
    cpu_worst = 0.0
    gc.disable()
    try:
        for _, _, target, start, where in slowest:
            best = cpu = float("inf")
            for _ in range(RETRIES):
                began, began_cpu = time.perf_counter(), time.thread_time()
                next_slot(target, start)
                best = min(best, (time.perf_counter() - began) * 1e3)
                cpu = min(cpu, (time.thread_time() - began_cpu) * 1e3)
            if best > retimed[0]:
                retimed = (best, where)
            cpu_worst = max(cpu_worst, cpu)
    finally:
        gc.enable()
    return {
        "rows": rows,
        "cold": cold,
        "worst": worst,
        "calls": calls,
        "retimed": retimed,
        "cpu": cpu_worst,
    }


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


def run(quick: bool = False) -> str:
    results = measure(quick)
    worst_ms, where = results["worst"]
    lines = [
        "## Recurrence rules and calendars: worst next slot",
        "",
        f"Next effective slot (rule or cron, DST rule, calendar with skips and shifts) over "
        f"an adversarial corpus in {', '.join(ZONES)}; {results['calls']} calls, each timed "
        f"alone (`bench/rrule_next.py` lists the corpus). Target: the slowest call at most "
        f"{TARGET_MS:.0f} ms.",
        "",
        "| rules / calendar | calls | max ms (best of 3) | p99 ms (best of 3) "
        "| max ms (first call) |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, durations in results["rows"].items():
        lines.append(
            f"| {key} | {len(durations)} | {max(durations):.2f} | {_pct(durations, 99):.3f} "
            f"| {max(results['cold'][key]):.2f} |"
        )
    verdict = "within" if worst_ms <= TARGET_MS else "OVER"
    coldest = max(max(v) for v in results["cold"].values())
    retimed_ms, retimed_where = results["retimed"]
    lines += [
        "",
        f"Slowest call (best of 3): {worst_ms:.2f} ms ({verdict} the target): {where}. "
        f"Slowest first call: {coldest:.2f} ms. The {RETIMED} slowest calls timed again, "
        f"best of {RETRIES}: the slowest is {retimed_ms:.2f} ms "
        f"({'within' if retimed_ms <= TARGET_MS else 'OVER'} the target), {retimed_where}; "
        f"in CPU time of its thread (what another process cannot add), the slowest of them "
        f"is {results['cpu']:.2f} ms.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run(quick=False))
