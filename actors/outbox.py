"""The outbox deliverer: every finished call's Step 3 post, delivered at least once, durably.

The outbox row is written in the same transaction that finishes the call (``CallFinished``),
so what this actor holds in memory is only a schedule: after a restart it reloads every pending
row from the store and carries on. Each delivery:

- POSTs the form with ``Idempotency-Key: <TrackingGUID>`` (and, when the campaign has a secret,
  an HMAC signature header — see :func:`signature_header`);
- on a 2xx records ``OutboxDelivered``; otherwise records ``OutboxAttempted`` with the error and
  when the next attempt is due, and waits: exponential back-off with jitter
  (:class:`RetryPolicy`), until ``give_up_after_s`` from the outcome's creation, when the row is
  marked dead (kept, visible to operators) and an error line is logged;
- runs under a per-customer (per URL host) concurrency bound, so one slow customer cannot hold
  up the others.

At shutdown no delivery waits for its next attempt: pending rows stay in the store.

**Shared** (a cluster, :class:`Sharing`): every instance delivers any call's post. Nothing is
scheduled in memory; a poller claims due rows from the store (``store.outbox_claims``: per host,
``FOR UPDATE SKIP LOCKED``, a claim expiry, the per-customer bound counted across the cluster),
makes one attempt per claim and records the result, which releases the row until its next
attempt is due — on whichever instance claims it then. A call finishing here wakes the poller,
which first waits for the row to be committed, so the post still goes out at once.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode, urlsplit

import structlog
import trio

from orchestrator.errors import OrchestratorError, StoreError
from orchestrator.ports import Customer, Recorder
from orchestrator.records import OutboxAttempted, OutboxDelivered

logger = structlog.get_logger()

SIGNATURE_HEADER = "X-Orchestrator-Signature"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to try again. Attempt ``n`` (1-based) failed → wait
    ``min(first_delay_s * multiplier**(n-1), max_delay_s)``, ± ``jitter`` of it."""

    first_delay_s: float = 2.0
    multiplier: float = 2.0
    max_delay_s: float = 900.0
    jitter: float = 0.2
    give_up_after_s: float = 86_400.0
    per_customer: int = 4  # deliveries in flight at once per customer host

    def delay_after(self, attempts: int, rng: random.Random) -> float:
        base = min(self.first_delay_s * self.multiplier ** (attempts - 1), self.max_delay_s)
        return base * (1.0 + self.jitter * (2.0 * rng.random() - 1.0))


@dataclass(frozen=True, slots=True, eq=False)  # identity hash: the limiter's borrower
class Delivery:
    tracking_guid: str
    url: str
    fields: Mapping[str, str]
    created_at: float
    attempts: int = 0
    next_attempt_at: float = 0.0


class PendingOutbox(Protocol):
    """The store's read side: outbox rows neither delivered nor dead."""

    async def outbox_pending(self, limit: int = 100) -> Sequence[PendingRow]: ...


