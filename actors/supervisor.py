"""The call supervisor: one actor per lead call, from Step 1 to the outcome.

Shape (``docs/architecture.md``): the supervisor owns a call nursery holding its dispatcher
(the one task that reads the call's mailbox and hands each event to the pure
:class:`~actors.referee.Referee`) and, while dialling, one tier nursery at a time placing that
tier's legs (:mod:`actors.dialer`). The supervisor owns the clock and the events the referee's
decisions stand for: it passes :class:`~actors.referee.Now` in and carries the returned effects
out (:meth:`CallSupervisor.apply`). Tiers run strictly one after another: a tier
is over only when every one of its legs has ended. Phases::

    Step 1 initial post ──► wait for the plan (≤ plan_timeout_s) ──► tiers, in ascending number
        │                         │                                   │ first accept wins
        │ lead hangs up: every    │ no agents / timeout               ▼
        │ leg ends, outcome       ▼                             connected (recorded) ──► outcome
        └──► 999999          voicemail ──► message? 0 + link : 999999 ──► outcome

Whatever happens — including cancellation at shutdown — the call ends with exactly one
outcome, recorded together with its outbox row (``CallFinished``) and handed to the outbox
deliverer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from typing import Protocol

import structlog
import trio

from actors.context import CallContext
from actors.dialer import end_legs, place_leg
from actors.mailbox import Envelope, ReplySlot, open_mailbox
from actors.ownership import Ownership
from actors.race import Leg, LegPhase
from actors.referee import Effect, EndStray, Log, Note, Now, Referee, Signal
from actors.teardown import Target
from orchestrator.cluster_results import PlanCommit
from orchestrator.config import Campaign
from orchestrator.errors import (
    CarrierError,
    OrchestratorError,
    PlanConflict,
    PlanRejected,
    StoreError,
)
from orchestrator.ivr import IvrMenu
from orchestrator.messages import (
    TAKEN_TEXT,
    CarrierEvent,
    Decision,
    IvrAnswered,
    LeadTarget,
    LegAnswered,
    LegDigits,
    Release,
)
from orchestrator.model import CallState, LeadDetails, LegResult, Outcome, RoutingPlan, Tier
from orchestrator.plan_parser import parse_routing_plan, plan_fields_present
from orchestrator.ports import Customer
from orchestrator.records import CallFinished, CallStateChanged, PlanAccepted

logger = structlog.get_logger()

#: The Step 1 fields of the live referral on a dialled number, at a time (None: a direct call).
Attribute = Callable[[str, float], Awaitable[LeadDetails | None]]

#: How long a webhook handler waits for the call's answer before releasing the agent
#: (the web layer may give up sooner; either way the slot is then abandoned).
REPLY_TIMEOUT_S = 5.0
#: After a connected call ends, how long to wait for its recording URL before posting without.
RECORDING_GRACE_S = 30.0
#: After the voicemail window (or the lead hanging up in it), how long to wait for the message.
VOICEMAIL_GRACE_S = 15.0
#: Bound on the shielded final bookkeeping (outcome record, lead hang-up at shutdown).
FINALIZE_TIMEOUT_S = 10.0
#: Time allowed for saying the IVR prompt once, on top of its key timeout.
IVR_PROMPT_ALLOWANCE_S = 15.0
#: Extra time past ring + accept timeouts before a tier stops waiting for the carrier to say
#: its legs ended and ends them itself (a lost callback must not hold the lead forever).
TIER_SLACK_S = 10.0


class OutcomeSink(Protocol):
    """Where finished calls' Step 3 posts go (the outbox deliverer)."""

    async def send(self, tracking_guid: str, url: str, fields: Mapping[str, str]) -> None: ...


