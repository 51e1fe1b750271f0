"""One agent leg: its state (owned by the call's dispatcher) and its actor (the I/O task).

The dispatcher changes a :class:`Leg` only from its single task, synchronously, so every
decision about a leg (and about who won) is atomic. The leg actor does the carrier I/O:
originate, then wait until the leg is over, and — unless it won — end it at the carrier in a
shielded, time-bounded cleanup, so a leg started is a leg ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import structlog
import trio

from orchestrator.errors import CarrierError
from orchestrator.model import LegResult, PlanAgent
from orchestrator.ports import LegRequest
from orchestrator.records import LegStarted, LegUpdated

if TYPE_CHECKING:
    from actors.context import CallContext

logger = structlog.get_logger()

#: How long the shielded cleanup may take to end a leg at the carrier.
CLEANUP_TIMEOUT_S = 10.0
#: Extra time past ring + accept timeouts before we stop waiting for the carrier to tell us a
#: leg ended and end it ourselves (a lost callback must not hold a tier forever).
LEG_SLACK_S = 10.0


class LegPhase(StrEnum):
    DIALLING = "dialling"  # originate sent or queued
    RINGING = "ringing"
    WHISPERING = "whispering"  # answered, hearing the whisper, may press 1
    CONNECTED = "connected"  # won: bridged to the lead
    ENDING = "ending"  # result known; waiting for the carrier to end it
    ENDED = "ended"


@dataclass(slots=True, eq=False)
class Leg:
    leg_id: str
    agent: PlanAgent
    tier: int
    phase: LegPhase = LegPhase.DIALLING
    request_id: str = ""
    call_id: str = ""
    result: LegResult | None = None
    won: bool = False
    started_at: float = 0.0  # trio clock
    answered_at: float | None = None  # trio clock
    ended: trio.Event | None = None  # set when the carrier says the leg is over

    def __post_init__(self) -> None:
        self.ended = trio.Event()

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
        assert self.ended is not None
        self.ended.set()


async def run_leg(
    leg: Leg, ctx: CallContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Place ``leg`` and keep it until it is over.

    Cancellation: cancelling this task (another leg won, the lead hung up, the call is shutting
    down) ends the leg at the carrier — a ringing request is cancelled, an answered call hung up,
    an originate still in flight is cancelled as soon as its request id arrives (the carrier port
    returns the id of a call it placed even when cancelled meanwhile) — unless this leg won.
    """
    agent = leg.agent
    with structlog.contextvars.bound_contextvars(
        leg_id=leg.leg_id, agent_id=agent.agent_id, tier=leg.tier
    ):
        caller_id = ctx.call.lead_phone if agent.show_real_caller_id else ctx.caller_id
        request = LegRequest(
            tracking_guid=ctx.call.tracking_guid,
            leg_id=leg.leg_id,
            to=agent.phone,
            caller_id=caller_id,
            ring_timeout_s=ctx.routing.ring_timeout_s,
            caller_name=ctx.call.plantype,
        )
        leg.started_at = trio.current_time()
        await ctx.recorder.record(
            LegStarted(
                ctx.call.tracking_guid, leg.leg_id, agent.agent_id, agent.phone, leg.tier,
                agent.row, ctx.now(),
            )
        )
        # Reported before the originate so the tier starts legs strictly in AgentRow order.
        task_status.started()
        try:
            try:
                leg.request_id = await ctx.carrier.originate(request)
            except CarrierError as exc:
                ctx.event("leg.failed", error=str(exc), phone=agent.phone)
                leg.mark_over(LegResult.FAILED)
                return
            ctx.event("leg.originated", request_id=leg.request_id, phone=agent.phone,
                      caller_id=caller_id)
            await ctx.recorder.record(
                LegUpdated(ctx.call.tracking_guid, leg.leg_id, ctx.now(), request_id=leg.request_id)
            )
            limit = ctx.routing.ring_timeout_s + ctx.routing.accept_timeout_s + LEG_SLACK_S
            with trio.move_on_after(limit):
                assert leg.ended is not None
                await leg.ended.wait()
            if not leg.over and not leg.won:
                ctx.event("leg.timed_out", phase=leg.phase.value, after_s=limit)
                answered = leg.answered_at is not None
                leg.settle(LegResult.NO_INPUT if answered else LegResult.NO_ANSWER)
        finally:
            if not leg.won:
                with trio.CancelScope(shield=True):
                    await _end_at_carrier(leg, ctx)
                    await ctx.recorder.record(
                        LegUpdated(
                            ctx.call.tracking_guid, leg.leg_id, ctx.now(),
                            carrier_call_id=leg.call_id or None, ended_at=ctx.now(),
                            result=leg.result,
                        )
                    )
                    ctx.event("leg.ended", result=(leg.result or LegResult.CANCELLED).value,
                              duration_s=round(trio.current_time() - leg.started_at, 3))


async def _end_at_carrier(leg: Leg, ctx: CallContext) -> None:
    """End a leg that is not over yet: hang up if answered, else cancel the request."""
    if leg.over:
        return
    leg.settle(LegResult.CANCELLED)
    with trio.move_on_after(CLEANUP_TIMEOUT_S) as scope:
        try:
            if leg.call_id:
                await ctx.carrier.hangup(leg.call_id)
            elif leg.request_id:
                await ctx.carrier.cancel(leg.request_id)
        except CarrierError as exc:
            ctx.event("leg.end_failed", error=str(exc), request_id=leg.request_id,
                      call_id=leg.call_id, level="error")
    if scope.cancelled_caught:
        ctx.event("leg.end_timed_out", request_id=leg.request_id, call_id=leg.call_id,
                  level="error")
    leg.mark_over(leg.result or LegResult.CANCELLED)
