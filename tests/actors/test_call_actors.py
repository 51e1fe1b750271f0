"""Call actors end to end against the in-memory carrier, under trio's MockClock.

Times are exact: the fake carrier rings a leg 0.5 s after it is placed (``ring_delay_s``), and
every script below says when an agent answers and presses. Routing settings: plan timeout 10 s,
ring timeout 20 s, accept timeout 8 s.
"""

from __future__ import annotations

import pytest
import trio
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from actors.referee import DECLINE_TEXT
from orchestrator.carriers.fake import AgentScript, LeadScript
from orchestrator.errors import PlanConflict
from orchestrator.messages import Connect, LegAnswered, LegDigits, RecordingReady, Release, Whisper
from orchestrator.model import LegResult, OutcomeKind
from orchestrator.records import CallFinished, LegStarted, LegUpdated, PlanAccepted
from tests.support.call_harness import CAMPAIGN_NUMBER, LEAD_PHONE, agent, harness, plan_for
from tests.support.fakes import FakeCustomer

ANTHONY, ERIN = "8885551111", "9492651111"  # the API doc's example agents
ACCEPTS = AgentScript(answer_after_s=2.0, press="1", press_after_s=1.0)
SILENT = AgentScript(answer_after_s=None)  # never answers


def outcome_fields(customer: FakeCustomer) -> dict[str, str]:
    assert len(customer.outcome_posts) == 1, customer.outcome_posts
    return customer.outcome_posts[0][1]


def results(recorder: object, carrier_phone_by_leg: dict[str, str]) -> dict[str, LegResult]:
    out: dict[str, LegResult] = {}
    for r in recorder.of(LegUpdated):  # type: ignore[attr-defined]
        if r.result is not None:
            out[carrier_phone_by_leg[r.leg_id]] = r.result
    return out


