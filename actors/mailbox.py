"""A call's mailbox: carrier events in arrival order, some with a slot for the answer.

Webhook handlers post into it and, for events the carrier needs an answer to, wait on the
:class:`ReplySlot` with a short deadline; the call's single dispatcher task reads it in order.
"""

from __future__ import annotations

import trio

from orchestrator.messages import CarrierEvent, Decision, Release

#: Events buffered per call before a poster waits. Carrier callbacks per call are few and
#: bursty (a tier of legs ringing/answering at once); 64 absorbs any tier we accept.
MAILBOX_SIZE = 64


class ReplySlot:
    """Holds the one answer to an event; the first ``put`` wins, later ones are ignored.

    A waiter that gives up (its deadline passed, or its request was cancelled) marks the slot
    ``abandoned``: the carrier has then been answered with a release, so the call must not
    act on that event as if the agent could still be connected.
    """

    __slots__ = ("_done", "abandoned", "value")

    def __init__(self) -> None:
        self._done = trio.Event()
        self.value: Decision | None = None
        self.abandoned = False

    def put(self, decision: Decision) -> None:
        if not self._done.is_set():
            self.value = decision
            self._done.set()

    async def get(self, timeout_s: float) -> Decision:
        """The decision, or :class:`Release` if none came within ``timeout_s`` (never leave an
        agent ringing or unconnected because we were slow)."""
        try:
            with trio.move_on_after(timeout_s):
                await self._done.wait()
        except BaseException:
            # Cancelled from outside (the carrier hung up on the request): whatever was
            # decided will not reach the carrier.
            self.abandoned = True
            raise
        if self.value is None:
            self.abandoned = True
            return Release()
        return self.value


Envelope = tuple[CarrierEvent, ReplySlot | None]


def open_mailbox() -> tuple[trio.MemorySendChannel[Envelope], trio.MemoryReceiveChannel[Envelope]]:
    return trio.open_memory_channel[Envelope](MAILBOX_SIZE)
