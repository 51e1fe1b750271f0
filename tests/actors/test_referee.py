"""The referee as a pure state machine: events and times in, decisions and effects out.

Synchronous and table-driven, like trio's tests of its pure helpers: no trio run, no clock but
the ``Now`` each step passes in. A ``Script`` is a list of steps ``(at, event)``; the tests read
what the referee answered and which effects it asked for.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from actors.race import Leg, LegPhase
from actors.referee import (
    DECLINE_TEXT,
    EndStray,
    Handled,
    Log,
    Note,
    Now,
    Referee,
    Signal,
)
from orchestrator.ivr import IvrMenu
from orchestrator.messages import (
    TAKEN_TEXT,
    CarrierEvent,
    Connect,
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
from orchestrator.model import InboundCall, LegResult, PlanAgent
from orchestrator.records import LegUpdated

GUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
CALL = InboundCall(GUID, "lead-1", "acme", "9495550000", "8005550100", "Purchase")
ACCEPT_S = 8.0


def at(t: float) -> Now:
    return Now(mono=t, wall=1_000_000.0 + t)


def referee_with(*agents: PlanAgent) -> tuple[Referee, list[Leg]]:
    """A referee with one race of ``agents`` (legs ``l1``, ``l2`` ...), all placed at 0."""
    referee = Referee(CALL, accept_timeout_s=ACCEPT_S)
    referee.open_race(1)
    legs = []
    for i, agent in enumerate(agents, start=1):
        leg = Leg(f"l{i}", agent, tier=1, request_id=f"r{i}")
        referee.add_leg(leg)
        legs.append(leg)
    referee.all_started()
    return referee, legs


def agent(agent_id: int, *, press1: bool = True) -> PlanAgent:
    return PlanAgent(agent_id, f"88855500{agent_id:02d}", 1, agent_id, press1=press1)


def answered(leg: str) -> LegAnswered:
    return LegAnswered(GUID, leg, call_id=f"c-{leg}")


def pressed(leg: str, digits: str) -> LegDigits:
    return LegDigits(GUID, leg, call_id=f"c-{leg}", digits=digits)


def ended(leg: str, cause: LegEndCause = LegEndCause.HANGUP) -> LegEnded:
    return LegEnded(GUID, leg, cause, call_id=f"c-{leg}")


def run(referee: Referee, steps: Sequence[tuple[float, CarrierEvent]]) -> list[Handled]:
    return [referee.handle(event, at(t)) for t, event in steps]


def logged(handled: Handled) -> list[str]:
    return [e.name for e in handled.effects if isinstance(e, Log)]


def signals(handled: Handled) -> list[Signal]:
    return [e for e in handled.effects if isinstance(e, Signal)]


class TestTheRace:
    def test_the_first_press_wins_and_the_second_is_told_taken(self) -> None:
        referee, (one, two) = referee_with(agent(1), agent(2))
        out = run(
            referee,
            [
                (1.0, answered("l1")),
                (1.1, answered("l2")),
                (3.0, pressed("l1", "1")),
                (3.0, pressed("l2", "1")),
            ],
        )
        assert isinstance(out[0].decision, Whisper)
        assert "Press 1 to accept" in out[0].decision.text
        assert out[0].decision.timeout_s == ACCEPT_S
        assert out[2].decision == Connect(room=GUID)
        assert out[3].decision == Release(TAKEN_TEXT)
        assert signals(out[2]) == [Signal.TIER_DECIDED]
        assert referee.winner is one
        assert (referee.won_at, one.phase, one.result) == (
            3.0,
            LegPhase.CONNECTED,
            LegResult.ACCEPTED,
        )
        assert two.result is LegResult.TAKEN
        accepted = [e.record for e in out[2].effects if isinstance(e, Note)]
        assert accepted == [
            LegUpdated(GUID, "l1", at(3.0).wall, carrier_call_id="c-l1", result=LegResult.ACCEPTED)
        ]

    def test_with_override_answering_is_accepting(self) -> None:
        referee, (one,) = referee_with(agent(1, press1=False))
        (out,) = run(referee, [(2.0, answered("l1"))])
        assert out.decision == Connect(room=GUID)
        assert logged(out) == ["leg.answered", "leg.accepted"]
        assert referee.winner is one

    @pytest.mark.parametrize(
        ("digits", "result"),
        [("2", LegResult.DECLINED), ("#", LegResult.DECLINED), ("", LegResult.NO_INPUT)],
    )
    def test_any_other_key_or_silence_declines(self, digits: str, result: LegResult) -> None:
        referee, (one,) = referee_with(agent(1))
        out = run(referee, [(1.0, answered("l1")), (4.0, pressed("l1", digits))])
        assert out[1].decision == Release(DECLINE_TEXT)
        assert one.result is result
        assert referee.winner is None
        assert signals(out[1]) == []  # still ringing out: the leg has not ended

    @pytest.mark.parametrize(
        ("steps", "result"),
        [
            ([(1.0, answered("l1")), (3.0, ended("l1"))], LegResult.AGENT_HUNG_UP),
            ([(1.0, answered("l1")), (9.0, ended("l1"))], LegResult.NO_INPUT),
            ([(20.0, ended("l1", LegEndCause.NO_ANSWER))], LegResult.NO_ANSWER),
            ([(0.5, ended("l1", LegEndCause.BUSY))], LegResult.BUSY),
            ([(0.5, ended("l1", LegEndCause.FAILED))], LegResult.FAILED),
            ([(2.0, ended("l1", LegEndCause.CANCELLED))], LegResult.CANCELLED),
            ([(5.0, ended("l1"))], LegResult.NO_ANSWER),  # hung up, never answered
        ],
    )
    def test_how_a_leg_ended(
        self, steps: list[tuple[float, CarrierEvent]], result: LegResult
    ) -> None:
        referee, (one,) = referee_with(agent(1))
        out = run(referee, steps)
        assert one.result is result
        assert one.over
        assert logged(out[-1]) == ["leg.ended"]
        assert signals(out[-1]) == [Signal.TIER_DECIDED]  # its only leg is over

    def test_a_tier_is_decided_only_when_all_started_and_all_over(self) -> None:
        referee = Referee(CALL, accept_timeout_s=ACCEPT_S)
        race = referee.open_race(3)
        first = Leg("l1", agent(1), tier=3, request_id="r1")
        referee.add_leg(first)
        out = referee.handle(ended("l1", LegEndCause.BUSY), at(0.5))
        assert signals(out) == []  # the tier is still placing legs
        referee.add_leg(Leg("l2", agent(2), tier=3, request_id="r2"))
        assert referee.all_started() == []
        out = referee.handle(ended("l2", LegEndCause.NO_ANSWER), at(20.0))
        assert signals(out) == [Signal.TIER_DECIDED]
        assert race.decided

    def test_nothing_wins_once_the_lead_is_gone(self) -> None:
        referee, (_one,) = referee_with(agent(1))
        out = run(
            referee,
            [
                (1.0, answered("l1")),
                (2.0, LeadHungUp(GUID, "lead-1")),
                (2.5, LeadHungUp(GUID, "lead-1")),
                (3.0, pressed("l1", "1")),
            ],
        )
        assert signals(out[1]) == [Signal.LEAD_GONE]
        assert logged(out[1]) == ["call.lead_hung_up"]
        assert out[2].effects == []  # once
        assert out[3].decision == Release(TAKEN_TEXT)
        assert referee.winner is None

    def test_a_tier_that_timed_out_gives_its_legs_up(self) -> None:
        referee, (one, two) = referee_with(agent(1), agent(2))
        referee.handle(answered("l1"), at(1.0))
        referee.tier_timed_out(at(40.0))
        assert (one.result, two.result) == (LegResult.NO_INPUT, LegResult.NO_ANSWER)
        assert one.phase is LegPhase.ENDING  # the tier still ends them at the carrier


class TestStrays:
    def test_a_leg_we_do_not_know_that_rings_or_answers_is_ended(self) -> None:
        referee, _ = referee_with(agent(1))
        rang = referee.handle(LegRinging(GUID, "zz", request_id="r-zz"), at(1.0))
        answer = referee.handle(LegAnswered(GUID, "zz", call_id="c-zz"), at(2.0))
        assert EndStray(request_id="r-zz") in rang.effects
        assert answer.decision == Release(TAKEN_TEXT)
        assert EndStray(call_id="c-zz") in answer.effects

    def test_a_leg_ringing_after_it_ended_is_ended_again(self) -> None:
        referee, _ = referee_with(agent(1))
        referee.handle(ended("l1", LegEndCause.CANCELLED), at(1.0))
        out = referee.handle(LegRinging(GUID, "l1", request_id="r1", call_id="c-l1"), at(1.5))
        assert EndStray("r1", "c-l1") in out.effects
        assert "leg.stray_ended" in logged(out)


class TestRepeatedRequests:
    """A carrier retry of a request already decided gets the same decision."""

    def test_the_winners_repeated_press_joins_the_room_again(self) -> None:
        referee, _ = referee_with(agent(1))
        out = run(
            referee,
            [
                (1.0, answered("l1")),
                (2.0, pressed("l1", "1")),
                (7.0, pressed("l1", "1")),
                (8.0, answered("l1")),
            ],
        )
        assert out[2].decision == out[1].decision == Connect(room=GUID)
        assert isinstance(out[3].decision, Whisper)  # its answer, as first decided
        assert logged(out[2]) == ["leg.digits_repeated"]
        assert Signal.TIER_DECIDED not in signals(out[2])

    def test_a_repeated_decline_declines_again(self) -> None:
        referee, _ = referee_with(agent(1), agent(2))
        out = run(
            referee, [(1.0, answered("l1")), (2.0, pressed("l1", "2")), (3.0, pressed("l1", "2"))]
        )
        assert out[1].decision == out[2].decision == Release(DECLINE_TEXT)

    def test_an_answer_released_too_late_is_released_again(self) -> None:
        referee, (one,) = referee_with(agent(1, press1=False))
        effects = referee.released(answered("l1"))
        assert [e.name for e in effects if isinstance(e, Log)] == ["leg.reply_too_late"]
        assert one.result is LegResult.CANCELLED
        out = referee.handle(answered("l1"), at(6.0))
        assert out.decision == Release()
        assert referee.winner is None


class TestTheIvr:
    MENU = IvrMenu(
        prompt="Press 1 or 0.",
        plantypes={"1": "Refinance"},
        redirects={"0": "8005550199"},
        retries=1,
        timeout_s=5.0,
    )

    @pytest.mark.parametrize(
        ("digits", "decision", "plantype"),
        [
            ("1", JoinRoom(), "Refinance"),
            ("0", Forward("8005550199", caller_id="8005550100"), "Purchase"),
            ("7", JoinRoom(), "Purchase"),
            ("", JoinRoom(), "Purchase"),
        ],
    )
    def test_the_key_decides(self, digits: str, decision: object, plantype: str) -> None:
        referee = Referee(CALL, accept_timeout_s=ACCEPT_S)
        referee.ivr_menu = self.MENU
        out = referee.handle(IvrAnswered(GUID, "lead-1", digits), at(3.0))
        assert out.decision == decision
        assert referee.ivr_choice is not None
        assert referee.ivr_choice.plantype == plantype
        assert signals(out) == [Signal.IVR_ANSWERED]
        again = referee.handle(IvrAnswered(GUID, "lead-1", "1"), at(4.0))
        assert again.decision == decision  # the first answer stands
        assert again.effects == []

    def test_without_a_question_the_lead_waits_in_the_room(self) -> None:
        referee = Referee(CALL, accept_timeout_s=ACCEPT_S)
        out = referee.handle(IvrAnswered(GUID, "lead-1", "0"), at(1.0))
        assert (out.decision, out.effects) == (JoinRoom(), [])


class TestRecordings:
    def test_the_first_voicemail_is_kept_and_the_recording_signalled(self) -> None:
        referee = Referee(CALL, accept_timeout_s=ACCEPT_S)
        first = referee.handle(VoicemailRecorded(GUID, "https://r/1.mp3"), at(1.0))
        second = referee.handle(VoicemailRecorded(GUID, "https://r/2.mp3"), at(2.0))
        recording = referee.handle(RecordingReady(GUID, "https://r/c.mp3"), at(3.0))
        assert signals(first) == [Signal.VOICEMAIL_READY]
        assert second.effects == []
        assert referee.voicemail is not None
        assert referee.voicemail.url == "https://r/1.mp3"
        assert signals(recording) == [Signal.RECORDING_READY]
        assert referee.recording_url == "https://r/c.mp3"


class TestEndingLegsOurselves:
    def test_ended_by_us_after_the_carrier_said_so_logs_nothing_twice(self) -> None:
        referee, (one,) = referee_with(agent(1))
        out = referee.handle(ended("l1", LegEndCause.CANCELLED), at(1.0))
        assert logged(out) == ["leg.ended"]
        assert referee.leg_ended_by_us(one, at(1.2)) == []

    def test_a_refused_leg_is_over_and_may_decide_the_tier(self) -> None:
        referee = Referee(CALL, accept_timeout_s=ACCEPT_S)
        referee.open_race(1)
        leg = Leg("l1", agent(1), tier=1)
        referee.add_leg(leg)
        referee.all_started()
        effects = referee.leg_not_placed(leg, LegResult.FAILED, at(0.1))
        assert leg.result is LegResult.FAILED
        assert Signal.TIER_DECIDED in effects

    def test_the_winners_end_is_told_once(self) -> None:
        referee, (_one,) = referee_with(agent(1, press1=False))
        referee.handle(answered("l1"), at(1.0))
        first = referee.handle(ended("l1"), at(60.0))
        again = referee.handle(ended("l1"), at(60.5))
        assert signals(first) == [Signal.WINNER_GONE]
        assert again.effects == []
        assert referee.winner_gone
