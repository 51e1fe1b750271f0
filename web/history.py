"""Call history and the admin hangup (README "Operating it"): operator routes, behind the token.

Routes (every one needs the operator token, see :mod:`web.operator_auth`; 401 without it):

- ``GET /calls`` — calls newest first; filters ``since``/``until`` (ISO 8601, no offset = UTC,
  or epoch seconds; on ``started_at``, until exclusive), ``campaign``, ``outcome``
  (connected, voicemail, hung_up, redirected; both may be repeated or comma-separated),
  ``phone`` (the lead's, any format), ``agent`` (AgentID: calls where that agent had a leg),
  ``limit`` (1-500, default 50) and ``cursor`` (the ``next_cursor`` of the previous page).
  JSON ``{"calls": [...], "next_cursor": ...}``, or CSV with ``format=csv`` or
  ``Accept: text/csv`` (the next cursor then in the ``X-Next-Cursor`` header).
- ``GET /calls/{TrackingGUID}`` — the call, its legs (agent name from the agents table, tier,
  times, result), its event log (``detail`` parsed), its Step 3 delivery, and for a live call
  the orchestrator's snapshot under ``live`` (else ``null``). 404 if unknown.
- ``GET /agents`` — agents newest first seen first, with first/last seen and how many legs
  rang them and how many they won; filters ``since`` (last seen at or after), ``until`` (first
  seen before), ``phone``, ``name`` (contains, any case), ``agent``; paged like ``/calls``.
- ``POST /calls/{TrackingGUID}/hangup`` — end a live call (optional ``reason``, query or form
  or JSON, at most 200 characters): 202 ``{"status": "ending"}``; every leg and the lead end
  and the outcome is recorded and posted as usual. 404 unknown; 409 already finished (or not
  in progress on this instance).

Bad parameters get 400 ``{"error": "invalid request", "problems": [{field, index, message}]}``
listing every problem; a store that cannot be read, 503. Nothing here ever shows a credential:
every answer is scrubbed of the carrier's auth token, the operator token, the campaigns' API keys
and Step 3 signing secrets, and the store's password (the carrier's Auth ID is an account id,
and is part of Plivo's recording URLs, so it stays). CSV cells that a spreadsheet would run as a
formula (starting with ``=``, ``+``, ``-``, ``@``) are prefixed with ``'``.

The rendering and parameter handling are pure functions, tested without HTTP; the routes only
read, render and answer.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

import orjson
import structlog
from quart import Blueprint, Response, request
from quart.typing import ResponseReturnValue

from orchestrator.config import Settings
from orchestrator.errors import BodyError, BodyTooLarge, Problem, QueryRejected, StoreError
from orchestrator.history_query import (
    AgentQuery,
    CallQuery,
    Params,
    parse_agent_query,
    parse_call_query,
)
from orchestrator.ids import canonical_guid
from orchestrator.model import OutcomeKind
from orchestrator.read_models import (
    AgentActivity,
    AgentPage,
    CallPage,
    CallRecord,
    CallSummary,
    LegView,
)
from web.fields import read_fields
from web.operator_auth import TOKEN_PARAM, require_operator_token

logger = structlog.get_logger()

JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"
NEXT_CURSOR_HEADER = "X-Next-Cursor"
FORMAT_PARAM = "format"
#: Longest ``reason`` an operator may give a hangup (it goes into the call's event log).
MAX_REASON = 200
DEFAULT_REASON = "operator"
#: Secrets shorter than this are not scrubbed (they would match ordinary text).
MIN_SECRET = 6
REDACTED = "***"

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

#: Columns of ``GET /calls`` rows (JSON keys and CSV header, in this order).
CALL_COLUMNS = (
    "tracking_guid",
    "started_at",
    "finished_at",
    "duration_s",
    "campaign",
    "lead_phone",
    "dialled_number",
    "referral_id",
    "plantype",
    "state",
    "outcome",
    "agent1_id",
    "agent_name",
    "legs",
    "tiers",
    "message_link",
)
#: Columns of ``GET /agents`` rows.
AGENT_COLUMNS = (
    "agent_id",
    "name",
    "email",
    "phone",
    "nmls",
    "five_min_apps",
    "first_seen",
    "last_seen",
    "legs",
    "accepted",
)

Json = dict[str, object]
_Q = TypeVar("_Q", CallQuery, AgentQuery)


class OperatorCalls(Protocol):
    """The orchestrator as the operator routes need it (``orchestrator.service.Orchestrator``)."""

    def live_snapshot(self) -> list[dict[str, object]]: ...

    async def hang_up(self, tracking_guid: str, reason: str) -> bool | None:
        """End the live call here or on the instance that owns it: True ended, False not live
        anywhere, None its owner did not answer."""
        ...


class HistoryStore(Protocol):
    """The store's history reads (``store.SqlStore``)."""

    async def list_calls(self, query: CallQuery) -> CallPage: ...

    async def call_record(self, tracking_guid: str) -> CallRecord | None: ...

    async def list_agents(self, query: AgentQuery) -> AgentPage: ...


