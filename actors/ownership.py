"""A call's ownership in the call directory (the store): claim it, commit its plan, give up.

The directory is the arbiter between instances (docs/architecture.md "Cluster"): before Step 1
goes out the call's row says who owns it; a Step 2 plan and the plan timeout race through one
conditional statement each, so exactly one of them wins, whichever instance took the plan.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from orchestrator.cluster_results import CallClaim, PlanCommit
from orchestrator.model import CallState, InboundCall, RoutingPlan
from orchestrator.plan_codec import plan_from_json, plan_to_json
from orchestrator.ports import CallDirectory


@dataclass(frozen=True, slots=True)
class Ownership:
    """This instance's side of the directory: its id and epoch, and the clock."""

    directory: CallDirectory
    owner_id: str
    epoch: int = 0
    now: Callable[[], float] = field(default=time.time)

    async def claim(self, call: InboundCall, state: CallState) -> CallClaim:
        return await self.directory.claim_call(
            call, owner_id=self.owner_id, owner_epoch=self.epoch, state=state, now=self.now()
        )

    async def commit(self, plan: RoutingPlan) -> PlanCommit:
        return await self.directory.commit_plan(
            plan.tracking_guid,
            plan=plan_to_json(plan),
            fingerprint=plan.fingerprint(),
            now=self.now(),
        )

    async def give_up(self, tracking_guid: str, state: CallState) -> RoutingPlan | None:
        """The plan timeout: ``None`` if the call moved to ``state`` without a plan; else the
        plan committed meanwhile (the call routes it)."""
        stored = await self.directory.give_up_plan(tracking_guid, state=state, now=self.now())
        return None if stored is None else plan_from_json(stored)
