"""Processes: each running process, its roles, its python handlers and its heartbeat.

Nothing to backfill: the table describes processes that are running, and each process
registers itself when it starts (processes of an older tickwork, which do not know the
table, count as not live).

Revision ID: 0002_processes
Revises: 0005_fair_share
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import tickwork.storage.types

revision = "0002_processes"
down_revision = "0005_fair_share"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    instant = tickwork.storage.types.UTCDateTime(timezone=True)
    op.create_table(
        "processes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("deployment_id", sa.String(length=128), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("roles", _json(), nullable=False),
        sa.Column("handlers", _json(), nullable=False),
        sa.Column("started_at", instant, nullable=False),
        sa.Column("heartbeat_at", instant, nullable=False),
        sa.Column("expires_at", instant, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processes")),
    )
    op.create_index(
        op.f("ix_processes_deployment_id"), "processes", ["deployment_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_processes_deployment_id"), table_name="processes")
    op.drop_table("processes")
