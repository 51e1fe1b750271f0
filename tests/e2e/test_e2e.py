"""End to end over real HTTP on 127.0.0.1: customer ⇄ service ⇄ Plivo adapter ⇄ simulator.

Each test runs the whole service (:func:`tests.support.e2e.open_e2e`) with the built-in
Plivo-compatible simulator as its carrier and a test customer endpoint, drives one scenario of
README "The demo", and checks both what the customer was posted (Step 3) and what the store
committed (read through a second store). At the end of every test the simulator must hold no live
call.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import trio

from orchestrator.carriers.plivo.urls import LEAD_ANSWER_PATH, LEAD_HANGUP_PATH, VOICEMAIL_PATH
from orchestrator.model import (
    HANGUP_AGENT_ID,
    MESSAGE_LINK_MAX,
    VOICEMAIL_PROMPT,
    CallState,
    LegResult,
    OutcomeKind,
)
from simulator import AgentScript, EventKind, LeadScript, SimEvent
from tests.support.e2e import (
    API_DOC_PLAN,
    CAMPAIGN_NUMBER,
    E2E,
    E2E_ROUTING,
    GUID_RE,
    OUTCOME_PATH,
    PLANTYPE,
    WAIT_S,
    PlanReply,
    assert_in_order,
    conference_room,
    open_e2e,
)

pytestmark = pytest.mark.e2e

LEAD = "9495550000"
ANTHONY, ERIN = "8885551111", "9492651111"  # the API doc's agents 328290 and 328999
TIER3_PHONE = "7145550123"


def recording_url(e2e: E2E, what: str, *, call_uuid: str | None = None, **match: str) -> str:
    """The URL of the one recording of kind ``what`` (of ``call_uuid``) matching ``match``."""
    found = [
        e
        for e in e2e.sim.log.events(EventKind.RECORDING_FINISHED, call_uuid=call_uuid)
        if e.data.get("what") == what and all(e.data.get(k) == v for k, v in match.items())
    ]
    assert len(found) == 1, found
    url = found[0].data["url"]
    assert isinstance(url, str)
    return url


def ended(e2e: E2E, phone: str) -> SimEvent:
    return e2e.sim_event(phone, EventKind.CALL_ENDED)


class TestApiDocExample:
    """The API doc's example end to end: two agents in tier 1, the first to press 1 wins."""

    async def test_agent_who_presses_1_is_connected_and_the_other_leg_cancelled(
        self, tmp_path: Path
    ) -> None:
        routing = replace(E2E_ROUTING, ring_timeout_s=60.0)  # Erin rings all through
        async with open_e2e(tmp_path, routing=routing) as e2e:
            e2e.customer.answer(LEAD, PlanReply(API_DOC_PLAN))  # POSTed to responsecollect.aspx
            e2e.script_agent(ANTHONY, AgentScript(answer_after_s=2.0, press="1"))
            e2e.script_agent(ERIN, AgentScript(no_answer=True))
            e2e.place_call(LEAD, LeadScript(talk_s=3.0))

            step1, outcome = await e2e.outcome_of(LEAD)
            guid = step1.tracking_guid
            step2 = await e2e.customer.step2_answer_for(guid)
            assert step2.status == 200, step2.body
            summary = json.loads(step2.body)
            assert [(a["AgentRow"], a["AgentID"]) for a in summary["tiers"][0]["agents"]] == [
                (1, 328290),
                (2, 328999),
            ]

            # Step 3: the winner and the call recording
            link = recording_url(e2e, "conference", room=guid)
            assert outcome.form == {
                "ReferralID": "0",
                "TrackingGUID": guid,
                "Agent1ID": "328290",
                "MessageLink": link,
            }
            assert 0 < len(link) <= MESSAGE_LINK_MAX
            assert outcome.headers["idempotency-key"] == guid
            assert outcome.headers["content-type"].startswith("application/x-www-form-urlencoded")

            # the carrier: Anthony pressed 1 and joined the lead's room; Erin was cancelled
            pressed = e2e.sim_event(ANTHONY, EventKind.DIGITS_PRESSED)
            assert pressed.data["digits"] == "1"
            joined = e2e.sim_event(ANTHONY, EventKind.CONFERENCE_JOINED)
            assert joined.data["room"] == guid
            erin_end = ended(e2e, ERIN)
            assert (erin_end.data["cause_code"], erin_end.data["status"]) == (1000, "cancel")
            assert e2e.sim_events(ERIN, EventKind.CALL_ANSWERED) == []

            # the store
            call = await e2e.stored_call(guid)
            assert (call.state, call.outcome, call.agent1_id, call.message_link) == (
                CallState.FINISHED,
                OutcomeKind.CONNECTED,
                328290,
                link,
            )
            assert (call.lead_phone, call.dialled_number, call.referral_id, call.plantype) == (
                LEAD,
                CAMPAIGN_NUMBER,
                0,
                PLANTYPE,
            )
            assert call.plan_fingerprint is not None
            legs = {leg.agent_id: leg for leg in call.legs}
            assert {a: (leg.tier, leg.row, leg.phone) for a, leg in legs.items()} == {
                328290: (1, 1, ANTHONY),
                328999: (1, 2, ERIN),
            }
            assert all(leg.request_id for leg in call.legs)
            assert legs[328290].result is LegResult.ACCEPTED
            assert legs[328290].answered_at is not None
            assert (legs[328999].result, legs[328999].carrier_call_id) == (
                LegResult.CANCELLED,
                erin_end.call_uuid,
            )
            assert legs[328999].ended_at is not None
            assert_in_order(
                [e.event for e in call.events],
                [
                    "call.started",
                    "step1.sent",
                    "plan.received",
                    "tier.started",
                    "leg.originated",
                    "leg.answered",
                    "leg.accepted",
                    "call.connected",
                    "call.recording_ready",
                    "call.finished",
                ],
            )
            row = await e2e.delivered_outbox_row(guid)
            assert row["url"] == e2e.customer.url + OUTCOME_PATH
            assert json.loads(row["body"]) == outcome.form
            assert (row["attempts"], row["dead"]) == (1, False)
            anthony = await e2e.reader.get_agent(328290)
            assert anthony is not None
            assert (anthony.name, anthony.email, anthony.nmls, anthony.five_min_apps) == (
                "Anthony Smith",
                "Anthony.Smith@xyz.com",
                "848",
                True,
            )
            assert len(e2e.customer.outcomes_for(guid)) == 1


