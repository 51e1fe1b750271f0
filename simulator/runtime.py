"""What the XML executor, conference rooms and dialler share: clock, log, webhooks, timings.

:class:`Runtime` is built by the :class:`~simulator.engine.Simulator` and handed to
the per-call code, so that code never imports the engine. Its two webhook helpers implement
Plivo's rules for the two kinds of request (docs/plivo.md §2.1):

- :meth:`Runtime.notify`: a notification (ring, hangup, callbackUrl); the body is ignored.
- :meth:`Runtime.fetch_document`: a request that must answer Plivo XML (answer, action,
  transfer, redirect); failure raises :class:`DocumentFailed` with the 701x/801x cause.

Cancellation: a request, once started, runs to its end (shielded, bounded by the webhook
timeouts) even if the call hangs up meanwhile, as Plivo's servers do not abort a callback
because the caller left. The call then ends at its next checkpoint. :meth:`Runtime.abort`
(simulator shutdown) cancels requests in flight.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import trio

from simulator.causes import HangupCause, fetch_error, invalid_xml
from simulator.events import EventKind, EventLog
from simulator.scripts import ScriptBook
from simulator.state import SimCall, SimClock
from simulator.webhooks import WebhookResult, WebhookSender
from simulator.xml_program import Step, XmlProgramError, parse_xml

__all__ = ["DocumentFailed", "DocumentKind", "Runtime", "Timings", "new_id"]

_ABORTED = "aborted"  # WebhookResult.failure of a request cut by the simulator's shutdown

DocumentKind = Literal["answer", "action", "transfer", "redirect"]


def new_id() -> str:
    return str(uuid.uuid4())


class DocumentFailed(Exception):
    """A document request failed; the call must end with ``cause``."""

    def __init__(self, cause: HangupCause, detail: str) -> None:
        self.cause = cause
        super().__init__(detail)


@dataclass(frozen=True, slots=True)
class Timings:
    """How long simulated things take (simulated seconds)."""

    speak_s_per_char: float = 0.06  # ~15 characters per second of speech
    speak_min_s: float = 0.5
    play_s: float = 5.0  # an audio file of unknown length
    dtmf_s_per_digit: float = 0.1
    setup_s: float = 0.5  # from dialling to ringing / busy / failed
    webhook_wait_s: float = 10.0  # real seconds a shielded cleanup webhook may take


@dataclass(eq=False, slots=True)
class Runtime:
    clock: SimClock
    log: EventLog
    sender: WebhookSender
    scripts: ScriptBook
    timings: Timings
    spawn: Callable[[Callable[[], Awaitable[None]]], None]  # run a task in the simulator
    recording_url: Callable[[str, str], str]  # (recording_id, file_format) -> URL
    conference_end_hangs_up: bool = True
    _inflight: set[trio.CancelScope] = field(default_factory=set)

    def abort(self) -> None:
        """Cancel every request in flight (simulator shutdown)."""
        for scope in tuple(self._inflight):
            scope.cancel()

    async def _send(
        self, call: SimCall, method: str, url: str, params: Mapping[str, str]
    ) -> WebhookResult:
        with trio.CancelScope(shield=True) as scope:
            self._inflight.add(scope)
            try:
                return await self.sender.send(
                    method, url, params, auth_token=call.account.auth_token
                )
            finally:
                self._inflight.discard(scope)
        return WebhookResult(url, None, "", "", 0, _ABORTED)

    async def notify(
        self, call: SimCall, url: str, method: str, params: Mapping[str, str], *, what: str
    ) -> WebhookResult | None:
        """Send a notification; log it; the answer body is ignored."""
        if not url:
            return None
        result = await self._send(call, method, url, params)
        self._log_result(call, result, what)
        return result

    async def fetch_document(
        self,
        call: SimCall,
        url: str,
        method: str,
        params: Mapping[str, str],
        *,
        kind: DocumentKind,
        what: str,
        fallback: tuple[str, str] | None = None,
    ) -> tuple[Step, ...]:
        """Request ``url`` and parse its answer as Plivo XML.

        Raises:
            DocumentFailed: no answer or non-2xx (701x), or a body that is not Plivo XML (801x),
                after trying ``fallback`` (url, method) when given.
        """
        result = await self._send(call, method, url, params)
        self._log_result(call, result, what)
        if not result.ok and fallback and fallback[0]:
            result = await self._send(call, fallback[1], fallback[0], params)
            self._log_result(call, result, f"{what}.fallback")
        if not result.ok:
            detail = f"{what} {result.url}: {result.failure} (status {result.status})"
            self.log.add(
                EventKind.DOCUMENT_FAILED,
                call_uuid=call.call_uuid,
                number=call.party_number,
                what=what,
                url=result.url,
                failure=result.failure,
                status=result.status,
            )
            raise DocumentFailed(fetch_error(kind), detail)
        try:
            steps = parse_xml(result.body)
        except XmlProgramError as exc:
            self.log.add(
                EventKind.DOCUMENT_FAILED,
                call_uuid=call.call_uuid,
                number=call.party_number,
                what=what,
                url=result.url,
                failure="invalid_xml",
                error=str(exc),
                body=result.body[:200],
            )
            raise DocumentFailed(invalid_xml(kind), f"{what} {result.url}: {exc}") from None
        return steps

    def _log_result(self, call: SimCall, result: WebhookResult, what: str) -> None:
        if result.ok:
            self.log.add(
                EventKind.WEBHOOK_SENT,
                call_uuid=call.call_uuid,
                number=call.party_number,
                what=what,
                url=result.url,
                status=result.status,
                attempts=result.attempts,
                elapsed_ms=round(result.elapsed_s * 1000, 3),
            )
        else:
            self.log.add(
                EventKind.WEBHOOK_FAILED,
                call_uuid=call.call_uuid,
                number=call.party_number,
                what=what,
                url=result.url,
                status=result.status,
                attempts=result.attempts,
                failure=result.failure,
                elapsed_ms=round(result.elapsed_s * 1000, 3),
            )

    async def shielded(self, fn: Callable[[], Awaitable[object]]) -> None:
        """Run cleanup webhooks even though the call's scope is cancelled, bounded in time."""
        with trio.CancelScope(shield=True), trio.move_on_after(self.timings.webhook_wait_s):
            await fn()

    def speak_s(self, text: str) -> float:
        return max(self.timings.speak_min_s, len(text) * self.timings.speak_s_per_char)
