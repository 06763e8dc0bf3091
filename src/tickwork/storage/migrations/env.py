"""Alembic environment: runs against the connection tickwork hands it."""

from __future__ import annotations

from alembic import context

from tickwork.storage.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - tickwork always passes a connection
    raise RuntimeError("run migrations through tickwork.storage.migrate")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