class TestTierEscalation:
    """Tiers 1,1,3: tier 3 is dialled only once both tier-1 legs have ended."""

    async def test_tier_3_leg_is_placed_after_both_tier_1_legs_ended(self, tmp_path: Path) -> None:
        plan = {
            "AgentEmailAddresses": "a@xyz.com,b@xyz.com,c@xyz.com",
            "AgentFiveMinApps": "0,0,1",
            "AgentID": "101,102,303",
            "AgentNames": "Ann,Bob,Cid",
            "AgentNMLS": "1,2,3",
            "AgentPhones": f"{ANTHONY},{ERIN},{TIER3_PHONE}",
            "AgentTier": "1,1,3",
            "AgentRow": "1,2,3",
        }
        async with open_e2e(tmp_path) as e2e:
            e2e.customer.answer(LEAD, PlanReply(plan))
            e2e.script_agent(ANTHONY, AgentScript(no_answer=True))
            e2e.script_agent(ERIN, AgentScript(busy=True))
            e2e.script_agent(TIER3_PHONE, AgentScript(answer_after_s=1.0, press="1"))
            e2e.place_call(LEAD, LeadScript(talk_s=3.0))

            step1, outcome = await e2e.outcome_of(LEAD)
            guid = step1.tracking_guid
            link = recording_url(e2e, "conference", room=guid)
            assert outcome.form == {
                "ReferralID": "0",
                "TrackingGUID": guid,
                "Agent1ID": "303",
                "MessageLink": link,
            }

            # the carrier's clock: tier 3 placed only after both tier-1 legs ended
            no_answer, busy = ended(e2e, ANTHONY), ended(e2e, ERIN)
            assert no_answer.data["status"] == "no-answer"
            assert busy.data["status"] == "busy"
            tier3 = e2e.sim_event(TIER3_PHONE, EventKind.CALL_PLACED)
            assert tier3.at >= max(no_answer.at, busy.at)
            assert tier3.seq > max(no_answer.seq, busy.seq)

            # the store agrees, on the service's own clock
            call = await e2e.stored_call(guid)
            assert (call.outcome, call.agent1_id) == (OutcomeKind.CONNECTED, 303)
            legs = {leg.agent_id: leg for leg in call.legs}
            assert {a: (leg.tier, leg.result) for a, leg in legs.items() if a != 303} == {
                101: (1, LegResult.NO_ANSWER),
                102: (1, LegResult.BUSY),
            }
            assert legs[303].tier == 3  # its result: see TestWinnerLegRow
            tier1_ended = [legs[101].ended_at, legs[102].ended_at]
            assert all(t is not None for t in tier1_ended)
            assert legs[303].started_at >= max(t for t in tier1_ended if t is not None)
            assert_in_order(
                [e.event for e in call.events],
                [
                    "tier.started",
                    "tier.exhausted",
                    "tier.started",
                    "leg.accepted",
                    "call.finished",
                ],
            )
            started = [
                json.loads(e.detail)["tier"] for e in call.events if e.event == "tier.started"
            ]
            assert started == [1, 3]
            row = await e2e.delivered_outbox_row(guid)
            assert json.loads(row["body"]) == outcome.form


