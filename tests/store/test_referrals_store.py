"""The referral pool's tables (``store.referral_pool``) on SQLite and PostgreSQL: what an
assignment leaves in the referrals table, and a database of an earlier release — referrals
kept without a pool table — carried over (its live referral attributes, ids count on).

The policy itself is ``tests/actors/test_referral_desk.py``, on every pool.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from actors.referral_desk import ReferralDesk
from orchestrator.config import Campaign
from orchestrator.model import LeadDetails
from store import SqlStore, open_store
from tests.store.test_migrations import engine_of, legacy_database
from tests.support.stores import (  # noqa: F401  (fixtures: backend, store)
    _backend,
    _store,
)

POOL = ("8005550111", "8005550112")
CAMPAIGN = Campaign(
    "acme",
    ("8005550100",),
    "Purchase",
    "http://customer.test/initial",
    "http://customer.test/outcome",
    tracking_numbers=POOL,
    referral_ttl_s=600.0,
    api_key="k" * 24,
)
ANN = LeadDetails(0, "Ann", "Lee", "Ann Lee", "Irvine", "CA", "92618")


async def test_an_assignment_is_in_the_referrals_table(store: SqlStore) -> None:
    desk = ReferralDesk([CAMPAIGN], store)
    await desk.open()
    referral = await desk.assign("acme", ANN, now=1000.0)
    assert await store.get_referral(referral.referral_id) == referral
    assert referral.details == LeadDetails(1, "Ann", "Lee", "Ann Lee", "Irvine", "CA", "92618")
    assert (await store.row_counts())["referrals"] == 1


async def test_an_earlier_releases_referrals_are_carried_over(backend: tuple[str, Any]) -> None:
    """Its referral 41 on the first number, live until 2: it is the number's referral, the
    other number is free, and the next id is 42."""
    engine = engine_of(backend)
    legacy_database(engine)
    engine.dispose()
    url, connect_args = backend
    store = open_store(url, connect_args=connect_args)  # migrates to the newest revision
    try:
        desk = ReferralDesk([CAMPAIGN], store)
        await desk.open()
        details = await desk.attribute(POOL[0], now=1.5)
        assert details is not None
        assert (details.referral_id, details.first_name) == (41, "A")
        new = await desk.assign("acme", ANN, now=1.6)
        assert (new.referral_id, new.tracking_number) == (42, POOL[1])
        with store.engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT number, referral_id FROM tracking_numbers ORDER BY number")
            ).all()
        assert [tuple(r) for r in rows] == [(POOL[0], 41), (POOL[1], 42)]
    finally:
        store.close()
