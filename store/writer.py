"""The writer actor: drains a bounded queue of records and commits them in batches.

Why this shape (docs/architecture.md "Store"): no async SQL engine works under trio, and one
worker-thread call per write is slow (SQLite ≈ 3.5k writes/s against 70-90k/s batched). So the
actors only
*queue* records (``record`` awaits only when the queue is full: back-pressure), and one task
takes everything queued, up to ``batch_max`` records, and commits it in ONE transaction in a
worker thread, under its own ``CapacityLimiter(1)``. While a batch commits, the next one queues.

``flush()`` puts a marker in the same FIFO queue and waits until the writer has committed every
record queued before it. The batch itself is committed by a plain sync callable
(:func:`store.apply.commit_batch` in production), which never raises for a bad record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import structlog
import trio

from orchestrator.errors import StoreError
from orchestrator.records import Record

logger = structlog.get_logger()

#: Records a writer may hold queued before ``record`` waits (back-pressure on the actors).
QUEUE_SIZE = 10_000
#: Most records committed in one transaction.
BATCH_MAX = 500
#: On cancellation, how long the writer may keep committing what is queued (shielded).
DRAIN_SECONDS = 5.0


class _FlushMarker:
    """Queued by ``flush``; set once every record queued before it was committed."""

    __slots__ = ("committed", "done")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.committed = False


_Item = Record | _FlushMarker


class BatchWriter:
    """A bounded queue of records and the actor that commits it in batches.

    ``commit(records) -> failed`` runs in a worker thread, commits ``records`` (falling back to
    one by one on failure) and returns how many records could not be written.

    Counters, for tests and the status page: ``batches`` (commit calls, one transaction each
    unless a batch failed), ``records_written`` and ``records_failed``.
    """

    def __init__(
        self,
        commit: Callable[[Sequence[Record]], int],
        *,
        queue_size: int = QUEUE_SIZE,
        batch_max: int = BATCH_MAX,
        drain_seconds: float = DRAIN_SECONDS,
        limiter: trio.CapacityLimiter | None = None,
    ) -> None:
        if batch_max < 1:
            raise ValueError("batch_max must be at least 1")
        self._commit = commit
        self._send, self._receive = trio.open_memory_channel[_Item](queue_size)
        self._batch_max = batch_max
        self._drain_seconds = drain_seconds
        self._limiter = limiter or trio.CapacityLimiter(1)
        self._pending: list[_Item] = []
        self._started = False
        self.batches = 0
        self.records_written = 0
        self.records_failed = 0

    async def record(self, *records: Record) -> None:
        """Queue ``records`` in order; wait only while the queue is full.

        Error handling: raises ``StoreError`` if the writer has stopped (or ``close`` was called).
        """
        try:
            for record in records:
                await self._send.send(record)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise StoreError("the store writer is not running; record not queued") from exc

    async def flush(self) -> None:
        """Return once every record queued before this call has been committed (or logged as
        failed). Needs the writer running.

        Error handling: ``StoreError`` if the writer stopped before it got that far.
        """
        marker = _FlushMarker()
        try:
            await self._send.send(marker)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise StoreError("the store writer is not running; cannot flush") from exc
        await marker.done.wait()
        if not marker.committed:
            raise StoreError("the store writer stopped before committing everything queued")

    def close(self) -> None:
        """Stop taking records; a running writer commits what is queued and returns."""
        self._send.close()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The writer actor. Runs until cancelled, or until ``close`` once the queue is empty.

        Cancellation: the batch being committed finishes (a worker thread is not abandoned);
        then, shielded and bounded by ``drain_seconds``, the writer commits what it had taken and
        what is still queued, and returns. Records it could not commit in time are logged
        (``store.records_abandoned``) and pending ``flush`` calls raise ``StoreError``.
        """
        if self._started:
            raise RuntimeError("a store writer runs once")
        self._started = True
        task_status.started()
        logger.debug("store.writer_started")
        try:
            while True:
                try:
                    await self._take_batch()
                except trio.EndOfChannel:
                    break
                await self._commit_pending()
        finally:
            with trio.CancelScope(shield=True, deadline=trio.current_time() + self._drain_seconds):
                while True:
                    self._take_all_queued()
                    if not self._pending:
                        break
                    await self._commit_pending()
            # No checkpoint from here on: nothing can be queued between the last look at the
            # queue and closing it, so nothing is dropped without being logged.
            self._take_all_queued()
            self._abandon_pending()
            self._receive.close()
            logger.debug("store.writer_stopped", batches=self.batches)

    async def _take_batch(self) -> None:
        """Wait for the first item, then take whatever else is queued, up to a full batch."""
        self._pending.append(await self._receive.receive())
        records = sum(1 for item in self._pending if not isinstance(item, _FlushMarker))
        while records < self._batch_max:
            try:
                item = self._receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return
            self._pending.append(item)
            if not isinstance(item, _FlushMarker):
                records += 1

    def _take_all_queued(self) -> None:
        while True:
            try:
                self._pending.append(self._receive.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                return

    async def _commit_pending(self) -> None:
        """Commit ``_pending`` in batches of at most ``batch_max`` records, releasing the flush
        markers each batch passes. An item leaves ``_pending`` only once committed."""
        while self._pending:
            records: list[Record] = []
            taken = 0
            for item in self._pending:
                if not isinstance(item, _FlushMarker):
                    if len(records) == self._batch_max:
                        break
                    records.append(item)
                taken += 1
            if records:
                failed = await trio.to_thread.run_sync(self._commit, records, limiter=self._limiter)
                self.batches += 1
                self.records_failed += failed
                self.records_written += len(records) - failed
            done = self._pending[:taken]
            del self._pending[:taken]
            for item in done:
                if isinstance(item, _FlushMarker):
                    item.committed = True
                    item.done.set()

    def _abandon_pending(self) -> None:
        lost = [item for item in self._pending if not isinstance(item, _FlushMarker)]
        if lost:
            logger.error(
                "store.records_abandoned",
                records=len(lost),
                first=repr(lost[0]),
            )
        for item in self._pending:
            if isinstance(item, _FlushMarker):
                item.done.set()
        self._pending.clear()
