"""A trigger's health as a pure function of its state and ``now`` (SPEC §11)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tickwork.domain.health import (
    auto_pause_reason,
    health_of,
    is_late,
    should_auto_pause,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GRACE = timedelta(minutes=5)


@pytest.mark.parametrize(
    ("next_run_at", "oldest_pending", "late"),
    [
        (None, None, False),
        (NOW - GRACE, None, False),  # exactly the grace behind: not yet
        (NOW - GRACE - timedelta(microseconds=1), None, True),
        (NOW + timedelta(hours=1), NOW - timedelta(minutes=6), True),
        (NOW + timedelta(hours=1), NOW - timedelta(minutes=4), False),
    ],
)
def test_it_is_late_only_past_the_grace(
    next_run_at: datetime | None, oldest_pending: datetime | None, late: bool
) -> None:
    assert is_late(NOW, GRACE, next_run_at, oldest_pending) is late


@pytest.mark.parametrize(
    ("enabled", "paused", "failures", "late", "health"),
    [
        (False, True, 3, True, "disabled"),
        (True, True, 3, True, "paused"),
        (True, False, 3, True, "late"),
        (True, False, 3, False, "failing"),
        (True, False, 0, False, "ok"),
    ],
)
def test_the_first_state_that_holds_is_the_health(
    enabled: bool, paused: bool, failures: int, late: bool, health: str
) -> None:
    got = health_of(enabled=enabled, paused=paused, consecutive_failures=failures, late=late)
    assert got == health


def test_auto_pause_needs_a_threshold_reached_on_a_trigger_not_yet_paused() -> None:
    assert should_auto_pause(3, 3, paused=False)
    assert should_auto_pause(3, 4, paused=False)
    assert not should_auto_pause(3, 2, paused=False)
    assert not should_auto_pause(0, 100, paused=False)  # 0: never
    assert not should_auto_pause(3, 3, paused=True)
    assert "after 1 consecutive failed invocation " in auto_pause_reason(1)
    assert "after 4 consecutive failed invocations " in auto_pause_reason(4)
