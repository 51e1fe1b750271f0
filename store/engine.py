"""Create the SQLAlchemy engine for a store URL, and the schema if it is missing.

Two databases are supported, both through SQLAlchemy's *sync* engine (no async engine works
under trio; the store runs every statement in a worker thread instead):

- SQLite, ``sqlite:///path/to/file.db``: WAL journal, ``synchronous=NORMAL``, a busy timeout and
  foreign keys on, set on every new connection. The file (and its directory) is created on first
  start. ``sqlite://`` (in memory) works too, on a single shared connection: see
  :attr:`StoreEngine.single_connection`.
- PostgreSQL, ``postgresql+psycopg://user@host/db`` (psycopg 3); a bare ``postgresql://`` means
  the same driver. Extra ``connect_args`` (e.g. ``{"options": "-csearch_path=s1"}``) are passed on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from orchestrator.errors import StoreError
from store.migrate import migrate

logger = structlog.get_logger()

#: How long a SQLite connection waits for a lock held by another process before failing.
SQLITE_BUSY_TIMEOUT_MS = 5_000


@dataclass(frozen=True, slots=True)
class StoreEngine:
    """An engine and what the store must know about it.

    ``single_connection`` is True for an in-memory SQLite database: every thread shares one
    connection, so reads and writes must not overlap (the store then uses one limiter for both).
    """

    engine: Engine
    dialect: str  # "sqlite" or "postgresql"
    single_connection: bool


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def create_store_engine(url: str, *, connect_args: Mapping[str, Any] | None = None) -> StoreEngine:
    """Build the engine for ``url`` and bring its schema to the newest revision
    (:mod:`store.migrate`).

    Error handling: a malformed or unsupported URL, or a database that cannot be reached or
    written, raises :class:`StoreError` (with the SQLAlchemy error as its cause).
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"malformed store URL {url!r}: {exc}") from exc
    try:
        db = _build_engine(parsed, dict(connect_args or {}))
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(f"cannot use the store URL {parsed!r}: {exc}") from exc
    try:
        found, now = migrate(db.engine)
    except SQLAlchemyError as exc:
        db.engine.dispose()
        raise StoreError(f"cannot open the store at {parsed!r}: {exc}") from exc
    if found != now:
        logger.info("store.migrated", from_revision=found, to_revision=now)
    return db


def engine_url(url: str) -> URL:
    """``url`` as SQLAlchemy takes it: ``postgresql://`` means the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() != "psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _build_engine(parsed: URL, args: dict[str, Any]) -> StoreEngine:
    backend = parsed.get_backend_name()
    single = False
    if backend == "sqlite":
        database = parsed.database or ""
        single = database in ("", ":memory:")
        if single:
            engine = create_engine(
                parsed,
                connect_args={"check_same_thread": False, **args},
                poolclass=StaticPool,
            )
        else:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(parsed, connect_args=args)
        event.listen(engine, "connect", _sqlite_pragmas)
    elif backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = create_engine(
            parsed, connect_args=args, pool_size=6, max_overflow=4, pool_pre_ping=True
        )
    else:
        raise StoreError(
            f"unsupported store URL {parsed!r}: use sqlite:///PATH or postgresql+psycopg://..."
        )
    return StoreEngine(engine=engine, dialect=backend, single_connection=single)