class TestVoicemail:
    """Nobody accepts: the lead hears the prompt, leaves a message, Agent1ID=0 + its URL."""

    async def test_declined_and_unanswered_tier_leads_to_a_voicemail(self, tmp_path: Path) -> None:
        async with open_e2e(tmp_path) as e2e:
            e2e.customer.answer(LEAD, PlanReply(API_DOC_PLAN))
            e2e.script_agent(ANTHONY, AgentScript(answer_after_s=1.0, press="2"))
            e2e.script_agent(ERIN, AgentScript(no_answer=True))
            lead_uuid = e2e.place_call(LEAD, LeadScript(message_s=4.0, hangup_after_message=True))

            step1, outcome = await e2e.outcome_of(LEAD)
            guid = step1.tracking_guid
            message = recording_url(e2e, "record", call_uuid=lead_uuid)
            assert outcome.form == {
                "ReferralID": "0",
                "TrackingGUID": guid,
                "Agent1ID": "0",
                "MessageLink": message,
            }
            assert len(message) <= MESSAGE_LINK_MAX

            # the lead was moved to the voicemail document: prompt, then the recording
            transfer = e2e.sim_event(LEAD, EventKind.CALL_TRANSFERRED)
            assert isinstance(transfer.data["url"], str)
            assert transfer.data["url"].startswith(e2e.base + VOICEMAIL_PATH)
            steps = [
                e.data["step"]
                for e in e2e.sim_events(LEAD, EventKind.STEP_STARTED)
                if e.seq > transfer.seq
            ]
            assert steps[:2] == ["Speak", "Record"]
            signed = e2e.signed(VOICEMAIL_PATH + f"?call={guid}", {"CallUUID": lead_uuid})
            document = await e2e.send(signed)
            assert document.status_code == 200
            assert VOICEMAIL_PROMPT in document.text
            # both agents' legs ended before the lead was moved
            declined = e2e.sim_event(ANTHONY, EventKind.DIGITS_PRESSED)
            assert declined.data["digits"] == "2"
            assert ended(e2e, ERIN).data["status"] == "no-answer"
            assert max(ended(e2e, ANTHONY).seq, ended(e2e, ERIN).seq) < transfer.seq
            assert e2e.sim_events(ANTHONY, EventKind.CONFERENCE_JOINED) == []

            call = await e2e.stored_call(guid)
            assert (call.state, call.outcome, call.agent1_id, call.message_link) == (
                CallState.FINISHED,
                OutcomeKind.VOICEMAIL,
                0,
                message,
            )
            assert {leg.agent_id: leg.result for leg in call.legs} == {
                328290: LegResult.DECLINED,
                328999: LegResult.NO_ANSWER,
            }
            assert_in_order(
                [e.event for e in call.events],
                [
                    "tier.started",
                    "leg.declined",
                    "tier.exhausted",
                    "call.voicemail",
                    "call.voicemail_recorded",
                    "call.finished",
                ],
            )
            row = await e2e.delivered_outbox_row(guid)
            assert json.loads(row["body"]) == outcome.form


