"""Bring a database's schema to the newest revision, safely with several instances starting.

The schema is versioned with Alembic (``store/migrations/versions``). :func:`migrate` runs in
one transaction on one connection:

1. on PostgreSQL, take a transaction-scoped advisory lock (``pg_advisory_xact_lock``), so two
   instances starting at once migrate one after the other — the second finds nothing to do
   (SQLite is one process: nothing can race it);
2. a database made by a release from before migrations (its tables, no ``alembic_version``)
   is stamped with revision ``0001``, the schema those releases created;
3. every newer revision is applied; the transaction commits, releasing the lock.

On PostgreSQL, DDL runs inside the transaction, so a migration that fails leaves the schema as
it was. ``orchestrator migrate`` runs this by hand; ``orchestrator serve`` runs it at
start, before anything else touches the database.

To change the schema: change ``store/tables.py`` and add a revision next to the others (copy
the shape of ``0002_cluster.py``; ``alembic revision`` with ``script_location =
store/migrations`` writes the skeleton). ``tests/store/test_migrations.py`` checks that the
migrated schema and ``tables.py`` agree.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: Revision of the schema the releases before migrations created.
LEGACY_REVISION = "0001"
#: Any constant identifies the lock; this one spells "orch" in hex.
LOCK_KEY = 0x6F726368


def alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this release knows."""
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def migrate(engine: Engine) -> tuple[str | None, str]:
    """Upgrade the schema to the newest revision (see the module docstring).

    Returns:
        The revision found (``None`` for an empty database) and the revision now in place.
    """
    with engine.connect() as connection:
        connection.begin()
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        found = current_revision(connection)
        config = alembic_config(connection)
        if found is None and inspect(connection).has_table("calls"):
            command.stamp(config, LEGACY_REVISION)
            found = LEGACY_REVISION
        command.upgrade(config, "head")
        now = current_revision(connection)
        connection.commit()
    return found, now or ""
