"""Plivo callbacks to frozen events: pure parsing, no trio, no I/O.

Input is what the web layer has already read: which route was hit (:class:`Route`), *our* query
parameters (``call`` = TrackingGUID, ``leg`` = leg id; see ``urls.py``) and Plivo's form fields
(for a GET callback, the query fields). Output is one event of :mod:`orchestrator.messages`, or
``None`` for a callback that carries nothing the call cares about.

Error handling: a callback missing a field we cannot do without raises :class:`WebhookInvalid`
(answered 400). Optional fields that are malformed (a non-numeric ``Duration``) are read as
absent, so a hangup is never lost over a detail.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from orchestrator.carriers.plivo.urls import CALL_PARAM, LEG_PARAM
from orchestrator.errors import WebhookInvalid
from orchestrator.ids import canonical_guid, is_leg_id
from orchestrator.messages import (
    CarrierEvent,
    IvrAnswered,
    LeadHungUp,
    LegAnswered,
    LegDigits,
    LegEndCause,
    LegEnded,
    LegRinging,
    RecordingReady,
    VoicemailRecorded,
)
from orchestrator.numbers import to_nanp10


class Route(StrEnum):
    """The callbacks that carry events (the XML-only routes need no parsing)."""

    LEAD_HANGUP = "lead hangup"
    LEG_RING = "leg ring"
    LEG_ANSWER = "leg answer"
    LEG_DIGITS = "leg digits"
    LEG_HANGUP = "leg hangup"
    CONFERENCE = "conference"
    VOICEMAIL_DONE = "voicemail done"
    IVR = "ivr"


@dataclass(frozen=True, slots=True)
class LeadAnswer:
    """The lead's inbound answer request.

    ``from_number`` / ``to_number`` are 10-digit NANP when ``*_is_nanp``; otherwise the raw
    value Plivo sent (an anonymous or international caller id, an unknown trunk number).
    """

    call_id: str
    from_number: str
    to_number: str
    from_is_nanp: bool
    to_is_nanp: bool


# Plivo CallStatus values of an ended outbound call (docs/plivo.md §2.2, §2.3).
_STATUS_CAUSES: dict[str, LegEndCause] = {
    "busy": LegEndCause.BUSY,
    "no-answer": LegEndCause.NO_ANSWER,
    "timeout": LegEndCause.NO_ANSWER,
    "failed": LegEndCause.FAILED,
    "cancel": LegEndCause.CANCELLED,
    "canceled": LegEndCause.CANCELLED,
    "cancelled": LegEndCause.CANCELLED,
    "completed": LegEndCause.HANGUP,
}
# Telephony HangupCause names, used when CallStatus says nothing useful.
_TELEPHONY_CAUSES: dict[str, LegEndCause] = {
    "USER_BUSY": LegEndCause.BUSY,
    "NO_ANSWER": LegEndCause.NO_ANSWER,
    "NO_USER_RESPONSE": LegEndCause.NO_ANSWER,
    "ALLOTTED_TIMEOUT": LegEndCause.NO_ANSWER,
    "ORIGINATOR_CANCEL": LegEndCause.CANCELLED,
    "NORMAL_CLEARING": LegEndCause.HANGUP,
}
#: HangupCauseCode of a request cancelled through the API (docs/plivo.md §1.4, §2.4).
CANCELED_CODE = "1000"
BUSY_CODE = "3010"


def _field(fields: Mapping[str, str], name: str) -> str:
    return (fields.get(name) or "").strip()


def _required(fields: Mapping[str, str], name: str, what: str) -> str:
    value = _field(fields, name)
    if not value:
        raise WebhookInvalid(f"{what}: missing required field {name}")
    return value


def _seconds(fields: Mapping[str, str], name: str) -> float:
    """A non-negative number of seconds, or 0.0 when absent or malformed."""
    try:
        value = float(_field(fields, name) or 0)
    except ValueError:
        return 0.0
    return value if value > 0 and value != float("inf") else 0.0


def call_guid(query: Mapping[str, str], what: str) -> str:
    """The TrackingGUID in our ``call`` query parameter (lowercased).

    Raises:
        WebhookInvalid: missing, or not a TrackingGUID (we never hand out anything else).
    """
    guid = canonical_guid(_required(query, CALL_PARAM, what))
    if guid is None:
        raise WebhookInvalid(f"{what}: query parameter {CALL_PARAM!r} is not a TrackingGUID")
    return guid


def _leg_ids(query: Mapping[str, str], route: Route) -> tuple[str, str]:
    what = f"{route} callback URL"
    guid = call_guid(query, what)
    leg_id = _required(query, LEG_PARAM, what)
    if not is_leg_id(leg_id):
        raise WebhookInvalid(f"{what}: query parameter {LEG_PARAM!r} is not a leg id")
    return guid, leg_id


def _request_id(form: Mapping[str, str]) -> str:
    return _field(form, "RequestUUID") or _field(form, "ALegRequestUUID")


def leg_end_cause(form: Mapping[str, str], *, answered: bool) -> LegEndCause:
    """Normalise Plivo's CallStatus / HangupCauseName / HangupCauseCode / HangupCause.

    A cancel by our API (code 1000, name "Canceled", status "cancel") wins over everything,
    because a cancelled request is also reported with a no-answer-like status. Then CallStatus,
    then the code and names. An ended call with no usable cause is a HANGUP if it was answered,
    else FAILED.

    Raises:
        WebhookInvalid: none of the cause fields is present.
    """
    status = _field(form, "CallStatus").lower()
    code = _field(form, "HangupCauseCode")
    name = _field(form, "HangupCauseName").lower()
    telephony = _field(form, "HangupCause").upper()
    if not (status or code or name or telephony):
        raise WebhookInvalid(
            "leg hangup callback: none of CallStatus, HangupCauseCode, HangupCauseName, "
            "HangupCause is present"
        )
    if code == CANCELED_CODE or name == "canceled" or status in ("cancel", "canceled", "cancelled"):
        return LegEndCause.CANCELLED
    if status in _STATUS_CAUSES:
        return _STATUS_CAUSES[status]
    if code == BUSY_CODE or name == "busy line":
        return LegEndCause.BUSY
    if telephony in _TELEPHONY_CAUSES:
        return _TELEPHONY_CAUSES[telephony]
    return LegEndCause.HANGUP if answered else LegEndCause.FAILED


def _leg_ended(query: Mapping[str, str], form: Mapping[str, str]) -> LegEnded:
    guid, leg_id = _leg_ids(query, Route.LEG_HANGUP)
    duration = _seconds(form, "Duration")
    answered = (
        bool(_field(form, "AnswerTime")) or duration > 0 or _seconds(form, "BillDuration") > 0
    )
    return LegEnded(
        tracking_guid=guid,
        leg_id=leg_id,
        cause=leg_end_cause(form, answered=answered),
        call_id=_field(form, "CallUUID"),
        request_id=_request_id(form),
        answered=answered,
        duration_s=duration,
    )


def _recording_ready(query: Mapping[str, str], form: Mapping[str, str]) -> RecordingReady | None:
    guid = call_guid(query, "conference callback URL")
    action = _field(form, "ConferenceAction").lower()
    url = _field(form, "RecordUrl")
    if action not in ("", "record") or not url:
        return None  # enter / exit / digits / floor: nothing the call waits for
    return RecordingReady(tracking_guid=guid, url=url, recording_id=_field(form, "RecordingID"))


def _voicemail_recorded(
    query: Mapping[str, str], form: Mapping[str, str]
) -> VoicemailRecorded | None:
    guid = call_guid(query, "voicemail callback URL")
    url = _field(form, "RecordUrl")
    if not url:
        return None  # nothing was recorded; the lead's hangup finishes the call
    return VoicemailRecorded(
        tracking_guid=guid,
        url=url,
        recording_id=_field(form, "RecordingID"),
        duration_s=_seconds(form, "RecordingDuration"),
    )


def parse_event(
    route: Route, query: Mapping[str, str], form: Mapping[str, str]
) -> CarrierEvent | None:
    """Turn one callback into its event (``None``: nothing to deliver).

    Args:
        route: which callback URL was requested.
        query: our query parameters (``call``, ``leg``).
        form: Plivo's fields (POST form, or the query of a GET callback).

    Raises:
        WebhookInvalid: a required id or field is missing.
    """
    match route:
        case Route.LEG_RING:
            guid, leg_id = _leg_ids(query, route)
            return LegRinging(
                guid, leg_id, request_id=_request_id(form), call_id=_field(form, "CallUUID")
            )
        case Route.LEG_ANSWER:
            guid, leg_id = _leg_ids(query, route)
            return LegAnswered(
                guid,
                leg_id,
                call_id=_required(form, "CallUUID", route),
                request_id=_request_id(form),
            )
        case Route.LEG_DIGITS:
            guid, leg_id = _leg_ids(query, route)
            return LegDigits(
                guid,
                leg_id,
                call_id=_required(form, "CallUUID", route),
                digits=_field(form, "Digits"),
            )
        case Route.LEG_HANGUP:
            return _leg_ended(query, form)
        case Route.CONFERENCE:
            return _recording_ready(query, form)
        case Route.VOICEMAIL_DONE:
            return _voicemail_recorded(query, form)
        case Route.IVR:
            guid = call_guid(query, "IVR callback URL")
            return IvrAnswered(
                guid, call_id=_required(form, "CallUUID", route), digits=_field(form, "Digits")
            )
        case Route.LEAD_HANGUP:
            # the lead's URLs are set on the Plivo application: no ids of ours in them; the
            # orchestrator resolves the call by its carrier id
            return LeadHungUp(tracking_guid="", call_id=_required(form, "CallUUID", route))


def parse_lead_answer(form: Mapping[str, str]) -> LeadAnswer:
    """Read the lead's inbound answer request (docs/contract.md §1.1): CallUUID, From, To.

    Raises:
        WebhookInvalid: CallUUID or To is missing.
    """
    call_id = _required(form, "CallUUID", "lead answer")
    to_raw = _required(form, "To", "lead answer")
    from_raw = _field(form, "From")
    from_nanp = to_nanp10(from_raw)
    to_nanp = to_nanp10(to_raw)
    return LeadAnswer(
        call_id=call_id,
        from_number=from_nanp or from_raw,
        to_number=to_nanp or to_raw,
        from_is_nanp=from_nanp is not None,
        to_is_nanp=to_nanp is not None,
    )
