"""The metric families of one service instance, in its own ``CollectorRegistry``.

:class:`ServiceMetrics` is the :class:`~orchestrator.metrics.events.MetricsSink` the log
processor feeds (calls, legs, Step 1, Step 3 posts), the timer the web layer feeds (HTTP
request latency per route kind), and the owner of the registry ``/metrics`` renders — which
also holds the scrape-time gauges (:mod:`orchestrator.metrics.live`) and the process collector
(CPU, memory, open files of this process).

Label values are bounded: campaign names come from the configuration, outcomes, leg results
and call states from the model's enums, route kinds from a fixed table
(:func:`web.metrics.route_kind`). No phone number, TrackingGUID or URL is ever a label.
Counter children for every configured campaign and known value are created up front, so those
series exist (at 0) from the first scrape and ``increase()`` sees the first call.
prometheus-client's ``*_created`` series are switched off (process-wide).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)

from orchestrator.metrics.live import LiveCollector
from orchestrator.model import LegResult, OutcomeKind

PREFIX = "orchestrator"

#: Lead waiting from call start to an agent's accept: Step 1 + Step 2 + tiers of ringing.
CONNECT_BUCKETS = (1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0)
#: Whole calls, talk time included.
DURATION_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
#: The customer's Step 1 answer (``routing.initial_post_timeout_s`` caps it).
STEP1_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Our HTTP handling (an agent's answer waits for the call's decision, up to 5 s).
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

OUTCOME_POST_RESULTS = ("delivered", "failed")


class ServiceMetrics:
    """One service's metrics (see the module docstring). Cheap calls only: each is a
    prometheus-client counter increment or histogram observation under its lock."""

    def __init__(self, campaigns: Iterable[str] = ()) -> None:
        # No ``*_created`` gauge beside every counter and histogram: they double the series
        # and Prometheus has no use for them in the text format (process-wide switch).
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        self._counters: dict[tuple[object, ...], Counter] = {}
        self._histograms: dict[tuple[object, ...], Histogram] = {}
        self.live: LiveCollector | None = None
        r = self.registry
        self.calls_started = Counter(
            f"{PREFIX}_calls_started",
            "Inbound lead calls taken in (call.started).",
            ["campaign"],
            registry=r,
        )
        self.calls_finished = Counter(
            f"{PREFIX}_calls_finished",
            "Calls finished, by outcome (call.finished).",
            ["campaign", "outcome"],
            registry=r,
        )
        self.legs_ended = Counter(
            f"{PREFIX}_legs_ended",
            "Agent legs ended, by result (leg.ended).",
            ["campaign", "result"],
            registry=r,
        )
        self.time_to_connect = Histogram(
            f"{PREFIX}_time_to_connect_seconds",
            "From call start to an agent accepting, for connected calls.",
            ["campaign"],
            buckets=CONNECT_BUCKETS,
            registry=r,
        )
        self.call_duration = Histogram(
            f"{PREFIX}_call_duration_seconds",
            "From call start to its outcome.",
            ["campaign", "outcome"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.step1_latency = Histogram(
            f"{PREFIX}_step1_duration_seconds",
            "Customer Step 1 request latency; result=failed: error, non-2xx or timeout.",
            ["campaign", "result"],
            buckets=STEP1_BUCKETS,
            registry=r,
        )
        self.outcome_posts = Counter(
            f"{PREFIX}_outcome_posts",
            "Step 3 delivery attempts to customers (the outbox), by result.",
            ["result"],
            registry=r,
        )
        self.outcomes_dead = Counter(
            f"{PREFIX}_outcomes_dead",
            "Step 3 posts given up after outbox.give_up_after_s (row kept, marked dead).",
            registry=r,
        )
        self.http_latency = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "Time to handle an HTTP request (webhooks, Step 2, ...), by route kind.",
            ["kind"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.http_responses = Counter(
            f"{PREFIX}_http_responses",
            "HTTP responses by route kind and status class.",
            ["kind", "status"],
            registry=r,
        )
        self.webhooks_forwarded = Counter(
            f"{PREFIX}_webhooks_forwarded",
            "Carrier webhooks handed to the instance that owns the call, by route and result.",
            ["route", "result"],
            registry=r,
        )
        self.handler_errors = Counter(
            f"{PREFIX}_metrics_handler_errors",
            "Log events the metrics processor failed to count (a bug; should stay 0).",
            ["event"],
            registry=r,
        )
        ProcessCollector(registry=r)
        for campaign in campaigns:
            self._prepare(campaign)
        for result in OUTCOME_POST_RESULTS:
            self.outcome_posts.labels(result)

    def _prepare(self, campaign: str) -> None:
        """Create ``campaign``'s counter series at 0 (histogram series appear with their first
        observation: each costs 10-15 lines per scrape)."""
        self.calls_started.labels(campaign)
        for outcome in OutcomeKind:
            self.calls_finished.labels(campaign, outcome.value)
        for result in LegResult:
            self.legs_ended.labels(campaign, result.value)

    def attach_live(self, live: LiveCollector) -> None:
        """Add the scrape-time gauges (see :mod:`orchestrator.metrics.live`)."""
        self.registry.register(live)
        self.live = live

    # --- MetricsSink (fed by the log processor) -------------------------------------------
    # Children are cached by label values: ``.labels()`` costs more than the increment.

    def call_started(self, campaign: str) -> None:
        _child(self._counters, self.calls_started, campaign).inc()

    def call_finished(
        self,
        campaign: str,
        outcome: str,
        duration_s: float | None,
        time_to_connect_s: float | None,
    ) -> None:
        _child(self._counters, self.calls_finished, campaign, outcome).inc()
        if duration_s is not None:
            _child(self._histograms, self.call_duration, campaign, outcome).observe(duration_s)
        if time_to_connect_s is not None:
            _child(self._histograms, self.time_to_connect, campaign).observe(time_to_connect_s)

    def leg_ended(self, campaign: str, result: str) -> None:
        _child(self._counters, self.legs_ended, campaign, result).inc()

    def step1_done(self, campaign: str, ok: bool, latency_s: float | None) -> None:
        if latency_s is not None:
            child = _child(self._histograms, self.step1_latency, campaign, "ok" if ok else "failed")
            child.observe(latency_s)

    def outcome_posted(self, delivered: bool) -> None:
        _child(self._counters, self.outcome_posts, "delivered" if delivered else "failed").inc()

    def outcome_dead(self) -> None:
        self.outcomes_dead.inc()

    def webhook_forwarded(self, route: str, ok: bool) -> None:
        child = _child(self._counters, self.webhooks_forwarded, route, "ok" if ok else "failed")
        child.inc()

    def handler_failed(self, event: str) -> None:
        self.handler_errors.labels(event).inc()

    # --- fed by the web layer -------------------------------------------------------------

    def http_handled(self, kind: str, status: int, seconds: float) -> None:
        _child(self._histograms, self.http_latency, kind).observe(seconds)
        _child(self._counters, self.http_responses, kind, f"{status // 100}xx").inc()


_Family = TypeVar("_Family", Counter, Histogram)


def _child(cache: dict[tuple[object, ...], _Family], family: _Family, *labels: str) -> _Family:
    """``family.labels(*labels)``, cached (label values are bounded: see the module doc)."""
    key = (family, *labels)
    child = cache.get(key)
    if child is None:
        child = cache[key] = family.labels(*labels)
    return child