class TestLeadHangsUp:
    """The lead hangs up while agents ring: every leg ends at once; Agent1ID=999999."""

    async def test_every_ringing_leg_is_cancelled_at_once(self, tmp_path: Path) -> None:
        # Long ring timeout: a leg still up after the lead left would ring out, not be cancelled.
        routing = replace(E2E_ROUTING, ring_timeout_s=200.0)
        async with open_e2e(tmp_path, routing=routing) as e2e:
            e2e.customer.answer(LEAD, PlanReply(API_DOC_PLAN))
            e2e.script_agent(ANTHONY, AgentScript(no_answer=True))
            e2e.script_agent(ERIN, AgentScript(no_answer=True))
            lead_uuid = e2e.place_call(LEAD)

            def both_ringing() -> bool:
                return all(e2e.sim_events(p, EventKind.CALL_RINGING) for p in (ANTHONY, ERIN))

            with trio.fail_after(WAIT_S):
                await e2e.sim.wait_for(both_ringing)
            assert e2e.sim.party_hangup(lead_uuid)

            step1, outcome = await e2e.outcome_of(LEAD)
            guid = step1.tracking_guid
            assert outcome.form == {
                "ReferralID": "0",
                "TrackingGUID": guid,
                "Agent1ID": str(HANGUP_AGENT_ID),
                "MessageLink": "",
            }
            lead_end = ended(e2e, LEAD)
            for phone in (ANTHONY, ERIN):
                leg_end = ended(e2e, phone)
                assert (leg_end.data["cause_code"], leg_end.data["status"]) == (1000, "cancel")
                # "at once": well under a second of real time after the lead left
                assert 0 <= (leg_end.at - lead_end.at) * e2e.time_scale < 1.0
                assert e2e.sim_events(phone, EventKind.CALL_ANSWERED) == []

            call = await e2e.stored_call(guid)
            assert (call.state, call.outcome, call.agent1_id, call.message_link) == (
                CallState.FINISHED,
                OutcomeKind.HUNG_UP,
                HANGUP_AGENT_ID,
                "",
            )
            assert {leg.agent_id: leg.result for leg in call.legs} == {
                328290: LegResult.CANCELLED,
                328999: LegResult.CANCELLED,
            }
            names = [e.event for e in call.events]
            assert_in_order(names, ["tier.started", "call.lead_hung_up", "call.finished"])
            assert "call.voicemail" not in names
            row = await e2e.delivered_outbox_row(guid)
            assert json.loads(row["body"]) == outcome.form


def answer_form(call_uuid: str, lead_phone: str) -> dict[str, str]:
    """The inbound answer request's fields as Plivo sends them."""
    return {
        "CallUUID": call_uuid,
        "From": "1" + lead_phone,
        "To": "1" + CAMPAIGN_NUMBER,
        "Direction": "inbound",
        "CallStatus": "in-progress",
        "Event": "StartApp",
    }


