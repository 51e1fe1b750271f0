"""The call orchestrator: dynamic call distribution between Plivo and a customer's endpoint.

This package is the domain: the pure leaf modules (values, messages, records, errors, ports,
config, parsing), the carrier adapters that implement the ports, and the service that owns the
live calls (:class:`Orchestrator`). ``docs/architecture.md`` draws the packages around it
(``actors``, ``store``, ``web``, ``server``, ``simulator``, ``commands``) and which way their
imports point; ``tests/test_architecture.py`` checks it.

The public names are re-exported here, lazily (PEP 562): importing a leaf such as
``orchestrator.model`` does not import the service, so the leaves stay leaves. ``__all__`` is
pinned by a test.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.config import Campaign as Campaign
    from orchestrator.config import Settings as Settings
    from orchestrator.config import load_settings as load_settings
    from orchestrator.config import parse_settings as parse_settings
    from orchestrator.errors import BodyError as BodyError
    from orchestrator.errors import BodyTooLarge as BodyTooLarge
    from orchestrator.errors import CallNotFound as CallNotFound
    from orchestrator.errors import CarrierError as CarrierError
    from orchestrator.errors import CarrierRateLimited as CarrierRateLimited
    from orchestrator.errors import ConfigError as ConfigError
    from orchestrator.errors import CustomerError as CustomerError
    from orchestrator.errors import InstanceInUse as InstanceInUse
    from orchestrator.errors import NoTrackingNumbers as NoTrackingNumbers
    from orchestrator.errors import OrchestratorError as OrchestratorError
    from orchestrator.errors import PeerUnreachable as PeerUnreachable
    from orchestrator.errors import PlanConflict as PlanConflict
    from orchestrator.errors import PlanRejected as PlanRejected
    from orchestrator.errors import Problem as Problem
    from orchestrator.errors import ProblemsError as ProblemsError
    from orchestrator.errors import QueryRejected as QueryRejected
    from orchestrator.errors import ReferralRejected as ReferralRejected
    from orchestrator.errors import StoreError as StoreError
    from orchestrator.errors import WebhookInvalid as WebhookInvalid
    from orchestrator.model import CallState as CallState
    from orchestrator.model import InboundCall as InboundCall
    from orchestrator.model import LeadDetails as LeadDetails
    from orchestrator.model import LegResult as LegResult
    from orchestrator.model import Outcome as Outcome
    from orchestrator.model import OutcomeKind as OutcomeKind
    from orchestrator.model import PlanAgent as PlanAgent
    from orchestrator.model import RoutingPlan as RoutingPlan
    from orchestrator.model import Tier as Tier
    from orchestrator.plan_parser import parse_routing_plan as parse_routing_plan
    from orchestrator.service import Orchestrator as Orchestrator

#: Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(
        ("Campaign", "Settings", "load_settings", "parse_settings"), "orchestrator.config"
    ),
    **dict.fromkeys(
        (
            "BodyError",
            "BodyTooLarge",
            "CallNotFound",
            "CarrierError",
            "CarrierRateLimited",
            "ConfigError",
            "CustomerError",
            "InstanceInUse",
            "NoTrackingNumbers",
            "OrchestratorError",
            "PeerUnreachable",
            "PlanConflict",
            "PlanRejected",
            "Problem",
            "ProblemsError",
            "QueryRejected",
            "ReferralRejected",
            "StoreError",
            "WebhookInvalid",
        ),
        "orchestrator.errors",
    ),
    **dict.fromkeys(
        (
            "CallState",
            "InboundCall",
            "LeadDetails",
            "LegResult",
            "Outcome",
            "OutcomeKind",
            "PlanAgent",
            "RoutingPlan",
            "Tier",
        ),
        "orchestrator.model",
    ),
    "parse_routing_plan": "orchestrator.plan_parser",
    "Orchestrator": "orchestrator.service",
}

__all__ = sorted(_EXPORTS, key=str.casefold)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once resolved, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
