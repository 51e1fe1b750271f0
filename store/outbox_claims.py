"""The shared Step 3 outbox of a cluster: any instance claims due posts and delivers them.

Sync statements; :class:`store.sqlstore.SqlStore` runs them in worker threads. A claim is one
short transaction per customer host (docs/architecture.md "Cluster"):

1. the host's row in ``outbox_hosts`` is locked (``SELECT ... FOR UPDATE``): the instances
   claiming that host's posts take turns, so the count of posts in flight for it is exact;
2. the posts in flight for the host (claimed, claim not expired, not delivered) are counted;
   ``per_host`` less that is how many more may go now — the per-customer bound holds across
   the cluster;
3. that many due, unclaimed posts are taken with ``FOR UPDATE SKIP LOCKED`` (a row another
   transaction holds is passed over, never waited on) and marked ``claimed_by``/``claim_until``.

The transaction ends there: no lock is held across the HTTP post. The attempt's result is
written by the store's writer (``OutboxAttempted`` releases the claim with the next attempt's
time; ``OutboxDelivered`` ends the row). An instance that dies holding a claim loses it when
``claim_until`` passes, and another instance posts again — at least once, with the same
``Idempotency-Key``. SQLite (one process) takes the same statements without the row locks.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from orchestrator.read_models import OutboxView
from store.reads import outbox_view
from store.tables import OUTBOX, OUTBOX_HOSTS

#: Hosts looked at in one claim round (each gets its own short transaction).
HOSTS_PER_ROUND = 64


def _due(now: float) -> Any:
    return and_(
        OUTBOX.c.delivered_at.is_(None),
        OUTBOX.c.dead.is_(False),
        OUTBOX.c.next_attempt_at <= now,
        or_(OUTBOX.c.claim_until.is_(None), OUTBOX.c.claim_until < now),
    )


def claim_due(
    engine: Engine,
    owner_id: str,
    *,
    now: float,
    claim_s: float,
    per_host: int,
    limit: int,
) -> list[OutboxView]:
    """Claim up to ``limit`` due posts for ``owner_id`` until ``now + claim_s``, at most
    ``per_host`` in flight per customer host across every instance; return them."""
    with engine.connect() as conn:
        hosts = list(
            conn.execute(
                select(OUTBOX.c.host).where(_due(now)).distinct().limit(HOSTS_PER_ROUND)
            ).scalars()
        )
    insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
    claimed: list[OutboxView] = []
    for host in hosts:
        if len(claimed) >= limit:
            break
        with engine.begin() as conn:
            conn.execute(insert(OUTBOX_HOSTS).values(host=host).on_conflict_do_nothing())
            conn.execute(
                select(OUTBOX_HOSTS.c.host).where(OUTBOX_HOSTS.c.host == host).with_for_update()
            )
            busy = conn.execute(
                select(func.count())
                .select_from(OUTBOX)
                .where(
                    and_(
                        OUTBOX.c.host == host,
                        OUTBOX.c.delivered_at.is_(None),
                        OUTBOX.c.dead.is_(False),
                        OUTBOX.c.claim_until >= now,
                    )
                )
            ).scalar_one()
            free = min(per_host - busy, limit - len(claimed))
            if free <= 0:
                continue
            rows = conn.execute(
                select(OUTBOX)
                .where(and_(OUTBOX.c.host == host, _due(now)))
                .order_by(OUTBOX.c.next_attempt_at, OUTBOX.c.tracking_guid)
                .limit(free)
                .with_for_update(skip_locked=True)
            ).all()
            if not rows:
                continue
            conn.execute(
                update(OUTBOX)
                .where(OUTBOX.c.tracking_guid.in_([row.tracking_guid for row in rows]))
                .values(claimed_by=owner_id, claim_until=now + claim_s)
            )
            claimed += [outbox_view(row) for row in rows]
    return claimed
