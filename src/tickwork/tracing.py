"""Traces on OpenTelemetry, with the optional extra ``tickwork[otel]``.

A span per dispatch batch (``tickwork.dispatch``) and per attempt (``tickwork.attempt``:
tenant, project, agent, trigger, invocation, attempt number and outcome); a webhook call
and every call of the a2a and openai targets carry the attempt's W3C ``traceparent``,
and a log line written inside a span carries
its ``trace_id`` and ``span_id``.

The SDK is set up by :func:`configure_from_env` from the standard ``OTEL_*`` variables
once one of ``OTEL_TRACES_EXPORTER``, ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set (``OTEL_SDK_DISABLED=true`` turns it off);
a tracer provider set up before tickwork starts (``opentelemetry-instrument``) is used as
it is. Without the extra, or with tracing off, every function here does nothing and
costs next to nothing: tickwork runs exactly as it does without OpenTelemetry.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from tickwork.errors import ValidationError

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider

try:
    from opentelemetry import propagate, trace
except ImportError:  # the extra is not installed
    propagate = None  # type: ignore[assignment]
    trace = None  # type: ignore[assignment]

__all__ = [
    "ATTEMPT_SPAN",
    "DISPATCH_SPAN",
    "available",
    "configure_from_env",
    "current_ids",
    "inject",
    "set_attributes",
    "span",
    "use",
]

ATTEMPT_SPAN = "tickwork.attempt"
DISPATCH_SPAN = "tickwork.dispatch"

# Any of these turns tracing on (the extra being installed): the place spans go.
_TURN_ON = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)

_tracer: Tracer | None = None

log = logging.getLogger("tickwork.tracing")


def available() -> bool:
    """Whether the OpenTelemetry SDK (``tickwork[otel]``) is installed."""
    try:
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        return False
    return trace is not None


def use(provider: TracerProvider | None) -> None:
    """Make tickwork's spans with ``provider`` (None: no spans)."""
    global _tracer
    if provider is None or trace is None:
        _tracer = None
        return
    from tickwork.settings import package_version

    _tracer = provider.get_tracer("tickwork", package_version())


def configure_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """Set up tracing from the ``OTEL_*`` variables; returns where spans go (for the start
    banner), or None when tracing stays off.

    Raises :class:`tickwork.errors.ValidationError` for an exporter that is not installed.
    """
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        use(None)
        return None
    if not available():
        if any(env.get(name) for name in _TURN_ON):
            log.warning(
                "OTEL_* variables are set but the OpenTelemetry SDK is not installed: "
                "no traces (pip install 'tickwork[otel]')"
            )
        use(None)
        return None
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

    current = trace.get_tracer_provider()
    if isinstance(current, SdkTracerProvider):  # set up already, by opentelemetry-instrument
        use(current)
        return "the tracer provider set up before tickwork"
    if not any(env.get(name) for name in _TURN_ON):
        use(None)
        return None
    provider, described = _provider(env)
    trace.set_tracer_provider(provider)
    use(provider)
    return described


def _provider(env: Mapping[str, str]) -> tuple[TracerProvider, str]:
    from importlib.metadata import entry_points

    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from tickwork.settings import package_version

    # The resource reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, the provider
    # OTEL_TRACES_SAMPLER(_ARG) and the span limits, each exporter its own variables.
    resource = Resource.create({"service.version": package_version()})
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": "tickwork"}))
    provider = SdkTracerProvider(resource=resource)
    names = [n.strip() for n in env.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if n.strip()]
    installed = {ep.name: ep for ep in entry_points(group="opentelemetry_traces_exporter")}
    used = []
    for name in names:
        if name == "none":
            continue
        entry = name
        if name == "otlp":
            protocol = env.get(
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
            )
            entry = "otlp_proto_grpc" if protocol.strip() == "grpc" else "otlp_proto_http"
        if entry not in installed:
            choices = ", ".join(sorted(["otlp", "none", *installed])) or "none"
            raise ValidationError(
                "OTEL_TRACES_EXPORTER",
                f"no span exporter {name!r} is installed (installed: {choices})",
            )
        provider.add_span_processor(BatchSpanProcessor(installed[entry].load()()))
        used.append(name)
    service = resource.attributes.get("service.name")
    return provider, f"{', '.join(used) or 'no exporter'} (service.name {service})"


@contextlib.contextmanager
def span(name: str, **attributes: Any) -> Iterator[Span | None]:
    """A span named ``name``, current inside the block (None when tracing is off). An
    exception leaving the block is recorded on it and sets its status to error."""
    if _tracer is None:
        yield None
        return
    with _tracer.start_as_current_span(name, attributes=_attrs(attributes)) as current:
        yield current


def set_attributes(current: Span | None, **attributes: Any) -> None:
    """Add ``attributes`` to ``current`` (nothing when it is None)."""
    if current is not None:
        current.set_attributes(_attrs(attributes))


def _attrs(attributes: Mapping[str, Any]) -> dict[str, Any]:
    # trigger_id -> tickwork.trigger.id
    return {"tickwork." + k.replace("_", "."): v for k, v in attributes.items() if v is not None}


def inject(headers: MutableMapping[str, str]) -> None:
    """Add the current trace context to outgoing ``headers`` (``traceparent``, and
    ``tracestate`` or ``baggage`` when there are any; the propagators are
    ``OTEL_PROPAGATORS``'s)."""
    if _tracer is not None and propagate is not None:
        propagate.inject(headers)


def current_ids() -> tuple[str, str] | None:
    """The current trace and span ids, as hex, or None outside a span."""
    if _tracer is None:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"
