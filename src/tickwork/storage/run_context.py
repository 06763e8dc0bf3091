"""Run context (SPEC §13): a trigger's previous completed run, and the tokens its runs
used per UTC day.

Functions over an open :class:`~tickwork.storage.sql.Tx`, like the rest of the store:
the caller decides where the transaction begins and ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from tickwork.storage import tables as t
from tickwork.storage.records import COMPLETED, Invocation
from tickwork.storage.sql import Tx

__all__ = ["UsageRow", "previous_runs", "record_usage", "tokens_on", "usage_days"]


@dataclass(frozen=True)
class UsageRow:
    """The usage one completed invocation reported."""

    invocation_id: str
    trigger_id: str
    day: date
    usage: Mapping[str, int]


def previous_runs(tx: Tx, trigger_ids: Iterable[str]) -> dict[str, Invocation]:
    """Each trigger's latest completed invocation (by completion), where it has one."""
    c = t.invocations.c
    found: dict[str, Invocation] = {}
    for trigger_id in dict.fromkeys(trigger_ids):
        q = (
            sa.select(t.invocations)
            .where(c.trigger_id == trigger_id, c.status == COMPLETED)
            .order_by(c.completed_at.desc(), c.id.desc())
            .limit(1)
        )
        row = tx.conn.execute(q).first()
        if row is not None:
            found[trigger_id] = Invocation(**row._mapping)
    return found


def record_usage(tx: Tx, rows: Sequence[UsageRow]) -> None:
    """Store each invocation's usage and add it to its trigger's total for the day."""
    if not rows:
        return
    c = t.invocations.c
    tx.conn.execute(
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
    insert: Any = postgresql.insert if tx.postgres else sqlite.insert
    stmt = insert(t.trigger_token_usage)
    u = t.trigger_token_usage.c
    stmt = stmt.on_conflict_do_update(
        index_elements=[u.trigger_id, u.day],
        set_={
            "tokens": u.tokens + stmt.excluded.tokens,
            "invocations": u.invocations + stmt.excluded.invocations,
        },
    )
    # One statement per (trigger, day): sorted, so concurrent writers lock in one order.
    for (trigger_id, day), (tokens, count) in sorted(totals.items()):
        tx.conn.execute(
            stmt, {"trigger_id": trigger_id, "day": day, "tokens": tokens, "invocations": count}
        )


def tokens_on(tx: Tx, trigger_ids: Iterable[str], day: date) -> dict[str, int]:
    """Tokens each trigger's runs used on ``day`` (UTC); triggers with none are left out."""
    ids = sorted(set(trigger_ids))
    if not ids:
        return {}
    u = t.trigger_token_usage.c
    q = sa.select(u.trigger_id, u.tokens).where(u.trigger_id.in_(ids), u.day == day)
    return {str(r.trigger_id): int(r.tokens) for r in tx.conn.execute(q)}


def usage_days(
    tx: Tx, trigger_id: str, before: date | None, limit: int
) -> list[tuple[date, int, int]]:
    """The trigger's (day, tokens, invocations), newest day first, days before
    ``before`` when given."""
    u = t.trigger_token_usage.c
    q = sa.select(u.day, u.tokens, u.invocations).where(u.trigger_id == trigger_id)
    if before is not None:
        q = q.where(u.day < before)
    q = q.order_by(u.day.desc()).limit(limit)
    return [(r.day, int(r.tokens), int(r.invocations)) for r in tx.conn.execute(q)]
