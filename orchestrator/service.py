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

import time
from collections import OrderedDict, deque
from collections.abc import Callable

import structlog
import trio

from actors.context import CallContext
from actors.outbox import OutboxDeliverer
from actors.supervisor import CallSupervisor
from actors.teardown import Target, Teardown, TeardownPolicy
from orchestrator.config import Settings
from orchestrator.errors import CallNotFound, PlanConflict
from orchestrator.ids import new_leg_id, new_tracking_guid
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
from orchestrator.ports import CallLookup, Carrier, Customer, Recorder
from orchestrator.referrals import ReferralBook

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
        lookup: CallLookup | None = None,
        outcomes: OutboxDeliverer | None = None,
        now: Callable[[], float] = time.time,
        new_guid: Callable[[], str] = new_tracking_guid,
        referrals: ReferralBook | None = None,
        teardown: Teardown | None = None,
    ) -> None:
        self.settings = settings
        self._carrier = carrier
        # ending legs at the carrier: given by the wiring (already running), or our own
        self._owns_teardown = teardown is None
        self.teardown = teardown or Teardown(carrier, TeardownPolicy.from_settings(settings))
        self._recorder = recorder
        self._customer = customer
        self._lookup = lookup
        self.outcomes = outcomes or OutboxDeliverer(customer, recorder, now=now)
        self._now = now
        self._new_guid = new_guid
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
        if details is None and self._referrals is not None:  # referrals (docs/contract.md §7)
            details = self._referrals.attribute(to_number, self._now())
        guid = self._new_guid()
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

    async def submit_plan(self, plan: RoutingPlan) -> RoutingPlan:
        """Step 2: hand ``plan`` to its waiting call; returns the plan in effect.

        Raises:
            CallNotFound: no call has this TrackingGUID (404).
            PlanConflict: the call has a different plan, or no longer waits for one (409).
        """
        sup = self._calls.get(plan.tracking_guid)
        if sup is not None:
            return sup.offer_plan(plan)
        if self._lookup is not None:
            stored = await self._lookup.get_call(plan.tracking_guid)
            if stored is not None:
                if stored.plan_fingerprint == plan.fingerprint():
                    return plan
                raise PlanConflict("this call is over and no longer takes a routing plan")
        raise CallNotFound(f"no call with TrackingGUID {plan.tracking_guid}")
