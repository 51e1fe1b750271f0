"""The state of a tier race: its legs and who won. Pure data, no trio, no I/O.

Only the call's :class:`~actors.referee.Referee` changes this state (synchronously, from the
call's tasks), so every decision about a leg — and about who won — is atomic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from orchestrator.messages import Decision
from orchestrator.model import LegResult, PlanAgent


class LegPhase(StrEnum):
    DIALLING = "dialling"  # originate sent or queued
    RINGING = "ringing"
    WHISPERING = "whispering"  # answered, hearing the whisper, may press 1
    CONNECTED = "connected"  # won: bridged to the lead
    ENDING = "ending"  # its result is known; the carrier is ending it
    ENDED = "ended"


@dataclass(slots=True, eq=False)
class Leg:
    """One agent leg. Times: ``started_at``/``answered_at`` on the monotonic (trio) clock."""

    leg_id: str
    agent: PlanAgent
    tier: int
    phase: LegPhase = LegPhase.DIALLING
    request_id: str = ""
    call_id: str = ""
    result: LegResult | None = None
    won: bool = False
    ending: bool = False  # someone is ending it at the carrier now
    started_at: float = 0.0
    answered_at: float | None = None
    #: What the carrier was told when this leg answered / pressed keys: a carrier retry of
    #: the same request (its first copy timed out on the read) gets the same answer again.
    answer_reply: Decision | None = None
    digits_reply: Decision | None = None

    @property
    def over(self) -> bool:
        """The carrier has ended this leg (or never placed it)."""
        return self.phase is LegPhase.ENDED

    @property
    def settled(self) -> bool:
        """Nothing this leg does can change the call any more."""
        return self.won or self.phase in (LegPhase.ENDING, LegPhase.ENDED)

    def settle(self, result: LegResult) -> None:
        """Record how the leg ended for us (the first result wins); the carrier may still be
        ending it."""
        if self.result is None:
            self.result = result
        if self.phase is not LegPhase.ENDED:
            self.phase = LegPhase.ENDING

    def mark_over(self, result: LegResult) -> None:
        self.settle(result)
        self.phase = LegPhase.ENDED

    def log_context(self) -> dict[str, object]:
        return {"leg_id": self.leg_id, "agent_id": self.agent.agent_id, "tier": self.tier}


@dataclass(slots=True, eq=False)
class TierRace:
    """The legs of the tier now ringing, and who (if anyone) won it.

    The race is **decided** once it needs nothing more from the carrier: a leg won, or every
    leg of the tier (all started) is over. ``closing`` is set when the tier stops: a leg whose
    request id arrives after that is ended at once.
    """

    number: int
    legs: list[Leg] = field(default_factory=list)
    winner: Leg | None = None
    all_started: bool = False
    closing: bool = False

    @property
    def decided(self) -> bool:
        return self.winner is not None or (self.all_started and all(x.over for x in self.legs))
