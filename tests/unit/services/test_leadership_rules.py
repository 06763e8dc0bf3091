"""Who may take the scheduler lease: the rules as a pure function of the lease, the
instant and the current deployment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tickwork.services.leadership import holds, may_take
from tickwork.storage.records import SchedulerState

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LIVE = NOW + timedelta(seconds=5)
EXPIRED = NOW - timedelta(seconds=1)


def lease(
    deployment: str | None, expires: datetime | None, run_id: str | None = "run_x"
) -> SchedulerState:
    return SchedulerState(run_id, deployment, 3, expires, NOW)


@pytest.mark.parametrize(
    ("state", "current", "allowed", "why"),
    [
        (lease(None, None, None), "dep_a", True, "nobody ever held it"),
        (lease("dep_a", None, None), "dep_a", True, "released by a graceful stop"),
        (lease("dep_a", EXPIRED), "dep_a", True, "its holder stopped renewing"),
        (lease("dep_a", NOW), "dep_a", True, "it expires at this very instant"),
        (lease("dep_a", LIVE), "dep_a", False, "a live process of this deployment holds it"),
        (lease("dep_old", LIVE), "dep_a", True, "an older deployment holds it: superseded"),
        (lease("dep_gone", LIVE), "dep_a", True, "its deployment has no live process"),
        (lease("dep_gone", LIVE), None, True, "no process is live at all"),
        (lease(None, None, None), "dep_new", False, "a newer deployment is live"),
        (lease("dep_new", EXPIRED), "dep_new", False, "a newer deployment is live"),
        (lease("dep_a", EXPIRED), "dep_new", False, "a newer deployment is live"),
    ],
)
def test_who_may_take_the_lease(
    state: SchedulerState, current: str | None, allowed: bool, why: str
) -> None:
    assert may_take(state, NOW, "dep_a", current) is allowed, why


def test_a_lease_is_held_only_by_its_run_and_only_until_it_expires() -> None:
    assert holds(lease("dep_a", LIVE, "run_a"), "run_a", NOW)
    assert not holds(lease("dep_a", LIVE, "run_a"), "run_b", NOW)
    assert not holds(lease("dep_a", NOW, "run_a"), "run_a", NOW)
    assert not holds(lease("dep_a", None, None), "run_a", NOW)
