"""The admin hangup end to end: ``POST /calls/{guid}/hangup`` through the whole service.

Customer ⇄ service ⇄ Plivo adapter ⇄ built-in simulator over real HTTP on 127.0.0.1 (the
harness of ``tests/support/e2e.py`` with ``operator.token`` set). Each test ends a call at a
different moment — agents ringing, agent and lead connected, waiting for the plan — and checks
that every leg and the lead end at the simulator, that the Step 3 post arrives with the usual
outcome, and what ``GET /calls`` and ``GET /calls/{guid}`` then say. At the end of every test
the simulator must hold no live call.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from orchestrator.config import RoutingSettings
from orchestrator.model import HANGUP_AGENT_ID, LegResult
from simulator import AgentScript, EventKind, LeadScript
from tests.support.e2e import (
    API_DOC_PLAN,
    E2E,
    E2E_ROUTING,
    WAIT_S,
    PlanReply,
    assert_in_order,
    open_e2e,
)

pytestmark = pytest.mark.e2e

TOKEN = "operator-token-for-e2e-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LEAD = "9495550000"
ANTHONY, ERIN = "8885551111", "9492651111"  # the API doc's agents 328290 and 328999


def open_operator_e2e(
    tmp_path: Path, *, routing: RoutingSettings = E2E_ROUTING
) -> AbstractAsyncContextManager[E2E]:
    """``tests.support.e2e.open_e2e`` with an operator token configured."""
    return open_e2e(tmp_path, routing=routing, operator_token=TOKEN)


async def operator_get(e2e: E2E, path: str, **params: str) -> dict[str, Any]:
    response = await e2e.http.get(e2e.base + path, params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def hang_up(e2e: E2E, guid: str, *, auth: bool = True, **body: str) -> httpx.Response:
    return await e2e.http.post(
        e2e.base + f"/calls/{guid}/hangup", json=body or None, headers=AUTH if auth else {}
    )


async def until_live(e2e: E2E, guid: str, check: Callable[[dict[str, Any]], bool]) -> None:
    """Poll ``GET /calls/{guid}`` until its ``live`` snapshot satisfies ``check``."""
    with trio.fail_after(WAIT_S):
        while True:
            live = (await operator_get(e2e, f"/calls/{guid}"))["live"]
            if live is not None and check(live):
                return
            # the snapshot changes with carrier callbacks; there is no event to await over HTTP
            await trio.sleep(0.02)


def ended_status(e2e: E2E, phone: str) -> str:
    """The simulator's final status of the one call of ``phone``."""
    end = e2e.sim_event(phone, EventKind.CALL_ENDED)
    status = end.data["status"]
    assert isinstance(status, str)
    return status


class TestHangupWhileRinging:
    """Agents ringing: every leg is cancelled, the lead is hung up, Agent1ID=999999."""

    async def test_every_leg_and_the_lead_end(self, tmp_path: Path) -> None:
        # A long ring timeout: a leg still up after the hangup would ring on, not be cancelled.
        routing = replace(E2E_ROUTING, ring_timeout_s=400.0)
        async with open_operator_e2e(tmp_path, routing=routing) as e2e:
            e2e.customer.answer(LEAD, PlanReply(API_DOC_PLAN))
            e2e.script_agent(ANTHONY, AgentScript(no_answer=True))
            e2e.script_agent(ERIN, AgentScript(no_answer=True))
            e2e.place_call(LEAD)  # the lead stays on the line
            guid = (await e2e.customer.step1_for(LEAD)).tracking_guid

            await until_live(
                e2e,
                guid,
                lambda live: [leg["state"] for leg in live["legs"]] == ["ringing", "ringing"],
            )
            listed = await operator_get(e2e, "/calls", phone=LEAD)
            assert [(c["tracking_guid"], c["outcome"]) for c in listed["calls"]] == [(guid, None)]

            # without the token: 401, and the call goes on
            refused = await hang_up(e2e, guid, auth=False)
            assert refused.status_code == 401
            assert e2e.service.orchestrator.call(guid) is not None

            response = await hang_up(e2e, guid, reason="test: stuck call")
            assert response.status_code == 202, response.text
            assert response.json() == {"status": "ending", "tracking_guid": guid}

            outcome = await e2e.customer.outcome_for(guid)
            assert outcome.form == {
                "ReferralID": "0",
                "TrackingGUID": guid,
                "Agent1ID": str(HANGUP_AGENT_ID),
                "MessageLink": "",
            }
            with trio.fail_after(WAIT_S):
                await e2e.sim.wait_idle()
            assert (ended_status(e2e, ANTHONY), ended_status(e2e, ERIN)) == ("cancel", "cancel")
            assert ended_status(e2e, LEAD) == "completed"
            for phone in (ANTHONY, ERIN):
                assert e2e.sim_events(phone, EventKind.CALL_ANSWERED) == []

            call = await e2e.stored_call(guid)
            shown = await operator_get(e2e, f"/calls/{guid}")
            assert (shown["state"], shown["outcome"], shown["agent1_id"], shown["live"]) == (
                "finished",
                "hung_up",
                HANGUP_AGENT_ID,
                None,
            )
            assert {leg["agent_id"]: leg["result"] for leg in shown["legs"]} == {
                328290: LegResult.CANCELLED.value,
                328999: LegResult.CANCELLED.value,
            }
            assert {leg["agent_id"]: leg["name"] for leg in shown["legs"]} == {
                328290: "Anthony Smith",
                328999: "ErinJones",
            }
            events = [e["event"] for e in shown["events"]]
            assert events == [e.event for e in call.events]
            assert_in_order(events, ["tier.started", "call.ended_by_operator", "call.finished"])
            operator = next(e for e in shown["events"] if e["event"] == "call.ended_by_operator")
            assert operator["detail"]["reason"] == "test: stuck call"
            assert "call.voicemail" not in events

            again = await hang_up(e2e, guid)
            assert again.status_code == 409
            assert again.json()["outcome"] == "hung_up"
            assert len(e2e.customer.outcomes_for(guid)) == 1


