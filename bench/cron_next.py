"""How long it takes to compute the next fire instant of a cron expression.

tickwork's adapter (``CronExpression.next_after``) and croniter are timed in the same run,
on the same expressions, zone and start instants. Each call is timed on its own, so the
table reports the median and the 99th percentile of single calls rather than an average.

Fairness notes: both libraries parse the expression once, outside the timed region
(tickwork's ``parse_cron``; one croniter object moved with ``set_current``). croniter is
handed the start already converted to the zone, as its API expects; tickwork is handed a
UTC instant and converts it itself, inside the timed region. ``agree`` is the share of
starts where both libraries give the same instant; where they differ (some DST changes),
tickwork follows the DST rule of docs/semantics.md.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tickwork.domain.cron import parse_cron
from tickwork.domain.zones import get_zone

LIBRARIES = ("cronsim", "croniter", "tzdata")
ZONE = "America/New_York"
EXPRESSIONS = (
    "*/5 * * * *",
    "0 9 * * 1-5",
    "30 2 * * *",
    "0 0 1 * *",
    "*/10 * * * * *",
)
FULL_STARTS = 10_000
QUICK_STARTS = 200
# The DST changes of America/New_York inside the span, and the starts taken around each.
DST_CHANGES = (
    datetime(2026, 3, 8, 7, tzinfo=UTC),
    datetime(2026, 11, 1, 6, tzinfo=UTC),
    datetime(2027, 3, 14, 7, tzinfo=UTC),
    datetime(2027, 11, 7, 6, tzinfo=UTC),
)
DST_RADIUS = timedelta(hours=3)
FULL_DST_STEP = timedelta(seconds=7)
QUICK_DST_STEP = timedelta(minutes=3)
WARMUP = 50
SEED = 20260308
SPAN_START = datetime(2026, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=2 * 365)


def start_instants(count: int) -> list[datetime]:
    """``count`` whole-second instants spread at random over two years, seeded."""
    rng = random.Random(SEED)
    span = int(SPAN.total_seconds())
    return sorted(SPAN_START + timedelta(seconds=rng.randrange(span)) for _ in range(count))


def dst_instants(step: timedelta) -> list[datetime]:
    """Instants every ``step`` within three hours of each DST change, where the next
    firing of most expressions crosses the change."""
    starts = []
    for change in DST_CHANGES:
        t = change - DST_RADIUS
        while t < change + DST_RADIUS:
            starts.append(t)
            t += step
    return starts


def _time_calls(call: Callable[[datetime], datetime], starts: list[datetime]) -> list[int]:
    for start in starts[:WARMUP]:
        call(start)
    gc.collect()
    gc.disable()
    try:
        durations = []
        for start in starts:
            t0 = time.perf_counter_ns()
            call(start)
            durations.append(time.perf_counter_ns() - t0)
    finally:
        gc.enable()
    return durations


def _summary(durations: list[int]) -> dict[str, float]:
    ordered = sorted(durations)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"median_us": statistics.median(ordered) / 1000, "p99_us": p99 / 1000}


def _tickwork(expression: str, starts: list[datetime]) -> tuple[dict[str, float], list[datetime]]:
    parsed = parse_cron(expression)
    zone = get_zone(ZONE)

    def call(start: datetime) -> datetime:
        result = parsed.next_after(start, zone)
        if result is None or result <= start:
            raise AssertionError(f"{expression}: bad next instant {result} after {start}")
        return result

    durations = _time_calls(call, starts)
    return _summary(durations), [call(s) for s in starts]


def _croniter(
    expression: str, starts: list[datetime]
) -> tuple[dict[str, float], list[datetime]] | str:
    try:
        from croniter import croniter  # type: ignore[import-untyped]
    except ImportError:
        return "croniter is not installed"
    zone = get_zone(ZONE)
    local_starts = [s.astimezone(zone) for s in starts]
    itr = croniter(expression, local_starts[0], second_at_beginning=True)

    def call(start: datetime) -> datetime:
        itr.set_current(start, force=True)
        result: datetime = itr.get_next(datetime)
        return result

    durations = _time_calls(call, local_starts)
    return _summary(durations), [call(s).astimezone(UTC) for s in local_starts]


def measure(quick: bool = False) -> dict[str, Any]:
    """Time both libraries on every expression; print a table; return the figures.

    The result maps each start set ("spread", "near DST") to its number of starts and,
    per expression, the median/p99 in µs of each library, the ratio of the medians
    (tickwork ÷ croniter) and the share of starts where both gave the same instant.
    """
    start_sets = {
        "spread": start_instants(QUICK_STARTS if quick else FULL_STARTS),
        "near DST": dst_instants(QUICK_DST_STEP if quick else FULL_DST_STEP),
    }
    results: dict[str, Any] = {"zone": ZONE, "sets": {}}
    for set_name, starts in start_sets.items():
        rows: dict[str, Any] = {}
        for expression in EXPRESSIONS:
            rows[expression] = _compare(expression, starts)
        results["sets"][set_name] = {"starts": len(starts), "expressions": rows}
    print(_table(results))
    return results


def _compare(expression: str, starts: list[datetime]) -> dict[str, Any]:
    ours, our_results = _tickwork(expression, starts)
    row: dict[str, Any] = {"tickwork": ours, "croniter": None, "ratio": None, "agree": None}
    theirs = _croniter(expression, starts)
    if isinstance(theirs, str):
        row["croniter_note"] = theirs
        return row
    figures, their_results = theirs
    row["croniter"] = figures
    row["ratio"] = ours["median_us"] / figures["median_us"]
    same = sum(a == b for a, b in zip(our_results, their_results, strict=True))
    row["agree"] = same / len(starts)
    return row


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _table(results: dict[str, Any]) -> str:
    lines = [
        "| starts | expression | tickwork median µs | tickwork p99 µs | croniter median µs "
        "| croniter p99 µs | tickwork ÷ croniter (median) | agree |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for set_name, group in results["sets"].items():
        for expression, row in group["expressions"].items():
            ours = row["tickwork"]
            theirs = row["croniter"] or {}
            agree = None if row["agree"] is None else row["agree"] * 100
            lines.append(
                f"| {set_name} ({group['starts']}) | `{expression}` "
                f"| {ours['median_us']:.1f} | {ours['p99_us']:.1f} "
                f"| {_fmt(theirs.get('median_us'), '.1f')} "
                f"| {_fmt(theirs.get('p99_us'), '.1f')} | {_fmt(row['ratio'], '.2f')} "
                f"| {_fmt(agree, '.1f')}{'' if agree is None else '%'} |"
            )
    return "\n".join(lines)


def run(quick: bool = False) -> str:
    """The benchmark as a section of ``docs/benchmarks.md``."""
    results = measure(quick)
    notes = {
        row.get("croniter_note")
        for group in results["sets"].values()
        for row in group["expressions"].values()
    } - {None}
    parts = [
        "## Next fire instant of a cron expression",
        "",
        f"Time of one call computing the next fire instant after a start instant, in "
        f"{results['zone']}. Two sets of start instants: *spread*, at random over two "
        f"years; *near DST*, every few seconds within three hours of each of the four DST "
        f"changes in those years, where the next firing crosses the change. Each call is "
        f"timed on its own; both libraries parse the expression once, outside the timing "
        f"(`bench/cron_next.py` explains the set-up). A ratio below 1 means tickwork is "
        f"faster. *agree* is the share of start instants where both libraries return the "
        f"same instant, a check that both computed the same thing; where they differ, "
        f"tickwork follows its DST rule (docs/semantics.md).",
        "",
        _table(results),
    ]
    parts.extend(f"\n{note}." for note in sorted(notes))
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    measure(quick=False)
