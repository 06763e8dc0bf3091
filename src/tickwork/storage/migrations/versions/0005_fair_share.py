"""Fair share: an optional cap on the attempts one agent runs at once.

Revision ID: 0005_fair_share
Revises: 0003_tenancy
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_fair_share"
down_revision = "0003_tenancy"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("agents", sa.Column("max_concurrency", sa.Integer(), nullable=True))


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35+): a batch copy of ``agents`` would drop the old
    # table, and with it, through ON DELETE CASCADE, every trigger of every agent.
    op.drop_column("agents", "max_concurrency")
