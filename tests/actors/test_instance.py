"""The instance's registration, lease and share of the account's rate, under trio's MockClock.

The registry is an in-memory table with the semantics of ``store.cluster`` (whose statements
``tests/store/test_cluster_store.py`` runs on SQLite and PostgreSQL): a row is taken while its
lease has run out or it was stopped, renewed only by the epoch that holds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest
import trio
import trio.testing

from actors.instance import Instance, InstanceConfig, share_of
from orchestrator.errors import InstanceInUse
from orchestrator.read_models import InstanceView


@dataclass
class Registry:
    rows: dict[str, InstanceView] = field(default_factory=dict)
    stopped: set[str] = field(default_factory=set)

    async def register_instance(
        self,
        instance_id: str,
        *,
        internal_url: str,
        callback_url: str,
        clustered: bool,
        now: float,
        lease_s: float,
    ) -> int:
        await trio.lowlevel.checkpoint()
        held = self.rows.get(instance_id)
        if held is not None and held.lease_until >= now and instance_id not in self.stopped:
            raise InstanceInUse(f"instance id {instance_id!r} is held by a live instance")
        epoch = 1 if held is None else held.epoch + 1
        self.stopped.discard(instance_id)
        self.rows[instance_id] = InstanceView(
            instance_id, epoch, internal_url, callback_url, clustered, now, now + lease_s, False
        )
        return epoch

    async def renew_lease(
        self, instance_id: str, epoch: int, *, now: float, lease_s: float, draining: bool = False
    ) -> bool:
        await trio.lowlevel.checkpoint()
        held = self.rows.get(instance_id)
        if held is None or held.epoch != epoch or instance_id in self.stopped:
            return False
        self.rows[instance_id] = replace(
            held, heartbeat_at=now, lease_until=now + lease_s, draining=draining
        )
        return True

    async def stop_instance(self, instance_id: str, epoch: int, *, now: float) -> None:
        await trio.lowlevel.checkpoint()
        if (held := self.rows.get(instance_id)) is not None and held.epoch == epoch:
            self.stopped.add(instance_id)

    async def live_instances(self, *, now: float) -> list[InstanceView]:
        await trio.lowlevel.checkpoint()
        return sorted(
            (
                r
                for r in self.rows.values()
                if r.lease_until >= now and r.instance_id not in self.stopped
            ),
            key=lambda r: r.instance_id,
        )


def config(instance_id: str, *, clustered: bool = True) -> InstanceConfig:
    return InstanceConfig(
        instance_id, f"http://{instance_id}", f"http://{instance_id}", clustered, 1.0, 5.0
    )


def instance(registry: Registry, instance_id: str, *, clustered: bool = True) -> Instance:
    return Instance(config(instance_id, clustered=clustered), registry, now=trio.current_time)


class TestShare:
    @pytest.mark.parametrize("live", [1, 2, 3, 4, 5, 7])
    def test_shares_add_up_to_the_account_rate(self, live: int) -> None:
        ids = [f"i{n}" for n in range(live)]
        for rate in (1.0, 2.0, 6.0, 10.0, 2.5):
            shares = [share_of(rate, i, ids) for i in ids]
            assert sum(shares) == pytest.approx(rate)
            assert max(shares) - min(shares) <= 1.0  # as even as whole calls allow

    def test_examples(self) -> None:
        assert [share_of(6, i, ["a", "b", "c"]) for i in "abc"] == [2.0, 2.0, 2.0]
        assert [share_of(5, i, ["a", "b", "c"]) for i in "abc"] == [2.0, 2.0, 1.0]
        assert share_of(2, "a", ["a", "b", "c", "d"]) == 0.5
        assert share_of(6, "a", []) == 6.0  # alone (itself is always counted)


class TestRegistration:
    async def test_a_killed_incarnations_lease_is_waited_out(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A process killed a moment ago still holds its id: the restart waits for the lease."""
        registry = Registry()
        killed = instance(registry, "a")
        assert await killed.register() == 1  # ... and never renews again
        trio_start = trio.current_time()
        again = instance(registry, "a")
        assert await again.register() == 2
        waited = trio.current_time() - trio_start
        assert 5.0 <= waited <= 5.5
        assert again.lease_ok

    async def test_a_holder_that_keeps_renewing_is_live_and_refuses(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        registry = Registry()
        live = instance(registry, "a")
        await live.register()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(live.run)
            with pytest.raises(InstanceInUse, match="'a'"):
                await instance(registry, "a").register()
            nursery.cancel_scope.cancel()

    async def test_single_and_cluster_instances_never_share_a_database(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        registry = Registry()
        await instance(registry, "solo", clustered=False).register()
        with pytest.raises(InstanceInUse, match=r"solo.*without cluster configuration"):
            await instance(registry, "c1").register()
        assert "c1" in registry.stopped  # its row is given back at once
        other = Registry()
        await instance(other, "c1").register()
        with pytest.raises(InstanceInUse, match=r"c1.*no \[cluster\] configuration"):
            await instance(other, "solo", clustered=False).register()

    async def test_a_clean_stop_frees_the_id_at_once(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        registry = Registry()
        first = instance(registry, "a")
        await first.register()
        await first.stop()
        start = trio.current_time()
        assert await instance(registry, "a").register() == 2
        assert trio.current_time() == start


class TestHeartbeat:
    async def test_peers_come_and_go_and_the_share_follows(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        registry = Registry()
        changes: list[list[str]] = []
        a = instance(registry, "a")
        a.on_peers = lambda me: changes.append(sorted(me.live))
        await a.register()
        assert a.calls_per_second_share(6) == 6.0
        b = instance(registry, "b")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(a.run)
            await b.register()
            await trio.sleep(1.5)
            assert a.calls_per_second_share(6) == 3.0
            assert set(a.peers) == {"b"}
            # b dies without a word: a sees it when its lease has run out, not before
            await trio.sleep(3.0)
            assert set(a.peers) == {"b"}
            await trio.sleep(3.0)
            assert a.peers == {}
            assert a.calls_per_second_share(6) == 6.0
            nursery.cancel_scope.cancel()
        assert changes == [["a"], ["a", "b"], ["a"]]

    async def test_a_displaced_instance_knows_it(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        registry = Registry()
        a = instance(registry, "a")
        await a.register()
        registry.stopped.add("a")  # an operator (or a newer incarnation) took the row
        await a.heartbeat()
        assert a.lease_ok is False
