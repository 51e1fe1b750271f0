"""An in-memory carrier with scripted agents and leads, for deterministic tests and benchmarks.

It implements :class:`orchestrator.ports.Carrier` and plays the carrier's part of the call:
each placed leg rings, answers, listens to the decision the orchestrator returns (whisper,
connect, release) and behaves as its :class:`AgentScript` says, sending events through
``deliver`` (normally :meth:`Orchestrator.deliver`) as the real carrier's webhooks would. Time is
trio's clock, so tests run it under ``MockClock``.

It keeps what a test needs to check: :attr:`FakeCarrier.live` (legs not ended — must be empty
when a test ends), the ordered :attr:`FakeCarrier.log`, and what was originated or cancelled.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import trio

from orchestrator.errors import CarrierError
from orchestrator.messages import (
    CarrierEvent,
    Connect,
    Decision,
    Forward,
    IvrAnswered,
    LeadHungUp,
    LeadTarget,
    LegAnswered,
    LegDigits,
    LegEndCause,
    LegEnded,
    LegRinging,
    RecordingReady,
    Release,
    VoicemailRecorded,
    Whisper,
)
from orchestrator.ports import LegRequest

Deliver = Callable[[CarrierEvent], Awaitable[Decision | None]]


@dataclass(frozen=True, slots=True)
class AgentScript:
    """How an agent's phone behaves when rung."""

    answer_after_s: float | None = 1.0  # None: never answers (rings out at ring_timeout)
    busy: bool = False
    fail: bool = False  # the carrier refuses to place the call
    press: str | None = "1"  # keys pressed after the whisper; None: silence
    press_after_s: float = 1.0
    hangup_after_s: float | None = None  # hangs up this long after answering, unless accepted
    talk_s: float = 60.0  # once connected, talks this long, then hangs up
    originate_latency_s: float = 0.0  # how long the carrier takes to answer Make Call
    ring_forever: bool = False  # rings until ended by us, without a task (memory benchmarks)


@dataclass(frozen=True, slots=True)
class Note:
    """One line of the carrier's log: at trio time ``at``, ``what`` happened to a leg/lead."""

    at: float
    what: str
    phone: str = ""
    leg_id: str = ""


@dataclass(frozen=True, slots=True)
class LeadScript:
    """How the lead behaves."""

    hangup_after_s: float | None = None  # hangs up this long after calling (None: waits)
    message_s: float | None = 5.0  # voicemail length; None: hangs up at the prompt
    ivr_press: str = ""  # the key pressed at an IVR question ("" = silence)
    ivr_after_s: float = 1.0  # when the IVR answer reaches us (after the key, or silence)


@dataclass(slots=True, eq=False)
class FakeLeg:
    request: LegRequest
    request_id: str
    call_id: str = ""
    answered: bool = False
    connected: bool = False
    scope: trio.CancelScope | None = None  # the task playing it, if any


@dataclass(slots=True, eq=False)
class FakeLead:
    call_id: str
    script: LeadScript
    tracking_guid: str = ""
    room_leg: FakeLeg | None = None
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)


