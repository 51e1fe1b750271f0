"""Liveness and readiness probes: ``GET /healthz`` and ``GET /readyz`` (docs/contract.md §10).

``/healthz`` answers 200 whenever the process serves HTTP at all; ``/readyz`` answers 200 only
while the orchestrator can take calls (503 while starting or draining), so a load balancer
stops sending new calls to an instance that is shutting down.
"""

from __future__ import annotations

from quart import Blueprint
from quart.typing import ResponseReturnValue

from web.call_service import CallService


def create_health_blueprint(service: CallService) -> Blueprint:
    """The probe routes, answering from ``service``."""
    blueprint = Blueprint("health", __name__)

    @blueprint.get("/healthz")
    async def healthz() -> ResponseReturnValue:
        return {"status": "ok"}

    @blueprint.get("/readyz")
    async def readyz() -> ResponseReturnValue:
        ready = service.ready
        body = {"status": "ready" if ready else "not ready", "live_calls": service.live_calls}
        return body, 200 if ready else 503

    return blueprint
