"""Plivo callback parsing (tables per route and hangup cause) and V3 signatures.

Pure functions, no trio. Signatures are checked against the SDK's own
``plivo.utils.validate_v3_signature`` so our signer and verifier cannot drift from Plivo's.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from plivo.utils import validate_v3_signature
from plivo.utils.signature_v3 import construct_get_url, construct_post_url

from orchestrator.carriers.plivo.signature import (
    MAIN_ACCOUNT_SIGNATURE_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    public_request_url,
    sign_v3,
    signed_message,
    verify_v3,
)
from orchestrator.carriers.plivo.webhooks import (
    Route,
    leg_end_cause,
    parse_event,
    parse_lead_answer,
)
from orchestrator.errors import OrchestratorError, WebhookInvalid
from orchestrator.messages import (
    LeadHungUp,
    LegAnswered,
    LegDigits,
    LegEndCause,
    LegEnded,
    LegRinging,
    RecordingReady,
    VoicemailRecorded,
)

GUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
LEG = "leg-1"
IDS = {"call": GUID, "leg": LEG}
TOKEN = "SimAuthToken0123456789abcdefABCDEF"
NONCE = "05429567804466091622"


class TestLegEvents:
    """Ring, answer and digits callbacks become their events, addressed by our query ids."""

    def test_ring(self) -> None:
        form = {"CallUUID": "c-1", "RequestUUID": "r-1", "CallStatus": "ringing"}
        assert parse_event(Route.LEG_RING, IDS, form) == LegRinging(
            GUID, LEG, request_id="r-1", call_id="c-1"
        )

    def test_ring_request_id_from_alegrequestuuid(self) -> None:
        event = parse_event(Route.LEG_RING, IDS, {"ALegRequestUUID": "r-9"})
        assert event == LegRinging(GUID, LEG, request_id="r-9", call_id="")

    def test_answer(self) -> None:
        form = {
            "CallUUID": "c-1",
            "RequestUUID": "r-1",
            "CallStatus": "in-progress",
            "Event": "StartApp",
            "Direction": "outbound",
        }
        assert parse_event(Route.LEG_ANSWER, IDS, form) == LegAnswered(
            GUID, LEG, call_id="c-1", request_id="r-1"
        )

    @pytest.mark.parametrize(
        ("form", "digits"),
        [
            ({"CallUUID": "c-1", "Digits": "1"}, "1"),
            ({"CallUUID": "c-1", "Digits": "#"}, "#"),
            ({"CallUUID": "c-1", "Digits": ""}, ""),  # silence
            ({"CallUUID": "c-1"}, ""),  # silence, field absent
        ],
    )
    def test_digits(self, form: dict[str, str], digits: str) -> None:
        assert parse_event(Route.LEG_DIGITS, IDS, form) == LegDigits(GUID, LEG, "c-1", digits)

    @pytest.mark.parametrize(
        "route", [Route.LEG_RING, Route.LEG_ANSWER, Route.LEG_DIGITS, Route.LEG_HANGUP]
    )
    @pytest.mark.parametrize("query", [{}, {"call": GUID}, {"leg": LEG}, {"call": " ", "leg": LEG}])
    def test_missing_ids_are_invalid(self, route: Route, query: dict[str, str]) -> None:
        form = {"CallUUID": "c-1", "CallStatus": "completed"}
        with pytest.raises(WebhookInvalid, match="missing required field"):
            parse_event(route, query, form)

    @pytest.mark.parametrize("route", [Route.LEG_ANSWER, Route.LEG_DIGITS])
    def test_reply_events_need_the_call_uuid(self, route: Route) -> None:
        with pytest.raises(WebhookInvalid, match="CallUUID"):
            parse_event(route, IDS, {"Digits": "1"})

    def test_webhook_invalid_is_an_orchestrator_error(self) -> None:
        assert issubclass(WebhookInvalid, OrchestratorError)


# (form fields, expected cause, expected answered)
HANGUP_TABLE: list[tuple[dict[str, str], LegEndCause, bool]] = [
    ({"CallStatus": "busy", "HangupCause": "USER_BUSY"}, LegEndCause.BUSY, False),
    ({"CallStatus": "no-answer"}, LegEndCause.NO_ANSWER, False),
    ({"CallStatus": "timeout"}, LegEndCause.NO_ANSWER, False),
    ({"CallStatus": "failed", "HangupCauseCode": "2000"}, LegEndCause.FAILED, False),
    ({"CallStatus": "cancel"}, LegEndCause.CANCELLED, False),
    # a request we cancelled: code 1000 wins over the no-answer-like status
    (
        {
            "CallStatus": "no-answer",
            "HangupCauseCode": "1000",
            "HangupCauseName": "Canceled",
            "HangupSource": "API Request",
        },
        LegEndCause.CANCELLED,
        False,
    ),
    ({"HangupCauseName": "Canceled"}, LegEndCause.CANCELLED, False),
    (
        {
            "CallStatus": "completed",
            "HangupCauseCode": "4000",
            "Duration": "42",
            "BillDuration": "60",
            "AnswerTime": "2024-01-01 10:00:00",
        },
        LegEndCause.HANGUP,
        True,
    ),
    ({"CallStatus": "completed", "Duration": "0", "BillDuration": "0"}, LegEndCause.HANGUP, False),
    ({"CallStatus": "completed", "BillDuration": "60"}, LegEndCause.HANGUP, True),
    ({"CallStatus": "completed", "AnswerTime": "2024-01-01 10:00:00"}, LegEndCause.HANGUP, True),
    # no CallStatus: the code, then the telephony cause decide
    ({"HangupCauseCode": "3010", "HangupCauseName": "Busy Line"}, LegEndCause.BUSY, False),
    ({"HangupCause": "NO_ANSWER"}, LegEndCause.NO_ANSWER, False),
    ({"HangupCause": "NORMAL_CLEARING", "Duration": "5"}, LegEndCause.HANGUP, True),
    # unknown cause: hangup if it was answered, else failed
    ({"HangupCauseCode": "7011", "Duration": "3"}, LegEndCause.HANGUP, True),
    ({"HangupCauseCode": "7011"}, LegEndCause.FAILED, False),
    # a malformed optional number is read as absent
    ({"CallStatus": "completed", "Duration": "n/a"}, LegEndCause.HANGUP, False),
]


class TestLegHangup:
    """A leg hangup becomes LegEnded with a normalised cause and whether it was answered."""

    @pytest.mark.parametrize(("form", "cause", "answered"), HANGUP_TABLE)
    def test_cause_table(self, form: dict[str, str], cause: LegEndCause, answered: bool) -> None:
        event = parse_event(Route.LEG_HANGUP, IDS, {"CallUUID": "c-1", **form})
        assert isinstance(event, LegEnded)
        assert (event.cause, event.answered) == (cause, answered)
        assert (event.tracking_guid, event.leg_id, event.call_id) == (GUID, LEG, "c-1")

    def test_full_event(self) -> None:
        form = {
            "CallUUID": "c-1",
            "RequestUUID": "r-1",
            "CallStatus": "completed",
            "Duration": "12",
            "BillDuration": "60",
        }
        assert parse_event(Route.LEG_HANGUP, IDS, form) == LegEnded(
            GUID,
            LEG,
            LegEndCause.HANGUP,
            call_id="c-1",
            request_id="r-1",
            answered=True,
            duration_s=12.0,
        )

    def test_no_cause_at_all_is_invalid(self) -> None:
        with pytest.raises(WebhookInvalid, match="CallStatus"):
            parse_event(Route.LEG_HANGUP, IDS, {"CallUUID": "c-1"})

    def test_status_is_case_insensitive(self) -> None:
        assert leg_end_cause({"CallStatus": "BUSY"}, answered=False) is LegEndCause.BUSY


class TestCallEvents:
    """Conference recordings, voicemail and the lead's hangup."""

    def test_conference_record_action(self) -> None:
        form = {
            "ConferenceAction": "record",
            "RecordUrl": "https://rec/1.mp3",
            "RecordingID": "rec-1",
            "ConferenceName": GUID,
        }
        assert parse_event(Route.CONFERENCE, {"call": GUID}, form) == RecordingReady(
            GUID, "https://rec/1.mp3", "rec-1"
        )

    def test_conference_record_url_without_action(self) -> None:
        event = parse_event(Route.CONFERENCE, {"call": GUID}, {"RecordUrl": "https://rec/1.mp3"})
        assert event == RecordingReady(GUID, "https://rec/1.mp3", "")

    @pytest.mark.parametrize("action", ["enter", "exit", "digits", "floor"])
    def test_other_conference_actions_are_ignored(self, action: str) -> None:
        form = {"ConferenceAction": action, "RecordUrl": "https://rec/1.mp3"}
        assert parse_event(Route.CONFERENCE, {"call": GUID}, form) is None

    def test_conference_needs_the_call_id(self) -> None:
        with pytest.raises(WebhookInvalid, match="call"):
            parse_event(Route.CONFERENCE, {}, {"RecordUrl": "https://rec/1.mp3"})

    def test_voicemail_done(self) -> None:
        form = {
            "RecordUrl": "https://rec/vm.mp3",
            "RecordingID": "vm-1",
            "RecordingDuration": "17",
            "Digits": "#",
        }
        assert parse_event(Route.VOICEMAIL_DONE, {"call": GUID}, form) == VoicemailRecorded(
            GUID, "https://rec/vm.mp3", "vm-1", 17.0
        )

    def test_voicemail_negative_duration_is_zero(self) -> None:
        form = {"RecordUrl": "https://rec/vm.mp3", "RecordingDuration": "-1"}
        event = parse_event(Route.VOICEMAIL_DONE, {"call": GUID}, form)
        assert isinstance(event, VoicemailRecorded)
        assert event.duration_s == 0.0

    def test_voicemail_without_recording_is_nothing(self) -> None:
        assert parse_event(Route.VOICEMAIL_DONE, {"call": GUID}, {"RecordUrl": ""}) is None

    def test_lead_hangup_is_addressed_by_carrier_id(self) -> None:
        form = {"CallUUID": "lead-1", "CallStatus": "completed", "Direction": "inbound"}
        assert parse_event(Route.LEAD_HANGUP, {}, form) == LeadHungUp("", call_id="lead-1")

    def test_lead_hangup_needs_the_call_uuid(self) -> None:
        with pytest.raises(WebhookInvalid, match="CallUUID"):
            parse_event(Route.LEAD_HANGUP, {}, {"CallStatus": "completed"})


