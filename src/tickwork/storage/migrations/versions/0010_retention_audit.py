"""Retention of invocation history and the audit log (SPEC §11).

Projects get ``history_retention_days`` and ``history_max_per_trigger`` (NULL: the
settings' defaults, so existing projects keep their history for the default 30 days and
10,000 invocations per trigger once this release runs). Two partial indexes of finished
invocations make each pruning batch a range scan; building them reads ``invocations``
once. ``audit_events`` starts empty: changes made before this release are not recorded.

SQLite files created from now on use ``auto_vacuum=INCREMENTAL``, so pruned pages go
back to the file system. A file created before keeps its mode (changing it needs a
``VACUUM``, which rewrites the whole file and cannot run inside a migration): its free
pages are reused by new rows, so it stops growing but does not shrink until an operator
runs ``tickwork db vacuum`` (docs/operations.md, Retention).

Revision ID: 0010_retention_audit
Revises: 0009_health
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import tickwork.storage.types

revision = "0010_retention_audit"
down_revision = "0009_health"
branch_labels = None
depends_on = None

FINISHED = "completed_at IS NOT NULL"


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    instant = tickwork.storage.types.UTCDateTime(timezone=True)
    op.add_column("projects", sa.Column("history_retention_days", sa.Integer(), nullable=True))
    op.add_column("projects", sa.Column("history_max_per_trigger", sa.Integer(), nullable=True))
    op.create_index(
        "ix_invocations_retention",
        "invocations",
        ["tenant_id", "project_id", "completed_at"],
        postgresql_where=sa.text(FINISHED),
        sqlite_where=sa.text(FINISHED),
    )
    op.create_index(
        "ix_invocations_finished",
        "invocations",
        ["trigger_id", "completed_at"],
        postgresql_where=sa.text(FINISHED),
        sqlite_where=sa.text(FINISHED),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("project_id", sa.String(length=128), server_default="", nullable=False),
        sa.Column("at", instant, nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=300), nullable=False),
        sa.Column("before", _json(), nullable=True),
        sa.Column("after", _json(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(
        op.f("ix_audit_events_tenant_id_project_id_id"),
        "audit_events",
        ["tenant_id", "project_id", "id"],
    )
    op.create_index(op.f("ix_audit_events_tenant_id_id"), "audit_events", ["tenant_id", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_events_tenant_id_id"), table_name="audit_events")
    op.drop_index(op.f("ix_audit_events_tenant_id_project_id_id"), table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_index("ix_invocations_finished", table_name="invocations")
    op.drop_index("ix_invocations_retention", table_name="invocations")
    op.drop_column("projects", "history_max_per_trigger")
    op.drop_column("projects", "history_retention_days")