class TestCarrierSignatures:
    """A missing or wrong V3 signature on /plivo/answer is 403 and changes nothing."""

    async def test_bad_and_missing_signatures_are_refused_without_effect(
        self, tmp_path: Path
    ) -> None:
        async with open_e2e(tmp_path) as e2e:
            e2e.customer.answer(LEAD, PlanReply(API_DOC_PLAN))
            await e2e.service.store.flush()
            before = await e2e.reader.row_counts()
            form = answer_form("forged-call-1", LEAD)

            wrong_token = e2e.signed(LEAD_ANSWER_PATH, form, token="not-the-auth-token")
            unsigned = e2e.signed(LEAD_ANSWER_PATH, form)
            tampered = e2e.signed(LEAD_ANSWER_PATH, form)
            for request, headers, data in (
                (wrong_token, wrong_token.headers, form),
                (unsigned, {}, form),
                (tampered, tampered.headers, {**form, "From": "15555550000"}),
            ):
                response = await e2e.http.post(request.url, data=data, headers=headers)
                assert response.status_code == 403, response.text
                assert response.json() == {"error": "bad signature"}

            orchestrator = e2e.service.orchestrator
            assert (orchestrator.calls_started, orchestrator.live_calls) == (0, 0)
            await e2e.service.store.flush()
            assert await e2e.reader.row_counts() == before
            assert e2e.customer.step1 == []
            assert e2e.sim.counts().get("placed", 0) == 0

            # the same request, correctly signed, is taken: the 403s were the signatures
            accepted = await e2e.send(e2e.signed(LEAD_ANSWER_PATH, form))
            assert accepted.status_code == 200
            guid = conference_room(accepted.text)
            await e2e.customer.step1_for(LEAD)
            hangup = e2e.signed(LEAD_HANGUP_PATH, {**form, "CallStatus": "completed"})
            assert (await e2e.send(hangup)).status_code == 200
            outcome = await e2e.customer.outcome_for(guid)
            assert outcome.form["Agent1ID"] == str(HANGUP_AGENT_ID)


class TestDuplicateAnswer:
    """A replayed inbound answer request for one CallUUID makes one call, not two."""

    async def test_replayed_answer_request_is_one_call_in_one_room(self, tmp_path: Path) -> None:
        async with open_e2e(tmp_path) as e2e:
            form = answer_form("replayed-call-1", LEAD)
            original = e2e.signed(LEAD_ANSWER_PATH, form)
            first = await e2e.send(original)
            second = await e2e.send(original)  # byte-for-byte the same request
            assert (first.status_code, second.status_code) == (200, 200)
            room = conference_room(first.text)
            assert conference_room(second.text) == room
            assert GUID_RE.match(room)

            step1 = await e2e.customer.step1_for(LEAD)
            assert step1.tracking_guid == room
            # end the call as the carrier would: the lead hangs up while waiting for a plan
            hangup = e2e.signed(LEAD_HANGUP_PATH, {**form, "CallStatus": "completed"})
            assert (await e2e.send(hangup)).status_code == 200
            outcome = await e2e.customer.outcome_for(room)
            assert outcome.form["Agent1ID"] == str(HANGUP_AGENT_ID)

            assert [s.tracking_guid for s in e2e.customer.step1] == [room]
            assert e2e.service.orchestrator.calls_started == 1
            call = await e2e.stored_call(room)
            assert (call.carrier_call_id, call.outcome) == ("replayed-call-1", OutcomeKind.HUNG_UP)
            counts = await e2e.reader.row_counts()
            assert (counts["calls"], counts["outbox"], counts["legs"]) == (1, 1, 0)
            assert len(e2e.customer.outcomes_for(room)) == 1


