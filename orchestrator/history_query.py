"""Call history queries, parsed (pure): the parameters of ``GET /calls`` and ``GET /agents``.

:func:`parse_call_query` / :func:`parse_agent_query` turn request parameters (``name ->
[values]``) into a frozen :class:`CallQuery` / :class:`AgentQuery`, or raise
:class:`~orchestrator.errors.QueryRejected` listing every problem (``field`` = the parameter's
name). The store runs them (:mod:`store.history`); the web layer and ``orchestrator calls``
parse them.

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

import orjson

from orchestrator.errors import Problem, QueryRejected
from orchestrator.model import OutcomeKind
from orchestrator.numbers import to_nanp10

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
        raise ValueError("must be ISO 8601 (2026-11-29T10:42:00Z) or epoch seconds") from None
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
