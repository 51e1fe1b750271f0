"""The simulator's record of what happened: typed events, a bounded log, and waiting on it.

Every event is also logged as a structlog line ``sim.<kind>`` (``sim.call.answered``,
``sim.webhook.sent`` ...). Tests and the control API read the log with
:meth:`EventLog.events`, per phone number with :meth:`EventLog.for_number`, and wait for a
condition with :meth:`EventLog.wait_for`.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

import structlog
import trio

from simulator.scripts import number_key

__all__ = ["EventKind", "EventLog", "SimEvent"]

logger = structlog.get_logger()

Value = str | int | float | bool | None


class EventKind(StrEnum):
    CALL_QUEUED = "call.queued"
    CALL_PLACED = "call.placed"  # outbound request dequeued and dialled; inbound call arrived
    CALL_RINGING = "call.ringing"
    CALL_ANSWERED = "call.answered"
    CALL_TRANSFERRED = "call.transferred"
    CALL_ENDED = "call.ended"
    STEP_STARTED = "step.started"  # an XML element began executing
    DIGITS_PRESSED = "digits.pressed"
    DOCUMENT_FAILED = "document.failed"  # fetch error or invalid XML ended the call
    CONFERENCE_JOINED = "conference.joined"
    CONFERENCE_STARTED = "conference.started"
    CONFERENCE_LEFT = "conference.left"
    CONFERENCE_ENDED = "conference.ended"
    RECORDING_FINISHED = "recording.finished"
    DIAL_LEG = "dial.leg"  # one <Dial> B leg's outcome
    WEBHOOK_SENT = "webhook.sent"
    WEBHOOK_FAILED = "webhook.failed"
    API_REQUEST = "api.request"


# logged at debug level: several per call
_CHATTY = frozenset(
    {
        EventKind.STEP_STARTED,
        EventKind.WEBHOOK_SENT,
        EventKind.API_REQUEST,
        EventKind.DIGITS_PRESSED,
    }
)


@dataclass(frozen=True, slots=True)
class SimEvent:
    """One thing that happened. ``at`` is simulated seconds since the simulator started."""

    seq: int
    at: float
    kind: EventKind
    call_uuid: str = ""
    number: str = ""  # the phone number of the simulated party, when there is one
    data: dict[str, Value] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "at": round(self.at, 3),
            "kind": str(self.kind),
            "call_uuid": self.call_uuid,
            "number": self.number,
            "data": self.data,
        }


class EventLog:
    """A bounded, append-only event log with change notification.

    Resource handling: keeps the last ``max_events`` events (older ones are dropped, the
    per-number index too); ``seq`` keeps counting.
    """

    def __init__(self, clock: Callable[[], float], max_events: int = 200_000) -> None:
        self._clock = clock
        self._events: deque[SimEvent] = deque(maxlen=max_events)
        self._seq = 0
        self._counts: Counter[EventKind] = Counter()
        self._changed = trio.Event()

    def add(
        self, kind: EventKind, *, call_uuid: str = "", number: str = "", **data: Value
    ) -> SimEvent:
        self._seq += 1
        event = SimEvent(self._seq, self._clock(), kind, call_uuid, number, dict(data))
        self._events.append(event)
        self._counts[kind] += 1
        log = logger.debug if kind in _CHATTY else logger.info
        log(f"sim.{kind}", call_uuid=call_uuid or None, number=number or None, **data)
        self._changed.set()
        self._changed = trio.Event()
        return event

    def count(self, kind: EventKind) -> int:
        """How many events of ``kind`` were ever added (dropped ones included)."""
        return self._counts[kind]

    @property
    def last_seq(self) -> int:
        return self._seq

    def __iter__(self) -> Iterator[SimEvent]:
        return iter(tuple(self._events))

    def events(
        self,
        kind: EventKind | None = None,
        *,
        call_uuid: str | None = None,
        since: int = 0,
    ) -> list[SimEvent]:
        return [
            e
            for e in self._events
            if e.seq > since
            and (kind is None or e.kind == kind)
            and (call_uuid is None or e.call_uuid == call_uuid)
        ]

    def for_number(self, number: str) -> list[SimEvent]:
        key = number_key(number)
        return [e for e in self._events if e.number and number_key(e.number) == key]

    def clear(self) -> None:
        self._events.clear()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` is true, re-checking after every new event.

        Cancellation: put a deadline around it (``trio.fail_after``); it waits forever otherwise.
        """
        while not predicate():
            await self._changed.wait()

    async def wait_changed(self) -> None:
        await self._changed.wait()
