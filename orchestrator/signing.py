"""Instance-to-instance requests: signed with the cluster's shared secret (docs/contract.md §11).

A request one instance sends another (a carrier webhook handed on to the call's owner, a
committed plan, an operator's hang-up) carries three headers:

- ``X-Orchestrator-Instance``: the sender's instance id;
- ``X-Orchestrator-Timestamp``: Unix seconds when it was signed;
- ``X-Orchestrator-Signature``: hex HMAC-SHA256, keyed with ``cluster.secret``, of
  ``"{timestamp}\\n{sender}\\n{METHOD}\\n{path?query}\\n{sha256(body) hex}"``.

The receiver recomputes it and refuses (401) a request whose signature does not match or whose
timestamp is more than :data:`MAX_SKEW_S` away from its clock. The carrier's own signature
cannot serve here: it covers the URL the carrier requested, which names the instance that
received the webhook, not the one it is handed to — and the receiver has already checked it.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

INSTANCE_HEADER = "X-Orchestrator-Instance"
TIMESTAMP_HEADER = "X-Orchestrator-Timestamp"
SIGNATURE_HEADER = "X-Orchestrator-Signature"
HEADERS = (INSTANCE_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)
#: How far a signed request's timestamp may be from the receiver's clock.
MAX_SKEW_S = 60.0


@dataclass(frozen=True, slots=True)
class Signer:
    """Signs and checks instance-to-instance requests with one shared secret."""

    secret: bytes
    instance_id: str

    def headers(self, method: str, target: str, body: bytes, *, now: float) -> dict[str, str]:
        """The three headers for a request to ``target`` (path plus ``?query``)."""
        timestamp = str(int(now))
        return {
            INSTANCE_HEADER: self.instance_id,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: self._mac(timestamp, self.instance_id, method, target, body),
        }

    def problem(
        self, method: str, target: str, body: bytes, headers: Mapping[str, str], *, now: float
    ) -> str | None:
        """Why the request is not a genuine one from another instance, or None when it is."""
        sender = headers.get(INSTANCE_HEADER, "")
        timestamp = headers.get(TIMESTAMP_HEADER, "")
        given = headers.get(SIGNATURE_HEADER, "")
        if not (sender and timestamp and given):
            return "missing instance signature headers"
        if not timestamp.isascii() or not timestamp.isdigit():
            return "bad instance timestamp"
        if abs(now - int(timestamp)) > MAX_SKEW_S:
            return "instance timestamp out of range"
        expected = self._mac(timestamp, sender, method, target, body)
        if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
            return "bad instance signature"
        return None

    def _mac(self, timestamp: str, sender: str, method: str, target: str, body: bytes) -> str:
        digest = hashlib.sha256(body).hexdigest()
        message = f"{timestamp}\n{sender}\n{method.upper()}\n{target}\n{digest}"
        return hmac.new(self.secret, message.encode("utf-8"), hashlib.sha256).hexdigest()


def is_forwarded(headers: Mapping[str, str]) -> bool:
    """Whether the request claims to come from another instance (then it must verify)."""
    return any(headers.get(name) for name in (INSTANCE_HEADER, SIGNATURE_HEADER))
