"""The operator history routes over real HTTP on 127.0.0.1, against SQLite and PostgreSQL.

The app is ``web.app.create_app`` with the history blueprint, served by
``server.http.serve_http`` on port 0, reading a real store seeded with the calls of
``tests/test_history_store.py``; the orchestrator's live side (``live_snapshot``,
``hang_up``) is a small fake, so a "live" call is whatever the test says. The admin hangup
through the whole service and the simulator is ``tests/test_admin_hangup.py``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import httpx
import pytest
import trio

from orchestrator.config import (
    ServerSettings,
    Settings,
)
from orchestrator.errors import StoreError
from orchestrator.history_query import AgentQuery, CallQuery
from orchestrator.read_models import AgentPage, CallPage, CallRecord
from orchestrator.records import EventLogged
from server.http import serve_http
from store import SqlStore
from tests.support.history import (
    ALL_NEWEST_FIRST,
    ANN,
    API_KEY,
    AUTH,
    BOB,
    C1,
    C2,
    C3,
    C4,
    C5,
    C6,
    CARRIER_TOKEN,
    LEAD_A,
    T0,
    TOKEN,
    Api,
    FakeOrchestrator,
    guid,
    seed_records,
    serve,
    snapshot,
)
from tests.support.stores import (  # noqa: F401  (fixtures: backend, store, running)
    _backend,
    _running,
    _store,
)
from web.app import create_app
from web.history import CALL_COLUMNS, create_history_blueprint


@pytest.fixture(name="api")
async def _api(running: SqlStore, nursery: trio.Nursery) -> AsyncIterator[Api]:
    """The seeded store (plus an event quoting two secrets) behind the history routes."""
    leak = f"401 from https://api.plivo.com with {CARRIER_TOKEN} and key {API_KEY}"
    await running.record(
        *seed_records(), EventLogged(C1, "call.failed_once", T0 + 7, f'{{"error": "{leak}"}}')
    )
    await running.flush()
    api = await serve(running, nursery, FakeOrchestrator(live={C5: snapshot(C5)}))
    async with api.http:
        yield api


def rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.headers["content-type"].startswith("text/csv"), response.headers
    return list(csv.DictReader(io.StringIO(response.text)))


class TestListCalls:
    """GET /calls: JSON and CSV, filters, pages."""

    async def test_json_newest_first(self, api: Api) -> None:
        response = await api.get("/calls")
        assert response.status_code == 200, response.text
        body = response.json()
        assert [c["tracking_guid"] for c in body["calls"]] == ALL_NEWEST_FIRST
        assert body["next_cursor"] is None
        c1 = body["calls"][-1]
        assert list(c1) == list(CALL_COLUMNS)
        assert (c1["outcome"], c1["agent1_id"], c1["agent_name"], c1["legs"], c1["tiers"]) == (
            "connected",
            ANN,
            "Ann Smith",
            2,
            1,
        )
        assert (c1["started_at"], c1["duration_s"]) == ("2025-11-29T07:06:40.000Z", 60.0)

    async def test_filters(self, api: Api) -> None:
        """Each filter through HTTP: ISO and epoch times, a formatted phone, repeats."""

        async def listed(**params: Any) -> list[str]:
            response = await api.get("/calls", **params)
            assert response.status_code == 200, response.text
            return [c["tracking_guid"] for c in response.json()["calls"]]

        assert await listed(since="2025-11-29T07:10:00Z") == [C5, C6, C4, C3]
        assert await listed(until=str(int(T0 + 200))) == [C2, C1]
        assert await listed(campaign="beta") == [C4, C3]
        assert await listed(outcome="hung_up,redirected") == [C6, C4, C3]
        assert await listed(phone="+1 (949) 555-0001") == [C3, C1]
        assert await listed(agent=str(ANN)) == [C2, C1]
        assert await listed(agent=str(BOB), outcome="hung_up") == [C6]

    async def test_pages_follow_the_cursor(self, api: Api) -> None:
        """limit=4: two pages, every call once; a cursor from /agents is refused here."""
        first = (await api.get("/calls", limit="4")).json()
        assert [c["tracking_guid"] for c in first["calls"]] == ALL_NEWEST_FIRST[:4]
        second = (await api.get("/calls", limit="4", cursor=first["next_cursor"])).json()
        assert [c["tracking_guid"] for c in second["calls"]] == ALL_NEWEST_FIRST[4:]
        assert second["next_cursor"] is None
        agents_cursor = (await api.get("/agents", limit="1")).json()["next_cursor"]
        wrong = await api.get("/calls", cursor=agents_cursor)
        assert wrong.status_code == 400
        assert wrong.json()["problems"][0]["field"] == "cursor"

    async def test_csv_by_parameter_and_by_accept(self, api: Api) -> None:
        """format=csv or Accept: text/csv; the CSV parses back; the cursor in a header."""
        by_param = await api.get("/calls", format="csv", limit="5")
        parsed = rows(by_param)
        assert [r["tracking_guid"] for r in parsed] == ALL_NEWEST_FIRST[:5]
        assert list(parsed[0]) == list(CALL_COLUMNS)
        c2 = parsed[-1]
        assert (c2["outcome"], c2["agent1_id"], c2["legs"], c2["tiers"], c2["message_link"]) == (
            "voicemail",
            "0",
            "2",
            "2",
            "https://media.example/vm/c2.mp3",
        )
        live = parsed[0]
        assert (live["outcome"], live["finished_at"], live["state"]) == ("", "", "dialling")
        cursor = by_param.headers["X-Next-Cursor"]
        rest = rows(await api.get("/calls", format="csv", cursor=cursor))
        assert [r["tracking_guid"] for r in rest] == [C1]
        by_accept = await api.http.get(
            api.url + "/calls", params={"phone": LEAD_A}, headers={**AUTH, "Accept": "text/csv"}
        )
        assert [r["tracking_guid"] for r in rows(by_accept)] == [C3, C1]
        assert "X-Next-Cursor" not in by_accept.headers

    async def test_bad_parameters_are_400_with_every_problem(self, api: Api) -> None:
        response = await api.get(
            "/calls",
            since="tomorrow",
            outcome="won",
            phone="555",
            limit="1000",
            format="xml",
            campain="acme",
        )
        assert response.status_code == 400
        body = response.json()
        assert body["error"] == "invalid request"
        assert {p["field"] for p in body["problems"]} == {
            "since",
            "outcome",
            "phone",
            "limit",
            "format",
            "campain",
        }
        assert all(set(p) == {"field", "index", "message"} for p in body["problems"])


class TestShowCall:
    """GET /calls/{guid}: the call, its legs with names, its events, its Step 3 row."""

    async def test_finished_call(self, api: Api) -> None:
        response = await api.get(f"/calls/{C1.upper()}")
        assert response.status_code == 200, response.text
        call = response.json()
        assert (call["tracking_guid"], call["outcome"], call["agent1_id"], call["agent_name"]) == (
            C1,
            "connected",
            ANN,
            "Ann Smith",
        )
        assert (call["state"], call["plan_received"], call["live"]) == ("finished", True, None)
        assert [
            (leg["agent_id"], leg["name"], leg["tier"], leg["result"]) for leg in call["legs"]
        ] == [(ANN, "Ann Smith", 1, "accepted"), (BOB, "Bob Jones", 1, "cancelled")]
        ann = call["legs"][0]
        assert (ann["started_at"], ann["answered_at"], ann["ended_at"]) == (
            "2025-11-29T07:06:42.000Z",
            "2025-11-29T07:06:44.000Z",
            "2025-11-29T07:06:47.000Z",
        )
        events = {e["event"]: e for e in call["events"]}
        assert events["call.connected"]["detail"] == {"agent_id": ANN, "tier": 1}
        assert events["call.connected"]["offset_s"] == 5.0
        assert events["call.note"]["detail"] == "not json"
        assert call["step3"]["fields"]["Agent1ID"] == str(ANN)
        assert (call["step3"]["attempts"], call["step3"]["delivered_at"]) == (0, None)

    async def test_no_credentials_in_answers(self, api: Api) -> None:
        """An event quoting the carrier's token and a campaign's API key is scrubbed."""
        text = (await api.get(f"/calls/{C1}")).text
        assert CARRIER_TOKEN not in text
        assert API_KEY not in text
        assert "401 from https://api.plivo.com with *** and key ***" in text

    async def test_live_call_carries_its_snapshot(self, api: Api) -> None:
        call = (await api.get(f"/calls/{C5}")).json()
        assert call["state"] == "dialling"
        assert call["live"] == snapshot(C5)
        assert call["step3"] is None
        assert [leg["result"] for leg in call["legs"]] == [None]

    async def test_live_call_not_yet_stored(self, api: Api) -> None:
        """A call the writer has not committed yet is shown from its snapshot."""
        fresh = guid(50)
        api.fake.live[fresh] = snapshot(fresh, state="initial_post")
        call = (await api.get(f"/calls/{fresh}")).json()
        assert (call["tracking_guid"], call["state"], call["started_at"]) == (
            fresh,
            "initial_post",
            None,
        )
        assert call["live"]["legs"][0]["state"] == "ringing"

    async def test_unknown_malformed_and_parameters(self, api: Api) -> None:
        """Unknown: 404. Not a UUID, or a parameter / CSV asked for: 400."""
        unknown = await api.get(f"/calls/{guid(77)}")
        assert unknown.status_code == 404
        assert "error" in unknown.json()
        assert (await api.get("/calls/not-a-guid")).status_code == 400
        assert (await api.get(f"/calls/{C1}", format="csv")).status_code == 400
        assert (await api.get(f"/calls/{C1}", verbose="1")).status_code == 400


class TestAgents:
    """GET /agents: first/last seen, counts, JSON and CSV."""

    async def test_json_and_csv(self, api: Api) -> None:
        body = (await api.get("/agents")).json()
        assert [(a["agent_id"], a["legs"], a["accepted"]) for a in body["agents"]] == [
            (103, 1, 0),
            (BOB, 3, 0),
            (ANN, 2, 1),
        ]
        assert (body["agents"][1]["first_seen"], body["agents"][1]["last_seen"]) == (
            "2025-11-29T07:06:41.000Z",
            "2025-11-29T07:13:21.000Z",
        )
        parsed = rows(await api.get("/agents", format="csv"))
        assert parsed[0]["name"] == "'=Cid"  # a formula is defused for spreadsheets
        assert (parsed[2]["name"], parsed[2]["five_min_apps"]) == ("Ann Smith", "0")

    async def test_filters_and_pages(self, api: Api) -> None:
        by_name = (await api.get("/agents", name="jones")).json()["agents"]
        assert [a["agent_id"] for a in by_name] == [BOB]
        first = (await api.get("/agents", limit="2")).json()
        second = (await api.get("/agents", limit="2", cursor=first["next_cursor"])).json()
        assert [a["agent_id"] for a in first["agents"] + second["agents"]] == [103, BOB, ANN]
        assert second["next_cursor"] is None
        bad = await api.get("/agents", outcome="connected")
        assert bad.status_code == 400


class TestHangupRoute:
    """POST /calls/{guid}/hangup: 202 live, 404 unknown, 409 finished or not live here."""

    async def test_live_call_is_ended_with_the_reason(self, api: Api) -> None:
        response = await api.post(f"/calls/{C5}/hangup", json={"reason": "lead complained"})
        assert response.status_code == 202
        assert response.json() == {"status": "ending", "tracking_guid": C5}
        default = await api.post(f"/calls/{C5}/hangup")
        assert default.status_code == 202
        by_query = await api.post(f"/calls/{C5}/hangup", params={"reason": "q"})
        assert by_query.status_code == 202
        assert api.fake.ended == [(C5, "lead complained"), (C5, "operator"), (C5, "q")]

    async def test_not_live(self, api: Api) -> None:
        finished = await api.post(f"/calls/{C1}/hangup")
        assert finished.status_code == 409
        assert (finished.json()["outcome"], finished.json()["finished_at"]) == (
            "connected",
            "2025-11-29T07:07:40.000Z",
        )
        del api.fake.live[C5]  # stored as dialling, but not live in this instance
        elsewhere = await api.post(f"/calls/{C5}/hangup")
        assert elsewhere.status_code == 409
        assert elsewhere.json()["state"] == "dialling"
        assert (await api.post(f"/calls/{guid(77)}/hangup")).status_code == 404
        assert (await api.post("/calls/nope/hangup")).status_code == 400
        too_long = await api.post(f"/calls/{C5}/hangup", data={"reason": "x" * 201})
        assert too_long.status_code == 400
        assert api.fake.ended == []

    async def test_owner_that_does_not_answer_is_503(self, api: Api) -> None:
        """A call live on another instance that did not answer the hand-over: 503, retry."""
        del api.fake.live[C5]
        api.fake.elsewhere = None
        response = await api.post(f"/calls/{C5}/hangup")
        assert response.status_code == 503
        assert "did not answer" in response.json()["error"]


class TestOperatorToken:
    """Every route: 401 without the token or with a wrong one, and nothing changes."""

    ROUTES = (
        ("GET", "/calls"),
        ("GET", f"/calls/{C5}"),
        ("GET", "/agents"),
        ("POST", f"/calls/{C5}/hangup"),
        ("GET", f"/calls/{guid(77)}"),
        ("GET", "/calls?format=csv"),
    )

    async def test_401_everywhere(self, api: Api) -> None:
        for method, path in self.ROUTES:
            for headers in (
                {},
                {"Authorization": "Bearer wrong-token-0123456789"},
                {"Authorization": f"Basic {TOKEN}"},
            ):
                response = await api.http.request(method, api.url + path, headers=headers)
                assert response.status_code == 401, (method, path, headers)
                assert response.json() == {"error": "operator token required"}
                assert response.headers["WWW-Authenticate"] == "Bearer"
        wrong_query = await api.http.get(api.url + "/calls", params={"token": "x" * 20})
        assert wrong_query.status_code == 401
        assert api.fake.ended == []  # the hangups above ended nothing

    async def test_token_as_query_parameter(self, api: Api) -> None:
        """``?token=`` works too (and is not taken for a filter)."""
        response = await api.http.get(
            api.url + "/calls", params={"token": TOKEN, "campaign": "beta"}
        )
        assert response.status_code == 200
        assert [c["tracking_guid"] for c in response.json()["calls"]] == [C4, C3]

    async def test_no_token_configured_means_off(self, nursery: trio.Nursery) -> None:
        """With operator.token empty, even an empty token gets 401."""
        fake = FakeOrchestrator(live={C5: snapshot(C5)})
        config = Settings()
        app = create_app(
            fake, config, blueprints=[create_history_blueprint(fake, FailingStore(), config)]
        )
        stop = trio.Event()
        server = ServerSettings(bind="127.0.0.1:0", public_url="http://127.0.0.1", drain_s=0.5)
        binds = await nursery.start(partial(serve_http, app, server, shutdown_event=stop))
        async with httpx.AsyncClient(timeout=10) as http:
            for headers in ({}, {"Authorization": "Bearer"}):
                response = await http.post(
                    binds[0] + f"/calls/{C5}/hangup", headers=headers, params={"token": ""}
                )
                assert response.status_code == 401
        assert fake.ended == []
        stop.set()


class FailingStore:
    """A store whose every read fails."""

    async def list_calls(self, query: CallQuery) -> CallPage:
        raise StoreError("database is down")

    async def call_record(self, tracking_guid: str) -> CallRecord | None:
        raise StoreError("database is down")

    async def list_agents(self, query: AgentQuery) -> AgentPage:
        raise StoreError("database is down")


async def test_unreadable_store_is_503(nursery: trio.Nursery) -> None:
    """A failing store: 503 with a retry hint on every read route; a live hangup still works
    (it needs no store)."""
    api = await serve(FailingStore(), nursery, FakeOrchestrator(live={C5: snapshot(C5)}))
    async with api.http:
        for path in ("/calls", "/agents", f"/calls/{C1}"):
            response = await api.get(path)
            assert response.status_code == 503, path
            assert "try again" in response.json()["error"]
        assert (await api.post(f"/calls/{C1}/hangup")).status_code == 503
        assert (await api.post(f"/calls/{C5}/hangup")).status_code == 202
