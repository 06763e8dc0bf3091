"""``GET /metrics``: real Prometheus parsers and ``promtool`` accept it, every documented
metric is there, counters keep exact values, and the backlog gauges read the database."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from tests.api.helpers import Scope
from tickwork import metrics
from tickwork.services import execution
from tickwork.services.context import Context
from tickwork.testing import FakeClock

DOCS = Path(__file__).resolve().parents[2] / "docs"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: TestClient, accept: str | None = None) -> tuple[str, str]:
    response = client.get("/metrics", headers={"Accept": accept} if accept else {})
    assert response.status_code == 200, response.text
    return response.text, response.headers["content-type"]


def samples(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def documented_names(doc: str) -> set[str]:
    """Every metric name a page of the docs mentions."""
    return set(re.findall(r"`(tickwork_[a-z_]+)", (DOCS / doc).read_text()))


def test_metrics_is_the_prometheus_text_format_and_needs_no_key(client: TestClient) -> None:
    text, content_type = scrape(client)
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["tickwork_attempts"].type == "counter"
    assert families["tickwork_fire_lag_seconds"].type == "histogram"
    assert families["tickwork_scheduler_active"].type == "gauge"
    assert families["tickwork_invocations_pending"].type == "gauge"


@pytest.mark.parametrize("doc", ["operations.md", "metrics.md"])
def test_every_documented_metric_is_exposed(client: TestClient, doc: str) -> None:
    names = documented_names(doc)
    assert len(names) >= 15, names  # the doc's list was found
    exposed = {name for name, _ in samples(scrape(client)[0])}
    exposed |= {f.name for f in text_string_to_metric_families(scrape(client)[0])}
    assert names <= exposed, names - exposed


def test_every_attempt_outcome_has_a_series_from_the_start(client: TestClient) -> None:
    found = samples(scrape(client)[0])
    outcomes = {
        dict(labels)["outcome"] for name, labels in found if name == "tickwork_attempts_total"
    }
    assert outcomes >= {"completed", "failed", "retry", "timeout", "cancelled"}


def test_process_and_platform_collectors_are_included(client: TestClient) -> None:
    names = {name for name, _ in samples(scrape(client)[0])}
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "python_info"} <= names


def test_counters_past_a_million_show_exact_values(client: TestClient) -> None:
    key = ("tickwork_dispatched_invocations_total", ())
    before = samples(scrape(client)[0])[key]
    metrics.dispatched.inc(1_000_000)
    first = samples(scrape(client)[0])[key]
    metrics.dispatched.inc()
    second = samples(scrape(client)[0])[key]
    assert first - before == 1_000_000
    assert second - first == 1  # a 6-digit rendering would not move for 10 increments
    count = ("tickwork_attempt_duration_seconds_sum", ())
    sum_before = samples(scrape(client)[0])[count]
    metrics.attempt_seconds.observe(370370.367)
    assert samples(scrape(client)[0])[count] - sum_before == pytest.approx(370370.367, abs=1e-6)


def test_openmetrics_is_served_to_a_scraper_that_asks_for_it(client: TestClient) -> None:
    text, content_type = scrape(client, "application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    # prometheus_client's OpenMetrics parser carries no annotations (its text parser does).
    families = {f.name for f in openmetrics_families(text)}  # type: ignore[no-untyped-call]
    assert {"tickwork_attempts", "tickwork_invocations_pending"} <= families
    assert text.endswith("# EOF\n")


def _backlog(client: TestClient) -> tuple[float, float, float]:
    found = samples(scrape(client)[0])
    return (
        found[("tickwork_invocations_pending", ())],
        found[("tickwork_invocations_running", ())],
        found[("tickwork_oldest_pending_age_seconds", ())],
    )


def test_the_backlog_gauges_count_the_database_work(
    client: TestClient,
    api: TestClient,
    scope: Scope,
    ctx: Context,
    clock: FakeClock,
    make_trigger: Callable[..., dict[str, Any]],
) -> None:
    assert _backlog(client) == (0, 0, 0)
    trigger = make_trigger()
    for _ in range(3):
        assert api.post(scope.trigger(trigger["id"]) + "/run").status_code == 202
    clock.advance(30)
    assert _backlog(client) == (3, 0, 30)
    # A claimed invocation runs; the oldest still pending waited as long.
    assert len(execution.claim_jobs(ctx, "worker-1", 1)) == 1
    # Read at most once a second: the same answer until then.
    assert _backlog(client) == (3, 0, 30)
    clock.advance(1)
    assert _backlog(client) == (2, 1, 31)


def test_the_backlog_gauges_are_left_out_while_the_database_does_not_answer(
    client: TestClient, ctx: Context, clock: FakeClock
) -> None:
    ctx.db.engine.dispose()
    original = ctx.db.read

    def unreachable() -> Any:
        raise OSError("the database is gone")

    ctx.db.read = unreachable  # type: ignore[method-assign]
    try:
        clock.advance(5)
        found = samples(scrape(client)[0])
        assert ("tickwork_invocations_pending", ()) not in found
        assert ("tickwork_scheduler_ticks_total", ()) in found
    finally:
        ctx.db.read = original  # type: ignore[method-assign]


# --- promtool ------------------------------------------------------------------------------

PROMTOOL_CACHE = Path(sys.prefix) / "tools" / "promtool"


def _run(command: list[str], cwd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=240)


def promtool() -> str:
    """promtool from PATH, else from Debian's ``prometheus`` package: only the binary is
    unpacked (into the virtualenv's tools/), not the server and its dependencies."""
    found = shutil.which("promtool")
    if found:
        return found
    if PROMTOOL_CACHE.exists():
        return str(PROMTOOL_CACHE)
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
        pytest.skip("promtool is not installed and there is no apt-get to fetch it with")
    with tempfile.TemporaryDirectory() as tmp:
        fetched = _run(["apt-get", "download", "prometheus"], tmp)
        if fetched.returncode != 0:  # package lists missing on a fresh machine
            _run(["apt-get", "update", "-q"], tmp)
            fetched = _run(["apt-get", "download", "prometheus"], tmp)
        if fetched.returncode != 0:
            pytest.skip(f"promtool unavailable: apt-get download prometheus: {fetched.stderr}")
        [deb] = Path(tmp).glob("prometheus_*.deb")
        unpacked = _run(["dpkg-deb", "-x", str(deb), "root"], tmp)
        assert unpacked.returncode == 0, unpacked.stderr
        PROMTOOL_CACHE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(tmp) / "root" / "usr" / "bin" / "promtool", PROMTOOL_CACHE)
    return str(PROMTOOL_CACHE)


def test_promtool_accepts_the_metrics(client: TestClient, make_trigger: Any) -> None:
    make_trigger()
    text, _ = scrape(client)
    checked = subprocess.run(
        [promtool(), "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    # promtool exits non-zero on an error and prints lint problems (bad names, missing
    # help, counters without _total) even when it exits 0: both must be clean.
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "", checked.stdout
    assert checked.stderr.strip() == "", checked.stderr


def test_the_backlog_is_read_with_one_query_per_gauge(
    client: TestClient, ctx: Context, clock: FakeClock
) -> None:
    from sqlalchemy import event

    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    clock.advance(timedelta(seconds=2).total_seconds())
    event.listen(ctx.db.engine, "before_cursor_execute", record)
    try:
        scrape(client)
        scrape(client)  # cached: no more queries
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", record)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 3, statements
