"""Plivo XML documents, built with the SDK's ``plivo.plivoxml`` (never by string concatenation).

Pure functions: ids and URLs in, an XML string out. The shapes follow docs/architecture.md
"Bridging":

- the lead waits alone in a conference room named after the TrackingGUID
  (``startConferenceOnEnter=false``, hold music via ``waitSound``);
- an agent hears a whisper and presses a key (``GetDigits``; silence falls through to
  ``Hangup``, which ends the leg);
- the winning agent joins the room (``startConferenceOnEnter=true``, ``endConferenceOnExit=true``,
  recorded; the recording URL arrives at the conference ``callbackUrl``);
- voicemail: the lead's call is transferred to Speak + Record.

``maxMembers=2`` on both sides makes the carrier itself refuse a second agent in a room.
"""

from __future__ import annotations

import math

from plivo import plivoxml

from orchestrator.carriers.plivo.urls import CallbackUrls
from orchestrator.ivr import IvrMenu
from orchestrator.messages import Connect, Decision, Forward, JoinRoom, Release, Whisper
from orchestrator.model import VOICEMAIL_PROMPT
from orchestrator.numbers import to_carrier

#: Said to the lead when the dialled number belongs to no campaign (docs/contract.md §1.3).
UNKNOWN_NUMBER_TEXT = "Sorry, this number is not in service. Goodbye."
#: Said to an agent whose call has ended or could not be decided in time.
UNAVAILABLE_TEXT = "Sorry, this call is no longer available. Goodbye."
#: Said while the lead waits (looped by the conference's waitSound).
HOLD_TEXT = "Please hold while we connect your call."
#: Said after a voicemail message was recorded.
VOICEMAIL_THANKS_TEXT = "Thank you. Goodbye."
#: Every key is reported to us (any key other than 1 declines), ``#`` included.
ALL_DIGITS = "1234567890*#"
#: The lead and one agent: the carrier refuses anyone else.
ROOM_MAX_MEMBERS = 2
#: Seconds of silence between the hold-room announcements.
HOLD_PAUSE_S = 15


def _render(response: plivoxml.ResponseElement) -> str:
    text: str = response.to_string(pretty=False)
    return text


def lead_hold_xml(guid: str, urls: CallbackUrls) -> str:
    """The lead's answer: wait alone in room ``guid``, hearing the hold XML, until an agent joins.

    ``endConferenceOnExit`` is set so that, once bridged, the lead hanging up also ends the
    agent's side.
    """
    response = plivoxml.ResponseElement()
    response.add(
        plivoxml.ConferenceElement(
            guid,
            start_conference_on_enter=False,
            end_conference_on_exit=True,
            stay_alone=True,
            wait_sound=urls.hold_music,
            max_members=ROOM_MAX_MEMBERS,
            enter_sound="",
            exit_sound="",
        )
    )
    return _render(response)


def hold_music_xml() -> str:
    """The ``waitSound`` document (Plivo loops it while the room has not started)."""
    response = plivoxml.ResponseElement()
    response.add_speak(HOLD_TEXT)
    response.add_wait(length=HOLD_PAUSE_S)
    return _render(response)


def whisper_xml(whisper: Whisper, guid: str, leg_id: str, urls: CallbackUrls) -> str:
    """Tell the agent who is calling and collect one key; silence falls through to Hangup."""
    response = plivoxml.ResponseElement()
    get_digits = plivoxml.GetDigitsElement(
        action=urls.leg_digits(guid, leg_id),
        method="POST",
        num_digits=1,
        timeout=max(1, math.ceil(whisper.timeout_s)),
        valid_digits=ALL_DIGITS,
        finish_on_key="",
        retries=1,
        redirect=True,
    )
    get_digits.add_speak(whisper.text)
    response.add(get_digits)
    response.add_hangup()
    return _render(response)


def connect_xml(connect: Connect, guid: str, urls: CallbackUrls) -> str:
    """Join the winning agent to the lead's room, start it, and record the conversation."""
    response = plivoxml.ResponseElement()
    response.add(
        plivoxml.ConferenceElement(
            connect.room,
            start_conference_on_enter=True,
            end_conference_on_exit=True,
            # the lead already left: end at once instead of leaving the agent alone
            stay_alone=False,
            max_members=ROOM_MAX_MEMBERS,
            enter_sound="",
            exit_sound="",
            record=True,
            record_file_format="mp3",
            callback_url=urls.conference(guid),
            callback_method="POST",
        )
    )
    return _render(response)


def release_xml(release: Release) -> str:
    """End the agent's leg, optionally saying ``release.text`` first."""
    response = plivoxml.ResponseElement()
    if release.text:
        response.add_speak(release.text)
    response.add_hangup()
    return _render(response)


def render_decision(decision: Decision, guid: str, leg_id: str, urls: CallbackUrls) -> str:
    """The XML answer to a request that needed the call's ``decision`` (an agent leg's
    answer/digits, the lead's IVR answer)."""
    match decision:
        case Whisper():
            return whisper_xml(decision, guid, leg_id, urls)
        case Connect():
            return connect_xml(decision, guid, urls)
        case Release():
            return release_xml(decision)
        case JoinRoom():
            return lead_hold_xml(guid, urls)
        case Forward():
            return forward_xml(decision)


def ivr_xml(guid: str, menu: IvrMenu, urls: CallbackUrls) -> str:
    """The lead's answer when the campaign asks a question first (docs/contract.md §8): the prompt
    inside GetDigits (one key of the menu; others are ignored and the question repeated), then —
    after silence to the end — the same action URL without digits (the campaign's own
    plantype)."""
    response = plivoxml.ResponseElement()
    ask = plivoxml.GetDigitsElement(
        action=urls.ivr(guid),
        method="POST",
        num_digits=1,
        valid_digits=menu.keys,
        timeout=max(1, math.ceil(menu.timeout_s)),
        retries=menu.retries + 1,
        finish_on_key="",
        redirect=True,
    )
    ask.add_speak(menu.prompt)
    response.add(ask)
    response.add_redirect(urls.ivr(guid), method="POST")
    return _render(response)


def forward_xml(forward: Forward) -> str:
    """Forward the lead to a fixed number (an IVR redirect key)."""
    response = plivoxml.ResponseElement()
    dial = plivoxml.DialElement(caller_id=to_carrier(forward.caller_id))
    dial.add_number(to_carrier(forward.number))
    response.add(dial)
    return _render(response)


def voicemail_xml(guid: str, max_s: float, urls: CallbackUrls) -> str:
    """The prompt of docs/contract.md §5, a recorded message (``#`` ends it), thanks, hangup.

    ``redirect=false``: the Record action only notifies us; the document goes on to the thanks.
    """
    response = plivoxml.ResponseElement()
    response.add_speak(VOICEMAIL_PROMPT)
    response.add_record(
        action=urls.voicemail_done(guid),
        method="POST",
        file_format="mp3",
        max_length=max(1, math.ceil(max_s)),
        play_beep=True,
        finish_on_key="#",
        redirect=False,
    )
    response.add_speak(VOICEMAIL_THANKS_TEXT)
    response.add_hangup()
    return _render(response)


def unknown_number_xml() -> str:
    """A short apology and a hangup for a call to a number no campaign owns."""
    response = plivoxml.ResponseElement()
    response.add_speak(UNKNOWN_NUMBER_TEXT)
    response.add_hangup()
    return _render(response)


def empty_xml() -> str:
    """``<Response/>``: the answer to notification callbacks (the body is ignored)."""
    return _render(plivoxml.ResponseElement())
