"""Messages to a call's actors: carrier events in, decisions out. A leaf module.

Every carrier callback becomes one frozen event here (parsed at the edge by the carrier
adapter), addressed by ``tracking_guid`` (and ``leg_id`` for agent legs): those ids are in
every callback URL we generate, so routing never depends on carrier ids.

Events that need an answer from the call (an agent answered, an agent pressed keys) are
delivered with a reply slot; the actor answers with a :data:`Decision`, which the carrier
adapter renders (Plivo XML). Actors decide without I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from orchestrator.ivr import IvrMenu


class LegEndCause(StrEnum):
    """Why the carrier says an agent leg ended (normalised from carrier hangup causes)."""

    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"
    CANCELLED = "cancelled"  # cancelled by our API request
    HANGUP = "hangup"  # normal hangup after answer (either side)


# --- carrier events -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LegRinging:
    tracking_guid: str
    leg_id: str
    request_id: str = ""
    call_id: str = ""


@dataclass(frozen=True, slots=True)
class LegAnswered:
    """An agent picked up. Needs a reply: whisper, connect, or release."""

    tracking_guid: str
    leg_id: str
    call_id: str
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class LegDigits:
    """An agent pressed keys after the whisper (``digits`` empty on silence). Needs a reply."""

    tracking_guid: str
    leg_id: str
    call_id: str
    digits: str


@dataclass(frozen=True, slots=True)
class LegEnded:
    tracking_guid: str
    leg_id: str
    cause: LegEndCause
    call_id: str = ""
    request_id: str = ""
    answered: bool = False
    duration_s: float = 0.0


@dataclass(frozen=True, slots=True)
class LeadHungUp:
    tracking_guid: str
    call_id: str = ""


@dataclass(frozen=True, slots=True)
class RecordingReady:
    """The connected call's recording is available."""

    tracking_guid: str
    url: str
    recording_id: str = ""


@dataclass(frozen=True, slots=True)
class VoicemailRecorded:
    """The lead left a message (``duration_s`` may be 0 when they hung up at the beep)."""

    tracking_guid: str
    url: str
    recording_id: str = ""
    duration_s: float = 0.0


@dataclass(frozen=True, slots=True)
class IvrAnswered:
    """The lead answered the campaign's IVR question (``digits`` empty: silence). Needs a
    reply: join the hold room, or be forwarded."""

    tracking_guid: str
    call_id: str
    digits: str


CarrierEvent = (
    LegRinging
    | LegAnswered
    | LegDigits
    | LegEnded
    | LeadHungUp
    | RecordingReady
    | VoicemailRecorded
    | IvrAnswered
)
ReplyEvent = LegAnswered | LegDigits | IvrAnswered


# --- decisions (the answer to a ReplyEvent) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Whisper:
    """Tell the agent who is calling and collect one key within ``timeout_s``."""

    text: str
    timeout_s: float


@dataclass(frozen=True, slots=True)
class Connect:
    """Bridge this agent to the lead's room (named after the TrackingGUID), recording it."""

    room: str


@dataclass(frozen=True, slots=True)
class Release:
    """End this agent's leg, optionally saying ``text`` first ("this call was taken")."""

    text: str = ""


@dataclass(frozen=True, slots=True)
class JoinRoom:
    """(To the lead) wait in the call's hold room while we route."""


@dataclass(frozen=True, slots=True)
class Forward:
    """(To the lead) be forwarded to ``number`` (10 digits), showing ``caller_id``."""

    number: str
    caller_id: str


Decision = Whisper | Connect | Release | JoinRoom | Forward

#: Said to an agent who answers or accepts after another agent took the call.
TAKEN_TEXT = "Sorry, this call was taken by another agent. Goodbye."
#: Said to a lead whose request arrives for a call that is already over (a late carrier retry
#: of the IVR answer): nobody would route them from a hold room any more.
LEAD_UNAVAILABLE_TEXT = "Sorry, we cannot take your call right now. Please call again. Goodbye."


class LeadTarget(StrEnum):
    """Instructions the lead's call can be moved to."""

    HOLD = "hold"  # the waiting room, hold music
    VOICEMAIL = "voicemail"  # the API doc's sentence, then record a message


# --- the answer to an inbound call --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InboundAccepted:
    """The lead's call was taken in (or was already: ``duplicate`` for a carrier retry).

    The carrier adapter answers with the hold room named ``tracking_guid``.
    """

    tracking_guid: str
    campaign: str
    duplicate: bool = False
    ivr: IvrMenu | None = None  # ask this question first (docs/contract.md §8)


@dataclass(frozen=True, slots=True)
class InboundRejected:
    """We will not route this call (unknown number, shutting down): apologise and hang up."""

    reason: str


InboundResult = InboundAccepted | InboundRejected
