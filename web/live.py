"""The operator's live calls page: ``GET /live``, its JSON snapshot and its event stream.

Routes (all but the assets need the operator token, :mod:`web.operator_auth`; a browser passes
it as ``?token=`` because neither a page load nor ``EventSource`` can set headers):

- ``GET /live`` — the page (``web/static/live.html``: plain HTML, CSS and JS, no build step);
- ``GET /live/snapshot`` — the board as JSON (below), for scripts;
- ``GET /live/events`` — server-sent events (``text/event-stream``): a ``snapshot`` event with
  the whole board on connect and whenever it changes (a call appears, a leg changes state, a
  call finishes), and a ``: keepalive`` comment every :data:`KEEPALIVE_S` otherwise. The client
  ticks waiting times itself, so a changing ``waiting_s`` alone sends nothing;
- ``GET /live/assets/live.css`` and ``/live/assets/live.js`` — the page's static files, served
  without the token: they hold no data, and the page's ``<link>``/``<script>`` cannot carry it.

The board: ``{"server_time", "ready", "live": [call...], "finished": [call...]}``. A live call
has ``tracking_guid, campaign, lead_phone, plantype, state, waiting_s, tier, tiers_tried,
legs[{leg_id, agent_id, name, phone, tier, state}]`` (leg state ringing / whispering /
connected / declined / ended / dialling); a finished call (newest first, at most
:data:`FINISHED_SHOWN`) has ``outcome, agent1_id, winner, finished_at, duration_s`` instead of
``state``/``waiting_s``/``tier``. The orchestrator keeps the finished calls
(``Orchestrator.recently_finished``); this module only reads.

Cost: one board is built per :data:`POLL_S` however many pages watch (:class:`LiveBoard`
caches it); at most about :data:`MAX_STREAMS` streams at once (503 beyond; a stream counts
from its first byte, so requests arriving in the same instant may overshoot by a few). A
stream ends when its
client goes away (hypercorn reports the disconnect; the generator is closed) and once the
service has stopped taking calls and has none left, so it never holds up a shutdown.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson
import structlog
import trio
from quart import Blueprint, Response
from quart.typing import ResponseReturnValue

from web.operator_auth import require_operator_token

logger = structlog.get_logger()

LIVE_PATH = "/live"
#: Seconds between two looks at the orchestrator (shared by every stream).
POLL_S = 0.25
#: Seconds of silence after which a stream sends a comment, so proxies keep it open.
KEEPALIVE_S = 15.0
#: How long a browser waits before reconnecting a dropped stream (the SSE ``retry`` field).
RETRY_MS = 2000
#: Event streams open at once; more get 503 (each is a connection and a poll loop).
MAX_STREAMS = 16
#: Finished calls on the board, newest first.
FINISHED_SHOWN = 20

STATIC_DIR = Path(__file__).parent / "static"
ASSET_TYPES = {
    "live.css": "text/css; charset=utf-8",
    "live.js": "text/javascript; charset=utf-8",
}
#: The page and its data are never cached, never framed, and never leak the token in a Referer.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
}

Call = Mapping[str, Any]


class LiveSource(Protocol):
    """What the page reads from the orchestrator (``orchestrator.service.Orchestrator``)."""

    def live_snapshot(self) -> list[dict[str, object]]: ...

    @property
    def recently_finished(self) -> Sequence[Mapping[str, object]]: ...

    @property
    def ready(self) -> bool: ...

    @property
    def live_calls(self) -> int: ...


# --- the board (pure) --------------------------------------------------------------------------


def _legs(call: Call) -> list[dict[str, Any]]:
    return [
        {key: leg.get(key) for key in ("leg_id", "agent_id", "name", "phone", "tier", "state")}
        for leg in call.get("legs") or ()
    ]


def live_view(call: Call) -> dict[str, Any]:
    """One live call as the page shows it (a ``CallSupervisor.snapshot()``)."""
    return {
        "tracking_guid": call.get("tracking_guid", ""),
        "campaign": call.get("campaign", ""),
        "lead_phone": call.get("lead_phone", ""),
        "plantype": call.get("plantype", ""),
        "state": call.get("state", ""),
        "waiting_s": call.get("waiting_s", 0.0),
        "tier": call.get("tier"),
        "tiers_tried": list(call.get("tiers_tried") or ()),
        "legs": _legs(call),
    }


def finished_view(call: Call) -> dict[str, Any]:
    """One finished call (an entry of ``Orchestrator.recently_finished``)."""
    legs = _legs(call)
    winner = next((leg for leg in legs if leg["state"] == "connected"), None)
    return {
        "tracking_guid": call.get("tracking_guid", ""),
        "campaign": call.get("campaign", ""),
        "lead_phone": call.get("lead_phone", ""),
        "plantype": call.get("plantype", ""),
        "outcome": call.get("outcome"),
        "agent1_id": call.get("agent1_id"),
        "winner": None
        if winner is None
        else {"agent_id": winner["agent_id"], "name": winner["name"]},
        "finished_at": call.get("finished_at"),
        "duration_s": call.get("waiting_s"),
        "tiers_tried": list(call.get("tiers_tried") or ()),
        "legs": legs,
    }


def board(
    live: Sequence[Call],
    finished: Sequence[Call],
    *,
    ready: bool,
    now: float,
    finished_shown: int = FINISHED_SHOWN,
) -> dict[str, Any]:
    """The whole board: live calls oldest first, finished calls newest first."""
    recent = list(finished)[-finished_shown:] if finished_shown > 0 else []
    return {
        "server_time": now,
        "ready": ready,
        "live": [live_view(call) for call in live],
        "finished": [finished_view(call) for call in reversed(recent)],
    }


def change_key(payload: Mapping[str, Any]) -> bytes:
    """What makes two boards different for a viewer: everything but the clocks (the page ticks
    waiting times itself, so a stream sends nothing when only time passed)."""
    live = [{k: v for k, v in call.items() if k != "waiting_s"} for call in payload["live"]]
    finished = [call["tracking_guid"] for call in payload["finished"]]
    return orjson.dumps([payload["ready"], live, finished])


def sse_event(event: str, data: bytes, *, event_id: int) -> bytes:
    """One server-sent event; ``data`` is one line (compact JSON has no newline)."""
    return b"event: %s\nid: %d\ndata: %s\n\n" % (event.encode(), event_id, data)


def sse_comment(text: str) -> bytes:
    return b": %s\n\n" % text.encode()


def sse_retry(ms: int) -> bytes:
    return b"retry: %d\n\n" % ms


# --- the board, shared and cached (I/O) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    """One board, serialised once for every stream."""

    data: bytes
    key: bytes
    at: float  # trio clock


class LiveBoard:
    """Builds the board from the orchestrator at most once per ``max_age_s``; counts streams."""

    def __init__(
        self,
        source: LiveSource,
        *,
        max_streams: int = MAX_STREAMS,
        max_age_s: float = POLL_S * 0.8,
        finished_shown: int = FINISHED_SHOWN,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.max_streams = max_streams
        self.streams = 0
        self._max_age_s = max_age_s
        self._finished_shown = finished_shown
        self._now = now
        self._frame: Frame | None = None

    def frame(self, *, fresh: bool = False) -> Frame:
        """The board, rebuilt if older than ``max_age_s`` (or ``fresh`` is asked for)."""
        at = trio.current_time()
        frame = self._frame
        if fresh or frame is None or at - frame.at >= self._max_age_s:
            payload = board(
                self.source.live_snapshot(),
                self.source.recently_finished,
                ready=self.source.ready,
                now=round(self._now(), 3),
                finished_shown=self._finished_shown,
            )
            frame = self._frame = Frame(orjson.dumps(payload), change_key(payload), at)
        return frame

    @property
    def drained(self) -> bool:
        """The service has stopped taking calls and has none left: nothing more to watch."""
        return not self.source.ready and self.source.live_calls == 0

    @property
    def full(self) -> bool:
        return self.streams >= self.max_streams


async def event_stream(
    live: LiveBoard, *, poll_s: float = POLL_S, keepalive_s: float = KEEPALIVE_S
) -> AsyncGenerator[bytes, None]:
    """A stream's body: the board on connect and on every change, keep-alives in between.

    Counted in :attr:`LiveBoard.streams` from its first step until it ends, however it ends:
    the client went away (the server closes this generator), the service drained, or an error.
    """
    opened = trio.current_time()
    sent = 0
    reason = "client_gone"
    live.streams += 1
    logger.info("live.stream_opened", streams=live.streams)
    try:
        yield sse_retry(RETRY_MS)
        last_key = b""
        last_sent = opened
        while True:
            drained = live.drained  # looked at first, so the board that shows it is sent
            frame = live.frame(fresh=drained)
            if frame.key != last_key:
                sent += 1
                yield sse_event("snapshot", frame.data, event_id=sent)
                last_key, last_sent = frame.key, trio.current_time()
            elif trio.current_time() - last_sent >= keepalive_s:
                yield sse_comment("keepalive")
                last_sent = trio.current_time()
            if drained:
                reason = "service_drained"
                return
            await trio.sleep(poll_s)
    finally:
        live.streams -= 1
        logger.info(
            "live.stream_closed",
            reason=reason,
            snapshots=sent,
            streams=live.streams,
            open_s=round(trio.current_time() - opened, 1),
        )


# --- the routes ---------------------------------------------------------------------------------


def _read_static(name: str) -> bytes:
    return (STATIC_DIR / name).read_bytes()


def create_live_blueprint(
    source: LiveSource,
    token: str,
    *,
    max_streams: int = MAX_STREAMS,
    poll_s: float = POLL_S,
    keepalive_s: float = KEEPALIVE_S,
    live: LiveBoard | None = None,
) -> Blueprint:
    """The page, its snapshot and its event stream (operator ``token``), over ``source``.

    ``live`` replaces the board built from ``source`` (tests watch its stream count).
    """
    blueprint = Blueprint("live", __name__)
    require_operator_token(blueprint, token)
    if live is None:
        live = LiveBoard(source, max_streams=max_streams, max_age_s=poll_s * 0.8)
    page = _read_static("live.html")

    @blueprint.get(LIVE_PATH)
    async def live_page() -> ResponseReturnValue:
        return Response(page, mimetype="text/html", headers=PAGE_HEADERS)

    @blueprint.get(f"{LIVE_PATH}/snapshot")
    async def live_snapshot() -> ResponseReturnValue:
        return Response(
            live.frame().data, mimetype="application/json", headers={"Cache-Control": "no-store"}
        )

    @blueprint.get(f"{LIVE_PATH}/events")
    async def live_events() -> ResponseReturnValue:
        if live.full:
            logger.warning("live.stream_refused", streams=live.streams, limit=live.max_streams)
            return (
                {"error": f"too many live page streams (at most {live.max_streams})"},
                503,
                {"Retry-After": "5"},
            )
        response = Response(
            event_stream(live, poll_s=poll_s, keepalive_s=keepalive_s),
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
        response.timeout = None  # no RESPONSE_TIMEOUT: stream until the client leaves
        return response

    return blueprint


def create_live_assets_blueprint() -> Blueprint:
    """The page's CSS and JS, public (they hold no data; see the module docstring)."""
    blueprint = Blueprint("live_assets", __name__)
    assets = {name: (_read_static(name), kind) for name, kind in ASSET_TYPES.items()}

    @blueprint.get(f"{LIVE_PATH}/assets/<name>")
    async def live_asset(name: str) -> ResponseReturnValue:
        found = assets.get(name)
        if found is None:
            return {"error": "not found"}, 404
        body, kind = found
        return Response(
            body,
            content_type=kind,
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )

    return blueprint
