"""Logging on structlog: one formatter on the root logger renders every line, tickwork's
own and those of the libraries it runs (uvicorn, Alembic, asyncio, Python warnings):
key=value text for people, or one JSON object per line (``TICKWORK_LOG_FORMAT=json``).

Call sites pass context as keyword fields (``log.info("dispatched", trigger=..., ...)``);
every line about a trigger or an invocation carries its tenant, project, agent, trigger,
invocation, ``scheduled_for`` and the deployment. Datetimes are written ISO-8601 in UTC
with ``Z``; an exception is a structured ``exception`` field in JSON (type, value and
frames, never local variables) and the usual traceback under the line in text; a line
logged inside a trace carries its ``trace_id`` and ``span_id``.

tickwork's processors are bound to its own loggers (:func:`get_logger`), never to
structlog's global configuration, so an application that imports tickwork keeps its own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import IO, Any

import structlog
from structlog.processors import ExceptionRenderer, TimeStamper, format_exc_info
from structlog.stdlib import BoundLogger, ProcessorFormatter
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, Processor, WrappedLogger

from tickwork import tracing

__all__ = [
    "BoundLogger",
    "configure",
    "get_logger",
    "is_configured",
    "json_mode",
    "mark_logged",
    "set_deployment",
]

_deployment: dict[str, str] = {}
_state = {"format": ""}  # the format configure() installed ("" before it ran)


def _context(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """The deployment, and the current trace and span ids."""
    event.update(_deployment)
    ids = tracing.current_ids()
    if ids is not None:
        event["trace_id"], event["span_id"] = ids
    return event


# A line of tickwork's is a plain stdlib record: the event as its message, the fields in
# one attribute. An application that sets up logging its own way sees readable lines;
# the formatter of configure() puts the fields back.
_FIELDS = "tickwork_fields"
# From logging.Logger.<level>() back to the call site: structlog's three frames, and ours.
_STACKLEVEL = 5


def _hand_over(_: WrappedLogger, __: str, event: EventDict) -> tuple[tuple[Any], dict[str, Any]]:
    message = event.pop("event", "")
    kwargs: dict[str, Any] = {"stacklevel": _STACKLEVEL}
    exc_info = event.pop("exc_info", None)
    if exc_info:
        kwargs["exc_info"] = exc_info
    kwargs["extra"] = {_FIELDS: event}
    return (message,), kwargs


def _fields(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    record = event.get("_record")
    fields = getattr(record, _FIELDS, None)
    if fields:
        event.update(fields)
    return event


_PRE_CHAIN: list[Processor] = [
    _fields,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    TimeStamper(fmt="iso", utc=True, key="ts"),
    _context,
]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}


class _Logger(BoundLogger):
    """structlog's stdlib logger, checking the level before anything else: a line below
    the level (the DEBUG line per dispatched slot) costs one comparison."""

    def _proxy_to_logger(
        self, method_name: str, event: str | None = None, *args: Any, **kw: Any
    ) -> Any:
        if not self._logger.isEnabledFor(_LEVELS.get(method_name, logging.CRITICAL)):
            return None
        return super()._proxy_to_logger(method_name, event, *args, **kw)


def get_logger(name: str) -> BoundLogger:
    """The logger ``name`` (under ``tickwork.``): ``log.info("event", key=value)``."""
    return _Logger(logging.getLogger(name), processors=[_hand_over], context={})


def configure(
    level: str = "INFO",
    fmt: str = "text",
    deployment_id: str | None = None,
    stream: IO[str] | None = None,
) -> None:
    """Make one handler on the root logger, with tickwork's formatter, the only writer of
    log lines (to ``stream``, stderr by default), at ``level`` for every logger."""
    if deployment_id:
        set_deployment(deployment_id)
    handler = logging.StreamHandler(stream) if stream is not None else _Stderr()
    handler.setFormatter(formatter(fmt))
    handler.setLevel(level)
    setattr(handler, _OURS, True)
    root = logging.getLogger()
    # Ours from an earlier call, and plain stream handlers (logging.basicConfig's), go;
    # a test runner's capturing handlers stay.
    root.handlers[:] = [
        h for h in root.handlers if not getattr(h, _OURS, False) and type(h) is not _Plain
    ]
    root.addHandler(handler)
    root.setLevel(level)
    # A library that set up its own stream handler (uvicorn's default configuration
    # does) writes through the root logger's instead.
    for logger in [logging.getLogger("tickwork"), *_existing_loggers()]:
        streams = [h for h in logger.handlers if type(h) is _Plain]
        for stream_handler in streams:
            logger.removeHandler(stream_handler)
        if streams or logger.name == "tickwork":
            logger.propagate = True
    logging.getLogger("tickwork").setLevel(logging.NOTSET)
    # Alembic says which of its plugins it set up each time it is imported: nothing an
    # operator acts on (its migrations' own lines stay).
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    logging.captureWarnings(True)
    _state["format"] = fmt


def _existing_loggers() -> list[logging.Logger]:
    loggers = list(logging.Logger.manager.loggerDict.values())
    return [logger for logger in loggers if isinstance(logger, logging.Logger)]


def set_deployment(deployment_id: str) -> None:
    """Every line from now on carries ``deployment``."""
    _deployment["deployment"] = deployment_id


def is_configured() -> bool:
    """Whether :func:`configure` ran in this process."""
    return bool(_state["format"])


def json_mode() -> bool:
    """Whether log lines are JSON (as configured, else as ``TICKWORK_LOG_FORMAT`` says)."""
    if _state["format"]:
        return _state["format"] == "json"
    return os.environ.get("TICKWORK_LOG_FORMAT", "").strip().lower() == "json"


def formatter(fmt: str) -> ProcessorFormatter:
    """The formatter for ``fmt`` (``text`` or ``json``), for tickwork's lines and others'."""
    renderer: list[Processor]
    if fmt == "json":
        renderer = [
            ExceptionRenderer(ExceptionDictTransformer(show_locals=False)),
            _ordered,
            structlog.processors.JSONRenderer(default=_json_default),
        ]
    else:
        renderer = [format_exc_info, _render_text]
    return ProcessorFormatter(
        foreign_pre_chain=_PRE_CHAIN,
        processors=[ProcessorFormatter.remove_processors_meta, *renderer],
    )


# --- an unhandled error logged once ----------------------------------------------------

_LOGGED = "_tickwork_logged"


def mark_logged(exc: BaseException) -> None:
    """Note that ``exc`` was logged with its traceback: the server's own report of the same
    exception (uvicorn's ``Exception in ASGI application``) is then left out."""
    with contextlib.suppress(AttributeError):  # an exception type with __slots__
        setattr(exc, _LOGGED, True)


class _AlreadyLogged(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (exc is not None and getattr(exc, _LOGGED, False))


_OURS = "_tickwork_handler"


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is written (a command run inside
    a test runner sees the runner's stream come and go)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _: IO[str]) -> None:
        pass


_Plain = logging.StreamHandler
# uvicorn reports an exception that reached it; the app has logged those it answered 500.
logging.getLogger("uvicorn.error").addFilter(_AlreadyLogged())


# --- rendering ---------------------------------------------------------------------------

_FIRST = ("ts", "level", "logger", "event")


def _ordered(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """The time, level, logger and event first; a traceback, the longest, last."""
    head = {key: event.pop(key) for key in _FIRST if key in event}
    exception = event.pop("exception", None)
    head.update(event)
    if exception is not None:
        head["exception"] = exception
    return head


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return iso_utc(value)
    return str(value)


def iso_utc(value: datetime) -> str:
    """``value`` as ISO-8601 in UTC with ``Z`` (a naive value is written as it is)."""
    if value.tzinfo is None:
        return value.isoformat()
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _render_text(_: WrappedLogger, __: str, event: EventDict) -> str:
    fields: MutableMapping[str, Any] = dict(event)
    ts = str(fields.pop("ts", ""))
    # Milliseconds are enough for people: 2026-03-02T09:00:00.123Z.
    if len(ts) == 27 and ts.endswith("Z"):
        ts = ts[:23] + "Z"
    level = str(fields.pop("level", "")).ljust(7)
    message = _escape_controls(str(fields.pop("event", "")))
    fields.pop("logger", None)
    exception = fields.pop("exception", None)
    parts = [ts, level, message]
    parts += [f"{k}={_text(v)}" for k, v in fields.items() if v is not None]
    line = " ".join(parts)
    if exception:
        line += "\n" + str(exception)
    return line


def _text(value: Any) -> str:
    if isinstance(value, datetime):
        return iso_utc(value)
    s = str(value)
    if s and s.isprintable() and _QUOTED.isdisjoint(s):
        return s
    # Quoted, with every control and line-breaking character escaped: a value can
    # never end the line or pass for another field (SPEC §9).
    return _escape_controls(json.dumps(s, ensure_ascii=False))


# Characters that make a value ambiguous in key=value text unless it is quoted.
_QUOTED = frozenset(' "=\\')


def _escape_controls(text: str) -> str:
    """``text`` with each non-printable character (newlines, other controls, Unicode line
    and paragraph separators) written as an escape."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape_char(c) for c in text)


def _escape_char(c: str) -> str:
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
