"""Checks for single Step 2 values: text in, a typed value out, or :class:`Invalid` saying why.

Pure functions, no I/O (docs/contract.md §3.3). Every function receives one element already trimmed
of surrounding whitespace; its error message is written for the customer's developer and is
returned verbatim in the ``400`` body, so it names the rule and echoes (a bounded prefix of)
the offending value.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import TypeVar

from email_validator import EmailNotValidError, validate_email

from orchestrator.errors import Problem
from orchestrator.ids import GUID_PATTERN
from orchestrator.numbers import to_nanp10

#: Longest agent name (API doc: FullName text, len 100).
NAME_MAX = 100
#: Longest e-mail address (RFC 5321 path limit).
EMAIL_MAX = 254
#: Longest NMLS licence number we keep (numeric is not required).
NMLS_MAX = 20
#: Ids, tiers and rows must fit a signed 64-bit database column.
INT_MAX = 2**63 - 1

_T = TypeVar("_T")

# ASCII digits only: int() would also take "1_000" and non-ASCII digits.
_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")
# What may surround the digits of a phone number: "+1 (949) 265-1111", "949.265.1111".
_PHONE_TEXT = re.compile(r"[0-9+().\-/ ]*")
_SHOWN_MAX = 40


class Invalid(ValueError):
    """A value broke a rule; ``str(exc)`` is the message for the customer."""


def shown(text: str) -> str:
    """``text`` quoted for an error message, cut to a bounded length."""
    if len(text) > _SHOWN_MAX:
        text = text[:_SHOWN_MAX] + "..."
    return repr(text)


def integer(text: str, *, minimum: int = 0) -> int:
    """An integer of ASCII digits, ``minimum`` ≤ value ≤ 2**63-1."""
    if not text:
        raise Invalid("required: an integer")
    if not _INTEGER.fullmatch(text):
        raise Invalid(f"must be an integer, got {shown(text)}")
    value = int(text)
    if value < minimum:
        raise Invalid(f"must be {minimum} or more, got {value}")
    if value > INT_MAX:
        raise Invalid(f"must be at most {INT_MAX}, got {value}")
    return value


def agent_id(text: str) -> int:
    """An ``AgentID``: a positive integer (``0`` is only valid alone, as "no agents")."""
    value = integer(text)
    if value == 0:
        raise Invalid('must be more than 0 (0 is only valid alone, meaning "no agents")')
    return value


def flag(text: str) -> bool:
    """A ``0``/``1`` flag."""
    if text == "1":
        return True
    if text == "0":
        return False
    raise Invalid(f"must be 0 or 1, got {shown(text)}")


def phone(text: str) -> str:
    """A 10-digit NANP number; punctuation is removed and a leading ``1`` on 11 digits dropped."""
    if not text:
        raise Invalid("required: a 10-digit phone number")
    digits = to_nanp10(text) if _PHONE_TEXT.fullmatch(text) else None
    if digits is None:
        raise Invalid(f"must be a 10-digit phone number, got {shown(text)}")
    return digits


def email(text: str) -> str:
    """A syntactically valid e-mail address of at most 254 characters, kept as given."""
    if not text:
        raise Invalid("required: an e-mail address")
    if len(text) > EMAIL_MAX:
        raise Invalid(f"must be at most {EMAIL_MAX} characters, got {len(text)}")
    try:
        validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise Invalid(f"not a valid e-mail address ({exc}): {shown(text)}") from None
    return text


def name(text: str) -> str:
    """An agent name: not empty, at most 100 characters, no control characters."""
    if not text:
        raise Invalid("required: the agent's name")
    return _text(text, NAME_MAX)


def nmls(text: str) -> str:
    """An NMLS licence number: at most 20 characters, may be empty (not every agent has one)."""
    return _text(text, NMLS_MAX)


def tracking_guid(text: str) -> str:
    """A UUID in its 36-character form, returned in lowercase."""
    if not text:
        raise Invalid("required: the call's TrackingGUID as sent in Step 1")
    lowered = text.lower()
    if not GUID_PATTERN.fullmatch(lowered):
        raise Invalid(f"must be a 36-character UUID (8-4-4-4-12 hex digits), got {shown(text)}")
    return lowered


def _text(text: str, limit: int) -> str:
    if len(text) > limit:
        raise Invalid(f"must be at most {limit} characters, got {len(text)}")
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise Invalid(f"must not contain control characters, got {shown(text)}")
    return text


class ProblemList:
    """Collects every :class:`Problem` of one request, so all are reported at once."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def __bool__(self) -> bool:
        return bool(self.items)

    def add(self, field: str, message: str, index: int | None = None) -> None:
        self.items.append(Problem(field, message, index))

    def check(
        self, field: str, index: int | None, convert: Callable[[str], _T], text: str
    ) -> _T | None:
        """``convert(text)``, or ``None`` after recording why it is invalid."""
        try:
            return convert(text)
        except Invalid as exc:
            self.add(field, str(exc), index)
            return None
