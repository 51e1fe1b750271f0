"""What the store's reads return: frozen snapshots of rows, with enums restored. No I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from orchestrator.model import CallState, LegResult, OutcomeKind


@dataclass(frozen=True, slots=True)
class LegView:
    """One agent leg, as stored."""

    leg_id: str
    tracking_guid: str
    agent_id: int
    phone: str
    tier: int
    row: int
    request_id: str | None
    carrier_call_id: str | None
    started_at: float
    answered_at: float | None
    ended_at: float | None
    result: LegResult | None


@dataclass(frozen=True, slots=True)
class EventView:
    """One line of a call's event log; ``detail`` is the compact JSON text recorded."""

    id: int
    tracking_guid: str
    event: str
    at: float
    detail: str


@dataclass(frozen=True, slots=True)
class CallView:
    """A call with its legs (in start order) and its event log (in append order)."""

    tracking_guid: str
    carrier_call_id: str
    campaign: str
    lead_phone: str
    dialled_number: str
    referral_id: int
    plantype: str
    state: CallState
    plan_fingerprint: str | None
    started_at: float
    updated_at: float
    finished_at: float | None
    outcome: OutcomeKind | None
    agent1_id: int | None
    message_link: str | None
    legs: tuple[LegView, ...] = ()
    events: tuple[EventView, ...] = ()


@dataclass(frozen=True, slots=True)
class AgentView:
    """An agent as last seen in a routing plan."""

    agent_id: int
    name: str
    email: str
    phone: str
    nmls: str
    five_min_apps: bool
    first_seen: float
    last_seen: float


@dataclass(frozen=True, slots=True)
class OutboxView:
    """A Step 3 post: where to send it, its form ``fields``, and its delivery bookkeeping.

    ``tracking_guid`` is the idempotency key of the post.
    """

    tracking_guid: str
    url: str
    fields: Mapping[str, str]
    created_at: float
    attempts: int
    next_attempt_at: float
    delivered_at: float | None
    dead: bool
    last_error: str


@dataclass(frozen=True, slots=True)
class CallSummary:
    """One row of the call history list: the call's columns and a few counts.

    ``agent_name`` is the winner's name (from the agents table) for a connected call, else "".
    ``legs`` counts the agent legs placed; ``tiers`` the distinct tiers they belonged to.
    """

    tracking_guid: str
    campaign: str
    lead_phone: str
    dialled_number: str
    referral_id: int
    plantype: str
    state: CallState
    started_at: float
    finished_at: float | None
    outcome: OutcomeKind | None
    agent1_id: int | None
    agent_name: str
    message_link: str | None
    legs: int
    tiers: int


@dataclass(frozen=True, slots=True)
class CallPage:
    """One page of calls, newest first; ``next_cursor`` is None on the last page."""

    calls: tuple[CallSummary, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class CallRecord:
    """Everything stored about one call: the call with its legs and events, the names of its
    agents (by AgentID, from the agents table) and its Step 3 post (None until it finished)."""

    call: CallView
    agent_names: Mapping[int, str]
    outbox: OutboxView | None


@dataclass(frozen=True, slots=True)
class AgentActivity:
    """An agent with how many legs rang them (``legs``) and how many they won (``accepted``)."""

    agent: AgentView
    legs: int
    accepted: int


@dataclass(frozen=True, slots=True)
class AgentPage:
    """One page of agents, newest first seen first; ``next_cursor`` None on the last page."""

    agents: tuple[AgentActivity, ...]
    next_cursor: str | None


# --- the cluster (docs/contract.md §11) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InstanceView:
    """A service instance as the instances table shows it."""

    instance_id: str
    epoch: int
    internal_url: str
    callback_url: str
    clustered: bool
    heartbeat_at: float
    lease_until: float
    draining: bool


@dataclass(frozen=True, slots=True)
class CallOwner:
    """Who routes a call (and what a non-owner needs to know to hand it on)."""

    tracking_guid: str
    owner_id: str | None
    owner_epoch: int
    campaign: str
    finished: bool
