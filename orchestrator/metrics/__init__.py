"""Prometheus metrics of one service instance (README "Operating it"), served at ``/metrics``.

Three sources, none of them a metrics call inside the actors:

- **log events** (:mod:`.events`): a structlog processor counts ``call.started``,
  ``call.finished``, ``leg.ended``, ``step1.*`` and ``outcome.*`` into the service's
  :class:`ServiceMetrics` (:mod:`.families`);
- **scrape-time gauges** (:mod:`.live`): live calls and legs by state, outbox depth, readiness,
  read from the orchestrator when Prometheus scrapes;
- **HTTP timing**: the web layer's request hooks (:mod:`web.metrics`).

:func:`observe_service` builds all of it for one orchestrator and activates it for the calling
task and everything it spawns afterwards; the wiring calls it before starting the orchestrator
and the HTTP server.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import structlog

from orchestrator.metrics.events import (
    BELOW_LEVEL,
    HANDLERS,
    MetricsSink,
    activate,
    active_sink,
    deactivate,
    filtering_logger,
    observe_metrics,
)
from orchestrator.metrics.families import ServiceMetrics
from orchestrator.metrics.live import LiveCollector, LiveSample, LiveSource

__all__ = [
    "BELOW_LEVEL",
    "HANDLERS",
    "LiveCollector",
    "LiveSample",
    "LiveSource",
    "MetricsSink",
    "ObservedService",
    "ServiceMetrics",
    "activate",
    "active_sink",
    "deactivate",
    "filtering_logger",
    "logs_observed",
    "observe_metrics",
    "observe_service",
    "observed_metrics",
]

logger = structlog.get_logger()


class _Campaign(Protocol):
    @property
    def name(self) -> str: ...


class _Settings(Protocol):
    @property
    def campaigns(self) -> Iterable[_Campaign]: ...


class ObservedService(LiveSource, Protocol):
    """The orchestrator, as far as its metrics go."""

    @property
    def settings(self) -> _Settings: ...


def observed_metrics(service: ObservedService) -> ServiceMetrics:
    """``service``'s metrics: the families plus its scrape-time gauges (not activated)."""
    metrics = ServiceMetrics(campaign.name for campaign in service.settings.campaigns)
    metrics.attach_live(LiveCollector(service))
    return metrics


def observe_service(service: ObservedService) -> ServiceMetrics:
    """Build ``service``'s metrics and activate them for the calling task and every task it
    starts from now on (its calls, its HTTP handlers). Call it before starting them."""
    metrics = observed_metrics(service)
    activate(metrics)
    if not logs_observed():
        logger.warning(
            "metrics.logs_not_observed",
            hint="configure_logging() was not called: call metrics stay at 0",
        )
    return metrics


def logs_observed() -> bool:
    """True if the configured structlog chain has the metrics processor."""
    return observe_metrics in structlog.get_config().get("processors", ())
