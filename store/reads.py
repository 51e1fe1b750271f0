"""The store's queries (sync; run in a worker thread by :class:`store.sqlstore.SqlStore`).

Each function opens one connection, reads, and turns rows into the frozen views of
:mod:`orchestrator.read_models`. SQLAlchemy errors propagate; the caller maps them to
``StoreError``.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Engine, Row, func, select

from orchestrator.model import CallState, LeadDetails, LegResult, OutcomeKind
from orchestrator.read_models import (
    AgentView,
    CallView,
    EventView,
    LegView,
    OutboxView,
)
from orchestrator.referral_records import Referral
from store.tables import AGENTS, ALL_TABLES, CALL_EVENTS, CALLS, LEGS, OUTBOX, REFERRALS


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


def unfinished_calls(engine: Engine) -> list[CallView]:
    """Every call not finished (what a crash left in flight), oldest first, with legs/events."""
    with engine.connect() as conn:
        guids = (
            conn.execute(
                select(CALLS.c.tracking_guid)
                .where(CALLS.c.finished_at.is_(None))
                .order_by(CALLS.c.started_at)
            )
            .scalars()
            .all()
        )
    calls = [get_call(engine, guid) for guid in guids]
    return [call for call in calls if call is not None]


def get_agent(engine: Engine, agent_id: int) -> AgentView | None:
    with engine.connect() as conn:
        row = conn.execute(select(AGENTS).where(AGENTS.c.agent_id == agent_id)).first()
    return None if row is None else agent_view(row)


def agent_view(row: Row[Any]) -> AgentView:
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
    return [outbox_view(row) for row in rows]


def outbox_view(row: Row[Any]) -> OutboxView:
    m = row._mapping
    return OutboxView(
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


def referral_from_row(row: Row[Any]) -> Referral:
    m = row._mapping
    return Referral(
        referral_id=m["referral_id"],
        campaign=m["campaign"],
        tracking_number=m["tracking_number"],
        details=LeadDetails(
            referral_id=m["referral_id"],
            first_name=m["first_name"],
            last_name=m["last_name"],
            full_name=m["full_name"],
            city=m["city"],
            state=m["state"],
            zip=m["zip"],
        ),
        assigned_at=m["assigned_at"],
        expires_at=m["expires_at"],
    )


def get_referral(engine: Engine, referral_id: int) -> Referral | None:
    with engine.connect() as conn:
        row = conn.execute(select(REFERRALS).where(REFERRALS.c.referral_id == referral_id)).first()
    return None if row is None else referral_from_row(row)