class TestLeadAnswer:
    """The lead's answer request: numbers converted to 10-digit NANP at the edge."""

    def test_nanp_numbers(self) -> None:
        answer = parse_lead_answer(
            {
                "CallUUID": "lead-1",
                "From": "14155550100",
                "To": "+18005550100",
                "Direction": "inbound",
            }
        )
        assert (answer.call_id, answer.from_number, answer.to_number) == (
            "lead-1",
            "4155550100",
            "8005550100",
        )
        assert answer.from_is_nanp
        assert answer.to_is_nanp

    @pytest.mark.parametrize("caller", ["anonymous", "", "442071234567"])
    def test_non_nanp_caller_passed_as_is(self, caller: str) -> None:
        answer = parse_lead_answer({"CallUUID": "lead-1", "From": caller, "To": "18005550100"})
        assert answer.from_number == caller
        assert not answer.from_is_nanp

    @pytest.mark.parametrize("missing", ["CallUUID", "To"])
    def test_required_fields(self, missing: str) -> None:
        form = {"CallUUID": "lead-1", "From": "14155550100", "To": "18005550100"}
        del form[missing]
        with pytest.raises(WebhookInvalid, match=missing):
            parse_lead_answer(form)


FORM = {
    "CallUUID": "c-1",
    "From": "+14155550100",
    "To": "14155550111",
    "CallStatus": "in-progress",
    "Direction": "outbound",
    "Digits": "1",
}
URLS = [
    "https://app.example.com/plivo/answer",
    "https://app.example.com/plivo/answer/",
    f"http://app.example.com:8080/plivo/leg/answer?call={GUID}&leg={LEG}",  # port + query
    "https://app.example.com:8443/base/plivo/conference?call=a%20b",
]


