"""Turn a batch of write records into a few bulk parameter lists. Pure: no SQL, no I/O, no trio.

Why this shape: the call actors' records arrive interleaved (call A's event, call B's leg,
call A's state, ...), so executing them one by one costs one statement (on PostgreSQL one round
trip) per record. Instead, a batch is *planned*: each kind of write becomes one parameter list,
executed as one ``executemany`` per stage, in an order that respects every dependency:

1. calls inserted (``CallStarted``; the first of duplicates wins, later ones do nothing)
2. plan fingerprints set, agents upserted (``PlanAccepted``)
3. legs inserted (``LegStarted``)
4. leg updates, merged per leg (later non-None fields win), grouped by the columns they set
5. call state changes, coalesced per call (the last one wins)
6. events appended, in the order recorded (their ids keep that order)
7. calls finished and their outbox rows inserted (``CallFinished``)
8. failed outbox attempts noted (``OutboxAttempted``), then rows marked delivered or dead
   (``OutboxDelivered``)

Why reordering is safe: within one call, records only ever move *forward* (started, plan, legs,
states, finish), and the statements are written so that the end state is the same as in queue
order: a state change never touches a finished call (so one applied before the finish is simply
overwritten by it), the first finish wins, duplicates of inserts do nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

from orchestrator.model import CallState
from orchestrator.records import (
    CallFinished,
    CallStarted,
    CallStateChanged,
    EventLogged,
    LegStarted,
    LegUpdated,
    OutboxAttempted,
    OutboxDelivered,
    PlanAccepted,
)
from orchestrator.records import Record as StoreRecord

Params = dict[str, Any]

#: The leg columns a ``LegUpdated`` may set.
LEG_UPDATE_COLUMNS = ("request_id", "carrier_call_id", "answered_at", "ended_at", "result")


@dataclass(slots=True)
class BatchPlan:
    """The parameter lists of one batch, one per statement (see the module docstring).

    ``leg_updates`` maps the tuple of columns an update sets to the parameters of every leg
    update with exactly those columns. Update parameters use ``b_``-prefixed names.
    """

    calls: list[Params] = field(default_factory=list)
    plans: list[Params] = field(default_factory=list)
    agents: list[Params] = field(default_factory=list)
    legs: list[Params] = field(default_factory=list)
    leg_updates: dict[tuple[str, ...], list[Params]] = field(default_factory=dict)
    states: list[Params] = field(default_factory=list)
    events: list[Params] = field(default_factory=list)
    finishes: list[Params] = field(default_factory=list)
    outbox: list[Params] = field(default_factory=list)
    attempted: list[Params] = field(default_factory=list)
    delivered: list[Params] = field(default_factory=list)
    dead: list[Params] = field(default_factory=list)


def call_row(record: CallStarted) -> Params:
    call = record.call
    return {
        "tracking_guid": call.tracking_guid,
        "carrier_call_id": call.carrier_call_id,
        "campaign": call.campaign,
        "lead_phone": call.lead_phone,
        "dialled_number": call.dialled_number,
        "referral_id": call.details.referral_id,
        "plantype": call.plantype,
        "state": CallState.INITIAL_POST.value,
        "plan_fingerprint": None,
        "started_at": record.at,
        "updated_at": record.at,
        "finished_at": None,
        "outcome": None,
        "agent1_id": None,
        "message_link": None,
    }


def leg_row(record: LegStarted) -> Params:
    return {
        "leg_id": record.leg_id,
        "tracking_guid": record.tracking_guid,
        "agent_id": record.agent_id,
        "phone": record.phone,
        "tier": record.tier,
        "row": record.row,
        "request_id": None,
        "carrier_call_id": None,
        "started_at": record.at,
        "answered_at": None,
        "ended_at": None,
        "result": None,
    }


def leg_changes(record: LegUpdated) -> Params:
    """The columns this update sets: only the fields that are not None."""
    changes: Params = {
        "request_id": record.request_id,
        "carrier_call_id": record.carrier_call_id,
        "answered_at": record.answered_at,
        "ended_at": record.ended_at,
        "result": None if record.result is None else record.result.value,
    }
    return {name: value for name, value in changes.items() if value is not None}


def event_row(record: EventLogged) -> Params:
    return {
        "tracking_guid": record.tracking_guid,
        "event": record.event,
        "at": record.at,
        "detail": record.detail,
    }


def outbox_row(record: CallFinished) -> Params:
    """The outbox row of a finished call: the Step 3 form fields as a JSON object."""
    fields = record.outcome.post_fields(
        tracking_guid=record.tracking_guid, referral_id=record.referral_id
    )
    return {
        "tracking_guid": record.tracking_guid,
        "url": record.outcome_post_url,
        "body": orjson.dumps(fields).decode(),
        "created_at": record.at,
        "attempts": 0,
        "next_attempt_at": record.at,
        "delivered_at": None,
        "dead": False,
        "last_error": "",
        "host": urlsplit(record.outcome_post_url).netloc,
    }


def plan_batch(records: Iterable[StoreRecord]) -> BatchPlan:
    """Plan ``records`` (in queue order) as bulk parameter lists."""
    plan = BatchPlan()
    calls: dict[str, Params] = {}
    plans: dict[str, Params] = {}
    agents: dict[int, Params] = {}
    leg_changes_by_leg: dict[str, Params] = {}
    states: dict[str, Params] = {}
    finishes: dict[str, CallFinished] = {}
    for record in records:
        if isinstance(record, CallStarted):
            calls.setdefault(record.call.tracking_guid, call_row(record))
        elif isinstance(record, CallStateChanged):
            states[record.tracking_guid] = {
                "b_guid": record.tracking_guid,
                "b_state": record.state.value,
                "b_at": record.at,
            }
        elif isinstance(record, PlanAccepted):
            plans[record.tracking_guid] = {
                "b_guid": record.tracking_guid,
                "b_fingerprint": record.fingerprint,
                "b_at": record.at,
            }
            for agent in record.agents:
                seen = agents.get(agent.agent_id)
                first_seen = record.at if seen is None else seen["first_seen"]
                agents[agent.agent_id] = {
                    "agent_id": agent.agent_id,
                    "name": agent.name,
                    "email": agent.email,
                    "phone": agent.phone,
                    "nmls": agent.nmls,
                    "five_min_apps": agent.five_min_apps,
                    "first_seen": first_seen,
                    "last_seen": record.at,
                }
        elif isinstance(record, LegStarted):
            plan.legs.append(leg_row(record))
        elif isinstance(record, LegUpdated):
            changes = leg_changes(record)
            if changes:
                leg_changes_by_leg.setdefault(record.leg_id, {}).update(changes)
        elif isinstance(record, EventLogged):
            plan.events.append(event_row(record))
        elif isinstance(record, CallFinished):
            finishes.setdefault(record.tracking_guid, record)
        elif isinstance(record, OutboxAttempted):
            plan.attempted.append(
                {
                    "b_guid": record.tracking_guid,
                    "b_attempts": record.attempts,
                    "b_next": record.next_attempt_at,
                    "b_error": record.last_error,
                }
            )
        elif isinstance(record, OutboxDelivered):
            if record.dead:
                plan.dead.append(
                    {
                        "b_guid": record.tracking_guid,
                        "b_attempts": record.attempts,
                        "b_error": record.last_error,
                    }
                )
            else:
                plan.delivered.append(
                    {
                        "b_guid": record.tracking_guid,
                        "b_at": record.at,
                        "b_attempts": record.attempts,
                    }
                )
        else:
            raise TypeError(f"not a store record: {record!r}")
    plan.calls = list(calls.values())
    plan.plans = list(plans.values())
    plan.agents = list(agents.values())
    for leg_id, changes in leg_changes_by_leg.items():
        columns = tuple(c for c in LEG_UPDATE_COLUMNS if c in changes)
        params = {f"b_{c}": changes[c] for c in columns}
        params["b_leg"] = leg_id
        plan.leg_updates.setdefault(columns, []).append(params)
    plan.states = list(states.values())
    for record in finishes.values():
        outcome = record.outcome
        plan.finishes.append(
            {
                "b_guid": record.tracking_guid,
                "b_at": record.at,
                "b_outcome": outcome.kind.value,
                "b_agent1_id": outcome.agent1_id,
                "b_message_link": outcome.message_link,
            }
        )
        plan.outbox.append(outbox_row(record))
    return plan
