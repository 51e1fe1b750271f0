"""Parse Plivo REST request bodies (docs/plivo.md §1). Pure: no trio, no I/O.

Bodies come as JSON (what the SDK sends, ints and bools typed) or as form fields (strings);
both reach these functions as one mapping. Redundant keys the SDK adds (``call_uuid`` in DELETE
and transfer bodies) are ignored. Problems raise :class:`ParamError` (HTTP 400).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = [
    "CallRequest",
    "ParamError",
    "RecordRequest",
    "TransferRequest",
    "parse_make_call",
    "parse_record",
    "parse_transfer",
    "wire_number",
]

_PUNCTUATION = re.compile(r"[\s()\-.]")
MAX_BULK = 1000


class ParamError(ValueError):
    """A REST request parameter is missing or invalid (HTTP 400)."""


def wire_number(raw: str) -> str:
    """A number as Plivo writes it in webhooks: E.164 without ``+``; SIP URIs unchanged."""
    text = raw.strip()
    if text.lower().startswith("sip:"):
        return text
    return _PUNCTUATION.sub("", text).lstrip("+")


def _text(body: Mapping[str, object], key: str, default: str = "") -> str:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, list):
        value = value[0] if value else default
    return str(value).strip()


def _url(body: Mapping[str, object], key: str, *, required: bool = False) -> str:
    value = _text(body, key)
    if not value:
        if required:
            raise ParamError(f"{key} is required")
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ParamError(f"{key} must be an http(s) URL, got {value!r}")
    return value


def _method(body: Mapping[str, object], key: str) -> str:
    value = _text(body, key, "POST").upper() or "POST"
    if value not in ("GET", "POST"):
        raise ParamError(f"{key} must be GET or POST, got {value!r}")
    return value


def _int(body: Mapping[str, object], key: str, default: int, *, minimum: int = 0) -> int:
    value = body.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ParamError(f"{key} must be an integer, got {value!r}")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ParamError(f"{key} must be an integer, got {value!r}") from None
    if number < minimum:
        raise ParamError(f"{key} must be >= {minimum}, got {number}")
    return number


@dataclass(frozen=True, slots=True)
class CallRequest:
    """A Make Call request (docs/plivo.md §1.2); ``to`` has one entry per destination."""

    from_number: str
    to: tuple[str, ...]
    answer_url: str
    answer_method: str = "POST"
    ring_url: str = ""
    ring_method: str = "POST"
    hangup_url: str = ""
    hangup_method: str = "POST"
    fallback_url: str = ""
    fallback_method: str = "POST"
    caller_name: str = ""
    ring_timeout_s: int = 120
    time_limit_s: int = 14400

    @property
    def bulk(self) -> bool:
        return len(self.to) > 1


def parse_make_call(body: Mapping[str, object]) -> CallRequest:
    """``POST /Call/``: validate and normalise.

    Raises:
        ParamError: a required parameter is missing or a value is invalid.
    """
    from_number = _text(body, "from")
    to_raw = _text(body, "to")
    if not from_number:
        raise ParamError("from is required")
    if not to_raw:
        raise ParamError("to is required")
    destinations: list[str] = []
    for raw in to_raw.split("<"):
        number = wire_number(raw)
        if not number:
            raise ParamError(f"to has an empty destination: {to_raw!r}")
        if number not in destinations:
            destinations.append(number)
    if len(destinations) > MAX_BULK:
        raise ParamError(f"to has more than {MAX_BULK} destinations")
    source = wire_number(from_number)
    if source in destinations:
        raise ParamError("src and destination cannot overlap")
    caller_name = _text(body, "caller_name")
    if len(caller_name) > 50:
        raise ParamError("caller_name must be at most 50 characters")
    answer_url = _url(body, "answer_url", required=True)
    return CallRequest(
        from_number=source,
        to=tuple(destinations),
        answer_url=answer_url,
        answer_method=_method(body, "answer_method"),
        ring_url=_url(body, "ring_url"),
        ring_method=_method(body, "ring_method"),
        # older docs: hangup_url defaults to answer_url
        hangup_url=_url(body, "hangup_url") or answer_url,
        hangup_method=_method(body, "hangup_method"),
        fallback_url=_url(body, "fallback_url"),
        fallback_method=_method(body, "fallback_method"),
        caller_name=caller_name,
        ring_timeout_s=_int(body, "ring_timeout", 120),
        time_limit_s=min(_int(body, "time_limit", 14400, minimum=1), 86400),
    )


@dataclass(frozen=True, slots=True)
class TransferRequest:
    legs: str
    aleg_url: str
    aleg_method: str = "POST"


def parse_transfer(body: Mapping[str, object]) -> TransferRequest:
    """``POST /Call/{uuid}/``: only the A leg can be transferred in the simulator.

    Raises:
        ParamError: unknown ``legs``, a B leg requested, or no valid ``aleg_url``.
    """
    legs = _text(body, "legs", "aleg").lower() or "aleg"
    if legs not in ("aleg", "bleg", "both"):
        raise ParamError(f"legs must be aleg, bleg or both, got {legs!r}")
    if legs != "aleg":
        raise ParamError("the simulator transfers only the A leg (legs=aleg)")
    return TransferRequest(
        legs=legs,
        aleg_url=_url(body, "aleg_url", required=True),
        aleg_method=_method(body, "aleg_method"),
    )


@dataclass(frozen=True, slots=True)
class RecordRequest:
    time_limit_s: int = 60
    file_format: str = "mp3"
    callback_url: str = ""
    callback_method: str = "POST"


def parse_record(body: Mapping[str, object]) -> RecordRequest:
    """``POST /Call/{uuid}/Record/``.

    Raises:
        ParamError: a bad ``time_limit``, ``file_format`` or ``callback_url``.
    """
    file_format = _text(body, "file_format", "mp3").lower() or "mp3"
    if file_format not in ("mp3", "wav"):
        raise ParamError(f"file_format must be mp3 or wav, got {file_format!r}")
    return RecordRequest(
        time_limit_s=_int(body, "time_limit", 60, minimum=1),
        file_format=file_format,
        callback_url=_url(body, "callback_url"),
        callback_method=_method(body, "callback_method"),
    )
