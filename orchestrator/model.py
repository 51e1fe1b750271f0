"""Domain values: frozen, slotted dataclasses and enums.

A leaf module: no project imports, no trio, no I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from itertools import groupby

#: ``Agent1ID`` posted in Step 3 when the lead hung up before being connected (API doc).
HANGUP_AGENT_ID = 999999
#: ``Agent1ID`` posted in Step 3 when the call was not transferred (voicemail).
NOT_TRANSFERRED_AGENT_ID = 0
#: The sentence the API doc prescribes when nobody can take the call (docs/contract.md §5).
VOICEMAIL_PROMPT = (
    "your agent is not available right now, please leave a message "
    "and we will promptly return your call."
)
#: ``MessageLink`` is at most this long (API doc: URL (len 175)).
MESSAGE_LINK_MAX = 175


@dataclass(frozen=True, slots=True)
class PlanAgent:
    """One agent of a Step 2 routing plan, as dialled.

    ``press1`` is True when the agent must press 1 to accept (the default); False when
    ``AgentOverrideIVR=1`` / ``Press1=0`` makes answering the same as accepting.
    """

    agent_id: int
    phone: str  # 10 digits
    tier: int
    row: int
    press1: bool = True
    show_real_caller_id: bool = False
    name: str = ""
    email: str = ""
    nmls: str = ""
    five_min_apps: bool = False


@dataclass(frozen=True, slots=True)
class Tier:
    """The agents of one tier, in dialling (``AgentRow``) order."""

    number: int
    agents: tuple[PlanAgent, ...]


@dataclass(frozen=True, slots=True)
class RoutingPlan:
    """A validated Step 2 plan. ``agents`` is sorted by (tier, row); empty means "no agents"."""

    tracking_guid: str
    agents: tuple[PlanAgent, ...]
    referral_id: int | None = None

    @property
    def no_agents(self) -> bool:
        return not self.agents

    @property
    def tiers(self) -> tuple[Tier, ...]:
        """Tiers in ascending number; numbers need not be consecutive (``1,1,3,3,4``)."""
        return tuple(
            Tier(number, tuple(group))
            for number, group in groupby(self.agents, key=lambda a: a.tier)
        )

    def fingerprint(self) -> str:
        """A stable digest of what would be dialled, to recognise an identical re-post."""
        text = "|".join(
            f"{a.agent_id},{a.phone},{a.tier},{a.row},{int(a.press1)},{int(a.show_real_caller_id)},"
            f"{a.name},{a.email},{a.nmls},{int(a.five_min_apps)}"
            for a in self.agents
        )
        return hashlib.sha256(text.encode()).hexdigest()

    def summary(self) -> dict[str, object]:
        """The JSON body answered to a valid Step 2 request."""
        return {
            "TrackingGUID": self.tracking_guid,
            "status": "accepted",
            "agents": len(self.agents),
            "tiers": [
                {
                    "tier": tier.number,
                    "agents": [
                        {
                            "AgentID": a.agent_id,
                            "AgentRow": a.row,
                            "AgentName": a.name,
                            "AgentPhone": a.phone,
                            "AgentEmail": a.email,
                            "AgentNMLS": a.nmls,
                            "AgentFiveMinApps": int(a.five_min_apps),
                            "Press1": int(a.press1),
                            "ShowAgentRealID": int(a.show_real_caller_id),
                        }
                        for a in tier.agents
                    ],
                }
                for tier in self.tiers
            ],
        }


@dataclass(frozen=True, slots=True)
class LeadDetails:
    """What we know of the lead for the Step 1 post (docs/contract.md §2, §7)."""

    referral_id: int = 0
    first_name: str = ""
    last_name: str = ""
    full_name: str = ""
    city: str = ""
    state: str = ""
    zip: str = ""


#: A lead we know nothing about (a direct call): shared, since it is immutable.
NO_DETAILS = LeadDetails()


@dataclass(frozen=True, slots=True)
class InboundCall:
    """A lead's call as accepted from the carrier, before routing."""

    tracking_guid: str
    carrier_call_id: str  # the lead's CallUUID
    campaign: str
    lead_phone: str  # 10 digits
    dialled_number: str  # 10 digits: the campaign number the lead called
    plantype: str
    details: LeadDetails = NO_DETAILS

    def initial_post_fields(self, *, reduced: bool = False) -> dict[str, str]:
        """Step 1 query fields (docs/contract.md §2); ``reduced`` is the "hung up or redirected"
        variant."""
        d = self.details
        fields = {
            "ReferralID": str(d.referral_id),
            "Phone": self.lead_phone,
            "plantype": self.plantype,
            "TrackingGUID": self.tracking_guid,
        }
        optional = {"FirstName": d.first_name, "LastName": d.last_name, "FullName": d.full_name}
        if not reduced:
            optional |= {"City": d.city, "St": d.state, "Zip": d.zip}
        fields.update({k: v for k, v in optional.items() if v})
        return fields


