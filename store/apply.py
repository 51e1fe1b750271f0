"""The SQL of the writer: Core statements per dialect, and committing a batch (sync; runs in a
worker thread).

A batch is first planned (:func:`store.batchplan.plan_batch`: one parameter list per stage),
then each stage is one ``executemany`` in one transaction. What each record does:

- ``CallStarted``: insert the call (state ``initial_post``); a second one for the same guid (a
  carrier retry) is ignored (on conflict do nothing).
- ``CallStateChanged``: set ``state``/``updated_at``, unless the call has already finished.
- ``PlanAccepted``: set ``plan_fingerprint``; upsert the plan's agents by AgentID (fields and
  ``last_seen`` overwritten, ``first_seen`` kept).
- ``LegStarted``: insert the leg. ``LegUpdated``: update only its non-None fields.
- ``EventLogged``: append to ``call_events``.
- ``CallFinished``: finish the call (the first finish wins) and insert its outbox row with the
  Step 3 form fields. Both belong to the one record, so they commit or fail together.
- ``OutboxAttempted``: note a failed attempt (``attempts``, ``next_attempt_at``, ``last_error``)
  on a row still pending.
- ``OutboxDelivered``: mark the row delivered (``delivered_at``) or dead (``last_error``).

Error handling (:func:`commit_batch`): a batch is one transaction. If it fails, the error is
logged as ``store.batch_failed`` and every record is retried in its own transaction, so one bad
record loses only itself (logged as ``store.record_failed`` with its ``repr``). A batch that
failed because the connection was lost (a database restart) is first retried once as a whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, Executable, and_, bindparam, update
from sqlalchemy import insert as generic_insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError

from orchestrator.model import CallState
from orchestrator.records import Record as StoreRecord
from store.batchplan import Params, plan_batch
from store.tables import AGENTS, CALL_EVENTS, CALLS, LEGS, OUTBOX

logger = structlog.get_logger()

#: Agent columns a newer plan overwrites (``first_seen`` is kept from the first plan).
_AGENT_UPDATED = ("name", "email", "phone", "nmls", "five_min_apps", "last_seen")
#: Longest error text put in a log line (SQLAlchemy messages can carry whole parameter lists).
_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class Statements:
    """The Core statements of one dialect, built once (SQLAlchemy caches their compiled form)."""

    call_insert: Executable
    call_state: Executable
    call_plan: Executable
    call_finish: Executable
    agent_upsert: Executable
    leg_insert: Executable
    event_insert: Executable
    outbox_insert: Executable
    outbox_attempted: Executable
    outbox_delivered: Executable
    outbox_dead: Executable

    @classmethod
    def for_dialect(cls, dialect: str) -> Statements:
        if dialect == "sqlite":
            insert: Callable[..., Any] = sqlite_insert
        elif dialect == "postgresql":
            insert = pg_insert
        else:
            raise ValueError(f"no statements for dialect {dialect!r}")
        agent = insert(AGENTS)
        guid = CALLS.c.tracking_guid == bindparam("b_guid")
        open_call = and_(guid, CALLS.c.finished_at.is_(None))
        outbox_row = OUTBOX.c.tracking_guid == bindparam("b_guid")
        return cls(
            call_insert=insert(CALLS).on_conflict_do_nothing(index_elements=["tracking_guid"]),
            call_state=update(CALLS)
            .where(open_call)
            .values(state=bindparam("b_state"), updated_at=bindparam("b_at")),
            call_plan=update(CALLS)
            .where(guid)
            .values(plan_fingerprint=bindparam("b_fingerprint"), updated_at=bindparam("b_at")),
            call_finish=update(CALLS)
            .where(open_call)
            .values(
                state=CallState.FINISHED.value,
                updated_at=bindparam("b_at"),
                finished_at=bindparam("b_at"),
                outcome=bindparam("b_outcome"),
                agent1_id=bindparam("b_agent1_id"),
                message_link=bindparam("b_message_link"),
            ),
            agent_upsert=agent.on_conflict_do_update(
                index_elements=["agent_id"],
                set_={name: agent.excluded[name] for name in _AGENT_UPDATED},
            ),
            leg_insert=generic_insert(LEGS),
            event_insert=generic_insert(CALL_EVENTS),
            outbox_insert=insert(OUTBOX).on_conflict_do_nothing(index_elements=["tracking_guid"]),
            outbox_attempted=update(OUTBOX)
            .where(and_(outbox_row, OUTBOX.c.delivered_at.is_(None), OUTBOX.c.dead.is_(False)))
            .values(  # the claim is released: any instance takes the row when it is due
                attempts=bindparam("b_attempts"),
                next_attempt_at=bindparam("b_next"),
                last_error=bindparam("b_error"),
                claimed_by=None,
                claim_until=None,
            ),
            outbox_delivered=update(OUTBOX)
            .where(outbox_row)
            .values(
                delivered_at=bindparam("b_at"),
                attempts=bindparam("b_attempts"),
                claim_until=None,
            ),
            outbox_dead=update(OUTBOX)
            .where(outbox_row)
            .values(dead=True, attempts=bindparam("b_attempts"), last_error=bindparam("b_error")),
        )


def _leg_update(columns: tuple[str, ...]) -> Executable:
    values: dict[str, Any] = {column: bindparam(f"b_{column}") for column in columns}
    return update(LEGS).where(LEGS.c.leg_id == bindparam("b_leg")).values(values)


#: One UPDATE per set of columns a LegUpdated may set (2^5 - 1 shapes at most), built lazily.
_LEG_UPDATES: dict[tuple[str, ...], Executable] = {}


def leg_update_statement(columns: tuple[str, ...]) -> Executable:
    statement = _LEG_UPDATES.get(columns)
    if statement is None:
        statement = _LEG_UPDATES.setdefault(columns, _leg_update(columns))
    return statement


def apply_records(conn: Connection, stmts: Statements, records: Iterable[StoreRecord]) -> None:
    """Write ``records`` on ``conn`` inside the caller's transaction, one executemany per
    stage of their :class:`~store.batchplan.BatchPlan`."""
    plan = plan_batch(records)
    steps: list[tuple[Executable, list[Params]]] = [
        (stmts.call_insert, plan.calls),
        (stmts.call_plan, plan.plans),
        (stmts.agent_upsert, plan.agents),
        (stmts.leg_insert, plan.legs),
        *((leg_update_statement(cols), rows) for cols, rows in plan.leg_updates.items()),
        (stmts.call_state, plan.states),
        (stmts.event_insert, plan.events),
        (stmts.call_finish, plan.finishes),
        (stmts.outbox_insert, plan.outbox),
        (stmts.outbox_attempted, plan.attempted),
        (stmts.outbox_delivered, plan.delivered),
        (stmts.outbox_dead, plan.dead),
    ]
    for statement, rows in steps:
        if rows:
            conn.execute(statement, rows)


def _error_text(exc: BaseException) -> str:
    text = str(exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc)
    return text[:_ERROR_CHARS]


def _lost_connection(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def commit_batch(engine: Engine, stmts: Statements, records: Sequence[StoreRecord]) -> int:
    """Commit ``records`` in one transaction; on failure, one by one. Return how many failed.

    Never raises for a database error or a bad record: failures are logged, counted, and the
    remaining records are still written.
    """
    try:
        try:
            with engine.begin() as conn:
                apply_records(conn, stmts, records)
            return 0
        except DBAPIError as exc:
            if not _lost_connection(exc):
                raise
            logger.warning("store.connection_lost", error=_error_text(exc), records=len(records))
            with engine.begin() as conn:
                apply_records(conn, stmts, records)
            return 0
    except Exception as exc:
        logger.error(
            "store.batch_failed",
            error=_error_text(exc),
            error_type=type(exc).__name__,
            records=len(records),
        )
        if len(records) == 1:
            _log_failed(records[0], exc)
            return 1
    failed = 0
    for record in records:
        try:
            with engine.begin() as conn:
                apply_records(conn, stmts, (record,))
        except Exception as record_exc:
            failed += 1
            _log_failed(record, record_exc)
    return failed


def _log_failed(record: StoreRecord, exc: BaseException) -> None:
    logger.error(
        "store.record_failed",
        record_kind=type(record).__name__,
        record=repr(record),
        error=_error_text(exc),
        error_type=type(exc).__name__,
    )
