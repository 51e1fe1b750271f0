"""The referee: one call's routing decisions, as a state machine without trio and without I/O.

Every carrier event of a call passes through :meth:`Referee.handle` in arrival order —
``handle(event, now)`` returns the decision the carrier needs (if any) and the *effects* to
carry out: log lines for the call's event log (:class:`Log`), store records (:class:`Note`),
legs to end at the carrier (:class:`EndStray`) and :class:`Signal`\\ s for the tasks waiting
on the call (the tier decided, the lead gone, the recording ready...). The call's supervisor
owns the clock and the events: it calls the referee from its single dispatcher task (and from
the tier runner), synchronously, and performs the effects. So no other task can run between
reading the state and changing it — that is what makes "the first accept wins" atomic: two
agents pressing 1 in the same instant are two events in the mailbox; the first one handled
wins, the second is told the call was taken.

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

Tested as plain synchronous functions, table by table (``tests/actors/test_referee.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from actors.race import Leg, LegPhase, TierRace
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
from orchestrator.model import InboundCall, LegResult
from orchestrator.records import LegUpdated, Record

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


# --- time and effects ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Now:
    """The instant an event is handled: ``mono`` for durations (the trio clock), ``wall``
    (epoch seconds) for what is stored."""

    mono: float
    wall: float


@dataclass(frozen=True, slots=True)
class Log:
    """Log ``name`` (and keep it in the call's event log), in ``leg``'s context if given."""

    name: str
    data: Mapping[str, object] = field(default_factory=dict)
    level: str = "info"
    leg: Leg | None = None


@dataclass(frozen=True, slots=True)
class Note:
    """Journal ``record`` for the store."""

    record: Record


@dataclass(frozen=True, slots=True)
class EndStray:
    """End at the carrier a leg that nobody owns any more."""

    request_id: str = ""
    call_id: str = ""


class Signal(StrEnum):
    """Something the call's tasks wait for has happened."""

    TIER_DECIDED = "tier_decided"  # the race needs nothing more from the carrier
    LEAD_GONE = "lead_gone"
    WINNER_GONE = "winner_gone"  # the connected agent's leg ended
    RECORDING_READY = "recording_ready"
    VOICEMAIL_READY = "voicemail_ready"
    IVR_ANSWERED = "ivr_answered"


Effect = Log | Note | EndStray | Signal


@dataclass(slots=True)
class Handled:
    """What handling one event produced: the carrier's answer, and the effects to carry out."""

    decision: Decision | None = None
    effects: list[Effect] = field(default_factory=list)


# --- the referee -----------------------------------------------------------------------------


class Referee:
    """Routing state of one call. See the module docstring for the rules.

    Args:
        call: the call (its TrackingGUID, lead phone and plantype appear in decisions).
        accept_timeout_s: the press-1 window (``routing.accept_timeout_s``).
    """

    __slots__ = (  # thousands live at once: no per-instance dict
        "_decided_told",
        "accept_timeout_s",
        "call",
        "ivr_choice",
        "ivr_decision",
        "ivr_menu",
        "lead_gone",
        "legs",
        "race",
        "recording_url",
        "voicemail",
        "winner",
        "winner_gone",
        "won_at",
    )

    def __init__(self, call: InboundCall, *, accept_timeout_s: float) -> None:
        self.call = call
        self.accept_timeout_s = accept_timeout_s
        self.legs: dict[str, Leg] = {}
        self.race: TierRace | None = None
        self._decided_told = False
        self.winner: Leg | None = None
        self.won_at: float | None = None  # mono
        self.lead_gone = False
        self.winner_gone = False
        self.recording_url = ""
        self.voicemail: VoicemailRecorded | None = None
        self.ivr_menu: IvrMenu | None = None  # set by the supervisor while it asks
        self.ivr_choice: IvrChoice | None = None
        self.ivr_decision: Decision | None = None

    @property
    def _guid(self) -> str:
        return self.call.tracking_guid

    # --- the tier runner's side ----------------------------------------------------------------

    def open_race(self, number: int) -> TierRace:
        self.race = TierRace(number)
        self._decided_told = False
        return self.race

    def add_leg(self, leg: Leg) -> None:
        assert self.race is not None
        self.race.legs.append(leg)
        self.legs[leg.leg_id] = leg

    def all_started(self) -> list[Effect]:
        """Every leg of the race has been placed (or refused)."""
        assert self.race is not None
        self.race.all_started = True
        return self._review()

    def leg_not_placed(self, leg: Leg, result: LegResult, now: Now) -> list[Effect]:
        """The carrier refused the leg (``FAILED``), or the tier closed before it was sent
        (``CANCELLED``)."""
        leg.mark_over(result)
        return [*self._leg_ended(leg, now), *self._review()]

    def leg_ended_by_us(self, leg: Leg, now: Now) -> list[Effect]:
        """We ended the leg at the carrier (it may have told us first: then nothing)."""
        if leg.over:
            return []
        leg.mark_over(leg.result or LegResult.CANCELLED)
        return [*self._leg_ended(leg, now), *self._review()]

    def tier_timed_out(self, now: Now) -> list[Effect]:
        """The tier waited past ring + accept for the carrier: its live legs are given up."""
        assert self.race is not None
        for leg in self.race.legs:
            if not leg.over:
                leg.settle(
                    LegResult.NO_INPUT if leg.answered_at is not None else LegResult.NO_ANSWER
                )
        return []

    def close_race(self) -> None:
        self.race = None

    def lead_ended(self) -> list[Effect]:
        """The lead's side is being ended by us (an operator's hang-up): nothing may win now."""
        if self.lead_gone:
            return []
        self.lead_gone = True
        return [Signal.LEAD_GONE]

    # --- the dispatcher's side ------------------------------------------------------------------

    def handle(self, event: CarrierEvent, now: Now) -> Handled:
        """Apply one carrier event; return the carrier's answer, if any, and the effects."""
        out = Handled()
        match event:
            case LegRinging():
                self._ringing(event, out)
            case LegAnswered():
                out.decision = self._answered(event, now, out)
            case LegDigits():
                out.decision = self._digits(event, now, out)
            case LegEnded():
                self._ended(event, now, out)
            case LeadHungUp():
                self._lead_hung_up(out)
            case IvrAnswered():
                out.decision = self.ivr(event.digits, out)
            case RecordingReady():
                self.recording_url = event.url
                out.effects += [
                    Signal.RECORDING_READY,
                    Log("call.recording_ready", {"url": event.url}),
                ]
            case VoicemailRecorded():
                if self.voicemail is None:
                    self.voicemail = event
                    out.effects += [
                        Signal.VOICEMAIL_READY,
                        Log(
                            "call.voicemail_recorded",
                            {"url": event.url, "duration_s": event.duration_s},
                        ),
                    ]
        return out

    def ivr(self, digits: str, out: Handled | None = None) -> Decision:
        """The lead answered the IVR question. Idempotent: a carrier retry gets the same
        answer as the first request."""
        if self.ivr_decision is not None:
            return self.ivr_decision
        menu = self.ivr_menu
        if menu is None:
            return JoinRoom()  # not asking (any more): the lead waits for an agent
        choice = choose(menu, digits, self.call.plantype)
        decision: Decision = (
            Forward(choice.redirect_to, caller_id=self.call.dialled_number)
            if choice.redirect_to
            else JoinRoom()
        )
        self.ivr_choice, self.ivr_decision = choice, decision
        if out is not None:
            out.effects += [
                Log(
                    "ivr.answered",
                    {
                        "key": choice.key,
                        "plantype": choice.plantype,
                        "redirect_to": choice.redirect_to or None,
                    },
                ),
                Signal.IVR_ANSWERED,
            ]
        return decision

    def released(self, event: LegAnswered | LegDigits) -> list[Effect]:
        """The carrier released this leg because our answer came too late."""
        leg = self.legs.get(event.leg_id)
        if leg is None:
            return []
        if isinstance(event, LegAnswered) and leg.answer_reply is None:
            leg.answer_reply = Release()
        elif isinstance(event, LegDigits) and leg.digits_reply is None:
            leg.digits_reply = Release()
        if leg.won:
            return []
        leg.settle(LegResult.CANCELLED)
        return [Log("leg.reply_too_late", level="warning", leg=leg)]

    # --- events ---------------------------------------------------------------------------------

    def _live_leg(self, leg_id: str) -> Leg | None:
        """The leg if it still belongs to the race now ringing and may still win."""
        leg = self.legs.get(leg_id)
        race = self.race
        if leg is None or leg.settled or race is None or leg not in race.legs:
            return None
        if race.winner is not None or race.closing or self.lead_gone:
            return None
        return leg

    def _ringing(self, event: LegRinging, out: Handled) -> None:
        leg = self.legs.get(event.leg_id)
        if leg is None or leg.over:
            self._stray(event.request_id, event.call_id, "rang after it was ended", out, leg)
            return
        leg.call_id = event.call_id or leg.call_id
        if leg.phase is LegPhase.DIALLING:
            leg.phase = LegPhase.RINGING
            out.effects.append(Log("leg.ringing", level="debug", leg=leg))

    def _answered(self, event: LegAnswered, now: Now, out: Handled) -> Decision:
        leg = self.legs.get(event.leg_id)
        if leg is None:
            return self._answered_once(event, None, now, out)
        if leg.answer_reply is None:
            leg.answer_reply = self._answered_once(event, leg, now, out)
        else:
            out.effects.append(Log("leg.answer_repeated", level="debug", leg=leg))
        return leg.answer_reply

    def _answered_once(
        self, event: LegAnswered, leg: Leg | None, now: Now, out: Handled
    ) -> Decision:
        if leg is not None:
            leg.call_id = event.call_id or leg.call_id
        live = self._live_leg(event.leg_id)
        if live is None:
            if leg is not None and not leg.won:
                leg.settle(LegResult.TAKEN)
            elif leg is None:
                self._stray("", event.call_id, "answered for an unknown leg", out, None)
            out.effects.append(
                Log(
                    "leg.answered_late", {"leg_id": event.leg_id, "call_id": event.call_id}, leg=leg
                )
            )
            return Release(TAKEN_TEXT)
        live.answered_at = now.mono
        out.effects += [
            Log("leg.answered", {"press1": live.agent.press1}, leg=live),
            Note(
                LegUpdated(
                    self._guid,
                    live.leg_id,
                    now.wall,
                    carrier_call_id=live.call_id or None,
                    answered_at=now.wall,
                )
            ),
        ]
        if not live.agent.press1:
            return self._win(live, now, out)
        live.phase = LegPhase.WHISPERING
        # the plantype may have been chosen in the IVR
        return Whisper(
            whisper_text(self.call.plantype, self.call.lead_phone), self.accept_timeout_s
        )

    def _digits(self, event: LegDigits, now: Now, out: Handled) -> Decision:
        leg = self.legs.get(event.leg_id)
        if leg is None:
            return self._digits_once(event, now, out)
        if leg.digits_reply is None:
            leg.digits_reply = self._digits_once(event, now, out)
        else:
            out.effects.append(
                Log("leg.digits_repeated", {"digits": event.digits}, level="debug", leg=leg)
            )
        return leg.digits_reply

    def _digits_once(self, event: LegDigits, now: Now, out: Handled) -> Decision:
        live = self._live_leg(event.leg_id)
        if live is None or live.phase is not LegPhase.WHISPERING:
            leg = self.legs.get(event.leg_id)
            if leg is not None and not leg.won:
                leg.settle(LegResult.TAKEN)
            out.effects.append(
                Log("leg.accepted_late", {"leg_id": event.leg_id, "digits": event.digits}, leg=leg)
            )
            return Release(TAKEN_TEXT)
        if event.digits[:1] == ACCEPT_DIGIT:
            return self._win(live, now, out)
        result = LegResult.DECLINED if event.digits else LegResult.NO_INPUT
        live.settle(result)
        out.effects.append(
            Log("leg.declined", {"digits": event.digits, "result": result.value}, leg=live)
        )
        return Release(DECLINE_TEXT)

    def _win(self, leg: Leg, now: Now, out: Handled) -> Connect:
        race = self.race
        assert race is not None
        assert race.winner is None
        race.winner = self.winner = leg
        self.won_at = now.mono
        leg.won = True
        leg.result = LegResult.ACCEPTED
        leg.phase = LegPhase.CONNECTED
        out.effects += [
            Log("leg.accepted", leg=leg),
            Note(
                LegUpdated(
                    self._guid,
                    leg.leg_id,
                    now.wall,
                    carrier_call_id=leg.call_id or None,
                    result=LegResult.ACCEPTED,
                )
            ),
            *self._review(),  # decided: the tier ends every other leg now
        ]
        return Connect(room=self._guid)

    def _ended(self, event: LegEnded, now: Now, out: Handled) -> None:
        leg = self.legs.get(event.leg_id)
        if leg is None:
            return
        leg.call_id = event.call_id or leg.call_id
        if leg.won:
            if not self.winner_gone:
                self.winner_gone = True
                out.effects += [
                    Log(
                        "leg.ended",
                        {"result": LegResult.ACCEPTED.value, "duration_s": event.duration_s},
                        leg=leg,
                    ),
                    Note(LegUpdated(self._guid, leg.leg_id, now.wall, ended_at=now.wall)),
                    Signal.WINNER_GONE,
                ]
            return
        if leg.over:
            return
        if leg.result is None:
            if event.cause is LegEndCause.HANGUP:
                leg.result = self._hangup_result(leg, now)
            else:
                leg.result = _END_RESULTS[event.cause]
        leg.mark_over(leg.result)
        out.effects += self._leg_ended(leg, now)
        if self.race is not None and leg in self.race.legs:
            out.effects += self._review()

    def _hangup_result(self, leg: Leg, now: Now) -> LegResult:
        """An answered, unsettled leg hung up: silence past the accept window, or the agent left."""
        if leg.answered_at is None:
            return LegResult.NO_ANSWER
        if now.mono - leg.answered_at >= self.accept_timeout_s:
            return LegResult.NO_INPUT
        return LegResult.AGENT_HUNG_UP

    def _lead_hung_up(self, out: Handled) -> None:
        if not self.lead_gone:
            self.lead_gone = True
            out.effects += [Log("call.lead_hung_up"), Signal.LEAD_GONE]

    def _stray(
        self, request_id: str, call_id: str, why: str, out: Handled, leg: Leg | None
    ) -> None:
        if request_id or call_id:
            out.effects += [
                EndStray(request_id, call_id),
                Log(
                    "leg.stray_ended",
                    {"request_id": request_id, "call_id": call_id, "why": why},
                    level="warning",
                    leg=leg,
                ),
            ]

    # --- shared ---------------------------------------------------------------------------------

    def _leg_ended(self, leg: Leg, now: Now) -> list[Effect]:
        """How ``leg`` ended: one log line and one store update."""
        result = leg.result or LegResult.CANCELLED
        return [
            Log(
                "leg.ended",
                {"result": result.value, "duration_s": round(now.mono - leg.started_at, 3)},
                leg=leg,
            ),
            Note(
                LegUpdated(
                    self._guid,
                    leg.leg_id,
                    now.wall,
                    carrier_call_id=leg.call_id or None,
                    ended_at=now.wall,
                    result=result,
                )
            ),
        ]

    def _review(self) -> list[Effect]:
        race = self.race
        if race is None or self._decided_told or not race.decided:
            return []
        self._decided_told = True
        return [Signal.TIER_DECIDED]
