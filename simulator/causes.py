"""Plivo hangup causes and the ``hangup_url`` fields they produce (docs/plivo.md §2.4). Pure.

Each :class:`HangupCause` carries what Plivo reports when a call ends: ``CallStatus``,
``HangupCause`` (the telephony cause), ``HangupCauseName``, ``HangupCauseCode`` and
``HangupSource``. Codes 1000, 2010, 3010, 3020, 4000, 4010, 7011-7014 and 8011-8014 are from
Plivo's hangup-cause page; the no-answer row (3030) was not in the stored copy of that page and
is our best reading of it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BUSY",
    "CANCELED",
    "END_OF_XML",
    "FAILED",
    "LOOP_DETECTED",
    "NO_ANSWER",
    "SIMULATOR_ERROR",
    "HangupCause",
    "busy_by_xml",
    "fetch_error",
    "invalid_xml",
    "normal_hangup",
    "rejected_by_callee",
    "rejected_by_xml",
    "time_limit",
]


@dataclass(frozen=True, slots=True)
class HangupCause:
    code: int  # HangupCauseCode
    name: str  # HangupCauseName
    telephony: str  # HangupCause (standard telephony cause)
    status: str  # CallStatus on the hangup_url: completed, busy, no-answer, failed, cancel
    source: str  # HangupSource

    def as_params(self) -> dict[str, str]:
        return {
            "CallStatus": self.status,
            "HangupCause": self.telephony,
            "HangupCauseName": self.name,
            "HangupCauseCode": str(self.code),
            "HangupSource": self.source,
        }


CANCELED = HangupCause(1000, "Canceled", "ORIGINATOR_CANCEL", "cancel", "API Request")
FAILED = HangupCause(
    2010, "Destination Out Of Service", "DESTINATION_OUT_OF_ORDER", "failed", "Carrier"
)
LOOP_DETECTED = HangupCause(2060, "Loop Detected", "EXCHANGE_ROUTING_ERROR", "completed", "Plivo")
BUSY = HangupCause(3010, "Busy Line", "USER_BUSY", "busy", "Call recipient")
NO_ANSWER = HangupCause(3030, "No Answer", "NO_ANSWER", "no-answer", "Plivo")
END_OF_XML = HangupCause(4010, "End Of XML Instructions", "NORMAL_CLEARING", "completed", "Plivo")
#: not a Plivo cause: the simulator itself failed while running the call (see its log)
SIMULATOR_ERROR = HangupCause(0, "Unknown", "NORMAL_TEMPORARY_FAILURE", "failed", "Error")

# which document a failed fetch belonged to -> the last digit of 701x / 801x
_DOCUMENT_DIGIT = {"answer": 1, "action": 2, "transfer": 3, "redirect": 4}


def normal_hangup(source: str) -> HangupCause:
    """4000 Normal Hangup by ``source`` (``Caller``, ``Call recipient``, ``API Request`` ...)."""
    return HangupCause(4000, "Normal Hangup", "NORMAL_CLEARING", "completed", source)


def rejected_by_xml() -> HangupCause:
    return HangupCause(3020, "Rejected", "CALL_REJECTED", "completed", "Answer XML")


def rejected_by_callee() -> HangupCause:
    """The callee declined a ringing call."""
    return HangupCause(3020, "Rejected", "CALL_REJECTED", "busy", "Call recipient")


def busy_by_xml() -> HangupCause:
    return HangupCause(3010, "Busy Line", "USER_BUSY", "completed", "Answer XML")


def time_limit() -> HangupCause:
    """The call reached its ``time_limit``."""
    return HangupCause(4000, "Normal Hangup", "ALLOTTED_TIMEOUT", "completed", "Plivo")


def fetch_error(document: str) -> HangupCause:
    """701x Error Reaching <Answer|Action|Transfer|Redirect> URL (no response or non-2xx)."""
    digit = _DOCUMENT_DIGIT[document]
    return HangupCause(
        7010 + digit,
        f"Error Reaching {document.title()} URL",
        "NORMAL_CLEARING",
        "completed",
        "Error",
    )


def invalid_xml(document: str) -> HangupCause:
    """801x Invalid <Answer|Action|Transfer|Redirect> XML (a 2xx whose body is not Plivo XML)."""
    digit = _DOCUMENT_DIGIT[document]
    return HangupCause(
        8010 + digit, f"Invalid {document.title()} XML", "NORMAL_CLEARING", "completed", "Error"
    )