# --- rendering (pure) ----------------------------------------------------------------------------


def iso(epoch_s: float | None) -> str | None:
    """ISO 8601 UTC with milliseconds (``2026-11-29T10:42:00.125Z``); None stays None."""
    if epoch_s is None:
        return None
    moment = datetime.fromtimestamp(epoch_s, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _seconds(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round(end - start, 3)


def call_row(call: CallSummary) -> Json:
    """One ``GET /calls`` row (:data:`CALL_COLUMNS`)."""
    return {
        "tracking_guid": call.tracking_guid,
        "started_at": iso(call.started_at),
        "finished_at": iso(call.finished_at),
        "duration_s": _seconds(call.started_at, call.finished_at),
        "campaign": call.campaign,
        "lead_phone": call.lead_phone,
        "dialled_number": call.dialled_number,
        "referral_id": call.referral_id,
        "plantype": call.plantype,
        "state": call.state.value,
        "outcome": None if call.outcome is None else call.outcome.value,
        "agent1_id": call.agent1_id,
        "agent_name": call.agent_name,
        "legs": call.legs,
        "tiers": call.tiers,
        "message_link": call.message_link,
    }


def agent_row(activity: AgentActivity) -> Json:
    """One ``GET /agents`` row (:data:`AGENT_COLUMNS`)."""
    agent = activity.agent
    return {
        "agent_id": agent.agent_id,
        "name": agent.name,
        "email": agent.email,
        "phone": agent.phone,
        "nmls": agent.nmls,
        "five_min_apps": agent.five_min_apps,
        "first_seen": iso(agent.first_seen),
        "last_seen": iso(agent.last_seen),
        "legs": activity.legs,
        "accepted": activity.accepted,
    }


def _leg(leg: LegView, names: Mapping[int, str]) -> Json:
    return {
        "leg_id": leg.leg_id,
        "agent_id": leg.agent_id,
        "name": names.get(leg.agent_id, ""),
        "phone": leg.phone,
        "tier": leg.tier,
        "row": leg.row,
        "started_at": iso(leg.started_at),
        "answered_at": iso(leg.answered_at),
        "ended_at": iso(leg.ended_at),
        "result": None if leg.result is None else leg.result.value,
        "carrier_call_id": leg.carrier_call_id,
        "request_id": leg.request_id,
    }


def _detail(text: str) -> object:
    """An event's detail: the JSON it was recorded as ({} if none; the text if not JSON)."""
    if not text:
        return {}
    try:
        parsed: object = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    return parsed


def call_json(record: CallRecord, live: Mapping[str, object] | None) -> Json:
    """The ``GET /calls/{guid}`` body of a stored call (``live``: its snapshot, if live)."""
    call = record.call
    winner = ""
    if call.outcome is OutcomeKind.CONNECTED and call.agent1_id is not None:
        winner = record.agent_names.get(call.agent1_id, "")
    outbox = record.outbox
    step3: Json | None = None
    if outbox is not None:
        step3 = {
            "created_at": iso(outbox.created_at),
            "delivered_at": iso(outbox.delivered_at),
            "attempts": outbox.attempts,
            "next_attempt_at": None
            if outbox.delivered_at is not None or outbox.dead
            else iso(outbox.next_attempt_at),
            "dead": outbox.dead,
            "last_error": outbox.last_error,
            "fields": dict(outbox.fields),
        }
    return {
        "tracking_guid": call.tracking_guid,
        "carrier_call_id": call.carrier_call_id,
        "campaign": call.campaign,
        "lead_phone": call.lead_phone,
        "dialled_number": call.dialled_number,
        "referral_id": call.referral_id,
        "plantype": call.plantype,
        "state": call.state.value,
        "plan_received": call.plan_fingerprint is not None,
        "started_at": iso(call.started_at),
        "updated_at": iso(call.updated_at),
        "finished_at": iso(call.finished_at),
        "duration_s": _seconds(call.started_at, call.finished_at),
        "outcome": None if call.outcome is None else call.outcome.value,
        "agent1_id": call.agent1_id,
        "agent_name": winner,
        "message_link": call.message_link,
        "legs": [_leg(leg, record.agent_names) for leg in call.legs],
        "events": [
            {
                "at": iso(event.at),
                "offset_s": round(event.at - call.started_at, 3),
                "event": event.event,
                "detail": _detail(event.detail),
            }
            for event in call.events
        ],
        "step3": step3,
        "live": dict(live) if live is not None else None,
    }


def live_only_json(live: Mapping[str, object]) -> Json:
    """The body for a live call the store has not committed yet (its first records are
    still queued): what the snapshot knows, the stored fields null."""
    return {
        "tracking_guid": live.get("tracking_guid"),
        "carrier_call_id": None,
        "campaign": live.get("campaign"),
        "lead_phone": live.get("lead_phone"),
        "dialled_number": None,
        "referral_id": None,
        "plantype": live.get("plantype"),
        "state": live.get("state"),
        "plan_received": None,
        "started_at": None,
        "updated_at": None,
        "finished_at": None,
        "duration_s": None,
        "outcome": None,
        "agent1_id": None,
        "agent_name": "",
        "message_link": None,
        "legs": [],
        "events": [],
        "step3": None,
        "live": dict(live),
    }


def csv_cell(value: object) -> str:
    """A CSV cell: "" for None, 1/0 for booleans, and text a spreadsheet would run as a
    formula prefixed with ``'``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def to_csv(columns: Sequence[str], rows: Iterable[Mapping[str, object]]) -> str:
    """A header line of ``columns`` and one line per row (CRLF line ends, RFC 4180)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(row.get(column)) for column in columns])
    return out.getvalue()


