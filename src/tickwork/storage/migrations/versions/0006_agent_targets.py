"""Agent run context: continuity, token budgets and run-as per trigger, token usage per
invocation and per trigger per UTC day (SPEC §13).

Existing triggers start new conversations, have no budget and run as nobody in
particular, exactly as before; existing invocations reported no usage.

Revision ID: 0006_agent_targets
Revises: 0002_processes
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006_agent_targets"
down_revision = "0002_processes"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.add_column(
        "scheduled_triggers",
        sa.Column("conversation", sa.String(length=16), nullable=False, server_default="new"),
    )
    op.add_column(
        "scheduled_triggers", sa.Column("daily_token_budget", sa.BigInteger(), nullable=True)
    )
    op.add_column("scheduled_triggers", sa.Column("run_as", sa.String(length=256), nullable=True))
    op.add_column("invocations", sa.Column("usage", _json(), nullable=True))
    op.create_index(
        "ix_invocations_completed",
        "invocations",
        ["trigger_id", "completed_at"],
        unique=False,
        postgresql_where=sa.text("status = 'completed'"),
        sqlite_where=sa.text("status = 'completed'"),
    )
    op.create_table(
        "trigger_token_usage",
        sa.Column("trigger_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("invocations", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("trigger_id", "day", name=op.f("pk_trigger_token_usage")),
    )


def downgrade() -> None:
    # Plain DROP COLUMNs (SQLite 3.35+): a batch copy of a table would drop it, and with
    # it, through ON DELETE CASCADE, what refers to it.
    op.drop_table("trigger_token_usage")
    op.drop_index("ix_invocations_completed", table_name="invocations")
    op.drop_column("invocations", "usage")
    op.drop_column("scheduled_triggers", "run_as")
    op.drop_column("scheduled_triggers", "daily_token_budget")
    op.drop_column("scheduled_triggers", "conversation")
