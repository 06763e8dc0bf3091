"""Tenancy: API key scopes, per-tenant quota overrides, each trigger's firing rate.

Existing keys become ``write`` keys (what every key could do before). Every existing
trigger's ``slots_per_day`` is computed from its expression here, so the tenant's firing
rate is right from the first request after the upgrade.

Revision ID: 0003_tenancy
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_tenancy"
down_revision = "0001"
branch_labels = None
depends_on = None

QUOTA_COLUMNS = (
    "quota_projects",
    "quota_agents",
    "quota_triggers",
    "quota_api_keys",
    "quota_slots_per_minute",
)


def upgrade() -> None:
    # Plain ALTER TABLE, not batch mode: SQLite (3.35+) adds and drops these columns in
    # place, where a batch copy of ``tenants`` would cascade its deletion to every key
    # and project.
    for name in QUOTA_COLUMNS:
        op.add_column("tenants", sa.Column(name, sa.Integer(), nullable=True))
    op.add_column(
        "api_keys",
        sa.Column("scope", sa.String(length=16), server_default="write", nullable=False),
    )
    op.add_column(
        "scheduled_triggers",
        sa.Column("slots_per_day", sa.Integer(), server_default="0", nullable=False),
    )
    op.create_index(
        op.f("ix_scheduled_triggers_tenant_id_enabled_slots_per_day"),
        "scheduled_triggers",
        ["tenant_id", "enabled", "slots_per_day"],
        unique=False,
    )
    _backfill_slots_per_day()


def _backfill_slots_per_day() -> None:
    # Imported here: the domain code is needed only to backfill, never to build the schema.
    from tickwork.domain.cron import fires_per_day, parse_cron
    from tickwork.errors import ValidationError

    triggers = sa.table(
        "scheduled_triggers",
        sa.column("cron_expression", sa.String()),
        sa.column("slots_per_day", sa.Integer()),
    )
    conn = op.get_bind()
    expressions = conn.execute(
        sa.select(triggers.c.cron_expression)
        .where(triggers.c.cron_expression.is_not(None))
        .distinct()
    ).scalars()
    for expression in list(expressions):
        try:
            rate = fires_per_day(parse_cron(expression))
        except ValidationError:  # no longer valid: the scheduler disables it when due
            continue
        conn.execute(
            triggers.update()
            .where(triggers.c.cron_expression == expression)
            .values(slots_per_day=rate)
        )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_scheduled_triggers_tenant_id_enabled_slots_per_day"),
        table_name="scheduled_triggers",
    )
    op.drop_column("scheduled_triggers", "slots_per_day")
    op.drop_column("api_keys", "scope")
    for name in QUOTA_COLUMNS:
        op.drop_column("tenants", name)
