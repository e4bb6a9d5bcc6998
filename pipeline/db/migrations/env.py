"""Alembic environment: runs on the connection ``pipeline.db.migrate`` hands it (never a URL in a file)."""

from __future__ import annotations

from alembic import context

from pipeline.db.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `mailpipe db upgrade` (pipeline.db.migrate), not the alembic command")

context.configure(connection=connection, target_metadata=Base.metadata, transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
