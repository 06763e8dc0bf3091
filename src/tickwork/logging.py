"""Structured logging: key=value text for people, JSON lines for production.

Call sites pass context as keyword fields (``log.info("dispatched", trigger=..., ...)``);
every line about a trigger or an invocation carries its tenant, project, agent, trigger,
invocation, ``scheduled_for`` and the deployment.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

_deployment: dict[str, str] = {}


def configure(level: str = "INFO", fmt: str = "text", deployment_id: str | None = None) -> None:
    if deployment_id:
        _deployment["deployment"] = deployment_id
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger("tickwork")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


class _Base(logging.Formatter):
    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        out: dict[str, Any] = dict(_deployment)
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            out.update(extra)
        return out


class JsonFormatter(_Base):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        doc.update(self.fields(record))
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


class TextFormatter(_Base):
    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        event = _escape_controls(record.getMessage())
        parts = [ts[:-4] + "Z", record.levelname.lower().ljust(7), event]
        parts += [f"{k}={_text(v)}" for k, v in self.fields(record).items() if v is not None]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    s = str(value)
    if s and s.isprintable() and not any(c in _QUOTED for c in s):
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


class Logger:
    """A thin wrapper so call sites write ``log.info("event", key=value)``."""

    def __init__(self, name: str) -> None:
        self._log = logging.getLogger(name)

    def _emit(self, level: int, event: str, exc: bool, fields: dict[str, Any]) -> None:
        if self._log.isEnabledFor(level):
            self._log.log(level, event, exc_info=exc, extra={"fields": fields}, stacklevel=3)

    def debug(self, event: str, **fields: Any) -> None:
        self._emit(logging.DEBUG, event, False, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._emit(logging.INFO, event, False, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit(logging.WARNING, event, False, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit(logging.ERROR, event, False, fields)

    def exception(self, event: str, **fields: Any) -> None:
        self._emit(logging.ERROR, event, True, fields)


def get_logger(name: str) -> Logger:
    return Logger(name)