def response_format(values: Sequence[str], accepted: str | None) -> str:
    """``"json"`` or ``"csv"``: the ``format`` parameter if given, else the best of the
    ``Accept`` header (``accepted``: the preferred of JSON and CSV it names), else JSON.

    Raises:
        QueryRejected: an unknown or repeated ``format``.
    """
    given = [v.strip().lower() for v in values if v.strip()]
    if len(given) > 1:
        raise QueryRejected([Problem(FORMAT_PARAM, "given more than once")])
    if given:
        if given[0] not in ("json", "csv"):
            raise QueryRejected([Problem(FORMAT_PARAM, f"must be json or csv, got {given[0]!r}")])
        return given[0]
    return "csv" if accepted == CSV_TYPE else "json"


def tracking_guid_of(text: str) -> str:
    """The TrackingGUID of a path segment (any case), lower-cased.

    Raises:
        QueryRejected: not a UUID.
    """
    guid = canonical_guid(text)
    if guid is None:
        raise QueryRejected([Problem("TrackingGUID", f"must be a UUID, got {text[:60]!r}")])
    return guid


def hangup_reason(values: Sequence[str]) -> str:
    """The operator's reason for a hangup (default ``operator``).

    Raises:
        QueryRejected: longer than :data:`MAX_REASON` or not printable text.
    """
    given = [v.strip() for v in values if v.strip()]
    if not given:
        return DEFAULT_REASON
    reason = given[0]
    if len(reason) > MAX_REASON or not reason.isprintable():
        raise QueryRejected(
            [Problem("reason", f"must be printable text of at most {MAX_REASON} characters")]
        )
    return reason


