"""The ``referrals`` table of the SQL store, against SQLite and PostgreSQL (the fixtures of
``tests/test_store_contract.py``): writing ``ReferralAssigned``, loading what a restarted
service keeps, and a restart of the book on the same database.

Real threads and a real database: no autojump clock; waits are ``flush()``, never sleeps.
"""

from __future__ import annotations

from typing import Any

import trio

from orchestrator.config import Campaign
from orchestrator.model import LeadDetails
from orchestrator.referral_records import Referral, ReferralAssigned
from orchestrator.referrals import ReferralBook
from store import SqlStore, open_store
from store.batchplan import plan_batch
from tests.support.stores import (  # noqa: F401  (fixtures: backend, store, running)
    _backend,
    _running,
    _store,
    started,
)

POOL = ("8005550200", "8005550201")
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


def referral(
    referral_id: int,
    number: str = POOL[0],
    at: float = 1000.0,
    ttl_s: float = 600.0,
    **details: Any,
) -> Referral:
    values = {
        "first_name": "Ann",
        "last_name": "Lee",
        "full_name": "Ann Lee",
        "city": "Irvine",
        "state": "CA",
        "zip": "92618",
        **details,
    }
    return Referral(referral_id, "acme", number, LeadDetails(referral_id, **values), at, at + ttl_s)


class TestWrite:
    """ReferralAssigned is written by the writer, with the call records, and read back."""

    async def test_round_trip(self, running: SqlStore) -> None:
        """Every field is stored and read back as the same Referral."""
        ref = referral(17, city="San José")
        await running.record(ReferralAssigned(ref))
        await running.flush()
        assert await running.get_referral(17) == ref
        assert await running.get_referral(18) is None
        assert (await running.row_counts())["referrals"] == 1

    async def test_in_one_batch_with_call_records(
        self, store: SqlStore, nursery: trio.Nursery
    ) -> None:
        """Referral and call records queued together commit in one transaction."""
        await store.record(started("g1"), ReferralAssigned(referral(1)), started("g2"))
        await nursery.start(store.run)
        await store.flush()
        assert (store.batches, store.records_written, store.records_failed) == (1, 3, 0)
        counts = await store.row_counts()
        assert (counts["calls"], counts["referrals"]) == (2, 1)

    async def test_a_repeated_id_is_ignored(self, running: SqlStore) -> None:
        """The first insert of an id wins; a repeat is not a failure."""
        await running.record(ReferralAssigned(referral(5, first_name="First")))
        await running.record(ReferralAssigned(referral(5, first_name="Second")))
        await running.flush()
        stored = await running.get_referral(5)
        assert stored is not None
        assert stored.details.first_name == "First"
        assert running.records_failed == 0

    def test_batch_plan_row(self) -> None:
        """The pure planning step turns the record into one row of the table."""
        plan = plan_batch([ReferralAssigned(referral(3, POOL[1], at=10.0))])
        assert plan.referrals == [
            {
                "referral_id": 3,
                "campaign": "acme",
                "tracking_number": POOL[1],
                "first_name": "Ann",
                "last_name": "Lee",
                "full_name": "Ann Lee",
                "city": "Irvine",
                "state": "CA",
                "zip": "92618",
                "assigned_at": 10.0,
                "expires_at": 610.0,
            }
        ]


class TestLoad:
    """load_referrals: the latest referral per number if live, and the largest id ever."""

    async def test_empty(self, running: SqlStore) -> None:
        loaded = await running.load_referrals(0.0)
        assert (loaded.live, loaded.last_referral_id) == ((), 0)

    async def test_latest_per_number_live_only(self, running: SqlStore) -> None:
        """An older referral of a number is superseded, even if it would still be live; an
        expired latest one frees its number; the largest id counts expired ones too."""
        old_long = referral(1, POOL[0], at=1000.0, ttl_s=10_000.0)  # superseded by 2
        newer = referral(2, POOL[0], at=1100.0)  # live until 1700
        expired = referral(3, POOL[1], at=500.0)  # expired at 1100
        await running.record(*(ReferralAssigned(r) for r in (old_long, newer, expired)))
        await running.flush()
        loaded = await running.load_referrals(1200.0)
        assert loaded.live == (newer,)
        assert loaded.last_referral_id == 3
        assert (await running.load_referrals(1700.0)).live == ()

    async def test_live_ones_oldest_first(self, running: SqlStore) -> None:
        a, b = referral(8, POOL[1], at=1001.0), referral(9, POOL[0], at=1000.0)
        await running.record(ReferralAssigned(a), ReferralAssigned(b))
        await running.flush()
        assert (await running.load_referrals(1002.0)).live == (b, a)


class TestRestart:
    """A new ReferralBook loaded from the same store keeps the unexpired referrals."""

    async def test_book_survives_a_restart(self, backend: tuple[str, Any]) -> None:
        url, connect_args = backend
        now = 5000.0
        first_run = open_store(url, connect_args=connect_args)
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(first_run.run)
                book = ReferralBook([CAMPAIGN])
                expired = book.assign("acme", LeadDetails(first_name="Old"), now - 700.0)
                live = book.assign("acme", LeadDetails(first_name="Ann", zip="92618"), now)
                await first_run.record(ReferralAssigned(expired), ReferralAssigned(live))
                await first_run.flush()
                nursery.cancel_scope.cancel()
        finally:
            first_run.close()

        second_run = open_store(url, connect_args=connect_args)
        try:
            stored = await second_run.load_referrals(now + 1.0)
        finally:
            second_run.close()
        again = ReferralBook([CAMPAIGN], live=stored.live, last_referral_id=stored.last_referral_id)
        details = again.attribute(live.tracking_number, now + 1.0)
        assert details == LeadDetails(2, "Ann", zip="92618")
        assert again.attribute(expired.tracking_number, now + 1.0) is None
        # ids go on from the largest ever stored; the free number (the expired one's) is used
        nxt = again.assign("acme", LeadDetails(), now + 2.0)
        assert (nxt.referral_id, nxt.tracking_number) == (3, expired.tracking_number)
