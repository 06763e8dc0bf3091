"""The run context port (SPEC §13) on every backend: a trigger's previous completed run,
usage stored per invocation and summed per trigger per UTC day."""

from __future__ import annotations

from datetime import date, timedelta

from tests import rows
from tests.rows import NOW
from tickwork.storage.ports import UsageDay, UsageRow
from tickwork.storage.records import COMPLETED, FAILED, RUNNING
from tickwork.storage.sql import Database

from .test_store import add_invocations, claim, invocation, settle_row

MONDAY, TUESDAY = date(2026, 3, 2), date(2026, 3, 3)


def finish(db: Database, invocation_id: str, status: str, minutes: float) -> None:
    with db.write() as tx:
        assert tx.settle_invocations(
            [
                settle_row(
                    invocation_id,
                    "w1",
                    status,
                    completed_at=NOW + timedelta(minutes=minutes),
                    conversation_id=f"conv-{invocation_id}",
                )
            ]
        ) == [invocation_id]


def test_the_previous_run_is_the_latest_completed_one_of_each_trigger(db: Database) -> None:
    add_invocations(
        db,
        rows.new_invocation("inv_a"),
        rows.new_invocation("inv_b", scheduled_for=NOW + timedelta(minutes=1)),
        rows.new_invocation("inv_c", scheduled_for=NOW + timedelta(minutes=2)),
        rows.new_invocation("inv_d", trigger_id="trg_2"),
        rows.new_invocation("inv_e", trigger_id="trg_3"),
    )
    claim(db, NOW, 10)
    finish(db, "inv_a", COMPLETED, 5)
    finish(db, "inv_b", COMPLETED, 9)  # the latest completion
    finish(db, "inv_c", FAILED, 12)  # later, but failed
    finish(db, "inv_d", COMPLETED, 1)
    with db.read() as tx:
        found = tx.previous_runs(["trg_1", "trg_2", "trg_3", "trg_1", "trg_nope"])
    assert {k: v.id for k, v in found.items()} == {"trg_1": "inv_b", "trg_2": "inv_d"}
    assert found["trg_1"].conversation_id == "conv-inv_b"
    assert invocation(db, "inv_e").status == RUNNING  # running is never previous


def test_usage_is_stored_per_invocation_and_summed_per_trigger_per_day(db: Database) -> None:
    add_invocations(db, *(rows.new_invocation(f"inv_{n}") for n in range(4)))
    usage = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    with db.write() as tx:
        tx.record_usage([UsageRow("inv_0", "trg_1", MONDAY, usage)])
    with db.write() as tx:
        tx.record_usage(
            [
                UsageRow("inv_1", "trg_1", MONDAY, {**usage, "total_tokens": 25}),
                UsageRow("inv_2", "trg_1", TUESDAY, usage),
                UsageRow("inv_3", "trg_2", MONDAY, usage),
            ]
        )
        tx.record_usage([])
    assert invocation(db, "inv_1").usage == {**usage, "total_tokens": 25}
    assert invocation(db, "inv_0").usage == usage
    with db.read() as tx:
        assert tx.tokens_on(["trg_1", "trg_2", "trg_3"], MONDAY) == {"trg_1": 40, "trg_2": 15}
        assert tx.tokens_on(["trg_1"], TUESDAY) == {"trg_1": 15}
        assert tx.tokens_on([], MONDAY) == {}
        assert tx.usage_days("trg_1", None, 10) == [
            UsageDay(TUESDAY, 15, 1),
            UsageDay(MONDAY, 40, 2),
        ]
        assert tx.usage_days("trg_1", TUESDAY, 10) == [UsageDay(MONDAY, 40, 2)]
        assert tx.usage_days("trg_1", None, 1) == [UsageDay(TUESDAY, 15, 1)]
