"""Call history SQL (``GET /calls``, ``GET /calls/{guid}``, ``GET /agents``): from a parsed
query (:mod:`orchestrator.history_query`) to rows.

Two layers: **SQL** (pure) — :func:`calls_select` / :func:`agents_select` build the Core
``SELECT``; **reads** (sync; :class:`store.sqlstore.SqlStore` runs them in a worker thread) —
:func:`list_calls`, :func:`call_record`, :func:`list_agents`. Paging is keyset (see
:mod:`orchestrator.history_query`): the cursor is the key of a page's last row, and the next
page holds the rows strictly after it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Engine, Row, Select, and_, func, or_, select

from orchestrator.history_query import (
    AGENTS_CURSOR,
    CALLS_CURSOR,
    AgentQuery,
    CallQuery,
    encode_cursor,
)
from orchestrator.model import CallState, LegResult, OutcomeKind
from orchestrator.read_models import (
    AgentActivity,
    AgentPage,
    CallPage,
    CallRecord,
    CallSummary,
)
from store import reads
from store.tables import AGENTS, CALLS, LEGS, OUTBOX

# --- SQL -----------------------------------------------------------------------------------------


def _after(at: Any, key: Any, cursor: tuple[float, Any]) -> ColumnElement[bool]:
    """Rows strictly after ``cursor`` in ``(at, key)`` descending order."""
    cursor_at, cursor_key = cursor
    return or_(at < cursor_at, and_(at == cursor_at, key < cursor_key))


def calls_select(query: CallQuery) -> Select[Any]:
    """Up to ``limit + 1`` calls matching ``query``, newest first (the extra row says whether
    there is a next page). Columns: the call's, ``agent_name``, ``legs`` and ``tiers``."""
    of_call = LEGS.c.tracking_guid == CALLS.c.tracking_guid
    legs = select(func.count()).select_from(LEGS).where(of_call).scalar_subquery()
    tiers = select(func.count(func.distinct(LEGS.c.tier))).where(of_call).scalar_subquery()
    winner = and_(
        AGENTS.c.agent_id == CALLS.c.agent1_id, CALLS.c.outcome == OutcomeKind.CONNECTED.value
    )
    conditions: list[ColumnElement[bool]] = []
    if query.since is not None:
        conditions.append(CALLS.c.started_at >= query.since)
    if query.until is not None:
        conditions.append(CALLS.c.started_at < query.until)
    if query.campaigns:
        conditions.append(CALLS.c.campaign.in_(query.campaigns))
    if query.outcomes:
        conditions.append(CALLS.c.outcome.in_([kind.value for kind in query.outcomes]))
    if query.phone is not None:
        conditions.append(CALLS.c.lead_phone == query.phone)
    if query.agent_id is not None:
        conditions.append(
            select(LEGS.c.leg_id).where(of_call, LEGS.c.agent_id == query.agent_id).exists()
        )
    if query.after is not None:
        conditions.append(_after(CALLS.c.started_at, CALLS.c.tracking_guid, query.after))
    return (
        select(
            CALLS.c.tracking_guid,
            CALLS.c.campaign,
            CALLS.c.lead_phone,
            CALLS.c.dialled_number,
            CALLS.c.referral_id,
            CALLS.c.plantype,
            CALLS.c.state,
            CALLS.c.started_at,
            CALLS.c.finished_at,
            CALLS.c.outcome,
            CALLS.c.agent1_id,
            CALLS.c.message_link,
            AGENTS.c.name.label("agent_name"),
            legs.label("legs"),
            tiers.label("tiers"),
        )
        .select_from(CALLS.outerjoin(AGENTS, winner))
        .where(*conditions)
        .order_by(CALLS.c.started_at.desc(), CALLS.c.tracking_guid.desc())
        .limit(query.limit + 1)
    )


