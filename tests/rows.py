"""Rows for the tests that write the database directly, one builder per kind of row.

Each builder has a value for every column the row needs and takes keyword overrides, so
a test names only what it is about. ``*_columns`` give a dict of column values for a
table's ``insert()`` (bulk loads, history made in one statement); :func:`trigger` and
:func:`new_invocation` give the records ``Tx.insert_trigger`` and
``Tx.insert_invocations`` take. The defaults describe trigger ``trg_1`` of agent ``bot``
in project ``web`` of tenant ``acme``, on ``main``, at :data:`NOW`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tickwork.storage.ports import NewInvocation
from tickwork.storage.records import PENDING, Trigger

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TENANT, PROJECT, AGENT = "acme", "web", "bot"


def trigger_columns(trigger_id: str = "trg_1", **columns: Any) -> dict[str, Any]:
    """A ``scheduled_triggers`` row: enabled, every five minutes, nothing scheduled."""
    row: dict[str, Any] = {
        "id": trigger_id,
        "tenant_id": TENANT,
        "project_id": PROJECT,
        "ref": "main",
        "agent_id": AGENT,
        "name": f"trigger {trigger_id}",
        "description": "",
        "enabled": True,
        "cron_expression": "*/5 * * * *",
        "run_at": None,
        "timezone": "UTC",
        "payload": {"n": 1},
        "message_template": None,
        "max_retries": 1,
        "retry_delay_seconds": 60,
        "timeout_seconds": 780,
        "catchup": "latest",
        "catchup_window_seconds": 3600,
        "overlap": "allow",
        "jitter_seconds": 0,
        "next_run_at": None,
        "last_error": None,
        "created_by": None,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return row | columns


def trigger(trigger_id: str = "trg_1", **fields: Any) -> Trigger:
    """The trigger of :func:`trigger_columns`, as ``Tx.insert_trigger`` takes it."""
    return Trigger(**trigger_columns(trigger_id, **fields))


def invocation_columns(invocation_id: str = "inv_1", **columns: Any) -> dict[str, Any]:
    """An ``invocations`` row of trigger ``trg_1``: pending, due at :data:`NOW`."""
    row: dict[str, Any] = {
        "id": invocation_id,
        "trigger_id": "trg_1",
        "trigger_name": "trigger trg_1",
        "tenant_id": TENANT,
        "project_id": PROJECT,
        "ref": "main",
        "agent_id": AGENT,
        "origin": "schedule",
        "scheduled_for": NOW,
        "idempotency_key": f"key:{invocation_id}",
        "status": PENDING,
        "status_reason": None,
        "attempt": 0,
        "not_before": NOW,
        "payload": {"n": 1},
        "created_at": NOW,
        "completed_at": None,
    }
    return row | columns


def new_invocation(invocation_id: str = "inv_1", **fields: Any) -> NewInvocation:
    """The invocation of :func:`invocation_columns`, as ``Tx.insert_invocations`` takes it."""
    return NewInvocation(**invocation_columns(invocation_id, **fields))


def invocation_of(trigger: Trigger, invocation_id: str, **columns: Any) -> dict[str, Any]:
    """An ``invocations`` row of ``trigger`` (its scope, name and agent)."""
    scope = {
        "trigger_id": trigger.id,
        "trigger_name": trigger.name,
        "tenant_id": trigger.tenant_id,
        "project_id": trigger.project_id,
        "ref": trigger.ref,
        "agent_id": trigger.agent_id,
    }
    return invocation_columns(invocation_id, **(scope | columns))


def attempt_columns(invocation_id: str, **columns: Any) -> dict[str, Any]:
    """An ``invocation_attempts`` row: the first attempt, started at :data:`NOW`, still
    running."""
    row: dict[str, Any] = {
        "invocation_id": invocation_id,
        "attempt": 1,
        "started_at": NOW,
        "ended_at": None,
        "outcome": None,
    }
    return row | columns
