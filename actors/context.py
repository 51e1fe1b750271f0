"""What every actor of one call shares: the call, its settings, the ports, and the journal."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog

from actors.teardown import Teardown
from orchestrator.config import RoutingSettings
from orchestrator.model import InboundCall
from orchestrator.ports import Carrier, Recorder
from orchestrator.records import EventLogged, Record

logger = structlog.get_logger()

#: The leg context bound while a leg is handled: kept with its events in the call's event log.
LEG_KEYS = ("leg_id", "agent_id", "tier")


@dataclass(slots=True)
class CallContext:
    """Per-call dependencies. ``event`` logs a line and journals it for the call's event log,
    ``note`` journals any record; ``flush`` hands the journal to the store (whose writer
    batches it). Journalling is synchronous, so the dispatcher can record without waiting."""

    call: InboundCall
    caller_id: str  # shown to agents when ShowAgentRealID=0
    routing: RoutingSettings
    carrier: Carrier
    recorder: Recorder
    #: Ends legs at the carrier (and keeps trying beyond the call's life when it fails).
    teardown: Teardown
    now: Callable[[], float] = time.time
    journal: list[Record] = field(default_factory=list)

    def event(self, name: str, *, level: str = "info", **data: Any) -> None:
        """Log ``name`` (call context comes from contextvars) and journal it."""
        getattr(logger, level)(name, **data)
        bound = structlog.contextvars.get_contextvars()
        leg = {key: bound[key] for key in LEG_KEYS if key in bound and key not in data}
        detail = orjson.dumps(leg | data, default=str).decode() if data or leg else ""
        self.journal.append(EventLogged(self.call.tracking_guid, name, self.now(), detail))

    def note(self, *records: Record) -> None:
        self.journal.extend(records)

    async def flush(self) -> None:
        if self.journal:
            batch, self.journal = self.journal, []
            await self.recorder.record(*batch)
