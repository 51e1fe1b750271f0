"""Scripted call flows through the simulator against a fake application server (real HTTP).

Every test runs the simulator (``time_scale`` 0.01: one simulated second is 10 ms) and a
:class:`FakeApplication` that answers webhooks with XML, and checks that no call is left live.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import trio

from simulator import (
    AgentScript,
    EventKind,
    LeadScript,
    RunningSimulator,
    Simulator,
    SimulatorConfig,
    start_simulator,
)
from simulator.rest_params import CallRequest
from simulator.server import serve_app
from simulator.testing import CapturedRequest, FakeApplication, Reply

TOKEN = "flow-test-token"
AGENT = "14155550111"
AGENT2 = "14155550112"
LEAD = "14155550199"
DID = "18005550100"
SCALE = 0.01
DEADLINE_S = 10.0  # real seconds any flow may take


@pytest.fixture(name="fake")
async def _fake(nursery: trio.Nursery) -> FakeApplication:
    fake = FakeApplication(auth_token=TOKEN)
    fake.base_url = await nursery.start(serve_app, fake.app, "127.0.0.1:0")
    return fake


async def _start(nursery: trio.Nursery, fake: FakeApplication, **overrides: object) -> Simulator:
    config = SimulatorConfig(
        bind="127.0.0.1:0",
        auth_token=TOKEN,
        answer_url=fake.url("/answer"),
        hangup_url=fake.url("/hangup"),
        time_scale=SCALE,
        cps=0,
        webhook_timeout_s=2.0,
    )
    config = replace(config, **overrides)  # type: ignore[arg-type]
    running: RunningSimulator = await nursery.start(start_simulator, config)
    return running.simulator


@pytest.fixture(name="sim")
async def _sim(nursery: trio.Nursery, fake: FakeApplication) -> AsyncIterator[Simulator]:
    sim = await _start(nursery, fake)
    yield sim
    # every test must leave the carrier without live calls
    assert sim.live_calls() == []


def _call(fake: FakeApplication, to: str = AGENT, **kw: object) -> CallRequest:
    fields: dict[str, object] = {
        "from_number": DID,
        "to": (to,),
        "answer_url": fake.url("/agent"),
        "hangup_url": fake.url("/agent-hangup"),
        "ring_url": fake.url("/ring"),
    }
    fields.update(kw)
    return CallRequest(**fields)  # type: ignore[arg-type]


async def _idle(
    sim: Simulator, fake: FakeApplication, hangups: int = 1, path: str = "/agent-hangup"
) -> list[CapturedRequest]:
    """Wait until no call is live and ``hangups`` hangup webhooks arrived on ``path``."""
    with trio.fail_after(DEADLINE_S):
        await sim.wait_idle()
        return await fake.wait_requests(path, hangups)


def _assert_signed(fake: FakeApplication) -> None:
    assert fake.requests, "no webhooks received"
    assert all(r.signature_valid and r.ma_signature_valid for r in fake.requests)


class TestAgentLegs:
    """Outbound agent legs: answer and press 1, busy, no answer, cancel while ringing."""

    async def test_answer_press_one_then_conference(
        self, sim: Simulator, fake: FakeApplication
    ) -> None:
        """The agent answers, hears GetDigits, presses 1, and is put in the conference."""
        # alone in the room, talk_s never starts: the agent hangs up 20 s after answering
        sim.scripts.set(
            AGENT, AgentScript(answer_after_s=1, press="1", press_after_s=1, hangup_after_s=20)
        )
        fake.reply(
            "/agent",
            f"""<Response>
            <GetDigits action="{fake.url("/digits")}" numDigits="1" timeout="5" validDigits="1">
              <Speak>Incoming call. Press 1 to accept.</Speak></GetDigits>
            <Hangup reason="rejected"/></Response>""",
        )
        fake.reply(
            "/digits",
            f"""<Response><Conference startConferenceOnEnter="true"
            endConferenceOnExit="true" callbackUrl="{fake.url("/conf")}">room-1</Conference>
            </Response>""",
        )
        result = sim.make_call(sim.main_account, _call(fake))
        assert result.message == "call fired"
        (hangup,) = await _idle(sim, fake)

        ring, answer, digits = fake.to("/ring")[0], fake.to("/agent")[0], fake.to("/digits")[0]
        assert ring.form["CallStatus"] == "ringing"
        assert ring.form["RequestUUID"] == result.request_uuids[0]
        assert answer.form["Event"] == "StartApp"
        assert answer.form["CallStatus"] == "in-progress"
        assert answer.form["ALegRequestUUID"] == result.request_uuids[0]
        assert answer.form["CallUUID"] != result.request_uuids[0]  # never assume equality
        assert (answer.form["From"], answer.form["To"]) == (DID, AGENT)
        assert digits.form["Digits"] == "1"
        assert [r.form["ConferenceAction"] for r in fake.to("/conf")] == ["enter", "exit"]
        assert hangup.form["CallStatus"] == "completed"
        assert (hangup.form["HangupCauseCode"], hangup.form["HangupSource"]) == (
            "4000",
            "Call recipient",
        )
        assert 20 <= int(hangup.form["Duration"]) <= 23  # upper bound: slack for a slow machine
        steps = [e.data["step"] for e in sim.history(AGENT) if e.kind == EventKind.STEP_STARTED]
        assert steps == ["GetDigits", "Conference"]
        _assert_signed(fake)

    async def test_busy(self, sim: Simulator, fake: FakeApplication) -> None:
        """A busy agent: no ring, no answer request, hangup_url says busy (3010)."""
        sim.scripts.set(AGENT, AgentScript(busy=True))
        sim.make_call(sim.main_account, _call(fake))
        (hangup,) = await _idle(sim, fake)
        assert hangup.form["CallStatus"] == "busy"
        assert hangup.form["HangupCauseCode"] == "3010"
        assert hangup.form["Duration"] == "0"
        assert hangup.form["AnswerTime"] == ""
        assert not fake.to("/ring")
        assert not fake.to("/agent")

    async def test_no_answer_rings_until_ring_timeout(
        self, sim: Simulator, fake: FakeApplication
    ) -> None:
        """An agent who never answers rings for ring_timeout, then no-answer."""
        sim.scripts.set(AGENT, AgentScript(no_answer=True))
        sim.make_call(sim.main_account, _call(fake, ring_timeout_s=5))
        (hangup,) = await _idle(sim, fake)
        assert hangup.form["CallStatus"] == "no-answer"
        assert hangup.form["HangupCause"] == "NO_ANSWER"
        assert len(fake.to("/ring")) == 1
        assert not fake.to("/agent")
        ringing = sim.log.events(EventKind.CALL_RINGING)[0]
        ended = sim.log.events(EventKind.CALL_ENDED)[0]
        assert 5.0 <= ended.at - ringing.at <= 7.0

    async def test_answer_slower_than_ring_timeout_is_no_answer(
        self, sim: Simulator, fake: FakeApplication
    ) -> None:
        """answer_after_s beyond the request's ring_timeout also ends as no-answer."""
        sim.scripts.set(AGENT, AgentScript(answer_after_s=30))
        sim.make_call(sim.main_account, _call(fake, ring_timeout_s=2))
        (hangup,) = await _idle(sim, fake)
        assert hangup.form["CallStatus"] == "no-answer"

    async def test_cancel_while_ringing(self, sim: Simulator, fake: FakeApplication) -> None:
        """Cancelling the request while it rings ends it with 1000 Canceled / API Request."""
        sim.scripts.set(AGENT, AgentScript(no_answer=True))
        result = sim.make_call(sim.main_account, _call(fake))
        with trio.fail_after(DEADLINE_S):
            await fake.wait_requests("/ring")
        assert sim.cancel_request(sim.main_account, result.request_uuids[0])
        (hangup,) = await _idle(sim, fake)
        assert hangup.form["CallStatus"] == "cancel"
        assert (hangup.form["HangupCauseCode"], hangup.form["HangupCauseName"]) == (
            "1000",
            "Canceled",
        )
        assert hangup.form["HangupSource"] == "API Request"
        assert not sim.cancel_request(sim.main_account, result.request_uuids[0])

    async def test_silence_falls_through_after_retries(
        self, sim: Simulator, fake: FakeApplication
    ) -> None:
        """No key pressed: GetDigits retries, then the next element (Hangup rejected) runs."""
        sim.scripts.set(AGENT, AgentScript(answer_after_s=0.5, press=None))
        fake.reply(
            "/agent",
            f"""<Response><GetDigits action="{fake.url("/digits")}"
            timeout="2" retries="2"><Speak>Press 1</Speak></GetDigits>
            <Hangup reason="rejected"/></Response>""",
        )
        sim.make_call(sim.main_account, _call(fake))
        (hangup,) = await _idle(sim, fake)
        assert not fake.to("/digits")
        assert (hangup.form["HangupCauseCode"], hangup.form["HangupSource"]) == (
            "3020",
            "Answer XML",
        )
        assert int(hangup.form["Duration"]) >= 4  # two attempts of (prompt + 2 s)

    async def test_other_key_is_invalid(self, sim: Simulator, fake: FakeApplication) -> None:
        """A key outside validDigits is not sent to action; the call falls through."""
        sim.scripts.set(AGENT, AgentScript(answer_after_s=0.5, press="2"))
        fake.reply(
            "/agent",
            f"""<Response><GetDigits action="{fake.url("/digits")}"
            numDigits="1" timeout="2" validDigits="1"/><Speak>Bye</Speak></Response>""",
        )
        sim.make_call(sim.main_account, _call(fake))
        (hangup,) = await _idle(sim, fake)
        assert not fake.to("/digits")
        assert hangup.form["HangupCauseCode"] == "4010"
        assert sim.log.events(EventKind.DIGITS_PRESSED)[0].data["keys"] == "2"

    async def test_cps_queues_calls(self, nursery: trio.Nursery, fake: FakeApplication) -> None:
        """Above the CPS limit calls are queued (not refused) and dialled later."""
        sim = await _start(nursery, fake, cps=2.0)
        sim.scripts.set(AGENT, AgentScript(busy=True))
        sim.scripts.set(AGENT2, AgentScript(busy=True))
        first = sim.make_call(sim.main_account, _call(fake))
        second = sim.make_call(sim.main_account, _call(fake, to=AGENT2))
        third = sim.make_call(sim.main_account, _call(fake))
        assert (first.message, second.message, third.message) == (
            "call fired",
            "call fired",
            "call queued",
        )
        assert sim.queued_request_uuids() == list(third.request_uuids)
        await _idle(sim, fake, hangups=3)
        placed = sim.log.events(EventKind.CALL_PLACED)
        assert placed[2].at - placed[0].at >= 0.45 / SCALE  # half a real second later
        assert sim.live_calls() == []

    async def test_cancel_queued_request(
        self, nursery: trio.Nursery, fake: FakeApplication
    ) -> None:
        """A queued request can be cancelled before it is ever dialled."""
        sim = await _start(nursery, fake, cps=1.0)
        sim.scripts.set(AGENT, AgentScript(busy=True))
        sim.make_call(sim.main_account, _call(fake))
        queued = sim.make_call(sim.main_account, _call(fake))
        assert queued.message == "call queued"
        assert sim.cancel_request(None, queued.request_uuids[0])
        hangups = await _idle(sim, fake, hangups=2)
        assert sorted(h.form["CallStatus"] for h in hangups) == ["busy", "cancel"]
        assert len(sim.log.events(EventKind.CALL_PLACED)) == 1
        assert sim.live_calls() == []


