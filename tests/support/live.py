"""The live page's test service: the whole service with the simulator and an operator token,
shared by the live-page tests and the headless-browser test."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path

from orchestrator.config import RoutingSettings
from tests.support.e2e import E2E, E2E_ROUTING, open_e2e

TOKEN = "live-page-test-token"
LEAD = "9495550000"
AGENT_PHONE = "9492651111"
AGENT_ID = 328999


def open_live_service(
    tmp_path: Path,
    *,
    time_scale: float = 0.025,
    routing: RoutingSettings = E2E_ROUTING,
    deadline_s: float = 60.0,
) -> AbstractAsyncContextManager[E2E]:
    """The whole service (simulator carrier, SQLite) with operator token :data:`TOKEN` and a
    test customer; the carrier is quiet at the end (``tests.support.e2e.open_e2e``)."""
    return open_e2e(
        tmp_path,
        time_scale=time_scale,
        routing=routing,
        deadline_s=deadline_s,
        operator_token=TOKEN,
    )
