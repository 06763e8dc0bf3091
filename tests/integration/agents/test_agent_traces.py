"""With tracing on, the a2a and openai targets' calls carry the attempt's traceparent,
as webhook calls do."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tickwork import tracing
from tickwork.storage.records import COMPLETED

from .conftest import World
from .servers import A2AAgent, ModelServer

Make = Callable[[], Coroutine[Any, Any, World]]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)
    yield exporter
    tracing.use(None)
    provider.shutdown()


def traceparent_of(exporter: InMemorySpanExporter) -> str:
    [attempt] = [s for s in exporter.get_finished_spans() if s.name == tracing.ATTEMPT_SPAN]
    context = attempt.get_span_context()
    assert context is not None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def deliver(world: Make, target: dict[str, Any]) -> None:
    async def scenario() -> None:
        w = await world()
        w.agent("helper", target)
        t = w.trigger("helper", run_at=T0 + timedelta(seconds=5), message_template="hello")
        await w.run_next(5)
        [inv] = w.invocations(t.id)
        await w.node.stop()
        assert inv.status == COMPLETED, inv.last_error

    asyncio.run(asyncio.wait_for(scenario(), timeout=20))


def test_an_a2a_agent_gets_the_attempts_traceparent_on_every_request(
    world: Make, agent: A2AAgent, spans: InMemorySpanExporter
) -> None:
    deliver(world, {"type": "a2a", "url": agent.url})
    expected = traceparent_of(spans)
    assert agent.recorder.requests
    assert {seen.headers.get("traceparent") for seen in agent.recorder.requests} == {expected}


def test_a_model_gets_the_attempts_traceparent(
    world: Make, models: ModelServer, spans: InMemorySpanExporter
) -> None:
    deliver(world, {"type": "openai", "base_url": models.base_url, "model": "m"})
    [request] = models.recorder.requests
    assert request.headers["traceparent"] == traceparent_of(spans)


def test_without_tracing_no_agent_request_has_a_traceparent(
    world: Make, agent: A2AAgent, models: ModelServer
) -> None:
    deliver(world, {"type": "a2a", "url": agent.url})
    assert all("traceparent" not in seen.headers for seen in agent.recorder.requests)
