"""Errors of the orchestrator, factored into a leaf module so no import loops form.

The hierarchy says who is at fault::

    OrchestratorError
    ├── ConfigError            the operator's config file (carries every problem at once)
    ├── PlanRejected           the customer's Step 2 request (carries every problem at once)
    ├── CallNotFound           a TrackingGUID we do not know (customer or carrier)
    ├── PlanConflict           a second, different plan for a call that already has one
    ├── CarrierError           the carrier (Plivo) failed or refused a request
    │   └── CarrierRateLimited the carrier answered 429
    ├── CustomerError          the customer's endpoint failed (network, timeout, bad body)
    └── StoreError             the database failed
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


class PlanRejected(OrchestratorError):
    """A Step 2 routing plan failed validation; ``problems`` lists every problem."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


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


class StoreError(OrchestratorError):
    """The database failed."""
