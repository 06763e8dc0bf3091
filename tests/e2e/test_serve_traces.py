"""``tickwork serve`` with ``tickwork[otel]`` exporting to an OTLP receiver on loopback,
and without the SDK installed: the same deliveries, no traces."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.otlp import Collector, collector
from tickwork.domain.schedule import format_instant

from .conftest import Api, Receiver, Server, wait_until

pytestmark = pytest.mark.slow
Start = Callable[..., tuple[Server, Api]]


@pytest.fixture
def otlp() -> Iterator[Collector]:
    with collector() as server:
        yield server


OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def documented_setup() -> tuple[list[str], dict[str, str]]:
    """The commands and variables of docs/operations.md's Traces example."""
    text = OPERATIONS.read_text()
    section = text[text.index("\n## Traces\n") :]
    [block] = re.findall(r"```sh\n(.*?)```", section.split("\n## ", 2)[1], re.S)
    lines = block.splitlines()
    env = dict(line.removeprefix("export ").split("=", 1) for line in lines if "export " in line)
    return [line for line in lines if "export " not in line], env


def soon(seconds: float) -> str:
    return format_instant((datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0))


def completed(api: Api, trigger_id: str) -> list[dict[str, object]]:
    items = api.invocations(trigger_id)
    return items if items and items[0]["status"] == "completed" else []


def test_attempts_and_batches_are_exported_and_the_webhook_gets_the_attempts_traceparent(
    tickwork: Start, receiver: Receiver, otlp: Collector
) -> None:
    # As docs/operations.md says, with the collector on loopback (the extra is installed
    # in the test environment, as `pip install 'tickwork[otel]'` installs it).
    commands, env = documented_setup()
    assert commands == ["pip install 'tickwork[otel]'", "tickwork serve"]
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp.url
    server, api = tickwork(**env, OTEL_BSP_SCHEDULE_DELAY="100")
    server.wait_for_line(r"^  traces:    otlp \(service\.name tickwork\)$", 5)
    trigger = api.create_trigger(run_at=soon(1))
    [inv] = wait_until(lambda: completed(api, trigger["id"]), what="the delivery")
    [request] = receiver.received("/ok")
    _, trace_id, span_id, _ = request.headers["traceparent"].split("-")
    spans = wait_until(
        lambda: [s for s in otlp.spans() if s["name"] == "tickwork.attempt"], what="the span"
    )
    [attempt] = spans
    assert (attempt["trace_id"], attempt["span_id"]) == (trace_id, span_id)
    assert attempt["attributes"] == {
        "tickwork.tenant": "acme",
        "tickwork.project": "proj",
        "tickwork.agent": "bot",
        "tickwork.trigger.id": trigger["id"],
        "tickwork.invocation.id": inv["id"],
        "tickwork.attempt": 1,
        "tickwork.origin": "schedule",
        "tickwork.outcome": "completed",
    }
    assert attempt["resource"]["service.name"] == "tickwork"
    assert server.stop() == 0
    names = {s["name"] for s in otlp.spans()}
    assert "tickwork.dispatch" in names
    # The API's requests are FastAPI's own server spans, on the same provider.
    assert any(name.startswith("POST /api/v1/tenants/{tenant}") for name in names)
    lines = [json.loads(line) for line in server.log.read_text().splitlines()]
    [done] = [line for line in lines if line["event"] == "attempt completed"]
    assert (done["trace_id"], done["span_id"]) == (trace_id, span_id)


def test_without_the_sdk_installed_tickwork_serves_as_before_and_says_why_there_are_no_traces(
    tickwork: Start, receiver: Receiver, tmp_path: Path
) -> None:
    # Python imports sitecustomize at start: here it hides the SDK from the process.
    hide = tmp_path / "hide_sdk"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['opentelemetry.sdk'] = None\n")
    server, api = tickwork(PYTHONPATH=str(hide), OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")
    trigger = api.create_trigger(run_at=soon(1))
    wait_until(lambda: completed(api, trigger["id"]), what="the delivery")
    [request] = receiver.received("/ok")
    assert "traceparent" not in {name.lower() for name in request.headers}
    assert server.stop() == 0
    assert not any("traces:" in line for line in server.output)  # all of it, read to the end
    lines = [json.loads(line) for line in server.log.read_text().splitlines()]
    [warning] = [line for line in lines if line["logger"] == "tickwork.tracing"]
    assert warning["level"] == "warning"
    assert "pip install 'tickwork[otel]'" in warning["event"]
    assert all("trace_id" not in line for line in lines)
