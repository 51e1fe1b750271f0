"""Step 2 — the customer posts a routing plan (SPEC §3): ``/responsecollect[.aspx]``.

Accepted as a ``GET`` query string (the API doc's example URL) or a ``POST`` with a form body
(urlencoded or multipart) or a JSON object body; on a ``POST`` the query string counts too, so a
customer that posts the API doc's URL with an empty body is understood. Every source is flattened
into ``dict[str, list[str]]`` (repeated keys kept in order, JSON arrays kept as lists, JSON
scalars stringified) and handed to :func:`orchestrator.plan_parser.parse_routing_plan`, which
matches field names case-insensitively and validates everything before anything is applied.

Answers:

- 200 with ``plan.summary()`` — accepted (or an identical re-post of the plan in effect);
- 400 ``{"error": "invalid routing plan", "problems": [{"field","index","message"}, ...]}`` —
  nothing is handed on and the call keeps waiting; 400 ``{"error": ...}`` for a body that cannot
  be read (malformed JSON, unsupported content type);
- 404 unknown TrackingGUID; 409 the call already has a different plan or no longer waits;
- 401 ``{"error": ...}`` — only with a ``key_check`` (a campaign with ``step2_requires_key``):
  a live call of such a campaign without its API key (``X-Api-Key`` header or ``ApiKey``
  field); checked before validation, nothing changes (see :mod:`web.referrals`).

The field collection (:func:`body_kind`, :func:`fields_from_pairs`, :func:`fields_from_json`,
:func:`merge_fields`, :func:`tracking_guid_of`) is pure; only :func:`create_step2_blueprint`
touches the request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Literal

import orjson
import structlog
from quart import Blueprint, request
from quart.typing import ResponseReturnValue

from orchestrator.errors import CallNotFound, PlanConflict, PlanRejected
from orchestrator.plan_parser import parse_routing_plan
from orchestrator.referrals import API_KEY_CHALLENGE, API_KEY_HEADER
from web.service import CallService

logger = structlog.get_logger()

Fields = dict[str, list[str]]
BodyKind = Literal["none", "form", "json"]

STEP2_PATHS = ("/responsecollect", "/responsecollect.aspx")
#: (TrackingGUID as sent, X-Api-Key header, fields) -> the 401 message, or None to go on.
KeyCheck = Callable[[str | None, str | None, Mapping[str, Sequence[str]]], str | None]
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_SUPPORTED = "application/x-www-form-urlencoded, multipart/form-data or application/json"


class BodyError(ValueError):
    """The request body cannot be turned into fields (HTTP 400); ``str()`` says why."""


# --- pure field collection -------------------------------------------------------------------


def body_kind(mimetype: str) -> BodyKind:
    """How to read a POST body of this (lower-case, parameter-free) media type.

    ``"none"`` means no ``Content-Type`` was sent: only an empty body is acceptable then.

    Raises:
        BodyError: an unsupported media type.
    """
    if not mimetype:
        return "none"
    if mimetype in _FORM_TYPES:
        return "form"
    if mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    ):
        return "json"
    raise BodyError(f"unsupported Content-Type {mimetype!r}; send {_SUPPORTED}")


def fields_from_pairs(pairs: Iterable[tuple[str, str]]) -> Fields:
    """Group ``(key, value)`` pairs by key, keeping repeated keys' values in order."""
    fields: Fields = {}
    for key, value in pairs:
        fields.setdefault(key, []).append(value)
    return fields


def _scalar(field: str, value: object) -> str:
    """A JSON scalar as the text a form would carry (``true`` → ``"1"``, ``null`` → ``""``)."""
    if value is None:
        return ""
    if isinstance(value, bool):  # before int: bool is an int
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value
    raise BodyError(f"JSON field {field!r}: nested objects and arrays are not supported")


