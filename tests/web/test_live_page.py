"""The live calls page ``/live`` (README "Operating it"): the board, its event stream, token and
limits.

Pure board logic and the stream generator run in memory (MockClock); the routes are checked over
real HTTP on 127.0.0.1 — against a fake orchestrator for the token, the assets, the stream cap
and the clean-up after a client leaves, and against the whole service with the simulator for a
stream that shows a call ringing, connected and then finished.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trio

from orchestrator.config import RoutingSettings, ServerSettings
from server.http import serve_http
from simulator import AgentScript, LeadScript
from tests.support.e2e import (
    E2E_ROUTING,
    WAIT_S,
    PlanReply,
    e2e_settings,
)
from tests.support.live import AGENT_ID, AGENT_PHONE, LEAD, TOKEN, open_live_service
from web.app import create_app
from web.live import (
    KEEPALIVE_S,
    LiveBoard,
    board,
    change_key,
    create_live_assets_blueprint,
    create_live_blueprint,
    event_stream,
    sse_event,
)


def leg(state: str, *, leg_id: str = "leg-1", agent_id: int = AGENT_ID) -> dict[str, object]:
    return {
        "leg_id": leg_id,
        "agent_id": agent_id,
        "name": "Erin Jones",
        "phone": AGENT_PHONE,
        "tier": 1,
        "state": state,
    }


def live_call(
    guid: str = "g-1", *, waiting_s: float = 1.0, legs: Sequence[dict[str, object]] = ()
) -> dict[str, object]:
    return {
        "tracking_guid": guid,
        "campaign": "acme",
        "lead_phone": LEAD,
        "plantype": "Purchase",
        "state": "dialling",
        "waiting_s": waiting_s,
        "tier": 1,
        "tiers_tried": [1],
        "legs": list(legs),
    }


def finished_call(
    guid: str,
    outcome: str = "connected",
    *,
    at: float = 1000.0,
    legs: Sequence[dict[str, object]] = (),
) -> dict[str, object]:
    return {
        **live_call(guid, waiting_s=12.5, legs=legs),
        "state": "finished",
        "outcome": outcome,
        "agent1_id": AGENT_ID if outcome == "connected" else 999999,
        "finished_at": at,
    }


@dataclass
class FakeSource:
    """The orchestrator as the page reads it."""

    live: list[dict[str, object]] = field(default_factory=list)
    finished: list[dict[str, object]] = field(default_factory=list)
    accepting: bool = True

    def live_snapshot(self) -> list[dict[str, object]]:
        return [dict(c) for c in self.live]

    @property
    def recently_finished(self) -> Sequence[Mapping[str, object]]:
        return self.finished

    @property
    def ready(self) -> bool:
        return self.accepting

    @property
    def live_calls(self) -> int:
        return len(self.live)


# --- the board --------------------------------------------------------------------------------


class TestBoard:
    """The board shows live calls oldest first and finished calls newest first."""

    def test_live_call_keeps_campaign_lead_waiting_tier_and_legs(self) -> None:
        payload = board([live_call(legs=[leg("ringing")])], [], ready=True, now=5.0)
        (call,) = payload["live"]
        assert call["campaign"] == "acme"
        assert call["lead_phone"] == LEAD
        assert call["waiting_s"] == 1.0
        assert call["tier"] == 1
        assert call["legs"] == [leg("ringing")]
        assert payload["server_time"] == 5.0
        assert payload["ready"] is True

    def test_finished_calls_newest_first_limited_with_winner(self) -> None:
        finished = [finished_call(f"g-{i}", at=float(i)) for i in range(5)]
        finished[-1] = finished_call("g-4", legs=[leg("connected"), leg("ended", leg_id="l2")])
        payload = board([], finished, ready=True, now=0.0, finished_shown=3)
        assert [c["tracking_guid"] for c in payload["finished"]] == ["g-4", "g-3", "g-2"]
        newest = payload["finished"][0]
        assert newest["outcome"] == "connected"
        assert newest["winner"] == {"agent_id": AGENT_ID, "name": "Erin Jones"}
        assert newest["duration_s"] == 12.5
        assert payload["finished"][1]["winner"] is None

    def test_change_key_ignores_time_passing_but_not_a_leg_changing(self) -> None:
        ringing = board([live_call(waiting_s=1.0, legs=[leg("ringing")])], [], ready=True, now=1)
        later = board([live_call(waiting_s=9.0, legs=[leg("ringing")])], [], ready=True, now=9)
        answered = board(
            [live_call(waiting_s=9.0, legs=[leg("whispering")])], [], ready=True, now=9
        )
        assert change_key(ringing) == change_key(later)
        assert change_key(later) != change_key(answered)

    def test_change_key_sees_a_call_finishing(self) -> None:
        before = board([live_call()], [], ready=True, now=0)
        after = board([], [finished_call("g-1")], ready=True, now=0)
        assert change_key(before) != change_key(after)

    def test_sse_event_is_one_event_with_name_id_and_data(self) -> None:
        raw = sse_event("snapshot", b'{"a":1}', event_id=7)
        assert raw == b'event: snapshot\nid: 7\ndata: {"a":1}\n\n'


# --- the stream, in memory --------------------------------------------------------------------


def parse_sse(raw: bytes) -> list[tuple[str, str]]:
    """(field, value) pairs of a stream's bytes; comments as ("", text)."""
    pairs = []
    for line in raw.decode().splitlines():
        if not line:
            continue
        name, _, value = line.partition(":")
        pairs.append((name, value.strip()))
    return pairs


