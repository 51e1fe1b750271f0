"""The call history reads (``store.history`` through ``SqlStore``) against SQLite and
PostgreSQL (the fixtures of ``tests/test_store_contract.py``): every filter, keyset paging
(stable under concurrent inserts), agent names on legs, the Step 3 row, agents with counts.

Real threads and a real database: no autojump clock; waits are ``flush()``, never sleeps.
The seed data (:func:`seed_records`) is shared with ``tests/test_history_http.py``.
"""

from __future__ import annotations

import json

from orchestrator.model import (
    CallState,
    InboundCall,
    LegResult,
    Outcome,
    OutcomeKind,
    PlanAgent,
)
from orchestrator.records import (
    CallFinished,
    CallStarted,
    CallStateChanged,
    EventLogged,
    LegStarted,
    LegUpdated,
    PlanAccepted,
    Record,
)
from store import SqlStore
from store.history import CALLS_CURSOR, AgentQuery, CallQuery, decode_cursor
from store.views import CallSummary
from tests.test_store_contract import (  # noqa: F401  (fixtures: backend, store, running)
    _backend,
    _running,
    _store,
)

T0 = 1_764_400_000.0
OUTCOME_URL = "https://customer.example/outcome"
RECORDING = "https://media.example/rec/c1.mp3"
VOICEMAIL = "https://media.example/vm/c2.mp3"
ANN, BOB, CID = 101, 102, 103
LEAD_A, LEAD_B, LEAD_C, LEAD_D = "9495550001", "9495550002", "9495550003", "9495550004"


def guid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


C1, C2, C3, C4, C5, C6 = (guid(n) for n in range(1, 7))


def plan_agent(agent_id: int, name: str, phone: str, tier: int = 1, row: int = 1) -> PlanAgent:
    return PlanAgent(agent_id=agent_id, phone=phone, tier=tier, row=row, name=name,
                     email=f"{agent_id}@xyz.com", nmls=str(agent_id))


AGENTS = {
    ANN: plan_agent(ANN, "Ann Smith", "8885551111"),
    BOB: plan_agent(BOB, "Bob Jones", "8885552222", row=2),
    CID: plan_agent(CID, "=Cid", "8885553333", tier=2),
}


def started(g: str, campaign: str, lead: str, at: float) -> CallStarted:
    call = InboundCall(tracking_guid=g, carrier_call_id=f"lead-{g[-4:]}", campaign=campaign,
                       lead_phone=lead, dialled_number="8005550100", plantype="Purchase")
    return CallStarted(call, at)


def leg(g: str, n: int, agent_id: int, at: float, result: LegResult | None,
        answered: float | None = None) -> list[Record]:
    a = AGENTS[agent_id]
    leg_id = f"{g[-2:]}-leg-{n}"
    records: list[Record] = [LegStarted(g, leg_id, agent_id, a.phone, a.tier, a.row, at)]
    if result is not None:
        records.append(LegUpdated(g, leg_id, at + 5, request_id=f"req-{leg_id}",
                                  carrier_call_id=f"call-{leg_id}", answered_at=answered,
                                  ended_at=at + 5, result=result))
    return records


def finished(g: str, outcome: Outcome, at: float) -> CallFinished:
    return CallFinished(g, outcome, 0, OUTCOME_URL, at)


