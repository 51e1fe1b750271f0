"""The orchestrator service: the calls nursery and the registry of live calls.

``Orchestrator.run`` is the long-lived actor that owns one nursery with a supervisor per live
call (plus the outbox deliverer). The web layer talks to it through four entry points:

- :meth:`Orchestrator.accept_inbound` (sync, so the lead's answer never waits on anything),
- :meth:`Orchestrator.deliver` (a carrier event to the right call's mailbox; for an agent's
  answer or key press, the call's decision),
- :meth:`Orchestrator.submit_plan` (Step 2),
- :attr:`Orchestrator.ready` / :attr:`Orchestrator.live_calls`.

Shutdown (:meth:`Orchestrator.shutdown`): stop taking calls, give live calls ``drain_s`` to
finish, then cancel the rest — each still ends its legs and records its outcome.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from functools import partial

import structlog
import trio

from actors.context import CallContext
from actors.instance import Instance
from actors.outbox import OutboxDeliverer
from actors.ownership import Ownership
from actors.referral_desk import ReferralDesk
from actors.supervisor import CallSupervisor
from actors.teardown import Target, Teardown, TeardownPolicy
from orchestrator.cluster_results import PlanCommit
from orchestrator.config import Settings
from orchestrator.errors import CallNotFound, PlanConflict, StoreError
from orchestrator.ids import new_leg_id, tracking_guid_for
from orchestrator.messages import (
    LEAD_UNAVAILABLE_TEXT,
    TAKEN_TEXT,
    CarrierEvent,
    Decision,
    InboundAccepted,
    InboundRejected,
    InboundResult,
    IvrAnswered,
    LeadHungUp,
    LegAnswered,
    LegDigits,
    LegRinging,
    Release,
)
from orchestrator.model import NO_DETAILS, InboundCall, LeadDetails, RoutingPlan
from orchestrator.plan_codec import plan_to_json
from orchestrator.ports import CallDirectory, Carrier, Customer, Peers, Recorder
from orchestrator.read_models import InstanceView

logger = structlog.get_logger()

#: Carrier ids of recently finished calls kept to recognise late duplicate answer requests.
RECENT_CALLS_KEPT = 10_000
#: How long outcome posts in flight may take to finish after the calls drained at shutdown.
OUTBOX_DRAIN_S = 5.0
#: Finished calls kept for the operator's live page (``web/live.py``), newest last.
FINISHED_KEPT = 50


class Orchestrator:
    """Registry and nursery of live calls. See the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
        carrier: Carrier,
        recorder: Recorder,
        customer: Customer,
        directory: CallDirectory,
        outcomes: OutboxDeliverer | None = None,
        now: Callable[[], float] = time.time,
        guid_key: bytes | None = None,
        referrals: ReferralDesk | None = None,
        teardown: Teardown | None = None,
        instance: Instance | None = None,
        peers: Peers | None = None,
    ) -> None:
        self.settings = settings
        self._carrier = carrier
        self._directory = directory
        #: This instance in the cluster (None: a single instance; calls are still claimed in
        #: the directory, which tells a second instance on the database that they are taken).
        self.instance = instance
        self._peers = peers
        self.instance_id = settings.instance_id
        # TrackingGUIDs derive from the lead's CallUUID: every instance of a cluster (same key)
        # names a carrier retry's call the same (docs/contract.md §1.5)
        key = guid_key or secrets.token_bytes(32)
        self._new_guid: Callable[[str], str] = partial(_guid_for, key=key)
        # ending legs at the carrier: given by the wiring (already running), or our own
        self._owns_teardown = teardown is None
        self.teardown = teardown or Teardown(carrier, TeardownPolicy.from_settings(settings))
        self._recorder = recorder
        self._customer = customer
        self.outcomes = outcomes or OutboxDeliverer(customer, recorder, now=now)
        self._now = now
        # referrals: who a call to a tracking number is (docs/contract.md §7)
        self._referrals = referrals
        self._calls: dict[str, CallSupervisor] = {}
        self._by_carrier_id: dict[str, str] = {}
        self._recent: OrderedDict[str, str] = OrderedDict()
        self._nursery: trio.Nursery | None = None
        self._calls_nursery: trio.Nursery | None = None
        self._accepting = False
        self._stopping = trio.Event()
        self.calls_started = 0
        #: The last finished calls as the live page shows them: the call's final snapshot plus
        #: ``outcome``, ``agent1_id`` and ``finished_at`` (epoch s). Appended in ``_run_call``.
        self.recently_finished: deque[dict[str, object]] = deque(maxlen=FINISHED_KEPT)

    # --- lifecycle -------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the calls until :meth:`shutdown` (or cancellation)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            if self._owns_teardown:
                await nursery.start(self.teardown.run)
            await nursery.start(self.outcomes.run)
            async with trio.open_nursery() as calls:
                self._calls_nursery = calls
                self._accepting = True
                task_status.started()
                await self._stopping.wait()
                self._accepting = False
                drain_s = self.settings.server.drain_s
                logger.info("calls.draining", live_calls=len(self._calls), drain_s=drain_s)
                calls.cancel_scope.deadline = trio.current_time() + drain_s
            self._calls_nursery = None
            nursery.cancel_scope.deadline = trio.current_time() + OUTBOX_DRAIN_S
            await self.outcomes.close()

    def shutdown(self) -> None:
        """Stop taking calls and drain the live ones (see the module docstring)."""
        self._accepting = False
        self._stopping.set()

    @property
    def ready(self) -> bool:
        return self._accepting

    @property
    def live_calls(self) -> int:
        return len(self._calls)

    def call(self, tracking_guid: str) -> CallSupervisor | None:
        return self._calls.get(tracking_guid)

    def live_snapshot(self) -> list[dict[str, object]]:
        """Every live call as an operator sees it (oldest first)."""
        return [sup.snapshot() for sup in self._calls.values()]

    def end_call(self, tracking_guid: str, *, reason: str = "operator") -> bool:
        """End a live call (admin action); False if no such live call."""
        sup = self._calls.get(tracking_guid)
        if sup is None:
            return False
        sup.end(reason)
        return True

    def campaign_of(self, tracking_guid: str) -> str | None:
        """The campaign of the live call ``tracking_guid`` (Step 2 authentication), or None."""
        sup = self._calls.get(tracking_guid)
        return None if sup is None else sup.campaign.name

    # --- carrier side ----------------------------------------------------------------------

    def accept_inbound(
        self,
        *,
        carrier_call_id: str,
        from_number: str,
        to_number: str,
        details: LeadDetails | None = None,
    ) -> InboundResult:
        """Take in a lead's call and start its supervisor. Synchronous on purpose: the
        carrier's answer request returns as soon as this does."""
        known = self._by_carrier_id.get(carrier_call_id)
        if known is not None:
            sup = self._calls[known]
            logger.info("inbound.duplicate", call_uuid=carrier_call_id, tracking_guid=known)
            return InboundAccepted(known, sup.campaign.name, duplicate=True)
        if carrier_call_id in self._recent:
            logger.info(
                "inbound.duplicate_after_end",
                call_uuid=carrier_call_id,
                tracking_guid=self._recent[carrier_call_id],
            )
            return InboundRejected("this call has already ended")
        campaign = self.settings.campaign_for_number(to_number)
        if campaign is None:
            logger.warning(
                "inbound.unknown_number",
                to=to_number,
                lead_phone=from_number,
                call_uuid=carrier_call_id,
            )
            return InboundRejected(f"no campaign for number {to_number}")
        if not self._accepting or self._calls_nursery is None:
            logger.warning(
                "inbound.refused",
                reason="not accepting calls",
                to=to_number,
                call_uuid=carrier_call_id,
            )
            return InboundRejected("not accepting calls")
        guid = self._new_guid(carrier_call_id)
        call = InboundCall(
            tracking_guid=guid,
            carrier_call_id=carrier_call_id,
            campaign=campaign.name,
            lead_phone=from_number,
            dialled_number=to_number,
            plantype=campaign.plantype,
            details=details or NO_DETAILS,
        )
        ctx = CallContext(
            call=call,
            caller_id=campaign.caller_id_for(to_number),
            routing=self.settings.routing,
            carrier=self._carrier,
            recorder=self._recorder,
            teardown=self.teardown,
            now=self._now,
        )
        sup = CallSupervisor(
            ctx,
            campaign,
            ownership=self._ownership(),
            # referrals (docs/contract.md §7): attributed at the call's start, off the answer path
            attribute=(
                self._referrals.attribute
                if details is None
                and self._referrals is not None
                and self._referrals.is_tracking_number(to_number)
                else None
            ),
            customer=self._customer,
            outcomes=self.outcomes,
            new_leg_id=new_leg_id,
            initial_post_timeout_s=self.settings.routing.initial_post_timeout_s,
        )
        self._calls[guid] = sup
        self._by_carrier_id[carrier_call_id] = guid
        self.calls_started += 1
        self._calls_nursery.start_soon(self._run_call, sup)
        return InboundAccepted(guid, campaign.name, ivr=campaign.ivr)

    async def _run_call(self, sup: CallSupervisor) -> None:
        try:
            await sup.run()
        finally:
            guid = sup.tracking_guid
            carrier_id = sup.ctx.call.carrier_call_id
            del self._calls[guid]
            self._by_carrier_id.pop(carrier_id, None)
            self._recent[carrier_id] = guid
            while len(self._recent) > RECENT_CALLS_KEPT:
                self._recent.popitem(last=False)
            # the operator's live page (README "Operating it"): the call as it ended, with its
            # outcome
            outcome = sup.outcome
            self.recently_finished.append(
                {
                    **sup.snapshot(),
                    "finished_at": self._now(),
                    "outcome": outcome.kind.value if outcome else None,
                    "agent1_id": outcome.agent1_id if outcome else None,
                }
            )

    async def deliver(self, event: CarrierEvent) -> Decision | None:
        """Route a carrier event to its call; return the decision for answer/digit events.

        An event for a call that is over: an agent's answer is told "taken" (and hung up by the
        carrier), a ringing leg is cancelled — no agent phone rings for a call that is gone; a
        lead's late IVR answer is apologised to and hung up, never put in a hold room.
        """
        guid = event.tracking_guid
        if not guid and isinstance(event, LeadHungUp):
            guid = self._by_carrier_id.get(event.call_id, "")
        sup = self._calls.get(guid)
        if sup is not None:
            return await sup.post(event)
        logger.info(
            "carrier.event_for_ended_call", tracking_guid=guid, event_type=type(event).__name__
        )
        if isinstance(event, LegRinging) and event.request_id and self._nursery is not None:
            self._nursery.start_soon(self._cancel_stray, event.request_id)
        if isinstance(event, LegAnswered | LegDigits):
            return Release(TAKEN_TEXT)
        if isinstance(event, IvrAnswered):
            return Release(LEAD_UNAVAILABLE_TEXT)  # never a hold room nobody routes
        return None

    async def _cancel_stray(self, request_id: str) -> None:
        failed = await self.teardown.end(Target(request_id=request_id))
        if failed:
            logger.error("leg.end_failed", request_id=request_id, error=failed)

    # --- customer side ---------------------------------------------------------------------

    def guid_for(self, carrier_call_id: str) -> str:
        """The TrackingGUID the lead's call ``carrier_call_id`` gets (on every instance)."""
        return self._new_guid(carrier_call_id)

    def _ownership(self) -> Ownership:
        epoch = self.instance.epoch if self.instance is not None else 0
        return Ownership(self._directory, self.instance_id, epoch, self._now)

    async def submit_plan(self, plan: RoutingPlan) -> RoutingPlan:
        """Step 2: commit ``plan`` as its call's plan, then hand it to the call (here, or on the
        instance that owns it); returns the plan in effect.

        The directory decides (one conditional write): a plan is taken only while the call has
        none and still waits for one — whichever instance the customer posted to.

        Raises:
            CallNotFound: no call has this TrackingGUID (404).
            PlanConflict: the call has a different plan, or no longer waits for one (409).
        """
        guid = plan.tracking_guid
        local = self._calls.get(guid)
        if local is not None:
            await local.claim_settled.wait()  # Step 2 may beat the claim of a call just taken
            if local.duplicate:
                local = None  # another instance owns it: the directory decides
            elif not local.in_directory:
                return local.offer_plan(plan)  # the directory failed at the claim: ours alone
        result = await self._ownership().commit(plan)
        if result is PlanCommit.COMMITTED:
            if local is not None:
                local.take_plan(plan)
            else:
                await self._hand_plan_to_owner(plan)
            return plan
        if result is PlanCommit.IDENTICAL:
            return plan
        if result is PlanCommit.UNKNOWN:
            raise CallNotFound(f"no call with TrackingGUID {guid}")
        if local is not None and local.plan is None:
            raise PlanConflict(
                f"this call no longer waits for a routing plan (it is {local.state})"
            )
        raise PlanConflict(
            "this call already has a different routing plan, or no longer waits for one"
        )

    def take_handed_plan(self, plan: RoutingPlan) -> bool:
        """Another instance committed ``plan`` for a call of ours (``/internal/calls/<guid>/
        plan``): route it. False when the call is not live here."""
        sup = self._calls.get(plan.tracking_guid)
        if sup is None:
            return False
        logger.info("plan.handed_over", tracking_guid=plan.tracking_guid)
        sup.take_plan(plan)
        return True

    async def _hand_plan_to_owner(self, plan: RoutingPlan) -> None:
        """The plan is committed for a call routed elsewhere: tell its owner (it also finds it
        in the directory when its plan wait ends)."""
        peer = await self.owner_peer(plan.tracking_guid)
        if peer is None or self._peers is None:
            logger.warning("plan.owner_not_live", tracking_guid=plan.tracking_guid)
            return
        if not await self._peers.hand_plan(
            peer.internal_url, plan.tracking_guid, plan_to_json(plan)
        ):
            logger.warning(
                "plan.handover_failed", tracking_guid=plan.tracking_guid, owner=peer.instance_id
            )

    # --- the cluster: finding a call's owner ------------------------------------------------

    @property
    def clustered(self) -> bool:
        """Whether other instances may hold calls (``[cluster]`` configured)."""
        return self.instance is not None and self.instance.config.clustered

    def is_local(self, tracking_guid: str) -> bool:
        """Whether this instance routes the call (a duplicate that lost its claim does not)."""
        sup = self._calls.get(tracking_guid)
        return sup is not None and not sup.duplicate

    def peer(self, instance_id: str | None) -> InstanceView | None:
        """The live instance ``instance_id`` other than this one, or None."""
        if not instance_id or self.instance is None or instance_id == self.instance_id:
            return None
        return self.instance.peers.get(instance_id)

    async def owner_peer(self, tracking_guid: str, hint: str | None = None) -> InstanceView | None:
        """The live other instance that owns ``tracking_guid`` (None: here, or nobody live).

        ``hint`` is the owner named in the callback URL; the directory is asked only when the
        hint names no live peer (the call may have moved, or the URL names no owner).
        """
        if not self.clustered or self.is_local(tracking_guid):
            return None
        peer = self.peer(hint)
        if peer is not None:
            return peer
        try:
            owner = await self._directory.owner_of_call(tracking_guid)
        except StoreError as exc:
            logger.warning("cluster.owner_unknown", tracking_guid=tracking_guid, error=str(exc))
            return None
        return None if owner is None or owner.finished else self.peer(owner.owner_id)

    async def lead_owner_peer(self, carrier_call_id: str) -> InstanceView | None:
        """The live other instance that owns the lead's call ``carrier_call_id``."""
        if not self.clustered or carrier_call_id in self._by_carrier_id:
            return None
        try:
            owner = await self._directory.owner_of_carrier_call(carrier_call_id)
        except StoreError as exc:
            logger.warning("cluster.owner_unknown", call_uuid=carrier_call_id, error=str(exc))
            return None
        return None if owner is None or owner.finished else self.peer(owner.owner_id)

    async def campaign_of_any(self, tracking_guid: str) -> str | None:
        """The campaign of the call ``tracking_guid`` wherever it is routed, or None."""
        local = self.campaign_of(tracking_guid)
        if local is not None or not self.clustered:
            return local
        try:
            owner = await self._directory.owner_of_call(tracking_guid)
        except StoreError:
            return None
        return None if owner is None or owner.finished else owner.campaign

    async def hang_up(self, tracking_guid: str, reason: str) -> bool | None:
        """End the live call ``tracking_guid`` here or on its owner: True ended, False not live
        anywhere we know, None the owner did not answer."""
        if self.end_call(tracking_guid, reason=reason):
            return True
        peer = await self.owner_peer(tracking_guid)
        if peer is None or self._peers is None:
            return False
        return await self._peers.end_call(peer.internal_url, tracking_guid, reason)


def _guid_for(carrier_call_id: str, *, key: bytes) -> str:
    return tracking_guid_for(carrier_call_id, key)