class FakeCarrier:
    """See the module docstring. Use ``await nursery.start(carrier.run)`` before calls."""

    def __init__(
        self,
        *,
        agents: Mapping[str, AgentScript] | None = None,
        default_agent: AgentScript = AgentScript(),
        ring_delay_s: float = 0.5,
        cancel_latency_s: float = 0.0,
        failing_ends: int = 0,
        recording_base: str = "https://recordings.example/",
        keep_log: bool = True,
    ) -> None:
        self.deliver: Deliver | None = None
        self.agents = dict(agents or {})
        self.default_agent = default_agent
        self.ring_delay_s = ring_delay_s
        self.cancel_latency_s = cancel_latency_s
        self.failing_ends = failing_ends  # this many cancel/hangup requests fail first
        self.recording_base = recording_base
        self.keep_log = keep_log
        self.live: dict[str, FakeLeg] = {}  # request_id -> leg not ended
        self.leads: dict[str, FakeLead] = {}  # call_id -> lead still on the line
        self.originated: list[LegRequest] = []
        self.cancelled: list[str] = []  # request ids we were asked to cancel
        self.hung_up: list[str] = []  # call ids we were asked to hang up
        self.log: list[Note] = []
        self._by_call_id: dict[str, FakeLeg] = {}
        self._ids = itertools.count(1)
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def _note(self, what: str, phone: str = "", leg_id: str = "") -> None:
        if self.keep_log:
            self.log.append(Note(trio.current_time(), what, phone, leg_id))

    def notes(self, what: str) -> list[Note]:
        return [n for n in self.log if n.what == what]

    def _spawn(self, fn: Callable[[], Awaitable[object]]) -> None:
        assert self._nursery is not None, "start FakeCarrier.run first"
        with contextlib.suppress(RuntimeError):  # the carrier is shutting down: nothing more
            self._nursery.start_soon(fn)

    async def _send(self, event: CarrierEvent) -> Decision | None:
        assert self.deliver is not None, "set FakeCarrier.deliver"
        return await self.deliver(event)

    def _post(self, event: CarrierEvent) -> None:
        """A notification webhook: sent concurrently, its answer ignored."""
        self._spawn(lambda: self._send(event))

    # --- the Carrier port ------------------------------------------------------------------

    async def originate(self, request: LegRequest) -> str:
        script = self.agents.get(request.to, self.default_agent)
        if self.keep_log:
            self.originated.append(request)
        self._note("originate", request.to, request.leg_id)
        await trio.lowlevel.checkpoint()
        if script.fail:
            raise CarrierError(f"cannot place a call to {request.to}")
        request_id = f"req-{next(self._ids)}"
        leg = FakeLeg(request, request_id)
        self.live[request_id] = leg
        if script.originate_latency_s:
            # The port's contract: once sent, the request completes even if we are cancelled.
            with trio.CancelScope(shield=True):
                await trio.sleep(script.originate_latency_s)
        if not script.ring_forever:
            self._spawn(lambda: self._play_leg(leg, script))
        return request_id

    async def cancel(self, request_id: str) -> None:
        self.cancelled.append(request_id)
        await trio.sleep(self.cancel_latency_s)
        self._maybe_fail("cancel")
        leg = self.live.get(request_id)
        if leg is None or leg.answered:
            return  # gone, or answered: Plivo cannot cancel an answered request (404)
        self._end_leg(leg, LegEndCause.CANCELLED)

    async def hangup(self, call_id: str) -> None:
        if not call_id:
            raise CarrierError("refusing to hang up an empty call id (it would end every call)")
        self.hung_up.append(call_id)
        await trio.sleep(self.cancel_latency_s)
        self._maybe_fail("hangup")
        if call_id in self.leads:
            self._lead_leaves(self.leads[call_id])
            return
        leg = self._by_call_id.get(call_id)
        if leg is not None and leg.request_id in self.live:
            self._end_leg(leg, LegEndCause.HANGUP)

    def _maybe_fail(self, what: str) -> None:
        if self.failing_ends > 0:
            self.failing_ends -= 1
            raise CarrierError(f"{what} failed: carrier answered HTTP 503")

    async def redirect_lead(self, call_id: str, tracking_guid: str, target: LeadTarget) -> None:
        await trio.lowlevel.checkpoint()
        lead = self.leads.get(call_id)
        if lead is None:
            raise CarrierError(f"no live call {call_id}")
        self._note(f"lead_{target.value}", leg_id=call_id)
        if target is LeadTarget.VOICEMAIL:
            lead.scope.cancel()  # the voicemail document replaces what the lead was doing
            lead.scope = trio.CancelScope()
            self._spawn(lambda: self._play_voicemail(lead))

    # --- leads -----------------------------------------------------------------------------

    def lead_calls(
        self, tracking_guid: str, call_id: str, script: LeadScript, *, ivr: bool = False
    ) -> FakeLead:
        """Put a lead on the line (after the orchestrator accepted the call); ``ivr``: the
        answer XML asked the campaign's question first."""
        lead = FakeLead(call_id, script, tracking_guid)
        self.leads[call_id] = lead
        self._note("lead_called", leg_id=call_id)
        if script.hangup_after_s is not None:
            self._spawn(lambda: self._lead_timer(lead, script.hangup_after_s or 0.0))
        if ivr:
            self._spawn(lambda: self._answer_ivr(lead))
        return lead

    async def _answer_ivr(self, lead: FakeLead) -> None:
        await trio.sleep(lead.script.ivr_after_s)
        if lead.call_id not in self.leads:
            return  # hung up during the question
        decision = await self._send(
            IvrAnswered(lead.tracking_guid, lead.call_id, lead.script.ivr_press)
        )
        if isinstance(decision, Forward):
            self._note(f"lead_forwarded_{decision.number}", leg_id=lead.call_id)
            self._lead_leaves(lead)  # the forwarded call is no longer ours to watch

    async def _lead_timer(self, lead: FakeLead, after_s: float) -> None:
        with lead.scope:
            await trio.sleep(after_s)
            self._lead_leaves(lead)

    async def _play_voicemail(self, lead: FakeLead) -> None:
        with lead.scope:
            message_s = lead.script.message_s
            if message_s is not None:
                await trio.sleep(message_s)
                url = f"{self.recording_base}vm-{lead.call_id}.mp3"
                await self._send(
                    VoicemailRecorded(lead.tracking_guid, url, f"vm-{lead.call_id}", message_s)
                )
            self._lead_leaves(lead)

    def _lead_leaves(self, lead: FakeLead) -> None:
        if self.leads.pop(lead.call_id, None) is None:
            return
        lead.scope.cancel()
        self._note("lead_hung_up", leg_id=lead.call_id)
        self._post(LeadHungUp(lead.tracking_guid, lead.call_id))
        if lead.room_leg is not None:  # the lead's exit ends the conference
            self._end_leg(lead.room_leg, LegEndCause.HANGUP)

    # --- agent legs ------------------------------------------------------------------------

    def _end_leg(self, leg: FakeLeg, cause: LegEndCause) -> None:
        if self.live.pop(leg.request_id, None) is None:
            return
        if leg.scope is not None:
            leg.scope.cancel()
        self._note(f"ended_{cause.value}", leg.request.to, leg.request.leg_id)
        self._post(
            LegEnded(
                leg.request.tracking_guid,
                leg.request.leg_id,
                cause,
                leg.call_id,
                leg.request_id,
                answered=leg.answered,
            )
        )
        if leg.connected:
            self._conference_ends(leg)

    def _conference_ends(self, leg: FakeLeg) -> None:
        guid = leg.request.tracking_guid
        self._post(RecordingReady(guid, f"{self.recording_base}conf-{guid}.mp3", f"rec-{guid}"))
        for lead in list(self.leads.values()):
            if lead.room_leg is leg:
                lead.room_leg = None
                self._lead_leaves(lead)

    async def _play_leg(self, leg: FakeLeg, script: AgentScript) -> None:
        request = leg.request
        leg.scope = trio.CancelScope()
        with leg.scope:
            await trio.sleep(self.ring_delay_s)
            if script.busy:
                self._end_leg(leg, LegEndCause.BUSY)
                return
            self._note("ringing", request.to, request.leg_id)
            self._post(LegRinging(request.tracking_guid, request.leg_id, leg.request_id))
            answer = script.answer_after_s
            if answer is None or answer >= request.ring_timeout_s:
                await trio.sleep(request.ring_timeout_s)
                self._end_leg(leg, LegEndCause.NO_ANSWER)
                return
            await trio.sleep(answer)
            leg.answered = True
            leg.call_id = f"call-{next(self._ids)}"
            self._by_call_id[leg.call_id] = leg
            self._note("answered", request.to, request.leg_id)
            decision = await self._send(
                LegAnswered(request.tracking_guid, request.leg_id, leg.call_id, leg.request_id)
            )
            await self._follow(leg, script, decision)

    async def _follow(self, leg: FakeLeg, script: AgentScript, decision: Decision | None) -> None:
        request = leg.request
        match decision:
            case Whisper(timeout_s=timeout_s):
                self._note("whisper", request.to, request.leg_id)
                hangup = script.hangup_after_s
                presses = script.press is not None and script.press_after_s < timeout_s
                press_at = script.press_after_s if presses else timeout_s
                if hangup is not None and hangup < press_at:
                    await trio.sleep(hangup)
                    self._end_leg(leg, LegEndCause.HANGUP)
                    return
                await trio.sleep(press_at)
                if not presses:  # GetDigits timed out; the document hangs up
                    self._end_leg(leg, LegEndCause.HANGUP)
                    return
                self._note(f"pressed_{script.press}", request.to, request.leg_id)
                digits = script.press or ""
                nxt = await self._send(
                    LegDigits(request.tracking_guid, request.leg_id, leg.call_id, digits)
                )
                await self._follow(leg, script, nxt)
            case Connect(room=room):
                leg.connected = True
                self._note("connected", request.to, request.leg_id)
                for lead in self.leads.values():
                    if lead.tracking_guid == room:
                        lead.room_leg = leg
                await trio.sleep(script.talk_s)
                self._end_leg(leg, LegEndCause.HANGUP)
            case Release() | None:
                self._note("released", request.to, request.leg_id)
                self._end_leg(leg, LegEndCause.HANGUP)