def seed_records() -> list[Record]:
    """Six calls (C6 starts at the same instant as C4) and three agents:

    ======  ========  =======  ====  ==========  ========================================
    call    campaign  lead     at    outcome     legs
    ======  ========  =======  ====  ==========  ========================================
    C1      acme      A        +0    connected   Ann accepted, Bob cancelled (tier 1)
    C2      acme      B        +100  voicemail   Ann no answer (tier 1), Cid declined (2)
    C3      beta      A        +200  hung_up     none
    C4      beta      C        +300  redirected  none
    C6      acme      C        +300  hung_up     Bob no answer
    C5      acme      D        +400  (dialling)  Bob ringing
    ======  ========  =======  ====  ==========  ========================================
    """
    both = (AGENTS[ANN], AGENTS[BOB])
    return [
        started(C1, "acme", LEAD_A, T0),
        PlanAccepted(C1, "fp1", both, T0 + 1),
        *leg(C1, 1, ANN, T0 + 2, LegResult.ACCEPTED, answered=T0 + 4),
        *leg(C1, 2, BOB, T0 + 2, LegResult.CANCELLED),
        EventLogged(C1, "call.started", T0, json.dumps({"lead_phone": LEAD_A})),
        EventLogged(C1, "call.connected", T0 + 5, json.dumps({"agent_id": ANN, "tier": 1})),
        EventLogged(C1, "call.note", T0 + 6, "not json"),
        finished(C1, Outcome.connected(ANN, RECORDING), T0 + 60),
        started(C2, "acme", LEAD_B, T0 + 100),
        PlanAccepted(C2, "fp2", (AGENTS[ANN], AGENTS[CID]), T0 + 101),
        *leg(C2, 1, ANN, T0 + 102, LegResult.NO_ANSWER),
        *leg(C2, 2, CID, T0 + 110, LegResult.DECLINED, answered=T0 + 112),
        finished(C2, Outcome.voicemail(VOICEMAIL), T0 + 150),
        started(C3, "beta", LEAD_A, T0 + 200),
        finished(C3, Outcome.hung_up(), T0 + 210),
        started(C4, "beta", LEAD_C, T0 + 300),
        finished(C4, Outcome.redirected(), T0 + 305),
        started(C6, "acme", LEAD_C, T0 + 300),
        PlanAccepted(C6, "fp6", (AGENTS[BOB],), T0 + 301),
        *leg(C6, 1, BOB, T0 + 302, LegResult.NO_ANSWER),
        finished(C6, Outcome.hung_up(), T0 + 330),
        started(C5, "acme", LEAD_D, T0 + 400),
        PlanAccepted(C5, "fp5", (AGENTS[BOB],), T0 + 401),
        CallStateChanged(C5, CallState.DIALLING, T0 + 401),
        *leg(C5, 1, BOB, T0 + 402, None),
    ]


#: Newest first; C6 before C4 at the same instant (tracking_guid descending).
ALL_NEWEST_FIRST = [C5, C6, C4, C3, C2, C1]


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
            tracking_guid=C1, campaign="acme", lead_phone=LEAD_A, dialled_number="8005550100",
            referral_id=0, plantype="Purchase", state=CallState.FINISHED, started_at=T0,
            finished_at=T0 + 60, outcome=OutcomeKind.CONNECTED, agent1_id=ANN,
            agent_name="Ann Smith", message_link=RECORDING, legs=2, tiers=1,
        )
        assert (calls[C2].legs, calls[C2].tiers, calls[C2].agent1_id, calls[C2].agent_name) == (
            2, 2, 0, "")
        assert (calls[C3].legs, calls[C3].agent1_id, calls[C3].agent_name) == (0, 999999, "")
        assert (calls[C5].state, calls[C5].outcome, calls[C5].finished_at) == (
            CallState.DIALLING, None, None)

    async def test_each_filter(self, running: SqlStore) -> None:
        store = await seeded(running)
        assert await guids(store, since=T0 + 200) == [C5, C6, C4, C3]
        assert await guids(store, until=T0 + 200) == [C2, C1]
        assert await guids(store, since=T0 + 100, until=T0 + 300.5) == [C6, C4, C3, C2]
        assert await guids(store, campaigns=("beta",)) == [C4, C3]
        assert await guids(store, campaigns=("beta", "nope")) == [C4, C3]
        assert await guids(store, outcomes=(OutcomeKind.HUNG_UP,)) == [C6, C3]
        assert await guids(store, outcomes=(OutcomeKind.CONNECTED, OutcomeKind.VOICEMAIL)) == [
            C2, C1]
        assert await guids(store, outcomes=(OutcomeKind.REDIRECTED,)) == [C4]
        assert await guids(store, phone=LEAD_A) == [C3, C1]
        assert await guids(store, agent_id=ANN) == [C2, C1]
        assert await guids(store, agent_id=BOB) == [C5, C6, C1]
        assert await guids(store, agent_id=999) == []

    async def test_filters_combine(self, running: SqlStore) -> None:
        """All filters must hold at once."""
        store = await seeded(running)
        assert await guids(store, agent_id=BOB, campaigns=("acme",),
                           outcomes=(OutcomeKind.HUNG_UP,), since=T0 + 1) == [C6]
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
        await store.record(started(guid(90), "acme", LEAD_A, T0 + 500),
                           started(guid(91), "beta", LEAD_B, T0 + 600))
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
            (ANN, LegResult.ACCEPTED), (BOB, LegResult.CANCELLED)]
        assert dict(record.agent_names) == {ANN: "Ann Smith", BOB: "Bob Jones"}
        assert [e.event for e in record.call.events] == [
            "call.started", "call.connected", "call.note"]
        assert record.outbox is not None
        assert dict(record.outbox.fields) == {"ReferralID": "0", "TrackingGUID": C1,
                                              "Agent1ID": str(ANN), "MessageLink": RECORDING}
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
            T0 + 1, T0 + 401, "Bob Jones", "8885552222")

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
