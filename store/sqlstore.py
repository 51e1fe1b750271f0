"""``SqlStore``: the SQL store as the service sees it, and ``open_store(url)`` to make one.

It implements ``orchestrator.ports.Recorder`` (``record``) through its writer actor (``run``,
see :mod:`store.writer`), and offers the reads the service and tests need. Every database call
runs in a worker thread: writes under the writer's own ``CapacityLimiter(1)``, reads under a
separate limiter (``READ_THREADS``), so a slow read never delays a commit and vice versa.
(An in-memory SQLite database has a single connection; there, reads and writes share one limiter.)

Resource handling: ``open_store`` is sync and may run before ``trio.run``; it creates the engine
and any missing table. Start ``run`` in the service's root nursery; call ``close`` after it has
returned, to release the connections.

Error handling: database failures surface as ``orchestrator.errors.StoreError``. The writer
never raises for a bad record: it logs it and goes on (see :mod:`store.apply`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

import trio
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from orchestrator.cluster_results import CallClaim, PlanCommit
from orchestrator.errors import StoreError
from orchestrator.history_query import AgentQuery, CallQuery
from orchestrator.model import CallState, InboundCall, LeadDetails
from orchestrator.read_models import (
    AgentPage,
    AgentView,
    CallOwner,
    CallPage,
    CallRecord,
    CallView,
    InstanceView,
    OutboxView,
)
from orchestrator.records import Record as StoreRecord
from orchestrator.referral_records import Referral
from store import cluster, history, outbox_claims, reads, referral_pool
from store.apply import Statements, commit_batch
from store.engine import StoreEngine, create_store_engine
from store.writer import BATCH_MAX, DRAIN_SECONDS, QUEUE_SIZE, BatchWriter

#: Worker threads the reads may use at once (the writer has its own one).
READ_THREADS = 4
#: Worker threads of the cluster's small statements (claims, plans, leases, owner lookups):
#: their own, so they never queue behind a history read or a batch commit.
CLAIM_THREADS = 4

_T = TypeVar("_T")


class SqlStore:
    """The store over one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(
        self,
        db: StoreEngine,
        *,
        queue_size: int = QUEUE_SIZE,
        batch_max: int = BATCH_MAX,
        drain_seconds: float = DRAIN_SECONDS,
    ) -> None:
        self._db = db
        self._statements = Statements.for_dialect(db.dialect)
        write_limiter = trio.CapacityLimiter(1)
        self._read_limiter = (
            write_limiter if db.single_connection else trio.CapacityLimiter(READ_THREADS)
        )
        self._claim_limiter = (
            write_limiter if db.single_connection else trio.CapacityLimiter(CLAIM_THREADS)
        )
        self._writer = BatchWriter(
            self._commit,
            queue_size=queue_size,
            batch_max=batch_max,
            drain_seconds=drain_seconds,
            limiter=write_limiter,
        )

    @property
    def engine(self) -> Engine:
        return self._db.engine

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._db.dialect

    @property
    def batches(self) -> int:
        """Batches the writer has committed (one transaction each unless a batch failed)."""
        return self._writer.batches

    @property
    def records_written(self) -> int:
        return self._writer.records_written

    @property
    def records_failed(self) -> int:
        """Records the writer could not write (each was logged as ``store.record_failed``)."""
        return self._writer.records_failed

    # --- writes ------------------------------------------------------------------------------

    def _commit(self, records: Sequence[StoreRecord]) -> int:
        return commit_batch(self._db.engine, self._statements, records)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The writer actor (see :meth:`store.writer.BatchWriter.run`)."""
        await self._writer.run(task_status=task_status)

    async def record(self, *records: StoreRecord) -> None:
        """Queue ``records`` (call or referral records) for the writer; waits only while its
        queue is full."""
        await self._writer.record(*records)

    async def flush(self) -> None:
        """Return once everything queued before this call is committed (or logged as failed)."""
        await self._writer.flush()

    def close(self) -> None:
        """Stop taking records (a running writer commits what is queued, then returns) and
        release the database connections."""
        self._writer.close()
        self._db.engine.dispose()

    # --- reads -------------------------------------------------------------------------------

    async def _read(self, query: Callable[..., _T], *args: Any) -> _T:
        try:
            return await trio.to_thread.run_sync(
                partial(query, self._db.engine, *args), limiter=self._read_limiter
            )
        except SQLAlchemyError as exc:
            raise StoreError(f"store read failed: {exc}") from exc

    async def _claim(self, statement: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        try:
            return await trio.to_thread.run_sync(
                partial(statement, self._db.engine, *args, **kwargs), limiter=self._claim_limiter
            )
        except SQLAlchemyError as exc:
            raise StoreError(f"store statement failed: {exc}") from exc

    async def get_call(self, tracking_guid: str) -> CallView | None:
        """The call with its legs and events, or None if it was never recorded."""
        return await self._read(reads.get_call, tracking_guid)

    async def get_agent(self, agent_id: int) -> AgentView | None:
        return await self._read(reads.get_agent, agent_id)

    async def row_counts(self) -> dict[str, int]:
        """Rows in every table, by table name."""
        return await self._read(reads.row_counts)

    async def unfinished_calls(self) -> list[CallView]:
        """Calls a crash left unfinished (read once at start-up, before taking calls)."""
        return await self._read(reads.unfinished_calls)

    async def adopt_orphans(self, owner_id: str, owner_epoch: int, *, now: float) -> list[CallView]:
        """Start-up recovery's calls: the unfinished ones whose owner holds no live lease,
        now owned by ``owner_id``/``owner_epoch`` (``store.cluster.adopt_orphans``), oldest
        first, with their legs and events."""
        guids = await self._claim(cluster.adopt_orphans, owner_id, owner_epoch, now=now)
        calls = [call for guid in guids if (call := await self.get_call(guid)) is not None]
        return sorted(calls, key=lambda call: call.started_at)

    async def claim_outbox(
        self, owner_id: str, *, now: float, claim_s: float, per_host: int, limit: int
    ) -> list[OutboxView]:
        """Claim due Step 3 posts for ``owner_id`` (``store.outbox_claims.claim_due``)."""
        return await self._claim(
            outbox_claims.claim_due,
            owner_id,
            now=now,
            claim_s=claim_s,
            per_host=per_host,
            limit=limit,
        )

    async def outbox_pending(self, limit: int = 100) -> list[OutboxView]:
        """Step 3 posts neither delivered nor dead, soonest ``next_attempt_at`` first."""
        return await self._read(reads.outbox_pending, limit)

    async def get_referral(self, referral_id: int) -> Referral | None:
        return await self._read(reads.get_referral, referral_id)

    # --- the referral pool (see store.referral_pool) ------------------------------------------

    async def sync_referral_pool(self, pools: Mapping[str, Sequence[str]]) -> None:
        await self._claim(referral_pool.sync_pool, pools)

    async def assign_referral(
        self, campaign: str, visitor: LeadDetails, *, now: float, ttl_s: float
    ) -> tuple[Referral, int | None]:
        return await self._claim(referral_pool.assign, campaign, visitor, now=now, ttl_s=ttl_s)

    async def referral_on(self, number: str) -> Referral | None:
        return await self._read(referral_pool.referral_on, number)

    # --- the cluster (see store.cluster) ------------------------------------------------------

    async def register_instance(
        self,
        instance_id: str,
        *,
        internal_url: str,
        callback_url: str,
        clustered: bool,
        now: float,
        lease_s: float,
    ) -> int:
        """Take this incarnation's instance row; its epoch (``InstanceInUse`` if held)."""
        return await self._claim(
            cluster.register_instance,
            instance_id,
            internal_url=internal_url,
            callback_url=callback_url,
            clustered=clustered,
            now=now,
            lease_s=lease_s,
        )

    async def renew_lease(
        self, instance_id: str, epoch: int, *, now: float, lease_s: float, draining: bool = False
    ) -> bool:
        return await self._claim(
            cluster.renew_lease, instance_id, epoch, now=now, lease_s=lease_s, draining=draining
        )

    async def stop_instance(self, instance_id: str, epoch: int, *, now: float) -> None:
        await self._claim(cluster.stop_instance, instance_id, epoch, now=now)

    async def live_instances(self, *, now: float) -> list[InstanceView]:
        return await self._claim(cluster.live_instances, now=now)

    async def claim_call(
        self, call: InboundCall, *, owner_id: str, owner_epoch: int, state: CallState, now: float
    ) -> CallClaim:
        return await self._claim(
            cluster.claim_call,
            call,
            owner_id=owner_id,
            owner_epoch=owner_epoch,
            state=state,
            now=now,
        )

    async def commit_plan(
        self, tracking_guid: str, *, plan: str, fingerprint: str, now: float
    ) -> PlanCommit:
        return await self._claim(
            cluster.commit_plan, tracking_guid, plan=plan, fingerprint=fingerprint, now=now
        )

    async def give_up_plan(self, tracking_guid: str, *, state: CallState, now: float) -> str | None:
        return await self._claim(cluster.give_up_plan, tracking_guid, state=state, now=now)

    async def owner_of_call(self, tracking_guid: str) -> CallOwner | None:
        return await self._claim(cluster.owner_of_call, tracking_guid)

    async def owner_of_carrier_call(self, carrier_call_id: str) -> CallOwner | None:
        return await self._claim(cluster.owner_of_carrier_call, carrier_call_id)

    # --- call history (README "Operating it"; see store.history) ----------------------------------

    async def list_calls(self, query: CallQuery) -> CallPage:
        """One page of calls matching ``query``, newest first."""
        return await self._read(history.list_calls, query)

    async def call_record(self, tracking_guid: str) -> CallRecord | None:
        """The call, its legs (with agent names), events and Step 3 post; None if unknown."""
        return await self._read(history.call_record, tracking_guid)

    async def list_agents(self, query: AgentQuery) -> AgentPage:
        """One page of agents matching ``query``, newest first seen first."""
        return await self._read(history.list_agents, query)


def open_store(
    url: str,
    *,
    connect_args: Mapping[str, Any] | None = None,
    queue_size: int = QUEUE_SIZE,
    batch_max: int = BATCH_MAX,
    drain_seconds: float = DRAIN_SECONDS,
) -> SqlStore:
    """Open the store at ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``), creating
    the schema if missing. Sync: call it before or inside ``trio.run``.

    Error handling: ``StoreError`` if the URL is wrong or the database cannot be reached.
    """
    db = create_store_engine(url, connect_args=connect_args)
    return SqlStore(db, queue_size=queue_size, batch_max=batch_max, drain_seconds=drain_seconds)
