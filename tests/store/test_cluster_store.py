"""The cluster's conditional statements (``store.cluster``) on SQLite and PostgreSQL: instance
leases and epochs, claiming a call, committing a plan against the plan timeout."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from orchestrator.cluster_results import PlanCommit
from orchestrator.errors import InstanceInUse
from orchestrator.model import CallState, InboundCall
from orchestrator.ports import CallDirectory
from store import SqlStore, cluster, open_store
from store.memory_directory import MemoryDirectory
from tests.support.stores import (  # noqa: F401  (fixtures: backend, store)
    PG_URL,
    _backend,
    _pg_schema,
    _store,
)

GUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
CALL = InboundCall(GUID, "lead-1", "acme", "9495550000", "8005550100", "Purchase")
URLS = {"internal_url": "http://10.0.0.1:8080", "callback_url": "https://i1.calls.example"}


async def register(
    store: SqlStore, instance_id: str, now: float, *, lease_s: float = 5.0, clustered: bool = True
) -> int:
    return await store.register_instance(
        instance_id, clustered=clustered, now=now, lease_s=lease_s, **URLS
    )


class TestInstances:
    async def test_an_id_is_held_while_its_lease_runs(self, store: SqlStore) -> None:
        assert await register(store, "i1", now=100.0) == 1
        with pytest.raises(InstanceInUse, match="'i1'"):
            await register(store, "i1", now=103.0)  # the lease runs until 105
        assert await register(store, "i1", now=106.0) == 2  # ran out: a new incarnation
        assert await register(store, "i2", now=106.0) == 1

    async def test_a_displaced_incarnation_cannot_renew(self, store: SqlStore) -> None:
        await register(store, "i1", now=100.0)
        assert await store.renew_lease("i1", 1, now=101.0, lease_s=5.0)
        assert await register(store, "i1", now=107.0) == 2
        assert not await store.renew_lease("i1", 1, now=107.5, lease_s=5.0)
        assert await store.renew_lease("i1", 2, now=107.5, lease_s=5.0)

    async def test_a_clean_stop_frees_the_id_and_leaves_the_live_list(
        self, store: SqlStore
    ) -> None:
        await register(store, "i1", now=100.0)
        await register(store, "i2", now=100.0)
        assert [i.instance_id for i in await store.live_instances(now=101.0)] == ["i1", "i2"]
        await store.stop_instance("i1", 1, now=102.0)
        live = await store.live_instances(now=102.5)
        assert [(i.instance_id, i.internal_url, i.clustered) for i in live] == [
            ("i2", URLS["internal_url"], True)
        ]
        assert await register(store, "i1", now=102.5) == 2
        assert [i.instance_id for i in await store.live_instances(now=200.0)] == []


@pytest.fixture(
    name="calls",
    params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def _calls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CallDirectory]:
    """The SQL store on each backend and the in-memory directory: the same answers."""
    if request.param == "memory":
        yield MemoryDirectory()
        return
    if request.param == "sqlite":
        store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
        yield store
        store.close()
        return
    for args in _pg_schema():
        store = open_store(PG_URL, connect_args=args)
        yield store
        store.close()


class TestCalls:
    async def test_the_first_claim_owns_the_call(self, calls: CallDirectory) -> None:
        store = calls
        first = await store.claim_call(
            CALL, owner_id="i1", owner_epoch=1, state=CallState.INITIAL_POST, now=100.0
        )
        again = await store.claim_call(
            CALL, owner_id="i2", owner_epoch=1, state=CallState.INITIAL_POST, now=100.1
        )
        assert (first.claimed, first.owner_id) == (True, "i1")
        assert (again.claimed, again.owner_id) == (False, "i1")
        owner = await store.owner_of_carrier_call("lead-1")
        assert owner is not None
        assert (owner.tracking_guid, owner.owner_id, owner.campaign, owner.finished) == (
            GUID,
            "i1",
            "acme",
            False,
        )
        assert await store.owner_of_call("no-such-call") is None

    async def test_commit_plan_answers(self, calls: CallDirectory) -> None:
        store = calls
        assert await store.commit_plan(GUID, plan="{}", fingerprint="f1", now=1.0) is (
            PlanCommit.UNKNOWN
        )
        await store.claim_call(
            CALL, owner_id="i1", owner_epoch=1, state=CallState.INITIAL_POST, now=100.0
        )
        assert await store.commit_plan(GUID, plan='{"a": 1}', fingerprint="f1", now=101.0) is (
            PlanCommit.COMMITTED
        )
        assert await store.commit_plan(GUID, plan='{"a": 1}', fingerprint="f1", now=102.0) is (
            PlanCommit.IDENTICAL
        )
        assert await store.commit_plan(GUID, plan='{"b": 2}', fingerprint="f2", now=102.0) is (
            PlanCommit.CONFLICT
        )
        assert await store.give_up_plan(GUID, state=CallState.VOICEMAIL, now=110.0) == (
            '{"a": 1}'
        )  # too late to give up: the call routes the plan it has

    async def test_after_the_plan_timeout_no_plan_is_taken(self, calls: CallDirectory) -> None:
        store = calls
        await store.claim_call(
            CALL, owner_id="i1", owner_epoch=1, state=CallState.WAITING_PLAN, now=100.0
        )
        assert await store.give_up_plan(GUID, state=CallState.VOICEMAIL, now=110.0) is None
        assert await store.commit_plan(GUID, plan="{}", fingerprint="f1", now=110.5) is (
            PlanCommit.CONFLICT
        )

    async def test_two_plans_at_once_make_one_commit(self, store: SqlStore) -> None:
        """Two instances committing different plans in the same instant: one wins."""
        await store.claim_call(
            CALL, owner_id="i1", owner_epoch=1, state=CallState.WAITING_PLAN, now=100.0
        )
        engine = store.engine
        results: list[PlanCommit] = []
        barrier = threading.Barrier(2)

        def commit(fingerprint: str) -> None:
            barrier.wait()
            results.append(
                cluster.commit_plan(
                    engine, GUID, plan=fingerprint, fingerprint=fingerprint, now=101.0
                )
            )

        async with trio.open_nursery() as nursery:
            for fingerprint in ("fa", "fb"):
                nursery.start_soon(trio.to_thread.run_sync, commit, fingerprint)
        assert sorted(results) == [PlanCommit.COMMITTED, PlanCommit.CONFLICT]


class TestAdoption:
    """Start-up recovery's calls: only those whose owner incarnation holds no live lease."""

    async def test_orphans_only_never_a_live_instances_calls(self, store: SqlStore) -> None:
        def call(n: int) -> InboundCall:
            guid = f"0f8fad5b-d9cb-469f-a165-7086772895{n:02d}"
            return InboundCall(guid, f"lead-{n}", "acme", "9495550000", "8005550100", "Purchase")

        await register(store, "live", now=100.0)  # renews: live
        await register(store, "dead", now=100.0)  # never renews: its lease ends at 105
        await register(store, "me", now=100.0)
        owners = {0: ("live", 1), 1: ("dead", 1), 2: ("me", 1), 3: ("stopped", 1)}
        await register(store, "stopped", now=100.0)
        await store.stop_instance("stopped", 1, now=101.0)
        for n, (owner, epoch) in owners.items():
            await store.claim_call(
                call(n), owner_id=owner, owner_epoch=epoch, state=CallState.DIALLING, now=101.0
            )
        await store.renew_lease("live", 1, now=104.0, lease_s=5.0)
        # "me" restarts (epoch 2) at 106: its own earlier calls, the dead's and the stopped's
        assert await register(store, "me", now=106.0) == 2
        adopted = await store.adopt_orphans("me", 2, now=106.0)
        assert sorted(c.tracking_guid for c in adopted) == [
            call(n).tracking_guid for n in (1, 2, 3)
        ]
        assert (await store.owner_of_call(call(0).tracking_guid)).owner_id == "live"  # type: ignore[union-attr]
        again = await store.adopt_orphans("other", 1, now=106.0)
        assert again == []  # adopted once: another instance starting now finds nothing
