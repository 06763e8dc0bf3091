"""OpenTelemetry (``tickwork[otel]``): a span per dispatch batch and per attempt, the
attempt's ``traceparent`` on its webhook call, trace ids in log lines; and tickwork as
it was without the SDK or the API installed."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from importlib import metadata
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tests.integration.targets.capture import CaptureServer, capture_server
from tests.logs import captured_logs
from tests.otlp import Collector, collector
from tickwork import tracing
from tickwork.errors import ValidationError
from tickwork.services import resources, triggers
from tickwork.services.context import Context

from .conftest import World

Make = Callable[..., Coroutine[Any, Any, World]]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout=30))


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """tickwork's spans, kept in memory by the SDK's own exporter."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)
    yield exporter
    tracing.use(None)
    provider.shutdown()


@pytest.fixture
def receiver() -> Iterator[CaptureServer]:
    with capture_server() as server:
        yield server


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def test_spans_cover_the_dispatch_batch_and_each_attempt_and_reach_the_webhook(
    world: Make, ctx: Context, spans: InMemorySpanExporter, receiver: CaptureServer
) -> None:
    async def scenario() -> None:
        ctx.settings = ctx.settings.with_(allowed_target_networks=("127.0.0.0/8",))
        w = await world()
        resources.put_agent(
            ctx, "acme", "proj", "main", "hook", None, {"type": "webhook", "url": receiver.url}
        )
        at = T0 + timedelta(seconds=30)
        hook = triggers.create_trigger(ctx, "acme", "proj", "hook", {"name": "h", "run_at": at})
        python = w.trigger(run_at=at)
        w.recorder.fail_times = 1
        w.advance(30)
        with captured_logs() as logs:
            assert await w.dispatch() == 2
            await w.work()
            w.advance(600)  # the python trigger's retry
            await w.work()

        [batch] = named(spans, tracing.DISPATCH_SPAN)
        assert batch.attributes is not None
        assert dict(batch.attributes) == {
            "tickwork.triggers": 2,
            "tickwork.created": 2,
            "tickwork.missed": 0,
            "tickwork.skipped": 0,
            "tickwork.disabled": 0,
        }
        attempts = named(spans, tracing.ATTEMPT_SPAN)
        by_trigger: dict[str, list[ReadableSpan]] = {}
        for span in attempts:
            assert span.attributes is not None
            by_trigger.setdefault(str(span.attributes["tickwork.trigger.id"]), []).append(span)
        [delivered] = by_trigger[hook.id]
        assert delivered.kind == SpanKind.INTERNAL
        [inv] = w.invocations(hook.id)
        assert dict(delivered.attributes or {}) == {
            "tickwork.tenant": "acme",
            "tickwork.project": "proj",
            "tickwork.agent": "hook",
            "tickwork.trigger.id": hook.id,
            "tickwork.invocation.id": inv.id,
            "tickwork.attempt": 1,
            "tickwork.origin": "schedule",
            "tickwork.outcome": "completed",
        }
        outcomes = [
            (s.attributes or {})["tickwork.outcome"]
            for s in sorted(by_trigger[python.id], key=lambda s: s.start_time or 0)
        ]
        assert outcomes == ["retry", "completed"]
        # Each attempt is a trace of its own, and the webhook call carries it.
        context = delivered.get_span_context()
        assert context is not None
        version, trace_id, span_id, flags = receiver.last().headers["traceparent"].split("-")
        assert version == "00"
        assert int(flags, 16) & 1  # sampled
        assert (int(trace_id, 16), int(span_id, 16)) == (context.trace_id, context.span_id)
        assert len({s.context.trace_id for s in attempts if s.context}) == 3
        # Log lines written inside a span carry its ids.
        [completed] = [
            line for line in logs.events("attempt completed") if line["invocation"] == inv.id
        ]
        assert completed["trace_id"] == trace_id
        assert completed["span_id"] == span_id
        [batch_line] = logs.events("dispatch batch")
        assert batch.context is not None
        assert batch_line["trace_id"] == f"{batch.context.trace_id:032x}"
        await w.node.stop()

    run(scenario())


def test_a_python_handler_runs_inside_its_attempts_span(
    world: Make, ctx: Context, spans: InMemorySpanExporter
) -> None:
    seen: list[Any] = []

    def peek(call: Any) -> None:  # a plain handler: it runs in a worker thread
        seen.append(trace.get_current_span().get_span_context())

    async def scenario() -> None:
        w = await world()
        w.node.registry.register("peek", peek)
        w.node.process = None  # recorded again, with the new handler
        await w.node.register()
        resources.put_agent(
            ctx, "acme", "proj", "main", "peeker", None, {"type": "python", "handler": "peek"}
        )
        at = T0 + timedelta(seconds=1)
        triggers.create_trigger(ctx, "acme", "proj", "peeker", {"name": "p", "run_at": at})
        w.advance(1)
        await w.dispatch()
        await w.work()
        [attempt] = named(spans, tracing.ATTEMPT_SPAN)
        assert seen == [attempt.get_span_context()]

    run(scenario())


def test_the_otel_extra_brings_the_sdk_and_the_otlp_exporter() -> None:
    requires = metadata.requires("tickwork") or []
    for package in (
        "opentelemetry-api",
        "opentelemetry-sdk",
        "opentelemetry-exporter-otlp-proto-http",
    ):
        assert any(
            r.startswith(package) and r.replace('"', "'").endswith("extra == 'otel'")
            for r in requires
        )


