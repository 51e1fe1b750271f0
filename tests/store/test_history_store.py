"""The call history reads (``store.history`` through ``SqlStore``) against SQLite and
PostgreSQL (the fixtures of ``tests/test_store_contract.py``): every filter, keyset paging
(stable under concurrent inserts), agent names on legs, the Step 3 row, agents with counts.

Real threads and a real database: no autojump clock; waits are ``flush()``, never sleeps.
The seed data (:func:`seed_records`) is shared with ``tests/test_history_http.py``.
"""

from __future__ import annotations

from orchestrator.history_query import CALLS_CURSOR, AgentQuery, CallQuery, decode_cursor
from orchestrator.model import (
    CallState,
    LegResult,
    OutcomeKind,
)
from orchestrator.read_models import CallSummary
from store import SqlStore
from tests.support.history import (
    ALL_NEWEST_FIRST,
    ANN,
    BOB,
    C1,
    C2,
    C3,
    C4,
    C5,
    C6,
    CID,
    LEAD_A,
    LEAD_B,
    RECORDING,
    T0,
    guid,
    seed_records,
    started,
)
from tests.support.stores import (  # noqa: F401  (fixtures: backend, store, running)
    _backend,
    _running,
    _store,
)


async def seeded(store: SqlStore) -> SqlStore:
    await store.record(*seed_records())
    await store.flush()
    return store


async def guids(store: SqlStore, **query: object) -> list[str]:
    page = await store.list_calls(CallQuery(**query))  # type: ignore[arg-type]
    return [c.tracking_guid for c in page.calls]


class TestListCalls:
    """Filters, each alone and together; newest first."""

    async def test_everything_newest_first(self, running: SqlStore) -> None:
        store = await seeded(running)
        page = await store.list_calls(CallQuery())
        assert [c.tracking_guid for c in page.calls] == ALL_NEWEST_FIRST
        assert page.next_cursor is None

    async def test_summary_columns(self, running: SqlStore) -> None:
        """Counts of legs and tiers, and the winner's name for a connected call only."""
        store = await seeded(running)
        calls = {c.tracking_guid: c for c in (await store.list_calls(CallQuery())).calls}
        assert calls[C1] == CallSummary(
            tracking_guid=C1,
            campaign="acme",
            lead_phone=LEAD_A,
            dialled_number="8005550100",
            referral_id=0,
            plantype="Purchase",
            state=CallState.FINISHED,
            started_at=T0,
            finished_at=T0 + 60,
            outcome=OutcomeKind.CONNECTED,
            agent1_id=ANN,
            agent_name="Ann Smith",
            message_link=RECORDING,
            legs=2,
            tiers=1,
        )
        assert (calls[C2].legs, calls[C2].tiers, calls[C2].agent1_id, calls[C2].agent_name) == (
            2,
            2,
            0,
            "",
        )
        assert (calls[C3].legs, calls[C3].agent1_id, calls[C3].agent_name) == (0, 999999, "")
        assert (calls[C5].state, calls[C5].outcome, calls[C5].finished_at) == (
            CallState.DIALLING,
            None,
            None,
        )

    async def test_each_filter(self, running: SqlStore) -> None:
        store = await seeded(running)
        assert await guids(store, since=T0 + 200) == [C5, C6, C4, C3]
        assert await guids(store, until=T0 + 200) == [C2, C1]
        assert await guids(store, since=T0 + 100, until=T0 + 300.5) == [C6, C4, C3, C2]
        assert await guids(store, campaigns=("beta",)) == [C4, C3]
        assert await guids(store, campaigns=("beta", "nope")) == [C4, C3]
        assert await guids(store, outcomes=(OutcomeKind.HUNG_UP,)) == [C6, C3]
        assert await guids(store, outcomes=(OutcomeKind.CONNECTED, OutcomeKind.VOICEMAIL)) == [
            C2,
            C1,
        ]
        assert await guids(store, outcomes=(OutcomeKind.REDIRECTED,)) == [C4]
        assert await guids(store, phone=LEAD_A) == [C3, C1]
        assert await guids(store, agent_id=ANN) == [C2, C1]
        assert await guids(store, agent_id=BOB) == [C5, C6, C1]
        assert await guids(store, agent_id=999) == []

    async def test_filters_combine(self, running: SqlStore) -> None:
        """All filters must hold at once."""
        store = await seeded(running)
        assert await guids(
            store, agent_id=BOB, campaigns=("acme",), outcomes=(OutcomeKind.HUNG_UP,), since=T0 + 1
        ) == [C6]
        assert await guids(store, phone=LEAD_A, campaigns=("acme",)) == [C1]


