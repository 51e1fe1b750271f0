"""The optional IVR question (docs/contract.md §8): parsing, the decision, the XML, and every path
through
the call actors (under MockClock, in-memory carrier)."""

from __future__ import annotations

from dataclasses import replace
from xml.etree import ElementTree

import pytest
import trio
import trio.testing

from orchestrator.carriers.fake import AgentScript, LeadScript
from orchestrator.carriers.plivo.urls import CallbackUrls
from orchestrator.carriers.plivo.xml import forward_xml, ivr_xml
from orchestrator.errors import Problem
from orchestrator.ivr import IvrChoice, IvrMenu, choose, parse_menu
from orchestrator.messages import LEAD_UNAVAILABLE_TEXT, Forward, IvrAnswered, Release
from orchestrator.model import OutcomeKind
from tests.support.call_harness import SETTINGS, agent, harness, plan_for
from tests.support.fakes import FakeCustomer

MENU = IvrMenu(
    prompt="Press 1 for a purchase, 2 for a refinance, 0 for our office.",
    plantypes={"1": "Purchase", "2": "Refinance"},
    redirects={"0": "8005550199"},
    retries=1,
    timeout_s=5.0,
)
IVR_SETTINGS = replace(SETTINGS, campaigns=(replace(SETTINGS.campaigns[0], ivr=MENU),))
AGENT = "8885551111"


class TestMenu:
    @pytest.mark.parametrize(
        ("digits", "choice"),
        [
            ("2", IvrChoice("Refinance", key="2")),
            ("1", IvrChoice("Purchase", key="1")),
            ("0", IvrChoice("Default", redirect_to="8005550199", key="0")),
            ("", IvrChoice("Default")),
            ("7", IvrChoice("Default")),
        ],
    )
    def test_choose(self, digits: str, choice: IvrChoice) -> None:
        assert choose(MENU, digits, "Default") == choice

    def test_keys_are_the_menu_keys_in_key_order(self) -> None:
        assert MENU.keys == "012"

    def test_parse_reports_every_problem(self) -> None:
        problems: list[Problem] = []
        raw = {
            "prompt": "",
            "plantypes": {"1": "X" * 21, "ab": "Y"},
            "redirects": {"1": "123"},
            "retries": 9,
            "volume": 3,
        }
        assert parse_menu(raw, "campaigns[0].ivr", problems) is None
        assert sorted(p.field for p in problems) == sorted(
            [
                "campaigns[0].ivr.volume",
                "campaigns[0].ivr.prompt",
                "campaigns[0].ivr.plantypes.ab",
                "campaigns[0].ivr.plantypes.1",
                "campaigns[0].ivr.redirects.1",
                "campaigns[0].ivr.redirects.1",
                "campaigns[0].ivr.retries",
            ]
        )

    def test_parse_a_good_menu(self) -> None:
        problems: list[Problem] = []
        raw = {
            "prompt": MENU.prompt,
            "plantypes": dict(MENU.plantypes),
            "redirects": dict(MENU.redirects),
            "retries": 1,
            "timeout_s": 5,
        }
        assert parse_menu(raw, "ivr", problems) == MENU
        assert problems == []


class TestXml:
    def test_the_question_collects_one_menu_key_then_falls_back_to_the_same_url(self) -> None:
        urls = CallbackUrls("https://orch.example")
        root = ElementTree.fromstring(ivr_xml("g-1", MENU, urls))
        ask = root.find("GetDigits")
        assert ask is not None
        assert ask.get("action") == "https://orch.example/plivo/ivr?call=g-1"
        assert (ask.get("numDigits"), ask.get("validDigits"), ask.get("retries")) == (
            "1",
            "012",
            "2",
        )
        speak = ask.find("Speak")
        assert speak is not None
        assert speak.text == MENU.prompt
        redirect = root.find("Redirect")
        assert redirect is not None
        assert redirect.text == "https://orch.example/plivo/ivr?call=g-1"

    def test_forward_dials_the_number_as_the_campaign(self) -> None:
        root = ElementTree.fromstring(forward_xml(Forward("8005550199", "8005550100")))
        dial = root.find("Dial")
        assert dial is not None
        assert dial.get("callerId") == "18005550100"
        number = dial.find("Number")
        assert number is not None
        assert number.text == "18005550199"


