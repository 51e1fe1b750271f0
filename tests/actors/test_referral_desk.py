"""The referral pool policy and attribution (docs/contract.md §7) through the desk, on every pool:
in memory, SQLite and PostgreSQL (``store.referral_pool`` decides in the database). Then what
only a database does: a pool that outlives the process, and instances registering at once."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from structlog.testing import capture_logs

from actors.referral_desk import ReferralDesk
from orchestrator.config import Campaign
from orchestrator.errors import NoTrackingNumbers
from orchestrator.model import LeadDetails
from orchestrator.ports import ReferralPool
from store import SqlStore, open_store, referral_pool
from store.memory_referrals import MemoryReferralPool
from tests.support.stores import (  # noqa: F401  (fixtures: backend, store)
    PG_URL,
    _backend,
    _pg_schema,
    _store,
)

KEY = "k" * 24
POOL = ("8005550200", "8005550201", "8005550202")


def acme(**changes: Any) -> Campaign:
    values: dict[str, Any] = {
        "name": "acme",
        "numbers": ("8005550100",),
        "plantype": "Purchase",
        "initial_post_url": "http://customer.test/initial",
        "outcome_post_url": "http://customer.test/outcome",
        "tracking_numbers": POOL,
        "referral_ttl_s": 600.0,
        "api_key": KEY,
    }
    return Campaign(**{**values, **changes})


def visitor(first: str = "Ann", *, referral_id: int = 0) -> LeadDetails:
    return LeadDetails(referral_id, first, "Lee", f"{first} Lee", "Irvine", "CA", "92618")


@pytest.fixture(
    name="url",
    params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def _url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    if request.param == "memory":
        yield "memory", None
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'pool.db'}", None
    else:
        yield from ((PG_URL, args) for args in _pg_schema())


class Pools:
    """Opens pools on one database (the same pool again: a restart, or another instance)."""

    def __init__(self, url: tuple[str, Any]) -> None:
        self.url, self.connect_args = url
        self.memory = MemoryReferralPool()
        self.stores: list[SqlStore] = []

    def pool(self) -> ReferralPool:
        if self.url == "memory":
            return self.memory
        store = open_store(self.url, connect_args=self.connect_args)
        self.stores.append(store)
        return store

    async def desk(self, *campaigns: Campaign) -> ReferralDesk:
        desk = ReferralDesk(campaigns or (acme(),), self.pool())
        await desk.open()
        return desk


@pytest.fixture(name="pools")
async def _pools(url: tuple[str, Any]) -> AsyncIterator[Pools]:
    pools = Pools(url)
    yield pools
    for store in pools.stores:
        store.close()


class TestPoolPolicy:
    """Free numbers first, least recently assigned; exhaustion reuses the oldest, logged."""

    async def test_ids_count_up_and_numbers_rotate(self, pools: Pools) -> None:
        """Three visitors get ids 1, 2, 3 on the three numbers in config order."""
        desk = await pools.desk()
        got = [await desk.assign("acme", visitor(), now=1000.0 + i) for i in range(3)]
        assert [r.referral_id for r in got] == [1, 2, 3]
        assert [r.tracking_number for r in got] == list(POOL)
        assert got[0].expires_at == 1600.0
        assert got[1].details == visitor(referral_id=2)

    async def test_exhaustion_reuses_least_recently_assigned_and_logs(self, pools: Pools) -> None:
        """A 4th live visitor takes the number of the 1st; the 1st loses attribution."""
        desk = await pools.desk()
        first, *_ = [await desk.assign("acme", visitor(f"V{i}"), now=1000.0 + i) for i in range(3)]
        with capture_logs() as logs:
            fourth = await desk.assign("acme", visitor("Dan"), now=1010.0)
        assert fourth.tracking_number == first.tracking_number == POOL[0]
        assert fourth.referral_id == 4
        [warning] = [e for e in logs if e["event"] == "referral.pool_exhausted"]
        assert warning["log_level"] == "warning"
        assert warning["superseded_referral_id"] == 1
        assert warning["tracking_number"] == POOL[0]
        assert warning["pool_size"] == 3
        details = await desk.attribute(POOL[0], now=1011.0)
        assert details is not None
        assert (details.referral_id, details.first_name) == (4, "Dan")
        # the next exhaustion takes the next-oldest number
        assert (await desk.assign("acme", visitor(), now=1012.0)).tracking_number == POOL[1]

    async def test_an_expired_number_is_free_again_before_exhaustion(self, pools: Pools) -> None:
        """Once the 1st referral expired, its number is taken without any warning."""
        desk = await pools.desk(acme(referral_ttl_s=10.0))
        for at in (0.0, 20.0, 21.0):
            await desk.assign("acme", visitor(), now=at)
        with capture_logs() as logs:
            again = await desk.assign("acme", visitor(), now=22.0)
        assert again.tracking_number == POOL[0]
        assert not [e for e in logs if e["event"] == "referral.pool_exhausted"]

    async def test_free_numbers_are_preferred_over_the_oldest(self, pools: Pools) -> None:
        """A free number later in the order is used rather than superseding a live one."""
        desk = await pools.desk(acme(referral_ttl_s=100.0, tracking_numbers=POOL[:2]))
        await desk.assign("acme", visitor(), now=0.0)  # POOL[0], live until 100
        assert (await desk.assign("acme", visitor(), now=1.0)).tracking_number == POOL[1]

    async def test_campaign_without_pool(self, pools: Pools) -> None:
        desk = await pools.desk(acme(tracking_numbers=()))
        with pytest.raises(NoTrackingNumbers):
            await desk.assign("acme", visitor(), now=0.0)
        with pytest.raises(NoTrackingNumbers):
            await desk.assign("nope", visitor(), now=0.0)


class TestAttribution:
    """A call to a tracking number within the TTL carries the referral; after it, nothing."""

    async def test_within_and_after_ttl(self, pools: Pools) -> None:
        desk = await pools.desk()
        referral = await desk.assign("acme", visitor(), now=1000.0)
        number = referral.tracking_number
        assert await desk.attribute(number, now=1599.9) == referral.details
        assert await desk.attribute(number, now=1599.9) == referral.details  # twice
        with capture_logs() as logs:
            assert await desk.attribute(number, now=1600.0) is None
        assert logs[0]["event"] == "referral.expired_on_call"

    async def test_other_numbers_are_direct_calls(self, pools: Pools) -> None:
        desk = await pools.desk()
        await desk.assign("acme", visitor(), now=0.0)
        assert await desk.attribute("8005550100", now=1.0) is None  # the campaign's main number
        assert await desk.attribute(POOL[1], now=1.0) is None  # never handed out


class TestSharedPool:
    """What the database adds: the pool outlives an instance and is shared by several."""

    async def test_a_restart_keeps_the_pool_and_counts_ids_on(self, pools: Pools) -> None:
        first = await pools.desk()
        for at in (0.0, 1.0):
            await first.assign("acme", visitor(), now=at)
        again = await pools.desk()  # a restart: a new desk on the same database
        details = await again.attribute(POOL[1], now=2.0)
        assert details is not None
        assert details.referral_id == 2
        new = await again.assign("acme", visitor(), now=3.0)
        assert (new.referral_id, new.tracking_number) == (3, POOL[2])

    async def test_a_number_moved_to_another_campaign_attributes_nothing_old(
        self, pools: Pools
    ) -> None:
        desk = await pools.desk()
        await desk.assign("acme", visitor(), now=0.0)  # on POOL[0]
        other = acme(name="other", numbers=("8005550300",), tracking_numbers=(POOL[0],))
        moved = await pools.desk(acme(tracking_numbers=POOL[1:]), other)
        assert await moved.attribute(POOL[0], now=1.0) is None  # acme's referral stays acme's
        referral = await moved.assign("other", visitor(), now=2.0)
        assert (referral.referral_id, referral.tracking_number) == (2, POOL[0])


async def test_instances_assigning_at_once_never_share_a_number_or_an_id(
    store: SqlStore,
) -> None:
    """Sixteen assignments at the same instant from eight threads (eight instances' worth
    of connections): every number and every ReferralID once."""
    numbers = tuple(f"80055510{n:02d}" for n in range(16))
    desk = ReferralDesk([acme(tracking_numbers=numbers)], store)
    await desk.open()
    barrier = threading.Barrier(8)
    results: list[tuple[int, str]] = []

    def assign_two() -> None:
        barrier.wait()
        for _ in range(2):
            referral, _superseded = referral_pool.assign(
                store.engine, "acme", visitor(), now=100.0, ttl_s=600.0
            )
            results.append((referral.referral_id, referral.tracking_number))

    async with trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(trio.to_thread.run_sync, assign_two)
    ids = [r[0] for r in results]
    assert sorted(ids) == list(range(1, 17))
    assert sorted(r[1] for r in results) == sorted(numbers)
    assert desk.is_tracking_number(numbers[0])
