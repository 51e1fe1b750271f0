"""The store's queries (sync; run in a worker thread by :class:`store.sqlstore.SqlStore`).

Each function opens one connection, reads, and turns rows into the frozen views of
:mod:`store.views`. SQLAlchemy errors propagate; the caller maps them to ``StoreError``.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Engine, Row, func, select

from orchestrator.model import CallState, LegResult, OutcomeKind
from store.tables import AGENTS, ALL_TABLES, CALL_EVENTS, CALLS, LEGS, OUTBOX
from store.views import AgentView, CallView, EventView, LegView, OutboxView


def _leg(row: Row[Any]) -> LegView:
    m = row._mapping
    return LegView(
        leg_id=m["leg_id"],
        tracking_guid=m["tracking_guid"],
        agent_id=m["agent_id"],
        phone=m["phone"],
        tier=m["tier"],
        row=m["row"],
        request_id=m["request_id"],
        carrier_call_id=m["carrier_call_id"],
        started_at=m["started_at"],
        answered_at=m["answered_at"],
        ended_at=m["ended_at"],
        result=None if m["result"] is None else LegResult(m["result"]),
    )


def _event(row: Row[Any]) -> EventView:
    m = row._mapping
    return EventView(
        id=m["id"],
        tracking_guid=m["tracking_guid"],
        event=m["event"],
        at=m["at"],
        detail=m["detail"],
    )


def get_call(engine: Engine, tracking_guid: str) -> CallView | None:
    """The call with its legs (by start time, then tier and row) and events (by append order)."""
    with engine.connect() as conn:
        row = conn.execute(select(CALLS).where(CALLS.c.tracking_guid == tracking_guid)).first()
        if row is None:
            return None
        legs = conn.execute(
            select(LEGS)
            .where(LEGS.c.tracking_guid == tracking_guid)
            .order_by(LEGS.c.started_at, LEGS.c.tier, LEGS.c.row, LEGS.c.leg_id)
        ).all()
        events = conn.execute(
            select(CALL_EVENTS)
            .where(CALL_EVENTS.c.tracking_guid == tracking_guid)
            .order_by(CALL_EVENTS.c.id)
        ).all()
    m = row._mapping
    return CallView(
        tracking_guid=m["tracking_guid"],
        carrier_call_id=m["carrier_call_id"],
        campaign=m["campaign"],
        lead_phone=m["lead_phone"],
        dialled_number=m["dialled_number"],
        referral_id=m["referral_id"],
        plantype=m["plantype"],
        state=CallState(m["state"]),
        plan_fingerprint=m["plan_fingerprint"],
        started_at=m["started_at"],
        updated_at=m["updated_at"],
        finished_at=m["finished_at"],
        outcome=None if m["outcome"] is None else OutcomeKind(m["outcome"]),
        agent1_id=m["agent1_id"],
        message_link=m["message_link"],
        legs=tuple(_leg(r) for r in legs),
        events=tuple(_event(r) for r in events),
    )


def get_agent(engine: Engine, agent_id: int) -> AgentView | None:
    with engine.connect() as conn:
        row = conn.execute(select(AGENTS).where(AGENTS.c.agent_id == agent_id)).first()
    if row is None:
        return None
    m = row._mapping
    return AgentView(
        agent_id=m["agent_id"],
        name=m["name"],
        email=m["email"],
        phone=m["phone"],
        nmls=m["nmls"],
        five_min_apps=bool(m["five_min_apps"]),
        first_seen=m["first_seen"],
        last_seen=m["last_seen"],
    )


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows in every table, by table name."""
    with engine.connect() as conn:
        return {
            table.name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for table in ALL_TABLES
        }


def outbox_pending(engine: Engine, limit: int) -> list[OutboxView]:
    """Up to ``limit`` posts neither delivered nor dead, soonest ``next_attempt_at`` first."""
    query = (
        select(OUTBOX)
        .where(OUTBOX.c.delivered_at.is_(None), OUTBOX.c.dead.is_(False))
        .order_by(OUTBOX.c.next_attempt_at, OUTBOX.c.tracking_guid)
        .limit(limit)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    views = []
    for row in rows:
        m = row._mapping
        views.append(
            OutboxView(
                tracking_guid=m["tracking_guid"],
                url=m["url"],
                fields=orjson.loads(m["body"]),
                created_at=m["created_at"],
                attempts=m["attempts"],
                next_attempt_at=m["next_attempt_at"],
                delivered_at=m["delivered_at"],
                dead=bool(m["dead"]),
                last_error=m["last_error"],
            )
        )
    return views