class TestStep1:
    """Step 1 carries the API doc's fields; a plan in its response body is used at once."""

    async def test_step1_fields_and_a_synchronous_indexed_plan(self, tmp_path: Path) -> None:
        plan = {  # indexed format, Press1=0: answering is accepting
            "ReferralID": "0",
            "Agent1ID": "4242",
            "Agent1Group": "1",
            "Agent1Phone": f"({ANTHONY[:3]}) {ANTHONY[3:6]}-{ANTHONY[6:]}",
            "Agent1Press1": "0",
        }
        async with open_e2e(tmp_path) as e2e:
            e2e.customer.answer(LEAD, PlanReply(plan, mode="sync"))
            e2e.script_agent(ANTHONY, AgentScript(answer_after_s=1.0, press=None))
            lead_uuid = e2e.place_call(LEAD, LeadScript(talk_s=3.0))

            step1, outcome = await e2e.outcome_of(LEAD)
            guid = step1.tracking_guid
            assert step1.query == {
                "ReferralID": "0",
                "Phone": LEAD,
                "plantype": PLANTYPE,
                "TrackingGUID": guid,
            }
            assert GUID_RE.match(guid)
            assert len(step1.query["Phone"]) == 10
            assert len(step1.query["plantype"]) <= 20
            # the TrackingGUID names the lead's hold room at the carrier
            lead_room = e2e.sim_events(LEAD, EventKind.CONFERENCE_JOINED)[0]
            assert (lead_room.call_uuid, lead_room.data["room"]) == (lead_uuid, guid)
            # no customer Step 2 post happened: the plan came with Step 1
            assert e2e.customer.step2_answers == []

            link = recording_url(e2e, "conference", room=guid)
            assert outcome.form == {
                "ReferralID": "0",
                "TrackingGUID": guid,
                "Agent1ID": "4242",
                "MessageLink": link,
            }
            assert e2e.sim_events(ANTHONY, EventKind.DIGITS_PRESSED) == []

            call = await e2e.stored_call(guid)
            assert (call.outcome, call.agent1_id, call.lead_phone) == (
                OutcomeKind.CONNECTED,
                4242,
                LEAD,
            )
            (leg,) = call.legs
            assert (leg.agent_id, leg.phone, leg.tier) == (4242, ANTHONY, 1)
            names = [e.event for e in call.events]
            assert_in_order(
                names,
                [
                    "step1.sent",
                    "plan.synchronous",
                    "plan.received",
                    "leg.accepted",
                    "call.finished",
                ],
            )
            row = await e2e.delivered_outbox_row(guid)
            assert json.loads(row["body"]) == outcome.form


class TestWinnerLegRow:
    """The winning agent's leg row records how it ended, like every other leg's."""

    async def test_winner_leg_is_stored_accepted_with_its_times(self, tmp_path: Path) -> None:
        plan = {"Agent1ID": "4242", "Agent1Group": "1", "Agent1Phone": ANTHONY, "Agent1Press1": "0"}
        async with open_e2e(tmp_path) as e2e:
            e2e.customer.answer(LEAD, PlanReply(plan, mode="sync"))
            e2e.script_agent(ANTHONY, AgentScript(answer_after_s=1.0, press=None))
            e2e.place_call(LEAD, LeadScript(talk_s=2.0))
            step1, outcome = await e2e.outcome_of(LEAD)
            assert outcome.form["Agent1ID"] == "4242"
            call = await e2e.stored_call(step1.tracking_guid)
            (leg,) = call.legs
            agent_call = e2e.sim_event(ANTHONY, EventKind.CALL_ENDED).call_uuid
            assert (leg.result, leg.carrier_call_id) == (LegResult.ACCEPTED, agent_call)
            assert leg.answered_at is not None
            assert leg.ended_at is not None


class TestSimultaneousAccept:
    """Two agents press 1 at the same simulated instant: exactly one is connected."""

    async def test_one_winner_and_the_other_agent_never_joins(self, tmp_path: Path) -> None:
        same = AgentScript(answer_after_s=2.0, press="1", press_after_s=1.0)
        async with open_e2e(tmp_path) as e2e:
            e2e.customer.answer(LEAD, PlanReply(API_DOC_PLAN))
            e2e.script_agent(ANTHONY, same)
            e2e.script_agent(ERIN, same)
            e2e.place_call(LEAD, LeadScript(talk_s=2.0))

            step1, outcome = await e2e.outcome_of(LEAD)
            guid = step1.tracking_guid
            agents = {"328290": ANTHONY, "328999": ERIN}
            winner = outcome.form["Agent1ID"]
            assert winner in agents
            (loser,) = set(agents) - {winner}
            joined = [p for p in (ANTHONY, ERIN) if e2e.sim_events(p, EventKind.CONFERENCE_JOINED)]
            assert joined == [agents[winner]]
            assert outcome.form["MessageLink"] == recording_url(e2e, "conference", room=guid)
            assert e2e.sim_events(agents[loser], EventKind.CALL_ANSWERED)  # it did answer

            call = await e2e.stored_call(guid)
            assert (call.outcome, call.agent1_id) == (OutcomeKind.CONNECTED, int(winner))
            legs = {leg.agent_id: leg for leg in call.legs}
            assert legs[int(loser)].result in (LegResult.TAKEN, LegResult.CANCELLED)
            assert [e.event for e in call.events].count("leg.accepted") == 1


