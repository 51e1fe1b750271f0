"""The cluster's statements (sync; :class:`store.sqlstore.SqlStore` runs them in worker threads):
instances and their leases, who owns a call, and the plan of a call.

Each decision is one conditional statement, so PostgreSQL settles every race between
instances (docs/architecture.md "Cluster"); nothing here keeps state of its own:

- **registering** an instance inserts its row, or takes over the row of an earlier incarnation
  with the same id whose lease has run out (``epoch + 1``); a live holder keeps it;
- **renewing** the lease updates the row only for the epoch this incarnation holds, so a
  displaced instance learns it at once;
- **claiming a call** inserts its row with the owner — the TrackingGUID is derived from the
  carrier's CallUUID, so a carrier retry that reached another instance finds the row taken;
- **adopting orphans** (start-up recovery) moves to this instance only the unfinished calls
  whose owner incarnation holds no live lease — never a live instance's calls;
- **committing a plan** sets it only while the call has none and still waits for one; **giving
  up on the plan** (the plan timeout) marks the call only while it still has none: one of the
  two wins, never both.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, and_, exists, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from orchestrator.cluster_results import CallClaim, PlanCommit
from orchestrator.errors import InstanceInUse
from orchestrator.model import CallState, InboundCall
from orchestrator.read_models import CallOwner, InstanceView
from store.tables import CALLS, INSTANCES

#: The states in which a call still takes a Step 2 plan.
WAITING = (CallState.INITIAL_POST.value, CallState.WAITING_PLAN.value)


def _insert(engine: Engine) -> Any:
    return pg_insert if engine.dialect.name == "postgresql" else sqlite_insert


# --- instances ---------------------------------------------------------------------------------


def register_instance(
    engine: Engine,
    instance_id: str,
    *,
    internal_url: str,
    callback_url: str,
    clustered: bool,
    now: float,
    lease_s: float,
) -> int:
    """Take the instance row for this incarnation; return its epoch.

    Raises:
        InstanceInUse: a live instance (fresh lease, not stopped) holds this id.
    """
    values = {
        "instance_id": instance_id,
        "internal_url": internal_url,
        "callback_url": callback_url,
        "clustered": clustered,
        "started_at": now,
        "heartbeat_at": now,
        "lease_until": now + lease_s,
        "draining": False,
        "stopped_at": None,
    }
    stmt = _insert(engine)(INSTANCES).values(epoch=1, **values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["instance_id"],
        set_={"epoch": INSTANCES.c.epoch + 1, **values},
        where=or_(INSTANCES.c.lease_until < now, INSTANCES.c.stopped_at.is_not(None)),
    ).returning(INSTANCES.c.epoch)
    with engine.begin() as conn:
        epoch = conn.execute(stmt).scalar()
    if epoch is None:
        raise InstanceInUse(
            f"instance id {instance_id!r} is held by a live instance (its lease "
            "has not run out): give each instance its own cluster.instance_id"
        )
    return int(epoch)


def renew_lease(
    engine: Engine,
    instance_id: str,
    epoch: int,
    *,
    now: float,
    lease_s: float,
    draining: bool = False,
) -> bool:
    """Extend this incarnation's lease; False when another incarnation took the row."""
    stmt = (
        update(INSTANCES)
        .where(
            and_(
                INSTANCES.c.instance_id == instance_id,
                INSTANCES.c.epoch == epoch,
                INSTANCES.c.stopped_at.is_(None),
            )
        )
        .values(heartbeat_at=now, lease_until=now + lease_s, draining=draining)
    )
    with engine.begin() as conn:
        return conn.execute(stmt).rowcount == 1


def stop_instance(engine: Engine, instance_id: str, epoch: int, *, now: float) -> None:
    """A clean stop: the lease ends now (the id may be taken again at once)."""
    stmt = (
        update(INSTANCES)
        .where(and_(INSTANCES.c.instance_id == instance_id, INSTANCES.c.epoch == epoch))
        .values(stopped_at=now, lease_until=now, heartbeat_at=now)
    )
    with engine.begin() as conn:
        conn.execute(stmt)


def live_instances(engine: Engine, *, now: float) -> list[InstanceView]:
    """Every instance whose lease runs (not stopped), by id."""
    stmt = (
        select(INSTANCES)
        .where(and_(INSTANCES.c.lease_until >= now, INSTANCES.c.stopped_at.is_(None)))
        .order_by(INSTANCES.c.instance_id)
    )
    with engine.connect() as conn:
        return [
            InstanceView(
                instance_id=m["instance_id"],
                epoch=m["epoch"],
                internal_url=m["internal_url"],
                callback_url=m["callback_url"],
                clustered=m["clustered"],
                heartbeat_at=m["heartbeat_at"],
                lease_until=m["lease_until"],
                draining=m["draining"],
            )
            for m in (row._mapping for row in conn.execute(stmt))
        ]


# --- calls ---------------------------------------------------------------------------------------


