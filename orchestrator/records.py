"""What the call actors ask the store to write. A leaf module.

Each record is one frozen write operation; the store's writer actor applies a batch of them in
one transaction (docs/architecture.md "Store"). ``CallFinished`` carries the outcome so that
finishing a call and queueing its Step 3 post happen atomically.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.model import CallState, InboundCall, LegResult, Outcome, PlanAgent


@dataclass(frozen=True, slots=True)
class CallStarted:
    call: InboundCall
    at: float  # epoch seconds


@dataclass(frozen=True, slots=True)
class CallStateChanged:
    tracking_guid: str
    state: CallState
    at: float


@dataclass(frozen=True, slots=True)
class PlanAccepted:
    """A routing plan was handed to the call; ``agents`` are upserted by AgentID."""

    tracking_guid: str
    fingerprint: str
    agents: tuple[PlanAgent, ...]
    at: float


@dataclass(frozen=True, slots=True)
class LegStarted:
    tracking_guid: str
    leg_id: str
    agent_id: int
    phone: str
    tier: int
    row: int
    at: float


@dataclass(frozen=True, slots=True)
class LegUpdated:
    tracking_guid: str
    leg_id: str
    at: float
    request_id: str | None = None
    carrier_call_id: str | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    result: LegResult | None = None


@dataclass(frozen=True, slots=True)
class EventLogged:
    """One line of the append-only per-call event log (``event`` is dotted, past tense)."""

    tracking_guid: str
    event: str
    at: float
    detail: str = ""  # compact JSON


@dataclass(frozen=True, slots=True)
class CallFinished:
    """The call is over: its final state and outcome, and the outbox row for its Step 3 post."""

    tracking_guid: str
    outcome: Outcome
    referral_id: int
    outcome_post_url: str
    at: float


@dataclass(frozen=True, slots=True)
class OutboxDelivered:
    """A Step 3 post was answered 2xx (or gave up: ``dead``)."""

    tracking_guid: str
    at: float
    attempts: int
    dead: bool = False
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class OutboxAttempted:
    """A Step 3 post failed; the next attempt is due at ``next_attempt_at``."""

    tracking_guid: str
    at: float
    attempts: int
    next_attempt_at: float
    last_error: str


Record = (
    CallStarted
    | CallStateChanged
    | PlanAccepted
    | LegStarted
    | LegUpdated
    | EventLogged
    | CallFinished
    | OutboxDelivered
    | OutboxAttempted
)