class TestNoAgents:
    """A "no agents" plan (indexed, Agent1ID=0): straight to voicemail, nobody is dialled."""

    async def test_no_agents_plan_plays_the_prompt_and_posts_the_message(
        self, tmp_path: Path
    ) -> None:
        plan = {
            "ReferralID": "0",
            "Agent1ID": "0",
            "Agent1Group": "",
            "Agent1Phone": "",
            "Agent1Press1": "",
        }
        async with open_e2e(tmp_path) as e2e:
            e2e.customer.answer(
                LEAD, PlanReply(plan, path="/responsecollect", guid_field="TrackingGUID")
            )
            lead_uuid = e2e.place_call(LEAD, LeadScript(message_s=3.0, hangup_after_message=True))

            step1, outcome = await e2e.outcome_of(LEAD)
            guid = step1.tracking_guid
            assert (await e2e.customer.step2_answer_for(guid)).status == 200
            message = recording_url(e2e, "record", call_uuid=lead_uuid)
            assert outcome.form == {
                "ReferralID": "0",
                "TrackingGUID": guid,
                "Agent1ID": "0",
                "MessageLink": message,
            }
            assert e2e.sim.counts()["placed"] == 1  # the lead's call only: no agent leg

            call = await e2e.stored_call(guid)
            assert (call.outcome, call.agent1_id, call.message_link, call.legs) == (
                OutcomeKind.VOICEMAIL,
                0,
                message,
                (),
            )
            assert_in_order(
                [e.event for e in call.events],
                ["plan.received", "call.voicemail", "call.voicemail_recorded"],
            )
            voicemail = next(e for e in call.events if e.event == "call.voicemail")
            assert json.loads(voicemail.detail) == {"reason": "no_agents"}


class TestCarrierRetries:
    """A carrier retry of the winner's request (its first copy timed out on the read) gets the
    winner's answer again, over real HTTP: the agent stays in the room."""

    @pytest.mark.parametrize("press1", [True, False])
    async def test_replayed_request_of_the_winner_joins_the_room_again(
        self, tmp_path: Path, press1: bool
    ) -> None:
        plan = {
            "Agent1ID": "4242",
            "Agent1Group": "1",
            "Agent1Phone": ANTHONY,
            "Agent1Press1": "1" if press1 else "0",
        }
        async with open_e2e(tmp_path) as e2e:
            e2e.customer.answer(LEAD, PlanReply(plan, mode="sync"))
            # a simulated 160 s talk is 4 s of real time: the replay lands while they talk
            script = AgentScript(answer_after_s=1.0, press="1" if press1 else None, talk_s=160.0)
            e2e.script_agent(ANTHONY, script)
            e2e.place_call(LEAD, LeadScript(talk_s=200.0))
            step1 = await e2e.customer.step1_for(LEAD)
            guid = step1.tracking_guid
            with trio.fail_after(WAIT_S):
                await e2e.sim.log.wait_for(
                    lambda: any(
                        e.kind is EventKind.CONFERENCE_JOINED for e in e2e.sim.history(ANTHONY)
                    )
                )
            agent_call = e2e.sim_event(ANTHONY, EventKind.CALL_ANSWERED).call_uuid
            live = e2e.service.orchestrator.call(guid)
            assert live is not None
            (leg,) = live.referee.legs.values()
            route = "digits" if press1 else "answer"
            form = {"CallUUID": agent_call, "Direction": "outbound", "CallStatus": "in-progress"}
            if press1:
                form["Digits"] = "1"
            replay = e2e.signed(f"/plivo/leg/{route}?call={guid}&leg={leg.leg_id}", form)
            response = await e2e.send(replay)
            assert response.status_code == 200
            assert conference_room(response.text) == guid
            assert "taken" not in response.text
            _, outcome = await e2e.outcome_of(LEAD)
            assert outcome.form["Agent1ID"] == "4242"
