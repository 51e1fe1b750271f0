"""This instance in the instances table: its registration, its lease, and who else is live.

Every ``orchestrator serve`` is an instance with an id (docs/contract.md §11). At start
(:meth:`Instance.register`) it takes its row in the instances table — waiting out the lease of
an earlier incarnation that was killed, refused by a holder that keeps renewing it — and checks
it is allowed to run beside the others: an instance without cluster configuration needs the
database to itself, and a cluster refuses to share it with one. Then
(:meth:`Instance.run`) it renews its lease every ``heartbeat_s`` and reads the live instances:

- :attr:`peers` (the other live instances: how to reach them, their callback bases), for
  forwarding a call's requests to its owner;
- :meth:`calls_per_second_share`, this instance's share of the account's Make Call rate:
  ``L // N`` plus one for the first ``L % N`` instances by id, so the shares add up to the
  account's rate ``L`` (with more instances than calls per second, ``L / N`` each);
- :attr:`lease_ok` — False once a renewal failed or another incarnation took the row.

A clean stop (:meth:`stop`) ends the lease at once, so the id can be taken again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
import trio

from orchestrator.errors import InstanceInUse, StoreError
from orchestrator.ports import InstanceRegistry
from orchestrator.read_models import InstanceView

logger = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class InstanceConfig:
    instance_id: str
    internal_url: str
    callback_url: str
    clustered: bool
    heartbeat_s: float = 1.0
    lease_s: float = 5.0


def share_of(rate: float, instance_id: str, live: list[str]) -> float:
    """This instance's share of ``rate`` among the ``live`` ids (itself included). Pure."""
    ids = sorted({*live, instance_id})
    count, rank = len(ids), ids.index(instance_id)
    whole = int(rate)
    if whole < count:
        return rate / count
    return float(whole // count + (1 if rank < whole % count else 0)) + ((rate - whole) / count)


class Instance:
    """This instance's registration and lease (see the module docstring)."""

    def __init__(
        self,
        config: InstanceConfig,
        registry: InstanceRegistry,
        *,
        now: Callable[[], float] = time.time,
        on_peers: Callable[[Instance], None] | None = None,
    ) -> None:
        self.config = config
        self._registry = registry
        self._now = now
        #: called when the live instances change (the wiring sets the carrier's pace here)
        self.on_peers = on_peers
        self.epoch = 0
        self.lease_ok = False
        self.draining = False
        self.live: dict[str, InstanceView] = {}

    @property
    def instance_id(self) -> str:
        return self.config.instance_id

    @property
    def peers(self) -> dict[str, InstanceView]:
        """The other live instances, by id."""
        return {k: v for k, v in self.live.items() if k != self.instance_id}

    def calls_per_second_share(self, rate: float) -> float:
        return share_of(rate, self.instance_id, list(self.live))

    async def register(self) -> int:
        """Take this incarnation's row and check it may run beside the live instances.

        Raises:
            InstanceInUse: the id is held by a live instance, or single-instance and cluster
                instances would share one database.
        """
        config = self.config
        self.epoch = await self._take_row()
        await self._refresh()
        others = self.peers
        clash = [p.instance_id for p in others.values() if not (p.clustered and config.clustered)]
        if clash:
            await self._registry.stop_instance(config.instance_id, self.epoch, now=self._now())
            if config.clustered:
                why = "an instance without cluster configuration uses it"
            else:
                why = (
                    "this instance has no [cluster] configuration, so it needs the database "
                    "to itself"
                )
            raise InstanceInUse(
                f"the database is in use by live instance(s) {', '.join(sorted(clash))}: "
                f"{why} (configure [cluster] on every instance, or give each its own database)"
            )
        self.lease_ok = True
        logger.info(
            "instance.registered",
            instance_id=config.instance_id,
            epoch=self.epoch,
            clustered=config.clustered,
            peers=sorted(others),
        )
        return self.epoch

    async def _take_row(self) -> int:
        """Register, waiting out the lease of an earlier incarnation (a process killed a moment
        ago holds the id until its lease runs out); a holder still renewing it is live."""
        config = self.config
        give_up_at = self._now() + config.lease_s + 2 * config.heartbeat_s
        waited = False
        while True:
            try:
                return await self._registry.register_instance(
                    config.instance_id,
                    internal_url=config.internal_url,
                    callback_url=config.callback_url,
                    clustered=config.clustered,
                    now=self._now(),
                    lease_s=config.lease_s,
                )
            except InstanceInUse:
                if self._now() >= give_up_at:
                    raise
                if not waited:
                    logger.warning(
                        "instance.waiting_for_lease",
                        instance_id=config.instance_id,
                        reason="an earlier incarnation's lease has not run out",
                        wait_max_s=round(give_up_at - self._now(), 1),
                    )
                    waited = True
                await trio.sleep(min(0.5, config.heartbeat_s))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Renew the lease and re-read the live instances every ``heartbeat_s``."""
        task_status.started()
        while True:
            await trio.sleep(self.config.heartbeat_s)
            await self.heartbeat()

    async def heartbeat(self) -> None:
        config = self.config
        try:
            renewed = await self._registry.renew_lease(
                config.instance_id,
                self.epoch,
                now=self._now(),
                lease_s=config.lease_s,
                draining=self.draining,
            )
            await self._refresh()
        except StoreError as exc:
            if self.lease_ok:
                logger.error("instance.lease_unrenewed", error=str(exc))
            self.lease_ok = False
            return
        if not renewed:
            if self.lease_ok:
                logger.error(
                    "instance.displaced",
                    epoch=self.epoch,
                    reason="another incarnation holds the instance row",
                )
            self.lease_ok = False
            return
        if not self.lease_ok:
            logger.warning("instance.lease_renewed")
        self.lease_ok = True

    async def _refresh(self) -> None:
        before = set(self.live)
        rows = await self._registry.live_instances(now=self._now())
        self.live = {row.instance_id: row for row in rows}
        if set(self.live) != before:
            logger.info("instance.peers_changed", live=sorted(self.live))
            if self.on_peers is not None:
                self.on_peers(self)

    async def stop(self) -> None:
        """End the lease now (a clean stop)."""
        if self.epoch:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                try:
                    await self._registry.stop_instance(
                        self.instance_id, self.epoch, now=self._now()
                    )
                except StoreError as exc:
                    logger.warning("instance.stop_unrecorded", error=str(exc))
        self.lease_ok = False
