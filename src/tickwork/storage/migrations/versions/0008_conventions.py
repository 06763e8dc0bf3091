"""API conventions: unique trigger names per agent and ref, stored idempotent answers.

A trigger's name becomes unique per (tenant, project, ref, agent). Earlier versions let
single-trigger writes give two triggers of one agent the same name, so a database may
hold duplicates: of each group the oldest trigger (by creation, then id) keeps the name,
and every other one is renamed ``"<name> (2)"``, ``"<name> (3)"``, … (cut to fit the 200
characters a name may have, and never onto a name the agent already uses). Nothing is
deleted and no schedule changes; each rename is logged (``tickwork.migrations``) with
the trigger's id, its scope and both names, so an operator can rename it back or delete
it. The downgrade keeps the new names.

``idempotency_keys`` holds the answers to creating POSTs sent with an
``Idempotency-Key``; it starts empty.

Revision ID: 0008_conventions
Revises: 0007_lifecycle
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import tickwork.storage.types

revision = "0008_conventions"
down_revision = "0007_lifecycle"
branch_labels = None
depends_on = None

MAX_NAME = 200
log = logging.getLogger("tickwork.migrations")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    instant = tickwork.storage.types.UTCDateTime(timezone=True)
    op.create_table(
        "idempotency_keys",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("headers", _json(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("created_at", instant, nullable=False),
        sa.Column("expires_at", instant, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_idempotency_keys_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(
        op.f("ix_idempotency_keys_expires_at"), "idempotency_keys", ["expires_at"], unique=False
    )
    rename_duplicate_names(op.get_bind())
    op.create_index(
        "uq_scheduled_triggers_name",
        "scheduled_triggers",
        ["tenant_id", "project_id", "ref", "agent_id", "name"],
        unique=True,
    )
    op.create_index(
        op.f("ix_scheduled_triggers_tenant_id_project_id_id"),
        "scheduled_triggers",
        ["tenant_id", "project_id", "id"],
        unique=False,
    )


def _renamed(name: str, n: int) -> str:
    suffix = f" ({n})"
    return name[: MAX_NAME - len(suffix)] + suffix


def rename_duplicate_names(conn: sa.Connection) -> list[tuple[str, str, str]]:
    """Give every trigger but the oldest of each (agent, ref, name) group a name of its
    own; returns (trigger id, old name, new name) for each trigger renamed."""
    triggers = sa.table(
        "scheduled_triggers",
        sa.column("id", sa.String()),
        sa.column("tenant_id", sa.String()),
        sa.column("project_id", sa.String()),
        sa.column("ref", sa.String()),
        sa.column("agent_id", sa.String()),
        sa.column("name", sa.String()),
        sa.column("created_at", sa.DateTime()),
    )
    c = triggers.c
    scope = (c.tenant_id, c.project_id, c.ref, c.agent_id)
    groups = (
        sa.select(*scope, c.name)
        .group_by(*scope, c.name)
        .having(sa.func.count() > 1)
        .order_by(*scope, c.name)
    )
    renames: list[tuple[str, str, str]] = []
    for group in conn.execute(groups).all():
        where = [col == value for col, value in zip(scope, group[:4], strict=True)]
        taken = set(conn.execute(sa.select(c.name).where(*where)).scalars())
        same = conn.execute(
            sa.select(c.id).where(*where, c.name == group.name).order_by(c.created_at, c.id)
        ).scalars()
        n = 1
        for trigger_id in list(same)[1:]:
            n += 1
            while _renamed(group.name, n) in taken:
                n += 1
            new_name = _renamed(group.name, n)
            taken.add(new_name)
            conn.execute(triggers.update().where(c.id == trigger_id).values(name=new_name))
            log.warning(
                "renamed a scheduled trigger whose name its agent already used: "
                "tenant=%s project=%s ref=%s agent=%s trigger=%s name=%r new_name=%r",
                *group[:4],
                trigger_id,
                group.name,
                new_name,
            )
            renames.append((str(trigger_id), str(group.name), new_name))
    return renames


def downgrade() -> None:
    op.drop_index(
        op.f("ix_scheduled_triggers_tenant_id_project_id_id"), table_name="scheduled_triggers"
    )
    op.drop_index("uq_scheduled_triggers_name", table_name="scheduled_triggers")
    op.drop_index(op.f("ix_idempotency_keys_expires_at"), table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
