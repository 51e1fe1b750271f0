"""Call history (issue 6 §2): the queries behind ``GET /calls``, ``GET /calls/{guid}`` and
``GET /agents``, from request parameters to rows.

Three layers, each usable on its own:

- **parsing** (pure): :func:`parse_call_query` / :func:`parse_agent_query` turn request
  parameters (``name -> [values]``) into a frozen :class:`CallQuery` / :class:`AgentQuery`, or
  raise :class:`QueryRejected` listing every problem (``field`` = the parameter's name);
- **SQL** (pure): :func:`calls_select` / :func:`agents_select` build the Core ``SELECT``;
- **reads** (sync; :class:`store.sqlstore.SqlStore` runs them in a worker thread):
  :func:`list_calls`, :func:`call_record`, :func:`list_agents`.

Pagination is keyset, not offset. Calls come newest first, by ``(started_at, tracking_guid)``
descending; a page's cursor is the key of its last row and the next page holds the rows
strictly after it. A call inserted while an operator pages through is newer than the cursor
(it would be on page one), so no row is repeated or skipped — with an offset every insert would
shift the later pages by one. Agents page the same way by ``(first_seen, agent_id)``:
``first_seen`` never changes once written (``last_seen`` moves with every plan, so it cannot be
a stable key). The cursor is opaque to clients: URL-safe base64 of a small JSON array tagged
with the list it belongs to, so a cursor of one list is refused by the other.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Engine, Row, Select, and_, func, or_, select

from orchestrator.errors import OrchestratorError, Problem
from orchestrator.model import CallState, LegResult, OutcomeKind
from orchestrator.numbers import to_nanp10
from orchestrator.read_models import (
    AgentActivity,
    AgentPage,
    CallPage,
    CallRecord,
    CallSummary,
)
from store import reads
from store.tables import AGENTS, CALLS, LEGS, OUTBOX

#: Rows per page unless ``limit`` says otherwise, and the most ``limit`` may ask for.
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
#: Longest value accepted for a text filter (campaign and agent names are at most 100).
MAX_TEXT = 100

CALLS_CURSOR = "calls"
AGENTS_CURSOR = "agents"

#: Parameters of ``GET /calls`` and ``GET /agents`` (the web layer strips ``token``/``format``).
CALL_PARAMS = ("since", "until", "campaign", "outcome", "phone", "agent", "limit", "cursor")
AGENT_PARAMS = ("since", "until", "phone", "name", "agent", "limit", "cursor")

Params = Mapping[str, Sequence[str]]

_EPOCH = re.compile(r"\d{1,12}(\.\d{1,9})?")


class QueryRejected(OrchestratorError):
    """The operator's history request has bad parameters; ``problems`` lists every one."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class CallQuery:
    """Which calls to list: every filter given must hold (campaigns/outcomes: any of them).

    ``since`` is inclusive, ``until`` exclusive (epoch seconds of ``started_at``); ``agent_id``
    keeps the calls where that agent had a leg; ``after`` is the decoded cursor.
    """

    since: float | None = None
    until: float | None = None
    campaigns: tuple[str, ...] = ()
    outcomes: tuple[OutcomeKind, ...] = ()
    phone: str | None = None
    agent_id: int | None = None
    limit: int = DEFAULT_LIMIT
    after: tuple[float, str] | None = None


@dataclass(frozen=True, slots=True)
class AgentQuery:
    """Which agents to list: seen since ``since`` (``last_seen`` ≥), first seen before
    ``until`` (``first_seen`` <), with this ``phone``, a ``name`` containing this text (any
    case), or this ``agent_id``."""

    since: float | None = None
    until: float | None = None
    phone: str | None = None
    name: str | None = None
    agent_id: int | None = None
    limit: int = DEFAULT_LIMIT
    after: tuple[float, int] | None = None


# --- parsing -----------------------------------------------------------------------------------


