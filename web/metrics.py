"""``GET /metrics`` (Prometheus text format) and the HTTP request timing behind it.

The blueprint renders the service's own registry (:class:`orchestrator.metrics.ServiceMetrics`;
one per service instance, so several services in one process never mix their numbers), in the
format the scraper asks for (``Accept`` → Prometheus text or OpenMetrics).

It also times *every* request of the app it is registered on (``before_app_request`` /
``after_app_request``) into ``orchestrator_http_request_duration_seconds{kind}``, where ``kind``
comes from the matched endpoint (:func:`route_kind`): ``lead_answer``, ``leg_answer``,
``leg_digits``, ``ivr``, ``notification`` (ring, hang-ups, conference, voicemail done),
``document`` (hold music, room, voicemail XML), ``step2``, else the blueprint's name, or
``unmatched`` (404). Never the path: the label stays bounded. The time runs from the first
app ``before_request`` hook to the response object (for a streamed response such as
server-sent events: to its first byte).

Access: ``/metrics`` takes no token, so that a plain Prometheus scrape works. It holds counts
and timings only (campaign names, outcomes, leg results, route kinds — no phone number,
TrackingGUID, URL or credential), but it still says how busy the service is: serve it on an
internal network only (firewall, or a reverse proxy that does not route ``/metrics``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import trio
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from quart import Blueprint, Response, g, request
from quart.typing import ResponseReturnValue

from orchestrator.metrics import ServiceMetrics

METRICS_PATH = "/metrics"
_STARTED = "_metrics_started_at"

#: Plivo webhook endpoints (``web.plivo``) → route kind.
PLIVO_KINDS = {
    "lead_answer": "lead_answer",
    "lead_answer_slash": "lead_answer",
    "leg_answer": "leg_answer",
    "leg_digits": "leg_digits",
    "ivr": "ivr",
    "lead_hangup": "notification",
    "lead_hangup_slash": "notification",
    "leg_ring": "notification",
    "leg_hangup": "notification",
    "conference": "notification",
    "voicemail_done": "notification",
    "hold": "document",
    "room": "document",
    "voicemail": "document",
}


def route_kind(endpoint: str | None) -> str:
    """The ``kind`` label of a request to ``endpoint`` (``"<blueprint>.<name>"`` or None)."""
    if not endpoint:
        return "unmatched"
    blueprint, _, name = endpoint.rpartition(".")
    if blueprint == "plivo":
        return PLIVO_KINDS.get(name, "plivo")
    return blueprint or "app"


async def render(metrics: ServiceMetrics, encoder: Callable[[Collector], bytes]) -> bytes:
    """The exposition of ``metrics.registry``, rendered in a worker thread.

    Rendering costs about 20 µs per line (a few hundred lines per campaign), too long to hold
    the Trio thread that answers the carrier's webhooks; the live gauges are sampled here on
    the Trio thread first and pinned for the worker (:meth:`LiveCollector.pinned`).
    """
    live = metrics.live
    if live is None:
        return await trio.to_thread.run_sync(encoder, metrics.registry)
    with live.pinned(live.sample()):
        return await trio.to_thread.run_sync(encoder, metrics.registry)


def create_metrics_blueprint(metrics: ServiceMetrics) -> Blueprint:
    """``GET /metrics`` over ``metrics.registry``, and request timing for the whole app."""
    blueprint = Blueprint("metrics", __name__)

    @blueprint.before_app_request
    async def start_timer() -> None:
        setattr(g, _STARTED, time.perf_counter())

    @blueprint.after_app_request
    async def observe(response: Response) -> Response:
        started = g.get(_STARTED)
        if started is not None:
            metrics.http_handled(
                route_kind(request.endpoint), response.status_code, time.perf_counter() - started
            )
        return response

    @blueprint.get(METRICS_PATH)
    async def scrape() -> ResponseReturnValue:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return await render(metrics, encoder), 200, {"Content-Type": content_type}

    return blueprint
