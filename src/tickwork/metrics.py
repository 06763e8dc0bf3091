"""Metrics in the Prometheus exposition formats (``GET /metrics``), on ``prometheus-client``.

Counters, gauges and histograms live in this process (``prometheus_client``'s default
registry, with its process, platform and garbage-collector collectors); each replica
exposes its own, and Prometheus sums them. The backlog gauges are different: they are
read from the database at scrape time, so every replica reports the same database-wide
values (aggregate them with ``max``, not ``sum``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

__all__ = ["OUTCOMES", "Backlog", "exposition"]

# No ``*_created`` series beside every counter and histogram: they double the series
# and nothing of tickwork's alerting needs them.
disable_created_metrics()  # type: ignore[no-untyped-call]

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
# Every value the ``outcome`` label of tickwork_attempts_total takes; each series exists
# (at 0) from the start, so a rate over it is defined before the first such attempt.
OUTCOMES = ("completed", "failed", "retry", "timeout", "cancelled")

dispatched = Counter(
    "tickwork_dispatched_invocations_total", "Invocations created by the scheduler."
)
missed = Counter("tickwork_missed_slots_total", "Slots recorded as missed (catch-up policy).")
skipped = Counter("tickwork_skipped_slots_total", "Slots recorded as skipped (overlap policy).")
disabled = Counter(
    "tickwork_triggers_disabled_total", "Triggers disabled because their schedule failed."
)
ticks = Counter("tickwork_scheduler_ticks_total", "Scheduler wake-ups.")
attempts = Counter(
    "tickwork_attempts_total",
    "Attempts ended, by outcome: completed, failed (no retry left, or a permanent error), "
    "retry (failed, will be retried), timeout, cancelled (stopped: invocation cancelled or "
    "lease lost).",
    ["outcome"],
)
# Each outcome's child, looked up once: an attempt's end counts without a label lookup.
attempts_by_outcome = {_outcome: attempts.labels(outcome=_outcome) for _outcome in OUTCOMES}
lost = Counter("tickwork_lost_attempts_total", "Attempts whose worker stopped renewing its lease.")
fire_lag = Histogram(
    "tickwork_fire_lag_seconds",
    "Start of an invocation's first attempt minus its scheduled time.",
    buckets=_SECONDS,
)
attempt_seconds = Histogram(
    "tickwork_attempt_duration_seconds", "Duration of target calls.", buckets=_SECONDS
)
scheduler_active = Gauge(
    "tickwork_scheduler_active", "1 while this process holds the scheduler lease."
)
inflight = Gauge("tickwork_worker_inflight", "Attempts running in this process.")
superseded = Gauge(
    "tickwork_deployment_superseded", "1 while a newer deployment has taken over (draining)."
)

# Retention (SPEC §11), counted by the active scheduler that prunes.
RETAINED_TABLES = ("invocations", "invocation_attempts", "audit_events")
pruned = Counter(
    "tickwork_history_pruned_rows_total",
    "Rows deleted by retention, by table: invocations, invocation_attempts, audit_events.",
    ["table"],
)
for _table in RETAINED_TABLES:
    pruned.labels(table=_table)
oldest_retained = Gauge(
    "tickwork_history_oldest_retained_age_seconds",
    "Age of the oldest finished invocation (table=invocations) and audit event "
    "(table=audit_events) kept, as of the active scheduler's last retention pass; 0 when "
    "there is none.",
    ["table"],
)
for _table in ("invocations", "audit_events"):
    oldest_retained.labels(table=_table)


@dataclass(frozen=True)
class Backlog:
    """The database's queue of work, as the backlog gauges show it."""

    pending: int
    running: int
    # Seconds since the longest-waiting claimable invocation became claimable (its
    # not_before); 0 when no pending invocation is due.
    oldest_pending_age_seconds: float


def _backlog_families(backlog: Backlog) -> Iterable[Metric]:
    yield GaugeMetricFamily(
        "tickwork_invocations_pending",
        "Pending invocations in the database (due, or waiting for a retry delay or jitter).",
        value=backlog.pending,
    )
    yield GaugeMetricFamily(
        "tickwork_invocations_running",
        "Running invocations in the database, on every worker.",
        value=backlog.running,
    )
    yield GaugeMetricFamily(
        "tickwork_oldest_pending_age_seconds",
        "How long the longest-waiting due invocation has waited for a worker (now minus its "
        "not_before; 0 when none is due).",
        value=backlog.oldest_pending_age_seconds,
    )


class _Scrape:
    """What one scrape shows: this process's registry, then the backlog (if it could be
    read: a database that does not answer leaves the backlog gauges out)."""

    def __init__(self, backlog: Backlog | None) -> None:
        self._backlog = backlog

    def collect(self) -> Iterable[Metric]:
        yield from REGISTRY.collect()
        if self._backlog is not None:
            yield from _backlog_families(self._backlog)


def exposition(
    accept: str | None, backlog: Callable[[], Backlog | None] | None = None
) -> tuple[bytes, str]:
    """The metrics as bytes and their content type, in the format ``accept`` asks for
    (OpenMetrics for a Prometheus that asks for it, else the text format 0.0.4)."""
    encode, content_type = choose_encoder(accept or "")
    return encode(_Scrape(backlog() if backlog is not None else None)), content_type
