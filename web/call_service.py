"""What the HTTP surface needs from the orchestrator: the :class:`CallService` protocol.

``web`` depends on this small structural interface, never on the concrete
``orchestrator.service.Orchestrator`` (which satisfies it without inheriting from it), so the
routes can be tested against a tiny fake.
"""

from __future__ import annotations

from typing import Protocol

from orchestrator.model import RoutingPlan


class CallService(Protocol):
    """The orchestrator as seen from the web routes."""

    async def submit_plan(self, plan: RoutingPlan) -> RoutingPlan:
        """Hand a validated Step 2 plan to the call waiting for it (docs/contract.md §3).

        Returns:
            The plan in effect. An identical re-post (same ``fingerprint()``) returns the plan
            already in effect again, so customers may retry.

        Raises:
            CallNotFound: no live call has this TrackingGUID (HTTP 404).
            PlanConflict: the call already has a different plan, or no longer waits for one
                (HTTP 409).
        """
        ...

    @property
    def ready(self) -> bool:
        """True once the service can take calls (store open, carrier ready, not draining)."""
        ...

    @property
    def live_calls(self) -> int:
        """How many lead calls are in progress right now."""
        ...
