"""The 24-hour load chart: slots per minute across the project, as SVG drawn on the
server (no script), so herds at popular minutes stand out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

HEIGHT = 300  # the bars' area, in SVG units; one unit of width per minute
TICK_MINUTES = 180


@dataclass(frozen=True)
class Bar:
    x: int
    y: float
    height: float
    count: int
    label: str  # "09:00 UTC: 12 slots", the bar's title


@dataclass(frozen=True)
class Tick:
    x: int
    label: str


@dataclass(frozen=True)
class LoadChart:
    start: datetime
    width: int
    height: int
    peak: int
    total: int
    bars: list[Bar]
    ticks: list[Tick]
    busiest: list[tuple[str, int]]  # the busiest minutes, for the table beside the chart

    @property
    def summary(self) -> str:
        if not self.total:
            return "No slots in the next 24 hours."
        top = ", ".join(f"{at} ({n})" for at, n in self.busiest[:3])
        return (
            f"{self.total} slots in the next 24 hours; at most {self.peak} in one minute. "
            f"Busiest minutes (UTC): {top}."
        )


def _minute(start: datetime, i: int) -> str:
    return f"{start + timedelta(minutes=i):%H:%M}"


def load_chart(start: datetime, counts: list[int]) -> LoadChart:
    peak = max(counts, default=0)
    bars = []
    for i, n in enumerate(counts):
        if n:
            h = HEIGHT * n / peak
            label = f"{_minute(start, i)} UTC: {n} slot{'s' if n != 1 else ''}"
            bars.append(Bar(i, HEIGHT - h, h, n, label))
    # Ticks on whole hours of UTC, every three hours.
    first = (-(start.hour * 60 + start.minute)) % TICK_MINUTES
    ticks = [Tick(x, _minute(start, x)) for x in range(first, len(counts), TICK_MINUTES)]
    ranked = sorted(range(len(counts)), key=lambda i: (-counts[i], i))
    busiest = [(_minute(start, i), counts[i]) for i in ranked[:10] if counts[i]]
    return LoadChart(start, len(counts), HEIGHT, peak, sum(counts), bars, ticks, busiest)
