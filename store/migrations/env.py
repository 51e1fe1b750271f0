"""Alembic's environment: run the revisions on the connection :mod:`store.migrate` hands in.

Offline (SQL script) mode is not supported: the store migrates itself on a live connection,
under the migration lock.
"""

from __future__ import annotations

from alembic import context

from store.tables import ALL_TABLES

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=ALL_TABLES[0].metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
)
with context.begin_transaction():
    context.run_migrations()
