"""Ports: what the actors need from the outside world, as Protocols. A leaf module.

Implementations: carriers (``orchestrator.carriers``: Plivo, the in-memory fake), the store
(``store``), the customer's web endpoint (``orchestrator.customer_client``). Actors receive these
through their constructors and never import an implementation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from orchestrator.cluster_results import CallClaim, PlanCommit
from orchestrator.messages import LeadTarget
from orchestrator.model import CallState, InboundCall, LeadDetails
from orchestrator.read_models import CallOwner, InstanceView
from orchestrator.records import Record
from orchestrator.referral_records import Referral


@dataclass(frozen=True, slots=True)
class LegRequest:
    """One outbound call to one agent. Numbers are 10-digit NANP; the adapter converts."""

    tracking_guid: str
    leg_id: str
    to: str
    caller_id: str
    ring_timeout_s: float
    caller_name: str = ""


class Carrier(Protocol):
    """The few carrier operations a call needs.

    Contract for every implementation:

    - ``originate`` may wait (cancellably) for the outbound rate limit; once it has sent the
      request to the carrier it finishes that request shielded from cancellation (bounded by its
      own timeout) and returns the request id, so the caller always learns the id of a call that
      was placed and can cancel it. It never retries a request that may have been placed.
    - ``cancel`` / ``hangup`` are idempotent: ending something already gone is not an error.
    - Failures raise :class:`orchestrator.errors.CarrierError`.
    """

    async def originate(self, request: LegRequest) -> str:
        """Place the call; return the carrier's request id."""
        ...

    async def cancel(self, request_id: str) -> None:
        """Cancel a queued or ringing request that has not been answered."""
        ...

    async def hangup(self, call_id: str) -> None:
        """Hang up a live (answered) call by its carrier call id."""
        ...

    async def redirect_lead(self, call_id: str, tracking_guid: str, target: LeadTarget) -> None:
        """Move the lead's live call to new instructions (hold room, voicemail)."""
        ...


class Recorder(Protocol):
    """The store's write side. ``record`` only queues: it never waits on the database
    (except for back-pressure when the writer's queue is full)."""

    async def record(self, *records: Record) -> None: ...

    async def flush(self) -> None:
        """Return once everything queued before this call is committed. Only for facts a
        restart must find (a placed leg's request id) — never on a webhook's path."""
        ...


@dataclass(frozen=True, slots=True)
class CustomerReply:
    """The customer's answer to a Step 1 GET: status and the fields of its body, if any."""

    status: int
    fields: Mapping[str, str | list[str]]


class Customer(Protocol):
    """The customer's web endpoint (Step 1 GET, Step 3 POST)."""

    async def initial_post(self, url: str, fields: Mapping[str, str]) -> CustomerReply:
        """GET ``url`` with ``fields``; raise ``OrchestratorError`` subclasses on failure."""
        ...

    async def outcome_post(
        self,
        url: str,
        fields: Mapping[str, str],
        *,
        key: str,
        headers: Mapping[str, str] | None = None,
    ) -> int:
        """POST the Step 3 form (body: ``urlencode(fields)``, in order) with idempotency
        ``key`` and any extra ``headers``; return the HTTP status."""
        ...


class StoredCall(Protocol):
    """The part of a stored call the service needs to answer a late Step 2 re-post."""

    @property
    def plan_fingerprint(self) -> str | None: ...


class CallLookup(Protocol):
    """Read access to calls that are no longer live (the store's read side)."""

    async def get_call(self, tracking_guid: str) -> StoredCall | None: ...


class ReferralPool(Protocol):
    """The tracking-number pool and the ReferralID sequence (the store; docs/contract.md §7)."""

    async def sync_referral_pool(self, pools: Mapping[str, Sequence[str]]) -> None:
        """Make the configured pools' numbers (campaign -> numbers)."""
        ...

    async def assign_referral(
        self, campaign: str, visitor: LeadDetails, *, now: float, ttl_s: float
    ) -> tuple[Referral, int | None]:
        """A new referral on the campaign's pool, and the id of the live referral it
        superseded (an exhausted pool), else None.

        Raises:
            NoTrackingNumbers: the campaign has no numbers in the pool.
        """
        ...

    async def referral_on(self, number: str) -> Referral | None:
        """The tracking number's current referral (live or not)."""
        ...


# --- the cluster (docs/contract.md §11) ---------------------------------------------------------


class InstanceRegistry(Protocol):
    """The instances table (the store): registration, leases, who is live."""

    async def register_instance(
        self,
        instance_id: str,
        *,
        internal_url: str,
        callback_url: str,
        clustered: bool,
        now: float,
        lease_s: float,
    ) -> int:
        """Take this incarnation's row; return its epoch (``InstanceInUse`` if held)."""
        ...

    async def renew_lease(
        self, instance_id: str, epoch: int, *, now: float, lease_s: float, draining: bool = False
    ) -> bool:
        """Extend the lease; False when another incarnation holds the row now."""
        ...

    async def stop_instance(self, instance_id: str, epoch: int, *, now: float) -> None: ...

    async def live_instances(self, *, now: float) -> Sequence[InstanceView]: ...


class CallDirectory(Protocol):
    """The calls table as a directory: who owns a call, and its plan (the store)."""

    async def claim_call(
        self, call: InboundCall, *, owner_id: str, owner_epoch: int, state: CallState, now: float
    ) -> CallClaim: ...

    async def commit_plan(
        self, tracking_guid: str, *, plan: str, fingerprint: str, now: float
    ) -> PlanCommit: ...

    async def give_up_plan(
        self, tracking_guid: str, *, state: CallState, now: float
    ) -> str | None: ...

    async def owner_of_call(self, tracking_guid: str) -> CallOwner | None: ...

    async def owner_of_carrier_call(self, carrier_call_id: str) -> CallOwner | None: ...


@dataclass(frozen=True, slots=True)
class ForwardedReply:
    """The owner's answer to a request handed on to it, to be given back as is."""

    status: int
    content_type: str
    body: bytes


class Peers(Protocol):
    """Requests to the other instances (the owner of a call), authenticated."""

    async def forward(
        self,
        internal_url: str,
        *,
        method: str,
        path: str,
        query: str,
        body: bytes,
        content_type: str,
    ) -> ForwardedReply:
        """Hand a carrier request on to the instance at ``internal_url``.

        Raises:
            PeerUnreachable: no answer from it.
        """
        ...

    async def hand_plan(self, internal_url: str, tracking_guid: str, plan: str) -> bool:
        """Tell the owner its call has a committed plan (``plan``: the plan's JSON); False
        when it could not be told (it reads the plan from the store at its plan timeout)."""
        ...

    async def end_call(self, internal_url: str, tracking_guid: str, reason: str) -> bool | None:
        """Ask the owner to end its live call: True ended, False not live there, None
        unreachable."""
        ...
