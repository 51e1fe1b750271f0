"""The IVR question end to end: signed webhooks, Plivo XML (GetDigits, Redirect, Dial) executed
by the simulator, the production adapter — each key path, a redirect, a hang-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.ivr import IvrMenu
from orchestrator.model import OutcomeKind
from simulator import AgentScript, LeadScript
from tests.support.e2e import API_DOC_PLAN, PlanReply, open_e2e

pytestmark = pytest.mark.e2e
LEAD = "9495550000"
ANTHONY = "8885551111"
MENU = IvrMenu(
    prompt="Press 1 for a purchase, 2 for a refinance, 0 for our office.",
    plantypes={"1": "Purchase", "2": "Refinance"},
    redirects={"0": "8005550199"},
    retries=1,
    timeout_s=3.0,
)
ONE_AGENT = {
    **API_DOC_PLAN,
    "AgentID": "328290",
    "AgentPhones": ANTHONY,
    "AgentTier": "1",
    "AgentRow": "1",
    "AgentNames": "Anthony Smith",
    "AgentEmailAddresses": "Anthony.Smith@xyz.com",
    "AgentFiveMinApps": "1",
    "AgentNMLS": "848",
}


@pytest.mark.parametrize(("press", "plantype"), [("2", "Refinance"), (None, "Purchase")])
async def test_the_key_chooses_the_plantype_then_routing_goes_on(
    tmp_path: Path, press: str | None, plantype: str
) -> None:
    """Key 2 → Refinance in Step 1; silence → the campaign's plantype; then a normal call."""
    async with open_e2e(tmp_path, ivr=MENU) as e2e:
        e2e.customer.answer(LEAD, PlanReply(ONE_AGENT, mode="sync"))
        e2e.script_agent(ANTHONY, AgentScript(answer_after_s=1.0, press="1"))
        e2e.place_call(LEAD, LeadScript(press=press, press_after_s=1.0, talk_s=2.0))
        step1, outcome = await e2e.outcome_of(LEAD)
        assert step1.query["plantype"] == plantype
        assert outcome.form["Agent1ID"] == "328290"
        call = await e2e.stored_call(step1.tracking_guid)
        assert call.plantype == "Purchase"  # the campaign's, as the call was taken in
        assert [e.event for e in call.events][:3] == ["call.started", "ivr.asked", "ivr.answered"]


async def test_a_redirect_key_forwards_the_lead_with_the_reduced_step1(tmp_path: Path) -> None:
    """Key 0: the lead is dialled through to the office; nobody is routed; Agent1ID 0."""
    async with open_e2e(tmp_path, ivr=MENU) as e2e:
        e2e.place_call(LEAD, LeadScript(press="0", press_after_s=1.0, talk_s=2.0))
        step1, outcome = await e2e.outcome_of(LEAD)
        assert set(step1.query) == {"ReferralID", "Phone", "plantype", "TrackingGUID"}
        assert (outcome.form["Agent1ID"], outcome.form["MessageLink"]) == ("0", "")
        call = await e2e.stored_call(step1.tracking_guid)
        assert call.outcome is OutcomeKind.REDIRECTED
        assert call.legs == ()


async def test_hanging_up_during_the_question_sends_the_reduced_step1(tmp_path: Path) -> None:
    async with open_e2e(tmp_path, ivr=MENU) as e2e:
        e2e.place_call(LEAD, LeadScript(hangup_after_s=0.5))
        step1, outcome = await e2e.outcome_of(LEAD)
        assert set(step1.query) == {"ReferralID", "Phone", "plantype", "TrackingGUID"}
        assert outcome.form["Agent1ID"] == "999999"
