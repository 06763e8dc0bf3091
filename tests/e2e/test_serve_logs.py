"""``tickwork serve`` with ``TICKWORK_LOG_FORMAT=json``: every line on stderr is a JSON
object, uvicorn's and Alembic's included; an access line per request; tracebacks as
fields; the banner, with the first-start API key, on stdout."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tickwork.domain.schedule import format_instant

from .conftest import Api, Server, wait_until

pytestmark = pytest.mark.slow
Start = Callable[..., tuple[Server, Api]]

ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")

FLAKY_APP = """\
import tickwork


@tickwork.handler("flaky")
def flaky(call):
    return explode(call.attempt)


def explode(attempt):
    raise RuntimeError(f"flaky failure on attempt {attempt}")
"""


OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def documented_lines() -> list[dict[str, Any]]:
    """The JSON lines shown in docs/operations.md's Logs section."""
    text = OPERATIONS.read_text()
    section = text[text.index("\n## Logs\n") : text.index("\n## Traces\n")]
    blocks = re.findall(r"```json\n(.*?)```", section, re.S)
    return [json.loads(line) for block in blocks for line in block.splitlines()]


def shape(value: Any) -> Any:
    """What a line looks like without its values: keys in order, and value types."""
    if isinstance(value, dict):
        return [(k, shape(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def check_documented(real: list[dict[str, Any]], loggers: set[str]) -> int:
    """Each documented line of these loggers has a real line with the same logger, event
    and shape; returns how many were checked."""
    checked = 0
    for shown in documented_lines():
        if shown["logger"] not in loggers:
            continue
        same = [
            r
            for r in real
            if r["logger"] == shown["logger"] and r["event"][:40] == shown["event"][:40]
        ]
        assert same, f"no line like the documented {shown['event']!r}"
        assert any(shape(r) == shape(shown) for r in same), (shown, same)
        checked += 1
    return checked


def soon(seconds: float) -> str:
    return format_instant((datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0))


def parsed(server: Server) -> list[dict[str, Any]]:
    """Every line the server wrote to stderr, each parsed as JSON (fails on any other)."""
    lines = server.log.read_text().splitlines()
    assert lines
    docs = []
    for line in lines:
        doc = json.loads(line)
        assert isinstance(doc, dict), line
        assert ISO_Z.fullmatch(doc["ts"]), line
        assert {"level", "logger", "event"} <= doc.keys(), line
        docs.append(doc)
    return docs


def finished(api: Api, trigger_id: str, agent: str) -> list[dict[str, Any]]:
    items = api.invocations(trigger_id, agent)
    return items if items and all(i["status"] in ("completed", "failed") for i in items) else []


def test_every_stderr_line_is_json_with_requests_attempts_tracebacks_and_the_shutdown(
    tickwork: Start, tmp_path: Path
) -> None:
    (tmp_path / "flaky_app.py").write_text(FLAKY_APP)
    server, api = tickwork("--app", "flaky_app")
    agent = {"target": {"type": "python", "handler": "flaky"}}
    assert api.client.put(api.url("/agents/handler"), json=agent).status_code in (200, 201)
    hook = api.create_trigger(name="hook", run_at=soon(1))
    flaky = api.create_trigger(agent="handler", name="flaky", run_at=soon(1), max_retries=0)
    [ok] = wait_until(lambda: finished(api, hook["id"], "bot"), what="the webhook attempt")
    [failed] = wait_until(lambda: finished(api, flaky["id"], "handler"), what="the handler")
    assert ok["status"] == "completed"
    assert failed["status"] == "failed"

    # The stored error: the message first, then the handler's traceback, bounded.
    error = failed["last_error"]
    assert error.startswith("RuntimeError: flaky failure on attempt 1\n")
    assert "Traceback (most recent call last):" in error
    assert 'flaky_app.py", line 10, in explode' in error
    assert "tickwork/targets/python.py" not in error  # the call into the handler is left out
    assert len(error) <= 4000

    # A request that is not HTTP at all: uvicorn answers 400 and logs it.
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(b"NOT AN HTTP REQUEST\r\n\r\n")
        assert conn.recv(1024).startswith(b"HTTP/1.1 400")
    wait_until(
        lambda: "Invalid HTTP request received." in server.log.read_text(),
        what="uvicorn's warning",
    )
    assert server.stop() == 0

    docs = parsed(server)
    by_event = {doc["event"]: doc for doc in docs}
    # uvicorn's own line, and Alembic's, in the same format.
    invalid = by_event["Invalid HTTP request received."]
    assert (invalid["logger"], invalid["level"]) == ("uvicorn.error", "warning")
    # The access log: route templates, never raw paths (ids stay out).
    requests = [doc for doc in docs if doc["logger"] == "tickwork.access"]
    created = [r for r in requests if r["method"] == "POST" and r["status"] == 201]
    assert len(created) == 2
    assert any(r["method"] == "PUT" and r["route"].endswith("/agents/{agent}") for r in requests)
    assert created[0]["route"] == (
        "/api/v1/tenants/{tenant}/projects/{project}/agents/{agent}/scheduled-triggers"
    )
    assert created[0]["tenant"] == "acme"
    assert isinstance(created[0]["duration_ms"], float | int)
    assert all(hook["id"] not in (r["route"] or "") for r in requests)
    listed = [r for r in requests if r["method"] == "GET"]
    assert listed[0]["route"].endswith("/scheduled-triggers/{trigger_id}/invocations")
    # Attempts, with datetimes in ISO-8601 UTC with Z.
    completed = by_event["attempt completed"]
    assert completed["invocation"] == ok["id"]
    assert ISO_Z.fullmatch(completed["scheduled_for"])
    assert completed["scheduled_for"] == ok["scheduled_for"].replace("+00:00", "Z")
    # The handler's exception: the first line as the error, its traceback as a field.
    failure = by_event["invocation failed"]
    assert failure["error"] == "RuntimeError: flaky failure on attempt 1"
    [exc] = failure["exception"]
    assert (exc["exc_type"], exc["exc_value"]) == (
        "RuntimeError",
        "flaky failure on attempt 1",
    )
    assert [frame["name"] for frame in exc["frames"]] == ["flaky", "explode"]
    assert "locals" not in exc["frames"][0]
    # The stop, as a line like the others.
    assert by_event["shutting down (running attempts finish first)"]["level"] == "info"
    assert [d for d in docs if d.get("deployment") != docs[-1]["deployment"]] == []
    # The lines docs/operations.md shows are the lines the server writes.
    loggers = {"tickwork.scheduler", "tickwork.access", "tickwork.worker", "tickwork.cli"}
    assert check_documented(docs, loggers | {"uvicorn.error"}) == 7


def test_the_banner_and_the_first_start_key_go_to_stdout_and_migrations_log_as_json(
    tmp_path: Path,
) -> None:
    with Server(f"sqlite:///{tmp_path / 'fresh.db'}", tmp_path) as server:
        server.start()
        server.wait_for_line("first start", 5)
        key = server.wait_for_line(r"^\s*(tw_\S+)", 5).group(1)
        assert server.stop() == 0
    assert "serving on http://127.0.0.1:" in server.output[0]
    docs = parsed(server)
    assert key not in server.log.read_text()
    migrations = [doc for doc in docs if doc["logger"] == "alembic.runtime.migration"]
    assert any(doc["event"].startswith("Running upgrade  -> 0001") for doc in migrations)
    assert check_documented(docs, {"alembic.runtime.migration"}) == 1
