"""Process metrics in the Prometheus text format (``GET /metrics``).

Counters, gauges and histograms live in this process; each replica exposes its own, and
Prometheus sums them.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterable

_LOCK = threading.Lock()


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{v}"'.replace("\n", " ") for k, v in sorted(labels.items()))
    return "{" + inner + "}"


class Counter:
    def __init__(self, name: str, help_text: str) -> None:
        self.name, self.help = name, help_text
        self.values: dict[tuple[tuple[str, str], ...], float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with _LOCK:
            self.values[key] = self.values.get(key, 0.0) + amount

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} counter"
        for key, value in sorted(self.values.items()):
            yield f"{self.name}{_labels(dict(key))} {value:g}"


class Gauge:
    def __init__(self, name: str, help_text: str, read: Callable[[], float] | None = None) -> None:
        self.name, self.help = name, help_text
        self.value = 0.0
        self.read = read

    def set(self, value: float) -> None:
        self.value = value

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} gauge"
        yield f"{self.name} {(self.read() if self.read else self.value):g}"


class Histogram:
    def __init__(self, name: str, help_text: str, buckets: Iterable[float]) -> None:
        self.name, self.help = name, help_text
        self.buckets = sorted(buckets)
        self.counts = [0] * (len(self.buckets) + 1)
        self.total = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        with _LOCK:
            self.counts[bisect.bisect_left(self.buckets, value)] += 1
            self.total += value
            self.n += 1

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        running = 0
        for bound, count in zip(self.buckets, self.counts, strict=False):
            running += count
            yield f'{self.name}_bucket{{le="{bound:g}"}} {running}'
        yield f'{self.name}_bucket{{le="+Inf"}} {self.n}'
        yield f"{self.name}_sum {self.total:g}"
        yield f"{self.name}_count {self.n}"


_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)

dispatched = Counter(
    "tickwork_dispatched_invocations_total", "Invocations created by the scheduler."
)
missed = Counter("tickwork_missed_slots_total", "Slots recorded as missed (catch-up policy).")
skipped = Counter("tickwork_skipped_slots_total", "Slots recorded as skipped (overlap policy).")
disabled = Counter(
    "tickwork_triggers_disabled_total", "Triggers disabled because their schedule failed."
)
ticks = Counter("tickwork_scheduler_ticks_total", "Scheduler wake-ups.")
attempts = Counter("tickwork_attempts_total", "Attempts ended, by outcome.")
lost = Counter("tickwork_lost_attempts_total", "Attempts whose worker stopped renewing its lease.")
fire_lag = Histogram(
    "tickwork_fire_lag_seconds",
    "Start of an invocation's first attempt minus its scheduled time.",
    _SECONDS,
)
attempt_seconds = Histogram(
    "tickwork_attempt_duration_seconds", "Duration of target calls.", _SECONDS
)
scheduler_active = Gauge("tickwork_scheduler_active", "1 while this process holds the lease.")
inflight = Gauge("tickwork_worker_inflight", "Attempts running in this process.")
superseded = Gauge(
    "tickwork_deployment_superseded", "1 while a newer deployment has taken over (draining)."
)

ALL = (
    dispatched,
    missed,
    skipped,
    disabled,
    ticks,
    attempts,
    lost,
    fire_lag,
    attempt_seconds,
    scheduler_active,
    inflight,
    superseded,
)


def render() -> str:
    lines: list[str] = []
    for metric in ALL:
        lines.extend(metric.render())
    return "\n".join(lines) + "\n"