class PendingRow(Protocol):
    @property
    def tracking_guid(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def fields(self) -> Mapping[str, str]: ...
    @property
    def created_at(self) -> float: ...
    @property
    def attempts(self) -> int: ...
    @property
    def next_attempt_at(self) -> float: ...


class SharedOutbox(Protocol):
    """The store's claim on due outbox rows (``store.sqlstore.SqlStore.claim_outbox``)."""

    async def claim_outbox(
        self, owner_id: str, *, now: float, claim_s: float, per_host: int, limit: int
    ) -> Sequence[PendingRow]: ...


@dataclass(frozen=True, slots=True)
class Sharing:
    """Deliver from the cluster's shared outbox (module docstring)."""

    outbox: SharedOutbox
    owner_id: str
    #: how long a claim holds a row: longer than one post may take (the customer timeout)
    claim_s: float = 30.0
    #: how often the poller looks for due rows when nothing wakes it
    poll_s: float = 1.0
    #: rows claimed at once
    batch: int = 64


def signature_header(secret: str, body: str, timestamp: int) -> str:
    """``t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`` — the body is the exact
    form-encoded request body. Customers recompute it and compare in constant time."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class OutboxDeliverer:
    """Implements the supervisor's ``OutcomeSink``; ``run`` is the delivering actor."""

    def __init__(
        self,
        customer: Customer,
        recorder: Recorder,
        *,
        pending: PendingOutbox | None = None,
        policy: RetryPolicy | None = None,
        secrets: Mapping[str, str] | None = None,
        now: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        shared: Sharing | None = None,
    ) -> None:
        self._customer = customer
        self._shared = shared
        self._wake = trio.Event()
        self._recorder = recorder
        self._pending = pending
        self.policy = policy or RetryPolicy()
        self._secrets = dict(secrets or {})  # outcome_post_url -> HMAC secret
        self._now = now
        self._rng = rng or random.Random()
        self._limiters: dict[str, trio.CapacityLimiter] = {}
        self._nursery: trio.Nursery | None = None
        self._closed = trio.Event()
        self._backlog: list[Delivery] = []
        self.in_flight: set[str] = set()
        self.delivered = 0
        self.dead = 0

    # --- OutcomeSink -----------------------------------------------------------------------

    async def send(self, tracking_guid: str, url: str, fields: Mapping[str, str]) -> None:
        """A call just finished (its outbox row is queued in the same store batch)."""
        await trio.lowlevel.checkpoint()
        if self._shared is not None:
            self._wake.set()  # the poller claims it once it is committed
            return
        self._schedule(Delivery(tracking_guid, url, dict(fields), self._now()))

    async def close(self) -> None:
        """Stop: no delivery waits for a retry any more (pending rows stay in the store)."""
        await trio.lowlevel.checkpoint()
        self._closed.set()

    # --- the actor -------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for delivery in self._backlog:
                nursery.start_soon(self._deliver, delivery)
            self._backlog.clear()
            if self._shared is not None:
                nursery.start_soon(self._poll, self._shared)
            else:
                resumed = await self._resume()
                if resumed:
                    logger.info("outbox.resumed", pending=resumed)
            task_status.started()
            await self._closed.wait()
            # In-flight attempts finish (bounded by the customer client's timeout); waiting
            # ones return at once.
        self._nursery = None

    async def _resume(self) -> int:
        """Reload every pending row left by an earlier run (or a crash)."""
        if self._pending is None:
            return 0
        rows = await self._pending.outbox_pending(limit=1_000_000)
        for row in rows:
            if row.tracking_guid in self.in_flight:
                continue
            self._schedule(
                Delivery(
                    row.tracking_guid,
                    row.url,
                    dict(row.fields),
                    row.created_at,
                    row.attempts,
                    row.next_attempt_at,
                )
            )
        return len(rows)

    async def _poll(self, shared: Sharing) -> None:
        """Claim due rows of the shared outbox and deliver each once (module docstring)."""
        failing = False
        while not self._closed.is_set():
            if self._wake.is_set():
                self._wake = trio.Event()
                await self._recorder.flush()  # the rows of calls just finished are committed
            try:
                rows = await shared.outbox.claim_outbox(
                    shared.owner_id,
                    now=self._now(),
                    claim_s=shared.claim_s,
                    per_host=self.policy.per_customer,
                    limit=shared.batch,
                )
            except StoreError as exc:
                if not failing:
                    logger.error("outbox.claim_failed", error=str(exc))
                failing, rows = True, []
            else:
                if failing:
                    logger.warning("outbox.claim_recovered")
                failing = False
            assert self._nursery is not None
            for row in rows:
                self.in_flight.add(row.tracking_guid)
                delivery = Delivery(
                    row.tracking_guid,
                    row.url,
                    dict(row.fields),
                    row.created_at,
                    row.attempts,
                    row.next_attempt_at,
                )
                self._nursery.start_soon(self._deliver_claimed, delivery)
            if len(rows) >= shared.batch:
                continue  # more may be due
            with trio.move_on_after(shared.poll_s):
                async with trio.open_nursery() as waiting:
                    waiting.start_soon(_set_when, self._wake, waiting.cancel_scope)
                    waiting.start_soon(_set_when, self._closed, waiting.cancel_scope)

    async def _deliver_claimed(self, delivery: Delivery) -> None:
        """One attempt at a claimed row; a failure releases it until its next attempt."""
        with structlog.contextvars.bound_contextvars(tracking_guid=delivery.tracking_guid):
            try:
                attempts = delivery.attempts + 1
                async with self._limiter(delivery.url):
                    error = await self._post(delivery, attempts)
                if error is not None:
                    await self._failed(delivery, attempts, error)
            finally:
                self.in_flight.discard(delivery.tracking_guid)

    def _schedule(self, delivery: Delivery) -> None:
        if delivery.tracking_guid in self.in_flight:
            return  # already scheduled (a resumed row and a fresh send): one delivery
        self.in_flight.add(delivery.tracking_guid)
        if self._nursery is None:
            self._backlog.append(delivery)
            return
        try:
            self._nursery.start_soon(self._deliver, delivery)
        except RuntimeError:  # the deliverer is being torn down (cancelled from outside)
            self.in_flight.discard(delivery.tracking_guid)
            logger.warning(
                "outcome.deferred",
                tracking_guid=delivery.tracking_guid,
                reason="shutting down; left pending in the outbox",
            )

    async def _deliver(self, delivery: Delivery) -> None:
        with structlog.contextvars.bound_contextvars(tracking_guid=delivery.tracking_guid):
            try:
                await self._attempts(delivery)
            finally:
                self.in_flight.discard(delivery.tracking_guid)

    def _limiter(self, url: str) -> trio.CapacityLimiter:
        host = urlsplit(url).netloc
        limiter = self._limiters.get(host)
        if limiter is None:
            limiter = self._limiters[host] = trio.CapacityLimiter(self.policy.per_customer)
        return limiter

    async def _attempts(self, delivery: Delivery) -> None:
        attempts = delivery.attempts
        due = delivery.next_attempt_at
        while True:
            wait = due - self._now()
            if wait > 0:
                with trio.move_on_after(wait):
                    await self._closed.wait()
                if self._closed.is_set():
                    return  # shutting down: the row stays pending in the store
            attempts += 1
            async with self._limiter(delivery.url):
                error = await self._post(delivery, attempts)
            if error is None:
                return
            next_due = await self._failed(delivery, attempts, error)
            if next_due is None:
                return
            due = next_due

    async def _failed(self, delivery: Delivery, attempts: int, error: str) -> float | None:
        """Record a failed attempt: when the next one is due, or None when the post is dead
        (``give_up_after_s`` from the outcome's creation would pass before it)."""
        now = self._now()
        delay = self.policy.delay_after(attempts, self._rng)
        if now + delay > delivery.created_at + self.policy.give_up_after_s:
            self.dead += 1
            logger.error(
                "outcome.dead",
                attempts=attempts,
                error=error,
                gave_up_after_s=round(now - delivery.created_at, 1),
            )
            await self._recorder.record(
                OutboxDelivered(delivery.tracking_guid, now, attempts, dead=True, last_error=error)
            )
            return None
        logger.warning(
            "outcome.attempt_failed", attempt=attempts, error=error, retry_in_s=round(delay, 3)
        )
        await self._recorder.record(
            OutboxAttempted(delivery.tracking_guid, now, attempts, now + delay, error)
        )
        return now + delay

    async def _post(self, delivery: Delivery, attempt: int) -> str | None:
        """One attempt; ``None`` on success, else the error."""
        headers = {}
        secret = self._secrets.get(delivery.url)
        if secret:
            body = urlencode(dict(delivery.fields))
            headers[SIGNATURE_HEADER] = signature_header(secret, body, int(self._now()))
        try:
            status = await self._customer.outcome_post(
                delivery.url, delivery.fields, key=delivery.tracking_guid, headers=headers
            )
        except OrchestratorError as exc:
            return str(exc)
        if not 200 <= status < 300:
            return f"HTTP {status}"
        self.delivered += 1
        logger.info(
            "outcome.delivered",
            attempt=attempt,
            status=status,
            agent1_id=delivery.fields.get("Agent1ID"),
        )
        await self._recorder.record(OutboxDelivered(delivery.tracking_guid, self._now(), attempt))
        return None


async def _set_when(event: trio.Event, scope: trio.CancelScope) -> None:
    """Cancel ``scope`` once ``event`` is set (wait for the first of several events)."""
    await event.wait()
    scope.cancel()
