"""Two outbox deliverers sharing one store, as two instances of a cluster do (SQLite and
PostgreSQL, real time with short intervals): every post delivered exactly once, failures
retried by whichever instance claims them, the per-customer bound held across both, and the
rows of an instance that died picked up by the other."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import trio

from actors.outbox import OutboxDeliverer, RetryPolicy, Sharing
from orchestrator.ports import CustomerReply
from store import SqlStore
from tests.support.stores import (  # noqa: F401  (fixtures: backend, store)
    _backend,
    _store,
    finished,
    started,
)

HOSTS = ("https://one.example/o", "https://two.example/o")
POLICY = RetryPolicy(first_delay_s=0.05, max_delay_s=0.2, jitter=0.0, per_customer=2)


@dataclass
class Customer:
    """Step 3 endpoint of two customers: the first attempt of every third call fails."""

    hold_s: float = 0.02
    posts: list[tuple[str, int]] = field(default_factory=list)  # (guid, status)
    in_flight: Counter[str] = field(default_factory=Counter)
    most_in_flight: Counter[str] = field(default_factory=Counter)
    posted: trio.Event = field(default_factory=trio.Event)  # replaced after every post

    async def initial_post(self, url: str, fields: Mapping[str, str]) -> CustomerReply:
        raise AssertionError("not used")

    async def outcome_post(
        self,
        url: str,
        fields: Mapping[str, str],
        *,
        key: str,
        headers: Mapping[str, str] | None = None,
    ) -> int:
        host = urlsplit(url).netloc
        self.in_flight[host] += 1
        self.most_in_flight[host] = max(self.most_in_flight[host], self.in_flight[host])
        try:
            await trio.sleep(self.hold_s)
        finally:
            self.in_flight[host] -= 1
        tries = sum(1 for guid, _ in self.posts if guid == key)
        status = 500 if int(key.rsplit("-", 1)[1]) % 3 == 0 and tries == 0 else 200
        self.posts.append((key, status))
        self.posted.set()
        self.posted = trio.Event()
        return status


def deliverer(store: SqlStore, customer: Customer, owner: str) -> OutboxDeliverer:
    sharing = Sharing(store, owner, claim_s=5.0, poll_s=0.05, batch=8)
    return OutboxDeliverer(customer, store, policy=POLICY, shared=sharing)


async def finish_calls(store: SqlStore, count: int) -> list[str]:
    guids = [f"call-{n}" for n in range(count)]
    for n, guid in enumerate(guids):
        url = HOSTS[n % 2]
        now = time.time()
        await store.record(started(guid, at=now), finished(guid, at=now, outcome_post_url=url))
    await store.flush()
    return guids


async def wait_delivered(customer: Customer, guids: list[str]) -> None:
    with trio.fail_after(20):
        while {g for g, status in customer.posts if status == 200} != set(guids):
            await customer.posted.wait()


async def test_two_instances_deliver_each_post_once_within_the_bound(
    store: SqlStore, nursery: trio.Nursery
) -> None:
    await nursery.start(store.run)
    customer = Customer()
    guids = await finish_calls(store, 24)
    a, b = deliverer(store, customer, "i1"), deliverer(store, customer, "i2")
    await nursery.start(a.run)
    await nursery.start(b.run)
    await wait_delivered(customer, guids)
    await store.flush()
    ok = Counter(g for g, status in customer.posts if status == 200)
    assert set(ok.values()) == {1}  # exactly once each
    failed = {g for g, status in customer.posts if status == 500}
    assert failed == {g for g in guids if int(g.rsplit("-", 1)[1]) % 3 == 0}
    assert max(customer.most_in_flight.values()) <= POLICY.per_customer
    assert a.delivered + b.delivered == len(guids)  # (which one posts is the race's)
    pending = await store.outbox_pending()
    assert pending == []
    await a.close()
    await b.close()


async def test_a_call_finished_here_is_posted_without_waiting_for_the_poll(
    store: SqlStore, nursery: trio.Nursery
) -> None:
    """``send`` wakes the poller, which waits for the row's commit, then claims it."""
    await nursery.start(store.run)
    customer = Customer()
    sharing = Sharing(store, "i1", claim_s=5.0, poll_s=60.0, batch=8)
    only = OutboxDeliverer(customer, store, policy=POLICY, shared=sharing)
    await nursery.start(only.run)
    await trio.sleep(0.1)  # the first (empty) poll is done; the next is a minute away
    await store.record(started("call-1", at=time.time()), finished("call-1", at=time.time()))
    await only.send("call-1", HOSTS[0], {})
    await wait_delivered(customer, ["call-1"])
    await only.close()


async def test_rows_claimed_by_an_instance_that_died_are_posted_by_another(
    store: SqlStore, nursery: trio.Nursery
) -> None:
    await nursery.start(store.run)
    guids = await finish_calls(store, 4)
    # the dead instance claimed everything (for 1 s) and never posted
    claimed = await store.claim_outbox("dead", now=time.time(), claim_s=1.0, per_host=9, limit=9)
    assert len(claimed) == 4
    customer = Customer()
    survivor = deliverer(store, customer, "i2")
    await nursery.start(survivor.run)
    await wait_delivered(customer, guids)
    await survivor.close()
