"""Errors of the orchestrator, factored into a leaf module so no import loops form.

Every error this project raises on purpose is one of these; the tree says who is at fault
(an HTTP answer in brackets, where a route maps it to one)::

    OrchestratorError
    ├── ConfigError            the operator's config file (every problem at once)
    ├── InstanceInUse          the operator's deployment: the instance id, or (one instance
    │                          without a cluster) the database, is in use by a live instance
    ├── ProblemsError          a request with fields that fail validation (every problem at once)
    │   ├── PlanRejected       the customer's Step 2 plan                      [400]
    │   ├── ReferralRejected   the website's POST /referrals                   [400]
    │   └── QueryRejected      the operator's call-history query               [400]
    ├── BodyError              a request body or query that cannot be read     [400]
    │   └── BodyTooLarge       a form with too many parts                      [413]
    ├── WebhookInvalid         the carrier's callback lacks or garbles a field  [400]
    ├── NoTrackingNumbers      a campaign without a tracking-number pool        [409]
    ├── CallNotFound           a TrackingGUID we do not know                   [404]
    ├── PlanConflict           a second, different plan for a call             [409]
    ├── CarrierError           the carrier (Plivo) failed or refused a request
    │   └── CarrierRateLimited the carrier answered 429
    ├── CustomerError          the customer's endpoint failed (network, timeout, bad body)
    ├── PeerUnreachable        another instance of the cluster did not answer
    └── StoreError             the database failed                             [503]

The simulator, a product of its own, has its own errors (``simulator.errors``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input, named precisely enough to fix it.

    ``field`` is the config key (``campaigns[0].numbers``) or request field (``AgentPhones``);
    ``index`` is the 1-based element of a list field, or ``None`` for the whole field.
    """

    field: str
    message: str
    index: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {"field": self.field, "index": self.index, "message": self.message}

    def __str__(self) -> str:
        where = self.field if self.index is None else f"{self.field}[{self.index}]"
        return f"{where}: {self.message}"


class OrchestratorError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(OrchestratorError):
    """The config file is wrong; ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class InstanceInUse(OrchestratorError):
    """Another live instance holds this instance id — or, for an instance without cluster
    configuration, the database. The service does not start."""


class ProblemsError(OrchestratorError):
    """A request's fields failed validation; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class PlanRejected(ProblemsError):
    """A Step 2 routing plan failed validation."""


class ReferralRejected(ProblemsError):
    """A ``POST /referrals`` request failed validation."""


class QueryRejected(ProblemsError):
    """The operator's call-history request has bad parameters."""


class BodyError(OrchestratorError):
    """A request body (or query) cannot be turned into fields; ``str()`` says why."""


class BodyTooLarge(BodyError):
    """A form with more parts than the service reads."""


class WebhookInvalid(OrchestratorError):
    """A carrier callback lacks a field we need, or carries an invalid one."""


class NoTrackingNumbers(OrchestratorError):
    """The campaign has no ``tracking_numbers`` (or is unknown): it cannot take referrals."""


class CallNotFound(OrchestratorError):
    """No call with this TrackingGUID (or carrier id) is known."""


class PlanConflict(OrchestratorError):
    """The call already has a different routing plan, or no longer waits for one."""


class CarrierError(OrchestratorError):
    """The carrier failed or refused a request (network, 4xx, 5xx)."""


class CarrierRateLimited(CarrierError):
    """The carrier answered 429 Too Many Requests."""


class CustomerError(OrchestratorError):
    """The customer's web endpoint could not be reached or answered unusably."""


class PeerUnreachable(OrchestratorError):
    """Another instance of the cluster (a call's owner) did not answer in time."""


class StoreError(OrchestratorError):
    """The database failed."""
