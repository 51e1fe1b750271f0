"""The referee: one call's routing state, changed only by the call's dispatcher task.

Every carrier event of a call passes through :meth:`Referee.handle` in arrival order, and
``handle`` is synchronous: no other task can run between reading the state and changing it.
That is what makes "the first accept wins" atomic — two agents pressing 1 in the same instant
are two events in the mailbox; the first one handled wins, the second is told the call was
taken — and it is why no decision here does I/O. Carrier work the referee wants done (end a
stray leg) is queued for the dispatcher to perform (:meth:`Referee.take_strays`).

Peers get this wrong in known ways (mod_callcenter's "zombie" legs still ringing after the call
was taken, Asterisk ringall's double accept); the rules here answer each of them:

- a leg that answers after the winner was chosen, or after its tier or the call was given up, is
  told "taken" and hung up (:data:`TAKEN_TEXT` then hang-up), never bridged;
- a leg's answer and its key press are each decided once: a carrier retry of the same request
  (its first copy timed out on the read) gets the decision the first copy got — the winner is
  told to join the room again, never "taken";
- a leg we no longer know that rings or answers (its actor already ended it, or the call is
  over) is ended again at the carrier;
- winning decides the tier, which then ends every other leg at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import structlog
import trio

from actors.context import CallContext
from actors.leg import Leg, LegPhase, TierRace, leg_ended
from orchestrator.ivr import IvrChoice, IvrMenu, choose
from orchestrator.messages import (
    TAKEN_TEXT,
    CarrierEvent,
    Connect,
    Decision,
    Forward,
    IvrAnswered,
    JoinRoom,
    LeadHungUp,
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
from orchestrator.model import LegResult
from orchestrator.records import LegUpdated

_END_RESULTS = {
    LegEndCause.BUSY: LegResult.BUSY,
    LegEndCause.NO_ANSWER: LegResult.NO_ANSWER,
    LegEndCause.FAILED: LegResult.FAILED,
    LegEndCause.CANCELLED: LegResult.CANCELLED,
}
ACCEPT_DIGIT = "1"
DECLINE_TEXT = "Thank you. Goodbye."


def whisper_text(plantype: str, lead_phone: str) -> str:
    """What an agent hears on answering: who is calling, and how to accept."""
    spoken = " ".join(lead_phone)
    return f"Incoming {plantype} call from {spoken}. Press 1 to accept, any other key to decline."


@dataclass(frozen=True, slots=True)
class Stray:
    """A leg to end at the carrier because nobody owns it any more."""

    request_id: str = ""
    call_id: str = ""


class Referee:
    """Routing state of one call. See the module docstring for the rules."""

    __slots__ = (  # thousands live at once: no per-instance dict
        "_ivr_answered",
        "_on_lead_gone",
        "_recording_ready",
        "_strays",
        "_voicemail_ready",
        "_winner_gone",
        "ctx",
        "ivr_choice",
        "ivr_decision",
        "ivr_menu",
        "lead_gone",
        "legs",
        "race",
        "recording_url",
        "voicemail",
        "winner",
        "won_at",
    )

    def __init__(
        self, ctx: CallContext, on_lead_gone: Callable[[], None]
    ) -> None:
        self.ctx = ctx
        self._on_lead_gone = on_lead_gone
        self.legs: dict[str, Leg] = {}
        self.race: TierRace | None = None
        self.winner: Leg | None = None
        self.won_at: float | None = None  # trio clock
        self.lead_gone = trio.Event()
        self._winner_gone: trio.Event | None = None
        self._recording_ready: trio.Event | None = None
        self._voicemail_ready: trio.Event | None = None
        self._ivr_answered: trio.Event | None = None
        self.recording_url = ""
        self.voicemail: VoicemailRecorded | None = None
        self.ivr_menu: IvrMenu | None = None  # set by the supervisor while it asks
        self.ivr_choice: IvrChoice | None = None
        self.ivr_decision: Decision | None = None
        self._strays: list[Stray] | None = None  # rare: made on first use

    # Events a call may never need are made on first use: a live call holds thousands of
    # siblings, and each trio.Event costs a few hundred bytes.

    @property
    def winner_gone(self) -> trio.Event:
        """The connected agent's leg has ended."""
        return self._lazy_event("_winner_gone")

    @property
    def recording_ready(self) -> trio.Event:
        return self._lazy_event("_recording_ready")

    @property
    def voicemail_ready(self) -> trio.Event:
        return self._lazy_event("_voicemail_ready")

    @property
    def ivr_answered(self) -> trio.Event:
        return self._lazy_event("_ivr_answered")

    def _lazy_event(self, attribute: str) -> trio.Event:
        event: trio.Event | None = getattr(self, attribute)
        if event is None:
            event = trio.Event()
            setattr(self, attribute, event)
        return event

    # --- the tier runner's side ------------------------------------------------------------

    def open_race(self, number: int) -> TierRace:
        self.race = TierRace(number)
        return self.race

    def add_leg(self, leg: Leg) -> None:
        assert self.race is not None
        self.race.legs.append(leg)
        self.legs[leg.leg_id] = leg

    def close_race(self) -> None:
        self.race = None

    # --- the dispatcher's side -------------------------------------------------------------

    def handle(self, event: CarrierEvent) -> Decision | None:
        """Apply one carrier event; return the answer the carrier needs, if any."""
        leg_id = getattr(event, "leg_id", "")
        leg = self.legs.get(leg_id) if leg_id else None
        if leg is None:
            return self._handle(event)
        with structlog.contextvars.bound_contextvars(
            leg_id=leg.leg_id, agent_id=leg.agent.agent_id, tier=leg.tier
        ):
            return self._handle(event)

    def _handle(self, event: CarrierEvent) -> Decision | None:
        match event:
            case LegRinging():
                self._ringing(event)
            case LegAnswered():
                return self._answered(event)
            case LegDigits():
                return self._digits(event)
            case LegEnded():
                self._ended(event)
            case LeadHungUp():
                self._lead_hung_up()
            case IvrAnswered():
                return self.ivr(event.digits)
            case RecordingReady():
                self.recording_url = event.url
                self.recording_ready.set()
                self.ctx.event("call.recording_ready", url=event.url)
            case VoicemailRecorded():
                if self.voicemail is None:
                    self.voicemail = event
                    self.voicemail_ready.set()
                    self.ctx.event("call.voicemail_recorded", url=event.url,
                                   duration_s=event.duration_s)
        return None

    def ivr(self, digits: str) -> Decision:
        """The lead answered the IVR question. Idempotent: a carrier retry gets the same
        answer as the first request."""
        if self.ivr_decision is not None:
            return self.ivr_decision
        menu = self.ivr_menu
        call = self.ctx.call
        if menu is None:
            return JoinRoom()  # not asking (any more): the lead waits for an agent
        choice = choose(menu, digits, call.plantype)
        decision: Decision = (
            Forward(choice.redirect_to, caller_id=call.dialled_number)
            if choice.redirect_to else JoinRoom()
        )
        self.ivr_choice, self.ivr_decision = choice, decision
        self.ctx.event("ivr.answered", key=choice.key, plantype=choice.plantype,
                       redirect_to=choice.redirect_to or None)
        self.ivr_answered.set()
        return decision

    def take_strays(self) -> list[Stray]:
        """The legs to end at the carrier since the last call (the dispatcher ends them)."""
        strays, self._strays = self._strays, None
        return strays or []

    def released(self, event: LegAnswered | LegDigits) -> None:
        """The carrier released this leg because our answer came too late."""
        leg = self.legs.get(event.leg_id)
        if leg is not None and isinstance(event, LegAnswered) and leg.answer_reply is None:
            leg.answer_reply = Release()
        elif leg is not None and isinstance(event, LegDigits) and leg.digits_reply is None:
            leg.digits_reply = Release()
        if leg is not None and not leg.won:
            with structlog.contextvars.bound_contextvars(
                leg_id=leg.leg_id, agent_id=leg.agent.agent_id, tier=leg.tier
            ):
                leg.settle(LegResult.CANCELLED)
                self.ctx.event("leg.reply_too_late", level="warning")

    def _live_leg(self, leg_id: str) -> Leg | None:
        """The leg if it still belongs to the race now ringing and may still win."""
        leg = self.legs.get(leg_id)
        race = self.race
        if leg is None or leg.settled or race is None or leg not in race.legs:
            return None
        if race.winner is not None or race.closing or self.lead_gone.is_set():
            return None
        return leg

    def _ringing(self, event: LegRinging) -> None:
        leg = self.legs.get(event.leg_id)
        if leg is None or leg.over:
            self._stray(event.request_id, event.call_id, why="rang after it was ended")
            return
        leg.call_id = event.call_id or leg.call_id
        if leg.phase is LegPhase.DIALLING:
            leg.phase = LegPhase.RINGING
            self.ctx.event("leg.ringing", level="debug")

    def _answered(self, event: LegAnswered) -> Decision:
        leg = self.legs.get(event.leg_id)
        if leg is None:
            return self._answered_once(event, None)
        if leg.answer_reply is None:
            leg.answer_reply = self._answered_once(event, leg)
        else:
            self.ctx.event("leg.answer_repeated", level="debug")
        return leg.answer_reply

    def _answered_once(self, event: LegAnswered, leg: Leg | None) -> Decision:
        if leg is not None:
            leg.call_id = event.call_id or leg.call_id
        live = self._live_leg(event.leg_id)
        if live is None:
            if leg is not None and not leg.won:
                leg.settle(LegResult.TAKEN)
            elif leg is None:
                self._stray("", event.call_id, why="answered for an unknown leg")
            self.ctx.event("leg.answered_late", leg_id=event.leg_id, call_id=event.call_id)
            return Release(TAKEN_TEXT)
        live.answered_at = trio.current_time()
        self.ctx.event("leg.answered", press1=live.agent.press1)
        self.ctx.note(LegUpdated(self.ctx.call.tracking_guid, live.leg_id, self.ctx.now(),
                                 carrier_call_id=live.call_id or None,
                                 answered_at=self.ctx.now()))
        if not live.agent.press1:
            return self._win(live)
        live.phase = LegPhase.WHISPERING
        call = self.ctx.call  # the plantype may have been chosen in the IVR
        return Whisper(whisper_text(call.plantype, call.lead_phone),
                       self.ctx.routing.accept_timeout_s)

    def _digits(self, event: LegDigits) -> Decision:
        leg = self.legs.get(event.leg_id)
        if leg is None:
            return self._digits_once(event)
        if leg.digits_reply is None:
            leg.digits_reply = self._digits_once(event)
        else:
            self.ctx.event("leg.digits_repeated", digits=event.digits, level="debug")
        return leg.digits_reply

    def _digits_once(self, event: LegDigits) -> Decision:
        live = self._live_leg(event.leg_id)
        if live is None or live.phase is not LegPhase.WHISPERING:
            leg = self.legs.get(event.leg_id)
            if leg is not None and not leg.won:
                leg.settle(LegResult.TAKEN)
            self.ctx.event("leg.accepted_late", leg_id=event.leg_id, digits=event.digits)
            return Release(TAKEN_TEXT)
        if event.digits[:1] == ACCEPT_DIGIT:
            return self._win(live)
        result = LegResult.DECLINED if event.digits else LegResult.NO_INPUT
        live.settle(result)
        self.ctx.event("leg.declined", digits=event.digits, result=result.value)
        return Release(DECLINE_TEXT)

    def _win(self, leg: Leg) -> Connect:
        race = self.race
        assert race is not None
        assert race.winner is None
        race.winner = self.winner = leg
        self.won_at = trio.current_time()
        leg.won = True
        leg.result = LegResult.ACCEPTED
        leg.phase = LegPhase.CONNECTED
        self.ctx.event("leg.accepted")
        self.ctx.note(LegUpdated(self.ctx.call.tracking_guid, leg.leg_id, self.ctx.now(),
                                 carrier_call_id=leg.call_id or None,
                                 result=LegResult.ACCEPTED))
        race.review()  # decided: the tier ends every other leg now
        return Connect(room=self.ctx.call.tracking_guid)

    def _ended(self, event: LegEnded) -> None:
        leg = self.legs.get(event.leg_id)
        if leg is None:
            return
        leg.call_id = event.call_id or leg.call_id
        if leg.won:
            if not self.winner_gone.is_set():
                self.ctx.event("leg.ended", result=LegResult.ACCEPTED.value,
                               duration_s=event.duration_s)
                self.ctx.note(LegUpdated(self.ctx.call.tracking_guid, leg.leg_id,
                                         self.ctx.now(), ended_at=self.ctx.now()))
                self.winner_gone.set()
            return
        if leg.over:
            return
        if leg.result is None:
            if event.cause is LegEndCause.HANGUP:
                leg.result = self._hangup_result(leg)
            else:
                leg.result = _END_RESULTS[event.cause]
        leg.mark_over(leg.result)
        leg_ended(leg, self.ctx)
        if self.race is not None and leg in self.race.legs:
            self.race.review()

    def _hangup_result(self, leg: Leg) -> LegResult:
        """An answered, unsettled leg hung up: silence past the accept window, or the agent left."""
        if leg.answered_at is None:
            return LegResult.NO_ANSWER
        waited = trio.current_time() - leg.answered_at
        if waited >= self.ctx.routing.accept_timeout_s:
            return LegResult.NO_INPUT
        return LegResult.AGENT_HUNG_UP

    def _lead_hung_up(self) -> None:
        if not self.lead_gone.is_set():
            self.lead_gone.set()
            self.ctx.event("call.lead_hung_up")
            self._on_lead_gone()

    def _stray(self, request_id: str, call_id: str, *, why: str) -> None:
        if request_id or call_id:
            if self._strays is None:
                self._strays = []
            self._strays.append(Stray(request_id, call_id))
            self.ctx.event("leg.stray_ended", request_id=request_id, call_id=call_id, why=why,
                           level="warning")
