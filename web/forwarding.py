"""Carrier webhooks for calls another instance owns: find the owner, hand the request on.

A call lives in the actors of the instance that answered it (docs/contract.md §11). A webhook
for it that reaches another instance — the lead's hangup URL is the load balancer's, and a
balancer may misroute anything — is verified where it arrived (the carrier's signature covers
the URL it requested), then sent on unchanged to the owner's internal URL, signed with the
cluster secret (:mod:`orchestrator.signing`), and the owner's answer is given back as is: an
XML decision is always the owner's actor's.

A forwarded request is never forwarded again: an owner that no longer has the call answers it as
a stale callback. A forged one (bad or missing instance signature) gets 401 and reaches nothing.

:class:`Forwarding` holds the routing; the Plivo blueprint calls it. It counts the webhooks it
saw and forwarded, for the metrics and the cluster benchmark.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from orchestrator.messages import CarrierEvent, LeadHungUp
from orchestrator.ports import ForwardedReply, Peers
from orchestrator.read_models import InstanceView
from orchestrator.signing import Signer

logger = structlog.get_logger()


class CallOwners(Protocol):
    """Who owns a call (``orchestrator.service.Orchestrator``)."""

    def is_local(self, tracking_guid: str) -> bool: ...

    async def owner_peer(
        self, tracking_guid: str, hint: str | None = None
    ) -> InstanceView | None: ...

    async def lead_owner_peer(self, carrier_call_id: str) -> InstanceView | None: ...


def raw_target(scope: Mapping[str, object]) -> str:
    """The request target exactly as received (raw path and query), what a sender signs."""
    raw_path = scope.get("raw_path")
    path = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else str(scope.get("path", ""))
    query = scope.get("query_string", b"")
    text = query.decode("latin-1") if isinstance(query, bytes) else ""
    return f"{path}?{text}" if text else path


@dataclass(slots=True)
class Forwarding:
    """See the module docstring."""

    owners: CallOwners
    peers: Peers
    signer: Signer
    now: Callable[[], float] = time.time
    #: carrier webhooks for a call (or a lead) seen, and how many of them went to the owner
    seen: int = field(default=0)
    forwarded: int = field(default=0)

    def refusal(
        self, method: str, target: str, body: bytes, headers: Mapping[str, str]
    ) -> str | None:
        """Why a request claiming to come from another instance is refused (None: genuine)."""
        return self.signer.problem(method, target, body, headers, now=self.now())

    async def owner_of(self, event: CarrierEvent) -> InstanceView | None:
        """The live other instance that owns ``event``'s call (None: here, or nobody)."""
        self.seen += 1
        guid = event.tracking_guid
        if guid:
            if self.owners.is_local(guid):
                return None
            return await self.owners.owner_peer(guid)
        if isinstance(event, LeadHungUp):
            return await self.owners.lead_owner_peer(event.call_id)
        return None

    async def owner_of_call(self, tracking_guid: str) -> InstanceView | None:
        """As :meth:`owner_of`, for a document route naming only the call."""
        if self.owners.is_local(tracking_guid):
            return None
        return await self.owners.owner_peer(tracking_guid)

    async def forward(
        self, peer: InstanceView, *, method: str, target: str, body: bytes, content_type: str
    ) -> ForwardedReply:
        """Send the request on to ``peer``; its reply (``PeerUnreachable`` if none)."""
        path, _, query = target.partition("?")
        reply = await self.peers.forward(
            peer.internal_url,
            method=method,
            path=path,
            query=query,
            body=body,
            content_type=content_type,
        )
        self.forwarded += 1
        # counted in the metrics, written only at debug level: one per forwarded webhook
        logger.debug("cluster.forwarded", route=path, owner=peer.instance_id, status=reply.status)
        return reply
