"""Optional Step 2 authentication (``step2_requires_key``): over real HTTP on 127.0.0.1 with the
whole service (signed Plivo webhooks create the calls; the carrier's REST endpoint is unreachable,
so dialling fails quietly), plus the check itself as plain functions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar
from xml.etree import ElementTree

import pytest
import trio

from orchestrator.config import Campaign, Settings
from store import SqlStore, open_store
from tests.support.service import RunningService, running_service, service_settings
from web.step2 import CampaignOf, Step2KeyCheck, step2_key_check

pytestmark = pytest.mark.e2e

KEY = "acme-step2-key-0123456789"
ACME, BETA = "8005550100", "8005550300"
PLAN = {
    "AgentEmailAddresses": "Anthony.Smith@xyz.com",
    "AgentFiveMinApps": "1",
    "AgentID": "328290",
    "AgentNames": "Anthony Smith",
    "AgentNMLS": "848",
    "AgentPhones": "8885551111",
    "AgentTier": "1",
    "AgentRow": "1",
}
UNKNOWN_GUID = "00000000-0000-4000-8000-000000000000"

_T = TypeVar("_T")


def settings_for(tmp_path: Path, *, requires_key: bool) -> Settings:
    """acme (maybe requiring its key in Step 2) and beta (no key at all)."""
    base = service_settings(f"sqlite:///{tmp_path / 'orch.db'}")
    acme = replace(base.campaigns[0], api_key=KEY, step2_requires_key=requires_key)
    beta = Campaign("beta", (BETA,), "Refinance", acme.initial_post_url, acme.outcome_post_url)
    return replace(base, campaigns=(acme, beta))


async def lead_calls(svc: RunningService, call_uuid: str, number: str = ACME) -> str:
    """A signed inbound answer request to ``number``: returns the TrackingGUID."""
    response = await svc.carrier_post(
        "/plivo/answer",
        {
            "CallUUID": call_uuid,
            "From": "19495550000",
            "To": "1" + number,
            "Direction": "inbound",
            "CallStatus": "in-progress",
        },
    )
    assert response.status_code == 200, response.text
    room = ElementTree.fromstring(response.text).find(".//Conference")
    assert room is not None
    assert room.text
    return room.text


async def eventually(check: Callable[[], Awaitable[_T | None]], timeout_s: float = 5.0) -> _T:
    with trio.fail_after(timeout_s):
        # the service's writer commits on its own schedule; there is no event to wait on
        while (value := await check()) is None:  # noqa: ASYNC110
            await trio.sleep(0.02)
    return value


async def post_plan(
    svc: RunningService, guid: str, *, headers: dict[str, str] | None = None, **extra: str
) -> tuple[int, dict[str, object]]:
    response = await svc.http.post(
        f"{svc.base}/responsecollect.aspx",
        data={"TrackingGuid": guid, **PLAN, **extra},
        headers=headers or {},
    )
    return response.status_code, response.json()


class TestOff:
    """Off by default: Step 2 without any key works as before."""

    async def test_no_key_needed_without_step2_requires_key(self, tmp_path: Path) -> None:
        """A campaign with an api_key but step2_requires_key = false takes plans without it."""
        async with running_service(settings_for(tmp_path, requires_key=False)) as svc:
            guid = await lead_calls(svc, "lead-1")
            status, body = await post_plan(svc, guid)
            assert status == 200, body
            assert body["status"] == "accepted"


class TestOn:
    """step2_requires_key = true: no plan without the campaign's key; nothing changes."""

    async def test_refused_without_the_key_then_taken_with_it(self, tmp_path: Path) -> None:
        """No key, a wrong key (header or field), even an invalid plan: 401 before anything
        else; the call keeps waiting and takes the plan once the key is right."""
        settings = settings_for(tmp_path, requires_key=True)
        async with running_service(settings) as svc:
            guid = await lead_calls(svc, "lead-1")
            reader = open_store(settings.store.url)
            try:
                await eventually(lambda: reader.get_call(guid))
                refusals = [
                    await post_plan(svc, guid),
                    await post_plan(svc, guid, headers={"X-Api-Key": "wrong-0123456789abcdef"}),
                    await post_plan(svc, guid, ApiKey="wrong-0123456789abcdef"),
                    await post_plan(svc, guid, AgentPhones="123"),  # invalid AND no key
                ]
                for status, body in refusals:
                    assert status == 401, body
                    assert set(body) == {"error"}
                await assert_nothing_stored(reader, guid)

                status, body = await post_plan(svc, guid, headers={"X-Api-Key": KEY})
                assert status == 200, body
                assert await eventually(lambda: fingerprint(reader, guid))
                agent = await eventually(lambda: reader.get_agent(328290))
                assert agent.name == "Anthony Smith"
            finally:
                reader.close()

    async def test_key_as_a_field_any_case_or_in_the_query(self, tmp_path: Path) -> None:
        """``apikey`` in the form, or ``ApiKey`` in a GET query string, authenticates too."""
        async with running_service(settings_for(tmp_path, requires_key=True)) as svc:
            first = await lead_calls(svc, "lead-1")
            status, body = await post_plan(svc, first, apikey=KEY)
            assert status == 200, body
            second = await lead_calls(svc, "lead-2")
            response = await svc.http.get(
                f"{svc.base}/responsecollect",
                params={"TrackingGUID": second, **PLAN, "ApiKey": KEY},
            )
            assert response.status_code == 200, response.text

    async def test_unknown_guid_is_404_whatever_the_key(self, tmp_path: Path) -> None:
        """An unknown TrackingGUID gets its 404 with no key at all."""
        async with running_service(settings_for(tmp_path, requires_key=True)) as svc:
            status, body = await post_plan(svc, UNKNOWN_GUID)
            assert status == 404, body

    async def test_other_campaigns_need_no_key(self, tmp_path: Path) -> None:
        """Only calls of the key-requiring campaign are checked: a beta call takes a plan
        without a key, and the check matches the TrackingGUID in any case."""
        async with running_service(settings_for(tmp_path, requires_key=True)) as svc:
            beta = await lead_calls(svc, "lead-1", BETA)
            status, body = await post_plan(svc, beta)
            assert status == 200, body
            acme = await lead_calls(svc, "lead-2", ACME)
            status, body = await post_plan(svc, acme.upper())
            assert status == 401, body