class TestEventStream:
    """The stream sends the board on connect and on changes only, keeps alive, and ends."""

    async def test_snapshot_on_connect_then_only_on_change(self, autojump_clock: Any) -> None:
        source = FakeSource(live=[live_call(legs=[leg("ringing")])])
        live = LiveBoard(source, max_age_s=0.0)
        stream = event_stream(live, poll_s=0.25)
        assert parse_sse(await stream.__anext__()) == [("retry", "2000")]
        first = parse_sse(await stream.__anext__())
        assert first[0] == ("event", "snapshot")
        assert orjson.loads(first[2][1])["live"][0]["legs"][0]["state"] == "ringing"
        assert live.streams == 1

        async def answer_later() -> None:
            await trio.sleep(2.0)  # eight quiet polls first
            source.live[0]["legs"] = [leg("connected")]

        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer_later)
            started = trio.current_time()
            second = parse_sse(await stream.__anext__())
        assert trio.current_time() - started >= 2.0  # nothing sent while nothing changed
        assert second[1] == ("id", "2")
        assert orjson.loads(second[2][1])["live"][0]["legs"][0]["state"] == "connected"
        await stream.aclose()
        assert live.streams == 0

    async def test_keepalive_comment_when_quiet(self, autojump_clock: Any) -> None:
        live = LiveBoard(FakeSource(), max_age_s=0.0)
        stream = event_stream(live, poll_s=0.25)
        await stream.__anext__()  # retry
        await stream.__anext__()  # first snapshot
        started = trio.current_time()
        assert parse_sse(await stream.__anext__()) == [("", "keepalive")]
        assert trio.current_time() - started == pytest.approx(KEEPALIVE_S, abs=0.3)
        await stream.aclose()

    async def test_stream_ends_once_the_service_drained(self, autojump_clock: Any) -> None:
        source = FakeSource(live=[live_call()])
        live = LiveBoard(source, max_age_s=0.0)
        stream = event_stream(live, poll_s=0.25)
        await stream.__anext__()
        await stream.__anext__()
        source.accepting = False  # draining, one call left: keep streaming
        source.live.clear()
        source.finished.append(finished_call("g-1"))
        last = parse_sse(await stream.__anext__())
        assert orjson.loads(last[2][1])["ready"] is False
        with pytest.raises(StopAsyncIteration):
            await stream.__anext__()
        assert live.streams == 0

    async def test_board_built_once_per_poll_for_every_stream(self, autojump_clock: Any) -> None:
        calls = 0

        class Counting(FakeSource):
            def live_snapshot(self) -> list[dict[str, object]]:
                nonlocal calls
                calls += 1
                return super().live_snapshot()

        live = LiveBoard(Counting(), max_age_s=0.2)
        first = live.frame()
        assert live.frame() is first
        await trio.sleep(0.25)
        assert live.frame() is not first
        assert calls == 2


# --- the routes over real HTTP, fake orchestrator ---------------------------------------------


@dataclass
class Served:
    url: str
    http: httpx.AsyncClient
    live: LiveBoard
    source: FakeSource


