"""The load benchmark's figures, computed from the simulator's event log. Pure: no I/O.

Events are the dicts of ``GET /sim/events`` (``{"seq", "at", "kind", "call_uuid", "number",
"data"}``); ``at`` and ``data.received_at`` are simulated seconds, turned into real time by
multiplying with the simulator's ``time_scale`` (the simulated clock is the real monotonic
clock divided by it).

- lead answer latency: ``data.elapsed_ms`` of the ``webhook.sent``/``webhook.failed`` events
  whose URL is the service's ``/plivo/answer`` — how long the simulator waited for the XML;
- accept-to-cancel latency: from the ``webhook.sent`` event of the winner's press-1 request
  (``/plivo/leg/digits``, logged as its answer arrives) to the ``received_at`` of the first
  ``DELETE`` request for each losing leg (``Request/<request_uuid>`` or ``Call/<call_uuid>``).
  It can be negative: the service may cancel the losers before its answer to the press-1
  request reaches the simulator.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bench.load_scenario import BenchCall

__all__ = [
    "CancelFigures",
    "Stats",
    "accept_to_cancel",
    "digits10",
    "leg_uuids",
    "percentile",
    "stats",
    "webhook_latencies",
    "webhooks_by_route",
]

Event = Mapping[str, Any]

LEAD_ANSWER_PATH = "/plivo/answer"
LEG_DIGITS_PATH = "/plivo/leg/digits"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between ranks.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
    2.5
    >>> percentile([5.0], 99)
    5.0
    """
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class Stats:
    n: int
    p50: float | None
    p99: float | None
    min: float | None
    max: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        def rounded(x: float | None) -> float | None:
            return None if x is None else round(x, 3)

        return {
            "n": self.n,
            "p50": rounded(self.p50),
            "p99": rounded(self.p99),
            "min": rounded(self.min),
            "max": rounded(self.max),
        }


def stats(values: Sequence[float]) -> Stats:
    """Count, p50, p99, min and max of ``values`` (all ``None`` when there are none)."""
    if not values:
        return Stats(0, None, None, None, None)
    return Stats(
        len(values), percentile(values, 50), percentile(values, 99), min(values), max(values)
    )


def digits10(number: str) -> str:
    """The last ten digits of a phone number (``14155550111`` -> ``4155550111``)."""
    return "".join(c for c in number if c.isdigit())[-10:]


def _webhook_path(event: Event) -> str:
    return urlsplit(str(event["data"].get("url", ""))).path


def _is_webhook(event: Event) -> bool:
    return event["kind"] in ("webhook.sent", "webhook.failed")


def webhook_latencies(events: Iterable[Event], path: str = LEAD_ANSWER_PATH) -> list[float]:
    """``elapsed_ms`` of every webhook (sent or failed) to ``path``."""
    return [
        float(e["data"]["elapsed_ms"])
        for e in events
        if _is_webhook(e) and _webhook_path(e) == path and "elapsed_ms" in e["data"]
    ]


def webhooks_by_route(events: Iterable[Event], base_url: str) -> dict[str, list[float]]:
    """Webhook latencies (ms) grouped by path, for webhooks to ``base_url`` only."""
    base = urlsplit(base_url)
    routes: dict[str, list[float]] = {}
    for e in events:
        if not _is_webhook(e):
            continue
        url = urlsplit(str(e["data"].get("url", "")))
        if url.netloc != base.netloc:
            continue
        routes.setdefault(url.path, []).append(float(e["data"].get("elapsed_ms", 0.0)))
    return routes


def leg_uuids(placed: Iterable[Event]) -> dict[str, str]:
    """Map every outbound leg's CallUUID and RequestUUID to its phone (10 digits), from
    ``call.placed``/``call.queued`` events."""
    found: dict[str, str] = {}
    for e in placed:
        if e["data"].get("direction", "outbound") != "outbound":
            continue
        phone = digits10(str(e.get("number", "")))
        if e.get("call_uuid"):
            found[str(e["call_uuid"])] = phone
        request_uuid = e["data"].get("request_uuid")
        if request_uuid:
            found[str(request_uuid)] = phone
    return found


def _deleted_uuid(event: Event) -> str | None:
    """The uuid a ``DELETE .../Request/<uuid>/`` or ``.../Call/<uuid>/`` request ends."""
    if event["kind"] != "api.request" or event["data"].get("method") != "DELETE":
        return None
    parts = [p for p in str(event["data"].get("path", "")).split("/") if p]
    if len(parts) >= 2 and parts[-2] in ("Request", "Call"):
        return parts[-1]
    return None


@dataclass(frozen=True, slots=True)
class CancelFigures:
    latencies_ms: list[float]  # one per losing leg that was cancelled or hung up
    #: losing legs no DELETE reached that were still live after the winner's press-1 answer:
    #: ``(phone, how it ended)``, ``"still live"`` when it had not ended at all
    uncancelled: list[tuple[str, str]]
    declined_first: int  # losing legs that ended on their own before the winner accepted
    no_accept: int  # calls without a winner's press-1 answer in the log
    never_dialled: int = 0  # losing legs no Make Call for reached the simulator


def accept_to_cancel(
    calls: Iterable[BenchCall],
    webhooks: Iterable[Event],
    api_requests: Iterable[Event],
    ended: Iterable[Event],
    uuid_to_phone: Mapping[str, str],
    time_scale: float,
) -> CancelFigures:
    """Per losing leg: real ms from the winner's press-1 answer to its cancel/hangup request.

    A losing leg without any such request counts as uncancelled only if it was dialled and
    still live when the winner's press-1 answer came back (one whose whisper timed out earlier
    simply declined).
    """
    accepted_at: dict[str, float] = {}
    for e in webhooks:
        if e["kind"] == "webhook.sent" and _webhook_path(e) == LEG_DIGITS_PATH:
            phone = digits10(str(e.get("number", "")))
            accepted_at.setdefault(phone, float(e["at"]))
    deleted_at: dict[str, float] = {}
    for e in api_requests:
        uuid = _deleted_uuid(e)
        leg_phone = uuid_to_phone.get(uuid) if uuid else None
        if leg_phone is not None:
            received = float(e["data"].get("received_at", e["at"]))
            deleted_at[leg_phone] = min(received, deleted_at.get(leg_phone, math.inf))
    ends = {
        digits10(str(e.get("number", ""))): (float(e["at"]), str(e["data"].get("cause_name")))
        for e in ended
        if e["kind"] == "call.ended"
    }
    dialled = set(uuid_to_phone.values())
    latencies: list[float] = []
    uncancelled: list[tuple[str, str]] = []
    declined_first = no_accept = never_dialled = 0
    for call in calls:
        accept = accepted_at.get(call.winner.phone)
        if accept is None:
            no_accept += 1
            continue
        for loser in call.losers:
            deleted = deleted_at.get(loser.phone)
            if deleted is not None:
                latencies.append((deleted - accept) * time_scale * 1000)
                continue
            end = ends.get(loser.phone)
            if loser.phone not in dialled:
                never_dialled += 1
            elif end is not None and end[0] <= accept:
                declined_first += 1
            else:
                uncancelled.append((loser.phone, end[1] if end else "still live"))
    return CancelFigures(latencies, uncancelled, declined_first, no_accept, never_dialled)