def headers_for(signature: str, nonce: str = NONCE) -> dict[str, str]:
    return {SIGNATURE_HEADER: signature, NONCE_HEADER: nonce}


class TestSignatureV3:
    """Our signer and verifier agree with the SDK's validator, tampering is caught."""

    @pytest.mark.parametrize("url", URLS)
    def test_post_round_trip_with_sdk_validator(self, url: str) -> None:
        signature = sign_v3("POST", url, FORM, TOKEN, NONCE)
        assert validate_v3_signature("POST", url, NONCE, TOKEN, signature, dict(FORM))
        assert verify_v3("POST", url, headers_for(signature), FORM, TOKEN)

    @pytest.mark.parametrize("url", URLS)
    def test_sdk_and_ours_agree_on_tampering(self, url: str) -> None:
        signature = sign_v3("POST", url, FORM, TOKEN, NONCE)
        tampered = dict(FORM, Digits="9")
        assert not validate_v3_signature("POST", url, NONCE, TOKEN, signature, tampered)
        assert not verify_v3("POST", url, headers_for(signature), tampered, TOKEN)

    def test_get_round_trip(self) -> None:
        url = f"https://app.example.com/plivo/leg/ring?call={GUID}&leg={LEG}&CallUUID=c-1&From=%2B1415"
        signature = sign_v3("GET", url, None, TOKEN, NONCE)
        assert validate_v3_signature("GET", url, NONCE, TOKEN, signature)
        assert verify_v3("GET", url, headers_for(signature), None, TOKEN)
        assert not verify_v3("GET", url.replace("c-1", "c-2"), headers_for(signature), None, TOKEN)

    @pytest.mark.parametrize("change", ["port", "path", "query", "scheme", "nonce", "token"])
    def test_any_change_fails(self, change: str) -> None:
        url = f"http://app.example.com:8080/plivo/leg/answer?call={GUID}&leg={LEG}"
        signature = sign_v3("POST", url, FORM, TOKEN, NONCE)
        nonce, token = NONCE, TOKEN
        match change:
            case "port":
                url = url.replace(":8080", "")
            case "path":
                url = url.replace("/answer", "/answer/")
            case "query":
                url = url.replace(LEG, "leg-2")
            case "scheme":
                url = url.replace("http://", "https://")
            case "nonce":
                nonce = "1" + NONCE
            case "token":
                token = TOKEN + "x"
        assert not verify_v3("POST", url, headers_for(signature, nonce), FORM, token)

    def test_main_account_header_and_signature_lists(self) -> None:
        url = URLS[2]
        good = sign_v3("POST", url, FORM, TOKEN, NONCE)
        assert verify_v3(
            "POST", url, {MAIN_ACCOUNT_SIGNATURE_HEADER: good, NONCE_HEADER: NONCE}, FORM, TOKEN
        )
        assert verify_v3("POST", url, headers_for(f"junk,{good}"), FORM, TOKEN)
        assert verify_v3(
            "POST",
            url,
            {SIGNATURE_HEADER: "junk", MAIN_ACCOUNT_SIGNATURE_HEADER: good, NONCE_HEADER: NONCE},
            FORM,
            TOKEN,
        )

    def test_headers_are_case_insensitive(self) -> None:
        url = URLS[0]
        good = sign_v3("POST", url, FORM, TOKEN, NONCE)
        lower = {"x-plivo-signature-v3": good, "x-plivo-signature-v3-nonce": NONCE}
        assert verify_v3("POST", url, lower, FORM, TOKEN)

    @pytest.mark.parametrize(
        "headers",
        [
            {},
            {SIGNATURE_HEADER: "x"},
            {NONCE_HEADER: NONCE},
            {SIGNATURE_HEADER: "", NONCE_HEADER: NONCE},
        ],
    )
    def test_missing_headers_fail(self, headers: dict[str, str]) -> None:
        assert not verify_v3("POST", URLS[0], headers, FORM, TOKEN)

    def test_unsupported_method_or_url_fails(self) -> None:
        good = sign_v3("POST", URLS[0], FORM, TOKEN, NONCE)
        assert not verify_v3("PUT", URLS[0], headers_for(good), FORM, TOKEN)
        assert not verify_v3("POST", "/plivo/answer", headers_for(good), FORM, TOKEN)
        assert not verify_v3("POST", URLS[0], headers_for(good), FORM, "")

    def test_non_ascii_and_repeated_fields(self) -> None:
        form: dict[str, str | list[str]] = {"From": "नमस्ते café", "X-PH-tag": ["b", "a"]}
        url = URLS[2]
        signature = sign_v3("POST", url, form, TOKEN, NONCE)
        assert validate_v3_signature("POST", url, NONCE, TOKEN, signature, dict(form))
        assert verify_v3("POST", url, headers_for(signature), form, TOKEN)

    def test_public_request_url(self) -> None:
        assert public_request_url("https://h:8443/", "/plivo/answer") == (
            "https://h:8443/plivo/answer"
        )
        assert public_request_url("https://h/base", "/plivo/leg/ring", "call=1&leg=2") == (
            "https://h/base/plivo/leg/ring?call=1&leg=2"
        )


