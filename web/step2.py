"""Step 2 — the customer posts a routing plan (docs/contract.md §3): ``/responsecollect[.aspx]``.

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
- 401 ``{"error": ...}`` — only with a ``key_check`` (a campaign with ``step2_requires_key``,
  :class:`Step2KeyCheck`): a plan for a live call of such a campaign without the campaign's
  API key (``X-Api-Key`` header or ``ApiKey`` field) gets 401 before it is even validated, and
  changes nothing. A TrackingGUID that names no live call is not checked: it gets its 404 (or,
  for a finished call, the usual 200/409 — neither changes anything) whatever the key.

The request is read by :mod:`web.fields` (the one request-decoding layer); this module only
maps the outcome of parsing and submitting the plan to HTTP answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

import structlog
from quart import Blueprint, request
from quart.typing import ResponseReturnValue

from orchestrator.config import Settings
from orchestrator.errors import BodyError, BodyTooLarge, CallNotFound, PlanConflict, PlanRejected
from orchestrator.plan_parser import parse_routing_plan
from orchestrator.referrals import (
    API_KEY_CHALLENGE,
    API_KEY_HEADER,
    given_api_key,
    step2_key_problem,
)
from web.call_service import CallService
from web.fields import first_value, read_fields

logger = structlog.get_logger()

STEP2_PATHS = ("/responsecollect", "/responsecollect.aspx")
#: (TrackingGUID as sent, X-Api-Key header, fields) -> the 401 message, or None to go on.
KeyCheck = Callable[[str | None, str | None, Mapping[str, Sequence[str]]], Awaitable[str | None]]
#: The campaign of the call a TrackingGUID names, wherever it is routed (None: no live call).
CampaignOf = Callable[[str], Awaitable[str | None]]


def tracking_guid_of(fields: Mapping[str, Sequence[str]]) -> str | None:
    """The TrackingGUID as sent (field name matched case-insensitively), for log lines."""
    return first_value(fields, "TrackingGUID")


def create_step2_blueprint(service: CallService, *, key_check: KeyCheck | None = None) -> Blueprint:
    """The Step 2 routes, handing accepted plans to ``service``; ``key_check`` (optional)
    authenticates them (:class:`Step2KeyCheck`)."""
    blueprint = Blueprint("step2", __name__)

    async def responsecollect() -> ResponseReturnValue:
        try:
            fields = await read_fields()
        except BodyError as exc:
            logger.warning("plan.rejected", reason=str(exc), problems=0)
            return {"error": str(exc)}, 413 if isinstance(exc, BodyTooLarge) else 400
        tracking_guid = tracking_guid_of(fields)
        if key_check is not None:  # Step 2 authentication (per campaign, off by default)
            denied = await key_check(tracking_guid, request.headers.get(API_KEY_HEADER), fields)
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


# --- authentication (optional, per campaign) -----------------------------------------------


class Step2KeyCheck:
    """The Step 2 API-key check (module docstring), called by the route per request.

    ``campaign_of(tracking_guid)`` names the campaign of a live call, on this instance or
    another of the cluster (``Orchestrator.campaign_of_any``).
    """

    def __init__(self, settings: Settings, campaign_of: CampaignOf) -> None:
        self._settings = settings
        self._campaign_of = campaign_of

    async def __call__(
        self,
        tracking_guid: str | None,
        header: str | None,
        fields: Mapping[str, Sequence[str]],
    ) -> str | None:
        """The 401 message for this request, or ``None`` to let it through."""
        if not tracking_guid:
            return None
        name = await self._campaign_of(tracking_guid.strip().lower())
        if name is None:
            return None
        campaign = self._settings.campaign_named(name)
        problem = step2_key_problem(campaign, given_api_key(header, fields))
        if problem is not None:
            logger.warning(
                "plan.unauthorized", tracking_guid=tracking_guid, campaign=name, reason=problem
            )
        return problem


def step2_key_check(settings: Settings, campaign_of: CampaignOf) -> Step2KeyCheck | None:
    """The Step 2 check, or ``None`` when no campaign requires a key (Step 2 as before)."""
    if not any(c.step2_requires_key for c in settings.campaigns):
        return None
    return Step2KeyCheck(settings, campaign_of)
