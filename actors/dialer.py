"""Placing and ending a tier's legs at the carrier: the I/O around the referee.

A ringing leg costs no task: a short-lived task places it (:func:`place_leg`) and the tier ends
whatever is still live when it closes (:func:`end_legs`, through :mod:`actors.teardown`), so a
leg started is a leg ended. Neither decides anything: what a placement or an end means for the
race is the referee's (:class:`~actors.referee.Referee`), whose effects the call carries out
(:meth:`CallSide.apply`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

import structlog
import trio

from actors.race import Leg
from actors.teardown import Target
from orchestrator.errors import CarrierError
from orchestrator.model import LegResult
from orchestrator.ports import LegRequest
from orchestrator.records import LegStarted, LegUpdated

if TYPE_CHECKING:
    from actors.context import CallContext
    from actors.referee import Effect, Now, Referee

#: How long a placed leg waits for its request id to be committed (a restart needs it).
DURABLE_WRITE_TIMEOUT_S = 5.0


class CallSide(Protocol):
    """What placing and ending legs needs from the call (its supervisor)."""

    @property
    def ctx(self) -> CallContext: ...

    @property
    def referee(self) -> Referee: ...

    def now(self) -> Now: ...

    def apply(self, effects: Iterable[Effect]) -> None: ...


async def place_leg(
    leg: Leg,
    call: CallSide,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Originate ``leg``; return once the carrier has taken it (or refused it).

    Cancellation: cancelled while waiting for the outbound rate limit, nothing was placed.
    The carrier port returns the request id of a call it placed even when cancelled
    meanwhile; if the tier has closed by then, the leg is ended here at once.
    """
    ctx, agent = call.ctx, leg.agent
    with structlog.contextvars.bound_contextvars(**leg.log_context()):
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
        try:
            await ctx.recorder.record(
                LegStarted(
                    ctx.call.tracking_guid,
                    leg.leg_id,
                    agent.agent_id,
                    agent.phone,
                    leg.tier,
                    agent.row,
                    ctx.now(),
                )
            )
            # Reported before the originate so the tier places legs strictly in AgentRow order.
            task_status.started()
            leg.request_id = await ctx.carrier.originate(request)
        except CarrierError as exc:
            ctx.event("leg.failed", error=str(exc), phone=agent.phone, level="warning")
            call.apply(call.referee.leg_not_placed(leg, LegResult.FAILED, call.now()))
            return
        except trio.Cancelled:
            call.apply(call.referee.leg_not_placed(leg, LegResult.CANCELLED, call.now()))
            raise
        with trio.CancelScope(shield=True):
            # Durable before anything else: after a crash, recovery ends the legs it can find.
            ctx.note(
                LegUpdated(ctx.call.tracking_guid, leg.leg_id, ctx.now(), request_id=leg.request_id)
            )
            await ctx.flush()
            with trio.move_on_after(DURABLE_WRITE_TIMEOUT_S):
                await ctx.recorder.flush()
            ctx.event(
                "leg.originated", request_id=leg.request_id, phone=agent.phone, caller_id=caller_id
            )
            race = call.referee.race
            if race is None or race.closing or leg not in race.legs:
                await end_legs([leg], call)
            await ctx.flush()


async def end_legs(legs: Iterable[Leg], call: CallSide) -> None:
    """End every given leg that is live and not the winner, all at once (shielded, bounded).

    A leg whose originate is still in flight (no id yet) is left to :func:`place_leg`, which
    ends it as soon as its id arrives.
    """
    todo = [
        leg
        for leg in legs
        if not leg.won and not leg.over and not leg.ending and (leg.request_id or leg.call_id)
    ]
    if not todo:
        return
    for leg in todo:
        leg.ending = True
    with trio.CancelScope(shield=True):
        async with trio.open_nursery() as nursery:
            for leg in todo:
                nursery.start_soon(_end_leg, leg, call)


async def _end_leg(leg: Leg, call: CallSide) -> None:
    """Hang up if answered, else cancel the request (:mod:`actors.teardown`); then record how
    the leg ended."""
    ctx = call.ctx
    with structlog.contextvars.bound_contextvars(**leg.log_context()):
        leg.settle(LegResult.CANCELLED)
        failed = await ctx.teardown.end(Target(leg.request_id, leg.call_id))
        if failed:
            # The agent's phone may still be ringing: the teardown keeps trying.
            ctx.event(
                "leg.end_failed",
                error=failed,
                request_id=leg.request_id,
                call_id=leg.call_id,
                level="error",
            )
        call.apply(call.referee.leg_ended_by_us(leg, call.now()))
        await ctx.flush()
