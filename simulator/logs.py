"""JSON log lines on stdout for the simulator run on its own (``python -m simulator``).

Within the service (``carrier.kind = "simulator"``) the service's own log setup applies; this
one is for the standalone simulator, which imports nothing of the service.
"""

from __future__ import annotations

import logging
import sys

import orjson
import structlog

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def _dumps(obj: object, default: object = None) -> bytes:
    return orjson.dumps(obj, default=str)


def configure_logging(level: str = "info") -> None:
    """One JSON object per line (``ts``, ``level``, ``event``, fields) at ``level`` and above."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.BytesLoggerFactory(sys.stdout.buffer),
        cache_logger_on_first_use=True,
    )
