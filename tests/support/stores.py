"""Store fixtures for tests that need a real database: SQLite in ``tmp_path`` and PostgreSQL.

Each PostgreSQL test runs in its own schema (``search_path`` set through the connection
options) that is dropped afterwards. PostgreSQL comes from ``ORCH_TEST_PG_URL`` (default
``postgresql+psycopg://root@127.0.0.1:5432/test``); when it cannot be reached those tests are
skipped, unless ``ORCH_REQUIRE_PG=1`` (CI), where they fail.

Import the fixtures into a test module to use them (``from tests.support.stores import
_backend, _store, _running``): ``backend`` (url, connect_args) of each kind, ``store`` (open,
writer not running) and ``running`` (writer running in the test's nursery).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
import trio

from orchestrator.model import InboundCall, LeadDetails, Outcome, PlanAgent
from orchestrator.records import CallFinished, CallStarted, LegStarted, Record
from store import SqlStore, open_store

OUTCOME_URL = "https://customer.example/outcome"
PG_URL = os.environ.get("ORCH_TEST_PG_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")


def _pg_schema() -> Iterator[dict[str, Any]]:
    """Create a unique schema on the test server; yield the connect_args that select it."""
    schema = f"store_test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(PG_URL, connect_args={"connect_timeout": 3})
    try:
        with admin.begin() as conn:
            conn.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    except sqlalchemy.exc.OperationalError as exc:
        admin.dispose()
        message = f"PostgreSQL at {PG_URL} is unreachable: {exc.orig}"
        if os.environ.get("ORCH_REQUIRE_PG") == "1":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield {"options": f"-csearch_path={schema}"}
    finally:
        with admin.begin() as conn:
            conn.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(
    name="backend",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def _backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """(url, connect_args) of an empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}", None
    else:
        yield from ((PG_URL, args) for args in _pg_schema())


@pytest.fixture(name="store")
def _store(backend: tuple[str, Any]) -> Iterator[SqlStore]:
    """An open store whose writer is NOT running yet (tests start it, see ``running``)."""
    url, connect_args = backend
    store = open_store(url, connect_args=connect_args)
    yield store
    store.close()


@pytest.fixture(name="running")
async def _running(store: SqlStore, nursery: trio.Nursery) -> SqlStore:
    """The same store with its writer running in the test's nursery."""
    await nursery.start(store.run)
    return store


async def write(store: SqlStore, nursery: trio.Nursery, *records: Record) -> None:
    """Queue ``records`` BEFORE starting the writer (so they form one batch), then commit."""
    await store.record(*records)
    await nursery.start(store.run)
    await store.flush()


# --- record builders -------------------------------------------------------------------------


def call(guid: str = "guid-1", **details: Any) -> InboundCall:
    return InboundCall(
        tracking_guid=guid,
        carrier_call_id=f"uuid-{guid}",
        campaign="purchase",
        lead_phone="4155550100",
        dialled_number="8005550199",
        plantype="purchase",
        details=LeadDetails(**details),
    )


def started(guid: str = "guid-1", at: float = 1000.0) -> CallStarted:
    return CallStarted(call(guid, referral_id=42), at=at)


def agent(agent_id: int = 328290, **fields: Any) -> PlanAgent:
    values: dict[str, Any] = {
        "phone": "4155550111",
        "tier": 1,
        "row": 1,
        "name": "Ann Agent",
        "email": "ann@example.com",
        "nmls": "12345",
        "five_min_apps": True,
    }
    values.update(fields)
    return PlanAgent(agent_id=agent_id, **values)


def leg(guid: str, leg_id: str, at: float = 1002.0, agent_id: int = 328290) -> LegStarted:
    return LegStarted(guid, leg_id, agent_id=agent_id, phone="4155550111", tier=1, row=1, at=at)


def finished(guid: str = "guid-1", at: float = 1100.0, **kw: Any) -> CallFinished:
    outcome = kw.pop("outcome", Outcome.connected(328290, "https://rec.example/r1.mp3"))
    url = kw.pop("outcome_post_url", OUTCOME_URL)
    return CallFinished(guid, outcome, referral_id=42, outcome_post_url=url, at=at)
