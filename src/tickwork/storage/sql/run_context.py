"""Run context (SPEC §13): a trigger's previous completed run, and the tokens its runs
used per UTC day."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from tickwork.storage import tables as t
from tickwork.storage.ports import UsageDay, UsageRow
from tickwork.storage.records import COMPLETED, Invocation
from tickwork.storage.sql.base import TxBase, record

# Triggers per statement when looking up previous runs.
_PREVIOUS_CHUNK = 500
_prev = t.invocations.alias("previous")


class RunContextSql(TxBase):
    """Previous runs and token usage."""

    def previous_runs(self, trigger_ids: Iterable[str]) -> dict[str, Invocation]:
        ids = list(dict.fromkeys(trigger_ids))
        if not ids:
            return {}
        c = t.invocations.c
        found: dict[str, Invocation] = {}
        for start in range(0, len(ids), _PREVIOUS_CHUNK):
            chunk = ids[start : start + _PREVIOUS_CHUNK]
            # One statement for many triggers: the ids go as one parameter (an array on
            # PostgreSQL, a JSON list on SQLite), and a correlated subquery picks each
            # one's latest completed invocation with one probe of the partial index of
            # completed invocations.
            wanted = self._id_list(chunk)
            latest = (
                sa.select(_prev.c.id)
                .where(_prev.c.trigger_id == wanted.c.value, _prev.c.status == COMPLETED)
                .order_by(_prev.c.completed_at.desc(), _prev.c.id.desc())
                .limit(1)
                .correlate(wanted)
                .scalar_subquery()
            )
            q = sa.select(t.invocations).where(c.id.in_(sa.select(latest).select_from(wanted)))
            for row in self.conn.execute(q):
                found[str(row.trigger_id)] = record(Invocation, row)
        return found

    def _id_list(self, ids: list[str]) -> Any:
        """``ids`` as a one-column table (column ``value``) bound as a single parameter."""
        if self.postgres:
            array = sa.bindparam("ids", ids, type_=postgresql.ARRAY(sa.Text()))
            return sa.func.unnest(array).table_valued("value").render_derived(name="wanted")
        listed = sa.bindparam("ids", json.dumps(ids), type_=sa.Text())
        return sa.func.json_each(listed).table_valued("value").alias("wanted")

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
