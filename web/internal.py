"""Instance-to-instance routes of a cluster (docs/contract.md §11), signed with the cluster secret.

- ``POST /internal/calls/<guid>/plan`` — another instance committed this call's Step 2 plan in
  the directory (the customer posted it there); the body is the plan's JSON
  (``orchestrator.plan_codec``). 200 handed to the call, 404 not live here.
- ``POST /internal/calls/<guid>/hangup`` — an operator asked another instance to end this call;
  body ``{"reason": "..."}``. 200 ending, 404 not live here.

Every request must carry a valid instance signature (:mod:`orchestrator.signing`): anything else
gets 401 and changes nothing; a body that is not what the route takes gets 400. Registered only
with a ``[cluster]`` configuration.
"""

from __future__ import annotations

from typing import Protocol

import orjson
import structlog
from quart import Blueprint, request
from quart.typing import ResponseReturnValue

from orchestrator.ids import canonical_guid
from orchestrator.model import RoutingPlan
from orchestrator.plan_codec import plan_from_json
from orchestrator.signing import HEADERS, INSTANCE_HEADER
from web.forwarding import Forwarding, raw_target

logger = structlog.get_logger()

#: Longest hang-up reason taken (the operator route's limit).
MAX_REASON = 200


class InternalCalls(Protocol):
    """The orchestrator as the internal routes need it."""

    def take_handed_plan(self, plan: RoutingPlan) -> bool: ...

    def end_call(self, tracking_guid: str, *, reason: str = ...) -> bool: ...


def create_internal_blueprint(calls: InternalCalls, forwarding: Forwarding) -> Blueprint:
    """The internal routes (module docstring), authenticated by ``forwarding``'s signer."""
    blueprint = Blueprint("internal", __name__)

    async def authenticated() -> bytes | None:
        """The body of a genuine request from another instance, else None (logged)."""
        body = await request.get_data(cache=True, as_text=False, parse_form_data=False)
        headers = {name: request.headers.get(name, "") for name in HEADERS}
        problem = forwarding.refusal(request.method, raw_target(request.scope), body, headers)
        if problem is None:
            return body
        logger.warning(
            "cluster.internal_rejected",
            path=request.path,
            sender=headers[INSTANCE_HEADER],
            reason=problem,
        )
        return None

    def unauthorized() -> ResponseReturnValue:
        return {"error": "instance-to-instance request without a valid signature"}, 401

    @blueprint.post("/internal/calls/<guid>/plan")
    async def hand_plan(guid: str) -> ResponseReturnValue:
        body = await authenticated()
        if body is None:
            return unauthorized()
        try:
            plan = plan_from_json(body.decode("utf-8"))
        except (ValueError, KeyError, TypeError) as exc:
            return {"error": f"not a routing plan: {type(exc).__name__}"}, 400
        if plan.tracking_guid != guid:
            return {"error": "the plan is for another call"}, 400
        if not calls.take_handed_plan(plan):
            return {"error": f"no live call with TrackingGUID {guid} here"}, 404
        return {"status": "handed over", "tracking_guid": guid}, 200

    @blueprint.post("/internal/calls/<guid>/hangup")
    async def hang_up(guid: str) -> ResponseReturnValue:
        body = await authenticated()
        if body is None:
            return unauthorized()
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        reason = data.get("reason") if isinstance(data, dict) else None
        if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
            return {"error": f"body must be {{'reason': text of 1-{MAX_REASON} chars}}"}, 400
        if canonical_guid(guid) != guid or not calls.end_call(guid, reason=reason):
            return {"error": f"no live call with TrackingGUID {guid} here"}, 404
        logger.warning("operator.hangup_requested", tracking_guid=guid, reason=reason, via="peer")
        return {"status": "ending", "tracking_guid": guid}, 200

    return blueprint
