"""The simulator's mutable world: the simulated clock, accounts, and live calls.

Everything here lives inside one trio run and is touched only from its tasks, so no locks:
a state change between two checkpoints is atomic.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum

import trio

from simulator.causes import HangupCause
from simulator.params import CallIdentity, CallTimes
from simulator.scripts import PartyScript

__all__ = ["Account", "ApiRecording", "CallState", "CallUrls", "SimCall", "SimClock"]


class SimClock:
    """Simulated time: ``time_scale`` real seconds per simulated second.

    ``now()`` is simulated seconds since the clock was made; ``epoch(t)`` maps that onto the
    wall clock (the simulated epoch runs faster than real time when ``time_scale < 1``).
    Must be created inside a trio run.
    """

    def __init__(self, time_scale: float) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        self.time_scale = time_scale
        self._t0 = trio.current_time()
        self._wall0 = time.time()

    def now(self) -> float:
        return (trio.current_time() - self._t0) / self.time_scale

    def epoch(self, at: float | None = None) -> float:
        return self._wall0 + (self.now() if at is None else at)

    def real(self, sim_s: float) -> float:
        return max(0.0, sim_s) * self.time_scale

    async def sleep(self, sim_s: float) -> None:
        await trio.sleep(self.real(sim_s))


@dataclass(frozen=True, slots=True)
class Account:
    auth_id: str
    auth_token: str


@dataclass(frozen=True, slots=True)
class CallUrls:
    answer_url: str
    answer_method: str = "POST"
    hangup_url: str = ""
    hangup_method: str = "POST"
    ring_url: str = ""
    ring_method: str = "POST"
    fallback_url: str = ""
    fallback_method: str = "POST"


class CallState(StrEnum):
    QUEUED = "queued"  # over the CPS limit, waiting to be dialled
    RINGING = "ringing"
    IN_PROGRESS = "in-progress"
    ENDED = "ended"


@dataclass(slots=True)
class ApiRecording:
    """A recording started with the Record API; delivered to ``callback_url`` when it ends."""

    recording_id: str
    url: str
    started: float  # simulated seconds
    time_limit_s: float
    callback_url: str
    callback_method: str
    api_id: str
    stopped: bool = False


@dataclass(eq=False, slots=True)
class SimCall:
    """One call leg the simulator runs (an outbound API call or an inbound call).

    ``end(cause)`` is the only way a call ends: it records the first cause (and when) and cancels
    ``scope``, the cancel scope of the call's task. ``doc_scope`` wraps the XML document being
    executed; a transfer sets ``pending_transfer`` and cancels just that.
    """

    ident: CallIdentity
    clock: SimClock
    account: Account
    urls: CallUrls
    script: PartyScript
    party_number: str  # the simulated person's number (outbound: To; inbound: From)
    created_at: float  # simulated seconds
    ring_timeout_s: float = 120.0
    time_limit_s: float = 14400.0
    not_before: float = 0.0  # trio time at which a queued request may be dialled
    state: CallState = CallState.QUEUED
    ring_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    cause: HangupCause | None = None
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    doc_scope: trio.CancelScope | None = None
    pending_transfer: tuple[str, str] | None = None
    transfers: int = 0
    ring_sent: trio.Event = field(default_factory=trio.Event)
    connected: trio.Event = field(default_factory=trio.Event)
    finished: trio.Event = field(default_factory=trio.Event)
    recordings: list[ApiRecording] = field(default_factory=list)
    room: str = ""  # the conference room the call is in, if any

    @property
    def call_uuid(self) -> str:
        return self.ident.call_uuid

    @property
    def request_uuid(self) -> str:
        return self.ident.request_uuid

    @property
    def live(self) -> bool:
        return self.state is not CallState.ENDED

    @property
    def party_source(self) -> str:
        """``HangupSource`` when the simulated person hangs up."""
        return "Caller" if self.ident.direction == "inbound" else "Call recipient"

    def end(self, cause: HangupCause) -> bool:
        """End the call with ``cause`` unless it already has one; True if this call did it."""
        if self.cause is not None:
            return False
        self.cause = cause
        self.ended_at = self.clock.now()
        self.scope.cancel()
        return True

    def times(self, clock: SimClock) -> CallTimes:
        return CallTimes(
            started=clock.epoch(self.ring_at if self.ring_at is not None else self.created_at),
            answered=None if self.answered_at is None else clock.epoch(self.answered_at),
            ended=None if self.ended_at is None else clock.epoch(self.ended_at),
        )

    def status_text(self) -> str:
        """``CallStatus`` for requests made while the call is up."""
        return "ringing" if self.state in (CallState.QUEUED, CallState.RINGING) else "in-progress"

    def info(self, clock: SimClock) -> dict[str, object]:
        """A JSON-able snapshot (control API, ``live_calls()``)."""
        return {
            "call_uuid": self.call_uuid,
            "request_uuid": self.request_uuid,
            "direction": self.ident.direction,
            "from": self.ident.from_number,
            "to": self.ident.to_number,
            "caller_name": self.ident.caller_name,
            "state": str(self.state),
            "room": self.room,
            "created_at": round(self.created_at, 3),
            "answered_at": None if self.answered_at is None else round(self.answered_at, 3),
            "ended_at": None if self.ended_at is None else round(self.ended_at, 3),
            "hangup_cause_code": None if self.cause is None else self.cause.code,
            "hangup_cause_name": None if self.cause is None else self.cause.name,
            "hangup_source": None if self.cause is None else self.cause.source,
            "call_status": None if self.cause is None else self.cause.status,
            "session_start": clock.epoch(self.answered_at) if self.answered_at else None,
        }