class TestApiDocExample:
    async def test_first_to_press_1_wins_and_the_other_is_cancelled_at_once(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Both tier-1 agents ring; Anthony presses 1; Erin is cancelled in the same instant."""
        async with harness({ANTHONY: ACCEPTS, ERIN: SILENT}) as h:
            sup = await h.call(
                LeadScript(), agent(328290, ANTHONY, 1, 1), agent(328999, ERIN, 1, 2)
            )
            await h.settle(sup)
            c = h.carrier
            assert [r.to for r in c.originated] == [ANTHONY, ERIN]
            assert {n.at for n in c.notes("originate")} == {0.0}
            pressed = c.notes("pressed_1")[0]
            assert pressed.phone == ANTHONY
            assert pressed.at == pytest.approx(3.5)
            cancelled = c.notes("ended_cancelled")
            assert [(n.phone, n.at) for n in cancelled] == [(ERIN, pressed.at)]
            assert c.notes("connected")[0].phone == ANTHONY
            fields = outcome_fields(h.customer)
            assert fields["Agent1ID"] == "328290"
            assert fields["TrackingGUID"] == sup.tracking_guid
            assert fields["MessageLink"].endswith(".mp3")
            assert sup.outcome is not None
            assert sup.outcome.kind is OutcomeKind.CONNECTED

    async def test_agents_are_upserted_and_the_plan_recorded(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A plan handed to the call is recorded with its agents (the store upserts them)."""
        async with harness({ANTHONY: ACCEPTS, ERIN: SILENT}) as h:
            sup = await h.call(
                LeadScript(), agent(328290, ANTHONY, 1, 1), agent(328999, ERIN, 1, 2)
            )
            await h.settle(sup)
            (accepted,) = h.recorder.of(PlanAccepted)
            assert [a.agent_id for a in accepted.agents] == [328290, 328999]
            (finished,) = h.recorder.of(CallFinished)
            assert finished.outcome.agent1_id == 328290
            assert finished.outcome_post_url == "http://customer.test/outcome"


class TestTiers:
    async def test_tiers_run_in_order_and_only_after_the_previous_tier_ended(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Tiers 1,1,3,3,4: no answer + busy, then press 2 + silence, then an override agent."""
        phones = ["1000000001", "1000000002", "1000000003", "1000000004", "1000000005"]
        scripts = {
            phones[0]: SILENT,
            phones[1]: AgentScript(busy=True),
            phones[2]: AgentScript(answer_after_s=1.0, press="2", press_after_s=2.0),
            phones[3]: AgentScript(answer_after_s=1.0, press=None),
            phones[4]: AgentScript(answer_after_s=3.0, press=None),
        }
        agents = [
            agent(11, phones[0], 1, 1),
            agent(12, phones[1], 1, 2),
            agent(31, phones[2], 3, 3),
            agent(32, phones[3], 3, 4),
            agent(41, phones[4], 4, 5, press1=False),
        ]
        async with harness(scripts) as h:
            sup = await h.call(LeadScript(), *reversed(agents))
            await h.settle(sup)
            c = h.carrier
            assert [r.to for r in c.originated] == phones  # row order within each tier
            started = {n.phone: n.at for n in c.notes("originate")}
            ended = {n.phone: n.at for n in c.log if n.what.startswith("ended_")}
            assert ended[phones[0]] == pytest.approx(20.5)  # rang out
            assert ended[phones[1]] == pytest.approx(0.5)  # busy
            assert started[phones[2]] == started[phones[3]] == pytest.approx(20.5)
            # Tier 3 rings at 21, both answer at 22: one presses 2 at 24, the other is silent 8 s.
            assert ended[phones[2]] == pytest.approx(24.0)
            assert ended[phones[3]] == pytest.approx(30.0)
            assert started[phones[4]] == pytest.approx(30.0)
            assert not [n for n in c.notes("whisper") if n.phone == phones[4]]  # override
            assert c.notes("connected")[0].phone == phones[4]
            by_leg = {r.leg_id: r.to for r in c.originated}
            assert results(h.recorder, by_leg) == {
                phones[0]: LegResult.NO_ANSWER,
                phones[1]: LegResult.BUSY,
                phones[2]: LegResult.DECLINED,
                phones[3]: LegResult.NO_INPUT,
                phones[4]: LegResult.ACCEPTED,
            }
            assert outcome_fields(h.customer)["Agent1ID"] == "41"
            assert sup.tiers_tried == [1, 3, 4]

    async def test_every_tier_failing_sends_the_lead_to_voicemail(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """No one accepts in any tier: the lead hears the prompt and leaves a message."""
        async with harness({"1000000001": AgentScript(busy=True)}) as h:
            sup = await h.call(LeadScript(message_s=4.0), agent(1, "1000000001"))
            await h.settle(sup)
            assert h.carrier.notes("lead_voicemail")[0].at == pytest.approx(0.5)
            fields = outcome_fields(h.customer)
            assert fields["Agent1ID"] == "0"
            assert fields["MessageLink"] == "https://recordings.example/vm-lead-1.mp3"

    async def test_the_same_phone_twice_in_a_tier_is_rung_once(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Two agents sharing a phone in one tier: one leg (docs/contract.md §4.8)."""
        async with harness({ANTHONY: ACCEPTS}) as h:
            sup = await h.call(LeadScript(), agent(1, ANTHONY, 1, 1), agent(2, ANTHONY, 1, 2))
            await h.settle(sup)
            assert [r.to for r in h.carrier.originated] == [ANTHONY]
            assert outcome_fields(h.customer)["Agent1ID"] == "1"


class TestRace:
    async def test_two_agents_pressing_1_in_the_same_instant_make_one_winner(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Exactly one winner; the other agent is told the call was taken and hung up."""
        async with harness({ANTHONY: ACCEPTS, ERIN: ACCEPTS}) as h:
            sup = await h.call(LeadScript(), agent(1, ANTHONY, 1, 1), agent(2, ERIN, 1, 2))
            await h.settle(sup)
            c = h.carrier
            presses = c.notes("pressed_1")
            assert len(presses) == 2
            assert presses[0].at == presses[1].at
            (connected,) = c.notes("connected")
            loser = ERIN if connected.phone == ANTHONY else ANTHONY
            (loser_end,) = [n for n in c.log if n.what.startswith("ended_") and n.phone == loser]
            assert loser_end.at == pytest.approx(3.5)  # hung up in the instant the winner won
            winner_id = "1" if connected.phone == ANTHONY else "2"
            assert outcome_fields(h.customer)["Agent1ID"] == winner_id

    async def test_a_leg_answering_after_the_winner_is_hung_up_never_bridged(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Erin answers at 4.0, after Anthony won at 3.5 but before our cancel (1 s on its way)
        reaches the carrier: she hears "taken" and is hung up, never bridged."""
        late = AgentScript(answer_after_s=3.5, press="1", press_after_s=0.5)
        with capture_logs(processors=[merge_contextvars]) as logs:
            async with harness({ANTHONY: ACCEPTS, ERIN: late}, cancel_latency_s=1.0) as h:
                sup = await h.call(LeadScript(), agent(1, ANTHONY, 1, 1), agent(2, ERIN, 1, 2))
                await h.settle(sup)
                c = h.carrier
                assert [n.phone for n in c.notes("connected")] == [ANTHONY]
                assert [n.phone for n in c.notes("answered")] == [ANTHONY, ERIN]
                assert [n.phone for n in c.notes("released")] == [ERIN]
                assert c.notes("released")[0].at == pytest.approx(4.0)
        assert any(e["event"] == "leg.answered_late" for e in logs)

    async def test_an_originate_in_flight_at_cancel_time_is_cancelled_once_its_id_arrives(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Erin's Make Call takes 6 s; Anthony wins at 3.5; Erin's request is cancelled at 6."""
        slow = AgentScript(answer_after_s=None, originate_latency_s=6.0)
        async with harness({ANTHONY: ACCEPTS, ERIN: slow}) as h:
            sup = await h.call(LeadScript(), agent(1, ANTHONY, 1, 1), agent(2, ERIN, 1, 2))
            await h.settle(sup)
            erin = [n for n in h.carrier.notes("ended_cancelled") if n.phone == ERIN]
            assert [n.at for n in erin] == [pytest.approx(6.0)]
            assert outcome_fields(h.customer)["Agent1ID"] == "1"

    async def test_an_answer_decided_too_late_for_the_carrier_never_wins(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """The call is stuck on a slow database from 1 s to 12 s; the override agent answers at
        1.5 s, and the webhook gives up at 6.5 s (the agent hears goodbye). That answer must not
        make a winner when the call catches up: no one-sided bridge, voicemail instead."""
        async with harness({ANTHONY: AgentScript(answer_after_s=1.0)}) as h:
            sup = await h.call(LeadScript(message_s=2.0), agent(1, ANTHONY, press1=False))
            await trio.sleep(1.0)
            h.recorder.blocked_until = 12.0
            await h.orchestrator.deliver(RecordingReady(sup.tracking_guid, "x"))
            await h.settle(sup)
            assert h.carrier.notes("connected") == []
            assert h.carrier.notes("released")[0].at == pytest.approx(6.5)
            assert outcome_fields(h.customer)["Agent1ID"] == "0"


class TestLeadAndVoicemail:
    async def test_lead_hanging_up_mid_tier_ends_every_leg_at_once(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """The lead leaves at 5 s while three agents ring: all three end at 5 s; 999999."""
        phones = ["1000000001", "1000000002", "1000000003"]
        async with harness(dict.fromkeys(phones, SILENT)) as h:
            sup = await h.call(
                LeadScript(hangup_after_s=5.0),
                *(agent(i + 1, p, 1, i + 1) for i, p in enumerate(phones)),
            )
            await h.settle(sup)
            ended = h.carrier.notes("ended_cancelled")
            assert sorted(n.phone for n in ended) == phones
            assert all(n.at == pytest.approx(5.0) for n in ended)
            fields = outcome_fields(h.customer)
            assert fields["Agent1ID"] == "999999"
            assert fields["MessageLink"] == ""

    async def test_lead_hanging_up_between_tiers_starts_no_new_leg(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Tier 1 rings out at 20.5; the lead left at 20.0: tier 2 is never dialled."""
        async with harness({"1000000001": SILENT, "1000000002": ACCEPTS}) as h:
            sup = await h.call(
                LeadScript(hangup_after_s=20.0),
                agent(1, "1000000001", 1, 1),
                agent(2, "1000000002", 2, 1),
            )
            await h.settle(sup)
            assert [r.to for r in h.carrier.originated] == ["1000000001"]
            assert outcome_fields(h.customer)["Agent1ID"] == "999999"

    async def test_plan_timeout_goes_to_voicemail_and_posts_the_message(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """No Step 2 within 10 s: voicemail at 10 s, a 5 s message, outcome 0 with its link."""
        async with harness() as h:
            sup = await h.call(LeadScript(message_s=5.0), send_plan=False)
            await trio.sleep(10.5)  # (mock time) the lead is now hearing the voicemail prompt
            with pytest.raises(PlanConflict):
                await h.orchestrator.submit_plan(plan_for(sup.tracking_guid, agent(1, ANTHONY)))
            await h.settle(sup)
            assert h.carrier.notes("lead_voicemail")[0].at == pytest.approx(10.0)
            assert h.carrier.originated == []
            fields = outcome_fields(h.customer)
            assert fields == {
                "ReferralID": "0",
                "TrackingGUID": sup.tracking_guid,
                "Agent1ID": "0",
                "MessageLink": "https://recordings.example/vm-lead-1.mp3",
            }

    async def test_no_agents_plan_goes_straight_to_voicemail(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A "no agents" plan: voicemail at once; hanging up at the prompt posts 999999."""
        async with harness() as h:
            sup = await h.call(LeadScript(message_s=None), plan_after_s=1.0)
            await h.settle(sup)
            assert h.carrier.notes("lead_voicemail")[0].at == pytest.approx(1.0)
            assert outcome_fields(h.customer)["Agent1ID"] == "999999"


class TestPlansAndStep1:
    async def test_step1_carries_the_fields_of_the_api_doc(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Step 1 GETs the campaign URL with ReferralID, Phone, plantype and TrackingGUID."""
        async with harness({ANTHONY: ACCEPTS}) as h:
            sup = await h.call(LeadScript(), agent(1, ANTHONY))
            await h.settle(sup)
            ((url, fields),) = h.customer.initial_posts
            assert url == "http://customer.test/initial"
            assert fields == {
                "ReferralID": "0",
                "Phone": LEAD_PHONE,
                "plantype": "Purchase",
                "TrackingGUID": sup.tracking_guid,
            }

    async def test_a_plan_in_the_step1_response_is_used_at_once(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Synchronous mode: the Step 1 reply carries the plan; no Step 2 is needed."""
        customer = FakeCustomer(
            initial_fields={
                "AgentEmailAddresses": "a@xyz.com",
                "AgentFiveMinApps": "0",
                "AgentID": "77",
                "AgentNames": "A",
                "AgentNMLS": "1",
                "AgentPhones": ANTHONY,
                "AgentTier": "1",
                "AgentRow": "1",
            },
            initial_delay_s=0.25,
        )
        async with harness({ANTHONY: ACCEPTS}, customer=customer) as h:
            sup = await h.call(LeadScript(), send_plan=False)
            await h.settle(sup)
            assert h.carrier.notes("originate")[0].at == pytest.approx(0.25)
            assert outcome_fields(h.customer)["Agent1ID"] == "77"

    async def test_identical_repost_is_accepted_and_a_different_plan_conflicts(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Customers retry Step 2: the same plan again is fine, another plan is a conflict."""
        async with harness({ANTHONY: ACCEPTS}) as h:
            sup = await h.call(LeadScript(), agent(1, ANTHONY))
            plan = plan_for(sup.tracking_guid, agent(1, ANTHONY))
            assert await h.orchestrator.submit_plan(plan) == plan
            with pytest.raises(PlanConflict):
                await h.orchestrator.submit_plan(plan_for(sup.tracking_guid, agent(2, ERIN)))
            await h.settle(sup)

    async def test_caller_id_is_the_lead_only_when_show_agent_real_id(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """ShowAgentRealID=1 shows the lead's number; otherwise the campaign's (docs/contract.md
        §4.3)."""
        async with harness({ANTHONY: SILENT, ERIN: ACCEPTS}) as h:
            sup = await h.call(
                LeadScript(),
                agent(1, ANTHONY, 1, 1, show_real_caller_id=True),
                agent(2, ERIN, 1, 2),
            )
            await h.settle(sup)
            ids = {r.to: r.caller_id for r in h.carrier.originated}
            assert ids == {ANTHONY: LEAD_PHONE, ERIN: CAMPAIGN_NUMBER}

    async def test_duplicate_inbound_answer_is_the_same_call(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A carrier retry of the answer request does not create a second call."""
        async with harness({ANTHONY: ACCEPTS}) as h:
            sup = await h.call(LeadScript(), agent(1, ANTHONY))
            again = h.orchestrator.accept_inbound(
                carrier_call_id="lead-1", from_number=LEAD_PHONE, to_number=CAMPAIGN_NUMBER
            )
            assert getattr(again, "tracking_guid", None) == sup.tracking_guid
            assert h.orchestrator.live_calls == 1
            await h.settle(sup)


class TestLogs:
    async def test_every_line_carries_the_call_and_legs_carry_their_agent(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Call context on every line; the canonical call.finished line says what happened."""
        with capture_logs(processors=[merge_contextvars]) as logs:
            async with harness({ANTHONY: ACCEPTS, ERIN: SILENT}) as h:
                sup = await h.call(
                    LeadScript(), agent(328290, ANTHONY, 1, 1), agent(328999, ERIN, 1, 2)
                )
                await h.settle(sup)
        prefixes = ("call", "leg", "tier", "plan")
        call_lines = [e for e in logs if e["event"].split(".")[0] in prefixes]
        assert call_lines
        for e in call_lines:
            assert e.get("tracking_guid") == sup.tracking_guid, e
        events = [e["event"] for e in call_lines]
        for name in (
            "call.started",
            "plan.received",
            "tier.started",
            "leg.originated",
            "leg.answered",
            "leg.accepted",
            "leg.ended",
            "call.connected",
            "call.finished",
        ):
            assert name in events, name
        for e in call_lines:
            if e["event"] in ("leg.originated", "leg.ended"):
                assert {"leg_id", "agent_id", "tier"} <= e.keys()
        (finished,) = [e for e in logs if e["event"] == "call.finished"]
        assert finished["outcome"] == "connected"
        assert finished["winner_agent_id"] == 328290
        assert finished["tiers_tried"] == [1]
        assert finished["legs"] == 2
        assert finished["time_to_connect_s"] == pytest.approx(3.5)
        legs = {r.leg_id for r in h.recorder.of(LegStarted)}
        assert len(legs) == 2


class TestOperator:
    async def test_ending_a_call_ends_every_leg_and_the_lead_with_an_outcome(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """An operator ends a ringing call: legs cancelled, lead hung up, 999999 posted."""
        async with harness({ANTHONY: SILENT, ERIN: SILENT}) as h:
            sup = await h.call(LeadScript(), agent(1, ANTHONY, 1, 1), agent(2, ERIN, 1, 2))
            await trio.sleep(3.0)
            snapshot = h.orchestrator.live_snapshot()
            assert [(s["state"], s["tier"]) for s in snapshot] == [("dialling", 1)]
            legs = snapshot[0]["legs"]
            assert isinstance(legs, list)
            assert [leg["state"] for leg in legs] == ["ringing", "ringing"]
            assert h.orchestrator.end_call(sup.tracking_guid) is True
            await h.settle(sup)
            ended = h.carrier.notes("ended_cancelled")
            assert sorted(n.phone for n in ended) == sorted([ANTHONY, ERIN])
            assert h.carrier.notes("lead_hung_up")[0].at == pytest.approx(3.0)
            assert outcome_fields(h.customer)["Agent1ID"] == "999999"
            assert h.orchestrator.end_call(sup.tracking_guid) is False


class TestCarrierFailures:
    async def test_a_leg_the_carrier_failed_to_cancel_is_cancelled_later(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Anthony wins at 3.5; the carrier refuses the first two cancels of Erin's ringing leg;
        the service keeps trying (1 s, then 2 s later) until her phone stops, at 6.5."""
        with capture_logs(processors=[merge_contextvars]) as logs:
            async with harness({ANTHONY: ACCEPTS, ERIN: SILENT}, failing_ends=2) as h:
                sup = await h.call(LeadScript(), agent(1, ANTHONY, 1, 1), agent(2, ERIN, 1, 2))
                await h.settle(sup)
                await trio.sleep(10)  # let the retries run (mock time)
                erin = [n for n in h.carrier.notes("ended_cancelled") if n.phone == ERIN]
                assert [n.at for n in erin] == [pytest.approx(6.5)]
                assert outcome_fields(h.customer)["Agent1ID"] == "1"
        events = [e["event"] for e in logs]
        assert events.count("leg.end_failed") == 1
        assert events.count("leg.end_retry_failed") == 1
        assert events.count("leg.end_retried") == 1


class TestCarrierRetries:
    """A carrier retry of an answer or key-press request (its first copy timed out on the read)
    gets the decision the first copy got."""

    async def test_a_replayed_press_of_the_winner_joins_the_room_again(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        async with harness({ANTHONY: ACCEPTS}) as h:
            sup = await h.call(LeadScript(), agent(1, ANTHONY))
            await trio.sleep(5.0)  # Anthony pressed 1 at 3.5 and is talking
            leg_id = h.leg_of(ANTHONY)
            replay = LegDigits(sup.tracking_guid, leg_id, call_id="agent-call", digits="1")
            decision = await h.orchestrator.deliver(replay)
            assert decision == Connect(room=sup.tracking_guid)
            assert sup.referee.winner is not None
            assert sup.referee.winner.leg_id == leg_id
            await h.settle(sup)
            assert outcome_fields(h.customer)["Agent1ID"] == "1"

    async def test_a_replayed_answer_of_the_override_winner_joins_the_room_again(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        async with harness({ANTHONY: AgentScript(answer_after_s=1.0)}) as h:
            sup = await h.call(LeadScript(), agent(1, ANTHONY, press1=False))
            await trio.sleep(3.0)
            replay = LegAnswered(sup.tracking_guid, h.leg_of(ANTHONY), call_id="agent-call")
            assert await h.orchestrator.deliver(replay) == Connect(room=sup.tracking_guid)
            await h.settle(sup)
            assert outcome_fields(h.customer)["Agent1ID"] == "1"

    async def test_a_replayed_answer_during_the_whisper_whispers_again(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        slow = AgentScript(answer_after_s=1.0, press="1", press_after_s=6.0)
        async with harness({ANTHONY: slow}) as h:
            sup = await h.call(LeadScript(), agent(1, ANTHONY))
            await trio.sleep(3.0)  # answered at 1.5, whispering until it presses at 7.5
            replay = LegAnswered(sup.tracking_guid, h.leg_of(ANTHONY), call_id="agent-call")
            decision = await h.orchestrator.deliver(replay)
            assert isinstance(decision, Whisper)
            assert "Press 1 to accept" in decision.text
            await h.settle(sup)
            assert outcome_fields(h.customer)["Agent1ID"] == "1"  # the first answer still counts

    async def test_a_replayed_decline_is_declined_again(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        declines = AgentScript(answer_after_s=1.0, press="2", press_after_s=1.0)
        async with harness({ANTHONY: declines, ERIN: SILENT}) as h:
            sup = await h.call(LeadScript(), agent(1, ANTHONY, 1, 1), agent(2, ERIN, 1, 2))
            await trio.sleep(4.0)
            replay = LegDigits(sup.tracking_guid, h.leg_of(ANTHONY), call_id="c", digits="2")
            assert await h.orchestrator.deliver(replay) == Release(DECLINE_TEXT)
            await h.settle(sup)