def claim_call(
    engine: Engine,
    call: InboundCall,
    *,
    owner_id: str,
    owner_epoch: int,
    state: CallState,
    now: float,
) -> CallClaim:
    """Insert the call's row owned by ``owner_id``; if it exists, say who owns it."""
    row = {
        "tracking_guid": call.tracking_guid,
        "carrier_call_id": call.carrier_call_id,
        "campaign": call.campaign,
        "lead_phone": call.lead_phone,
        "dialled_number": call.dialled_number,
        "referral_id": call.details.referral_id,
        "plantype": call.plantype,
        "state": state.value,
        "started_at": now,
        "updated_at": now,
        "owner_id": owner_id,
        "owner_epoch": owner_epoch,
    }
    stmt = (
        _insert(engine)(CALLS)
        .values(**row)
        .on_conflict_do_nothing(index_elements=["tracking_guid"])
        .returning(CALLS.c.tracking_guid)
    )
    with engine.begin() as conn:
        if conn.execute(stmt).scalar() is not None:
            return CallClaim(claimed=True, owner_id=owner_id)
        owner = conn.execute(
            select(CALLS.c.owner_id).where(CALLS.c.tracking_guid == call.tracking_guid)
        ).scalar()
    return CallClaim(claimed=False, owner_id=owner)


def adopt_orphans(engine: Engine, owner_id: str, owner_epoch: int, *, now: float) -> list[str]:
    """Take every unfinished call whose owner incarnation (id and epoch) holds no live lease
    — a crashed or stopped instance, an earlier incarnation of this one, or a row from before
    ownership existed — for ``owner_id``/``owner_epoch``; return their TrackingGUIDs. One
    conditional statement: two instances starting at once never adopt the same call."""
    owner_live = exists().where(
        and_(
            INSTANCES.c.instance_id == CALLS.c.owner_id,
            INSTANCES.c.epoch == CALLS.c.owner_epoch,
            INSTANCES.c.lease_until >= now,
            INSTANCES.c.stopped_at.is_(None),
        )
    )
    stmt = (
        update(CALLS)
        .where(and_(CALLS.c.finished_at.is_(None), or_(CALLS.c.owner_id.is_(None), ~owner_live)))
        .values(owner_id=owner_id, owner_epoch=owner_epoch, updated_at=now)
        .returning(CALLS.c.tracking_guid)
    )
    with engine.begin() as conn:
        return list(conn.execute(stmt).scalars())


def commit_plan(
    engine: Engine, tracking_guid: str, *, plan: str, fingerprint: str, now: float
) -> PlanCommit:
    """Make ``plan`` the call's plan if it has none and still waits for one."""
    guid = CALLS.c.tracking_guid == tracking_guid
    stmt = (
        update(CALLS)
        .where(
            and_(
                guid,
                CALLS.c.plan.is_(None),
                CALLS.c.finished_at.is_(None),
                CALLS.c.state.in_(WAITING),
            )
        )
        .values(plan=plan, plan_fingerprint=fingerprint, updated_at=now)
    )
    with engine.begin() as conn:
        if conn.execute(stmt).rowcount == 1:
            return PlanCommit.COMMITTED
        found = conn.execute(select(CALLS.c.plan_fingerprint).where(guid)).first()
    if found is None:
        return PlanCommit.UNKNOWN
    return PlanCommit.IDENTICAL if found[0] == fingerprint else PlanCommit.CONFLICT


def give_up_plan(engine: Engine, tracking_guid: str, *, state: CallState, now: float) -> str | None:
    """The plan timeout: move the call to ``state`` if it still has no plan (returns None);
    if a plan was committed meanwhile, return it instead (the call routes it)."""
    guid = CALLS.c.tracking_guid == tracking_guid
    stmt = (
        update(CALLS)
        .where(and_(guid, CALLS.c.plan.is_(None)))
        .values(state=state.value, updated_at=now)
    )
    with engine.begin() as conn:
        if conn.execute(stmt).rowcount == 1:
            return None
        plan: str | None = conn.execute(select(CALLS.c.plan).where(guid)).scalar()
    return plan


def owner_of_call(engine: Engine, tracking_guid: str) -> CallOwner | None:
    return _owner(engine, CALLS.c.tracking_guid == tracking_guid)


def owner_of_carrier_call(engine: Engine, carrier_call_id: str) -> CallOwner | None:
    """The newest call of the lead's CallUUID (the lead's hangup URL carries no id of ours)."""
    return _owner(engine, CALLS.c.carrier_call_id == carrier_call_id)


def _owner(engine: Engine, where: Any) -> CallOwner | None:
    stmt = (
        select(
            CALLS.c.tracking_guid,
            CALLS.c.owner_id,
            CALLS.c.owner_epoch,
            CALLS.c.campaign,
            CALLS.c.finished_at,
        )
        .where(where)
        .order_by(CALLS.c.started_at.desc())
        .limit(1)
    )
    with engine.connect() as conn:
        row = conn.execute(stmt).first()
    if row is None:
        return None
    return CallOwner(
        row.tracking_guid,
        row.owner_id,
        row.owner_epoch,
        row.campaign,
        finished=row.finished_at is not None,
    )