def leg_state(leg: Leg) -> str:
    """ringing / whispering / connected / declined / ended, for operators."""
    if leg.won:
        return "connected"
    if leg.phase in (LegPhase.ENDING, LegPhase.ENDED):
        return "declined" if leg.result in (LegResult.DECLINED, LegResult.NO_INPUT) else "ended"
    if leg.phase is LegPhase.WHISPERING:
        return "whispering"
    return "ringing" if leg.phase is LegPhase.RINGING else "dialling"


class CallSupervisor:
    """Routes one lead call. Created by the service; ``run`` is its whole life."""

    __slots__ = (  # thousands live at once: no per-instance dict
        "_attribute",
        "_connected_at",
        "_customer",
        "_duplicate",
        "_ended_by_operator",
        "_finished",
        "_forwarded",
        "_inbox_recv",
        "_inbox_send",
        "_initial_post_timeout_s",
        "_new_leg_id",
        "_nursery",
        "_outcomes",
        "_ownership",
        "_plan_ready",
        "_route_scope",
        "_signals",
        "_started",
        "campaign",
        "claim_settled",
        "ctx",
        "in_directory",
        "outcome",
        "plan",
        "referee",
        "state",
        "tiers_tried",
    )

    def __init__(
        self,
        ctx: CallContext,
        campaign: Campaign,
        *,
        ownership: Ownership,
        attribute: Attribute | None = None,
        customer: Customer,
        outcomes: OutcomeSink,
        new_leg_id: Callable[[], str],
        initial_post_timeout_s: float,
    ) -> None:
        self.ctx = ctx
        self.campaign = campaign
        self._ownership = ownership
        self._attribute = attribute
        self._duplicate = False
        #: set once the claim is settled; ``in_directory``: the directory holds our claim (a
        #: directory that failed leaves the call routed here alone, plans taken locally)
        self.claim_settled = trio.Event()
        self.in_directory = False
        self._customer = customer
        self._outcomes = outcomes
        self._new_leg_id = new_leg_id
        self._initial_post_timeout_s = initial_post_timeout_s
        self._inbox_send, self._inbox_recv = open_mailbox()
        self._route_scope = trio.CancelScope()
        self.referee = Referee(ctx.call, accept_timeout_s=ctx.routing.accept_timeout_s)
        self._signals: dict[Signal, trio.Event] | None = None  # made on first use
        self._nursery: trio.Nursery | None = None
        self.state = CallState.INITIAL_POST
        self.plan: RoutingPlan | None = None
        self._plan_ready = trio.Event()
        self.outcome: Outcome | None = None
        self._finished: trio.Event | None = None  # made on first use (tests, operators)
        self.tiers_tried: list[int] = []
        self._started = trio.current_time()
        self._connected_at: float | None = None
        self._ended_by_operator = False
        self._forwarded = False  # the IVR forwarded the lead: nothing left to route

    @property
    def finished(self) -> trio.Event:
        """Set once the outcome is recorded and handed to the outbox."""
        if self._finished is None:
            self._finished = trio.Event()
        return self._finished

    @property
    def duplicate(self) -> bool:
        """Another instance owns this call (the lead's retried answer reached us too)."""
        return self._duplicate

    @property
    def tracking_guid(self) -> str:
        return self.ctx.call.tracking_guid

    # --- the referee's clock and effects ---------------------------------------------------

    def now(self) -> Now:
        return Now(trio.current_time(), self.ctx.now())

    def signal(self, which: Signal) -> trio.Event:
        """The event standing for ``which`` (set once the referee signalled it)."""
        if self._signals is None:
            self._signals = {}
        event = self._signals.get(which)
        if event is None:
            event = self._signals[which] = trio.Event()
        return event

    def apply(self, effects: Iterable[Effect]) -> None:
        """Carry out what the referee decided: log and journal, end strays, signal waiters."""
        for effect in effects:
            if isinstance(effect, Log):
                if effect.leg is None:
                    self.ctx.event(effect.name, level=effect.level, **effect.data)
                else:
                    with structlog.contextvars.bound_contextvars(**effect.leg.log_context()):
                        self.ctx.event(effect.name, level=effect.level, **effect.data)
            elif isinstance(effect, Note):
                self.ctx.note(effect.record)
            elif isinstance(effect, EndStray):
                if self._nursery is not None:
                    self._nursery.start_soon(self._end_stray, effect.request_id, effect.call_id)
            else:
                self.signal(effect).set()
                if effect is Signal.LEAD_GONE:
                    self._lead_gone()

    # --- the service's side ----------------------------------------------------------------

    async def post(self, event: CarrierEvent) -> Decision | None:
        """Deliver ``event``; for an agent answer or key press, wait for the decision."""
        slot = ReplySlot() if isinstance(event, LegAnswered | LegDigits | IvrAnswered) else None
        envelope: Envelope = (event, slot)
        try:
            try:
                self._inbox_send.send_nowait(envelope)
            except trio.WouldBlock:
                logger.warning("call.mailbox_full", tracking_guid=self.tracking_guid)
                with trio.move_on_after(REPLY_TIMEOUT_S):
                    await self._inbox_send.send(envelope)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            # The call has just finished: nobody may join it any more.
            return None if slot is None else Release(TAKEN_TEXT)
        return None if slot is None else await slot.get(REPLY_TIMEOUT_S)

    def take_plan(self, plan: RoutingPlan) -> None:
        """The directory committed ``plan`` as this call's plan: route it."""
        if self.plan is None:
            self.plan = plan
            self._plan_ready.set()

    def offer_plan(self, plan: RoutingPlan) -> RoutingPlan:
        """Hand a plan to the call, checked against the plan it has (the synchronous plan of
        Step 1, already committed in the directory).

        Raises:
            PlanConflict: the call has a different plan already, or no longer waits for one.
        """
        if self.plan is not None:
            if self.plan.fingerprint() == plan.fingerprint():
                return self.plan
            raise PlanConflict("this call already has a different routing plan")
        if self.state not in (CallState.INITIAL_POST, CallState.WAITING_PLAN):
            raise PlanConflict(f"this call no longer waits for a routing plan (it is {self.state})")
        self.plan = plan
        self._plan_ready.set()
        return plan

    def snapshot(self) -> dict[str, object]:
        """What an operator sees of this live call right now (plain JSON-able data)."""
        call = self.ctx.call
        race = self.referee.race
        return {
            "tracking_guid": call.tracking_guid,
            "campaign": call.campaign,
            "lead_phone": call.lead_phone,
            "plantype": call.plantype,
            "state": self.state.value,
            "waiting_s": round(trio.current_time() - self._started, 1),
            "tier": race.number if race is not None else None,
            "tiers_tried": list(self.tiers_tried),
            "legs": [
                {
                    "leg_id": leg.leg_id,
                    "agent_id": leg.agent.agent_id,
                    "name": leg.agent.name,
                    "phone": leg.agent.phone,
                    "tier": leg.tier,
                    "state": leg_state(leg),
                }
                for leg in self.referee.legs.values()
            ],
        }

    def end(self, reason: str) -> None:
        """An operator ends this call: every leg and the lead end; the outcome is recorded as
        usual (999999 unless an agent was already connected or a message left)."""
        self.ctx.event(
            "call.ended_by_operator", reason=reason, state=self.state.value, level="warning"
        )
        self._ended_by_operator = True
        self._route_scope.cancel(reason=f"ended by operator: {reason}")
        self.apply(self.referee.lead_ended())  # ends the connected and voicemail waits too

    # --- the actor -------------------------------------------------------------------------

    async def run(self) -> None:
        call = self.ctx.call
        with structlog.contextvars.bound_contextvars(
            tracking_guid=call.tracking_guid,
            campaign=call.campaign,
            call_uuid=call.carrier_call_id,
        ):
            try:
                if self._attribute is not None:  # a tracking number: is the lead a referral?
                    details = await self._attribute(call.dialled_number, self.ctx.now())
                    if details is not None:
                        call = replace(call, details=details)
                        self.ctx.call = self.referee.call = call
                self.ctx.event(
                    "call.started",
                    lead_phone=call.lead_phone,
                    dialled=call.dialled_number,
                    plantype=call.plantype,
                    referral_id=call.details.referral_id,
                )
                if not await self._claim():
                    self.ctx.journal.clear()  # nothing of ours belongs to that call's log
                    return  # another instance routes this lead (a carrier retry reached us)
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    nursery.start_soon(self._dispatch)
                    try:
                        self.outcome = await self._route()
                        if self._ended_by_operator:
                            await self._hang_up_quietly(call.carrier_call_id)
                    finally:
                        nursery.cancel_scope.cancel(reason="call finished")
            finally:
                if not self._duplicate:
                    with trio.CancelScope(shield=True), trio.move_on_after(FINALIZE_TIMEOUT_S):
                        await self._finish()

    async def _claim(self) -> bool:
        """Claim the call in the directory before anything goes out (docs/contract.md §11).

        False when the call's row is already there, owned elsewhere: the lead's answer request
        was retried and reached us too. The owner routes it; this supervisor leaves without a
        trace. A directory that cannot be reached does not stop the call: it is routed here.
        """
        state = CallState.IVR if self.campaign.ivr is not None else CallState.INITIAL_POST
        try:
            claim = await self._ownership.claim(self.ctx.call, state)
        except StoreError as exc:
            self.ctx.event("call.claim_failed", error=str(exc), level="error")
            return True
        finally:
            self.claim_settled.set()
        if claim.claimed:
            self.in_directory = True
            return True
        self._duplicate = True
        logger.info("call.duplicate_elsewhere", owner=claim.owner_id)
        return False

    async def _dispatch(self) -> None:
        """The one reader of the mailbox: every decision about this call is made here."""
        referee = self.referee
        async with self._inbox_recv:
            async for event, slot in self._inbox_recv:
                late = slot is not None and slot.abandoned
                if late and isinstance(event, LegAnswered | LegDigits):
                    # The carrier was already told to release this agent: never a winner.
                    self.apply(referee.released(event))
                    continue
                if late and isinstance(event, IvrAnswered):
                    # The carrier already put the lead in the room: as if they kept silent.
                    self.apply(referee.handle(replace(event, digits=""), self.now()).effects)
                    continue
                handled = referee.handle(event, self.now())
                self.apply(handled.effects)
                if slot is not None:
                    slot.put(handled.decision if handled.decision is not None else Release())
                await self.ctx.flush()

    async def _end_stray(self, request_id: str, call_id: str) -> None:
        failed = await self.ctx.teardown.end(Target(request_id, call_id))
        if failed:
            self.ctx.event(
                "leg.end_failed",
                error=failed,
                request_id=request_id,
                call_id=call_id,
                level="error",
            )

    def _lead_gone(self) -> None:
        """The lead hung up. Before a winner: stop routing at once (every leg ends). A lead the
        IVR forwarded is not routed any more: its reduced Step 1 still goes out, once."""
        if self._forwarded:
            return
        if self.state in (
            CallState.IVR,
            CallState.INITIAL_POST,
            CallState.WAITING_PLAN,
            CallState.DIALLING,
        ):
            self._route_scope.cancel(reason="lead hung up")

    async def _set_state(self, state: CallState) -> None:
        self.state = state
        await self.ctx.recorder.record(CallStateChanged(self.tracking_guid, state, self.ctx.now()))

    # --- phases ----------------------------------------------------------------------------

    async def _route(self) -> Outcome:
        referee = self.referee
        with self._route_scope:
            if self.campaign.ivr is not None and not await self._ask_ivr(self.campaign.ivr):
                await self._initial_post(reduced=True)
                return Outcome.redirected()
            await self._initial_post()
            if self.plan is None:
                await self._set_state(CallState.WAITING_PLAN)
                with trio.move_on_after(self.ctx.routing.plan_timeout_s):
                    await self._plan_ready.wait()
            if self.plan is None:
                await self._give_up_plan()
            plan = self.plan
            if plan is None:
                self.state = CallState.VOICEMAIL  # the directory has it: Step 2 answers 409 now
                return await self._voicemail("plan_timeout")
            await self.ctx.recorder.record(
                PlanAccepted(self.tracking_guid, plan.fingerprint(), plan.agents, self.ctx.now())
            )
            self.ctx.event(
                "plan.received", agents=len(plan.agents), tiers=[t.number for t in plan.tiers]
            )
            if plan.no_agents:
                await self._set_state(CallState.VOICEMAIL)
                return await self._voicemail("no_agents")
            await self._set_state(CallState.DIALLING)
            for tier in plan.tiers:
                if await self._run_tier(tier):
                    break
                self.ctx.event("tier.exhausted", tier=tier.number)
        winner = referee.winner
        if winner is not None:
            return await self._connected(winner)
        if self.state is CallState.IVR:  # the lead hung up during the question
            await self._initial_post(reduced=True)
            return Outcome.hung_up()
        if referee.lead_gone:
            return Outcome.hung_up()
        await self._set_state(CallState.VOICEMAIL)
        return await self._voicemail("all_tiers_failed")

    async def _give_up_plan(self) -> None:
        """The plan timeout, settled by the directory against a plan committed at the same
        moment (possibly on another instance): the plan, if there is one, wins."""
        try:
            plan = await self._ownership.give_up(self.tracking_guid, CallState.VOICEMAIL)
        except (StoreError, ValueError) as exc:
            self.ctx.event("plan.timeout_unsettled", error=str(exc), level="warning")
            return
        if plan is not None and self.plan is None:
            self.ctx.event("plan.arrived_at_timeout")
            self.take_plan(plan)

    async def _ask_ivr(self, menu: IvrMenu) -> bool:
        """The campaign's question (docs/contract.md §8). False if the lead chose to be
        forwarded."""
        await self._set_state(CallState.IVR)
        referee = self.referee
        referee.ivr_menu = menu
        self.ctx.event("ivr.asked", keys=menu.keys)
        limit = (menu.timeout_s + IVR_PROMPT_ALLOWANCE_S) * (menu.retries + 1) + TIER_SLACK_S
        with trio.move_on_after(limit):
            await self.signal(Signal.IVR_ANSWERED).wait()
        choice = referee.ivr_choice
        referee.ivr_menu = None  # from here on, a late answer just joins the room
        if choice is None:
            self.ctx.event("ivr.timed_out", after_s=limit, level="warning")
            return True
        if choice.redirect_to:
            self._forwarded = True
            self.ctx.event("call.redirected", to=choice.redirect_to)
            return False
        self.ctx.call = self.referee.call = replace(self.ctx.call, plantype=choice.plantype)
        await self._set_state(CallState.INITIAL_POST)
        # durable before Step 1 goes out: a plan may arrive at any instance right after it
        with trio.move_on_after(FINALIZE_TIMEOUT_S):
            await self.ctx.recorder.flush()
        return True

    async def _initial_post(self, *, reduced: bool = False) -> None:
        """Step 1: tell the customer about the call; its answer may already carry the plan.

        ``reduced``: the "hung up or redirected" variant of the API doc (no plan expected).
        """
        call = self.ctx.call
        fields = call.initial_post_fields(reduced=reduced)
        reply = None
        sent_at = trio.current_time()
        with trio.move_on_after(self._initial_post_timeout_s) as scope:
            try:
                reply = await self._customer.initial_post(self.campaign.initial_post_url, fields)
            except OrchestratorError as exc:
                self.ctx.event(
                    "step1.failed",
                    reason=str(exc),
                    level="warning",
                    latency_s=round(trio.current_time() - sent_at, 4),
                )
        if scope.cancelled_caught:
            self.ctx.event(
                "step1.failed",
                reason="timeout",
                level="warning",
                timeout_s=self._initial_post_timeout_s,
                latency_s=round(trio.current_time() - sent_at, 4),
            )
        if reply is None:
            return
        self.ctx.event(
            "step1.sent",
            status=reply.status,
            reduced=reduced,
            latency_s=round(trio.current_time() - sent_at, 4),
        )
        if reduced or self.plan is not None or not plan_fields_present(reply.fields):
            return
        body = dict(reply.fields)
        if not any(k.lower() == "trackingguid" for k in body):
            body["TrackingGUID"] = call.tracking_guid
        try:
            plan = parse_routing_plan(body)
        except PlanRejected as exc:
            self.ctx.event(
                "step1.plan_rejected", problems=[str(p) for p in exc.problems], level="warning"
            )
            return
        if plan.tracking_guid != call.tracking_guid:
            self.ctx.event(
                "step1.plan_rejected", problems=["TrackingGUID names another call"], level="warning"
            )
            return
        try:
            committed = await self._ownership.commit(plan)
        except StoreError as exc:
            self.ctx.event("step1.plan_uncommitted", error=str(exc), level="warning")
            committed = PlanCommit.COMMITTED  # route it here all the same
        if committed is PlanCommit.CONFLICT:
            self.ctx.event(
                "step1.plan_rejected", problems=["the call already has a plan"], level="warning"
            )
            return
        self.ctx.event("plan.synchronous")
        self.take_plan(plan)

    async def _run_tier(self, tier: Tier) -> bool:
        """Ring every agent of ``tier`` at once; True if one accepted. Returns only once every
        leg of the tier has ended (the winner's excepted)."""
        self.tiers_tried.append(tier.number)
        race = self.referee.open_race(tier.number)
        if self._signals is not None:
            self._signals.pop(Signal.TIER_DECIDED, None)  # each tier is decided anew
        self.ctx.event("tier.started", tier=tier.number, agents=[a.agent_id for a in tier.agents])
        routing = self.ctx.routing
        async with trio.open_nursery() as placing:
            try:
                ringing: set[str] = set()
                for agent in tier.agents:
                    # docs/contract.md §4.8: never ring one phone twice at once
                    if agent.phone in ringing:
                        self.ctx.event(
                            "leg.skipped",
                            agent_id=agent.agent_id,
                            phone=agent.phone,
                            reason="phone already ringing in this tier",
                        )
                        continue
                    ringing.add(agent.phone)
                    leg = Leg(self._new_leg_id(), agent, tier.number)
                    self.referee.add_leg(leg)
                    await placing.start(place_leg, leg, self)
                self.apply(self.referee.all_started())
                limit = routing.ring_timeout_s + routing.accept_timeout_s + TIER_SLACK_S
                with trio.move_on_after(limit):
                    await self.signal(Signal.TIER_DECIDED).wait()
                if not race.decided:
                    self.ctx.event(
                        "tier.timed_out", tier=tier.number, after_s=limit, level="warning"
                    )
                    self.apply(self.referee.tier_timed_out(self.now()))
            finally:
                race.closing = True
                placing.cancel_scope.cancel()  # legs still waiting for the rate limit: not placed
                await end_legs(race.legs, self)
        self.referee.close_race()
        await self.ctx.flush()
        return race.winner is not None

    async def _connected(self, winner: Leg) -> Outcome:
        await self._set_state(CallState.CONNECTED)
        self._connected_at = self.referee.won_at or trio.current_time()
        self.ctx.event(
            "call.connected",
            agent_id=winner.agent.agent_id,
            leg_id=winner.leg_id,
            tier=winner.tier,
            wait_s=round(self._connected_at - self._started, 3),
        )
        referee = self.referee
        async with trio.open_nursery() as nursery:
            # The call is over when either side leaves; the other side is then hung up.
            async def until(event: trio.Event) -> None:
                await event.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(until, self.signal(Signal.WINNER_GONE))
            nursery.start_soon(until, self.signal(Signal.LEAD_GONE))
        await self._hang_up_quietly(winner.call_id)
        await self._hang_up_quietly(self.ctx.call.carrier_call_id)
        with trio.move_on_after(RECORDING_GRACE_S):
            await self.signal(Signal.RECORDING_READY).wait()
        return Outcome.connected(winner.agent.agent_id, referee.recording_url)

    async def _voicemail(self, reason: str) -> Outcome:
        referee = self.referee
        self.ctx.event("call.voicemail", reason=reason)
        if referee.lead_gone:
            return Outcome.hung_up()
        try:
            await self.ctx.carrier.redirect_lead(
                self.ctx.call.carrier_call_id, self.tracking_guid, LeadTarget.VOICEMAIL
            )
        except CarrierError as exc:
            self.ctx.event("call.voicemail_failed", error=str(exc), level="error")
            await self._hang_up_quietly(self.ctx.call.carrier_call_id)
            return Outcome.hung_up()
        # The voicemail document hangs up after the message; the recording follows.
        with trio.move_on_after(self.ctx.routing.voicemail_max_s + VOICEMAIL_GRACE_S):
            await self.signal(Signal.LEAD_GONE).wait()
        with trio.move_on_after(VOICEMAIL_GRACE_S):
            await self.signal(Signal.VOICEMAIL_READY).wait()
        if not referee.lead_gone:
            await self._hang_up_quietly(self.ctx.call.carrier_call_id)
        if referee.voicemail is not None and referee.voicemail.url:
            return Outcome.voicemail(referee.voicemail.url)
        return Outcome.hung_up()

    async def _hang_up_quietly(self, call_id: str) -> None:
        """Hang up the lead's or the winner's call (the teardown retries if the carrier fails)."""
        failed = await self.ctx.teardown.end(Target(call_id=call_id))
        if failed:
            self.ctx.event("call.hangup_failed", call_id=call_id, error=failed, level="warning")

    async def _finish(self) -> None:
        """Decide and record the one outcome (shielded: runs even when cancelled)."""
        outcome = self.outcome
        if outcome is None:
            # Cancelled (service shutdown) or crashed: decide from what is known.
            referee = self.referee
            self.ctx.event("call.aborted", state=self.state.value, level="error")
            if referee.winner is not None:
                outcome = Outcome.connected(referee.winner.agent.agent_id, referee.recording_url)
            elif referee.voicemail is not None:
                outcome = Outcome.voicemail(referee.voicemail.url)
            else:
                outcome = Outcome.hung_up()
                if not referee.lead_gone:
                    await self._hang_up_quietly(self.ctx.call.carrier_call_id)
            self.outcome = outcome
        self.state = CallState.FINISHED
        call = self.ctx.call
        fields = outcome.post_fields(
            tracking_guid=call.tracking_guid, referral_id=call.details.referral_id
        )
        await self.ctx.recorder.record(
            CallFinished(
                call.tracking_guid,
                outcome,
                call.details.referral_id,
                self.campaign.outcome_post_url,
                self.ctx.now(),
            )
        )
        winner = self.referee.winner
        now = trio.current_time()
        self.ctx.event(
            "call.finished",
            outcome=outcome.kind.value,
            agent1_id=outcome.agent1_id,
            message_link=outcome.message_link,
            winner_agent_id=winner.agent.agent_id if winner else None,
            tiers_tried=self.tiers_tried,
            legs=len(self.referee.legs),
            duration_s=round(now - self._started, 3),
            time_to_connect_s=(
                round(self._connected_at - self._started, 3) if self._connected_at else None
            ),
        )
        await self.ctx.flush()
        await self._outcomes.send(call.tracking_guid, self.campaign.outcome_post_url, fields)
        self.finished.set()