class OutcomeKind(StrEnum):
    CONNECTED = "connected"  # an agent accepted and was connected
    VOICEMAIL = "voicemail"  # nobody took the call; the lead left a message
    REDIRECTED = "redirected"  # the IVR forwarded the lead to a fixed number: not transferred
    HUNG_UP = "hung_up"  # the lead hung up before being connected and left no message


@dataclass(frozen=True, slots=True)
class Outcome:
    """The Step 3 post-back of one call (docs/contract.md §6)."""

    kind: OutcomeKind
    agent1_id: int
    message_link: str = ""

    @classmethod
    def connected(cls, agent_id: int, recording_url: str = "") -> Outcome:
        return cls(OutcomeKind.CONNECTED, agent_id, recording_url[:MESSAGE_LINK_MAX])

    @classmethod
    def voicemail(cls, message_url: str) -> Outcome:
        return cls(OutcomeKind.VOICEMAIL, NOT_TRANSFERRED_AGENT_ID, message_url[:MESSAGE_LINK_MAX])

    @classmethod
    def redirected(cls) -> Outcome:
        return cls(OutcomeKind.REDIRECTED, NOT_TRANSFERRED_AGENT_ID, "")

    @classmethod
    def hung_up(cls) -> Outcome:
        return cls(OutcomeKind.HUNG_UP, HANGUP_AGENT_ID, "")

    def post_fields(self, *, tracking_guid: str, referral_id: int) -> dict[str, str]:
        return {
            "ReferralID": str(referral_id),
            "TrackingGUID": tracking_guid,
            "Agent1ID": str(self.agent1_id),
            "MessageLink": self.message_link,
        }


class CallState(StrEnum):
    """Where a call is. Transitions only move forward in this order (FINISHED is terminal)."""

    IVR = "ivr"  # the lead hears the campaign's question (optional)
    INITIAL_POST = "initial_post"  # Step 1 sent, the lead is on hold
    WAITING_PLAN = "waiting_plan"  # waiting for Step 2 (up to plan_timeout_s)
    DIALLING = "dialling"  # a tier is ringing
    CONNECTED = "connected"  # an agent accepted; lead and agent are bridged
    VOICEMAIL = "voicemail"  # the lead hears the prompt and may record a message
    FINISHED = "finished"  # outcome decided and queued


class LegResult(StrEnum):
    """How one agent leg ended."""

    ACCEPTED = "accepted"  # won the call
    DECLINED = "declined"  # pressed another key
    NO_INPUT = "no_input"  # answered, never pressed 1 within accept_timeout_s
    AGENT_HUNG_UP = "agent_hung_up"  # answered, hung up during the whisper
    NO_ANSWER = "no_answer"  # rang out (ring_timeout_s)
    BUSY = "busy"
    FAILED = "failed"  # carrier could not place it
    CANCELLED = "cancelled"  # we ended it: another agent won, the lead left, or the tier ended
    TAKEN = "taken"  # answered after the winner was chosen; told "taken" and hung up
    DUPLICATE = "duplicate"  # same phone already ringing for this call: not dialled
