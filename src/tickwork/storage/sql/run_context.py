"""Run context (SPEC §13): a trigger's previous completed run, and the tokens its runs
used per UTC day."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from tickwork.storage import tables as t
from tickwork.storage.ports import UsageDay, UsageRow
from tickwork.storage.records import COMPLETED, Invocation
from tickwork.storage.sql.base import TxBase, record


class RunContextSql(TxBase):
    """Previous runs and token usage."""

    def previous_runs(self, trigger_ids: Iterable[str]) -> dict[str, Invocation]:
        c = t.invocations.c
        found: dict[str, Invocation] = {}
        for trigger_id in dict.fromkeys(trigger_ids):
            # The partial index of completed invocations answers this with one probe.
            q = (
                sa.select(t.invocations)
                .where(c.trigger_id == trigger_id, c.status == COMPLETED)
                .order_by(c.completed_at.desc(), c.id.desc())
                .limit(1)
            )
            row = self.conn.execute(q).first()
            if row is not None:
                found[trigger_id] = record(Invocation, row)
        return found

    def record_usage(self, rows: Sequence[UsageRow]) -> None:
        if not rows:
            return
        c = t.invocations.c
        self.conn.execute(
            t.invocations.update()
            .where(c.id == sa.bindparam("b_id"))
            .values(usage=sa.bindparam("b_usage", type_=c.usage.type)),
            [{"b_id": r.invocation_id, "b_usage": dict(r.usage)} for r in rows],
        )
        totals: dict[tuple[str, date], list[int]] = {}
        for r in rows:
            entry = totals.setdefault((r.trigger_id, r.day), [0, 0])
            entry[0] += int(r.usage.get("total_tokens", 0))
            entry[1] += 1
        insert: Any = postgresql.insert if self.postgres else sqlite.insert
        stmt = insert(t.trigger_token_usage)
        u = t.trigger_token_usage.c
        stmt = stmt.on_conflict_do_update(
            index_elements=[u.trigger_id, u.day],
            set_={
                "tokens": u.tokens + stmt.excluded.tokens,
                "invocations": u.invocations + stmt.excluded.invocations,
            },
        )
        # One statement per (trigger, day), sorted: concurrent writers lock in one order.
        for (trigger_id, day), (tokens, count) in sorted(totals.items()):
            self.conn.execute(
                stmt, {"trigger_id": trigger_id, "day": day, "tokens": tokens, "invocations": count}
            )

    def tokens_on(self, trigger_ids: Iterable[str], day: date) -> dict[str, int]:
        ids = sorted(set(trigger_ids))
        if not ids:
            return {}
        u = t.trigger_token_usage.c
        q = sa.select(u.trigger_id, u.tokens).where(u.trigger_id.in_(ids), u.day == day)
        return {str(r.trigger_id): int(r.tokens) for r in self.conn.execute(q)}

    def usage_days(self, trigger_id: str, before: date | None, limit: int) -> list[UsageDay]:
        u = t.trigger_token_usage.c
        q = sa.select(u.day, u.tokens, u.invocations).where(u.trigger_id == trigger_id)
        if before is not None:
            q = q.where(u.day < before)
        q = q.order_by(u.day.desc()).limit(limit)
        return [UsageDay(r.day, int(r.tokens), int(r.invocations)) for r in self.conn.execute(q)]
