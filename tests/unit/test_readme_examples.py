"""The Python example of the README runs: its handler registers under its name and,
called as a worker calls it, answers what the README says."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tickwork.targets import python
from tickwork.targets.base import TargetCall
from tickwork.targets.python import HandlerRegistry, PythonTarget

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_handler_example_registers_and_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = HandlerRegistry()  # not the process-wide one other tests share
    monkeypatch.setattr(python, "default_registry", registry)
    examples = re.findall(r"^```python\n(.*?)^```", README.read_text(), re.M | re.S)
    # The handler's example (the client's runs in tests/api/test_client_docs.py).
    [example] = [code for code in examples if "@tickwork.handler" in code]
    namespace: dict[str, Any] = {"__name__": "myagents"}
    exec(compile(example, str(README), "exec"), namespace)
    assert registry.get("daily-report") is namespace["daily_report"]
    call = TargetCall(
        invocation_id="inv_01",
        idempotency_key="sched:trg_01:2026-03-02T09:00:00Z",
        trigger_id="trg_01",
        trigger_name="daily",
        tenant="acme",
        project="demo",
        agent="reporter",
        ref_name="main",
        ref_revision=1,
        scheduled_for=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        attempt=1,
        origin="schedule",
        message="Write the report",
        payload={},
        timezone="UTC",
    )
    result = asyncio.run(PythonTarget(registry, "daily-report").call(call))
    assert result.conversation_id == "c-123"
