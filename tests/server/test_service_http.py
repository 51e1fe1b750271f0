"""The whole service over real HTTP on 127.0.0.1: Step 2 against a live call, with the store.

The carrier's answer webhook creates the call (signed like Plivo does); Step 2 then arrives as
the customer's integration would send it. The carrier REST endpoint is unreachable here, so
dialling fails quietly: these tests are about intake, validation and what gets stored.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
import trio

from store import open_store
from tests.support.service import running_service, service_settings

pytestmark = pytest.mark.e2e

API_DOC_QUERY = (
    "AgentEmailAddresses=Anthony.Smith@xyz.com,Erin.Jones@xyz.com&AgentFiveMinApps=1,0"
    "&AgentID=328290,328999&AgentNames=Anthony Smith,ErinJones&AgentNMLS=848,352"
    "&AgentPhones=8885551111,9492651111&AgentTier=1,1&AgentRow=1,2"
)


async def eventually(check, timeout_s: float = 5.0):  # type: ignore[no-untyped-def]
    """Poll ``check`` (async, returns a value or None) until it returns something."""
    with trio.fail_after(timeout_s):
        # The service's writer commits on its own schedule; there is no event to wait on.
        while (value := await check()) is None:  # noqa: ASYNC110
            await trio.sleep(0.02)
    return value


async def test_api_doc_example_request_is_accepted_and_agents_upserted(tmp_path: Path) -> None:
    """The API doc's example Step 2 URL → 200, two agents in tier 1 (rows 1 and 2), stored."""
    settings = service_settings(f"sqlite:///{tmp_path / 'orch.db'}")
    async with running_service(settings) as svc:
        guid = await svc.lead_calls("lead-1")
        url = f"{svc.base}/responsecollect.aspx?TrackingGuid={guid}&{API_DOC_QUERY}"
        response = await svc.http.get(url.replace(" ", "%20"))
        assert response.status_code == 200, response.text
        body = response.json()
        (tier,) = body["tiers"]
        assert tier["tier"] == 1
        assert [(a["AgentRow"], a["AgentID"]) for a in tier["agents"]] == [(1, 328290), (2, 328999)]
        anthony = tier["agents"][0]
        assert anthony == {
            "AgentID": 328290,
            "AgentRow": 1,
            "AgentName": "Anthony Smith",
            "AgentPhone": "8885551111",
            "AgentEmail": "Anthony.Smith@xyz.com",
            "AgentNMLS": "848",
            "AgentFiveMinApps": 1,
            "Press1": 1,
            "ShowAgentRealID": 0,
        }
        reader = open_store(settings.store.url)
        try:
            agent = await eventually(lambda: reader.get_agent(328290))
            assert (agent.name, agent.email, agent.phone, agent.nmls, agent.five_min_apps) == (
                "Anthony Smith",
                "Anthony.Smith@xyz.com",
                "8885551111",
                "848",
                True,
            )
            erin = await eventually(lambda: reader.get_agent(328999))
            assert (erin.name, erin.phone, erin.five_min_apps) == ("ErinJones", "9492651111", False)
            # The same plan again (a customer retry) gets the same answer.
            again = await svc.http.get(url.replace(" ", "%20"))
            assert again.status_code == 200
            assert again.json() == body
        finally:
            reader.close()


BAD_PLANS = [
    ("AgentPhones", "AgentPhones=8885551111,12345"),
    ("AgentTier", "AgentTier=1,x"),
    ("AgentRow", "AgentRow=1"),
    ("AgentEmailAddresses", "AgentEmailAddresses=Anthony.Smith@xyz.com,not-an-email"),
    ("AgentFiveMinApps", "AgentFiveMinApps=1,2"),
    ("AgentID", "AgentID=328290,abc"),
    ("AgentNames", "AgentNames=" + "A" * 101 + ",ErinJones"),
]


async def test_each_bad_plan_gets_400_naming_the_field_and_nothing_is_stored(
    tmp_path: Path,
) -> None:
    """docs/contract.md §3.3: every bad plan → 400 naming its field; no agent, plan or leg is
    stored."""
    settings = service_settings(f"sqlite:///{tmp_path / 'orch.db'}")
    async with running_service(settings) as svc:
        guid = await svc.lead_calls("lead-1")
        reader = open_store(settings.store.url)
        try:
            await eventually(lambda: reader.get_call(guid))
            for field, replacement in BAD_PLANS:
                fields = dict(p.split("=", 1) for p in API_DOC_QUERY.split("&"))
                key, value = replacement.split("=", 1)
                fields[key] = value
                query = "&".join(f"{k}={quote(v, safe=',@')}" for k, v in fields.items())
                response = await svc.http.post(
                    f"{svc.base}/responsecollect?TrackingGUID={guid}&{query}"
                )
                assert response.status_code == 400, (field, response.text)
                problems = response.json()["problems"]
                assert field in {p["field"] for p in problems}, (field, problems)
            counts = await reader.row_counts()
            assert (counts["agents"], counts["legs"]) == (0, 0)
            call = await reader.get_call(guid)
            assert call is not None
            assert call.plan_fingerprint is None
            # ... and the call is still waiting: a good plan is taken afterwards.
            good = f"{svc.base}/responsecollect?TrackingGUID={guid}&{API_DOC_QUERY}"
            ok = await svc.http.get(good.replace(" ", "%20"))
            assert ok.status_code == 200
        finally:
            reader.close()


async def test_unknown_tracking_guid_is_404_and_a_different_plan_409(tmp_path: Path) -> None:
    settings = service_settings(f"sqlite:///{tmp_path / 'orch.db'}")
    async with running_service(settings) as svc:
        unknown = "00000000-0000-4000-8000-000000000000"
        response = await svc.http.get(
            f"{svc.base}/responsecollect?TrackingGUID={unknown}&{API_DOC_QUERY}".replace(" ", "%20")
        )
        assert response.status_code == 404
        guid = await svc.lead_calls("lead-1")
        first = await svc.http.get(
            f"{svc.base}/responsecollect?TrackingGUID={guid}&{API_DOC_QUERY}".replace(" ", "%20")
        )
        assert first.status_code == 200
        other = await svc.http.post(
            f"{svc.base}/responsecollect",
            data={
                "TrackingGUID": guid,
                "Agent1ID": "5",
                "Agent1Group": "1",
                "Agent1Phone": "8885550000",
                "Agent1Press1": "1",
            },
        )
        assert other.status_code == 409
