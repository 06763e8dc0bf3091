"""Calendars: recurrence rules, their start, and business calendars on triggers.

Nothing to backfill: every new column starts empty (no rule, no calendar), which is what
existing triggers were. A downgrade disables the triggers that have a rule (the older
schema cannot say when they fire), with the reason in ``last_error``.

Revision ID: 0011_calendars
Revises: 0010_retention_audit
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011_calendars"
down_revision = "0010_retention_audit"
branch_labels = None
depends_on = None

COLUMNS = ("rrule", "rrule_start", "calendar")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    # Plain ALTER TABLE, not batch mode (see 0003): a batch copy of
    # ``scheduled_triggers`` would cascade its deletion to what hangs off it.
    op.add_column("scheduled_triggers", sa.Column("rrule", sa.String(length=1000), nullable=True))
    op.add_column(
        "scheduled_triggers", sa.Column("rrule_start", sa.String(length=19), nullable=True)
    )
    op.add_column("scheduled_triggers", sa.Column("calendar", _json(), nullable=True))


def downgrade() -> None:
    # A trigger with a rule has no cron expression and no run_at: the older schema cannot
    # say when it fires. It is kept, disabled, with the reason, and its history stays.
    triggers = sa.table(
        "scheduled_triggers",
        sa.column("rrule", sa.String()),
        sa.column("enabled", sa.Boolean()),
        sa.column("next_run_at", sa.DateTime()),
        sa.column("last_error", sa.Text()),
    )
    op.get_bind().execute(
        sa.update(triggers)
        .where(triggers.c.rrule.is_not(None))
        .values(
            enabled=False,
            next_run_at=None,
            last_error="disabled by a downgrade: its recurrence rule (rrule) needs tickwork "
            "with calendars; upgrade again and enable it",
        )
    )
    for column in reversed(COLUMNS):
        op.drop_column("scheduled_triggers", column)