class TestLeadCalls:
    """Inbound leads: hold room with waitSound, agent joins, voicemail, end of document."""

    def _hold_xml(self, fake: FakeApplication, room: str = "lead-room") -> str:
        return f"""<Response><Conference startConferenceOnEnter="false"
            endConferenceOnExit="true" waitSound="{fake.url("/hold")}"
            callbackUrl="{fake.url("/lead-conf")}" action="{fake.url("/lead-conf-done")}"
            >{room}</Conference></Response>"""

    async def test_hold_then_agent_joins_and_recording_delivered(
        self, sim: Simulator, fake: FakeApplication
    ) -> None:
        """The lead hears waitSound until an agent leg joins; the recording arrives at the end."""
        fake.reply("/answer", self._hold_xml(fake))
        fake.reply("/hold", '<Response><Wait length="1"/></Response>')
        fake.reply(
            "/agent",
            f"""<Response><Conference startConferenceOnEnter="true"
            endConferenceOnExit="true" record="true" callbackUrl="{fake.url("/agent-conf")}"
            >lead-room</Conference></Response>""",
        )
        lead_uuid = sim.place_inbound(LEAD, DID, LeadScript())
        with trio.fail_after(DEADLINE_S):
            await fake.wait_requests("/hold")
            await trio.sleep(3 * SCALE * 2)  # a few waitSound loops
        sim.scripts.set(AGENT, AgentScript(answer_after_s=1, talk_s=4))
        sim.make_call(sim.main_account, _call(fake))
        await _idle(sim, fake)
        (lead_hangup,) = await fake.wait_requests("/hangup")

        answer = fake.to("/answer")[0]
        assert answer.form["Direction"] == "inbound"
        assert answer.form["CallUUID"] == lead_uuid
        assert (answer.form["From"], answer.form["To"]) == (LEAD, DID)
        assert "RequestUUID" not in answer.form
        left = [e for e in sim.history(LEAD) if e.kind == EventKind.CONFERENCE_LEFT]
        loops = left[0].data["wait_sound_loops"]
        assert isinstance(loops, int)
        assert loops >= 1
        assert left[0].data["removed"] is True
        record = [r for r in fake.to("/agent-conf") if r.form["ConferenceAction"] == "record"]
        assert len(record) == 1
        assert record[0].form["RecordUrl"].startswith(sim.public_url + "/sim/recordings/")
        assert 4 <= int(record[0].form["RecordingDuration"]) <= 8  # talk_s=4
        assert record[0].form["ConferenceName"] == "lead-room"
        done = fake.to("/lead-conf-done")[0]
        assert done.form["RecordingID"] == record[0].form["RecordingID"]
        # the agent's end_on_exit ended the room; the lead was hung up
        assert (lead_hangup.form["HangupCauseCode"], lead_hangup.form["HangupSource"]) == (
            "4000",
            "Plivo",
        )
        _assert_signed(fake)

    async def test_lead_hangs_up_on_hold(self, sim: Simulator, fake: FakeApplication) -> None:
        """A lead who hangs up while waiting leaves the room: exit callback, then hangup."""
        fake.reply("/answer", self._hold_xml(fake))
        fake.reply("/hold", "<Response><Play>https://x/music.mp3</Play></Response>")
        sim.place_inbound(LEAD, DID, LeadScript(hangup_after_s=3))
        (hangup,) = await _idle(sim, fake, path="/hangup")
        actions = [r.form["ConferenceAction"] for r in fake.to("/lead-conf")]
        assert actions == ["enter", "exit"]
        assert fake.to("/lead-conf-done")[0].form["CallStatus"] == "completed"
        assert (hangup.form["HangupSource"], hangup.form["CallStatus"]) == ("Caller", "completed")
        assert len(sim.rooms) == 0

    async def test_transfer_to_voicemail_record(
        self, sim: Simulator, fake: FakeApplication
    ) -> None:
        """Transferred to Speak + Record, the lead leaves 3 s: Record action has RecordUrl."""
        fake.reply("/answer", self._hold_xml(fake))
        fake.reply(
            "/voicemail",
            f"""<Response><Speak>Please leave a message.</Speak>
            <Record action="{fake.url("/vm-done")}" redirect="false" timeout="2"
              maxLength="120" callbackUrl="{fake.url("/vm-ready")}"/>
            <Speak>Thank you.</Speak><Hangup/></Response>""",
        )
        lead_uuid = sim.place_inbound(LEAD, DID, LeadScript(message_s=3))
        with trio.fail_after(DEADLINE_S):
            await fake.wait_requests("/lead-conf")
        assert sim.transfer_call(None, lead_uuid, fake.url("/voicemail"), "POST")
        (hangup,) = await _idle(sim, fake, path="/hangup")
        with trio.fail_after(DEADLINE_S):
            (ready,) = await fake.wait_requests("/vm-ready")

        assert fake.to("/voicemail")[0].form["CallUUID"] == lead_uuid
        (done,) = fake.to("/vm-done")
        assert done.form["RecordUrl"].endswith(".mp3")
        assert done.form["RecordingDuration"] == "3"
        assert done.form["RecordingDurationMs"] == "3000"
        assert ready.form["RecordingID"] == done.form["RecordingID"]
        assert [r.form["ConferenceAction"] for r in fake.to("/lead-conf")] == ["enter", "exit"]
        assert (hangup.form["HangupCauseCode"], hangup.form["HangupSource"]) == (
            "4000",
            "Answer XML",
        )
        assert sim.log.events(EventKind.CALL_TRANSFERRED)[0].call_uuid == lead_uuid

    async def test_hang_up_after_message(self, sim: Simulator, fake: FakeApplication) -> None:
        """A lead who hangs up after speaking: the Record action arrives, then the hangup."""
        fake.reply(
            "/answer",
            f"""<Response><Record action="{fake.url("/vm-done")}"
            timeout="10"/><Speak>unreached</Speak></Response>""",
        )
        sim.place_inbound(LEAD, DID, LeadScript(message_s=2, hangup_after_message=True))
        (hangup,) = await _idle(sim, fake, path="/hangup")
        (done,) = fake.to("/vm-done")
        assert done.form["RecordingDuration"] == "2"
        assert done.form["CallStatus"] == "completed"
        assert fake.requests.index(done) < fake.requests.index(hangup)
        assert hangup.form["HangupSource"] == "Caller"

    async def test_end_of_document(self, sim: Simulator, fake: FakeApplication) -> None:
        """Running out of elements ends the call with 4010 End Of XML Instructions."""
        fake.reply("/answer", '<Response><Speak>Hello</Speak><Wait length="1"/></Response>')
        sim.place_inbound(LEAD, DID, LeadScript())
        (hangup,) = await _idle(sim, fake, path="/hangup")
        assert (hangup.form["HangupCauseCode"], hangup.form["HangupCauseName"]) == (
            "4010",
            "End Of XML Instructions",
        )
        assert hangup.form["HangupSource"] == "Plivo"
        assert hangup.form["Direction"] == "inbound"

    async def test_redirect_and_dial(self, sim: Simulator, fake: FakeApplication) -> None:
        """Redirect fetches a new document; Dial bridges the first agent to answer."""
        sim.scripts.set(AGENT, AgentScript(busy=True))
        sim.scripts.set(AGENT2, AgentScript(answer_after_s=1, talk_s=2))
        fake.reply("/answer", f"<Response><Redirect>{fake.url('/forward')}</Redirect></Response>")
        fake.reply(
            "/forward",
            f"""<Response><Dial action="{fake.url("/dial-done")}"
            timeout="10"><Number>{AGENT}</Number><Number>{AGENT2}</Number></Dial>
            </Response>""",
        )
        fake.reply("/dial-done", "<Response><Hangup/></Response>")
        sim.place_inbound(LEAD, DID, LeadScript())
        await _idle(sim, fake, path="/hangup")
        (done,) = fake.to("/dial-done")
        assert done.form["DialStatus"] == "completed"
        assert done.form["DialBLegUUID"]
        outcomes = {e.number: e.data["outcome"] for e in sim.log.events(EventKind.DIAL_LEG)}
        assert outcomes == {AGENT: "busy", AGENT2: "answer"}


