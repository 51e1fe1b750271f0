"""Restart safety: finish the calls a crash left in flight.

At start-up, before taking new calls, every unfinished call whose owner holds no live lease (an
earlier incarnation of this instance, a crashed one; never a live instance's calls) is adopted
and finalized:

- its legs still live at the carrier are ended (answered: hung up; ringing: cancelled), and the
  lead's call is hung up — nobody is listening for its callbacks any more, and a lead must not
  hear hold music forever. A call that was **connected** is the exception: agent and lead are
  talking in the carrier's conference, which does not need us; it is left alone.
- its outcome is decided from what the store knows — an accepted leg: connected (with the
  recording link if it had arrived); a recorded voicemail: 0 with its link; otherwise 999999 —
  and recorded with its outbox row (``CallFinished``), so the outbox deliverer posts it exactly
  once;
- a ``call.recovered`` line is logged (and journalled) with what was done.

``plan_recovery`` is the pure decision; ``recover_calls`` does the I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog
import trio

from actors.teardown import Target, Teardown
from orchestrator.config import Settings
from orchestrator.model import CallState, LegResult, Outcome
from orchestrator.ports import Recorder
from orchestrator.records import CallFinished, EventLogged, LegUpdated, Record

logger = structlog.get_logger()


class StoredLeg(Protocol):
    @property
    def leg_id(self) -> str: ...
    @property
    def agent_id(self) -> int: ...
    @property
    def request_id(self) -> str | None: ...
    @property
    def carrier_call_id(self) -> str | None: ...
    @property
    def ended_at(self) -> float | None: ...
    @property
    def result(self) -> LegResult | None: ...


class StoredEvent(Protocol):
    @property
    def event(self) -> str: ...
    @property
    def detail(self) -> str: ...


class UnfinishedCall(Protocol):
    @property
    def tracking_guid(self) -> str: ...
    @property
    def carrier_call_id(self) -> str: ...
    @property
    def campaign(self) -> str: ...
    @property
    def referral_id(self) -> int: ...
    @property
    def state(self) -> CallState: ...
    @property
    def legs(self) -> Sequence[StoredLeg]: ...
    @property
    def events(self) -> Sequence[StoredEvent]: ...


@dataclass(frozen=True, slots=True)
class LegToEnd:
    leg_id: str
    request_id: str = ""
    call_id: str = ""


@dataclass(frozen=True, slots=True)
class Recovery:
    tracking_guid: str
    outcome: Outcome
    legs_to_end: tuple[LegToEnd, ...]
    hang_up_lead: bool


def _event_url(call: UnfinishedCall, name: str) -> str:
    for event in reversed(call.events):
        if event.event == name and event.detail:
            try:
                url = json.loads(event.detail).get("url", "")
            except ValueError:
                continue
            if isinstance(url, str) and url:
                return url
    return ""


def plan_recovery(call: UnfinishedCall) -> Recovery:
    """What to do with a call a crash left unfinished (pure; see the module docstring)."""
    winner = next((leg for leg in call.legs if leg.result is LegResult.ACCEPTED), None)
    connected = winner is not None or call.state is CallState.CONNECTED
    legs = tuple(
        LegToEnd(leg.leg_id, leg.request_id or "", leg.carrier_call_id or "")
        for leg in call.legs
        if leg.ended_at is None and leg is not winner and (leg.request_id or leg.carrier_call_id)
    )
    if winner is not None:
        outcome = Outcome.connected(winner.agent_id, _event_url(call, "call.recording_ready"))
    elif voicemail := _event_url(call, "call.voicemail_recorded"):
        outcome = Outcome.voicemail(voicemail)
    else:
        outcome = Outcome.hung_up()
    return Recovery(call.tracking_guid, outcome, legs, hang_up_lead=not connected)


async def recover_calls(
    calls: Sequence[UnfinishedCall],
    teardown: Teardown,
    recorder: Recorder,
    settings: Settings,
    *,
    now: Callable[[], float],
) -> int:
    """Finalize ``calls`` (the orphans this instance adopted: their owner's lease is gone,
    ``store.cluster.adopt_orphans``); return how many there were."""
    for call in calls:
        with structlog.contextvars.bound_contextvars(
            tracking_guid=call.tracking_guid,
            campaign=call.campaign,
            call_uuid=call.carrier_call_id,
        ):
            await _recover(call, plan_recovery(call), teardown, recorder, settings, now)
    return len(calls)


async def _recover(
    call: UnfinishedCall,
    plan: Recovery,
    teardown: Teardown,
    recorder: Recorder,
    settings: Settings,
    now: Callable[[], float],
) -> None:
    failures: list[str] = []

    async def end(what: str, target: Target) -> None:
        error = await teardown.end(target)  # retried in the background if it failed
        if error is not None:
            failures.append(f"{what} {target.call_id or target.request_id}: {error}")

    async with trio.open_nursery() as nursery:
        for leg in plan.legs_to_end:
            what = "hangup" if leg.call_id else "cancel"
            nursery.start_soon(end, what, Target(leg.request_id, leg.call_id))
        if plan.hang_up_lead and call.carrier_call_id:
            nursery.start_soon(end, "hangup lead", Target(call_id=call.carrier_call_id))
    campaign = settings.campaign_named(call.campaign)
    url = campaign.outcome_post_url if campaign else ""
    at = now()
    detail = {
        "state": call.state.value,
        "outcome": plan.outcome.kind.value,
        "agent1_id": plan.outcome.agent1_id,
        "legs_ended": len(plan.legs_to_end),
        "lead_hung_up": plan.hang_up_lead,
        "failures": failures,
    }
    records: list[Record] = [
        LegUpdated(call.tracking_guid, leg.leg_id, at, ended_at=at, result=LegResult.CANCELLED)
        for leg in plan.legs_to_end
    ]
    records.append(EventLogged(call.tracking_guid, "call.recovered", at, json.dumps(detail)))
    records.append(CallFinished(call.tracking_guid, plan.outcome, call.referral_id, url, at))
    await recorder.record(*records)
    level = "error" if failures or campaign is None else "warning"
    getattr(logger, level)("call.recovered", **detail, campaign_configured=campaign is not None)