class TestPaging:
    """Keyset pages: no row twice, none skipped, even while calls are inserted."""

    async def test_walk_every_page(self, running: SqlStore) -> None:
        """Pages of 2 give every call once, in order; the tie at +300 is split across pages
        by tracking_guid; the last page has no cursor."""
        store = await seeded(running)
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            page = await store.list_calls(CallQuery(limit=2, after=cursor))
            pages += 1
            seen += [c.tracking_guid for c in page.calls]
            if page.next_cursor is None:
                break
            at, key = decode_cursor(CALLS_CURSOR, page.next_cursor)
            cursor = (at, str(key))
        assert seen == ALL_NEWEST_FIRST
        assert pages == 3

    async def test_tie_split_exactly_at_the_cursor(self, running: SqlStore) -> None:
        """A page ending on C6 (at +300) continues with C4 (also +300)."""
        store = await seeded(running)
        first = await store.list_calls(CallQuery(limit=2))
        assert [c.tracking_guid for c in first.calls] == [C5, C6]
        assert await guids(store, after=(T0 + 300, C6)) == [C4, C3, C2, C1]

    async def test_stable_under_concurrent_inserts(self, running: SqlStore) -> None:
        """Calls started after the first page was read do not shift the next pages."""
        store = await seeded(running)
        first = await store.list_calls(CallQuery(limit=3))
        assert [c.tracking_guid for c in first.calls] == [C5, C6, C4]
        await store.record(
            started(guid(90), "acme", LEAD_A, T0 + 500), started(guid(91), "beta", LEAD_B, T0 + 600)
        )
        await store.flush()
        rest = await store.list_calls(CallQuery(limit=3, after=(T0 + 300, C4)))
        assert [c.tracking_guid for c in rest.calls] == [C3, C2, C1]
        assert rest.next_cursor is None
        assert (await guids(store, limit=2)) == [guid(91), guid(90)]

    async def test_exact_page_has_no_next_cursor(self, running: SqlStore) -> None:
        """limit equal to the number of matches: one page, no cursor."""
        store = await seeded(running)
        page = await store.list_calls(CallQuery(limit=2, campaigns=("beta",)))
        assert [c.tracking_guid for c in page.calls] == [C4, C3]
        assert page.next_cursor is None


class TestCallRecord:
    """One call: legs with names, events, Step 3 row."""

    async def test_connected_call(self, running: SqlStore) -> None:
        store = await seeded(running)
        record = await store.call_record(C1)
        assert record is not None
        assert record.call.tracking_guid == C1
        assert [(leg.agent_id, leg.result) for leg in record.call.legs] == [
            (ANN, LegResult.ACCEPTED),
            (BOB, LegResult.CANCELLED),
        ]
        assert dict(record.agent_names) == {ANN: "Ann Smith", BOB: "Bob Jones"}
        assert [e.event for e in record.call.events] == [
            "call.started",
            "call.connected",
            "call.note",
        ]
        assert record.outbox is not None
        assert dict(record.outbox.fields) == {
            "ReferralID": "0",
            "TrackingGUID": C1,
            "Agent1ID": str(ANN),
            "MessageLink": RECORDING,
        }
        assert (record.outbox.attempts, record.outbox.delivered_at) == (0, None)

    async def test_live_call_has_no_outbox_row(self, running: SqlStore) -> None:
        store = await seeded(running)
        record = await store.call_record(C5)
        assert record is not None
        assert record.outbox is None
        assert record.call.legs[0].result is None

    async def test_unknown(self, running: SqlStore) -> None:
        assert await (await seeded(running)).call_record(guid(77)) is None


class TestListAgents:
    """Agents with first/last seen and leg counts, newest first seen first."""

    async def test_all_agents(self, running: SqlStore) -> None:
        store = await seeded(running)
        page = await store.list_agents(AgentQuery())
        rows = [(a.agent.agent_id, a.legs, a.accepted) for a in page.agents]
        # Cid first seen at +101; Ann and Bob both at +1 (Bob first: agent_id descending)
        assert rows == [(CID, 1, 0), (BOB, 3, 0), (ANN, 2, 1)]
        bob = page.agents[1].agent
        assert (bob.first_seen, bob.last_seen, bob.name, bob.phone) == (
            T0 + 1,
            T0 + 401,
            "Bob Jones",
            "8885552222",
        )

    async def test_filters_and_paging(self, running: SqlStore) -> None:
        store = await seeded(running)

        async def ids(**query: object) -> list[int]:
            page = await store.list_agents(AgentQuery(**query))  # type: ignore[arg-type]
            return [a.agent.agent_id for a in page.agents]

        assert await ids(since=T0 + 300) == [BOB]  # last seen at or after
        assert await ids(until=T0 + 100) == [BOB, ANN]  # first seen before
        assert await ids(phone="8885551111") == [ANN]
        assert await ids(name="SMI") == [ANN]
        assert await ids(name="%") == []  # LIKE wildcards are literal
        assert await ids(agent_id=CID) == [CID]
        first = await store.list_agents(AgentQuery(limit=2))
        assert [a.agent.agent_id for a in first.agents] == [CID, BOB]
        assert first.next_cursor is not None
        assert await ids(limit=2, after=(T0 + 1, BOB)) == [ANN]