class TestWebhookFailures:
    """Unreachable or invalid answer URLs end the call the way Plivo does (docs/plivo.md §6.4)."""

    async def test_unreachable_answer_url(self, sim: Simulator, fake: FakeApplication) -> None:
        """Connection refused: one retry, then 7011 Error Reaching Answer URL."""
        sim.scripts.set(AGENT, AgentScript(answer_after_s=0.5))
        sim.make_call(sim.main_account, _call(fake, answer_url="http://127.0.0.1:9/answer"))
        (hangup,) = await _idle(sim, fake)
        assert hangup.form["HangupCauseCode"] == "7011"
        failed = [e for e in sim.log.events(EventKind.WEBHOOK_FAILED) if e.data["what"] == "answer"]
        assert failed[0].data["attempts"] == 2
        assert failed[0].data["failure"] == "ct"

    async def test_fallback_url_used(self, sim: Simulator, fake: FakeApplication) -> None:
        """A failing answer URL falls back to fallback_url."""
        sim.scripts.set(AGENT, AgentScript(answer_after_s=0.5))
        fake.reply("/agent", Reply("boom", status=500))
        fake.reply("/fallback", "<Response><Hangup/></Response>")
        sim.make_call(sim.main_account, _call(fake, fallback_url=fake.url("/fallback")))
        (hangup,) = await _idle(sim, fake)
        assert len(fake.to("/agent")) == 1  # no retry on an HTTP status
        assert len(fake.to("/fallback")) == 1
        assert hangup.form["HangupSource"] == "Answer XML"

    async def test_non_xml_answer(self, sim: Simulator, fake: FakeApplication) -> None:
        """A 200 whose body is not Plivo XML ends the call with 8011."""
        sim.scripts.set(AGENT, AgentScript(answer_after_s=0.5))
        fake.reply("/agent", Reply('{"ok": true}', content_type="application/json"))
        sim.make_call(sim.main_account, _call(fake))
        (hangup,) = await _idle(sim, fake)
        assert (hangup.form["HangupCauseCode"], hangup.form["HangupCauseName"]) == (
            "8011",
            "Invalid Answer XML",
        )

    async def test_bad_action_xml(self, sim: Simulator, fake: FakeApplication) -> None:
        """An action answered with invalid XML (redirect=true) ends the call with 8012."""
        sim.scripts.set(AGENT, AgentScript(answer_after_s=0.5, press="1", press_after_s=0.5))
        fake.reply(
            "/agent",
            f"""<Response><GetDigits action="{fake.url("/digits")}"
            numDigits="1"/></Response>""",
        )
        fake.reply("/digits", "")
        sim.make_call(sim.main_account, _call(fake))
        (hangup,) = await _idle(sim, fake)
        assert hangup.form["HangupCauseCode"] == "8012"
