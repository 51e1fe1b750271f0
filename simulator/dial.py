"""The ``<Dial>`` element: ring B legs by their agent scripts, bridge the first to answer.

Simplified from Plivo (docs/plivo.md §4.2 "Dial"): every ``<Number>`` rings at once, each behaving
as its number's :class:`~simulator.scripts.AgentScript` says. The first to answer
within ``timeout`` wins; with ``confirmKey`` the winner is the first whose script presses that
key. The bridge lasts until the B leg's ``talk_s`` / ``hangup_after_s`` runs out (or the A leg
ends). Then ``action`` gets ``DialStatus`` & co. (``redirect`` semantics as everywhere), or the
next element runs. B legs are not separate calls here: they appear in the event log as
``dial.leg`` events under their number, and ``callbackUrl`` gets ``DialAction`` events.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.causes import HangupCause
from simulator.events import EventKind
from simulator.params import call_params, dial_params
from simulator.runtime import Runtime, new_id
from simulator.scripts import AgentScript
from simulator.state import SimCall
from simulator.xml_program import Dial, Step

__all__ = ["BLegPlan", "plan_dial", "run_dial"]

StepOutcome = tuple[Step, ...] | HangupCause | None


@dataclass(frozen=True, slots=True)
class BLegPlan:
    """What one dialled number will do (pure prediction from its script)."""

    number: str
    outcome: str  # "answer", "busy", "failed", "no-answer", "declined"
    at_s: float  # when the outcome happens (answer: when bridged), from the Dial's start
    bridge_s: float | None  # how long the B leg stays bridged (None = until the A leg ends)


def _plan_one(number: str, script: AgentScript, step: Dial, setup_s: float) -> BLegPlan:
    if script.busy:
        return BLegPlan(number, "busy", setup_s, None)
    if script.fail:
        return BLegPlan(number, "failed", setup_s, None)
    answer_at = setup_s + script.answer_after_s
    if script.no_answer or answer_at >= setup_s + step.timeout:
        return BLegPlan(number, "no-answer", setup_s + step.timeout, None)
    bridged_at = answer_at
    if step.confirm_key:
        if script.press is None or script.press_after_s > step.confirm_timeout:
            return BLegPlan(number, "declined", answer_at + min(step.confirm_timeout, 120.0), None)
        if not script.press.startswith(step.confirm_key):
            return BLegPlan(number, "declined", answer_at + script.press_after_s, None)
        bridged_at = answer_at + script.press_after_s
    limits = [x for x in (script.talk_s,) if x is not None]
    if script.hangup_after_s is not None:
        limits.append(max(0.0, answer_at + script.hangup_after_s - bridged_at))
    return BLegPlan(number, "answer", bridged_at, min(limits) if limits else None)


def plan_dial(step: Dial, scripts: dict[str, AgentScript], setup_s: float) -> list[BLegPlan]:
    """Predict every B leg (pure). ``scripts`` maps each ``<Number>`` to its script."""
    return [_plan_one(n.number, scripts[n.number], step, setup_s) for n in step.numbers]


def _winner(plans: list[BLegPlan]) -> BLegPlan | None:
    answering = [p for p in plans if p.outcome == "answer"]
    return min(answering, key=lambda p: p.at_s) if answering else None


def _dial_status(plans: list[BLegPlan]) -> tuple[str, str]:
    outcomes = {p.outcome for p in plans}
    if outcomes == {"busy"}:
        return "busy", "USER_BUSY"
    if outcomes == {"failed"}:
        return "failed", "DESTINATION_OUT_OF_ORDER"
    return "no-answer", "NO_ANSWER"


async def run_dial(rt: Runtime, call: SimCall, step: Dial) -> StepOutcome:
    """Execute ``<Dial>`` for ``call``; return what the call does next."""
    scripts = {n.number: rt.scripts.for_number(n.number) for n in step.numbers}
    plans = plan_dial(step, scripts, rt.timings.setup_s)
    winner = _winner(plans)
    b_leg_uuid = new_id() if winner else ""
    for plan in plans:
        rt.log.add(
            EventKind.DIAL_LEG,
            call_uuid=call.call_uuid,
            number=plan.number,
            outcome=plan.outcome if plan is winner or plan.outcome != "answer" else "lost",
            at_s=plan.at_s,
        )
    callback_base = call_params(call.ident, "in-progress")

    async def dial_event(action: str, extra: dict[str, str]) -> None:
        if step.callback_url:
            params = dict(
                callback_base,
                DialAction=action,
                DialALegUUID=call.call_uuid,
                DialBLegUUID=b_leg_uuid,
                **extra,
            )
            await rt.notify(
                call, step.callback_url, step.callback_method, params, what=f"dial.{action}"
            )

    started = rt.clock.now()
    if winner is None:
        await rt.clock.sleep(max((p.at_s for p in plans), default=0.0))
        status, cause = _dial_status(plans)
    else:
        await rt.clock.sleep(winner.at_s)
        await dial_event("answer", {"DialBLegTo": winner.number, "DialBLegStatus": "answer"})
        call.connected.set()
        await dial_event("connected", {"DialBLegTo": winner.number, "DialBLegStatus": "connected"})
        bridged = rt.clock.now()
        if winner.bridge_s is None:
            await rt.clock.sleep(step.time_limit)
        else:
            await rt.clock.sleep(min(winner.bridge_s, step.time_limit))
        duration = str(round(rt.clock.now() - bridged))
        await dial_event(
            "hangup",
            {
                "DialBLegTo": winner.number,
                "DialBLegStatus": "hangup",
                "DialBLegDuration": duration,
                "DialBLegBillDuration": duration,
                "DialBLegHangupCauseName": "Normal Hangup",
                "DialBLegHangupCauseCode": "4000",
                "DialBLegHangupSource": "Call recipient",
            },
        )
        status, cause = "completed", "NORMAL_CLEARING"
    rt.log.add(
        EventKind.STEP_STARTED,
        call_uuid=call.call_uuid,
        number=call.party_number,
        step="Dial.result",
        status=status,
        took_s=round(rt.clock.now() - started, 3),
    )
    if not step.action:
        return None
    params = call_params(call.ident, "in-progress")
    params.update(
        dial_params(
            a_leg_uuid=call.call_uuid,
            b_leg_uuid=b_leg_uuid,
            status=status,
            hangup_cause=cause,
            rang=any(p.outcome != "failed" for p in plans),
        )
    )
    if step.redirect:
        return await rt.fetch_document(
            call, step.action, step.method, params, kind="action", what="dial.action"
        )
    await rt.notify(call, step.action, step.method, params, what="dial.action")
    return None
