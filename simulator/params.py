"""The form fields of every webhook the simulator sends (docs/plivo.md §2). Pure: no trio, no I/O.

One function per kind of request, all built on :func:`call_params`, the standard fields Plivo
puts on answer/action/redirect/hangup requests. Values are strings, as on the wire. Times are
simulated epoch seconds; Plivo writes them as ``YYYY-MM-DD HH:MM:SS`` (UTC).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from simulator.causes import HangupCause

__all__ = [
    "CallIdentity",
    "CallTimes",
    "Recording",
    "call_params",
    "conference_params",
    "dial_params",
    "format_time",
    "hangup_params",
    "record_api_params",
    "recording_params",
]


@dataclass(frozen=True, slots=True)
class CallIdentity:
    """Who a call is, as its webhooks say it."""

    call_uuid: str
    direction: str  # "inbound" | "outbound"
    from_number: str
    to_number: str
    request_uuid: str = ""  # outbound only
    caller_name: str = ""


@dataclass(frozen=True, slots=True)
class CallTimes:
    """Simulated epoch seconds; ``answered``/``ended`` are ``None`` until they happen."""

    started: float
    answered: float | None = None
    ended: float | None = None


@dataclass(frozen=True, slots=True)
class Recording:
    """A finished recording (Record element, conference recording, or Record API)."""

    recording_id: str
    url: str
    started: float  # simulated epoch seconds
    ended: float

    @property
    def duration_s(self) -> float:
        return max(0.0, self.ended - self.started)


def format_time(epoch_s: float | None) -> str:
    """Plivo's ``YYYY-MM-DD HH:MM:SS`` (UTC), or ``""`` for a time that did not happen."""
    if epoch_s is None:
        return ""
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def call_params(ident: CallIdentity, status: str) -> dict[str, str]:
    """Standard call fields (docs/plivo.md §2.2); outbound calls also carry the request ids."""
    params = {
        "CallUUID": ident.call_uuid,
        "From": ident.from_number,
        "To": ident.to_number,
        "CallStatus": status,
        "Direction": ident.direction,
    }
    if ident.caller_name:
        params["CallerName"] = ident.caller_name
    if ident.direction == "outbound":
        params["RequestUUID"] = ident.request_uuid
        params["ALegUUID"] = ident.call_uuid
        params["ALegRequestUUID"] = ident.request_uuid
    return params


def hangup_params(ident: CallIdentity, cause: HangupCause, times: CallTimes) -> dict[str, str]:
    """The ``hangup_url`` request: standard fields plus cause, source and durations."""
    ended = times.ended if times.ended is not None else times.started
    duration = 0
    if times.answered is not None:
        duration = max(0, math.ceil(ended - times.answered - 1e-9))
    params = call_params(ident, cause.status)
    params.update(cause.as_params())
    params.update(
        {
            "Event": "Hangup",
            "Duration": str(duration),
            "BillDuration": str(duration),
            "BillRate": "0.00000",
            "TotalCost": "0.00000",
            "StartTime": format_time(times.started),
            "AnswerTime": format_time(times.answered),
            "EndTime": format_time(ended),
        }
    )
    return params


def recording_params(recording: Recording) -> dict[str, str]:
    """``RecordUrl``, ``RecordingID`` and duration/start/end fields of a Record/conference event."""
    return {
        "RecordUrl": recording.url,
        "RecordingID": recording.recording_id,
        "RecordingDuration": str(round(recording.duration_s)),
        "RecordingDurationMs": str(round(recording.duration_s * 1000)),
        "RecordingStartMs": str(round(recording.started * 1000)),
        "RecordingEndMs": str(round(recording.ended * 1000)),
    }


def record_api_params(call_uuid: str, recording: Recording, api_id: str) -> dict[str, str]:
    """The Record API's ``callback_url`` request: snake_case fields (docs/plivo.md §1.7)."""
    return {
        "api_id": api_id,
        "call_uuid": call_uuid,
        "record_url": recording.url,
        "recording_id": recording.recording_id,
        "recording_duration": str(round(recording.duration_s)),
        "recording_duration_ms": str(round(recording.duration_s * 1000)),
        "recording_start_ms": str(round(recording.started * 1000)),
        "recording_end_ms": str(round(recording.ended * 1000)),
    }


def conference_params(
    room: str, conference_uuid: str, member_id: str, action: str = ""
) -> dict[str, str]:
    """Conference fields for its ``callbackUrl`` (with ``ConferenceAction``) and ``action``."""
    params = {
        "ConferenceName": room,
        "ConferenceUUID": conference_uuid,
        "ConferenceMemberID": member_id,
    }
    if action:
        params["ConferenceAction"] = action
    return params


def dial_params(
    *,
    a_leg_uuid: str,
    b_leg_uuid: str,
    status: str,
    hangup_cause: str,
    rang: bool,
) -> dict[str, str]:
    """The ``<Dial action>`` fields (docs/plivo.md §2.5)."""
    return {
        "DialStatus": status,
        "DialRingStatus": "true" if rang else "false",
        "DialHangupCause": hangup_cause,
        "DialALegUUID": a_leg_uuid,
        "DialBLegUUID": b_leg_uuid,
    }
