"""The storage contract: what every backend's ``Tx`` promises (SPEC §2, §4, §5).

One suite, run on SQLite by default and on PostgreSQL when TICKWORK_TEST_DATABASE names
one. Every test starts from a migrated, empty database (see ``tests/conftest.py``); the
current instant is always passed in, as the services do.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa

from tests import rows
from tests.rows import AGENT, NOW, PROJECT, TENANT
from tickwork.storage.ports import (
    AttemptEnd,
    InvocationFilter,
    NewInvocation,
    NextRun,
    Settlement,
)
from tickwork.storage.records import (
    CANCELLED,
    COMPLETED,
    FAILED,
    MISSED,
    PENDING,
    RUNNING,
    ApiKey,
    Candidate,
    Invocation,
    Process,
    SchedulerState,
    Trigger,
)
from tickwork.storage.sql import Database, Tx

KOLKATA = timezone(timedelta(hours=5, minutes=30))
NEW_YORK_WINTER = timezone(timedelta(hours=-5))
# Long enough never to fire on a healthy run, short enough to fail a broken one quickly.
WAIT = 10.0

_T = TypeVar("_T")


def at(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)


def settle_row(invocation_id: str, worker_id: str, status: str, **extra: Any) -> Settlement:
    row: dict[str, Any] = {
        "id": invocation_id,
        "worker_id": worker_id,
        "status": status,
        "not_before": None,
        "last_error": None,
        "result": None,
        "conversation_id": None,
        "completed_at": None,
    }
    row.update(extra)
    return Settlement(**row)


@pytest.fixture
def scoped(db: Database) -> Database:
    """The database with tenant ``acme``, project ``web`` and agent ``bot`` on ``main``."""
    with db.write() as tx:
        tx.create_tenant(TENANT, NOW)
        tx.upsert_project(TENANT, PROJECT, "Web", "", NOW)
        tx.upsert_agent(TENANT, PROJECT, "main", AGENT, "Bot", {"type": "python"}, NOW)
    return db


def add_triggers(db: Database, *triggers: Trigger) -> None:
    with db.write() as tx:
        for trigger in triggers:
            tx.insert_trigger(trigger)


def add_invocations(db: Database, *new: NewInvocation) -> None:
    with db.write() as tx:
        assert tx.insert_invocations(list(new)) == [r.id for r in new]


def invocation(db: Database, invocation_id: str) -> Invocation:
    with db.read() as tx:
        found = tx.get_invocation(invocation_id)
    assert found is not None
    return found


def claim(db: Database, now: datetime, limit: int, worker: str = "w1") -> list[Invocation]:
    with db.write() as tx:
        return tx.claim_invocations(now, limit, worker, now + timedelta(seconds=30), "dep_a")


def ids(items: list[Any]) -> list[str]:
    return [item.id for item in items]


# -- instants ---------------------------------------------------------------------------


def test_it_round_trips_aware_instants_as_utc_with_microseconds(db: Database) -> None:
    started = datetime(2026, 3, 2, 14, 30, 15, 123456, tzinfo=KOLKATA)
    beat = datetime(2026, 3, 2, 4, 0, 0, 1, tzinfo=NEW_YORK_WINTER)
    with db.write() as tx:
        tx.upsert_deployment("dep_a", "1.0", started)
        tx.upsert_deployment("dep_a", "1.0", beat)
    with db.read() as tx:
        (deployment,) = tx.list_deployments()
    assert deployment.started_at == started
    assert deployment.started_at.tzinfo is UTC
    assert deployment.started_at.isoformat() == "2026-03-02T09:00:15.123456+00:00"
    assert deployment.heartbeat_at.isoformat() == "2026-03-02T09:00:00.000001+00:00"


def test_it_refuses_naive_datetimes_in_values_and_in_conditions(db: Database) -> None:
    naive = datetime(2026, 3, 2, 9, 0)  # noqa: DTZ001 - the point of the test
    with pytest.raises(sa.exc.StatementError, match="naive") as written, db.write() as tx:
        tx.create_tenant("acme", naive)
    assert isinstance(written.value.orig, ValueError)
    with pytest.raises(sa.exc.StatementError, match="naive") as compared, db.write() as tx:
        tx.due_triggers(naive, 10)
    assert isinstance(compared.value.orig, ValueError)
    with db.read() as tx:
        assert not tx.tenant_exists("acme")


def test_it_compares_instants_given_in_any_zone_as_instants(scoped: Database) -> None:
    # 09:10 in New York is 14:10 UTC: later than 19:30 in Kolkata (14:00 UTC), though its
    # wall time is earlier.
    add_triggers(
        scoped,
        rows.trigger("trg_ny", next_run_at=datetime(2026, 3, 2, 9, 10, tzinfo=NEW_YORK_WINTER)),
        rows.trigger("trg_in", next_run_at=datetime(2026, 3, 2, 19, 30, tzinfo=KOLKATA)),
    )
    with scoped.write() as tx:
        assert ids(tx.due_triggers(datetime(2026, 3, 2, 14, 5, tzinfo=UTC), 10)) == ["trg_in"]
        due = tx.due_triggers(datetime(2026, 3, 2, 9, 10, tzinfo=NEW_YORK_WINTER), 10)
    assert ids(due) == ["trg_in", "trg_ny"]
    assert due[1].next_run_at == datetime(2026, 3, 2, 14, 10, tzinfo=UTC)


# -- tenants and keys -------------------------------------------------------------------


def test_it_finds_a_tenant_by_key_hash_until_the_key_is_revoked(db: Database) -> None:
    key_hash = hashlib.sha256(b"tw_secret").hexdigest()
    with db.write() as tx:
        assert tx.create_tenant("acme", NOW)
        assert not tx.create_tenant("acme", NOW)
        assert tx.create_tenant("other", NOW)
        tx.insert_api_key("key_1", "acme", "ci", key_hash, "tw_sec", NOW, "operate")
    with db.read() as tx:
        assert tx.tenant_exists("acme")
        assert not tx.tenant_exists("nobody")
        assert tx.count_tenants() == 2
        assert tx.api_key_for_hash(key_hash) == ApiKey("key_1", "acme", "operate")
        assert tx.api_key_for_hash(hashlib.sha256(b"tw_guess").hexdigest()) is None
        (listed,) = tx.list_api_keys("acme")
        assert tx.list_api_keys("other") == []
    assert listed == {
        "id": "key_1",
        "name": "ci",
        "prefix": "tw_sec",
        "scope": "operate",
        "created_at": NOW,
        "revoked_at": None,
    }
    with db.write() as tx:
        assert not tx.revoke_api_key("other", "key_1", at(1))
        assert tx.revoke_api_key("acme", "key_1", at(1))
        assert not tx.revoke_api_key("acme", "key_1", at(2))
    with db.read() as tx:
        assert tx.api_key_for_hash(key_hash) is None
        assert tx.list_api_keys("acme")[0]["revoked_at"] == at(1)


def test_it_stores_each_key_hash_once(db: Database) -> None:
    with db.write() as tx:
        tx.create_tenant("acme", NOW)
        tx.insert_api_key("key_1", "acme", "", "h" * 64, "tw_a", NOW)
    with pytest.raises(sa.exc.IntegrityError), db.write() as tx:
        tx.insert_api_key("key_2", "acme", "", "h" * 64, "tw_b", NOW)


# -- projects, refs, agents -------------------------------------------------------------


def test_creating_a_project_creates_its_main_ref(db: Database) -> None:
    with db.write() as tx:
        tx.create_tenant("acme", NOW)
        project, created = tx.upsert_project("acme", "web", "Web", "the site", NOW)
        assert created
        assert (project.name, project.description, project.created_at) == ("Web", "the site", NOW)
        again, created_again = tx.upsert_project("acme", "web", "Web 2", "", at(1))
        assert not created_again
    with db.read() as tx:
        (main,) = tx.list_refs("acme", "web")
        assert [p.id for p in tx.list_projects("acme", None, 10)] == ["web"]
    assert (main.name, main.revision) == ("main", 0)
    assert (again.name, again.description) == ("Web 2", "")
    assert (again.created_at, again.updated_at) == (NOW, at(1))


def test_it_pages_projects_by_id(db: Database) -> None:
    with db.write() as tx:
        tx.create_tenant("acme", NOW)
        for name in ("c", "a", "b"):
            tx.upsert_project("acme", name, name, "", NOW)
        first = tx.list_projects("acme", None, 2)
        second = tx.list_projects("acme", first[-1].id, 2)
    assert [p.id for p in first] == ["a", "b"]
    assert [p.id for p in second] == ["c"]


def test_ref_revisions_only_go_up(scoped: Database) -> None:
    with scoped.write() as tx:
        start = tx.get_ref(TENANT, PROJECT, "main")
        assert start is not None
        bumped = [tx.bump_ref(TENANT, PROJECT, "main", at(i)) for i in range(1, 4)]
        assert tx.bump_ref(TENANT, PROJECT, "feature", NOW) == 1
        ref = tx.get_ref(TENANT, PROJECT, "main")
    assert bumped == [start.revision + 1, start.revision + 2, start.revision + 3]
    assert ref is not None
    assert (ref.revision, ref.updated_at) == (start.revision + 3, at(3))


def test_an_agent_write_bumps_the_revision_only_when_something_changed(db: Database) -> None:
    target = {"type": "webhook", "url": "https://example.com/hook", "secret": "s"}
    with db.write() as tx:
        tx.create_tenant("acme", NOW)
        tx.upsert_project("acme", "web", "Web", "", NOW)
        agent, created = tx.upsert_agent("acme", "web", "dev", "bot", "Bot", target, NOW)
        assert created
        assert agent.target == target
        revision = tx.get_ref("acme", "web", "dev")
        assert revision is not None
        assert revision.revision == 1
        same, created = tx.upsert_agent("acme", "web", "dev", "bot", "Bot", dict(target), at(1))
        assert not created
        assert same.updated_at == NOW
        unchanged = tx.get_ref("acme", "web", "dev")
        changed, _ = tx.upsert_agent(
            "acme", "web", "dev", "bot", "Bot", target | {"url": "https://x.test"}, at(2)
        )
        bumped = tx.get_ref("acme", "web", "dev")
    assert unchanged is not None
    assert unchanged.revision == 1
    assert bumped is not None
    assert bumped.revision == 2
    assert (changed.target["url"], changed.updated_at, changed.created_at) == (
        "https://x.test",
        at(2),
        NOW,
    )


# -- triggers ---------------------------------------------------------------------------


def test_a_trigger_reads_back_as_it_was_written(scoped: Database) -> None:
    trigger = rows.trigger(
        "trg_1",
        cron_expression=None,
        run_at=datetime(2026, 3, 3, 12, 0, 0, 500, tzinfo=KOLKATA),
        timezone="Asia/Kolkata",
        payload={"nested": {"list": [1, "two", None]}, "unicode": "déjà vu"},
        message_template="Hello {{ name }}",
        next_run_at=datetime(2026, 3, 3, 6, 30, 0, 500, tzinfo=UTC),
        created_by="key_1",
    )
    add_triggers(scoped, trigger)
    with scoped.read() as tx:
        got = tx.get_trigger("trg_1")
        assert tx.get_trigger("trg_missing") is None
    assert got == trigger
    assert got is not None
    assert got.run_at is not None
    assert got.run_at.tzinfo is UTC


def test_it_updates_and_deletes_a_trigger(scoped: Database) -> None:
    add_triggers(scoped, rows.trigger("trg_1"))
    with scoped.write() as tx:
        locked = tx.get_trigger("trg_1", for_update=True)
        assert locked is not None
        tx.update_trigger("trg_1", {"name": "renamed", "enabled": False, "updated_at": at(1)})
        updated = tx.get_trigger("trg_1")
        assert tx.delete_trigger("trg_1")
        assert not tx.delete_trigger("trg_1")
        assert tx.get_trigger("trg_1") is None
    assert updated == replace(locked, name="renamed", enabled=False, updated_at=at(1))


def test_trigger_lists_filter_by_ref_and_agent(scoped: Database) -> None:
    with scoped.write() as tx:
        tx.upsert_agent(TENANT, PROJECT, "main", "other", "Other", {"type": "python"}, NOW)
        tx.upsert_agent(TENANT, PROJECT, "dev", AGENT, "Bot", {"type": "python"}, NOW)
    add_triggers(
        scoped,
        rows.trigger("trg_a"),
        rows.trigger("trg_b", agent_id="other"),
        rows.trigger("trg_c", ref="dev"),
    )
    with scoped.read() as tx:
        assert ids(tx.list_triggers(TENANT, PROJECT)) == ["trg_a", "trg_b", "trg_c"]
        assert ids(tx.list_triggers(TENANT, PROJECT, ref="main")) == ["trg_a", "trg_b"]
        assert ids(tx.list_triggers(TENANT, PROJECT, ref="main", agent_id=AGENT)) == ["trg_a"]
        assert ids(tx.list_triggers(TENANT, "elsewhere")) == []
        assert tx.trigger_ids_in_scope(TENANT, PROJECT, ref="dev") == ["trg_c"]
        assert sorted(tx.trigger_ids_in_scope(TENANT, PROJECT, agent_id="other")) == ["trg_b"]


def test_trigger_pages_are_stable_under_inserts(scoped: Database) -> None:
    existing = [f"trg_{c}" for c in "bdfhjl"]
    add_triggers(scoped, *(rows.trigger(i) for i in existing))
    seen: list[str] = []
    with scoped.read() as tx:
        page = tx.list_triggers(TENANT, PROJECT, limit=2)
    seen += ids(page)
    # One sorts before the cursor, one between pages yet to come, one after them all.
    add_triggers(scoped, rows.trigger("trg_a"), rows.trigger("trg_g"), rows.trigger("trg_z"))
    while page:
        with scoped.read() as tx:
            page = tx.list_triggers(TENANT, PROJECT, after=seen[-1], limit=2)
        seen += ids(page)
    assert len(seen) == len(set(seen))
    assert set(existing) <= set(seen)
    assert seen == sorted(seen)


# -- due triggers -----------------------------------------------------------------------


def test_only_due_triggers_are_due_oldest_first_up_to_the_limit(scoped: Database) -> None:
    add_triggers(
        scoped,
        rows.trigger("trg_later", next_run_at=at(-1)),
        rows.trigger("trg_oldest", next_run_at=at(-30)),
        rows.trigger("trg_exactly_now", next_run_at=NOW),
        rows.trigger("trg_future", next_run_at=at(0.001)),
        rows.trigger("trg_unscheduled", next_run_at=None, enabled=False),
    )
    with scoped.write() as tx:
        assert ids(tx.due_triggers(NOW, 10)) == ["trg_oldest", "trg_later", "trg_exactly_now"]
        assert ids(tx.due_triggers(NOW, 2)) == ["trg_oldest", "trg_later"]
        assert tx.earliest_next_run_at() == at(-30)
    with scoped.read() as tx:
        assert ids(tx.due_triggers(at(-31), 10)) == []


def test_set_next_runs_moves_each_trigger(scoped: Database) -> None:
    add_triggers(
        scoped,
        rows.trigger("trg_1", next_run_at=at(-5)),
        rows.trigger("trg_2", next_run_at=at(-1)),
        rows.trigger("trg_3", next_run_at=at(-1)),
    )
    with scoped.write() as tx:
        tx.set_next_runs([])
        tx.set_next_runs(
            [
                NextRun(
                    id="trg_1",
                    next_run_at=datetime(2026, 3, 2, 14, 35, tzinfo=KOLKATA),
                    enabled=True,
                    last_error=None,
                    updated_at=NOW,
                ),
                NextRun(
                    id="trg_2",
                    next_run_at=None,
                    enabled=False,
                    last_error="schedule cannot be computed",
                    updated_at=at(1),
                ),
            ]
        )
        one, two, three = (tx.get_trigger(i) for i in ("trg_1", "trg_2", "trg_3"))
        assert ids(tx.due_triggers(NOW, 10)) == ["trg_3"]
        assert tx.earliest_next_run_at() == at(-1)
    assert one is not None
    assert one.next_run_at == at(5)
    assert two is not None
    assert (two.next_run_at, two.enabled, two.last_error, two.updated_at) == (
        None,
        False,
        "schedule cannot be computed",
        at(1),
    )
    assert three is not None
    assert three.next_run_at == at(-1)


# -- invocations: insert ----------------------------------------------------------------


def test_a_known_idempotency_key_is_skipped_and_only_new_ids_come_back(db: Database) -> None:
    with db.write() as tx:
        assert tx.insert_invocations([]) == []
        first = tx.insert_invocations([rows.new_invocation("inv_1", idempotency_key="sched:a")])
        again = tx.insert_invocations(
            [
                rows.new_invocation("inv_2", idempotency_key="sched:a"),
                rows.new_invocation("inv_3", idempotency_key="sched:b"),
                rows.new_invocation("inv_4", idempotency_key="sched:b"),
            ]
        )
        kept = tx.get_invocation("inv_1")
        assert tx.get_invocation("inv_2") is None
        assert tx.get_invocation("inv_4") is None
    assert first == ["inv_1"]
    assert again == ["inv_3"]
    assert kept is not None
    assert kept.idempotency_key == "sched:a"


def test_an_invocation_reads_back_as_it_was_written(db: Database) -> None:
    row = rows.new_invocation(
        "inv_1",
        origin="manual",
        scheduled_for=datetime(2026, 3, 2, 14, 30, 0, 42, tzinfo=KOLKATA),
        payload={"a": [1, 2, {"b": None}]},
    )
    add_invocations(db, row)
    got = invocation(db, "inv_1")
    assert got.scheduled_for == at(0) + timedelta(microseconds=42)
    assert (got.origin, got.status, got.attempt, got.payload) == (
        "manual",
        PENDING,
        0,
        {"a": [1, 2, {"b": None}]},
    )
    assert (got.lease_owner, got.started_at, got.result) == (None, None, None)


# -- invocations: claim -----------------------------------------------------------------


def test_a_claim_takes_only_pending_invocations_that_may_start(db: Database) -> None:
    add_invocations(
        db,
        rows.new_invocation("inv_due", not_before=at(-1)),
        rows.new_invocation("inv_now", not_before=NOW),
        rows.new_invocation("inv_future", not_before=at(0.001)),
        rows.new_invocation("inv_missed", status=MISSED, not_before=at(-5), completed_at=NOW),
        rows.new_invocation("inv_cancelled", status=CANCELLED, not_before=at(-5), completed_at=NOW),
    )
    lease = at(0.5)
    with db.write() as tx:
        claimed = tx.claim_invocations(NOW, 10, "w1", lease, "dep_a")
        attempts = {i: tx.list_attempts(i) for i in ("inv_due", "inv_now", "inv_future")}
    assert ids(claimed) == ["inv_due", "inv_now"]
    for inv in claimed:
        assert (inv.status, inv.attempt, inv.lease_owner) == (RUNNING, 1, "w1")
        assert (inv.lease_expires_at, inv.deployment_id, inv.started_at) == (lease, "dep_a", NOW)
        assert invocation(db, inv.id) == inv
        (attempt,) = attempts[inv.id]
        assert (attempt.attempt, attempt.worker_id, attempt.deployment_id) == (1, "w1", "dep_a")
        assert (attempt.started_at, attempt.ended_at, attempt.outcome) == (NOW, None, None)
    assert attempts["inv_future"] == []
    assert invocation(db, "inv_future").status == PENDING
    assert invocation(db, "inv_missed").status == MISSED
    assert invocation(db, "inv_cancelled").status == CANCELLED


def test_claims_respect_the_limit_and_never_take_a_row_twice(db: Database) -> None:
    add_invocations(db, *(rows.new_invocation(f"inv_{i}", not_before=at(-i)) for i in range(5)))
    first = claim(db, NOW, 2, "w1")
    second = claim(db, NOW, 2, "w2")
    third = claim(db, NOW, 2, "w3")
    assert ids(first) == ["inv_4", "inv_3"]
    assert ids(second) == ["inv_2", "inv_1"]
    assert ids(third) == ["inv_0"]
    assert claim(db, at(60), 10, "w4") == []
    assert invocation(db, "inv_4").lease_owner == "w1"


def test_a_claim_in_another_zone_records_the_same_instants(db: Database) -> None:
    add_invocations(db, rows.new_invocation("inv_1"))
    now = NOW.astimezone(KOLKATA)
    with db.write() as tx:
        (claimed,) = tx.claim_invocations(now, 1, "w1", now + timedelta(seconds=30), "dep_a")
        (attempt,) = tx.list_attempts("inv_1")
    assert claimed.started_at == NOW
    assert claimed.lease_expires_at == at(0.5)
    assert attempt.started_at == NOW
    stored = invocation(db, "inv_1")
    assert stored.started_at == NOW
    assert stored.started_at is not None
    assert stored.started_at.tzinfo is UTC


def test_a_retried_invocation_keeps_its_first_start_and_counts_attempts(db: Database) -> None:
    add_invocations(db, rows.new_invocation("inv_1"))
    (first,) = claim(db, NOW, 1)
    with db.write() as tx:
        settled = tx.settle_invocations(
            [settle_row("inv_1", "w1", PENDING, not_before=at(1), last_error="HTTP 503")]
        )
        tx.finish_attempts(
            [
                AttemptEnd(
                    invocation_id="inv_1",
                    attempt=1,
                    ended_at=at(0.1),
                    outcome=FAILED,
                    error="HTTP 503",
                )
            ]
        )
    assert settled == ["inv_1"]
    waiting = invocation(db, "inv_1")
    assert (waiting.status, waiting.not_before, waiting.lease_owner) == (PENDING, at(1), None)
    assert waiting.last_error == "HTTP 503"
    assert claim(db, at(0.5), 1) == []
    (second,) = claim(db, at(1), 1, "w2")
    with db.read() as tx:
        attempts = tx.list_attempts("inv_1")
    assert (second.attempt, second.started_at, second.lease_owner) == (2, NOW, "w2")
    assert [(a.attempt, a.worker_id, a.outcome, a.ended_at) for a in attempts] == [
        (1, "w1", FAILED, at(0.1)),
        (2, "w2", None, None),
    ]
    assert first.attempt == 1


# -- invocations: settle, cancel, leases ------------------------------------------------


def test_settling_completes_only_what_the_worker_still_holds(db: Database) -> None:
    add_invocations(db, rows.new_invocation("inv_1"), rows.new_invocation("inv_2"))
    claim(db, NOW, 2)
    with db.write() as tx:
        stolen = tx.settle_invocations([settle_row("inv_1", "w_other", COMPLETED)])
        done = tx.settle_invocations(
            [
                settle_row(
                    "inv_1",
                    "w1",
                    COMPLETED,
                    result={"conversation_id": "c-1", "status": 200},
                    conversation_id="c-1",
                    completed_at=at(1),
                )
            ]
        )
        late = tx.settle_invocations([settle_row("inv_1", "w1", FAILED, completed_at=at(2))])
    assert stolen == []
    assert done == ["inv_1"]
    assert late == []
    completed = invocation(db, "inv_1")
    assert (completed.status, completed.completed_at, completed.conversation_id) == (
        COMPLETED,
        at(1),
        "c-1",
    )
    assert completed.result == {"conversation_id": "c-1", "status": 200}
    assert (completed.lease_owner, completed.lease_expires_at) == (None, None)
    assert invocation(db, "inv_2").status == RUNNING


def test_a_cancel_is_never_overwritten_by_a_late_settle(db: Database) -> None:
    add_invocations(db, rows.new_invocation("inv_1"))
    claim(db, NOW, 1)
    with db.write() as tx:
        assert tx.cancel_invocations(["inv_1"], at(1), "cancelled by user") == ["inv_1"]
    with db.write() as tx:
        for status in (COMPLETED, FAILED, PENDING, RUNNING):
            row = settle_row("inv_1", "w1", status, completed_at=at(2), not_before=at(3))
            assert tx.settle_invocations([row]) == []
        assert tx.renew_leases(["inv_1"], "w1", at(5)) == []
        assert tx.not_running(["inv_1"]) == ["inv_1"]
    cancelled = invocation(db, "inv_1")
    assert (cancelled.status, cancelled.status_reason) == (CANCELLED, "cancelled by user")
    assert (cancelled.completed_at, cancelled.not_before, cancelled.lease_owner) == (
        at(1),
        NOW,
        None,
    )
    assert claim(db, at(10), 1) == []


def test_cancel_only_touches_active_invocations_and_closes_open_attempts(db: Database) -> None:
    add_invocations(
        db,
        rows.new_invocation("inv_running"),
        rows.new_invocation("inv_pending", not_before=at(5)),
        rows.new_invocation("inv_done"),
        rows.new_invocation("inv_missed", status=MISSED, completed_at=NOW),
    )
    claim(db, NOW, 2)  # inv_running and inv_done
    with db.write() as tx:
        tx.settle_invocations([settle_row("inv_done", "w1", COMPLETED, completed_at=at(1))])
        tx.finish_attempts(
            [
                AttemptEnd(
                    invocation_id="inv_done",
                    attempt=1,
                    ended_at=at(1),
                    outcome=COMPLETED,
                    error=None,
                )
            ]
        )
        assert tx.cancel_invocations([], at(2), "nothing") == []
        cancelled = tx.cancel_invocations(
            ["inv_running", "inv_pending", "inv_done", "inv_missed", "inv_unknown"],
            at(2),
            "trigger disabled",
        )
        attempts = {i: tx.list_attempts(i) for i in ("inv_running", "inv_done")}
    assert sorted(cancelled) == ["inv_pending", "inv_running"]
    for inv_id in ("inv_running", "inv_pending"):
        inv = invocation(db, inv_id)
        assert (inv.status, inv.status_reason, inv.completed_at) == (
            CANCELLED,
            "trigger disabled",
            at(2),
        )
        assert (inv.lease_owner, inv.lease_expires_at) == (None, None)
    assert invocation(db, "inv_done").status == COMPLETED
    assert invocation(db, "inv_missed").status == MISSED
    (running_attempt,) = attempts["inv_running"]
    assert (running_attempt.ended_at, running_attempt.outcome, running_attempt.error) == (
        at(2),
        CANCELLED,
        "trigger disabled",
    )
    (done_attempt,) = attempts["inv_done"]
    assert (done_attempt.ended_at, done_attempt.outcome) == (at(1), COMPLETED)


def test_only_the_lease_owner_renews_its_leases(db: Database) -> None:
    add_invocations(db, *(rows.new_invocation(f"inv_{i}", not_before=at(-3 + i)) for i in range(3)))
    claim(db, NOW, 2, "w1")
    held = ["inv_0", "inv_1"]
    with db.write() as tx:
        assert tx.renew_leases([], "w1", at(1)) == []
        assert tx.renew_leases(["inv_0", "inv_1", "inv_2"], "w2", at(1)) == []
        renewed = tx.renew_leases(["inv_0", "inv_1", "inv_2"], "w1", at(1))
    assert sorted(renewed) == held
    for inv_id in held:
        assert invocation(db, inv_id).lease_expires_at == at(1)
    assert invocation(db, "inv_2").lease_expires_at is None


def test_expired_leases_are_those_of_running_invocations_past_their_expiry(db: Database) -> None:
    add_invocations(db, *(rows.new_invocation(f"inv_{i}") for i in range(4)))
    for i, lease in enumerate((at(3), at(1), at(2))):
        with db.write() as tx:
            tx.claim_invocations(NOW, 1, f"w{i}", lease, "dep_a")
    with db.write() as tx:
        # A completed invocation never holds a lease, however old.
        (completed,) = tx.claim_invocations(NOW, 1, "w9", at(0.5), "dep_a")
        tx.settle_invocations([settle_row(completed.id, "w9", COMPLETED, completed_at=NOW)])
        assert tx.expired_leases(at(1), 10) == []
        assert [i.lease_expires_at for i in tx.expired_leases(at(2.5), 10)] == [at(1), at(2)]
        expired = tx.expired_leases(at(10), 2)
        assert tx.earliest_lease_expiry() == at(1)
    assert [i.lease_expires_at for i in expired] == [at(1), at(2)]
    assert [i.lease_owner for i in expired] == ["w1", "w2"]


def test_it_reports_active_invocations_per_trigger(db: Database) -> None:
    add_invocations(
        db,
        rows.new_invocation("inv_1", trigger_id="trg_1"),
        rows.new_invocation("inv_2", trigger_id="trg_1", not_before=at(1)),
        rows.new_invocation("inv_3", trigger_id="trg_1", status=MISSED, completed_at=NOW),
        rows.new_invocation("inv_4", trigger_id="trg_2", status=CANCELLED, completed_at=NOW),
    )
    claim(db, NOW, 1)
    with db.read() as tx:
        assert tx.active_counts(["trg_1", "trg_2", "trg_3"]) == {"trg_1": 2}
        assert tx.active_counts([]) == {}
        assert tx.active_invocation_ids(["trg_1", "trg_2"]) == ["inv_1", "inv_2"]
        assert tx.active_invocation_ids(["trg_1"], [RUNNING]) == ["inv_1"]
        assert tx.active_invocation_ids([]) == []
        assert tx.earliest_claimable() == at(1)


# -- invocations: lists -----------------------------------------------------------------


@pytest.fixture
def history(db: Database) -> Database:
    """inv_01..inv_06: trg_a has the odd ones, trg_b the even ones, an hour apart."""
    statuses = [COMPLETED, FAILED, PENDING, COMPLETED, MISSED, PENDING]
    add_invocations(
        db,
        *(
            rows.new_invocation(
                f"inv_{i:02d}",
                trigger_id="trg_a" if i % 2 else "trg_b",
                status=status,
                scheduled_for=at(60 * i),
                not_before=at(60 * i),
            )
            for i, status in enumerate(statuses, start=1)
        ),
        rows.new_invocation("inv_99", project_id="elsewhere"),
    )
    return db


def listed(
    db: Database, *, before: str | None = None, limit: int = 50, **filters: Any
) -> list[str]:
    fields: dict[str, Any] = {k: tuple(v) if k == "statuses" else v for k, v in filters.items()}
    where = InvocationFilter(**fields)
    with db.read() as tx:
        return ids(tx.list_invocations(TENANT, PROJECT, where, before=before, limit=limit))


def test_invocation_lists_are_newest_first_within_the_project(history: Database) -> None:
    all_ids = [f"inv_{i:02d}" for i in range(6, 0, -1)]
    assert listed(history) == all_ids
    assert listed(history, limit=2) == all_ids[:2]


def test_invocation_lists_filter_by_status_time_and_trigger(history: Database) -> None:
    assert listed(history, statuses=[PENDING]) == ["inv_06", "inv_03"]
    assert listed(history, statuses=[COMPLETED, FAILED]) == ["inv_04", "inv_02", "inv_01"]
    assert listed(history, trigger_id="trg_a") == ["inv_05", "inv_03", "inv_01"]
    # ``from`` is inclusive, ``to`` exclusive.
    assert listed(history, scheduled_from=at(120), scheduled_to=at(240)) == ["inv_03", "inv_02"]
    assert listed(history, scheduled_from=at(120).astimezone(KOLKATA)) == [
        "inv_06",
        "inv_05",
        "inv_04",
        "inv_03",
        "inv_02",
    ]
    assert listed(history, trigger_id="trg_b", statuses=[PENDING], scheduled_to=at(360)) == []


def test_invocation_pages_are_stable_under_inserts(history: Database) -> None:
    seen: list[str] = []
    page = listed(history, limit=2)
    seen += page
    add_invocations(history, rows.new_invocation("inv_07"), rows.new_invocation("inv_035"))
    while page:
        page = listed(history, before=seen[-1], limit=2)
        seen += page
    assert len(seen) == len(set(seen))
    assert {f"inv_{i:02d}" for i in range(1, 7)} <= set(seen)
    assert "inv_07" not in seen  # newer than the first page: a fresh listing shows it
    assert seen == sorted(seen, reverse=True)


# -- scheduler state and deployments ----------------------------------------------------


def test_the_scheduler_state_starts_empty_and_is_written_whole(db: Database) -> None:
    with db.read() as tx:
        assert tx.scheduler_state() == SchedulerState(None, None, 0, None, None)
    state = SchedulerState("run_1", "dep_a", 1, at(1), NOW)
    with db.write() as tx:
        tx.write_scheduler_state(state)
        assert tx.scheduler_state(for_update=True) == state


def test_a_stale_generation_or_run_id_cannot_hold_the_fence(db: Database) -> None:
    with db.write() as tx:
        tx.write_scheduler_state(SchedulerState("run_1", "dep_a", 4, at(1), NOW))
        assert tx.hold_fence("run_1", 4, at(0.5), at(2))
        assert not tx.hold_fence("run_1", 3, at(0.5), at(3))
        assert not tx.hold_fence("run_2", 4, at(0.5), at(3))
        held = tx.scheduler_state()
    assert (held.heartbeat_at, held.lease_expires_at) == (at(0.5), at(2))
    with db.write() as tx:
        # A takeover raises the generation: the old holder is fenced out at once.
        tx.write_scheduler_state(SchedulerState("run_2", "dep_b", 5, at(4), at(1)))
    with db.write() as tx:
        assert not tx.hold_fence("run_1", 4, at(1), at(5))
        assert tx.hold_fence("run_2", 5, at(1), at(5))
        state = tx.scheduler_state()
    assert state == SchedulerState("run_2", "dep_b", 5, at(5), at(1))


def test_a_deployment_keeps_its_first_start(db: Database) -> None:
    with db.write() as tx:
        tx.upsert_deployment("dep_b", "1.1", at(10))
        tx.upsert_deployment("dep_a", "1.0", NOW)
        tx.upsert_deployment("dep_a", "1.0.1", at(20))
        deployments = tx.list_deployments()
    assert [(d.id, d.version, d.started_at, d.heartbeat_at) for d in deployments] == [
        ("dep_a", "1.0.1", NOW, at(20)),
        ("dep_b", "1.1", at(10), at(10)),
    ]


def make_process(process_id: str, deployment: str, expires: datetime, **overrides: Any) -> Process:
    values: dict[str, Any] = {
        "id": process_id,
        "deployment_id": deployment,
        "version": "1.0",
        "host": "web-1",
        "pid": 4242,
        "roles": ["api", "scheduler", "worker"],
        "handlers": ["reports.daily"],
        "started_at": NOW,
        "heartbeat_at": NOW,
        "expires_at": expires,
    }
    return Process(**(values | overrides))


def test_a_process_row_is_renewed_in_place_and_keeps_its_start(db: Database) -> None:
    with db.write() as tx:
        tx.upsert_process(make_process("prc_1", "dep_a", at(1)))
        tx.upsert_process(
            make_process("prc_1", "dep_a", at(3), started_at=at(2), heartbeat_at=at(2))
        )
        [row] = tx.list_processes()
    assert row == make_process("prc_1", "dep_a", at(3), heartbeat_at=at(2))


def test_live_processes_are_those_not_yet_expired_and_old_rows_can_be_dropped(
    db: Database,
) -> None:
    with db.write() as tx:
        tx.upsert_process(make_process("prc_live", "dep_a", at(1)))
        tx.upsert_process(make_process("prc_edge", "dep_a", NOW))
        tx.upsert_process(make_process("prc_old", "dep_a", at(-90)))
        assert {p.id for p in tx.list_processes(live_at=NOW)} == {"prc_live"}
        assert tx.delete_processes_expired_before(at(-60)) == 1
        assert {p.id for p in tx.list_processes()} == {"prc_live", "prc_edge"}
        assert tx.delete_process("prc_edge")
        assert not tx.delete_process("prc_edge")


def test_the_current_deployment_is_the_newest_with_a_live_process(db: Database) -> None:
    with db.write() as tx:
        assert tx.current_deployment_at(NOW) is None
        tx.upsert_deployment("dep_old", "1.0", at(-30))
        tx.upsert_deployment("dep_new", "1.1", at(-10))
        tx.upsert_deployment("dep_idle", "1.2", at(-5))  # never had a live process
        tx.upsert_process(make_process("prc_old", "dep_old", at(1)))
        tx.upsert_process(make_process("prc_new", "dep_new", at(1)))
        assert tx.current_deployment_at(NOW) == "dep_new"
        # The newest one's process expires: the older one is current again.
        assert tx.current_deployment_at(at(1)) is None
        tx.upsert_process(make_process("prc_new", "dep_new", NOW))
        assert tx.current_deployment_at(NOW) == "dep_old"


def test_only_processes_of_the_role_make_a_deployment_current_for_it(db: Database) -> None:
    with db.write() as tx:
        tx.upsert_deployment("dep_old", "1.0", at(-30))
        tx.upsert_deployment("dep_new", "1.1", at(-10))
        tx.upsert_process(make_process("prc_old", "dep_old", at(1)))
        # The new release's API replicas and scheduler start before its workers.
        tx.upsert_process(make_process("prc_api", "dep_new", at(1), roles=["api"]))
        assert tx.current_deployment_at(NOW, "worker") == "dep_old"
        assert tx.current_deployment_at(NOW, "scheduler") == "dep_old"
        tx.upsert_process(make_process("prc_sched", "dep_new", at(1), roles=["scheduler"]))
        assert tx.current_deployment_at(NOW, "worker") == "dep_old"
        assert tx.current_deployment_at(NOW, "scheduler") == "dep_new"


# -- concurrency (PostgreSQL: SKIP LOCKED) ----------------------------------------------


def in_two_transactions(db: Database, work: Callable[[Tx], list[_T]]) -> tuple[list[_T], list[_T]]:
    """Run ``work`` in two overlapping write transactions on two connections: the second
    runs while the first still holds whatever it locked; both commit afterwards."""
    first_done, second_done = threading.Event(), threading.Event()

    def first() -> list[_T]:
        with db.write() as tx:
            got = work(tx)
            first_done.set()
            assert second_done.wait(WAIT), "the second transaction was blocked"
            return got

    def second() -> list[_T]:
        assert first_done.wait(WAIT)
        try:
            with db.write() as tx:
                return work(tx)
        finally:
            second_done.set()

    with ThreadPoolExecutor(max_workers=2) as pool:
        a, b = pool.submit(first), pool.submit(second)
        return a.result(timeout=3 * WAIT), b.result(timeout=3 * WAIT)


@pytest.fixture
def postgres_only(db: Database) -> None:
    if not db.is_postgres:
        pytest.skip("row locks with SKIP LOCKED are PostgreSQL's; SQLite has one writer")


@pytest.mark.usefixtures("postgres_only")
def test_concurrent_schedulers_lock_disjoint_due_triggers(scoped: Database) -> None:
    add_triggers(scoped, *(rows.trigger(f"trg_{i}", next_run_at=at(-10 + i)) for i in range(6)))
    first, second = in_two_transactions(scoped, lambda tx: tx.due_triggers(NOW, 3))
    assert ids(first) == ["trg_0", "trg_1", "trg_2"]
    assert ids(second) == ["trg_3", "trg_4", "trg_5"]


@pytest.mark.usefixtures("postgres_only")
def test_concurrent_workers_claim_disjoint_invocations(db: Database) -> None:
    add_invocations(
        db, *(rows.new_invocation(f"inv_{i}", not_before=at(-10 + i)) for i in range(6))
    )
    first, second = in_two_transactions(
        db, lambda tx: tx.claim_invocations(NOW, 3, "w", at(1), "dep_a")
    )
    assert ids(first) == ["inv_0", "inv_1", "inv_2"]
    assert ids(second) == ["inv_3", "inv_4", "inv_5"]
    with db.read() as tx:
        assert all(len(tx.list_attempts(f"inv_{i}")) == 1 for i in range(6))


def test_agents_at_head_resolves_every_agent_of_a_claim_in_one_query(db: Database) -> None:
    target = {"type": "webhook", "url": "https://example.com/hook"}
    with db.write() as tx:
        tx.create_tenant(TENANT, NOW)
        tx.upsert_project(TENANT, PROJECT, "Web", "", NOW)
        tx.upsert_agent(TENANT, PROJECT, "main", "bot", "Bot", target, NOW)
        tx.upsert_agent(TENANT, PROJECT, "main", "gone", "Gone", target, NOW)
        tx.upsert_agent(TENANT, PROJECT, "dev", "bot", "Dev bot", {"type": "python"}, NOW)
        tx.delete_agent(TENANT, PROJECT, "main", "gone")
        main, dev = tx.get_ref(TENANT, PROJECT, "main"), tx.get_ref(TENANT, PROJECT, "dev")
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    sa.event.listen(db.engine, "before_cursor_execute", count)
    keys = [
        (TENANT, PROJECT, "main", "bot"),
        (TENANT, PROJECT, "dev", "bot"),
        (TENANT, PROJECT, "main", "gone"),
        (TENANT, PROJECT, "nowhere", "bot"),
        (TENANT, PROJECT, "main", "bot"),
    ]
    try:
        with db.read() as tx:
            heads = tx.agents_at_head(keys)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert main is not None
    assert dev is not None
    assert {key: (agent.name, revision) for key, (agent, revision) in heads.items()} == {
        (TENANT, PROJECT, "main", "bot"): ("Bot", main.revision),
        (TENANT, PROJECT, "dev", "bot"): ("Dev bot", dev.revision),
    }
    assert heads[(TENANT, PROJECT, "main", "bot")][0].target == target
    assert len([s for s in statements if "agents" in s]) == 1


def _backlogs(db: Database) -> None:
    """Tenant acme: 300 due invocations older than everyone's; globex: 3 due and one not
    yet; initech: 2 due, the oldest of the others; umbrella: only one not due yet."""
    backlog = [rows.new_invocation(f"inv_a{i:03d}", not_before=at(-1000 + i)) for i in range(300)]
    others = [
        *(
            rows.new_invocation(f"inv_g{i}", tenant_id="globex", not_before=at(-10 + i))
            for i in range(3)
        ),
        rows.new_invocation("inv_g_later", tenant_id="globex", not_before=at(5)),
        *(
            rows.new_invocation(f"inv_i{i}", tenant_id="initech", not_before=at(-20 + i))
            for i in range(2)
        ),
        rows.new_invocation("inv_u_later", tenant_id="umbrella", not_before=at(5)),
    ]
    add_invocations(db, *backlog, *others)


def test_looking_past_a_backlog_finds_the_others_oldest_due_first(db: Database) -> None:
    _backlogs(db)
    with db.write() as tx:
        past = tx.claim_candidates(NOW, 10, {TENANT})
        limited = tx.claim_candidates(NOW, 3, [TENANT])
        without_initech = tx.claim_candidates(NOW, 10, {TENANT, "initech"})
        everyone = tx.claim_candidates(NOW, 2)
        nobody = tx.claim_candidates(NOW, 10, {TENANT, "globex", "initech", "umbrella"})
        earliest = [
            tx.earliest_claimable(excluded)
            for excluded in (
                (),
                {TENANT},
                {TENANT, "initech", "globex"},
                {TENANT, "globex", "initech", "umbrella"},
            )
        ]
    assert ids(past) == ["inv_i0", "inv_i1", "inv_g0", "inv_g1", "inv_g2"]
    assert [c.tenant_id for c in past] == ["initech"] * 2 + ["globex"] * 3
    assert ids(limited) == ["inv_i0", "inv_i1", "inv_g0"]
    assert ids(without_initech) == ["inv_g0", "inv_g1", "inv_g2"]
    assert ids(everyone) == ["inv_a000", "inv_a001"]
    assert nobody == []
    assert past[0] == Candidate("inv_i0", "initech", PROJECT, "main", AGENT, at(-20))
    assert earliest == [at(-1000), at(-20), at(5), None]


def test_a_claim_past_a_backlog_takes_the_others_invocations(db: Database) -> None:
    _backlogs(db)
    with db.write() as tx:
        picked = [c.id for c in tx.claim_candidates(NOW, 4, {TENANT})]
        claimed = tx.claim_ids(picked, NOW, "w1", at(30), "dep_a")
    assert ids(claimed) == ["inv_i0", "inv_i1", "inv_g0", "inv_g1"]
    with db.write() as tx:
        assert ids(tx.claim_candidates(NOW, 4, {TENANT})) == ["inv_g2"]


@pytest.mark.usefixtures("postgres_only")
def test_workers_looking_past_a_backlog_skip_each_others_rows(db: Database) -> None:
    _backlogs(db)
    first, second = in_two_transactions(db, lambda tx: tx.claim_candidates(NOW, 3, {TENANT}))
    # Each of the two tenants gives its share of the limit (two rows), the oldest three
    # of those are returned; the four stay locked until the first commits.
    assert ids(first) == ["inv_i0", "inv_i1", "inv_g0"]
    assert ids(second) == ["inv_g2"]
