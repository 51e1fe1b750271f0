"""The courier: posts each finished call's outcome (Step 3) to the customer.

Simple delivery: a few attempts with growing pauses, the TrackingGUID as idempotency key, and
an ``OutboxDelivered`` record on success. The outbox row itself was written atomically with the
call's end (``CallFinished``), so an undelivered outcome is never lost: it stays pending in the
store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import structlog
import trio

from orchestrator.errors import OrchestratorError
from orchestrator.ports import Customer, Recorder
from orchestrator.records import OutboxDelivered

logger = structlog.get_logger()

#: Pauses between attempts of one delivery, seconds.
DEFAULT_BACKOFF_S: tuple[float, ...] = (1.0, 4.0, 15.0)
#: Deliveries in flight at once.
DEFAULT_CONCURRENCY = 16
QUEUE_SIZE = 10_000


@dataclass(frozen=True, slots=True, eq=False)  # identity hash: the limiter's borrower
class Delivery:
    tracking_guid: str
    url: str
    fields: Mapping[str, str]


class Courier:
    """Implements the supervisor's ``OutcomeSink``; ``run`` is the delivering actor."""

    def __init__(
        self,
        customer: Customer,
        recorder: Recorder,
        *,
        backoff_s: Sequence[float] = DEFAULT_BACKOFF_S,
        concurrency: int = DEFAULT_CONCURRENCY,
        now: Callable[[], float] | None = None,
    ) -> None:
        self._customer = customer
        self._recorder = recorder
        self._backoff_s = tuple(backoff_s)
        self._limiter = trio.CapacityLimiter(concurrency)
        self._send, self._recv = trio.open_memory_channel[Delivery](QUEUE_SIZE)
        self._closed = trio.Event()
        self._now = now or time.time
        self.delivered = 0
        self.failed = 0

    async def send(self, tracking_guid: str, url: str, fields: Mapping[str, str]) -> None:
        await self._send.send(Delivery(tracking_guid, url, dict(fields)))

    async def close(self) -> None:
        """No more outcomes will come: queued ones get one attempt each, none waits for a
        retry (an undelivered outcome stays pending in the store's outbox)."""
        self._closed.set()
        await self._send.aclose()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            task_status.started()
            async for delivery in self._recv:
                await self._limiter.acquire_on_behalf_of(delivery)
                nursery.start_soon(self._deliver, delivery)

    async def _deliver(self, delivery: Delivery) -> None:
        try:
            with structlog.contextvars.bound_contextvars(tracking_guid=delivery.tracking_guid):
                await self._attempts(delivery)
        finally:
            self._limiter.release_on_behalf_of(delivery)

    async def _attempts(self, delivery: Delivery) -> None:
        pauses = (0.0, *self._backoff_s)
        error = ""
        for attempt, pause in enumerate(pauses, start=1):
            if pause:
                with trio.move_on_after(pause):
                    await self._closed.wait()
                if self._closed.is_set():
                    logger.warning("outcome.deferred", attempts=attempt - 1, error=error,
                                   reason="shutting down; left pending in the outbox")
                    return
            try:
                status = await self._customer.outcome_post(
                    delivery.url, delivery.fields, key=delivery.tracking_guid
                )
            except OrchestratorError as exc:
                error = str(exc)
            else:
                if 200 <= status < 300:
                    self.delivered += 1
                    logger.info("outcome.delivered", attempt=attempt, status=status,
                                agent1_id=delivery.fields.get("Agent1ID"))
                    await self._recorder.record(
                        OutboxDelivered(delivery.tracking_guid, self._now(), attempt)
                    )
                    return
                error = f"HTTP {status}"
            logger.warning("outcome.attempt_failed", attempt=attempt, error=error,
                           next_in_s=self._backoff_s[attempt - 1]
                           if attempt <= len(self._backoff_s) else None)
        self.failed += 1
        # The outbox row stays pending in the store: it is not lost, only late.
        logger.error("outcome.undelivered", attempts=len(pauses), error=error)
