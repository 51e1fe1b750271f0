"""An in-memory call directory: the same answers as :mod:`store.cluster`, without a database.

For a single process without a store — the MockClock tests, the memory benchmark. It learns
calls' states and ends from the records it is shown (:meth:`MemoryDirectory.observe`), as the
SQL store learns them from the writer; ``tests/store/test_cluster_store.py`` runs the same
tests against both.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import trio

from orchestrator.cluster_results import CallClaim, PlanCommit
from orchestrator.model import CallState, InboundCall
from orchestrator.read_models import CallOwner
from orchestrator.records import CallFinished, CallStateChanged, Record
from store.cluster import WAITING


@dataclass(slots=True)
class _Call:
    call: InboundCall
    owner_id: str
    owner_epoch: int
    state: str
    plan: str | None = None
    fingerprint: str | None = None
    finished: bool = False


class MemoryDirectory:
    """Implements ``orchestrator.ports.CallDirectory`` in memory."""

    def __init__(self) -> None:
        self._calls: dict[str, _Call] = {}

    def observe(self, records: Iterable[Record]) -> None:
        """Follow the writes a store would apply (state changes, finishes)."""
        for record in records:
            if isinstance(record, CallStateChanged | CallFinished):
                found = self._calls.get(record.tracking_guid)
                if found is None or found.finished:
                    continue
                if isinstance(record, CallFinished):
                    found.finished, found.state = True, CallState.FINISHED.value
                else:
                    found.state = record.state.value

    async def claim_call(
        self, call: InboundCall, *, owner_id: str, owner_epoch: int, state: CallState, now: float
    ) -> CallClaim:
        await trio.lowlevel.checkpoint()
        found = self._calls.get(call.tracking_guid)
        if found is not None:
            return CallClaim(claimed=False, owner_id=found.owner_id)
        self._calls[call.tracking_guid] = _Call(call, owner_id, owner_epoch, state.value)
        return CallClaim(claimed=True, owner_id=owner_id)

    async def commit_plan(
        self, tracking_guid: str, *, plan: str, fingerprint: str, now: float
    ) -> PlanCommit:
        await trio.lowlevel.checkpoint()
        found = self._calls.get(tracking_guid)
        if found is None:
            return PlanCommit.UNKNOWN
        if found.plan is None and not found.finished and found.state in WAITING:
            found.plan, found.fingerprint = plan, fingerprint
            return PlanCommit.COMMITTED
        return PlanCommit.IDENTICAL if found.fingerprint == fingerprint else PlanCommit.CONFLICT

    async def give_up_plan(self, tracking_guid: str, *, state: CallState, now: float) -> str | None:
        await trio.lowlevel.checkpoint()
        found = self._calls.get(tracking_guid)
        if found is None:
            return None
        if found.plan is None:
            found.state = state.value
            return None
        return found.plan

    async def owner_of_call(self, tracking_guid: str) -> CallOwner | None:
        await trio.lowlevel.checkpoint()
        found = self._calls.get(tracking_guid)
        return None if found is None else self._owner(found)

    async def owner_of_carrier_call(self, carrier_call_id: str) -> CallOwner | None:
        await trio.lowlevel.checkpoint()
        for found in reversed(self._calls.values()):
            if found.call.carrier_call_id == carrier_call_id:
                return self._owner(found)
        return None

    @staticmethod
    def _owner(found: _Call) -> CallOwner:
        return CallOwner(
            found.call.tracking_guid,
            found.owner_id,
            found.owner_epoch,
            found.call.campaign,
            found.finished,
        )