def _params(text: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, str | list[str]]]:
    values = st.one_of(text, st.lists(text, min_size=1, max_size=3))
    return st.dictionaries(text, values, max_size=5)


_TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
_ASCII = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)
#: Queries are mostly ASCII (the SDK helper works there); POST params any text.
_QUERY = st.one_of(_params(_ASCII), _params(_ASCII), _params(_TEXT))
_PARAMS = _params(_TEXT)


class TestSignedMessage:
    """``signed_message`` is the SDK's construction on text: the same string wherever the SDK
    helper works, and a string where it raises (a query decoding to non-ASCII)."""

    @settings(max_examples=300, deadline=None, derandomize=True, database=None)
    @given(
        method=st.sampled_from(["GET", "POST"]),
        query=_QUERY,
        params=_PARAMS,
        path=st.sampled_from(["/plivo/answer", "/plivo/answer/", "/a;b/c", "/"]),
    )
    def test_same_as_the_sdk_where_the_sdk_works(
        self,
        method: str,
        query: dict[str, str | list[str]],
        params: dict[str, str | list[str]],
        path: str,
    ) -> None:
        url = f"https://app.example.com:8443{path}"
        if query:
            url += "?" + urlencode(query, doseq=True)
        form = params if method == "POST" else {}
        try:
            builder = construct_get_url if method == "GET" else construct_post_url
            sdk = builder(url, dict(form)).decode("utf-8")
        except UnicodeError:
            # the SDK parses the query as bytes; ours still signs it
            sign_v3(method, url, form or None, TOKEN, NONCE)
            return
        assert signed_message(method, url, form or None) == sdk

    def test_a_get_query_decoding_to_non_ascii_verifies(self) -> None:
        url = f"https://app.example.com/plivo/hold?call={GUID}&CallerName=Jos%C3%A9"
        with pytest.raises(UnicodeError):
            construct_get_url(url, {})
        signature = sign_v3("GET", url, None, TOKEN, NONCE)
        assert verify_v3("GET", url, headers_for(signature), None, TOKEN)
        assert not verify_v3("GET", url.replace("Jos", "Joe"), headers_for(signature), None, TOKEN)

    @pytest.mark.parametrize("url", ["http://[::1", "http://a/%ff?x=%C3%A4"])
    def test_what_cannot_be_verified_is_not_verified(self, url: str) -> None:
        assert not verify_v3("GET", url, headers_for("x"), None, TOKEN)
