"""Step 2 over real HTTP: ``/responsecollect[.aspx]`` in front of a recording fake service.

Rules: the app is served by ``server.http.serve_http`` on 127.0.0.1 port 0 in the
test's nursery and reached with ``httpx``; every request is bounded by ``fail_after``. The fake
:class:`RecordingService` behaves like the orchestrator's contract (404 unknown call, 409 a
different plan, identical re-post answered again) and records every plan handed to it, so a
rejected request can be shown to have handed on nothing. The pure field-collection helpers are
tested synchronously at the end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial

import httpx
import pytest
import structlog
import trio

from orchestrator.config import ServerSettings, Settings
from orchestrator.errors import CallNotFound, PlanConflict
from orchestrator.model import RoutingPlan
from server.http import serve_http
from web.app import create_app

TIMEOUT = 10.0
GUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
OTHER_GUID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"

#: The API doc's "Data Example", sent as the URL it shows.
API_DOC_QUERY = (
    f"TrackingGuid={GUID}"
    "&AgentEmailAddresses=Anthony.Smith@xyz.com,Erin.Jones@xyz.com"
    "&AgentFiveMinApps=1,0"
    "&AgentID=328290,328999"
    "&AgentNames=Anthony Smith,ErinJones"
    "&AgentNMLS=848,352"
    "&AgentPhones=8885551111,9492651111"
    "&AgentTier=1,1"
    "&AgentRow=1,2"
)

API_DOC_FIELDS = {
    "TrackingGUID": GUID,
    "AgentEmailAddresses": "Anthony.Smith@xyz.com,Erin.Jones@xyz.com",
    "AgentFiveMinApps": "1,0",
    "AgentID": "328290,328999",
    "AgentNames": "Anthony Smith,ErinJones",
    "AgentNMLS": "848,352",
    "AgentPhones": "8885551111,9492651111",
    "AgentTier": "1,1",
    "AgentRow": "1,2",
}

EXPECTED_SUMMARY = {
    "TrackingGUID": GUID,
    "status": "accepted",
    "agents": 2,
    "tiers": [
        {
            "tier": 1,
            "agents": [
                {
                    "AgentID": 328290,
                    "AgentRow": 1,
                    "AgentName": "Anthony Smith",
                    "AgentPhone": "8885551111",
                    "AgentEmail": "Anthony.Smith@xyz.com",
                    "AgentNMLS": "848",
                    "AgentFiveMinApps": 1,
                    "Press1": 1,
                    "ShowAgentRealID": 0,
                },
                {
                    "AgentID": 328999,
                    "AgentRow": 2,
                    "AgentName": "ErinJones",
                    "AgentPhone": "9492651111",
                    "AgentEmail": "Erin.Jones@xyz.com",
                    "AgentNMLS": "352",
                    "AgentFiveMinApps": 0,
                    "Press1": 1,
                    "ShowAgentRealID": 0,
                },
            ],
        }
    ],
}


@dataclass
class RecordingService:
    """A fake orchestrator: calls in ``waiting`` accept one plan each; records every submit."""

    waiting: set[str] = field(default_factory=lambda: {GUID})
    plans: dict[str, RoutingPlan] = field(default_factory=dict)
    submitted: list[RoutingPlan] = field(default_factory=list)
    ready: bool = True
    live_calls: int = 1

    async def submit_plan(self, plan: RoutingPlan) -> RoutingPlan:
        self.submitted.append(plan)
        existing = self.plans.get(plan.tracking_guid)
        if existing is not None:
            if existing.fingerprint() == plan.fingerprint():
                return existing
            raise PlanConflict(f"call {plan.tracking_guid} already has a different plan")
        if plan.tracking_guid not in self.waiting:
            raise CallNotFound(f"no call with TrackingGUID {plan.tracking_guid}")
        self.waiting.discard(plan.tracking_guid)
        self.plans[plan.tracking_guid] = plan
        return plan


@pytest.fixture(name="service")
def _service() -> RecordingService:
    return RecordingService()


@pytest.fixture(name="client")
async def _client(
    nursery: trio.Nursery, service: RecordingService
) -> AsyncIterator[httpx.AsyncClient]:
    shutdown, stopped = trio.Event(), trio.Event()
    app = create_app(service, Settings())
    settings = ServerSettings(bind="127.0.0.1:0", drain_s=2.0)

    async def run(*, task_status: trio.TaskStatus[list[str]]) -> None:
        try:
            await serve_http(app, settings, shutdown_event=shutdown, task_status=task_status)
        finally:
            stopped.set()

    with trio.fail_after(TIMEOUT):
        binds = await nursery.start(partial(run))
    async with httpx.AsyncClient(base_url=binds[0], timeout=TIMEOUT) as client:
        yield client
    shutdown.set()
    with trio.fail_after(TIMEOUT):
        await stopped.wait()


def problem_fields(response: httpx.Response) -> set[str]:
    body = response.json()
    assert body["error"] == "invalid routing plan"
    return {p["field"] for p in body["problems"]}


class TestAccepted:
    """A valid plan is handed to the service once and answered 200 with its summary."""

    async def test_api_doc_example_url(
        self, client: httpx.AsyncClient, service: RecordingService
    ) -> None:
        response = await client.get(f"/responsecollect.aspx?{API_DOC_QUERY}")
        assert response.status_code == 200
        assert response.json() == EXPECTED_SUMMARY
        assert [p.tracking_guid for p in service.submitted] == [GUID]
        assert [(a.tier, a.row, a.agent_id) for a in service.submitted[0].agents] == [
            (1, 1, 328290),
            (1, 2, 328999),
        ]

    async def test_path_without_aspx(self, client: httpx.AsyncClient) -> None:
        response = await client.get(f"/responsecollect?{API_DOC_QUERY}")
        assert response.status_code == 200
        assert response.json() == EXPECTED_SUMMARY

    async def test_post_form(self, client: httpx.AsyncClient, service: RecordingService) -> None:
        response = await client.post("/responsecollect.aspx", data=API_DOC_FIELDS)
        assert response.status_code == 200
        assert response.json() == EXPECTED_SUMMARY
        assert len(service.submitted) == 1

    async def test_post_multipart_form(self, client: httpx.AsyncClient) -> None:
        files = {"unused": ("empty.txt", b"")}  # forces multipart/form-data
        response = await client.post("/responsecollect", data=API_DOC_FIELDS, files=files)
        assert response.status_code == 200
        assert response.json() == EXPECTED_SUMMARY

    async def test_post_json_with_arrays_and_numbers(self, client: httpx.AsyncClient) -> None:
        body = {
            "trackingguid": GUID,
            "AgentEmailAddresses": ["Anthony.Smith@xyz.com", "Erin.Jones@xyz.com"],
            "AgentFiveMinApps": [True, False],
            "AgentID": [328290, 328999],
            "AgentNames": ["Anthony Smith", "ErinJones"],
            "AgentNMLS": "848,352",
            "AgentPhones": [8885551111, "949-265-1111"],
            "AgentTier": [1, 1],
            "AgentRow": [1, 2],
        }
        response = await client.post("/responsecollect", json=body)
        assert response.status_code == 200
        assert response.json() == EXPECTED_SUMMARY

    async def test_post_with_fields_in_query_string_only(self, client: httpx.AsyncClient) -> None:
        response = await client.post(f"/responsecollect.aspx?{API_DOC_QUERY}")
        assert response.status_code == 200
        assert response.json()["agents"] == 2

    async def test_indexed_format(
        self, client: httpx.AsyncClient, service: RecordingService
    ) -> None:
        form = {
            "ReferralID": "42",
            "TrackingGUID": GUID,
            "Agent1ID": "501",
            "Agent1Group": "2",
            "Agent1Phone": "(888) 555-1111",
            "Agent1Press1": "0",
            "Agent2ID": "502",
            "Agent2Group": "1",
            "Agent2Phone": "9492651111",
            "Agent2Press1": "1",
        }
        response = await client.post("/responsecollect.aspx", data=form)
        assert response.status_code == 200
        assert [t["tier"] for t in response.json()["tiers"]] == [1, 2]
        plan = service.submitted[0]
        assert plan.referral_id == 42
        assert [(a.agent_id, a.press1) for a in plan.agents] == [(502, True), (501, False)]

    async def test_identical_repost_answers_200_again(
        self, client: httpx.AsyncClient, service: RecordingService
    ) -> None:
        first = await client.get(f"/responsecollect.aspx?{API_DOC_QUERY}")
        again = await client.post("/responsecollect.aspx", data=API_DOC_FIELDS)
        assert (first.status_code, again.status_code) == (200, 200)
        assert again.json() == first.json() == EXPECTED_SUMMARY
        assert list(service.plans) == [GUID]

    async def test_accepted_is_logged(self, client: httpx.AsyncClient) -> None:
        with structlog.testing.capture_logs() as logs:
            response = await client.get(f"/responsecollect.aspx?{API_DOC_QUERY}")
        assert response.status_code == 200
        accepted = [e for e in logs if e["event"] == "plan.accepted"]
        assert accepted == [
            {
                "event": "plan.accepted",
                "log_level": "info",
                "tracking_guid": GUID,
                "agents": 2,
                "tiers": [1],
            }
        ]


class TestRejected:
    """A bad request is answered 400 listing every problem, and nothing is handed on."""

    async def test_bad_plan_names_every_field(
        self, client: httpx.AsyncClient, service: RecordingService
    ) -> None:
        form = {
            **API_DOC_FIELDS,
            "AgentPhones": "8885551111,12345",
            "AgentTier": "1,1,1",
            "AgentFiveMinApps": "1,2",
        }
        with structlog.testing.capture_logs() as logs:
            response = await client.post("/responsecollect.aspx", data=form)
        assert response.status_code == 400
        assert problem_fields(response) == {"AgentPhones", "AgentTier", "AgentFiveMinApps"}
        for problem in response.json()["problems"]:
            assert set(problem) == {"field", "index", "message"}
        assert service.submitted == []
        rejected = [e for e in logs if e["event"] == "plan.rejected"]
        assert len(rejected) == 1
        assert rejected[0]["tracking_guid"] == GUID
        assert rejected[0]["problems"] == len(response.json()["problems"])
        assert rejected[0]["fields"] == ["AgentFiveMinApps", "AgentPhones", "AgentTier"]

    async def test_missing_tracking_guid(
        self, client: httpx.AsyncClient, service: RecordingService
    ) -> None:
        query = API_DOC_QUERY.replace(f"TrackingGuid={GUID}", "")
        response = await client.get(f"/responsecollect?{query}")
        assert response.status_code == 400
        assert "TrackingGUID" in problem_fields(response)
        assert service.submitted == []

    async def test_empty_request(
        self, client: httpx.AsyncClient, service: RecordingService
    ) -> None:
        response = await client.get("/responsecollect")
        assert response.status_code == 400
        assert problem_fields(response)
        assert service.submitted == []

    @pytest.mark.parametrize(
        ("content", "content_type", "message"),
        [
            (b'{"TrackingGUID": ', "application/json", "malformed JSON"),
            (b"[1, 2]", "application/json", "must be an object"),
            (b'{"AgentID": {"a": 1}}', "application/json", "nested"),
            (b"", "application/json", "empty JSON body"),
            (b"TrackingGUID=x", "text/plain", "unsupported Content-Type 'text/plain'"),
            (b"TrackingGUID=x", None, "without a Content-Type"),
        ],
    )
    async def test_unreadable_body(
        self,
        client: httpx.AsyncClient,
        service: RecordingService,
        content: bytes,
        content_type: str | None,
        message: str,
    ) -> None:
        headers = {"content-type": content_type} if content_type else {}
        response = await client.post("/responsecollect", content=content, headers=headers)
        assert response.status_code == 400
        assert message in response.json()["error"]
        assert service.submitted == []


class TestCallState:
    """The service's verdict on the call becomes 404 or 409."""

    async def test_unknown_tracking_guid_is_404(self, client: httpx.AsyncClient) -> None:
        query = API_DOC_QUERY.replace(GUID, OTHER_GUID)
        response = await client.get(f"/responsecollect.aspx?{query}")
        assert response.status_code == 404
        assert OTHER_GUID in response.json()["error"]

    async def test_different_plan_is_409(
        self, client: httpx.AsyncClient, service: RecordingService
    ) -> None:
        first = await client.get(f"/responsecollect.aspx?{API_DOC_QUERY}")
        changed = {**API_DOC_FIELDS, "AgentTier": "1,2"}
        second = await client.post("/responsecollect.aspx", data=changed)
        assert (first.status_code, second.status_code) == (200, 409)
        assert "different plan" in second.json()["error"]
        assert service.plans[GUID].tiers[0].number == 1
        assert len(service.plans[GUID].tiers) == 1  # the first plan stays in effect
