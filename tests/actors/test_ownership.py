"""A call's ownership in the call directory, under MockClock: a lead already routed by another
instance, a plan committed elsewhere at the very moment of the plan timeout."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from orchestrator.carriers.fake import AgentScript, LeadScript
from orchestrator.errors import PlanConflict
from orchestrator.model import CallState, InboundCall, OutcomeKind
from orchestrator.plan_codec import plan_to_json
from orchestrator.records import CallFinished
from tests.support.call_harness import CAMPAIGN_NUMBER, LEAD_PHONE, agent, harness, plan_for

AGENT = "8885551111"


class TestClaims:
    async def test_a_lead_routed_elsewhere_is_left_alone(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """The carrier retried the lead's answer and both copies reached an instance: the one
        that finds the call claimed sends no Step 1, rings nobody and posts no outcome."""
        async with harness() as h:
            guid = h.orchestrator.guid_for("lead-1")
            other = InboundCall(guid, "lead-1", "acme", LEAD_PHONE, CAMPAIGN_NUMBER, "Purchase")
            await h.recorder.directory.claim_call(
                other,
                owner_id="other-instance",
                owner_epoch=1,
                state=CallState.INITIAL_POST,
                now=0.0,
            )
            sup = await h.call(LeadScript(), agent(1, AGENT), send_plan=False)
            assert sup.tracking_guid == guid  # the same CallUUID names the same call
            await trio.testing.wait_all_tasks_blocked()
            assert h.customer.initial_posts == []
            assert h.recorder.of(CallFinished) == []
            assert h.customer.outcome_posts == []
            assert h.orchestrator.live_calls == 0
            h.carrier.leads.clear()  # the other instance would end the lead's call


class TestPlanAgainstTimeout:
    async def test_a_plan_committed_at_the_timeout_is_routed(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Another instance committed the plan in the directory; the hand-over never came.
        At its plan timeout the call finds the plan there and rings it (not voicemail)."""
        async with harness({AGENT: AgentScript(answer_after_s=1.0, press="1")}) as h:
            sup = await h.call(LeadScript(), send_plan=False)
            await trio.testing.wait_all_tasks_blocked()
            plan = plan_for(sup.tracking_guid, agent(7, AGENT))
            await h.recorder.directory.commit_plan(
                sup.tracking_guid, plan=plan_to_json(plan), fingerprint=plan.fingerprint(), now=1.0
            )
            await h.settle(sup)
            assert sup.outcome is not None
            assert sup.outcome.kind is OutcomeKind.CONNECTED
            assert h.customer.outcome_posts[0][1]["Agent1ID"] == "7"
            assert [r.to for r in h.carrier.originated] == [AGENT]
            assert h.carrier.notes("originate")[0].at == pytest.approx(10.0)  # at the timeout

    async def test_a_plan_after_the_timeout_is_refused(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        async with harness() as h:
            sup = await h.call(LeadScript(message_s=30.0), send_plan=False)
            await trio.sleep(10.5)  # plan timeout 10 s: the lead hears the voicemail prompt
            assert sup.state is CallState.VOICEMAIL
            with pytest.raises(PlanConflict, match="no longer waits"):
                await h.orchestrator.submit_plan(plan_for(sup.tracking_guid, agent(1, AGENT)))
            await h.settle(sup)
            assert h.carrier.originated == []
