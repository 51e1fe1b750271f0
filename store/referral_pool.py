"""The referral pool in the database (docs/contract.md §7): shared by every instance.

Sync statements; :class:`store.sqlstore.SqlStore` runs them in worker threads. The policy is
the one :mod:`orchestrator.referrals` describes — a new referral takes the campaign's least
recently assigned *free* number, or, when every number is taken, the least recently assigned
one anyway (the referral that held it is superseded) — decided in the database, so two
instances registering visitors at the same moment never hand out one number twice:

- **assigning** is one transaction: the chosen ``tracking_numbers`` row is locked with
  ``FOR UPDATE SKIP LOCKED`` (a number another transaction is assigning is passed over; only
  when every row is locked does it wait for one), the ReferralID is the ``counters`` row
  incremented under its lock (``UPDATE ... RETURNING``: never the same id twice, never
  reused), and the referral's row is inserted — committed before the visitor gets an answer;
- **attributing** a call reads the number's current referral (one indexed join);
- **syncing the pool** at start upserts the configured numbers (a number moved to another
  campaign follows it) and carries a restarted pool's current referrals over from the
  referrals table.

SQLite (one process) runs the same statements; its write lock serialises the transactions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine, and_, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from orchestrator.errors import NoTrackingNumbers
from orchestrator.model import LeadDetails
from orchestrator.referral_records import Referral
from store.reads import referral_from_row
from store.tables import COUNTERS, REFERRALS, TRACKING_NUMBERS

COUNTER = "referral_id"


def _insert(engine: Engine) -> Any:
    return pg_insert if engine.dialect.name == "postgresql" else sqlite_insert


def sync_pool(engine: Engine, pools: Mapping[str, Sequence[str]]) -> None:
    """Make the ``tracking_numbers`` rows of the configured ``pools`` (campaign -> numbers)."""
    rows = [
        {"number": number, "campaign": campaign}
        for campaign, numbers in pools.items()
        for number in numbers
    ]
    insert = _insert(engine)
    with engine.begin() as conn:
        if rows:
            stmt = insert(TRACKING_NUMBERS).values(rows)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["number"], set_={"campaign": stmt.excluded.campaign}
                )
            )
        # a pool from before the table: its numbers' latest referrals (of the same campaign)
        latest = (
            select(func.max(REFERRALS.c.referral_id))
            .where(
                and_(
                    REFERRALS.c.tracking_number == TRACKING_NUMBERS.c.number,
                    REFERRALS.c.campaign == TRACKING_NUMBERS.c.campaign,
                )
            )
            .scalar_subquery()
        )
        conn.execute(
            update(TRACKING_NUMBERS)
            .where(TRACKING_NUMBERS.c.referral_id.is_(None))
            .values(referral_id=latest)
        )
        held = select(REFERRALS).where(REFERRALS.c.referral_id == TRACKING_NUMBERS.c.referral_id)
        conn.execute(
            update(TRACKING_NUMBERS)
            .where(TRACKING_NUMBERS.c.assigned_at.is_(None))
            .where(TRACKING_NUMBERS.c.referral_id.is_not(None))
            .values(
                assigned_at=held.with_only_columns(REFERRALS.c.assigned_at).scalar_subquery(),
                expires_at=held.with_only_columns(REFERRALS.c.expires_at).scalar_subquery(),
            )
        )
        conn.execute(
            insert(COUNTERS)
            .values(
                name=COUNTER,
                value=select(func.coalesce(func.max(REFERRALS.c.referral_id), 0)).scalar_subquery(),
            )
            .on_conflict_do_nothing(index_elements=["name"])
        )


def assign(
    engine: Engine, campaign: str, visitor: LeadDetails, *, now: float, ttl_s: float
) -> tuple[Referral, int | None]:
    """Register ``visitor`` on a number of ``campaign``'s pool: (the referral, the id of the
    live referral it superseded when the pool was exhausted, else None).

    Raises:
        NoTrackingNumbers: the campaign has no numbers in the pool.
    """
    numbers = TRACKING_NUMBERS.c
    live = and_(numbers.expires_at.is_not(None), numbers.expires_at > now)
    pool = select(numbers.number, numbers.referral_id, numbers.assigned_at, numbers.expires_at)
    pool = pool.where(numbers.campaign == campaign)
    by_age = (numbers.assigned_at.nulls_first(), numbers.number)
    next_id = (
        update(COUNTERS)
        .where(COUNTERS.c.name == COUNTER)
        .values(value=COUNTERS.c.value + 1)
        .returning(COUNTERS.c.value)
    )
    sqlite = engine.dialect.name == "sqlite"
    with engine.begin() as conn:
        # SQLite has no row locks: its transaction takes the database's write lock at its first
        # write, so the counter goes first there and every read below sees every commit
        referral_id = conn.execute(next_id).scalar_one() if sqlite else None
        # a free number: the lock re-checks "free" on the row as committed meanwhile, so a
        # number another instance has just assigned is passed over, like one it is assigning
        row = conn.execute(
            pool.where(~live).order_by(*by_age).limit(1).with_for_update(skip_locked=True)
        ).first()
        if row is None:
            # none free (or all being assigned right now): the whole pool, locked (waiting for
            # the others' transactions), then the policy's choice on what they committed
            rows = conn.execute(pool.order_by(*by_age).with_for_update()).all()
            if not rows:
                raise NoTrackingNumbers(f"campaign {campaign!r} has no tracking_numbers")
            row = min(
                rows,
                key=lambda r: (
                    r.expires_at is not None and r.expires_at > now,
                    -1.0 if r.assigned_at is None else r.assigned_at,
                    r.number,
                ),
            )
        if referral_id is None:  # PostgreSQL: the counter's row lock, held only to the commit
            referral_id = conn.execute(next_id).scalar_one()
        superseded = (
            row.referral_id if row.expires_at is not None and row.expires_at > now else None
        )
        referral = Referral(
            referral_id=int(referral_id),
            campaign=campaign,
            tracking_number=row.number,
            details=replace(visitor, referral_id=int(referral_id)),
            assigned_at=now,
            expires_at=now + ttl_s,
        )
        conn.execute(
            update(TRACKING_NUMBERS)
            .where(numbers.number == row.number)
            .values(referral_id=referral.referral_id, assigned_at=now, expires_at=now + ttl_s)
        )
        details = referral.details
        conn.execute(
            REFERRALS.insert().values(
                referral_id=referral.referral_id,
                campaign=campaign,
                tracking_number=referral.tracking_number,
                first_name=details.first_name,
                last_name=details.last_name,
                full_name=details.full_name,
                city=details.city,
                state=details.state,
                zip=details.zip,
                assigned_at=now,
                expires_at=referral.expires_at,
            )
        )
    return referral, superseded


def referral_on(engine: Engine, number: str) -> Referral | None:
    """The current referral of the tracking number ``number`` (live or not), or None."""
    query = select(REFERRALS).join(
        TRACKING_NUMBERS,
        and_(
            TRACKING_NUMBERS.c.referral_id == REFERRALS.c.referral_id,
            TRACKING_NUMBERS.c.number == number,
        ),
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else referral_from_row(row)