def step1_plantype(h: object) -> str:
    ((_, fields),) = h.customer.initial_posts  # type: ignore[attr-defined]
    return str(fields["plantype"])


class TestCallPaths:
    @pytest.mark.parametrize(
        ("press", "plantype"), [("1", "Purchase"), ("2", "Refinance"), ("", "Purchase")]
    )
    async def test_each_key_sets_the_plantype_for_step1_and_the_agents(
        self, autojump_clock: trio.testing.MockClock, press: str, plantype: str
    ) -> None:
        """The chosen plantype is sent in Step 1 and shown to agents (silence: the campaign's)."""
        async with harness({AGENT: AgentScript(answer_after_s=1.0)}, settings=IVR_SETTINGS) as h:
            sup = await h.call(LeadScript(ivr_press=press, ivr_after_s=4.0), send_plan=False)
            await trio.sleep(4.5)  # Step 1 only goes out once the lead has answered
            assert step1_plantype(h) == plantype
            await h.orchestrator.submit_plan(plan_for(sup.tracking_guid, agent(1, AGENT)))
            await h.settle(sup)
            (request,) = h.carrier.originated
            assert request.caller_name == plantype
            assert sup.outcome is not None
            assert sup.outcome.kind is OutcomeKind.CONNECTED

    async def test_a_redirect_key_forwards_the_lead_and_sends_the_reduced_step1(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Key 0: forwarded to the office; reduced Step 1; no agent rung; outcome 0."""
        async with harness(settings=IVR_SETTINGS) as h:
            sup = await h.call(LeadScript(ivr_press="0", ivr_after_s=3.0), send_plan=False)
            await h.settle(sup)
            assert [n.what for n in h.carrier.log if n.what.startswith("lead_forwarded")] == [
                "lead_forwarded_8005550199"
            ]
            ((_, fields),) = h.customer.initial_posts
            assert set(fields) == {"ReferralID", "Phone", "plantype", "TrackingGUID"}
            assert h.carrier.originated == []
            ((_, posted, _),) = h.customer.outcome_posts
            assert (posted["Agent1ID"], posted["MessageLink"]) == ("0", "")

    async def test_hanging_up_during_the_question_sends_the_reduced_step1(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """The lead leaves at 2 s, before answering: reduced Step 1, 999999, nobody rung."""
        async with harness(settings=IVR_SETTINGS) as h:
            sup = await h.call(
                LeadScript(hangup_after_s=2.0, ivr_press="1", ivr_after_s=5.0), send_plan=False
            )
            await h.settle(sup)
            ((_, fields),) = h.customer.initial_posts
            assert set(fields) == {"ReferralID", "Phone", "plantype", "TrackingGUID"}
            assert h.carrier.originated == []
            ((_, posted, _),) = h.customer.outcome_posts
            assert posted["Agent1ID"] == "999999"

    async def test_a_replayed_answer_to_the_question_gets_the_same_decision(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Plivo retries the IVR action whose first copy timed out on the read: the lead who
        chose the office is forwarded again, never routed. Step 1 goes out once, even though
        the forwarded lead's call ends while it is in flight."""
        slow_step1 = FakeCustomer(initial_delay_s=2.0)  # the call lives on meanwhile
        async with harness(settings=IVR_SETTINGS, customer=slow_step1) as h:
            sup = await h.call(LeadScript(ivr_press="0", ivr_after_s=3.0), send_plan=False)
            await trio.sleep(3.5)
            replay = IvrAnswered(sup.tracking_guid, call_id="lead-1", digits="0")
            assert await h.orchestrator.deliver(replay) == Forward(
                "8005550199", caller_id="8005550100"
            )
            other_key = IvrAnswered(sup.tracking_guid, call_id="lead-1", digits="1")
            assert await h.orchestrator.deliver(other_key) == Forward(
                "8005550199", caller_id="8005550100"
            )
            await h.settle(sup)
            assert len(h.customer.initial_posts) == 1
            assert h.carrier.originated == []
            late = await h.orchestrator.deliver(replay)  # the call is over now
            assert isinstance(late, Release)
            assert late.text == LEAD_UNAVAILABLE_TEXT
