"""Schema migrations (``store.migrate``) on SQLite and PostgreSQL: a new database, a database of
the releases before migrations (with data), two instances migrating at once, and the migrated
schema against ``store/tables.py``."""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from store.migrate import LEGACY_REVISION, alembic_config, head_revision, migrate
from store.tables import ALL_TABLES
from tests.support.stores import _backend  # noqa: F401  (fixture: backend)


def engine_of(backend: tuple[str, Any]) -> sa.Engine:
    url, connect_args = backend
    return sa.create_engine(url, connect_args=connect_args or {})


def legacy_database(engine: sa.Engine) -> None:
    """What a release before migrations left: revision 0001's tables, no alembic_version."""
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), LEGACY_REVISION)
        connection.execute(sa.text("DROP TABLE alembic_version"))
        connection.execute(
            sa.text(
                "INSERT INTO calls (tracking_guid, carrier_call_id, campaign, lead_phone, "
                "dialled_number, referral_id, plantype, state, started_at, updated_at) VALUES "
                "('g-1', 'c-1', 'acme', '9495550000', '8005550100', 7, 'Purchase', "
                "'finished', 1, 2)"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO referrals (referral_id, campaign, tracking_number, first_name, "
                "last_name, full_name, city, state, zip, assigned_at, expires_at) VALUES "
                "(41, 'acme', '8005550111', 'A', 'B', 'A B', 'Irvine', 'CA', '92602', 1, 2)"
            )
        )


class TestMigrate:
    def test_a_new_database_gets_the_newest_schema(self, backend: tuple[str, Any]) -> None:
        engine = engine_of(backend)
        assert migrate(engine) == (None, head_revision())
        assert migrate(engine) == (head_revision(), head_revision())  # nothing left to do
        assert set(sa.inspect(engine).get_table_names()) == {t.name for t in ALL_TABLES} | {
            "alembic_version"
        }
        engine.dispose()

    def test_a_database_of_an_earlier_release_is_stamped_and_upgraded(
        self, backend: tuple[str, Any]
    ) -> None:
        """The releases before migrations: their rows survive, the new columns and tables
        appear, the referral id counter continues after the largest id given out."""
        engine = engine_of(backend)
        legacy_database(engine)
        assert migrate(engine) == (LEGACY_REVISION, head_revision())
        with engine.connect() as connection:
            call = connection.execute(
                sa.text("SELECT tracking_guid, owner_id, owner_epoch, plan FROM calls")
            ).one()
            counter = connection.execute(
                sa.text("SELECT value FROM counters WHERE name = 'referral_id'")
            ).scalar_one()
        assert tuple(call) == ("g-1", None, 0, None)
        assert counter == 41
        engine.dispose()

    def test_the_migrated_schema_is_the_declared_one(self, backend: tuple[str, Any]) -> None:
        engine = engine_of(backend)
        legacy_database(engine)
        migrate(engine)
        with engine.connect() as connection:
            differences = compare_metadata(
                MigrationContext.configure(connection), ALL_TABLES[0].metadata
            )
        assert differences == []
        engine.dispose()

    def test_two_instances_migrating_at_once_both_succeed(self, backend: tuple[str, Any]) -> None:
        """On PostgreSQL the second waits for the first's lock, then finds nothing to do."""
        if backend[0].startswith("sqlite"):
            return  # one process per SQLite database: nothing can race
        engines = [engine_of(backend), engine_of(backend)]
        results: list[tuple[str | None, str]] = []
        errors: list[BaseException] = []

        def run(engine: sa.Engine) -> None:
            try:
                results.append(migrate(engine))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(e,)) for e in engines]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        assert sorted(results, key=str) == sorted(
            [(None, head_revision()), (head_revision(), head_revision())], key=str
        )
        for engine in engines:
            engine.dispose()