def fields_from_json(body: bytes) -> Fields:
    """Fields of a JSON object body: arrays stay lists, scalars are stringified.

    Raises:
        BodyError: not valid JSON, not an object, or a value nested too deep.
    """
    if not body.strip():
        raise BodyError("empty JSON body; send a JSON object of Step 2 fields")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BodyError(f"malformed JSON body: {exc}") from None
    if not isinstance(data, dict):
        raise BodyError(f"JSON body must be an object of fields, got {type(data).__name__}")
    fields: Fields = {}
    for key, value in data.items():
        if isinstance(value, list):
            fields[key] = [_scalar(key, item) for item in value]
        else:
            fields[key] = [_scalar(key, value)]
    return fields


def merge_fields(*sources: Mapping[str, Sequence[str]]) -> Fields:
    """Concatenate several field sources (query string first, then body)."""
    merged: Fields = {}
    for source in sources:
        for key, values in source.items():
            merged.setdefault(key, []).extend(values)
    return merged


def tracking_guid_of(fields: Mapping[str, Sequence[str]]) -> str | None:
    """The TrackingGUID as sent (field name matched case-insensitively), for log lines."""
    for key, values in fields.items():
        if key.lower() == "trackingguid" and values:
            return values[0]
    return None


# --- the route ---------------------------------------------------------------------------------


async def _request_fields() -> Fields:
    """Query string plus, on POST, the body's fields.

    Raises:
        BodyError: the body cannot be read as Step 2 fields.
    """
    query = fields_from_pairs(request.args.items(multi=True))
    if request.method != "POST":
        return query
    kind = body_kind(request.mimetype)
    if kind == "form":
        form = await request.form
        return merge_fields(query, fields_from_pairs(form.items(multi=True)))
    body = await request.get_data(cache=True, as_text=False, parse_form_data=False)
    if kind == "json":
        return merge_fields(query, fields_from_json(body))
    if body.strip():
        raise BodyError(f"request body without a Content-Type; send {_SUPPORTED}")
    return query


def create_step2_blueprint(service: CallService, *, key_check: KeyCheck | None = None) -> Blueprint:
    """The Step 2 routes, handing accepted plans to ``service``; ``key_check`` (optional)
    authenticates them (:class:`web.referrals.Step2KeyCheck`)."""
    blueprint = Blueprint("step2", __name__)

    async def responsecollect() -> ResponseReturnValue:
        try:
            fields = await _request_fields()
        except BodyError as exc:
            logger.warning("plan.rejected", reason=str(exc), problems=0)
            return {"error": str(exc)}, 400
        tracking_guid = tracking_guid_of(fields)
        if key_check is not None:  # Step 2 authentication (per campaign, off by default)
            denied = key_check(tracking_guid, request.headers.get(API_KEY_HEADER), fields)
            if denied is not None:
                return {"error": denied}, 401, {"WWW-Authenticate": API_KEY_CHALLENGE}
        try:
            plan = parse_routing_plan(fields)
        except PlanRejected as exc:
            logger.warning(
                "plan.rejected",
                tracking_guid=tracking_guid,
                problems=len(exc.problems),
                fields=sorted({p.field for p in exc.problems}),
            )
            problems = [p.as_dict() for p in exc.problems]
            return {"error": "invalid routing plan", "problems": problems}, 400
        try:
            in_effect = await service.submit_plan(plan)
        except CallNotFound as exc:
            logger.warning("plan.unknown_call", tracking_guid=plan.tracking_guid)
            return {"error": str(exc) or "unknown TrackingGUID"}, 404
        except PlanConflict as exc:
            logger.warning("plan.conflicted", tracking_guid=plan.tracking_guid, reason=str(exc))
            return {"error": str(exc) or "the call already has a different plan"}, 409
        logger.info(
            "plan.accepted",
            tracking_guid=in_effect.tracking_guid,
            agents=len(in_effect.agents),
            tiers=[tier.number for tier in in_effect.tiers],
        )
        return in_effect.summary(), 200

    for path in STEP2_PATHS:
        blueprint.add_url_rule(path, view_func=responsecollect, methods=["GET", "POST"])
    return blueprint
