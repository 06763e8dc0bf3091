"""The storage contract of health and the notification outbox (SPEC §11), on every
backend: counts kept in order, late triggers found and forgotten, targets replaced with a
revision, deliveries claimed under a lease by one sender at a time."""

from __future__ import annotations

import threading
from datetime import timedelta

from tests import rows
from tests.contract.test_store import add_invocations, add_triggers, at, scoped
from tests.rows import NOW, PROJECT, TENANT
from tickwork.storage.ports import HealthFilter, OutboxRow, RunEnd, TriggerFilter
from tickwork.storage.sql import Database

__all__ = ["scoped"]


def outbox_row(row_id: str, **overrides: object) -> OutboxRow:
    values: dict[str, object] = {
        "id": row_id,
        "event_id": "evt_" + row_id,
        "tenant_id": TENANT,
        "project_id": PROJECT,
        "event_type": "invocation.failed",
        "target": {"name": "ops", "url": "https://example.com/h"},
        "body": {"id": "evt_" + row_id},
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": NOW,
        "last_error": None,
        "created_at": NOW,
        "delivered_at": None,
    }
    values.update(overrides)
    return OutboxRow(**values)  # type: ignore[arg-type]


def test_run_ends_count_in_the_order_given(scoped: Database) -> None:
    add_triggers(scoped, rows.trigger("trg_1"), rows.trigger("trg_2"))
    add_invocations(
        scoped,
        rows.new_invocation("inv_a"),
        rows.new_invocation("inv_b", idempotency_key="k:b"),
        rows.new_invocation("inv_c", idempotency_key="k:c"),
        rows.new_invocation("inv_d", trigger_id="trg_2", idempotency_key="k:d"),
    )
    with scoped.write() as tx:
        changes = tx.record_run_ends(
            [
                RunEnd("inv_a", False, at(1)),
                RunEnd("inv_b", False, at(2)),
                RunEnd("inv_d", True, at(2)),
                RunEnd("inv_gone", False, at(2)),
            ]
        )
    assert [(c.invocation_id, c.failures_before, c.consecutive_failures) for c in changes] == [
        ("inv_a", 0, 1),
        ("inv_b", 1, 2),
        ("inv_d", 0, 0),
    ]
    with scoped.write() as tx:
        tx.record_run_ends([RunEnd("inv_c", True, at(3))])
        first, second = tx.get_trigger("trg_1"), tx.get_trigger("trg_2")
    assert first is not None
    assert second is not None
    assert (first.consecutive_failures, first.last_failure_at, first.last_success_at) == (
        0,
        at(2),
        at(3),
    )
    assert (second.last_success_at, second.last_failure_at) == (at(2), None)


def test_run_ends_with_their_trigger_read_records_only_for_events(scoped: Database) -> None:
    add_triggers(scoped, rows.trigger("trg_1"), rows.trigger("trg_2", consecutive_failures=2))
    add_invocations(
        scoped,
        rows.new_invocation("inv_a"),
        rows.new_invocation("inv_b", idempotency_key="k:b"),
        rows.new_invocation("inv_c", trigger_id="trg_2", idempotency_key="k:c"),
    )
    with scoped.write() as tx:
        ok, failed, recovered = tx.record_run_ends(
            [
                RunEnd("inv_a", True, at(1), "trg_1"),
                RunEnd("inv_b", False, at(2), "trg_1"),
                RunEnd("inv_c", True, at(3), "trg_2"),
            ]
        )
        stored = tx.get_trigger("trg_1")
    # A plain success causes no event: neither record is read.
    assert (ok.trigger, ok.invocation, ok.consecutive_failures) == (None, None, 0)
    assert failed.trigger is not None
    assert failed.invocation is not None
    assert (failed.trigger.consecutive_failures, failed.trigger.last_success_at) == (1, at(1))
    assert (failed.invocation.id, failed.failures_before) == ("inv_b", 0)
    assert recovered.trigger is not None
    assert recovered.invocation is None
    assert (recovered.failures_before, recovered.trigger.consecutive_failures) == (2, 0)
    assert stored is not None
    assert (stored.consecutive_failures, stored.last_success_at, stored.last_failure_at) == (
        1,
        at(1),
        at(2),
    )