def test_an_attempt_that_raises_ends_its_span_with_the_outcome(
    world: Make, spans: InMemorySpanExporter
) -> None:
    async def scenario() -> None:
        w = await world()
        w.recorder.permanent = True
        w.trigger(run_at=T0 + timedelta(seconds=1))
        w.advance(1)
        await w.dispatch()
        await w.work()
        [attempt] = named(spans, tracing.ATTEMPT_SPAN)
        assert (attempt.attributes or {})["tickwork.outcome"] == "failed"
        assert attempt.status.status_code == StatusCode.UNSET

    run(scenario())


def test_without_tracing_there_are_no_spans_no_traceparent_and_no_trace_ids(
    world: Make, ctx: Context, receiver: CaptureServer
) -> None:
    async def scenario() -> None:
        ctx.settings = ctx.settings.with_(allowed_target_networks=("127.0.0.0/8",))
        w = await world()
        resources.put_agent(
            ctx, "acme", "proj", "main", "hook", None, {"type": "webhook", "url": receiver.url}
        )
        at = T0 + timedelta(seconds=1)
        triggers.create_trigger(ctx, "acme", "proj", "hook", {"name": "h", "run_at": at})
        w.advance(1)
        with captured_logs() as logs:
            await w.dispatch()
            await w.work()
        assert "traceparent" not in receiver.last().headers
        assert all("trace_id" not in line for line in logs.lines())
        await w.node.stop()

    run(scenario())


# --- set up from the OTEL_* variables ---------------------------------------------------


def test_nothing_is_set_up_until_an_exporter_or_endpoint_is_named() -> None:
    assert tracing.configure_from_env({}) is None
    assert tracing.configure_from_env({"OTEL_SERVICE_NAME": "cron"}) is None
    assert tracing.current_ids() is None


def test_an_exporter_that_is_not_installed_is_refused_naming_the_installed_ones() -> None:
    with pytest.raises(ValidationError) as caught:
        tracing.configure_from_env({"OTEL_TRACES_EXPORTER": "zipkin"})
    assert str(caught.value) == (
        "OTEL_TRACES_EXPORTER: no span exporter 'zipkin' is installed "
        "(installed: console, none, otlp, otlp_proto_http)"
    )


SETUP = """
import json
from opentelemetry import trace
from tickwork import tracing

described = tracing.configure_from_env()
with tracing.span(tracing.ATTEMPT_SPAN, tenant="acme", invocation_id="inv_1"):
    pass
provider = trace.get_tracer_provider()
print(json.dumps({
    "described": described,
    "resource": dict(getattr(provider, "resource", None).attributes) if described else {},
    "sampler": type(getattr(provider, "sampler", None)).__name__,
}))
getattr(provider, "shutdown", lambda: None)()  # exports what is left
"""


def _run(code: str, **env: str) -> tuple[dict[str, Any], str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    first, _, rest = done.stdout.partition("\n")
    result: dict[str, Any] = json.loads(first)
    return result, rest


@pytest.fixture
def otlp() -> Iterator[Collector]:
    with collector() as server:
        yield server


def test_spans_go_to_the_otlp_endpoint_with_the_resource_the_variables_name(
    otlp: Collector,
) -> None:
    got, _ = _run(
        SETUP,
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp.url,
        OTEL_SERVICE_NAME="cron-prod",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment=prod",
    )
    assert got["described"] == "otlp (service.name cron-prod)"
    assert got["sampler"] == "ParentBased"  # the SDK's default: parent-based, always on
    assert [path for path, _ in otlp.requests] == ["/v1/traces"]
    [span] = otlp.spans()
    assert span["resource"]["service.name"] == "cron-prod"
    assert span["resource"]["deployment.environment"] == "prod"
    assert span["name"] == "tickwork.attempt"
    assert span["attributes"] == {"tickwork.tenant": "acme", "tickwork.invocation.id": "inv_1"}


def test_the_exporter_and_sampler_variables_are_the_sdks() -> None:
    got, printed = _run(SETUP, OTEL_TRACES_EXPORTER="console", OTEL_TRACES_SAMPLER="always_on")
    assert got["described"] == "console (service.name tickwork)"
    assert got["sampler"] == "StaticSampler"
    assert json.loads(printed)["name"] == "tickwork.attempt"
    got, printed = _run(SETUP, OTEL_TRACES_EXPORTER="console", OTEL_TRACES_SAMPLER="always_off")
    assert printed == ""
    got, printed = _run(SETUP, OTEL_TRACES_EXPORTER="none")
    assert (got["described"], printed) == ("no exporter (service.name tickwork)", "")
    got, printed = _run(SETUP, OTEL_SDK_DISABLED="true", OTEL_TRACES_EXPORTER="console")
    assert (got["described"], printed) == (None, "")


WITHOUT_OPENTELEMETRY = """
import json, sys
sys.modules["opentelemetry"] = None  # neither the API nor the SDK installed

from tickwork import tracing
assert not tracing.available()
assert tracing.configure_from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}) is None
with tracing.span(tracing.ATTEMPT_SPAN, tenant="acme") as span:
    assert span is None
    headers = {}
    tracing.inject(headers)
    assert headers == {} and tracing.current_ids() is None
print(json.dumps({"ok": True}))
"""


def test_the_tracing_module_does_nothing_without_opentelemetry_at_all() -> None:
    assert _run(WITHOUT_OPENTELEMETRY) == ({"ok": True}, "")