@asynccontextmanager
async def serve_live(
    source: FakeSource, *, token: str = TOKEN, max_streams: int = 4
) -> AsyncIterator[Served]:
    """The live blueprints in the real app, served on 127.0.0.1 (port 0)."""
    live = LiveBoard(source, max_streams=max_streams, max_age_s=0.05)
    blueprints = [
        create_live_blueprint(source, token, poll_s=0.05, live=live),
        create_live_assets_blueprint(),
    ]
    settings = e2e_settings(
        "sqlite://", "http://127.0.0.1:9", time_scale=1.0, routing=RoutingSettings()
    )
    app = create_app(_NoCalls(), settings, blueprints=blueprints)
    stop = trio.Event()
    server = ServerSettings(bind="127.0.0.1:0", public_url="http://127.0.0.1", drain_s=0.5)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=5) as http:
            binds: list[str] = await nursery.start(
                partial(serve_http, app, server, shutdown_event=stop)
            )
            try:
                yield Served(binds[0], http, live, source)
            finally:
                stop.set()


class _NoCalls:
    """The rest of the app's service (Step 2, probes): never used here."""

    async def submit_plan(self, plan: Any) -> Any:
        raise AssertionError("no Step 2 in these tests")

    ready = True
    live_calls = 0


async def wait_until(predicate: Any, timeout_s: float = 5.0) -> None:
    with trio.fail_after(timeout_s):
        while not predicate():  # noqa: ASYNC110  (the server counts streams; nothing to await)
            await trio.sleep(0.01)


class TestOperatorToken:
    """Every data route of the page needs the operator token; the assets do not."""

    @pytest.mark.parametrize("path", ["/live", "/live/snapshot", "/live/events"])
    async def test_401_without_or_with_a_wrong_token(self, path: str) -> None:
        async with serve_live(FakeSource()) as s:
            missing = await s.http.get(s.url + path)
            wrong = await s.http.get(s.url + path, params={"token": "nope"})
            bearer_wrong = await s.http.get(s.url + path, headers={"Authorization": "Bearer nope"})
        for response in (missing, wrong, bearer_wrong):
            assert response.status_code == 401
            assert response.json() == {"error": "operator token required"}
        assert s.live.streams == 0

    async def test_no_token_configured_means_off(self) -> None:
        async with serve_live(FakeSource(), token="") as s:
            response = await s.http.get(s.url + "/live", params={"token": ""})
        assert response.status_code == 401

    async def test_page_with_token_is_html_that_is_never_cached_or_framed(self) -> None:
        async with serve_live(FakeSource()) as s:
            response = await s.http.get(s.url + "/live", params={"token": TOKEN})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert '<table id="live-calls">' in response.text
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]

    async def test_snapshot_with_bearer_header(self) -> None:
        source = FakeSource(live=[live_call(legs=[leg("whispering")])])
        async with serve_live(source) as s:
            response = await s.http.get(
                s.url + "/live/snapshot", headers={"Authorization": f"Bearer {TOKEN}"}
            )
        assert response.status_code == 200
        assert response.json()["live"][0]["legs"][0]["state"] == "whispering"

    async def test_assets_are_public_static_files(self) -> None:
        async with serve_live(FakeSource()) as s:
            css = await s.http.get(s.url + "/live/assets/live.css")
            js = await s.http.get(s.url + "/live/assets/live.js")
            other = await s.http.get(s.url + "/live/assets/..%2Fpyproject.toml")
        assert css.status_code == 200
        assert css.headers["content-type"].startswith("text/css")
        assert js.status_code == 200
        assert "EventSource" in js.text
        assert other.status_code == 404


async def events_of(response: httpx.Response) -> AsyncIterator[dict[str, str]]:
    """The SSE events (``event``/``id``/``data``) of a streaming response; comments skipped."""
    current: dict[str, str] = {}
    async for line in response.aiter_lines():
        if not line:
            if "data" in current:
                yield current
            current = {}
            continue
        name, _, value = line.partition(":")
        if name:
            current[name] = value.lstrip(" ")


async def first_events(response: httpx.Response, count: int) -> list[dict[str, str]]:
    """The first ``count`` SSE events of a streaming response."""
    events: list[dict[str, str]] = []
    async for event in events_of(response):
        events.append(event)
        if len(events) == count:
            break
    return events


