"""Structured JSON logs on stdout (docs/architecture.md "Logs").

One JSON object per line: ``ts``, ``level``, ``event`` (dotted, past tense) and the call context
bound in contextvars by the actors (``tracking_guid``, ``campaign``, ``leg_id``, ``agent_id``,
``tier``). Configure once per process with :func:`configure_logging`. The chain also counts the
call, leg, Step 1 and Step 3 events for ``/metrics`` (:mod:`orchestrator.metrics.events`), at
any log level.
"""

from __future__ import annotations

import logging
import sys
from typing import BinaryIO

import orjson
import structlog

from orchestrator.metrics.events import filtering_logger, observe_metrics

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def _dumps(obj: object, default: object = None) -> bytes:
    return orjson.dumps(obj, default=str)


def configure_logging(level: str = "info", stream: BinaryIO | None = None) -> None:
    """Send JSON lines at ``level`` and above to ``stream`` (default: stdout)."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            observe_metrics,  # counts call/leg/Step 1/outcome events for /metrics
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ],
        wrapper_class=filtering_logger(_LEVELS[level]),  # metrics see events below the level
        logger_factory=structlog.BytesLoggerFactory(stream or sys.stdout.buffer),
        cache_logger_on_first_use=True,
    )