class Redactor:
    """Replaces every occurrence of known secrets in strings, recursively."""

    __slots__ = ("_secrets",)

    def __init__(self, secrets: Iterable[str]) -> None:
        # longest first, so a secret containing another is replaced whole
        unique = {s for s in secrets if len(s) >= MIN_SECRET}
        self._secrets = tuple(sorted(unique, key=len, reverse=True))

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def __call__(self, value: object) -> object:
        if not self._secrets:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self(item) for item in value]
        return value


def secrets_of(settings: Settings) -> list[str]:
    """Every credential in ``settings`` an answer must never show (see the module docstring)."""
    found = [settings.carrier.auth_token, settings.operator.token]
    for campaign in settings.campaigns:
        found += [campaign.api_key, campaign.outcome_secret]
    password = urlsplit(settings.store.url).password
    if password:
        found.append(password)
    return [secret for secret in found if secret]


# --- the routes ----------------------------------------------------------------------------------


def _invalid(exc: QueryRejected) -> ResponseReturnValue:
    problems = [p.as_dict() for p in exc.problems]
    return {"error": "invalid request", "problems": problems}, 400


def _unreadable(exc: StoreError) -> ResponseReturnValue:
    logger.error("operator.history_unreadable", path=request.path, error=str(exc))
    return {"error": "the call history could not be read; try again"}, 503


def _query_params() -> tuple[dict[str, list[str]], list[str]]:
    """The request's query parameters without ``token``, and the ``format`` values apart."""
    params = request.args.to_dict(flat=False)
    params.pop(TOKEN_PARAM, None)
    return params, params.pop(FORMAT_PARAM, [])


def _negotiated(params: list[str]) -> str:
    accepted = request.accept_mimetypes.best_match([JSON_TYPE, CSV_TYPE])
    return response_format(params, accepted)


async def _reason_values() -> list[str]:
    """``reason`` from the query string, a form body or a JSON object body.

    Raises:
        BodyError: the body cannot be read (:mod:`web.fields`).
    """
    return (await read_fields()).get("reason", [])