class TestStreamOverHttp:
    """The stream is an event stream; it is capped and cleaned up when the client leaves."""

    async def test_event_stream_headers_and_first_snapshot(self) -> None:
        source = FakeSource(live=[live_call(legs=[leg("ringing")])])
        async with serve_live(source) as s:
            async with s.http.stream(
                "GET", s.url + "/live/events", params={"token": TOKEN}
            ) as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                (event,) = await first_events(response, 1)
            await wait_until(lambda: s.live.streams == 0)
        assert event["event"] == "snapshot"
        assert orjson.loads(event["data"])["live"][0]["tracking_guid"] == "g-1"

    async def test_streams_are_capped_and_freed_when_clients_leave(self) -> None:
        async with serve_live(FakeSource(), max_streams=2) as s:
            params = {"token": TOKEN}
            async with (
                s.http.stream("GET", s.url + "/live/events", params=params) as one,
                s.http.stream("GET", s.url + "/live/events", params=params) as two,
            ):
                await first_events(one, 1)
                await first_events(two, 1)
                assert s.live.streams == 2
                refused = await s.http.get(s.url + "/live/events", params=params)
                assert refused.status_code == 503
                assert refused.headers["retry-after"] == "5"
            # both clients closed their connections: the server closes their generators
            await wait_until(lambda: s.live.streams == 0)
            again = await s.http.get(s.url + "/live/snapshot", params=params)
            assert again.status_code == 200

    async def test_stream_ends_when_the_service_has_drained(self) -> None:
        """An open page never holds up a shutdown: its stream ends once nothing is left."""
        source = FakeSource(live=[live_call()])
        async with serve_live(source) as s:
            async with s.http.stream(
                "GET", s.url + "/live/events", params={"token": TOKEN}
            ) as response:
                events = events_of(response)
                first = await events.__anext__()
                source.accepting = False
                source.live.clear()
                with trio.fail_after(5):
                    rest = [event async for event in events]  # the body ends
            await wait_until(lambda: s.live.streams == 0)
        assert orjson.loads(first["data"])["ready"] is True
        assert orjson.loads(rest[-1]["data"])["ready"] is False


# --- the whole service with the simulator -----------------------------------------------------

ONE_AGENT_PLAN = {
    "AgentEmailAddresses": "erin.jones@xyz.com",
    "AgentFiveMinApps": "0",
    "AgentID": str(AGENT_ID),
    "AgentNames": "Erin Jones",
    "AgentNMLS": "352",
    "AgentPhones": AGENT_PHONE,
    "AgentTier": "1",
    "AgentRow": "1",
}


def leg_states(snapshot: Mapping[str, Any], guid: str) -> list[str]:
    calls = [c for c in snapshot["live"] if c["tracking_guid"] == guid]
    return [leg["state"] for c in calls for leg in c["legs"]]


@pytest.mark.e2e
class TestLiveServiceStream:
    """Over real HTTP with the simulator: the stream shows a call live, then finished."""

    async def test_stream_shows_the_live_call_its_leg_and_then_its_outcome(
        self, tmp_path: Path
    ) -> None:
        routing = replace(E2E_ROUTING, ring_timeout_s=200.0)  # the agent answers at 80
        async with open_live_service(tmp_path, routing=routing) as e2e:
            unauthorized = await e2e.http.get(e2e.base + "/live/events")
            assert unauthorized.status_code == 401

            e2e.customer.answer(LEAD, PlanReply(ONE_AGENT_PLAN))
            # rings 2 real seconds (80 simulated), accepts, talks 1 real second
            e2e.script_agent(AGENT_PHONE, AgentScript(answer_after_s=80.0, press="1", talk_s=40.0))
            snapshots: list[dict[str, Any]] = []
            guid = ""
            async with e2e.http.stream(
                "GET", e2e.base + "/live/events", params={"token": TOKEN}
            ) as response:
                assert response.status_code == 200
                e2e.place_call(LEAD, LeadScript())
                step1 = await e2e.customer.step1_for(LEAD)
                guid = step1.tracking_guid
                with trio.fail_after(WAIT_S * 2):
                    async for event in events_of(response):
                        snapshots.append(orjson.loads(event["data"]))
                        if any(f["tracking_guid"] == guid for f in snapshots[-1]["finished"]):
                            break
            seen = [state for snap in snapshots for state in leg_states(snap, guid)]
            assert "ringing" in seen
            assert "connected" in seen
            assert seen.index("ringing") < seen.index("connected")
            live_views = [
                c for snap in snapshots for c in snap["live"] if c["tracking_guid"] == guid
            ]
            assert live_views[0]["campaign"] == "acme"
            assert live_views[0]["lead_phone"] == LEAD
            done = snapshots[-1]["finished"][0]
            assert done["tracking_guid"] == guid
            assert done["outcome"] == "connected"
            assert done["agent1_id"] == AGENT_ID
            assert done["winner"] == {"agent_id": AGENT_ID, "name": "Erin Jones"}
            assert snapshots[-1]["live"] == []
