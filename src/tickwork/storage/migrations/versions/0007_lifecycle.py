"""Lifecycle and control: pauses of triggers and projects, skips, bounds, max_runs,
backfills, and the origin of reruns and backfilled invocations.

Nothing to backfill: every new column starts empty (not paused, nothing to skip, no
bounds, no cap), which is what existing triggers and projects were.

Revision ID: 0007_lifecycle
Revises: 0006_agent_targets
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import tickwork.storage.types

revision = "0007_lifecycle"
down_revision = "0006_agent_targets"
branch_labels = None
depends_on = None

PAUSE_COLUMNS = ("paused", "paused_reason", "paused_by", "paused_at", "paused_until")
TRIGGER_COLUMNS = (
    *PAUSE_COLUMNS,
    "rearm",
    "skip_remaining",
    "starts_at",
    "ends_at",
    "max_runs",
    "remaining_runs",
)


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _pause_columns() -> list[sa.Column[Any]]:
    instant = tickwork.storage.types.UTCDateTime(timezone=True)
    return [
        sa.Column("paused", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("paused_reason", sa.Text(), nullable=True),
        sa.Column("paused_by", sa.String(length=200), nullable=True),
        sa.Column("paused_at", instant, nullable=True),
        sa.Column("paused_until", instant, nullable=True),
    ]


def upgrade() -> None:
    instant = tickwork.storage.types.UTCDateTime(timezone=True)
    # Plain ALTER TABLE, not batch mode (see 0003): a batch copy of ``projects`` or
    # ``scheduled_triggers`` would cascade its deletion to what hangs off them.
    for column in _pause_columns():
        op.add_column("projects", column)
    op.create_index(
        "ix_projects_paused_until",
        "projects",
        ["paused_until"],
        unique=False,
        postgresql_where=sa.text("paused_until IS NOT NULL"),
        sqlite_where=sa.text("paused_until IS NOT NULL"),
    )
    for column in [
        *_pause_columns(),
        sa.Column("rearm", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("skip_remaining", sa.Integer(), server_default="0", nullable=False),
        sa.Column("starts_at", instant, nullable=True),
        sa.Column("ends_at", instant, nullable=True),
        sa.Column("max_runs", sa.Integer(), nullable=True),
        sa.Column("remaining_runs", sa.Integer(), nullable=True),
    ]:
        op.add_column("scheduled_triggers", column)
    op.add_column("invocations", sa.Column("rerun_of", sa.String(length=64), nullable=True))
    op.add_column("invocations", sa.Column("backfill_id", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_invocations_backfill",
        "invocations",
        ["backfill_id", "status"],
        unique=False,
        postgresql_where=sa.text("backfill_id IS NOT NULL"),
        sqlite_where=sa.text("backfill_id IS NOT NULL"),
    )
    op.create_table(
        "backfills",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("trigger_id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("project_id", sa.String(length=128), nullable=False),
        sa.Column("ref", sa.String(length=128), nullable=False),
        sa.Column("agent_id", sa.String(length=128), nullable=False),
        sa.Column("range_from", instant, nullable=False),
        sa.Column("range_to", instant, nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("max_concurrency", sa.Integer(), nullable=False),
        sa.Column("schedule", _json(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("dispatched", sa.Integer(), server_default="0", nullable=False),
        sa.Column("planned", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("created_at", instant, nullable=False),
        sa.Column("updated_at", instant, nullable=False),
        sa.Column("completed_at", instant, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backfills")),
    )
    op.create_index(
        op.f("ix_backfills_trigger_id_id"), "backfills", ["trigger_id", "id"], unique=False
    )
    op.create_index(
        "ix_backfills_running",
        "backfills",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("status = 'running'"),
        sqlite_where=sa.text("status = 'running'"),
    )
    op.create_table(
        "backfill_slots",
        sa.Column("backfill_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("slot", instant, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["backfill_id"],
            ["backfills.id"],
            name=op.f("fk_backfill_slots_backfill_id_backfills"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("backfill_id", "position", name=op.f("pk_backfill_slots")),
    )


def downgrade() -> None:
    op.drop_table("backfill_slots")
    op.drop_index("ix_backfills_running", table_name="backfills")
    op.drop_index(op.f("ix_backfills_trigger_id_id"), table_name="backfills")
    op.drop_table("backfills")
    op.drop_index("ix_invocations_backfill", table_name="invocations")
    op.drop_column("invocations", "backfill_id")
    op.drop_column("invocations", "rerun_of")
    for name in reversed(TRIGGER_COLUMNS):
        op.drop_column("scheduled_triggers", name)
    op.drop_index("ix_projects_paused_until", table_name="projects")
    for name in reversed(PAUSE_COLUMNS):
        op.drop_column("projects", name)
