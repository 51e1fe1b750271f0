"""One agent leg: its state (owned by the call's dispatcher) and the I/O that places and ends it.

The dispatcher changes a :class:`Leg` only from its single task, synchronously, so every
decision about a leg (and about who won) is atomic. A ringing leg costs no task: a short-lived
task places it (:func:`place_leg`) and the tier ends whatever is still live when it closes
(:func:`end_legs`), shielded and time-bounded, so a leg started is a leg ended.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

import structlog
import trio

from actors.teardown import Target
from orchestrator.errors import CarrierError
from orchestrator.messages import Decision
from orchestrator.model import LegResult, PlanAgent
from orchestrator.ports import LegRequest
from orchestrator.records import LegStarted, LegUpdated

if TYPE_CHECKING:
    from actors.context import CallContext

logger = structlog.get_logger()

#: How long a placed leg waits for its request id to be committed (a restart needs it).
DURABLE_WRITE_TIMEOUT_S = 5.0


class LegPhase(StrEnum):
    DIALLING = "dialling"  # originate sent or queued
    RINGING = "ringing"
    WHISPERING = "whispering"  # answered, hearing the whisper, may press 1
    CONNECTED = "connected"  # won: bridged to the lead
    ENDING = "ending"  # its result is known; the carrier is ending it
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
    ending: bool = False  # someone is ending it at the carrier now
    started_at: float = 0.0  # trio clock
    answered_at: float | None = None  # trio clock
    #: What the carrier was told when this leg answered / pressed keys: a carrier retry of
    #: the same request (its first copy timed out on the read) gets the same answer again.
    answer_reply: Decision | None = None
    digits_reply: Decision | None = None

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

    def log_context(self) -> dict[str, object]:
        return {"leg_id": self.leg_id, "agent_id": self.agent.agent_id, "tier": self.tier}


@dataclass(slots=True, eq=False)
class TierRace:
    """The legs of the tier now ringing, and who (if anyone) won it.

    ``decided`` is set once the tier needs nothing more from the carrier: a leg won, or every
    leg of the tier (all started) is over. ``closing`` is set when the tier stops: a leg whose
    request id arrives after that ends itself.
    """

    number: int
    legs: list[Leg] = field(default_factory=list)
    winner: Leg | None = None
    all_started: bool = False
    closing: bool = False
    decided: trio.Event = field(default_factory=trio.Event)

    def review(self) -> None:
        if self.winner is not None or (self.all_started and all(x.over for x in self.legs)):
            self.decided.set()


async def place_leg(
    leg: Leg, race: TierRace, ctx: CallContext,
    *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Originate ``leg``; return once the carrier has taken it (or refused it).

    Cancellation: cancelled while waiting for the outbound rate limit, nothing was placed.
    The carrier port returns the request id of a call it placed even when cancelled
    meanwhile; if the tier has closed by then, the leg is ended here at once.
    """
    agent = leg.agent
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
                LegStarted(ctx.call.tracking_guid, leg.leg_id, agent.agent_id, agent.phone,
                           leg.tier, agent.row, ctx.now())
            )
            # Reported before the originate so the tier places legs strictly in AgentRow order.
            task_status.started()
            leg.request_id = await ctx.carrier.originate(request)
        except CarrierError as exc:
            ctx.event("leg.failed", error=str(exc), phone=agent.phone, level="warning")
            leg.mark_over(LegResult.FAILED)
            leg_ended(leg, ctx)
            race.review()
            return
        except trio.Cancelled:
            leg.mark_over(LegResult.CANCELLED)  # never placed
            leg_ended(leg, ctx)
            raise
        with trio.CancelScope(shield=True):
            # Durable before anything else: after a crash, recovery ends the legs it can find.
            ctx.note(LegUpdated(ctx.call.tracking_guid, leg.leg_id, ctx.now(),
                                request_id=leg.request_id))
            await ctx.flush()
            with trio.move_on_after(DURABLE_WRITE_TIMEOUT_S):
                await ctx.recorder.flush()
            ctx.event("leg.originated", request_id=leg.request_id, phone=agent.phone,
                      caller_id=caller_id)
            if race.closing:
                await end_legs([leg], ctx)
            await ctx.flush()


async def end_legs(legs: Iterable[Leg], ctx: CallContext) -> None:
    """End every given leg that is live and not the winner, all at once (shielded, bounded).

    A leg whose originate is still in flight (no id yet) is left to :func:`place_leg`, which
    ends it as soon as its id arrives.
    """
    todo = [
        leg for leg in legs
        if not leg.won and not leg.over and not leg.ending and (leg.request_id or leg.call_id)
    ]
    if not todo:
        return
    for leg in todo:
        leg.ending = True
    with trio.CancelScope(shield=True):
        async with trio.open_nursery() as nursery:
            for leg in todo:
                nursery.start_soon(_end_leg, leg, ctx)


async def _end_leg(leg: Leg, ctx: CallContext) -> None:
    """Hang up if answered, else cancel the request (:mod:`actors.teardown`); then record how
    the leg ended."""
    with structlog.contextvars.bound_contextvars(**leg.log_context()):
        leg.settle(LegResult.CANCELLED)
        failed = await ctx.teardown.end(Target(leg.request_id, leg.call_id))
        if failed:
            # The agent's phone may still be ringing: the teardown keeps trying.
            ctx.event("leg.end_failed", error=failed, request_id=leg.request_id,
                      call_id=leg.call_id, level="error")
        leg.mark_over(leg.result or LegResult.CANCELLED)
        leg_ended(leg, ctx)
        await ctx.flush()


def leg_ended(leg: Leg, ctx: CallContext) -> None:
    """Log and journal how ``leg`` ended (synchronous: the dispatcher calls it too)."""
    result = leg.result or LegResult.CANCELLED
    ctx.event("leg.ended", result=result.value,
              duration_s=round(trio.current_time() - leg.started_at, 3))
    ctx.note(LegUpdated(ctx.call.tracking_guid, leg.leg_id, ctx.now(),
                        carrier_call_id=leg.call_id or None, ended_at=ctx.now(), result=result))
