"""docs/operations.md, Health and notifications: every ```sh example there runs against
the app in-process (a project ``demo`` exists, as in the API guide) and answers 2xx,
and the Slack and PagerDuty bodies it shows are exactly what tickwork sends for the
event it shows."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tests.api.helpers import TenantKey
from tests.api.test_docs_examples import parse_curl, send, shell_blocks
from tickwork.services.notifications import render
from tickwork.storage.ports import OutboxRow

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
BASE = "http://tickwork.example"


def section() -> str:
    text = OPERATIONS.read_text()
    start = text.index("## Health and notifications")
    return text[start : text.index("\n## ", start + 1)]


def shown(marker: str) -> dict[str, Any]:
    """The JSON block right after ``<!-- marker -->``."""
    found = re.search(rf"<!-- {marker} -->\n```json\n(.*?)```", section(), re.DOTALL)
    assert found is not None, marker
    document: dict[str, Any] = json.loads(found.group(1))
    return document


def rendered(event: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    at = datetime(2026, 3, 2, 9, 15, 2, tzinfo=UTC)
    row = OutboxRow(
        "ntf_doc", event["id"], "acme", "demo", event["type"], target, event, "pending", 0, at,
        None, at, None,
    )  # fmt: skip
    document: dict[str, Any] = json.loads(render(row))
    return document


def test_every_example_of_the_section_succeeds(client: TestClient, acme: TenantKey) -> None:
    variables = {"TICKWORK_URL": BASE, "KEY": acme.key}
    auth = {"Authorization": f"Bearer {acme.key}"}
    assert client.put("/api/v1/tenants/acme/projects/demo", headers=auth).status_code == 201
    commands = shell_blocks(section())
    assert len(commands) == 4
    answers = [send(client, parse_curl(command, variables)) for command in commands]
    targets = answers[0].json()["targets"]
    assert [(t["name"], t["format"], t["has_secret"]) for t in targets] == [
        ("ops-hook", "tickwork", True),
        ("slack", "slack", False),
        ("pagerduty", "pagerduty", False),
    ]
    event_id = answers[1].json()["event_id"]
    deliveries = answers[2].json()["items"]
    assert sorted(d["target"] for d in deliveries) == ["ops-hook", "pagerduty", "slack"]
    assert {d["event_id"] for d in deliveries} == {event_id}
    assert answers[3].json()["items"] == []


def test_the_slack_and_pagerduty_bodies_are_what_is_sent() -> None:
    event = shown("event")
    assert rendered(event, {"format": "tickwork"}) == event
    assert rendered(event, {"format": "slack"}) == shown("slack")
    pagerduty = {"format": "pagerduty", "routing_key": "R0UTINGKEY0123456789"}
    assert rendered(event, pagerduty) == shown("pagerduty")
    resolved = rendered({**event, "type": "trigger.recovered"}, pagerduty)
    assert resolved == {
        "routing_key": "R0UTINGKEY0123456789",
        "event_action": "resolve",
        "dedup_key": "tickwork:trg_01jnv3x7k2q9c8d4f6g5h3j2kq",
    }


def test_the_settings_table_names_every_notification_setting() -> None:
    text = OPERATIONS.read_text()
    for name in (
        "TICKWORK_LATE_GRACE",
        "TICKWORK_PAUSE_AFTER_FAILURES",
        "TICKWORK_NOTIFICATION_MAX_ATTEMPTS",
        "TICKWORK_NOTIFICATION_RETRY_SECONDS",
        "TICKWORK_NOTIFICATION_TIMEOUT_SECONDS",
        "TICKWORK_NOTIFICATION_POLL_SECONDS",
    ):
        assert f"`{name}`" in text, name
