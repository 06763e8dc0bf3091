"""Log lines: one formatter for tickwork's loggers and everyone else's, JSON or text;
values cannot forge lines (SPEC §9)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from tickwork import logging as tlog

HOSTILE = [
    "bot\n2026-03-02T09:00:00.00Z info    trigger disabled tenant=victim",
    "bot\rforged",
    "a=b",
    'quote"d',
    "tab\there",
    "line\u2028separator",
    "next\x85line",
    "bell\x07",
    "",
]

Lines = Callable[[str], io.StringIO]


@pytest.fixture
def configured() -> Iterator[Lines]:
    """``configured(fmt)`` sets logging up to write into a buffer, which it returns."""
    root = logging.getLogger()
    handlers, level, state = list(root.handlers), root.level, dict(tlog._state)

    def configure(fmt: str) -> io.StringIO:
        stream = io.StringIO()
        tlog.configure("INFO", fmt, deployment_id="dep_test", stream=stream)
        return stream

    yield configure
    root.handlers[:] = handlers
    root.setLevel(level)
    tlog._state.update(state)


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_field_value_stays_inside_its_field_in_text(
    value: str, configured: Lines
) -> None:
    out = configured("text")
    tlog.get_logger("tickwork.test").info("attempt started", agent=value, tenant="acme")
    line = out.getvalue().removesuffix("\n")
    assert line.splitlines() == [line]
    assert line.isprintable()
    # The value is one quoted field: the fields after it are still the real ones.
    assert line.endswith(" tenant=acme deployment=dep_test")
    assert line.count(" agent=") == 1


def test_a_plain_value_is_written_as_it_is(configured: Lines) -> None:
    out = configured("text")
    tlog.get_logger("tickwork.test").info("attempt started", agent="reporter", tenant="acme")
    line = out.getvalue().removesuffix("\n")
    ts, level, rest = line.split(" ", 2)
    assert ts.endswith("Z")
    assert len(ts) == len("2026-03-02T09:00:00.123Z")
    assert level == "info"
    assert rest.lstrip() == "attempt started agent=reporter tenant=acme deployment=dep_test"


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_field_value_stays_inside_its_field_in_json(
    value: str, configured: Lines
) -> None:
    out = configured("json")
    tlog.get_logger("tickwork.test").info("attempt started", agent=value)
    line = out.getvalue().removesuffix("\n")
    assert line.splitlines() == [line]
    assert json.loads(line)["agent"] == value


def test_json_lines_start_with_time_level_logger_and_event(configured: Lines) -> None:
    out = configured("json")
    tlog.get_logger("tickwork.worker").warning("invocation failed", tenant="acme")
    [doc] = json_lines(out)
    assert list(doc)[:4] == ["ts", "level", "logger", "event"]
    assert doc["ts"].endswith("Z")
    assert datetime.fromisoformat(doc["ts"]).utcoffset() == timedelta(0)
    assert (doc["level"], doc["logger"], doc["event"]) == (
        "warning",
        "tickwork.worker",
        "invocation failed",
    )
    assert (doc["tenant"], doc["deployment"]) == ("acme", "dep_test")


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_datetimes_are_iso_8601_in_utc_with_z(fmt: str, configured: Lines) -> None:
    out = configured(fmt)
    berlin = timezone(timedelta(hours=1))
    tlog.get_logger("tickwork.test").info(
        "dispatched",
        scheduled_for=datetime(2026, 12, 1, 7, 55, 30, tzinfo=UTC),
        retry_at=datetime(2026, 12, 1, 9, 0, tzinfo=berlin),
    )
    text = out.getvalue()
    if fmt == "json":
        [doc] = json_lines(out)
        assert doc["scheduled_for"] == "2026-12-01T07:55:30Z"
        assert doc["retry_at"] == "2026-12-01T08:00:00Z"
    else:
        assert " scheduled_for=2026-12-01T07:55:30Z " in text
        assert " retry_at=2026-12-01T08:00:00Z " in text


def test_other_libraries_lines_go_through_the_same_formatter(configured: Lines) -> None:
    # uvicorn's own configuration gives its loggers their own stream handlers.
    uvicorn_error = logging.getLogger("uvicorn.error")
    before = list(uvicorn_error.handlers), uvicorn_error.propagate, uvicorn_error.level
    uvicorn_error.setLevel(logging.NOTSET)  # an earlier uvicorn.Config may have raised it
    uvicorn_error.addHandler(logging.StreamHandler())
    uvicorn_error.propagate = False
    out = configured("json")
    assert uvicorn_error.handlers == []
    assert uvicorn_error.propagate
    try:
        uvicorn_error.warning("Invalid HTTP request received.")
        logging.getLogger("alembic.runtime.migration").info("Running upgrade %s -> %s", "a", "b")
    finally:
        uvicorn_error.handlers[:], uvicorn_error.propagate, level = before
        uvicorn_error.setLevel(level)
    docs = json_lines(out)
    assert [(d["logger"], d["level"], d["event"]) for d in docs[:2]] == [
        ("uvicorn.error", "warning", "Invalid HTTP request received."),
        ("alembic.runtime.migration", "info", "Running upgrade a -> b"),
    ]
    assert all(d["deployment"] == "dep_test" for d in docs)


def _fail_deeply() -> None:
    secret = "tw_not-to-be-logged"  # a local variable: never in a log line
    raise RuntimeError(f"boom {len(secret)}")


def test_an_exception_is_a_structured_field_in_json_without_locals(configured: Lines) -> None:
    out = configured("json")
    try:
        _fail_deeply()
    except RuntimeError:
        tlog.get_logger("tickwork.test").exception("claiming invocations failed; retrying")
    [doc] = json_lines(out)
    [exc] = doc["exception"]
    assert (exc["exc_type"], exc["exc_value"]) == ("RuntimeError", "boom 19")
    assert exc["frames"][-1]["name"] == "_fail_deeply"
    assert isinstance(exc["frames"][-1]["lineno"], int)
    assert "tw_not-to-be-logged" not in out.getvalue()


def test_an_exception_given_as_a_value_is_rendered_too(configured: Lines) -> None:
    out = configured("json")
    try:
        _fail_deeply()
    except RuntimeError as caught:
        exc = caught
    tlog.get_logger("tickwork.test").warning("attempt failed; will retry", exc_info=exc)
    [doc] = json_lines(out)
    assert doc["exception"][0]["exc_type"] == "RuntimeError"


def test_a_foreign_exception_is_structured_and_text_keeps_the_traceback(
    configured: Lines,
) -> None:
    out = configured("json")
    try:
        _fail_deeply()
    except RuntimeError:
        logging.getLogger("asyncio").exception("Task exception was never retrieved")
    [doc] = json_lines(out)
    assert doc["exception"][0]["frames"][-1]["name"] == "_fail_deeply"

    out = configured("text")
    try:
        _fail_deeply()
    except RuntimeError:
        tlog.get_logger("tickwork.test").exception("worker maintenance failed; retrying")
    first, *rest = out.getvalue().splitlines()
    assert first.endswith("worker maintenance failed; retrying deployment=dep_test")
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "RuntimeError: boom 19"


def test_an_exception_the_app_logged_is_not_logged_again_by_uvicorn(configured: Lines) -> None:
    out = configured("json")
    try:
        _fail_deeply()
    except RuntimeError as exc:
        tlog.get_logger("tickwork.api").error("unhandled error", exc_info=exc)
        tlog.mark_logged(exc)
        logging.getLogger("uvicorn.error").error("Exception in ASGI application\n", exc_info=exc)
    try:
        _fail_deeply()
    except RuntimeError as exc:  # one the app never saw
        logging.getLogger("uvicorn.error").error("Exception in ASGI application\n", exc_info=exc)
    assert [d["event"] for d in json_lines(out)] == [
        "unhandled error",
        "Exception in ASGI application\n",
    ]


def test_lines_below_the_level_are_not_written(configured: Lines) -> None:
    out = configured("json")
    tlog.get_logger("tickwork.test").debug("dispatched")
    logging.getLogger("uvicorn.error").debug("ASGI 'lifespan' protocol appears unsupported.")
    assert out.getvalue() == ""


def test_json_mode_follows_the_configuration(configured: Lines) -> None:
    configured("json")
    assert tlog.json_mode()
    configured("text")
    assert not tlog.json_mode()


def test_an_application_with_its_own_logging_sees_the_event_and_the_call_site(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="tickwork.test"):
        tlog.get_logger("tickwork.test").info("attempt completed", tenant="acme")
    [record] = caplog.records
    assert record.getMessage() == "attempt completed"
    assert record.filename == "test_logging.py"
    assert (
        record.funcName
        == "test_an_application_with_its_own_logging_sees_the_event_and_the_call_site"
    )
    assert record.__dict__["tickwork_fields"] == {"tenant": "acme"}
