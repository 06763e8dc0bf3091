"""An index of pending invocations by tenant: a claim looking past one tenant's backlog
for the others' due work reads each tenant's oldest rows from it, instead of passing
over every row of the backlog.

Revision ID: 0012_pending_tenant
Revises: 0011_calendars
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_pending_tenant"
down_revision = "0011_calendars"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_invocations_pending_tenant",
        "invocations",
        ["tenant_id", "not_before"],
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_invocations_pending_tenant", table_name="invocations")
