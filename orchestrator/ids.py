"""Our identifiers: the TrackingGUID of a call and the id of an agent leg. A leaf module.

Both travel in every callback URL we give the carrier (``call=``, ``leg=``) and come back in
its requests, so they are checked here before anything uses them (a NUL byte or a megabyte of
text in ``call=`` must never reach an XML document or a log line).

- **TrackingGUID**: a lowercase UUID4 in its 36-character form (docs/contract.md, "Words").
- **Leg id**: 64 random bits in hex. Legs are many, and each id is in every callback URL and
  log line of its leg, so shorter than a UUID; collisions are out of reach. Ids of other shapes
  (tests use ``leg-1``) are accepted when they are 1-64 characters of ``[A-Za-z0-9_-]``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid

GUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
LEG_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def new_tracking_guid() -> str:
    """A new TrackingGUID."""
    return str(uuid.uuid4())


def new_leg_id() -> str:
    """A new leg id: 16 hex digits."""
    return secrets.token_hex(8)


def canonical_guid(text: str) -> str | None:
    """``text`` as a TrackingGUID (surrounding spaces removed, lowercased), or ``None``."""
    guid = text.strip().lower()
    return guid if GUID_PATTERN.fullmatch(guid) else None


def is_leg_id(text: str) -> bool:
    return LEG_ID_PATTERN.fullmatch(text) is not None


def tracking_guid_for(carrier_call_id: str, key: bytes) -> str:
    """The TrackingGUID of the lead's call ``carrier_call_id``: a UUID4 made from a keyed hash
    of it, so that every instance holding ``key`` derives the same one. A carrier retry of the
    lead's answer that reaches another instance then names the same call (and the same hold
    room), and the store sees it is taken. Unpredictable without the key."""
    digest = bytearray(hmac.new(key, carrier_call_id.encode(), hashlib.sha256).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x40  # version 4
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    return str(uuid.UUID(bytes=bytes(digest)))
