"""The cluster's shared outbox (``store.outbox_claims``) on SQLite and PostgreSQL: claims per
customer host, the bound across claimers, claim expiry, release by a failed attempt, and
claimers racing in threads (on PostgreSQL, the row locks decide)."""

from __future__ import annotations

import threading
from collections import Counter

import trio

from orchestrator.read_models import OutboxView
from orchestrator.records import OutboxAttempted, OutboxDelivered, Record
from store import SqlStore, outbox_claims
from tests.support.stores import (  # noqa: F401  (fixtures: backend, store)
    _backend,
    _store,
    finished,
    started,
    write,
)

H1 = "https://one.customer.example/outcome"
H2 = "https://two.customer.example/step3"


def calls(count: int, url: str, prefix: str, at: float = 1000.0) -> list[Record]:
    records: list[Record] = []
    for n in range(count):
        guid = f"{prefix}-{n}"
        records += [started(guid, at=at + n), finished(guid, at=at + n, outcome_post_url=url)]
    return records


def hosts(rows: list[OutboxView]) -> Counter[str]:
    return Counter(row.url for row in rows)


async def claim(store: SqlStore, owner: str, now: float, **kw: int) -> list[OutboxView]:
    return await store.claim_outbox(
        owner,
        now=now,
        claim_s=30.0,
        per_host=kw.get("per_host", 4),
        limit=kw.get("limit", 64),
    )


class TestClaims:
    async def test_the_bound_holds_per_host_across_claimers(
        self, store: SqlStore, nursery: trio.Nursery
    ) -> None:
        await write(store, nursery, *calls(6, H1, "a"), *calls(2, H2, "b"))
        first = await claim(store, "i1", now=2000.0)
        assert hosts(first) == {H1: 4, H2: 2}
        assert [r.tracking_guid for r in first if r.url == H1] == ["a-0", "a-1", "a-2", "a-3"]
        # another instance at the same moment: H1 has 4 in flight, H2 nothing left
        assert await claim(store, "i2", now=2001.0) == []
        # i1's posts to H1 end (one delivered, one failed and due later): two more may go
        await store.record(
            OutboxDelivered("a-0", 2002.0, 1),
            OutboxAttempted("a-1", 2002.0, 1, next_attempt_at=2100.0, last_error="HTTP 500"),
        )
        await store.flush()
        second = await claim(store, "i2", now=2003.0)
        assert sorted(r.tracking_guid for r in second) == ["a-4", "a-5"]

    async def test_an_expired_claim_is_taken_again(
        self, store: SqlStore, nursery: trio.Nursery
    ) -> None:
        """An instance that died holding claims: they run out, another instance posts."""
        await write(store, nursery, *calls(2, H1, "a"))
        assert len(await claim(store, "dead", now=2000.0)) == 2
        assert await claim(store, "i2", now=2029.0) == []
        again = await claim(store, "i2", now=2031.0)
        assert sorted(r.tracking_guid for r in again) == ["a-0", "a-1"]

    async def test_a_failed_attempt_releases_the_row_until_it_is_due(
        self, store: SqlStore, nursery: trio.Nursery
    ) -> None:
        await write(store, nursery, *calls(1, H1, "a"))
        assert len(await claim(store, "i1", now=2000.0)) == 1
        await store.record(
            OutboxAttempted("a-0", 2001.0, 1, next_attempt_at=2010.0, last_error="HTTP 503")
        )
        await store.flush()
        assert await claim(store, "i2", now=2009.0) == []
        (retried,) = await claim(store, "i2", now=2010.0)
        assert (retried.tracking_guid, retried.attempts) == ("a-0", 1)
        await store.record(OutboxDelivered("a-0", 2011.0, 2))
        await store.flush()
        assert await claim(store, "i3", now=9999.0) == []  # delivered: never again

    async def test_claimers_racing_never_share_a_row_or_break_the_bound(
        self, store: SqlStore, nursery: trio.Nursery
    ) -> None:
        """Eight instances claim at the same instant, in threads: each row goes to one, and
        no host has more than its bound in flight."""
        await write(store, nursery, *calls(20, H1, "a"), *calls(20, H2, "b"))
        engine = store.engine
        barrier = threading.Barrier(8)
        claimed: list[list[OutboxView]] = []

        def claimer(owner: str) -> None:
            barrier.wait()
            claimed.append(
                outbox_claims.claim_due(
                    engine, owner, now=2000.0, claim_s=30.0, per_host=3, limit=64
                )
            )

        async with trio.open_nursery() as threads:
            for n in range(8):
                threads.start_soon(trio.to_thread.run_sync, claimer, f"i{n}")
        rows = [row for rows in claimed for row in rows]
        guids = [row.tracking_guid for row in rows]
        assert len(guids) == len(set(guids))
        assert hosts(rows) == {H1: 3, H2: 3}
