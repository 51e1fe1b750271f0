"""A harness that runs the real orchestrator against the in-memory carrier under MockClock."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio
import trio.testing

from actors.supervisor import CallSupervisor
from orchestrator.carriers.fake import AgentScript, FakeCarrier, LeadScript
from orchestrator.config import Campaign, RoutingSettings, Settings
from orchestrator.messages import InboundAccepted
from orchestrator.model import PlanAgent, RoutingPlan
from orchestrator.service import Orchestrator
from tests.support.fakes import FakeCustomer, MemoryRecorder

CAMPAIGN_NUMBER = "8005550100"
LEAD_PHONE = "9495550000"
ROUTING = RoutingSettings(
    plan_timeout_s=10.0,
    ring_timeout_s=20.0,
    accept_timeout_s=8.0,
    voicemail_max_s=120.0,
    initial_post_timeout_s=5.0,
)
SETTINGS = Settings(
    routing=ROUTING,
    campaigns=(
        Campaign(
            name="acme",
            numbers=(CAMPAIGN_NUMBER,),
            plantype="Purchase",
            initial_post_url="http://customer.test/initial",
            outcome_post_url="http://customer.test/outcome",
        ),
    ),
)


def agent(
    agent_id: int,
    phone: str,
    tier: int = 1,
    row: int = 1,
    *,
    press1: bool = True,
    show_real_caller_id: bool = False,
) -> PlanAgent:
    return PlanAgent(
        agent_id,
        phone,
        tier,
        row,
        press1=press1,
        show_real_caller_id=show_real_caller_id,
        name=f"Agent {agent_id}",
    )


def plan_for(guid: str, *agents: PlanAgent) -> RoutingPlan:
    return RoutingPlan(guid, tuple(sorted(agents, key=lambda a: (a.tier, a.row))))


@dataclass
class Harness:
    carrier: FakeCarrier
    orchestrator: Orchestrator
    recorder: MemoryRecorder
    customer: FakeCustomer
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def call(
        self,
        lead: LeadScript | None,
        *agents: PlanAgent,
        plan_after_s: float = 0.0,
        send_plan: bool = True,
    ) -> CallSupervisor:
        """A lead calls the campaign; the customer answers Step 2 with ``agents``."""
        lead_id = f"lead-{next(self._ids)}"
        result = self.orchestrator.accept_inbound(
            carrier_call_id=lead_id, from_number=LEAD_PHONE, to_number=CAMPAIGN_NUMBER
        )
        assert isinstance(result, InboundAccepted)
        self.carrier.lead_calls(
            result.tracking_guid, lead_id, lead or LeadScript(), ivr=result.ivr is not None
        )
        sup = self.orchestrator.call(result.tracking_guid)
        assert sup is not None
        if send_plan:
            # the customer learns the TrackingGUID from Step 1, sent once the call is claimed
            await trio.testing.wait_all_tasks_blocked()
            await trio.sleep(plan_after_s)
            await self.orchestrator.submit_plan(plan_for(result.tracking_guid, *agents))
        return sup

    async def settle(self, sup: CallSupervisor) -> None:
        """Wait for the call's outcome and for the carrier to go quiet."""
        await sup.finished.wait()
        await trio.testing.wait_all_tasks_blocked()

    def leg_of(self, phone: str) -> str:
        return next(r.leg_id for r in self.carrier.originated if r.to == phone)


@asynccontextmanager
async def harness(
    agents: Mapping[str, AgentScript] | None = None,
    *,
    customer: FakeCustomer | None = None,
    settings: Settings = SETTINGS,
    cancel_latency_s: float = 0.0,
    failing_ends: int = 0,
) -> AsyncIterator[Harness]:
    carrier = FakeCarrier(
        agents=agents, cancel_latency_s=cancel_latency_s, failing_ends=failing_ends
    )
    recorder = MemoryRecorder()
    customer = customer or FakeCustomer()
    orchestrator = Orchestrator(
        settings,
        carrier=carrier,
        recorder=recorder,
        customer=customer,
        directory=recorder.directory,
    )
    carrier.deliver = orchestrator.deliver
    async with trio.open_nursery() as nursery:
        await nursery.start(carrier.run)
        await nursery.start(orchestrator.run)
        yield Harness(carrier, orchestrator, recorder, customer)
        await trio.testing.wait_all_tasks_blocked()
        # Every test ends with no agent leg left live at the carrier.
        assert carrier.live == {}, f"legs left live: {list(carrier.live)}"
        nursery.cancel_scope.cancel()
