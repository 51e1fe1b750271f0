"""A routing plan as JSON text: how a plan is stored with its call and handed between instances.

Pure. :func:`plan_to_json` and :func:`plan_from_json` are inverses; the fingerprint of a decoded
plan equals the original's, so an identical re-post is still recognised after a hand-over.
"""

from __future__ import annotations

from typing import Any

import orjson

from orchestrator.model import PlanAgent, RoutingPlan

_FIELDS = (
    "agent_id",
    "phone",
    "tier",
    "row",
    "press1",
    "show_real_caller_id",
    "name",
    "email",
    "nmls",
    "five_min_apps",
)


def plan_to_json(plan: RoutingPlan) -> str:
    data: dict[str, Any] = {
        "tracking_guid": plan.tracking_guid,
        "referral_id": plan.referral_id,
        "agents": [{name: getattr(agent, name) for name in _FIELDS} for agent in plan.agents],
    }
    return orjson.dumps(data).decode()


def plan_from_json(text: str) -> RoutingPlan:
    """The plan :func:`plan_to_json` wrote.

    Raises:
        ValueError: not such a document (``orjson.JSONDecodeError`` is a ``ValueError``).
    """
    data = orjson.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("agents"), list):
        raise ValueError("not a stored routing plan")
    agents = tuple(PlanAgent(**{name: agent[name] for name in _FIELDS}) for agent in data["agents"])
    return RoutingPlan(str(data["tracking_guid"]), agents, data.get("referral_id"))
