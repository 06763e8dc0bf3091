"""Health and notifications (SPEC §11).

Triggers gain their health: ``consecutive_failures``, ``last_success_at`` and
``last_failure_at``, backfilled from each trigger's history (its final invocations,
newest first, up to the last one that completed), so an upgraded trigger that has been
failing is shown ``failing`` at once; ``pause_after_failures`` (null: the setting's
default) and ``late_notified_at`` (null: no ``trigger.late`` event sent) start empty.

``project_notifications`` holds each project's notification targets and
``notification_outbox`` the events waiting to be delivered; both start empty.

Revision ID: 0009_health
Revises: 0008_conventions
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import tickwork.storage.types

revision = "0009_health"
down_revision = "0008_conventions"
branch_labels = None
depends_on = None


TRIGGER_COLUMNS = (
    "consecutive_failures",
    "last_success_at",
    "last_failure_at",
    "pause_after_failures",
    "late_notified_at",
)


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    instant = tickwork.storage.types.UTCDateTime(timezone=True)
    for column in [
        sa.Column("consecutive_failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_success_at", instant, nullable=True),
        sa.Column("last_failure_at", instant, nullable=True),
        sa.Column("pause_after_failures", sa.Integer(), nullable=True),
        sa.Column("late_notified_at", instant, nullable=True),
    ]:
        op.add_column("scheduled_triggers", column)
    op.create_index(
        "ix_scheduled_triggers_late",
        "scheduled_triggers",
        ["late_notified_at"],
        unique=False,
        postgresql_where=sa.text("late_notified_at IS NOT NULL"),
        sqlite_where=sa.text("late_notified_at IS NOT NULL"),
    )
    op.create_index(
        "ix_invocations_pending_trigger",
        "invocations",
        ["trigger_id", "not_before"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )
    backfill_health(op.get_bind())
    op.create_table(
        "project_notifications",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("project_id", sa.String(length=128), nullable=False),
        sa.Column("targets", _json(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", instant, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "project_id"],
            ["projects.tenant_id", "projects.id"],
            name=op.f("fk_project_notifications_tenant_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "project_id", name=op.f("pk_project_notifications")),
    )
    op.create_table(
        "notification_outbox",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("project_id", sa.String(length=128), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("target", _json(), nullable=False),
        sa.Column("body", _json(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", instant, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", instant, nullable=False),
        sa.Column("delivered_at", instant, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_outbox")),
    )
    op.create_index(
        "ix_notification_outbox_due",
        "notification_outbox",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        op.f("ix_notification_outbox_tenant_id_project_id_id"),
        "notification_outbox",
        ["tenant_id", "project_id", "id"],
        unique=False,
    )


def backfill_health(conn: sa.Connection) -> int:
    """Set each trigger's health columns from its history; returns how many changed.

    Reads each trigger's completed and failed invocations newest first (by completion),
    stopping at the first completed one: one bounded walk per trigger with history."""
    instant = tickwork.storage.types.UTCDateTime(timezone=True)
    triggers = sa.table(
        "scheduled_triggers",
        sa.column("id", sa.String()),
        sa.column("consecutive_failures", sa.Integer()),
        sa.column("last_success_at", instant),
        sa.column("last_failure_at", instant),
    )
    invocations = sa.table(
        "invocations",
        sa.column("id", sa.String()),
        sa.column("trigger_id", sa.String()),
        sa.column("status", sa.String()),
        sa.column("completed_at", instant),
    )
    i = invocations.c
    changed = 0
    for (trigger_id,) in conn.execute(sa.select(triggers.c.id).order_by(triggers.c.id)).all():
        ended = conn.execute(
            sa.select(i.status, i.completed_at)
            .where(
                i.trigger_id == trigger_id,
                i.status.in_(("completed", "failed")),
                i.completed_at.is_not(None),
            )
            .order_by(i.completed_at.desc(), i.id.desc())
        )
        failures = 0
        last_success = last_failure = None
        for status, completed_at in ended:
            if status == "completed":
                last_success = completed_at
                break
            if last_failure is None:
                last_failure = completed_at
            failures += 1
        if last_success is None and last_failure is None:
            continue
        if last_failure is None:
            # The last run completed: the latest failure, if any, is before it.
            last_failure = conn.execute(
                sa.select(sa.func.max(i.completed_at)).where(
                    i.trigger_id == trigger_id, i.status == "failed"
                )
            ).scalar()
        conn.execute(
            triggers.update()
            .where(triggers.c.id == trigger_id)
            .values(
                consecutive_failures=failures,
                last_success_at=last_success,
                last_failure_at=last_failure,
            )
        )
        changed += 1
    return changed


def downgrade() -> None:
    op.drop_index(
        op.f("ix_notification_outbox_tenant_id_project_id_id"), table_name="notification_outbox"
    )
    op.drop_index("ix_notification_outbox_due", table_name="notification_outbox")
    op.drop_table("notification_outbox")
    op.drop_table("project_notifications")
    op.drop_index("ix_invocations_pending_trigger", table_name="invocations")
    op.drop_index("ix_scheduled_triggers_late", table_name="scheduled_triggers")
    for name in reversed(TRIGGER_COLUMNS):
        op.drop_column("scheduled_triggers", name)
