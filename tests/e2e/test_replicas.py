"""Several ``tickwork serve`` processes on one database: fail-over, drain, hand-over and
crashes (SPEC §4, §5). Real processes, real time; kept as short as the leases allow
(scheduler lease 2 s, worker lease 3 s). Processes sharing one SQLite file are replicas
too; only what needs PostgreSQL itself (its restart, ``NOTIFY``) is skipped there."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import ON_POSTGRES
from tickwork.domain.ids import new_id
from tickwork.services.context import Context
from tickwork.storage import tables

from .conftest import Api, Receiver, Server, wait_until

pytestmark = pytest.mark.slow
postgres_only = pytest.mark.skipif(not ON_POSTGRES, reason="needs PostgreSQL itself")
Start = Callable[..., tuple[Server, Api]]
FAST = {
    "TICKWORK_SCHEDULER_LEASE_SECONDS": "2",
    "TICKWORK_WORKER_LEASE_SECONDS": "3",
    "TICKWORK_ADMIN_TOKEN": "admin-token",
    "TICKWORK_DEPLOY_SECRET": "deploy-secret",
}


def one_time_triggers(ctx: Context, agent: str, due: list[datetime]) -> list[str]:
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for i, at in enumerate(due):
        rows.append(
            {
                "id": new_id("trg", now),
                "tenant_id": "acme",
                "project_id": "proj",
                "ref": "main",
                "agent_id": agent,
                "name": f"burst-{i}",
                "description": "",
                "enabled": True,
                "cron_expression": None,
                "run_at": at,
                "timezone": "UTC",
                "payload": {"i": i},
                "message_template": None,
                "max_retries": 3,
                "retry_delay_seconds": 1,
                "timeout_seconds": 60,
                "catchup": "all",
                "catchup_window_seconds": 3600,
                "overlap": "allow",
                "jitter_seconds": 0,
                "next_run_at": at,
                "last_error": None,
                "created_by": "test",
                "created_at": now,
                "updated_at": now,
            }
        )
    with ctx.db.write() as tx:
        tx.conn.execute(tables.scheduled_triggers.insert(), rows)
    return [r["id"] for r in rows]


def invocation_stats(ctx: Context) -> tuple[Counter[str], Counter[str]]:
    c = tables.invocations.c
    with ctx.db.read() as tx:
        rows = tx.conn.execute(sa.select(c.trigger_id, c.status, c.origin)).all()
    per_trigger = Counter(r.trigger_id for r in rows if r.origin == "schedule")
    statuses = Counter(r.status for r in rows)
    return per_trigger, statuses


def scheduler_view(api: Api) -> dict[str, object]:
    r = api.client.get(
        f"{api.base}/api/v1/system/scheduler", headers={"Authorization": "Bearer admin-token"}
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def active_server(servers: list[Server], api: Api) -> Server | None:
    view = scheduler_view(api)
    sched = view["scheduler"]
    assert isinstance(sched, dict)
    if not sched["active"]:
        return None
    run_id = str(sched["run_id"])
    for server in servers:
        if server.running and run_id in server.log.read_text():
            return server
    return None


def test_killing_the_active_scheduler_again_and_again_loses_and_doubles_nothing(
    tickwork: Start, ctx: Context, receiver: Receiver
) -> None:
    env = {**FAST, "TICKWORK_DEPLOYMENT_ID": "dep_replicas"}
    started = [tickwork(**env) for _ in range(3)]
    servers = [s for s, _ in started]
    api = started[0][1]
    base = datetime.now(UTC) + timedelta(seconds=2)
    ids = one_time_triggers(ctx, "bot", [base + timedelta(milliseconds=5 * i) for i in range(5000)])
    kills = 0
    # Fewer on SQLite, whose one writer makes every start and recovery slower.
    while kills < (10 if ON_POSTGRES else 5):
        live = [s for s in servers if s.running]
        probe = Api(api.client, live[0].url)
        victim = wait_until(partial(active_server, live, probe), 20, "an active scheduler")
        victim.kill()
        kills += 1
        replacement, _ = tickwork(**env)
        servers.append(replacement)

    # Whatever is left of the burst, the survivors finish it.
    def finished() -> bool:
        per_trigger, statuses = invocation_stats(ctx)
        return len(per_trigger) == len(ids) and set(statuses) == {"completed"}

    wait_until(finished, 120, "every trigger's invocation to complete")
    per_trigger, _ = invocation_stats(ctx)
    assert set(per_trigger) == set(ids)
    assert set(per_trigger.values()) == {1}
    delivered = {r.body["trigger_id"] for r in receiver.received("/ok")}
    assert delivered == set(ids)


def test_a_killed_workers_attempts_are_retried_elsewhere(
    tickwork: Start, ctx: Context, receiver: Receiver
) -> None:
    env = {**FAST, "TICKWORK_DEPLOYMENT_ID": "dep_workers"}
    first, _ = tickwork(**env)
    ids = one_time_triggers(ctx, "slow", [datetime.now(UTC) + timedelta(seconds=1)] * 4)
    wait_until(lambda: len(receiver.received("/slow")) == 4, 20, "four attempts in flight")
    _, api2 = tickwork(**env)
    first.kill()
    receiver.release.set()

    def finished() -> bool:
        _, statuses = invocation_stats(ctx)
        return statuses == Counter({"completed": 4})

    wait_until(finished, 30, "the lost attempts to be retried and complete")
    for trigger_id in ids:
        [inv] = api2.invocations(trigger_id, "slow")
        detail = api2.client.get(
            api2.url(f"/agents/slow/scheduled-triggers/{trigger_id}/invocations/{inv['id']}")
        ).json()
        assert [a["outcome"] for a in detail["attempts"]] == ["lost", "completed"]
        assert detail["attempts"][0]["worker_id"] != detail["attempts"][1]["worker_id"]


def test_a_new_deployment_takes_over_and_the_old_one_drains_and_exits(
    tickwork: Start, ctx: Context, receiver: Receiver
) -> None:
    old, api_old = tickwork("--exit-when-superseded", **FAST, TICKWORK_DEPLOYMENT_ID="dep_old")
    slow_ids = one_time_triggers(ctx, "slow", [datetime.now(UTC) + timedelta(seconds=1)] * 2)
    wait_until(lambda: len(receiver.received("/slow")) == 2, 20, "old attempts in flight")
    steady = api_old.create_trigger(cron_expression="* * * * * *")
    wait_until(lambda: len(receiver.received("/ok")) >= 2, 20, "the old deployment working")

    _, api_new = tickwork(**FAST, TICKWORK_DEPLOYMENT_ID="dep_new")
    switched_at = datetime.now(UTC)
    wait_until(lambda: len(receiver.received("/ok")) >= 6, 20, "the new deployment working")
    view = scheduler_view(api_new)
    states = {d["id"]: d["state"] for d in view["deployments"]}  # type: ignore[attr-defined]
    assert states == {"dep_new": "active", "dep_old": "draining"}
    # In-flight attempts on the old deployment finish there; then it exits by itself.
    receiver.release.set()
    assert old.wait(30) == 0

    c = tables.invocation_attempts.c
    with ctx.db.read() as tx:
        attempts = tx.conn.execute(sa.select(c.deployment_id, c.started_at, c.outcome)).all()
    late_on_old = [
        a
        for a in attempts
        if a.deployment_id == "dep_old" and a.started_at > switched_at + timedelta(seconds=1)
    ]
    assert late_on_old == []
    for trigger_id in slow_ids:
        [inv] = api_new.invocations(trigger_id, "slow")
        assert inv["status"] == "completed"
        assert inv["deployment_id"] == "dep_old"
    # No slot of the steady trigger ran twice across the hand-over (one listing, so a
    # slot dispatched meanwhile cannot make the two sides differ).
    listed = api_new.invocations(steady["id"])
    assert len(listed) == len({str(i["scheduled_for"]) for i in listed})


def test_racing_restart_calls_leave_exactly_one_active_scheduler(
    tickwork: Start, ctx: Context, receiver: Receiver
) -> None:
    env = {**FAST, "TICKWORK_DEPLOYMENT_ID": "dep_restart"}
    (_, api_a), (_, api_b) = tickwork(**env), tickwork(**env)
    results: list[httpx.Response] = []

    def restart(api: Api) -> None:
        results.append(
            httpx.post(
                f"{api.base}/api/deploy/restart-scheduler",
                headers={"Authorization": "Bearer deploy-secret"},
                timeout=10,
            )
        )

    threads = [threading.Thread(target=restart, args=(x,)) for x in (api_a, api_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [200, 200]
    run_ids = {r.json()["run_id"] for r in results}
    assert len(run_ids) == 2
    view = scheduler_view(api_a)
    assert view["scheduler"]["run_id"] in run_ids  # type: ignore[index]
    wrong = httpx.post(
        f"{api_a.base}/api/deploy/restart-scheduler",
        headers={"Authorization": "Bearer nope"},
        timeout=10,
    )
    assert wrong.status_code == 401
    # Both processes keep running; the slots of a per-second trigger are dispatched once.
    steady = api_a.create_trigger(cron_expression="* * * * * *")
    wait_until(lambda: len(receiver.received("/ok")) >= 4, 20, "slots to run")
    items = api_a.invocations(steady["id"])
    slots = [i["scheduled_for"] for i in items]
    assert len(slots) == len(set(slots))


def _restart_postgres() -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True,
        capture_output=True,
        timeout=120,
    )


@postgres_only
@pytest.mark.skipif(
    shutil.which("pg_ctlcluster") is None or os.geteuid() != 0,
    reason="needs to restart the local PostgreSQL cluster",
)
def test_a_postgres_restart_is_survived_without_losing_a_slot(
    tickwork: Start, ctx: Context, receiver: Receiver
) -> None:
    server, api = tickwork(**FAST, TICKWORK_DEPLOYMENT_ID="dep_pg_restart")
    steady = api.create_trigger(cron_expression="* * * * * *", catchup="all")
    wait_until(lambda: len(receiver.received("/ok")) >= 2, 20, "slots before the restart")
    _restart_postgres()
    before = len(receiver.received("/ok"))
    wait_until(lambda: len(receiver.received("/ok")) >= before + 4, 60, "slots after the restart")
    assert server.running, "the server must not crash"
    r = api.client.patch(
        api.url(f"/agents/bot/scheduled-triggers/{steady['id']}"), json={"enabled": False}
    )
    assert r.status_code == 200
    items = api.invocations(steady["id"])
    slots = sorted(datetime.fromisoformat(str(i["scheduled_for"])) for i in items)
    # catchup=all: every second from the first slot to the last has exactly one invocation.
    assert slots == [slots[0] + timedelta(seconds=n) for n in range(len(slots))]
    assert "reconnecting" in server.log.read_text() or "retrying" in server.log.read_text()


@postgres_only
def test_a_trigger_created_on_one_replica_wakes_the_scheduler_of_another_at_once(
    tickwork: Start, receiver: Receiver
) -> None:
    # The scheduler process would otherwise sleep 20 s (a third of its 60 s lease) with
    # nothing due: firing on time shows the NOTIFY from the API process woke it.
    quiet = {
        "TICKWORK_SCHEDULER_LEASE_SECONDS": "60",
        "TICKWORK_SCHEDULER_MAX_SLEEP_SECONDS": "60",
        "TICKWORK_DEPLOYMENT_ID": "dep_notify",
    }
    tickwork("--role", "scheduler", "--role", "worker", **quiet)
    _, api = tickwork("--role", "api", **quiet)
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    trigger = api.create_trigger(run_at=due.isoformat())
    [request] = wait_until(lambda: receiver.received("/ok"), 15, "the run")
    assert request.body["trigger_id"] == trigger["id"]
    # How long after ``due`` it arrived: the wall time since ``due`` minus the time since
    # its arrival.
    late = (datetime.now(UTC) - due).total_seconds() - (time.monotonic() - request.at)
    assert -0.5 < late < 3.0