class TestHangupWhileConnected:
    """Agent and lead talking: both are hung up; the outcome is the winner and the recording."""

    async def test_connected_call_keeps_its_winner(self, tmp_path: Path) -> None:
        async with open_operator_e2e(tmp_path) as e2e:
            e2e.customer.answer(LEAD, PlanReply(API_DOC_PLAN))
            e2e.script_agent(ANTHONY, AgentScript(answer_after_s=1.0, press="1", talk_s=None))
            e2e.script_agent(ERIN, AgentScript(no_answer=True))
            e2e.place_call(LEAD, LeadScript(talk_s=None))  # nobody leaves on their own
            guid = (await e2e.customer.step1_for(LEAD)).tracking_guid

            await until_live(e2e, guid, lambda live: live["state"] == "connected")
            response = await hang_up(e2e, guid)
            assert response.status_code == 202, response.text

            outcome = await e2e.customer.outcome_for(guid)
            assert outcome.form["Agent1ID"] == "328290"
            recordings = e2e.sim.log.events(EventKind.RECORDING_FINISHED)
            assert [e.data["url"] for e in recordings if e.data.get("room") == guid] == [
                outcome.form["MessageLink"]
            ]
            with trio.fail_after(WAIT_S):
                await e2e.sim.wait_idle()
            assert ended_status(e2e, ERIN) == "cancel"
            assert ended_status(e2e, ANTHONY) == "completed"
            assert ended_status(e2e, LEAD) == "completed"

            await e2e.stored_call(guid)
            shown = await operator_get(e2e, f"/calls/{guid}")
            assert (shown["outcome"], shown["agent1_id"], shown["agent_name"]) == (
                "connected",
                328290,
                "Anthony Smith",
            )
            assert shown["message_link"] == outcome.form["MessageLink"]
            assert_in_order(
                [e["event"] for e in shown["events"]],
                ["call.connected", "call.ended_by_operator", "call.finished"],
            )


class TestHangupBeforeThePlan:
    """Waiting for Step 2: the lead is hung up at once, no agent is ever rung."""

    async def test_no_leg_is_placed(self, tmp_path: Path) -> None:
        async with open_operator_e2e(tmp_path) as e2e:
            e2e.place_call(LEAD)  # the customer never answers Step 2
            guid = (await e2e.customer.step1_for(LEAD)).tracking_guid
            await until_live(e2e, guid, lambda live: live["state"] == "waiting_plan")
            assert (await hang_up(e2e, guid)).status_code == 202

            outcome = await e2e.customer.outcome_for(guid)
            assert outcome.form["Agent1ID"] == str(HANGUP_AGENT_ID)
            with trio.fail_after(WAIT_S):
                await e2e.sim.wait_idle()
            assert ended_status(e2e, LEAD) == "completed"
            assert e2e.sim.counts()["placed"] == 1  # the lead's call only

            call = await e2e.stored_call(guid)
            assert call.legs == ()
            # a Step 2 plan now comes too late
            late = await e2e.http.post(
                e2e.base + "/responsecollect", data={"TrackingGUID": guid, **API_DOC_PLAN}
            )
            assert late.status_code == 409
            unknown = await hang_up(e2e, "00000000-0000-4000-8000-000000000000")
            assert unknown.status_code == 404
