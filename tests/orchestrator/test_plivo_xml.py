"""Plivo XML documents and callback URLs: parsed back with ElementTree and checked piece by piece.

Pure functions, no trio: these tests are plain synchronous functions.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import pytest

from orchestrator.carriers.plivo.urls import CallbackUrls
from orchestrator.carriers.plivo.xml import (
    ALL_DIGITS,
    HOLD_TEXT,
    UNKNOWN_NUMBER_TEXT,
    VOICEMAIL_THANKS_TEXT,
    empty_xml,
    hold_music_xml,
    lead_hold_xml,
    render_decision,
    unknown_number_xml,
    voicemail_xml,
)
from orchestrator.messages import TAKEN_TEXT, Connect, Release, Whisper
from orchestrator.model import VOICEMAIL_PROMPT

GUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
LEG = "leg-3"


@pytest.fixture(name="urls")
def _urls() -> CallbackUrls:
    return CallbackUrls("https://orch.example.com:8443/")


def parse(document: str) -> ET.Element:
    root = ET.fromstring(document)
    assert root.tag == "Response"
    return root


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


class TestCallbackUrls:
    """Every URL is public_url + /plivo/... and carries our ids in its query string."""

    def test_fixed_urls_drop_the_trailing_slash(self, urls: CallbackUrls) -> None:
        assert urls.lead_answer == "https://orch.example.com:8443/plivo/answer"
        assert urls.lead_hangup == "https://orch.example.com:8443/plivo/hangup"
        assert urls.hold_music == "https://orch.example.com:8443/plivo/hold"

    def test_leg_urls_carry_call_and_leg(self, urls: CallbackUrls) -> None:
        for url, path in [
            (urls.leg_answer(GUID, LEG), "/plivo/leg/answer"),
            (urls.leg_ring(GUID, LEG), "/plivo/leg/ring"),
            (urls.leg_hangup(GUID, LEG), "/plivo/leg/hangup"),
            (urls.leg_digits(GUID, LEG), "/plivo/leg/digits"),
        ]:
            assert urlsplit(url).path == path
            assert query_of(url) == {"call": [GUID], "leg": [LEG]}
        assert urls.leg_answer(GUID, LEG).endswith(f"?call={GUID}&leg={LEG}")

    def test_call_urls_carry_call(self, urls: CallbackUrls) -> None:
        for url, path in [
            (urls.conference(GUID), "/plivo/conference"),
            (urls.voicemail(GUID), "/plivo/voicemail"),
            (urls.voicemail_done(GUID), "/plivo/voicemail/done"),
            (urls.room(GUID), "/plivo/room"),
        ]:
            assert urlsplit(url).path == path
            assert query_of(url) == {"call": [GUID]}

    def test_ids_are_percent_encoded(self, urls: CallbackUrls) -> None:
        url = urls.leg_answer(GUID, "a&b=c")
        assert query_of(url) == {"call": [GUID], "leg": ["a&b=c"]}

    def test_public_url_with_path_prefix(self) -> None:
        assert CallbackUrls("https://h/orch").lead_answer == "https://h/orch/plivo/answer"


class TestLeadHold:
    """The lead waits alone in the room named after the TrackingGUID, hearing the hold XML."""

    def test_conference_waits_for_the_agent(self, urls: CallbackUrls) -> None:
        root = parse(lead_hold_xml(GUID, urls))
        [conference] = list(root)
        assert conference.tag == "Conference"
        assert conference.text == GUID
        assert conference.get("startConferenceOnEnter") == "false"
        assert conference.get("endConferenceOnExit") == "true"
        assert conference.get("waitSound") == urls.hold_music
        assert conference.get("maxMembers") == "2"
        assert conference.get("record") is None  # the agent's side records

    def test_hold_music_is_speak_then_wait(self) -> None:
        root = parse(hold_music_xml())
        assert [e.tag for e in root] == ["Speak", "Wait"]
        assert root[0].text == HOLD_TEXT
        assert int(root[1].get("length", "0")) > 0


class TestWhisper:
    """GetDigits collects one key (any key reported), silence falls through to Hangup."""

    def test_get_digits_attributes(self, urls: CallbackUrls) -> None:
        root = parse(render_decision(Whisper("Call from Ann. Press 1.", 7.2), GUID, LEG, urls))
        assert [e.tag for e in root] == ["GetDigits", "Hangup"]
        get_digits = root[0]
        assert get_digits.get("action") == urls.leg_digits(GUID, LEG)
        assert get_digits.get("method") == "POST"
        assert get_digits.get("numDigits") == "1"
        assert get_digits.get("timeout") == "8"  # ceil(7.2)
        assert get_digits.get("validDigits") == ALL_DIGITS
        assert get_digits.get("finishOnKey") == ""
        assert get_digits.get("retries") == "1"
        assert get_digits.get("redirect") == "true"
        [speak] = list(get_digits)
        assert speak.tag == "Speak"
        assert speak.text == "Call from Ann. Press 1."

    def test_text_is_escaped_not_injected(self, urls: CallbackUrls) -> None:
        text = 'Lead <Hangup/> & "friends"'
        root = parse(render_decision(Whisper(text, 5), GUID, LEG, urls))
        assert root[0][0].text == text
        assert [e.tag for e in root] == ["GetDigits", "Hangup"]


class TestConnect:
    """The winner joins the room, starts it, ends it on exit, and it is recorded."""

    def test_conference_attributes(self, urls: CallbackUrls) -> None:
        root = parse(render_decision(Connect(room=GUID), GUID, LEG, urls))
        [conference] = list(root)
        assert conference.tag == "Conference"
        assert conference.text == GUID
        assert conference.get("startConferenceOnEnter") == "true"
        assert conference.get("endConferenceOnExit") == "true"
        assert conference.get("record") == "true"
        assert conference.get("callbackUrl") == urls.conference(GUID)
        assert conference.get("callbackMethod") == "POST"
        assert conference.get("stayAlone") == "false"
        assert conference.get("maxMembers") == "2"


class TestRelease:
    """Release speaks its text (if any) and hangs up."""

    def test_with_text(self, urls: CallbackUrls) -> None:
        root = parse(render_decision(Release(TAKEN_TEXT), GUID, LEG, urls))
        assert [e.tag for e in root] == ["Speak", "Hangup"]
        assert root[0].text == TAKEN_TEXT

    def test_without_text(self, urls: CallbackUrls) -> None:
        root = parse(render_decision(Release(), GUID, LEG, urls))
        assert [e.tag for e in root] == ["Hangup"]


class TestVoicemail:
    """The docs/contract.md §5 sentence, a recorded message, thanks, hangup."""

    def test_document(self, urls: CallbackUrls) -> None:
        root = parse(voicemail_xml(GUID, 119.5, urls))
        assert [e.tag for e in root] == ["Speak", "Record", "Speak", "Hangup"]
        assert root[0].text == VOICEMAIL_PROMPT
        record = root[1]
        assert record.get("action") == urls.voicemail_done(GUID)
        assert record.get("method") == "POST"
        assert record.get("maxLength") == "120"
        assert record.get("playBeep") == "true"
        assert record.get("finishOnKey") == "#"
        assert record.get("redirect") == "false"
        assert root[2].text == VOICEMAIL_THANKS_TEXT


class TestSmallDocuments:
    def test_unknown_number_apologises_and_hangs_up(self) -> None:
        root = parse(unknown_number_xml())
        assert [e.tag for e in root] == ["Speak", "Hangup"]
        assert root[0].text == UNKNOWN_NUMBER_TEXT

    def test_empty_response(self) -> None:
        assert list(parse(empty_xml())) == []