def test_oldest_pending_and_the_health_filter(scoped: Database) -> None:
    add_triggers(
        scoped,
        rows.trigger("trg_1", next_run_at=at(60)),
        rows.trigger("trg_2", next_run_at=at(-10)),
        rows.trigger("trg_3", next_run_at=at(60), consecutive_failures=2),
        rows.trigger("trg_4", enabled=False),
        rows.trigger("trg_5", paused=True),
    )
    add_invocations(
        scoped,
        rows.new_invocation("inv_a", not_before=at(-20)),
        rows.new_invocation("inv_b", not_before=at(-30), idempotency_key="k:b"),
        rows.new_invocation("inv_c", trigger_id="trg_3", not_before=at(5), idempotency_key="k:c"),
    )
    cutoff = at(-5)
    with scoped.read() as tx:
        assert tx.oldest_pending(["trg_1", "trg_2", "trg_3"]) == {"trg_1": at(-30), "trg_3": at(5)}

        def of(health: str) -> list[str]:
            where = TriggerFilter(health=HealthFilter(health, cutoff))
            return [t.id for t in tx.search_triggers(TENANT, PROJECT, where)]

        assert of("late") == ["trg_1", "trg_2"]
        assert of("failing") == ["trg_3"]
        assert of("disabled") == ["trg_4"]
        assert of("paused") == ["trg_5"]
        assert of("ok") == []
        assert [t.id for t in tx.late_triggers(cutoff, 10)] == ["trg_1", "trg_2"]
        assert tx.late_triggers(cutoff, 1)[0].id in ("trg_1", "trg_2")
    with scoped.write() as tx:
        tx.set_late_notified(["trg_1"], NOW)
    with scoped.read() as tx:
        assert [t.id for t in tx.late_triggers(cutoff, 10)] == ["trg_2"]
        assert [t.id for t in tx.told_late(10)] == ["trg_1"]
    with scoped.write() as tx:
        tx.set_late_notified(["trg_1"], None)
        assert tx.told_late(10) == []


def test_targets_are_replaced_with_a_new_revision(scoped: Database) -> None:
    with scoped.write() as tx:
        assert tx.notification_config(TENANT, PROJECT) is None
        first = tx.put_notification_config(TENANT, PROJECT, [{"name": "a"}], NOW)
        second = tx.put_notification_config(TENANT, PROJECT, [{"name": "b"}], at(1))
    assert (first.revision, second.revision) == (1, 2)
    assert (second.targets, second.updated_at) == ([{"name": "b"}], at(1))


def test_a_delivery_is_claimed_under_a_lease_and_finished_once(scoped: Database) -> None:
    with scoped.write() as tx:
        tx.enqueue_notifications([outbox_row("ntf_1"), outbox_row("ntf_2", next_attempt_at=at(5))])
        assert tx.earliest_notification() == NOW
    with scoped.write() as tx:
        [claimed] = tx.claim_notifications(NOW, 10, at(1))
    assert (claimed.id, claimed.attempts, claimed.next_attempt_at) == ("ntf_1", 1, at(1))
    with scoped.write() as tx:
        assert tx.claim_notifications(NOW, 10, at(1)) == []  # leased
        [again] = tx.claim_notifications(at(1), 10, at(2))  # the lease ran out
    assert again.attempts == 2
    with scoped.write() as tx:
        # The first claim's answer comes too late: the row moved on.
        stale = tx.finish_notification(
            "ntf_1", 1, status="delivered", next_attempt_at=at(1), last_error=None,
            delivered_at=at(1),
        )  # fmt: skip
        done = tx.finish_notification(
            "ntf_1", 2, status="delivered", next_attempt_at=at(1), last_error=None,
            delivered_at=at(1),
        )  # fmt: skip
    assert (stale, done) == (False, True)
    with scoped.read() as tx:
        listed = tx.list_notifications(TENANT, PROJECT, None, 10)
        assert [(r.id, r.status) for r in listed] == [("ntf_2", "pending"), ("ntf_1", "delivered")]
        assert [r.id for r in tx.list_notifications(TENANT, PROJECT, "ntf_2", 10)] == ["ntf_1"]
        assert tx.earliest_notification() == at(5)


def test_concurrent_senders_never_claim_one_delivery_twice(scoped: Database) -> None:
    with scoped.write() as tx:
        tx.enqueue_notifications([outbox_row(f"ntf_{i:02d}") for i in range(40)])
    taken: list[str] = []
    lock = threading.Lock()

    def sender() -> None:
        for _ in range(10):
            with scoped.write() as tx:
                claimed = tx.claim_notifications(NOW, 3, NOW + timedelta(minutes=1))
            with lock:
                taken.extend(r.id for r in claimed)

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(taken) == [f"ntf_{i:02d}" for i in range(40)]


def test_deleting_a_project_deletes_its_targets_and_outbox(scoped: Database) -> None:
    with scoped.write() as tx:
        tx.put_notification_config(TENANT, PROJECT, [{"name": "a"}], NOW)
        tx.enqueue_notifications([outbox_row("ntf_1")])
        assert tx.delete_project(TENANT, PROJECT)
    with scoped.read() as tx:
        assert tx.notification_config(TENANT, PROJECT) is None
        assert tx.list_notifications(TENANT, PROJECT, None, 10) == []
        assert tx.earliest_notification() is None