def agents_select(query: AgentQuery) -> Select[Any]:
    """Up to ``limit + 1`` agents matching ``query``, newest ``first_seen`` first, with their
    ``legs`` and ``accepted`` counts."""
    of_agent = LEGS.c.agent_id == AGENTS.c.agent_id
    legs = select(func.count()).select_from(LEGS).where(of_agent).scalar_subquery()
    accepted = (
        select(func.count())
        .select_from(LEGS)
        .where(of_agent, LEGS.c.result == LegResult.ACCEPTED.value)
        .scalar_subquery()
    )
    conditions: list[ColumnElement[bool]] = []
    if query.since is not None:
        conditions.append(AGENTS.c.last_seen >= query.since)
    if query.until is not None:
        conditions.append(AGENTS.c.first_seen < query.until)
    if query.phone is not None:
        conditions.append(AGENTS.c.phone == query.phone)
    if query.name is not None:
        conditions.append(func.lower(AGENTS.c.name).contains(query.name.lower(), autoescape=True))
    if query.agent_id is not None:
        conditions.append(AGENTS.c.agent_id == query.agent_id)
    if query.after is not None:
        conditions.append(_after(AGENTS.c.first_seen, AGENTS.c.agent_id, query.after))
    return (
        select(AGENTS, legs.label("legs"), accepted.label("accepted"))
        .where(*conditions)
        .order_by(AGENTS.c.first_seen.desc(), AGENTS.c.agent_id.desc())
        .limit(query.limit + 1)
    )


# --- reads (sync) ------------------------------------------------------------------------------


def _summary(row: Row[Any]) -> CallSummary:
    m = row._mapping
    return CallSummary(
        tracking_guid=m["tracking_guid"],
        campaign=m["campaign"],
        lead_phone=m["lead_phone"],
        dialled_number=m["dialled_number"],
        referral_id=m["referral_id"],
        plantype=m["plantype"],
        state=CallState(m["state"]),
        started_at=m["started_at"],
        finished_at=m["finished_at"],
        outcome=None if m["outcome"] is None else OutcomeKind(m["outcome"]),
        agent1_id=m["agent1_id"],
        agent_name=m["agent_name"] or "",
        message_link=m["message_link"],
        legs=int(m["legs"]),
        tiers=int(m["tiers"]),
    )


def list_calls(engine: Engine, query: CallQuery) -> CallPage:
    """One page of calls matching ``query`` (see the module docstring on paging)."""
    with engine.connect() as conn:
        rows = conn.execute(calls_select(query)).all()
    page = tuple(_summary(row) for row in rows[: query.limit])
    cursor = None
    if len(rows) > query.limit:
        last = page[-1]
        cursor = encode_cursor(CALLS_CURSOR, last.started_at, last.tracking_guid)
    return CallPage(page, cursor)


def list_agents(engine: Engine, query: AgentQuery) -> AgentPage:
    """One page of agents matching ``query``, with their leg counts."""
    with engine.connect() as conn:
        rows = conn.execute(agents_select(query)).all()
    page = tuple(
        AgentActivity(
            reads.agent_view(row), int(row._mapping["legs"]), int(row._mapping["accepted"])
        )
        for row in rows[: query.limit]
    )
    cursor = None
    if len(rows) > query.limit:
        last = page[-1].agent
        cursor = encode_cursor(AGENTS_CURSOR, last.first_seen, last.agent_id)
    return AgentPage(page, cursor)


def call_record(engine: Engine, tracking_guid: str) -> CallRecord | None:
    """The call with its legs and events, its agents' names and its Step 3 post; None if the
    call was never recorded."""
    call = reads.get_call(engine, tracking_guid)
    if call is None:
        return None
    agent_ids = {leg.agent_id for leg in call.legs}
    if call.outcome is OutcomeKind.CONNECTED and call.agent1_id is not None:
        agent_ids.add(call.agent1_id)
    with engine.connect() as conn:
        names: dict[int, str] = {}
        if agent_ids:
            found = conn.execute(
                select(AGENTS.c.agent_id, AGENTS.c.name).where(AGENTS.c.agent_id.in_(agent_ids))
            ).all()
            names = {int(agent_id): name for agent_id, name in found}
        row = conn.execute(select(OUTBOX).where(OUTBOX.c.tracking_guid == tracking_guid)).first()
    return CallRecord(call, names, None if row is None else reads.outbox_view(row))
