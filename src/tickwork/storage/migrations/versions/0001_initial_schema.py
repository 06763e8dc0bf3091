"""Initial schema: tenants, keys, projects, refs, agents, triggers, invocations, deployments.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import tickwork.storage.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "deployments",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("started_at", tickwork.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "heartbeat_at", tickwork.storage.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployments")),
    )
    op.create_table(
        "invocations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("trigger_id", sa.String(length=64), nullable=False),
        sa.Column("trigger_name", sa.String(length=200), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("project_id", sa.String(length=128), nullable=False),
        sa.Column("ref", sa.String(length=128), nullable=False),
        sa.Column("agent_id", sa.String(length=128), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column(
            "scheduled_for", tickwork.storage.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("attempt", sa.Integer(), server_default="0", nullable=False),
        sa.Column("not_before", tickwork.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column(
            "lease_expires_at", tickwork.storage.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("deployment_id", sa.String(length=128), nullable=True),
        sa.Column("agent_name", sa.String(length=200), nullable=True),
        sa.Column("ref_revision", sa.BigInteger(), nullable=True),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column(
            "result",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("conversation_id", sa.String(length=200), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", tickwork.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", tickwork.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", tickwork.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invocations")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_invocations_idempotency_key")),
    )
    with op.batch_alter_table("invocations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_invocations_claimable",
            ["not_before"],
            unique=False,
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )
        batch_op.create_index(
            "ix_invocations_leases",
            ["lease_expires_at"],
            unique=False,
            postgresql_where=sa.text("status = 'running'"),
            sqlite_where=sa.text("status = 'running'"),
        )
        batch_op.create_index(
            batch_op.f("ix_invocations_tenant_id_project_id_id"),
            ["tenant_id", "project_id", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_invocations_trigger_id_id"), ["trigger_id", "id"], unique=False
        )

    op.create_table(
        "scheduler_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("deployment_id", sa.String(length=128), nullable=True),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column(
            "lease_expires_at", tickwork.storage.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("heartbeat_at", tickwork.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_scheduler_state_singleton")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduler_state")),
    )
    # The singleton row the scheduler lease lives in.
    op.execute("INSERT INTO scheduler_state (id, generation) VALUES (1, 0)")
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("created_at", tickwork.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=200), server_default="", nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", tickwork.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", tickwork.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_api_keys_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "invocation_attempts",
        sa.Column("invocation_id", sa.String(length=64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.String(length=128), nullable=True),
        sa.Column("worker_id", sa.String(length=128), nullable=True),
        sa.Column("started_at", tickwork.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", tickwork.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["invocation_id"],
            ["invocations.id"],
            name=op.f("fk_invocation_attempts_invocation_id_invocations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("invocation_id", "attempt", name=op.f("pk_invocation_attempts")),
    )
    op.create_table(
        "projects",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", tickwork.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tickwork.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_projects_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_projects")),
    )
    op.create_table(
        "refs",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("project_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("created_at", tickwork.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tickwork.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "project_id"],
            ["projects.tenant_id", "projects.id"],
            name=op.f("fk_refs_tenant_id_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "project_id", "name", name=op.f("pk_refs")),
    )
    op.create_table(
        "agents",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("project_id", sa.String(length=128), nullable=False),
        sa.Column("ref", sa.String(length=128), nullable=False),
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "target",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", tickwork.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tickwork.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "project_id", "ref"],
            ["refs.tenant_id", "refs.project_id", "refs.name"],
            name=op.f("fk_agents_tenant_id_project_id_ref_refs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "project_id", "ref", "id", name=op.f("pk_agents")),
    )
    op.create_table(
        "scheduled_triggers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("project_id", sa.String(length=128), nullable=False),
        sa.Column("ref", sa.String(length=128), nullable=False),
        sa.Column("agent_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("cron_expression", sa.String(length=200), nullable=True),
        sa.Column("run_at", tickwork.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("message_template", sa.Text(), nullable=True),
        sa.Column("max_retries", sa.Integer(), nullable=False),
        sa.Column("retry_delay_seconds", sa.Integer(), nullable=False),
        sa.Column("timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("catchup", sa.String(length=16), nullable=False),
        sa.Column("catchup_window_seconds", sa.Integer(), nullable=False),
        sa.Column("overlap", sa.String(length=16), nullable=False),
        sa.Column("jitter_seconds", sa.Integer(), nullable=False),
        sa.Column("next_run_at", tickwork.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("created_at", tickwork.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tickwork.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "project_id", "ref", "agent_id"],
            ["agents.tenant_id", "agents.project_id", "agents.ref", "agents.id"],
            name=op.f("fk_scheduled_triggers_tenant_id_project_id_ref_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_triggers")),
    )
    with op.batch_alter_table("scheduled_triggers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_scheduled_triggers_due",
            ["next_run_at"],
            unique=False,
            postgresql_where=sa.text("next_run_at IS NOT NULL"),
            sqlite_where=sa.text("next_run_at IS NOT NULL"),
        )
        batch_op.create_index(
            batch_op.f("ix_scheduled_triggers_tenant_id_project_id_ref_agent_id_id"),
            ["tenant_id", "project_id", "ref", "agent_id", "id"],
            unique=False,
        )


def downgrade() -> None:

    with op.batch_alter_table("scheduled_triggers", schema=None) as batch_op:
        batch_op.drop_index(
            batch_op.f("ix_scheduled_triggers_tenant_id_project_id_ref_agent_id_id")
        )
        batch_op.drop_index(
            "ix_scheduled_triggers_due",
            postgresql_where=sa.text("next_run_at IS NOT NULL"),
            sqlite_where=sa.text("next_run_at IS NOT NULL"),
        )

    op.drop_table("scheduled_triggers")
    op.drop_table("agents")
    op.drop_table("refs")
    op.drop_table("projects")
    op.drop_table("invocation_attempts")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_tenant_id"))

    op.drop_table("api_keys")
    op.drop_table("tenants")
    op.drop_table("scheduler_state")
    with op.batch_alter_table("invocations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invocations_trigger_id_id"))
        batch_op.drop_index(batch_op.f("ix_invocations_tenant_id_project_id_id"))
        batch_op.drop_index(
            "ix_invocations_leases",
            postgresql_where=sa.text("status = 'running'"),
            sqlite_where=sa.text("status = 'running'"),
        )
        batch_op.drop_index(
            "ix_invocations_claimable",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )

    op.drop_table("invocations")
    op.drop_table("deployments")
