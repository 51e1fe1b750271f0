"""The database schema: SQLModel tables, and their SQLAlchemy Core ``Table`` objects.

The schema is versioned with Alembic (``store/migrations``): these classes are the schema at
the newest revision, and a test holds the migrations and these declarations to the same
columns and indexes. Change both together, in a new revision.

Times are epoch seconds (float). Enums are stored as their string values; the customer's
integer ids (AgentID, ReferralID) as BIGINT, since the API doc only says "Int". Indexes serve
the writer's lookups (primary keys) and the call-history queries to come: calls by
``started_at`` and ``lead_phone``, legs by ``tracking_guid`` and ``agent_id``, events by
``tracking_guid``, the outbox by ``next_attempt_at``, referrals by ``tracking_number`` (the
start-up load) and ``expires_at``.

The writer and the reads use SQLAlchemy Core on the ``*_TABLE`` objects for speed; the SQLModel
classes exist to declare the schema in one readable place.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import BigInteger, Table
from sqlmodel import Field, SQLModel


class AgentRow(SQLModel, table=True):
    """An agent as last seen in a routing plan, keyed by the customer's AgentID."""

    __tablename__ = "agents"

    agent_id: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    name: str = ""
    email: str = ""
    phone: str = ""
    nmls: str = ""
    five_min_apps: bool = False
    first_seen: float
    last_seen: float


class CallRow(SQLModel, table=True):
    """One inbound call; ``outcome``/``agent1_id``/``message_link`` are set when it finishes."""

    __tablename__ = "calls"

    tracking_guid: str = Field(primary_key=True)
    carrier_call_id: str = Field(index=True)
    campaign: str
    lead_phone: str = Field(index=True)
    dialled_number: str
    referral_id: int = Field(sa_type=BigInteger)
    plantype: str = ""
    state: str
    plan_fingerprint: str | None = None
    started_at: float = Field(index=True)
    updated_at: float
    finished_at: float | None = None
    outcome: str | None = None
    agent1_id: int | None = Field(default=None, sa_type=BigInteger)
    message_link: str | None = None
    # the cluster (docs/contract.md §11): who routes this call, and the plan it was given
    owner_id: str | None = Field(default=None, index=True)
    owner_epoch: int = 0
    plan: str | None = None  # JSON of the routing plan (orchestrator.plan_codec)


class LegRow(SQLModel, table=True):
    """One outbound call to one agent for one inbound call."""

    __tablename__ = "legs"

    leg_id: str = Field(primary_key=True)
    tracking_guid: str = Field(foreign_key="calls.tracking_guid", index=True)
    agent_id: int = Field(index=True, sa_type=BigInteger)
    phone: str
    tier: int
    row: int
    request_id: str | None = None
    carrier_call_id: str | None = None
    started_at: float
    answered_at: float | None = None
    ended_at: float | None = None
    result: str | None = None


class CallEventRow(SQLModel, table=True):
    """One line of a call's append-only event log; ``detail`` is compact JSON text."""

    __tablename__ = "call_events"

    id: int | None = Field(default=None, primary_key=True)
    tracking_guid: str = Field(index=True)
    event: str
    at: float
    detail: str = ""


class OutboxRow(SQLModel, table=True):
    """A Step 3 post waiting to be delivered; the TrackingGUID is its idempotency key."""

    __tablename__ = "outbox"

    tracking_guid: str = Field(primary_key=True)
    url: str
    body: str  # JSON object of the Step 3 form fields
    created_at: float
    attempts: int = 0
    next_attempt_at: float = Field(index=True)
    delivered_at: float | None = None
    dead: bool = False
    last_error: str = ""
    # shared delivery: the customer's host (the per-customer bound), and who holds the row now
    host: str = Field(default="", index=True)
    claimed_by: str | None = None
    claim_until: float | None = None


class ReferralRow(SQLModel, table=True):
    """A website visitor registered with ``POST /referrals`` (docs/contract.md §7). Rows are never
    deleted: the largest ``referral_id`` is where new ids count on from after a restart."""

    __tablename__ = "referrals"

    referral_id: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    campaign: str
    tracking_number: str = Field(index=True)
    first_name: str = ""
    last_name: str = ""
    full_name: str = ""
    city: str = ""
    state: str = ""
    zip: str = ""
    assigned_at: float
    expires_at: float = Field(index=True)


class OutboxHostRow(SQLModel, table=True):
    """One row per customer host: locked while an instance claims that host's posts, so the
    per-customer bound holds across the cluster (a short row lock, never across a post)."""

    __tablename__ = "outbox_hosts"

    host: str = Field(primary_key=True)


class InstanceRow(SQLModel, table=True):
    """One service instance (``orchestrator serve``) and its lease (docs/contract.md §11).

    ``epoch`` counts the instance's incarnations: a restart with the same id takes the row over
    only once the old lease has run out (or it stopped cleanly), and every renewal checks it.
    """

    __tablename__ = "instances"

    instance_id: str = Field(primary_key=True)
    epoch: int = 0
    internal_url: str = ""  # how the other instances reach it
    callback_url: str = ""  # its public base for the carrier's callbacks
    clustered: bool = False
    started_at: float
    heartbeat_at: float
    lease_until: float = Field(index=True)
    draining: bool = False
    stopped_at: float | None = None


class TrackingNumberRow(SQLModel, table=True):
    """One number of a campaign's referral pool and the referral it is handed to now."""

    __tablename__ = "tracking_numbers"

    number: str = Field(primary_key=True)
    campaign: str
    referral_id: int | None = Field(default=None, sa_type=BigInteger)
    assigned_at: float | None = None
    expires_at: float | None = None


class CounterRow(SQLModel, table=True):
    """Named counters (``referral_id``): incremented under the row's lock, so two instances
    never take the same value."""

    __tablename__ = "counters"

    name: str = Field(primary_key=True)
    value: int = Field(default=0, sa_type=BigInteger)


def _table(model: type[SQLModel]) -> Table:
    return cast("Table", model.__table__)  # type: ignore[attr-defined]


AGENTS = _table(AgentRow)
CALLS = _table(CallRow)
LEGS = _table(LegRow)
CALL_EVENTS = _table(CallEventRow)
OUTBOX = _table(OutboxRow)
REFERRALS = _table(ReferralRow)
OUTBOX_HOSTS = _table(OutboxHostRow)
INSTANCES = _table(InstanceRow)
TRACKING_NUMBERS = _table(TrackingNumberRow)
COUNTERS = _table(CounterRow)

#: Every table, parents before children (the order to count, create, or empty them in).
ALL_TABLES: tuple[Table, ...] = (
    AGENTS,
    CALLS,
    LEGS,
    CALL_EVENTS,
    OUTBOX,
    REFERRALS,
    OUTBOX_HOSTS,
    INSTANCES,
    TRACKING_NUMBERS,
    COUNTERS,
)