def create_history_blueprint(
    calls: OperatorCalls, store: HistoryStore, settings: Settings
) -> Blueprint:
    """The call history routes and the admin hangup (module docstring), answering from the
    live ``calls`` (the orchestrator) and the ``store``, behind ``operator.token``."""
    blueprint = Blueprint("history", __name__)
    require_operator_token(blueprint, settings.operator.token)
    redact = Redactor(secrets_of(settings))

    def json_body(body: Json, status: int = 200) -> Response:
        data = orjson.dumps(redact(body))
        return Response(data, status=status, mimetype=JSON_TYPE)

    def listing(
        fmt: str, key: str, columns: Sequence[str], rows: list[Json], cursor: str | None
    ) -> Response:
        if fmt == "json":
            return json_body({key: rows, "next_cursor": cursor})
        scrubbed = [{k: redact(v) for k, v in row.items()} for row in rows]
        response = Response(to_csv(columns, scrubbed), mimetype=CSV_TYPE)
        response.headers["Content-Disposition"] = f'inline; filename="{key}.csv"'
        if cursor is not None:
            response.headers[NEXT_CURSOR_HEADER] = cursor
        return response

    def parsed(parse: Callable[[Params], _Q]) -> tuple[str, _Q]:
        """The response format and the query; every problem of both at once."""
        params, format_values = _query_params()
        problems: list[Problem] = []
        fmt = "json"
        try:
            fmt = _negotiated(format_values)
        except QueryRejected as exc:
            problems += exc.problems
        try:
            query = parse(params)
        except QueryRejected as exc:
            raise QueryRejected(problems + exc.problems) from None
        if problems:
            raise QueryRejected(problems)
        return fmt, query

    @blueprint.get("/calls")
    async def list_calls() -> ResponseReturnValue:
        try:
            fmt, query = parsed(parse_call_query)
        except QueryRejected as exc:
            return _invalid(exc)
        try:
            page = await store.list_calls(query)
        except StoreError as exc:
            return _unreadable(exc)
        rows = [call_row(call) for call in page.calls]
        return listing(fmt, "calls", CALL_COLUMNS, rows, page.next_cursor)

    @blueprint.get("/agents")
    async def list_agents() -> ResponseReturnValue:
        try:
            fmt, query = parsed(parse_agent_query)
        except QueryRejected as exc:
            return _invalid(exc)
        try:
            page = await store.list_agents(query)
        except StoreError as exc:
            return _unreadable(exc)
        rows = [agent_row(agent) for agent in page.agents]
        return listing(fmt, "agents", AGENT_COLUMNS, rows, page.next_cursor)

    @blueprint.get("/calls/<guid>")
    async def show_call(guid: str) -> ResponseReturnValue:
        params, format_values = _query_params()
        problems: list[Problem] = [
            Problem(name, "unknown parameter (this route takes none)") for name in params
        ]
        if any(v.strip().lower() not in ("", "json") for v in format_values):
            problems.append(Problem(FORMAT_PARAM, "a single call is JSON only"))
        try:
            guid = tracking_guid_of(guid)
        except QueryRejected as exc:
            problems += exc.problems
        if problems:
            return _invalid(QueryRejected(problems))
        live = next(
            (snap for snap in calls.live_snapshot() if snap.get("tracking_guid") == guid), None
        )
        try:
            record = await store.call_record(guid)
        except StoreError as exc:
            return _unreadable(exc)
        if record is not None:
            return json_body(call_json(record, live))
        if live is not None:
            return json_body(live_only_json(live))
        return {"error": f"no call with TrackingGUID {guid}"}, 404

    @blueprint.post("/calls/<guid>/hangup")
    async def hangup(guid: str) -> ResponseReturnValue:
        try:
            guid = tracking_guid_of(guid)
            reason = hangup_reason(await _reason_values())
        except QueryRejected as exc:
            return _invalid(exc)
        except BodyError as exc:
            return {"error": str(exc)}, 413 if isinstance(exc, BodyTooLarge) else 400
        ended = await calls.hang_up(guid, reason)
        if ended:
            logger.warning("operator.hangup_requested", tracking_guid=guid, reason=reason)
            return json_body({"status": "ending", "tracking_guid": guid}, 202)
        if ended is None:
            logger.error("operator.hangup_failed", tracking_guid=guid, reason="owner unreachable")
            return {"error": "the instance that owns this call did not answer; try again"}, 503
        try:
            record = await store.call_record(guid)
        except StoreError as exc:
            return _unreadable(exc)
        if record is None:
            logger.info("operator.hangup_refused", tracking_guid=guid, reason="unknown call")
            return {"error": f"no call with TrackingGUID {guid}"}, 404
        call = record.call
        logger.info(
            "operator.hangup_refused",
            tracking_guid=guid,
            reason="not live",
            finished=call.finished_at is not None,
        )
        if call.finished_at is not None:
            outcome = None if call.outcome is None else call.outcome.value
            return json_body(
                {
                    "error": "the call has already finished",
                    "tracking_guid": guid,
                    "outcome": outcome,
                    "finished_at": iso(call.finished_at),
                },
                409,
            )
        return json_body(
            {
                "error": "the call is not in progress on this instance",
                "tracking_guid": guid,
                "state": call.state.value,
            },
            409,
        )

    return blueprint
