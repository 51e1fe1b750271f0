"""Restart recovery: the decision (pure) and the clean-up it drives against the fake carrier."""

from __future__ import annotations

import json
from dataclasses import dataclass

import trio
import trio.testing

from actors.recovery import LegToEnd, plan_recovery, recover_calls
from actors.teardown import Teardown
from orchestrator.carriers.fake import AgentScript, FakeCarrier, LeadScript
from orchestrator.model import CallState, LegResult, OutcomeKind
from orchestrator.ports import LegRequest
from orchestrator.records import CallFinished, EventLogged, LegUpdated
from tests.support.call_harness import SETTINGS
from tests.support.fakes import MemoryRecorder


@dataclass(frozen=True)
class Leg:
    leg_id: str
    agent_id: int
    request_id: str | None = None
    carrier_call_id: str | None = None
    ended_at: float | None = None
    result: LegResult | None = None


@dataclass(frozen=True)
class Event:
    event: str
    detail: str = ""


@dataclass(frozen=True)
class Call:
    tracking_guid: str = "g-1"
    carrier_call_id: str = "lead-1"
    campaign: str = "acme"
    referral_id: int = 0
    state: CallState = CallState.DIALLING
    legs: tuple[Leg, ...] = ()
    events: tuple[Event, ...] = ()


class TestPlan:
    def test_dialling_call_ends_every_live_leg_and_the_lead_999999(self) -> None:
        call = Call(
            legs=(
                Leg("a", 1, request_id="r-a"),  # ringing
                Leg("b", 2, request_id="r-b", carrier_call_id="c-b"),  # answered, whispering
                Leg("c", 3, request_id="r-c", ended_at=5.0, result=LegResult.BUSY),
                Leg("d", 4),  # never placed
            )
        )
        plan = plan_recovery(call)
        assert plan.legs_to_end == (LegToEnd("a", "r-a", ""), LegToEnd("b", "r-b", "c-b"))
        assert plan.hang_up_lead is True
        assert plan.outcome.kind is OutcomeKind.HUNG_UP
        assert plan.outcome.agent1_id == 999999

    def test_connected_call_is_left_talking_and_posted_with_the_winner(self) -> None:
        call = Call(
            state=CallState.CONNECTED,
            legs=(
                Leg(
                    "a", 328290, request_id="r-a", carrier_call_id="c-a", result=LegResult.ACCEPTED
                ),
            ),
            events=(Event("call.recording_ready", json.dumps({"url": "https://rec/1.mp3"})),),
        )
        plan = plan_recovery(call)
        assert plan.legs_to_end == ()
        assert plan.hang_up_lead is False
        assert (plan.outcome.agent1_id, plan.outcome.message_link) == (328290, "https://rec/1.mp3")

    def test_a_recorded_voicemail_is_posted_as_0_with_its_link(self) -> None:
        call = Call(
            state=CallState.VOICEMAIL,
            events=(
                Event("call.voicemail", json.dumps({"reason": "plan_timeout"})),
                Event("call.voicemail_recorded", json.dumps({"url": "https://vm/1.mp3"})),
            ),
        )
        plan = plan_recovery(call)
        assert (plan.outcome.agent1_id, plan.outcome.message_link) == (0, "https://vm/1.mp3")


async def test_recovery_ends_legs_at_the_carrier_and_queues_one_outcome(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Ringing legs are cancelled, the lead is hung up, one CallFinished is recorded."""
    carrier = FakeCarrier(default_agent=AgentScript(ring_forever=True))

    async def ignore(event: object) -> None:
        await trio.lowlevel.checkpoint()

    carrier.deliver = ignore
    recorder = MemoryRecorder()
    async with trio.open_nursery() as nursery:
        await nursery.start(carrier.run)
        request = LegRequest("g-1", "a", "8885551111", "8005550100", 20.0)
        request_id = await carrier.originate(request)
        carrier.lead_calls("g-1", "lead-1", LeadScript())
        calls = [Call(legs=(Leg("a", 1, request_id=request_id),))]
        count = await recover_calls(
            calls, Teardown(carrier), recorder, SETTINGS, now=trio.current_time
        )
        assert count == 1
        assert carrier.live == {}
        assert carrier.leads == {}
        (finished,) = recorder.of(CallFinished)
        assert finished.outcome.agent1_id == 999999
        assert finished.outcome_post_url == "http://customer.test/outcome"
        assert [r.result for r in recorder.of(LegUpdated)] == [LegResult.CANCELLED]
        assert [e.event for e in recorder.of(EventLogged)] == ["call.recovered"]
        nursery.cancel_scope.cancel()