def parse_time(text: str) -> float:
    """Epoch seconds of ``text``: epoch seconds (``1764430000``, ``1764430000.25``) or ISO 8601
    (``2026-11-29``, ``2026-11-29T10:42``, ``2026-11-29T10:42:00-08:00``; no offset means UTC).

    Raises:
        ValueError: neither form.
    """
    value = text.strip()
    if _EPOCH.fullmatch(value):
        return float(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            "must be ISO 8601 (2026-11-29T10:42:00Z) or epoch seconds"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def encode_cursor(kind: str, at: float, key: str | int) -> str:
    """The opaque cursor after the row keyed ``(at, key)`` of list ``kind``."""
    raw = orjson.dumps([kind, at, key])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(kind: str, text: str) -> tuple[float, str | int]:
    """The ``(at, key)`` of a cursor made by :func:`encode_cursor` for list ``kind``.

    Raises:
        ValueError: not such a cursor (garbled, or made for another list).
    """
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        tag, at, key = orjson.loads(raw)
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
        raise ValueError("not a cursor this service handed out") from None
    numeric = isinstance(at, int | float) and not isinstance(at, bool)
    keyed = isinstance(key, str) if kind == CALLS_CURSOR else type(key) is int
    if tag != kind or not numeric or not keyed:
        raise ValueError(f"not a cursor of this list ({kind})")
    return float(at), key


class _ParamReader:
    """Reads request parameters, collecting every problem instead of stopping at the first."""

    def __init__(self, params: Params, known: Sequence[str]) -> None:
        self.params = params
        self.problems: list[Problem] = []
        for name in params:
            if name not in known:
                self.fail(name, f"unknown parameter (expected one of: {', '.join(known)})")

    def fail(self, name: str, message: str) -> None:
        self.problems.append(Problem(name, message))

    def one(self, name: str) -> str | None:
        """The parameter's value; an empty one counts as absent, two values are a problem."""
        values = [v.strip() for v in self.params.get(name, ()) if v.strip()]
        if len(values) > 1:
            self.fail(name, "given more than once")
            return None
        return values[0] if values else None

    def many(self, name: str) -> list[str]:
        """Every value, repeated or comma-separated."""
        return [
            part.strip()
            for value in self.params.get(name, ())
            for part in value.split(",")
            if part.strip()
        ]

    def time(self, name: str) -> float | None:
        text = self.one(name)
        if text is None:
            return None
        try:
            return parse_time(text)
        except ValueError as exc:
            self.fail(name, f"{exc}, got {text!r}")
            return None

    def positive_int(self, name: str, *, most: int | None = None) -> int | None:
        text = self.one(name)
        if text is None:
            return None
        if not text.isdigit() or int(text) < 1 or (most is not None and int(text) > most):
            bound = f" from 1 to {most}" if most is not None else " greater than 0"
            self.fail(name, f"must be a whole number{bound}, got {text!r}")
            return None
        return int(text)

    def phone(self, name: str) -> str | None:
        text = self.one(name)
        if text is None:
            return None
        phone = to_nanp10(text)
        if phone is None:
            self.fail(name, f"must be a 10-digit NANP phone number, got {text!r}")
        return phone

    def text(self, name: str) -> str | None:
        text = self.one(name)
        if text is not None and len(text) > MAX_TEXT:
            self.fail(name, f"must be at most {MAX_TEXT} characters")
            return None
        return text

    def window(self) -> tuple[float | None, float | None]:
        since, until = self.time("since"), self.time("until")
        if since is not None and until is not None and since >= until:
            self.fail("until", "must be later than since")
        return since, until

    def cursor(self, kind: str) -> tuple[float, str | int] | None:
        text = self.one("cursor")
        if text is None:
            return None
        try:
            return decode_cursor(kind, text)
        except ValueError as exc:
            self.fail("cursor", str(exc))
            return None

    def done(self) -> None:
        if self.problems:
            raise QueryRejected(self.problems)


def parse_call_query(params: Params) -> CallQuery:
    """The :class:`CallQuery` of ``GET /calls`` parameters (see :data:`CALL_PARAMS`).

    Raises:
        QueryRejected: every problem found (unknown parameter, bad time, phone, number...).
    """
    reader = _ParamReader(params, CALL_PARAMS)
    since, until = reader.window()
    campaigns = reader.many("campaign")
    for name in campaigns:
        if len(name) > MAX_TEXT:
            reader.fail("campaign", f"must be at most {MAX_TEXT} characters")
    outcomes: list[OutcomeKind] = []
    for text in reader.many("outcome"):
        try:
            outcomes.append(OutcomeKind(text.lower()))
        except ValueError:
            allowed = ", ".join(kind.value for kind in OutcomeKind)
            reader.fail("outcome", f"must be one of {allowed}, got {text!r}")
    phone = reader.phone("phone")
    agent_id = reader.positive_int("agent")
    limit = reader.positive_int("limit", most=MAX_LIMIT)
    after = reader.cursor(CALLS_CURSOR)
    reader.done()
    return CallQuery(
        since=since,
        until=until,
        campaigns=tuple(dict.fromkeys(campaigns)),
        outcomes=tuple(dict.fromkeys(outcomes)),
        phone=phone,
        agent_id=agent_id,
        limit=limit or DEFAULT_LIMIT,
        after=(after[0], str(after[1])) if after is not None else None,
    )


def parse_agent_query(params: Params) -> AgentQuery:
    """The :class:`AgentQuery` of ``GET /agents`` parameters (see :data:`AGENT_PARAMS`).

    Raises:
        QueryRejected: every problem found.
    """
    reader = _ParamReader(params, AGENT_PARAMS)
    since, until = reader.window()
    phone = reader.phone("phone")
    name = reader.text("name")
    agent_id = reader.positive_int("agent")
    limit = reader.positive_int("limit", most=MAX_LIMIT)
    after = reader.cursor(AGENTS_CURSOR)
    reader.done()
    return AgentQuery(
        since=since,
        until=until,
        phone=phone,
        name=name,
        agent_id=agent_id,
        limit=limit or DEFAULT_LIMIT,
        after=(after[0], int(after[1])) if after is not None else None,
    )


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
            CALLS.c.tracking_guid, CALLS.c.campaign, CALLS.c.lead_phone, CALLS.c.dialled_number,
            CALLS.c.referral_id, CALLS.c.plantype, CALLS.c.state, CALLS.c.started_at,
            CALLS.c.finished_at, CALLS.c.outcome, CALLS.c.agent1_id, CALLS.c.message_link,
            AGENTS.c.name.label("agent_name"), legs.label("legs"), tiers.label("tiers"),
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
        conditions.append(
            func.lower(AGENTS.c.name).contains(query.name.lower(), autoescape=True)
        )
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
