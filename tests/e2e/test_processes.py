"""Starting, stopping and adding processes never pauses scheduling (SPEC §9, Processes).

One scenario with real ``tickwork serve`` processes in real time, on the database under
test (several processes on one SQLite file behave as replicas, as on PostgreSQL): two
per-second triggers (catch-up ``latest``, the default, and ``all``) keep one delivery per
second while

(a) a second process whose port is in use starts and fails,
(b) a second healthy process of the same code starts,
(c) the active process gets SIGTERM,
(d) a newer deployment starts and its only process is then killed.

For each event the longest gap between deliveries and the slots missed are printed (run
with ``-s`` to see them) and checked: no slot missed, gap under 2 s (under the scheduler
lease + 2 s for (d), where only catch-up ``all`` keeps every slot).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tickwork.services.context import Context
from tickwork.storage import tables

from .conftest import Api, Receiver, Server, wait_until

pytestmark = pytest.mark.slow
Start = Callable[..., tuple[Server, Api]]
LEASE = 2.0
FAST = {
    "TICKWORK_SCHEDULER_LEASE_SECONDS": str(int(LEASE)),
    "TICKWORK_WORKER_LEASE_SECONDS": "3",
    "TICKWORK_ADMIN_TOKEN": "admin-token",
}
# How long each event is watched after it happens.
WATCH = 3.0


@dataclass
class Event:
    name: str
    at: float  # monotonic, like the receiver's arrival times
    wall: datetime
    until: float = 0.0
    until_wall: datetime | None = None


def begin(name: str) -> Event:
    return Event(name, time.monotonic(), datetime.now(UTC))


def watch(event: Event, seconds: float = WATCH) -> Event:
    time.sleep(seconds)  # real-time: deliveries of a per-second trigger are observed
    event.until = time.monotonic()
    event.until_wall = datetime.now(UTC)
    return event


def write_app(directory: Path, name: str, handler: str) -> None:
    (directory / f"{name}.py").write_text(
        "import tickwork\n\n\n"
        f"@tickwork.handler({handler!r})\n"
        "async def run(call):\n"
        "    return None\n"
    )


def arrivals(receiver: Receiver, trigger_id: str) -> list[float]:
    return sorted(r.at for r in receiver.received("/ok") if r.body["trigger_id"] == trigger_id)


def longest_gap(times: list[float], event: Event) -> float:
    """The longest wait between two deliveries around the event (from the last one
    before it to the first one after it, and every one in its window)."""
    gaps = [b - a for a, b in itertools.pairwise(times) if b >= event.at and a <= event.until]
    after = [t for t in times if t >= event.at]
    if not after:  # nothing delivered since the event
        before = [t for t in times if t < event.at]
        gaps.append(event.until - (before[-1] if before else event.at))
    return max(gaps, default=0.0)


def slot_report(ctx: Context, receiver: Receiver, trigger_id: str, event: Event) -> dict[str, int]:
    """Slots of the event's window: how many, how many with no completed invocation or
    recorded ``missed``, how many delivered more than once."""
    c = tables.invocations.c
    with ctx.db.read() as tx:
        rows = tx.conn.execute(
            sa.select(c.scheduled_for, c.status).where(c.trigger_id == trigger_id)
        ).all()
    status = {r.scheduled_for: r.status for r in rows}
    delivered = Counter(
        datetime.fromisoformat(str(r.body["scheduled_for"]))
        for r in receiver.received("/ok")
        if r.body["trigger_id"] == trigger_id
    )
    assert event.until_wall is not None
    first = event.wall.replace(microsecond=0) - timedelta(seconds=1)
    # The last slots of the window may still be on their way.
    last = event.until_wall.replace(microsecond=0) - timedelta(seconds=2)
    slots = [first + timedelta(seconds=i) for i in range(int((last - first).total_seconds()) + 1)]
    return {
        "slots": len(slots),
        # A slot is missed when it has no invocation or one recorded missed; one whose
        # attempt was running in a killed process is retried after its lease, not missed.
        "missed": sum(1 for s in slots if status.get(s) in (None, "missed")),
        "duplicated": sum(1 for s in slots if delivered[s] > 1),
    }


def scheduler_run_id(api: Api) -> str | None:
    r = api.client.get(
        f"{api.base}/api/v1/system/scheduler", headers={"Authorization": "Bearer admin-token"}
    )
    assert r.status_code == 200, r.text
    sched = r.json()["scheduler"]
    return str(sched["run_id"]) if sched["active"] else None


def is_active(server: Server, api: Api) -> bool:
    run_id = scheduler_run_id(api)
    return run_id is not None and run_id in server.log.read_text()


def banner(server: Server, part: str) -> str:
    line = server.wait_for_line(rf"^\s*{re.escape(part)}", 10).string
    return line.split(":", 1)[1].strip()


def deployment_of(server: Server) -> str:
    return banner(server, "roles:").rsplit("deployment:", 1)[1].strip()


def registry_rows(ctx: Context) -> tuple[int, int, int]:
    with ctx.db.read() as tx:
        state = tx.scheduler_state()
        return len(tx.list_processes()), len(tx.list_deployments()), state.generation


def test_starting_stopping_adding_and_losing_processes_never_pauses_a_per_second_trigger(
    tickwork: Start, ctx: Context, receiver: Receiver, database_url: str, tmp_path: Path
) -> None:
    write_app(tmp_path, "app_one", "one")
    write_app(tmp_path, "app_two", "two")
    first, api = tickwork("--app", "app_one", **FAST)
    assert banner(first, "scheduler:") == "active"
    steady = api.create_trigger(name="steady", cron_expression="* * * * * *")
    every = api.create_trigger(name="every", cron_expression="* * * * * *", catchup="all")
    wait_until(lambda: len(arrivals(receiver, every["id"])) >= 3, 15, "the trigger running")
    events: list[Event] = []

    # (a) A process whose port is in use fails at once, with one line, touching nothing.
    before = registry_rows(ctx)
    event = begin("a: a second process with its port in use")
    port = first.url.rsplit(":", 1)[1]
    failed = subprocess.run(
        [sys.executable, "-m", "tickwork", "serve", "--app", "app_one", "--port", port],
        cwd=tmp_path,
        env={**_env(database_url), **FAST},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert failed.returncode != 0
    # In JSON mode, the refusal is a log line like every other.
    [refusal] = [json.loads(line) for line in failed.stderr.splitlines()]
    assert (refusal["level"], refusal["event"]) == (
        "error",
        f"port {port} is in use: pass --port or set TICKWORK_PORT",
    )
    assert registry_rows(ctx) == before
    events.append(watch(event))

    # (b) A second process of the same code joins as a standby; nobody drains.
    event = begin("b: a second process of the same code starts")
    second, api2 = tickwork("--app", "app_one", **FAST)
    assert banner(second, "scheduler:") == "standby"
    assert banner(second, "workers:") == "taking new work"
    assert deployment_of(second) == deployment_of(first)
    events.append(watch(event))
    assert is_active(first, api2)
    assert "draining" not in first.log.read_text() + second.log.read_text()

    # (c) SIGTERM to the active process: the standby takes over at once.
    event = begin("c: the active process gets SIGTERM")
    assert first.stop() == 0
    events.append(watch(event))
    assert is_active(second, api2)

    # (d) A newer deployment takes over; its only process is killed; the older one
    # resumes within the lease.
    third, _ = tickwork("--app", "app_two", **FAST)
    assert banner(third, "scheduler:") == "active"
    assert deployment_of(third) != deployment_of(second)
    wait_until(lambda: "draining" in second.log.read_text(), 10, "the older deployment draining")
    time.sleep(1.5)  # real-time: the newer deployment delivers for a moment
    event = begin("d: the newest deployment's only process is killed")
    third.kill()
    events.append(watch(event, LEASE + 3.0))
    assert is_active(second, api2)
    assert "this deployment takes new work again" in second.log.read_text()

    report = []
    for ev in events:
        for trigger in (steady, every):
            gap = longest_gap(arrivals(receiver, trigger["id"]), ev)
            slots = slot_report(ctx, receiver, trigger["id"], ev)
            report.append((ev.name, trigger["name"], gap, slots))
    print(f"\nprocess events on {ctx.db.dialect}:")
    for name, trigger_name, gap, slots in report:
        print(
            f"  {name:<52} {trigger_name:<6} longest gap {gap:4.2f} s, "
            f"missed {slots['missed']}/{slots['slots']}, duplicated {slots['duplicated']}"
        )
    for name, trigger_name, gap, slots in report:
        if name.startswith("d:"):
            if trigger_name == "every":  # catch-up all: every slot runs, late
                assert slots["missed"] == 0, (name, slots)
                assert gap < LEASE + 2.0, (name, gap)
            # Only an attempt in flight at the kill may be delivered again.
            assert slots["duplicated"] <= 1, (name, slots)
        else:
            assert slots["missed"] == 0, (name, trigger_name, slots)
            assert slots["duplicated"] == 0, (name, trigger_name, slots)
            assert gap < 2.0, (name, trigger_name, gap)


def _env(database_url: str) -> dict[str, str]:
    return {**os.environ, "TICKWORK_DATABASE_URL": database_url, "TICKWORK_LOG_FORMAT": "json"}