async def fingerprint(reader: SqlStore, guid: str) -> str | None:
    call = await reader.get_call(guid)
    return None if call is None else call.plan_fingerprint


async def assert_nothing_stored(reader: SqlStore, guid: str) -> None:
    call = await reader.get_call(guid)
    assert call is not None
    assert call.plan_fingerprint is None
    assert (await reader.row_counts())["agents"] == 0


class TestCheck:
    """The check as a plain function."""

    def settings(self, requires_key: bool) -> Settings:
        acme = Campaign(
            "acme",
            (ACME,),
            "Purchase",
            "http://c.test/i",
            "http://c.test/o",
            api_key=KEY,
            step2_requires_key=requires_key,
        )
        return Settings(campaigns=(acme,))

    def test_absent_when_no_campaign_requires_a_key(self) -> None:
        """No campaign asks: no check at all (Step 2 exactly as before)."""
        assert step2_key_check(self.settings(False), campaign_in({})) is None
        assert isinstance(step2_key_check(self.settings(True), campaign_in({})), Step2KeyCheck)

    async def test_decisions(self) -> None:
        check = Step2KeyCheck(self.settings(True), campaign_in({"g-acme": "acme"}))
        assert await check("G-ACME", None, {}) is not None
        assert await check("g-acme", KEY, {}) is None
        assert await check("g-acme", None, {"apiKey": [KEY]}) is None
        assert await check("g-acme", "nope", {"ApiKey": [KEY]}) == "wrong API key"  # header wins
        assert await check("g-other", None, {}) is None  # not live: 404 / 409 come later
        assert await check(None, None, {}) is None  # no TrackingGUID: the parser's 400


def campaign_in(live: dict[str, str]) -> CampaignOf:
    """``Orchestrator.campaign_of_any`` over a fixed table of live calls."""

    async def campaign_of(guid: str) -> str | None:
        await trio.lowlevel.checkpoint()
        return live.get(guid)

    return campaign_of
