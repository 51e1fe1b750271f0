"""The Plivo blueprint through Quart-Trio's in-memory test client, with a fake call service.

Requests are signed the way Plivo signs them: against the PUBLIC URL (``public_url`` with a
non-default port + path + query), so these tests also pin the URL reconstruction.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
import structlog
import trio
from quart_trio import QuartTrio
from structlog.testing import capture_logs

import web.plivo as plivo_routes
from orchestrator.carriers.plivo.signature import (
    MAIN_ACCOUNT_SIGNATURE_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    sign_v3,
)
from orchestrator.carriers.plivo.xml import UNAVAILABLE_TEXT, UNKNOWN_NUMBER_TEXT
from orchestrator.config import CarrierSettings, RoutingSettings, ServerSettings, Settings
from orchestrator.errors import CallNotFound
from orchestrator.messages import (
    CarrierEvent,
    Connect,
    Decision,
    InboundAccepted,
    InboundRejected,
    InboundResult,
    LeadHungUp,
    LegAnswered,
    LegDigits,
    LegEndCause,
    LegEnded,
    LegRinging,
    RecordingReady,
    VoicemailRecorded,
    Whisper,
)
from orchestrator.model import VOICEMAIL_PROMPT
from web.plivo import DEFAULT_NOTIFY_TIMEOUT_S, DEFAULT_REPLY_TIMEOUT_S, create_plivo_blueprint

TOKEN = "route-test-token"
PUBLIC = "https://orch.example.com:8443"
GUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
LEG = "leg-1"
NONCE = "12345678901234567890"
LEAD_FORM = {
    "CallUUID": "lead-1",
    "From": "14155550100",
    "To": "18005550100",
    "Direction": "inbound",
    "CallStatus": "ringing",
    "Event": "StartApp",
}


@dataclass
class FakeService:
    """Records what reached it; answers from ``inbound`` and ``decisions``."""

    inbound: InboundResult = field(default_factory=lambda: InboundAccepted(GUID, "acme"))
    decisions: dict[type, Decision | None] = field(default_factory=dict)
    raise_not_found: bool = False
    stall: bool = False
    accepted: list[dict[str, str]] = field(default_factory=list)
    events: list[CarrierEvent] = field(default_factory=list)

    def accept_inbound(
        self, *, carrier_call_id: str, from_number: str, to_number: str
    ) -> InboundResult:
        self.accepted.append(
            {"carrier_call_id": carrier_call_id, "from_number": from_number, "to_number": to_number}
        )
        return self.inbound

    async def deliver(self, event: CarrierEvent) -> Decision | None:
        self.events.append(event)
        if self.stall:
            await trio.sleep_forever()
        if self.raise_not_found:
            raise CallNotFound(event.tracking_guid)
        return self.decisions.get(type(event))


def make_settings(*, verify: bool = True) -> Settings:
    return Settings(
        server=ServerSettings(public_url=PUBLIC + "/"),
        carrier=CarrierSettings(
            auth_id="MA" + "B" * 18, auth_token=TOKEN, verify_signatures=verify
        ),
        routing=RoutingSettings(voicemail_max_s=90.0),
    )


@pytest.fixture(name="service")
def _service() -> FakeService:
    return FakeService()


class Client:
    """Signs and sends requests to an app holding only the Plivo blueprint."""

    def __init__(self, app: QuartTrio) -> None:
        self.app = app
        self.test_client = app.test_client()

    async def post(
        self,
        path: str,
        form: dict[str, str],
        query: dict[str, str] | None = None,
        *,
        sign: bool = True,
        tamper: bool = False,
        header: str = SIGNATURE_HEADER,
    ) -> Any:
        qs = urlencode(query or {})
        target = f"{path}?{qs}" if qs else path
        headers = {}
        if sign:
            signed_form = dict(form, Tampered="1") if tamper else form
            headers = {
                header: sign_v3("POST", PUBLIC + target, signed_form, TOKEN, NONCE),
                NONCE_HEADER: NONCE,
            }
        return await self.test_client.post(target, form=form, headers=headers)

    async def get(self, path: str, query: dict[str, str]) -> Any:
        target = f"{path}?{urlencode(query)}"
        headers = {
            SIGNATURE_HEADER: sign_v3("GET", PUBLIC + target, None, TOKEN, NONCE),
            NONCE_HEADER: NONCE,
        }
        return await self.test_client.get(target, headers=headers)


async def open_client(
    service: FakeService,
    settings: Settings,
    *,
    reply_timeout_s: float = DEFAULT_REPLY_TIMEOUT_S,
    notify_timeout_s: float = DEFAULT_NOTIFY_TIMEOUT_S,
) -> Client:
    app = QuartTrio(__name__)
    blueprint = create_plivo_blueprint(
        service, settings, reply_timeout_s=reply_timeout_s, notify_timeout_s=notify_timeout_s
    )
    app.register_blueprint(blueprint)
    return Client(app)


@pytest.fixture(name="client")
async def _client(service: FakeService) -> Client:
    return await open_client(service, make_settings(), reply_timeout_s=0.2, notify_timeout_s=0.2)


async def xml_of(response: Any) -> ET.Element:
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/xml")
    root = ET.fromstring(await response.get_data(as_text=True))
    assert root.tag == "Response"
    return root


class TestSignatures:
    """Every route checks the V3 signature first; a bad one is 403 and reaches nothing."""

    async def test_good_signature_answers_hold_xml(
        self, client: Client, service: FakeService
    ) -> None:
        root = await xml_of(await client.post("/plivo/answer", LEAD_FORM))
        [conference] = list(root)
        assert (conference.tag, conference.text) == ("Conference", GUID)
        assert conference.get("waitSound") == f"{PUBLIC}/plivo/hold"
        assert service.accepted == [
            {"carrier_call_id": "lead-1", "from_number": "4155550100", "to_number": "8005550100"}
        ]

    async def test_main_account_signature_is_accepted(
        self, client: Client, service: FakeService
    ) -> None:
        response = await client.post(
            "/plivo/answer", LEAD_FORM, header=MAIN_ACCOUNT_SIGNATURE_HEADER
        )
        assert response.status_code == 200
        assert len(service.accepted) == 1

    @pytest.mark.parametrize(
        ("path", "query"),
        [
            ("/plivo/answer", {}),
            ("/plivo/hangup", {}),
            ("/plivo/hold", {}),
            ("/plivo/room", {"call": GUID}),
            ("/plivo/voicemail", {"call": GUID}),
            ("/plivo/voicemail/done", {"call": GUID}),
            ("/plivo/conference", {"call": GUID}),
            ("/plivo/leg/ring", {"call": GUID, "leg": LEG}),
            ("/plivo/leg/answer", {"call": GUID, "leg": LEG}),
            ("/plivo/leg/digits", {"call": GUID, "leg": LEG}),
            ("/plivo/leg/hangup", {"call": GUID, "leg": LEG}),
        ],
    )
    @pytest.mark.parametrize("how", ["missing", "tampered"])
    async def test_bad_signature_is_403_and_has_no_effect(
        self, client: Client, service: FakeService, path: str, query: dict[str, str], how: str
    ) -> None:
        form = dict(LEAD_FORM, RecordUrl="https://rec/1.mp3", CallStatus="completed")
        response = await client.post(
            path, form, query, sign=how != "missing", tamper=how == "tampered"
        )
        assert response.status_code == 403
        assert await response.get_json() == {"error": "bad signature"}
        assert service.accepted == []
        assert service.events == []

    async def test_signature_covers_our_query_string(
        self, client: Client, service: FakeService
    ) -> None:
        target = f"/plivo/leg/answer?call={GUID}&leg={LEG}"
        form = {"CallUUID": "c-1"}
        signature = sign_v3("POST", PUBLIC + target, form, TOKEN, NONCE)
        forged = f"/plivo/leg/answer?call={GUID}&leg=leg-2"
        response = await client.test_client.post(
            forged, form=form, headers={SIGNATURE_HEADER: signature, NONCE_HEADER: NONCE}
        )
        assert response.status_code == 403
        assert service.events == []

    async def test_get_callbacks_are_verified_too(
        self, client: Client, service: FakeService
    ) -> None:
        response = await client.get(
            "/plivo/leg/ring", {"call": GUID, "leg": LEG, "CallUUID": "c-1"}
        )
        await xml_of(response)
        assert service.events == [LegRinging(GUID, LEG, call_id="c-1")]

    async def test_checking_can_be_switched_off(self, service: FakeService) -> None:
        client = await open_client(service, make_settings(verify=False))
        response = await client.post("/plivo/answer", LEAD_FORM, sign=False)
        assert response.status_code == 200
        assert len(service.accepted) == 1


class TestLeadAnswer:
    """The lead's answer: accept_inbound decides, the XML is hold room or apology."""

    async def test_duplicate_answer_reaches_the_service_twice(
        self, client: Client, service: FakeService
    ) -> None:
        await xml_of(await client.post("/plivo/answer", LEAD_FORM))
        service.inbound = InboundAccepted(GUID, "acme", duplicate=True)
        root = await xml_of(await client.post("/plivo/answer", LEAD_FORM))
        assert root[0].text == GUID
        assert [a["carrier_call_id"] for a in service.accepted] == ["lead-1", "lead-1"]

    async def test_trailing_slash_is_accepted(self, client: Client, service: FakeService) -> None:
        await xml_of(await client.post("/plivo/answer/", LEAD_FORM))
        assert len(service.accepted) == 1

    async def test_unknown_number_apologises_and_logs(
        self, client: Client, service: FakeService, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        service.inbound = InboundRejected("unknown number")
        with capture_logs() as logs:
            monkeypatch.setattr(plivo_routes, "logger", structlog.get_logger())
            root = await xml_of(await client.post("/plivo/answer", LEAD_FORM))
        assert [e.tag for e in root] == ["Speak", "Hangup"]
        assert root[0].text == UNKNOWN_NUMBER_TEXT
        [entry] = [e for e in logs if e["event"] == "inbound.rejected"]
        assert entry["log_level"] == "warning"
        assert entry["number"] == "8005550100"

    async def test_non_nanp_caller_is_passed_as_is(
        self, client: Client, service: FakeService
    ) -> None:
        await xml_of(await client.post("/plivo/answer", dict(LEAD_FORM, From="anonymous")))
        assert service.accepted[0]["from_number"] == "anonymous"

    async def test_missing_fields_are_400(self, client: Client, service: FakeService) -> None:
        form = {k: v for k, v in LEAD_FORM.items() if k != "CallUUID"}
        response = await client.post("/plivo/answer", form)
        assert response.status_code == 400
        assert "CallUUID" in (await response.get_json())["error"]
        assert service.accepted == []

    async def test_lead_hangup_is_delivered(self, client: Client, service: FakeService) -> None:
        root = await xml_of(
            await client.post("/plivo/hangup", dict(LEAD_FORM, CallStatus="completed"))
        )
        assert list(root) == []
        assert service.events == [LeadHungUp("", call_id="lead-1")]


class TestDecisions:
    """Leg answer/digits render the call's decision; no decision means hang the agent up."""

    async def test_answer_renders_whisper(self, client: Client, service: FakeService) -> None:
        service.decisions[LegAnswered] = Whisper("Lead from Acme. Press 1.", 8)
        root = await xml_of(
            await client.post(
                "/plivo/leg/answer",
                {"CallUUID": "c-1", "RequestUUID": "r-1"},
                {"call": GUID, "leg": LEG},
            )
        )
        assert [e.tag for e in root] == ["GetDigits", "Hangup"]
        assert root[0].get("action") == f"{PUBLIC}/plivo/leg/digits?call={GUID}&leg={LEG}"
        assert service.events == [LegAnswered(GUID, LEG, "c-1", "r-1")]

    async def test_digits_render_connect(self, client: Client, service: FakeService) -> None:
        service.decisions[LegDigits] = Connect(room=GUID)
        root = await xml_of(
            await client.post(
                "/plivo/leg/digits", {"CallUUID": "c-1", "Digits": "1"}, {"call": GUID, "leg": LEG}
            )
        )
        [conference] = list(root)
        assert conference.get("startConferenceOnEnter") == "true"
        assert conference.get("callbackUrl") == f"{PUBLIC}/plivo/conference?call={GUID}"
        assert service.events == [LegDigits(GUID, LEG, "c-1", "1")]

    @pytest.mark.parametrize("case", ["none", "not_found", "timeout"])
    async def test_no_decision_releases_the_agent(
        self, client: Client, service: FakeService, case: str
    ) -> None:
        service.raise_not_found = case == "not_found"
        service.stall = case == "timeout"
        root = await xml_of(
            await client.post("/plivo/leg/answer", {"CallUUID": "c-1"}, {"call": GUID, "leg": LEG})
        )
        assert [e.tag for e in root] == ["Speak", "Hangup"]
        assert root[0].text == UNAVAILABLE_TEXT
        assert len(service.events) == 1

    async def test_missing_leg_id_is_400(self, client: Client, service: FakeService) -> None:
        response = await client.post("/plivo/leg/answer", {"CallUUID": "c-1"}, {"call": GUID})
        assert response.status_code == 400
        assert service.events == []


class TestNotifications:
    """Ring, hangup, conference and voicemail-done callbacks are delivered, answered empty."""

    async def test_events_are_delivered(self, client: Client, service: FakeService) -> None:
        ids = {"call": GUID, "leg": LEG}
        for path, form, query in [
            ("/plivo/leg/ring", {"CallUUID": "c-1", "RequestUUID": "r-1"}, ids),
            ("/plivo/leg/hangup", {"CallUUID": "c-1", "CallStatus": "busy"}, ids),
            (
                "/plivo/conference",
                {"ConferenceAction": "record", "RecordUrl": "https://r/1", "RecordingID": "rec-1"},
                {"call": GUID},
            ),
            (
                "/plivo/voicemail/done",
                {"RecordUrl": "https://r/vm", "RecordingDuration": "9"},
                {"call": GUID},
            ),
        ]:
            root = await xml_of(await client.post(path, form, query))
            assert list(root) == []
        assert service.events == [
            LegRinging(GUID, LEG, request_id="r-1", call_id="c-1"),
            LegEnded(GUID, LEG, LegEndCause.BUSY, call_id="c-1"),
            RecordingReady(GUID, "https://r/1", "rec-1"),
            VoicemailRecorded(GUID, "https://r/vm", "", 9.0),
        ]

    async def test_ignored_conference_action_delivers_nothing(
        self, client: Client, service: FakeService
    ) -> None:
        await xml_of(
            await client.post("/plivo/conference", {"ConferenceAction": "enter"}, {"call": GUID})
        )
        assert service.events == []

    async def test_stale_event_is_still_200(self, client: Client, service: FakeService) -> None:
        service.raise_not_found = True
        await xml_of(
            await client.post(
                "/plivo/leg/hangup",
                {"CallUUID": "c-1", "CallStatus": "completed"},
                {"call": GUID, "leg": LEG},
            )
        )
        assert len(service.events) == 1

    async def test_service_not_taking_it_is_503(self, client: Client, service: FakeService) -> None:
        service.stall = True
        response = await client.post(
            "/plivo/leg/hangup",
            {"CallUUID": "c-1", "CallStatus": "completed"},
            {"call": GUID, "leg": LEG},
        )
        assert response.status_code == 503


class TestDocuments:
    """Hold music, the lead's room and voicemail are served from the query's ids."""

    async def test_hold_music(self, client: Client) -> None:
        root = await xml_of(await client.post("/plivo/hold", {"CallUUID": "lead-1"}))
        assert [e.tag for e in root] == ["Speak", "Wait"]

    async def test_room(self, client: Client) -> None:
        root = await xml_of(
            await client.post("/plivo/room", {"CallUUID": "lead-1"}, {"call": GUID})
        )
        assert root[0].tag == "Conference"
        assert root[0].text == GUID

    async def test_voicemail_uses_the_configured_length(self, client: Client) -> None:
        root = await xml_of(
            await client.post("/plivo/voicemail", {"CallUUID": "lead-1"}, {"call": GUID})
        )
        assert root[0].text == VOICEMAIL_PROMPT
        assert root[1].get("maxLength") == "90"
        assert root[1].get("action") == f"{PUBLIC}/plivo/voicemail/done?call={GUID}"

    @pytest.mark.parametrize("path", ["/plivo/room", "/plivo/voicemail"])
    async def test_documents_need_the_call_id(self, client: Client, path: str) -> None:
        response = await client.post(path, {"CallUUID": "lead-1"})
        assert response.status_code == 400
