"""Contract tests of the SQL store, run against SQLite (a tmp_path file) and PostgreSQL.

Each PostgreSQL test runs in its own schema (``search_path`` set through the connection
options) that is dropped afterwards. PostgreSQL comes from ``ORCH_TEST_PG_URL`` (default
``postgresql+psycopg://root@127.0.0.1:5432/test``); when it cannot be reached those tests are
skipped, unless ``ORCH_REQUIRE_PG=1`` (CI), where they fail.

These tests use real worker threads and a real database, so they never use the autojump clock;
they wait with ``flush()``, never with sleeps.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from structlog.testing import capture_logs

from orchestrator.errors import StoreError
from orchestrator.model import (
    CallState,
    LegResult,
    Outcome,
    OutcomeKind,
)
from orchestrator.records import (
    CallStateChanged,
    EventLogged,
    LegUpdated,
    OutboxAttempted,
    OutboxDelivered,
    PlanAccepted,
    Record,
)
from store import SqlStore, open_store
from store.batchplan import plan_batch
from tests.support.stores import (  # noqa: F401  (fixtures: backend, store, running)
    OUTCOME_URL,
    PG_URL,
    _backend,
    _running,
    _store,
    agent,
    call,
    finished,
    leg,
    started,
    write,
)

TABLES = {
    "agents",
    "calls",
    "legs",
    "call_events",
    "outbox",
    "referrals",
    "outbox_hosts",
    "instances",
    "tracking_numbers",
    "counters",
}
#: Rows a new database starts with: the referral id counter (store/migrations, 0002).
SEEDED = {"counters": 1}


# --- tests -------------------------------------------------------------------------------


class TestRoundTrip:
    """Every record kind is visible through get_call / get_agent / outbox_pending."""

    async def test_call_started(self, running: SqlStore) -> None:
        """A started call is stored with its fields, in state initial_post, nothing else yet."""
        await running.record(started(at=1000.5))
        await running.flush()
        view = await running.get_call("guid-1")
        assert view is not None
        assert (view.carrier_call_id, view.campaign, view.lead_phone, view.dialled_number) == (
            "uuid-guid-1",
            "purchase",
            "4155550100",
            "8005550199",
        )
        assert (view.referral_id, view.plantype) == (42, "purchase")
        assert view.state is CallState.INITIAL_POST
        assert (view.started_at, view.updated_at) == (1000.5, 1000.5)
        assert (view.finished_at, view.outcome, view.agent1_id, view.plan_fingerprint) == (
            None,
            None,
            None,
            None,
        )
        assert (view.legs, view.events) == ((), ())

    async def test_unknown_ids_read_as_none(self, running: SqlStore) -> None:
        """Reads of a guid or agent never recorded return None."""
        assert await running.get_call("nope") is None
        assert await running.get_agent(1) is None

    async def test_state_changes(self, running: SqlStore) -> None:
        """CallStateChanged sets the state and updated_at, not started_at."""
        await running.record(
            started(),
            CallStateChanged("guid-1", CallState.WAITING_PLAN, at=1001.0),
            CallStateChanged("guid-1", CallState.DIALLING, at=1002.0),
        )
        await running.flush()
        view = await running.get_call("guid-1")
        assert view is not None
        assert (view.state, view.started_at, view.updated_at) == (
            CallState.DIALLING,
            1000.0,
            1002.0,
        )

    async def test_plan_accepted(self, running: SqlStore) -> None:
        """PlanAccepted stores the plan fingerprint on the call and every agent of the plan."""
        agents = (
            agent(328290),
            agent(
                328999,
                name="Bob",
                phone="4155550122",
                tier=2,
                five_min_apps=False,
                email="",
                nmls="",
            ),
        )
        await running.record(started(), PlanAccepted("guid-1", "f" * 64, agents, at=1001.0))
        await running.flush()
        view = await running.get_call("guid-1")
        assert view is not None
        assert view.plan_fingerprint == "f" * 64
        ann = await running.get_agent(328290)
        bob = await running.get_agent(328999)
        assert ann is not None
        assert bob is not None
        assert (ann.name, ann.email, ann.phone, ann.nmls, ann.five_min_apps) == (
            "Ann Agent",
            "ann@example.com",
            "4155550111",
            "12345",
            True,
        )
        assert (bob.name, bob.phone, bob.five_min_apps) == ("Bob", "4155550122", False)
        assert (ann.first_seen, ann.last_seen) == (1001.0, 1001.0)

    async def test_legs_and_partial_updates(self, running: SqlStore) -> None:
        """LegUpdated sets only its non-None fields; legs come back in start order."""
        await running.record(
            started(),
            leg("guid-1", "leg-b", at=1003.0, agent_id=2),
            leg("guid-1", "leg-a", at=1002.0, agent_id=1),
            LegUpdated("guid-1", "leg-a", at=1002.1, request_id="req-a"),
            LegUpdated("guid-1", "leg-a", at=1004.0, carrier_call_id="call-a", answered_at=1004.0),
            LegUpdated("guid-1", "leg-a", at=1009.0, ended_at=1009.0, result=LegResult.ACCEPTED),
            LegUpdated("guid-1", "leg-b", at=1009.0, ended_at=1009.5, result=LegResult.CANCELLED),
        )
        await running.flush()
        view = await running.get_call("guid-1")
        assert view is not None
        assert [lg.leg_id for lg in view.legs] == ["leg-a", "leg-b"]
        a, b = view.legs
        assert (a.agent_id, a.phone, a.tier, a.row, a.started_at) == (1, "4155550111", 1, 1, 1002.0)
        assert (a.request_id, a.carrier_call_id, a.answered_at, a.ended_at, a.result) == (
            "req-a",
            "call-a",
            1004.0,
            1009.0,
            LegResult.ACCEPTED,
        )
        assert (b.request_id, b.answered_at, b.ended_at, b.result) == (
            None,
            None,
            1009.5,
            LegResult.CANCELLED,
        )

    async def test_events_in_append_order(self, running: SqlStore) -> None:
        """EventLogged rows come back in the order they were recorded, detail intact."""
        names = [f"step.{i}_done" for i in range(12)]
        await running.record(
            started(),
            *(
                EventLogged("guid-1", n, at=1000.0, detail=f'{{"i":{i}}}')
                for i, n in enumerate(names)
            ),
            EventLogged("guid-2", "other.happened", at=1000.0),
        )
        await running.flush()
        view = await running.get_call("guid-1")
        assert view is not None
        assert [e.event for e in view.events] == names
        assert view.events[3].detail == '{"i":3}'
        assert all(e.tracking_guid == "guid-1" for e in view.events)

    async def test_call_finished_and_outbox(self, running: SqlStore) -> None:
        """CallFinished finishes the call and queues its Step 3 post with the form fields."""
        await running.record(started(), finished(at=1100.0))
        await running.flush()
        view = await running.get_call("guid-1")
        assert view is not None
        assert (view.state, view.finished_at, view.outcome, view.agent1_id, view.message_link) == (
            CallState.FINISHED,
            1100.0,
            OutcomeKind.CONNECTED,
            328290,
            "https://rec.example/r1.mp3",
        )
        [post] = await running.outbox_pending(10)
        assert post.tracking_guid == "guid-1"
        assert post.url == OUTCOME_URL
        assert dict(post.fields) == {
            "ReferralID": "42",
            "TrackingGUID": "guid-1",
            "Agent1ID": "328290",
            "MessageLink": "https://rec.example/r1.mp3",
        }
        assert (post.attempts, post.created_at, post.next_attempt_at) == (0, 1100.0, 1100.0)
        assert (post.delivered_at, post.dead, post.last_error) == (None, False, "")

    async def test_outbox_delivered_and_dead(self, running: SqlStore) -> None:
        """A delivered or dead post leaves outbox_pending; the others stay, soonest first."""
        guids = ["g-a", "g-b", "g-c", "g-d"]
        await running.record(*(started(g) for g in guids))
        await running.record(*(finished(g, at=1200.0 - i) for i, g in enumerate(guids)))
        await running.record(
            OutboxDelivered("g-a", at=1300.0, attempts=1),
            OutboxDelivered("g-b", at=1300.0, attempts=7, dead=True, last_error="HTTP 500"),
        )
        await running.flush()
        pending = await running.outbox_pending(10)
        assert [p.tracking_guid for p in pending] == ["g-d", "g-c"]
        assert [p.tracking_guid for p in await running.outbox_pending(1)] == ["g-d"]
        counts = await running.row_counts()
        assert counts["outbox"] == 4

    async def test_outbox_attempts_are_noted_on_pending_rows_only(self, running: SqlStore) -> None:
        """A failed attempt sets attempts/next_attempt_at/last_error; a delivered row keeps
        its delivery even if an older attempt record comes in the same batch."""
        await running.record(started("g-a"), started("g-b"), finished("g-a"), finished("g-b"))
        await running.record(
            OutboxAttempted(
                "g-a", at=1200.0, attempts=2, next_attempt_at=1204.0, last_error="HTTP 500"
            ),
            OutboxAttempted(
                "g-b", at=1200.0, attempts=1, next_attempt_at=1202.0, last_error="HTTP 502"
            ),
            OutboxDelivered("g-b", at=1203.0, attempts=2),
        )
        await running.flush()
        (pending,) = await running.outbox_pending(10)
        assert (
            pending.tracking_guid,
            pending.attempts,
            pending.next_attempt_at,
            pending.last_error,
        ) == ("g-a", 2, 1204.0, "HTTP 500")

    async def test_unfinished_calls_are_the_ones_a_crash_left(self, running: SqlStore) -> None:
        """unfinished_calls: every call without a finish, oldest first, with its legs."""
        await running.record(
            started("g-old", at=900.0),
            started("g-new", at=950.0),
            started("g-done", at=800.0),
            leg("g-new", "l-1"),
            finished("g-done"),
        )
        await running.flush()
        calls = await running.unfinished_calls()
        assert [c.tracking_guid for c in calls] == ["g-old", "g-new"]
        assert [leg.leg_id for leg in calls[1].legs] == ["l-1"]

    async def test_state_change_after_finish_is_ignored(self, running: SqlStore) -> None:
        """A finished call stays finished: a late state change or second finish changes nothing."""
        await running.record(
            started(),
            finished(at=1100.0),
            CallStateChanged("guid-1", CallState.DIALLING, at=1101.0),
            finished(at=1102.0, outcome=Outcome.hung_up()),
        )
        await running.flush()
        view = await running.get_call("guid-1")
        assert view is not None
        assert (view.state, view.outcome, view.finished_at, view.updated_at) == (
            CallState.FINISHED,
            OutcomeKind.CONNECTED,
            1100.0,
            1100.0,
        )
        [post] = await running.outbox_pending(10)
        assert post.fields["Agent1ID"] == "328290"
        assert running.records_failed == 0

    async def test_one_batch_in_any_order_ends_like_queue_order(
        self, store: SqlStore, nursery: trio.Nursery
    ) -> None:
        """A whole call in one batch (applied stage by stage) ends as if applied in order."""
        await write(
            store,
            nursery,
            started(),
            CallStateChanged("guid-1", CallState.WAITING_PLAN, at=1001.0),
            PlanAccepted("guid-1", "e" * 64, (agent(1),), at=1002.0),
            CallStateChanged("guid-1", CallState.DIALLING, at=1003.0),
            leg("guid-1", "l1", at=1003.0, agent_id=1),
            LegUpdated("guid-1", "l1", at=1003.1, request_id="r1"),
            EventLogged("guid-1", "leg.started", at=1003.0),
            LegUpdated("guid-1", "l1", at=1005.0, answered_at=1005.0),
            LegUpdated("guid-1", "l1", at=1009.0, ended_at=1009.0, result=LegResult.NO_INPUT),
            CallStateChanged("guid-1", CallState.VOICEMAIL, at=1010.0),
            EventLogged("guid-1", "voicemail.started", at=1010.0),
            finished(at=1050.0, outcome=Outcome.voicemail("https://rec.example/vm.mp3")),
            CallStateChanged("guid-1", CallState.DIALLING, at=1051.0),  # late: ignored
        )
        assert (store.batches, store.records_failed) == (1, 0)
        view = await store.get_call("guid-1")
        assert view is not None
        assert (view.state, view.outcome, view.agent1_id, view.updated_at) == (
            CallState.FINISHED,
            OutcomeKind.VOICEMAIL,
            0,
            1050.0,
        )
        assert view.plan_fingerprint == "e" * 64
        [lg] = view.legs
        assert (lg.request_id, lg.answered_at, lg.ended_at, lg.result) == (
            "r1",
            1005.0,
            1009.0,
            LegResult.NO_INPUT,
        )
        assert [e.event for e in view.events] == ["leg.started", "voicemail.started"]


class TestBatchPlan:
    """plan_batch (pure) turns interleaved records into one parameter list per statement."""

    def test_coalesces_states_and_merges_leg_updates(self) -> None:
        """The last state per call wins; a leg's updates merge, later fields overriding."""
        plan = plan_batch(
            [
                CallStateChanged("a", CallState.WAITING_PLAN, at=1.0),
                CallStateChanged("b", CallState.DIALLING, at=2.0),
                CallStateChanged("a", CallState.DIALLING, at=3.0),
                LegUpdated("a", "l1", at=4.0, request_id="r1"),
                LegUpdated("a", "l1", at=5.0, answered_at=5.0, result=LegResult.DECLINED),
                LegUpdated("a", "l1", at=6.0, result=LegResult.ACCEPTED),
                LegUpdated("a", "l2", at=6.0),  # nothing to set
            ]
        )
        assert plan.states == [
            {"b_guid": "a", "b_state": "dialling", "b_at": 3.0},
            {"b_guid": "b", "b_state": "dialling", "b_at": 2.0},
        ]
        assert plan.leg_updates == {
            ("request_id", "answered_at", "result"): [
                {"b_leg": "l1", "b_request_id": "r1", "b_answered_at": 5.0, "b_result": "accepted"},
            ],
        }

    def test_first_of_duplicates_wins(self) -> None:
        """Repeated CallStarted / CallFinished keep the first; agents keep their first_seen."""
        plan = plan_batch(
            [
                started(at=1.0),
                started(at=2.0),
                PlanAccepted("guid-1", "x", (agent(5, name="A"),), at=3.0),
                PlanAccepted("guid-2", "y", (agent(5, name="B"),), at=4.0),
                finished(at=5.0),
                finished(at=6.0, outcome=Outcome.hung_up()),
            ]
        )
        assert [c["started_at"] for c in plan.calls] == [1.0]
        assert [(a["name"], a["first_seen"], a["last_seen"]) for a in plan.agents] == [
            ("B", 3.0, 4.0)
        ]
        assert [(f["b_at"], f["b_agent1_id"]) for f in plan.finishes] == [(5.0, 328290)]
        assert [o["tracking_guid"] for o in plan.outbox] == ["guid-1"]

    def test_rejects_unknown_records(self) -> None:
        """Anything that is not a store record is a TypeError (a programming error)."""
        with pytest.raises(TypeError):
            plan_batch(["not a record"])  # type: ignore[list-item]


class TestAgentUpsert:
    """Agents are upserted by AgentID."""

    async def test_second_plan_updates_fields_keeps_first_seen(self, running: SqlStore) -> None:
        """A later plan overwrites an agent's fields and last_seen; first_seen is kept."""
        await running.record(
            started("g1"),
            PlanAccepted("g1", "a" * 64, (agent(7),), at=1000.0),
        )
        await running.flush()
        changed = agent(
            7,
            name="Ann B. Agent",
            email="annb@example.com",
            phone="4155550999",
            nmls="999",
            five_min_apps=False,
        )
        await running.record(started("g2"), PlanAccepted("g2", "b" * 64, (changed,), at=2000.0))
        await running.flush()
        view = await running.get_agent(7)
        assert view is not None
        assert (view.name, view.email, view.phone, view.nmls, view.five_min_apps) == (
            "Ann B. Agent",
            "annb@example.com",
            "4155550999",
            "999",
            False,
        )
        assert (view.first_seen, view.last_seen) == (1000.0, 2000.0)
        assert (await running.row_counts())["agents"] == 1

    async def test_agent_twice_in_one_plan(self, store: SqlStore, nursery: trio.Nursery) -> None:
        """An agent named twice in one plan (two tiers) is one row; the last mention wins."""
        plan = (agent(7, tier=1, name="First"), agent(7, tier=2, row=1, name="Second"))
        await write(store, nursery, started(), PlanAccepted("guid-1", "c" * 64, plan, at=1.0))
        view = await store.get_agent(7)
        assert view is not None
        assert view.name == "Second"
        assert store.records_failed == 0


class TestAtomicFinish:
    """Finishing a call and queueing its outcome post commit together or not at all."""

    async def test_finish_without_outbox_row_rolls_back(
        self, store: SqlStore, nursery: trio.Nursery
    ) -> None:
        """If the outbox row cannot be written, the call is not marked finished either."""
        broken = finished(outcome_post_url=None)  # violates outbox.url NOT NULL
        with capture_logs() as logs:
            await write(store, nursery, started(), broken)
        view = await store.get_call("guid-1")
        assert view is not None
        assert view.state is CallState.INITIAL_POST
        assert view.finished_at is None
        assert (await store.row_counts())["outbox"] == 0
        assert store.records_failed == 1
        assert [e["record_kind"] for e in logs if e["event"] == "store.record_failed"] == [
            "CallFinished"
        ]

    async def test_retry_keeps_finish_and_outbox_together(
        self, store: SqlStore, nursery: trio.Nursery
    ) -> None:
        """In a batch that failed for another record, the finish still lands with its post."""
        await write(store, nursery, started(), leg("missing-call", "leg-x"), finished())
        view = await store.get_call("guid-1")
        assert view is not None
        assert view.state is CallState.FINISHED
        assert [p.tracking_guid for p in await store.outbox_pending(5)] == ["guid-1"]


class TestIdempotence:
    """Records a carrier retry can repeat do not fail the batch."""

    async def test_duplicate_call_started_same_batch(
        self, store: SqlStore, nursery: trio.Nursery
    ) -> None:
        """A second CallStarted for a guid in the same batch is ignored; the first one wins."""
        await write(
            store, nursery, started(at=1.0), started(at=2.0), EventLogged("guid-1", "x", 3.0)
        )
        assert store.records_failed == 0
        assert store.batches == 1
        view = await store.get_call("guid-1")
        assert view is not None
        assert view.started_at == 1.0
        assert len(view.events) == 1

    async def test_duplicate_call_started_later_batch(self, running: SqlStore) -> None:
        """A CallStarted repeated after the call moved on does not reset it."""
        await running.record(started(), CallStateChanged("guid-1", CallState.DIALLING, at=5.0))
        await running.flush()
        await running.record(started(at=9.0))
        await running.flush()
        view = await running.get_call("guid-1")
        assert view is not None
        assert (view.state, view.started_at) == (CallState.DIALLING, 1000.0)
        assert running.records_failed == 0
        assert (await running.row_counts())["calls"] == 1


class TestBadRecord:
    """One bad record in a batch loses only itself, and is logged."""

    async def test_others_in_the_batch_are_kept(
        self, store: SqlStore, nursery: trio.Nursery
    ) -> None:
        """A leg of an unknown call (foreign key) fails alone; the rest of the batch is written."""
        records: list[Record] = [
            started("g1"),
            leg("g1", "leg-1"),
            leg("no-such-call", "leg-bad"),
            EventLogged("g1", "leg.started", at=1002.0),
            started("g2"),
            leg("g1", "leg-1"),  # duplicate primary key: also bad
            finished("g1"),
        ]
        with capture_logs() as logs:
            await write(store, nursery, *records)
        assert store.records_failed == 2
        assert store.records_written == len(records) - 2
        counts = await store.row_counts()
        assert counts == {
            "agents": 0,
            "calls": 2,
            "legs": 1,
            "call_events": 1,
            "outbox": 1,
            "referrals": 0,
            "outbox_hosts": 0,
            "instances": 0,
            "tracking_numbers": 0,
            "counters": 1,
        }
        events = [e["event"] for e in logs]
        assert events.count("store.batch_failed") == 1
        failed = [e for e in logs if e["event"] == "store.record_failed"]
        assert [e["record_kind"] for e in failed] == ["LegStarted", "LegStarted"]
        assert "leg-bad" in failed[0]["record"]
        assert all(e["log_level"] == "error" for e in failed)

    async def test_writer_keeps_going_after_a_bad_record(self, running: SqlStore) -> None:
        """After a failed record the writer still commits later batches."""
        await running.record(leg("no-such-call", "leg-bad"))
        await running.flush()
        await running.record(started())
        await running.flush()
        assert running.records_failed == 1
        assert await running.get_call("guid-1") is not None


class TestFlush:
    """flush() returns once everything queued before it is committed."""

    async def test_flush_makes_everything_visible(self, running: SqlStore) -> None:
        """Right after flush, every record queued before it can be read back."""
        await running.record(
            started(), *(EventLogged("guid-1", "e.done", at=float(i)) for i in range(300))
        )
        await running.flush()
        counts = await running.row_counts()
        assert (counts["calls"], counts["call_events"]) == (1, 300)

    async def test_flush_with_nothing_queued(self, running: SqlStore) -> None:
        """Flushing an empty queue returns without writing a batch."""
        await running.flush()
        await running.flush()
        assert running.batches == 0

    async def test_concurrent_flushes(self, running: SqlStore) -> None:
        """Several tasks flushing at once all return, each after its own records."""

        async def produce(n: int) -> None:
            await running.record(started(f"g{n}"))
            await running.flush()
            assert await running.get_call(f"g{n}") is not None

        async with trio.open_nursery() as producers:
            for n in range(20):
                producers.start_soon(produce, n)
        assert (await running.row_counts())["calls"] == 20

    async def test_cancelled_writer_commits_what_is_queued(self, store: SqlStore) -> None:
        """Cancelling the writer commits what was queued, then record and flush raise."""
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            await store.record(started(), *(EventLogged("guid-1", "e", at=1.0) for _ in range(99)))
            nursery.cancel_scope.cancel()
        counts = await store.row_counts()
        assert (counts["calls"], counts["call_events"]) == (1, 99)
        with pytest.raises(StoreError):
            await store.record(started("g2"))
        with pytest.raises(StoreError):
            await store.flush()

    async def test_close_stops_the_writer_after_draining(self, store: SqlStore) -> None:
        """close() lets a running writer commit what is queued and return."""
        await store.record(started())
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store.run)
            store.close()
        assert store.records_written == 1
        with pytest.raises(StoreError):
            await store.record(started("g2"))


class TestRowCounts:
    """row_counts() reports every table."""

    async def test_empty_store(self, running: SqlStore) -> None:
        """A fresh store has every table, all empty."""
        assert await running.row_counts() == dict.fromkeys(TABLES, 0) | SEEDED

    async def test_one_full_call(self, running: SqlStore) -> None:
        """A whole call's records add the expected rows to each table."""
        await running.record(
            started(),
            PlanAccepted("guid-1", "f" * 64, (agent(1), agent(2, tier=2)), at=1.0),
            leg("guid-1", "l1", agent_id=1),
            leg("guid-1", "l2", agent_id=2),
            EventLogged("guid-1", "call.started", at=1.0),
            finished(),
            OutboxDelivered("guid-1", at=2.0, attempts=1),
        )
        await running.flush()
        assert await running.row_counts() == {
            "agents": 2,
            "calls": 1,
            "legs": 2,
            "call_events": 1,
            "outbox": 1,
            "referrals": 0,
            "outbox_hosts": 0,
            "instances": 0,
            "tracking_numbers": 0,
            "counters": 1,
        }


class TestBatching:
    """The writer groups queued records into few transactions."""

    async def test_burst_of_2000_records(self, running: SqlStore) -> None:
        """2,000 records recorded back to back commit in a handful of batches."""
        records: list[Record] = []
        for n in range(250):
            guid = f"burst-{n}"
            records += [
                started(guid),
                CallStateChanged(guid, CallState.DIALLING, at=1001.0),
                leg(guid, f"{guid}-leg"),
                EventLogged(guid, "leg.started", at=1002.0),
                LegUpdated(guid, f"{guid}-leg", at=1003.0, answered_at=1003.0),
                EventLogged(guid, "leg.answered", at=1003.0),
                LegUpdated(guid, f"{guid}-leg", at=1010.0, result=LegResult.ACCEPTED),
                finished(guid),
            ]
        assert len(records) == 2000
        for record in records:
            await running.record(record)
        await running.flush()
        assert running.records_written == 2000
        assert running.records_failed == 0
        assert 4 <= running.batches <= 10
        counts = await running.row_counts()
        assert (counts["calls"], counts["legs"], counts["call_events"], counts["outbox"]) == (
            250,
            250,
            500,
            250,
        )

    async def test_batch_size_is_capped(self, store: SqlStore, nursery: trio.Nursery) -> None:
        """1,200 records queued before the writer starts commit as 500 + 500 + 200."""
        await write(
            store,
            nursery,
            started(),
            *(EventLogged("guid-1", "e", at=float(i)) for i in range(1199)),
        )
        assert store.batches == 3
        assert (await store.row_counts())["call_events"] == 1199


class TestOpenSqlite:
    """open_store on SQLite URLs (not part of the shared contract)."""

    def test_creates_file_and_directory(self, tmp_path: Path) -> None:
        """The database file and its directory are created on first start, in WAL mode."""
        path = tmp_path / "nested" / "dir" / "orch.db"
        store = open_store(f"sqlite:///{path}")
        try:
            assert path.exists()
            with store.engine.connect() as conn:
                mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar_one()
                sync = conn.exec_driver_sql("PRAGMA synchronous").scalar_one()
                fks = conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one()
            assert (mode, sync, fks) == ("wal", 1, 1)  # synchronous=1 is NORMAL
        finally:
            store.close()

    async def test_reopen_keeps_data(self, tmp_path: Path) -> None:
        """Opening an existing database keeps its rows (the schema is created only if missing)."""
        url = f"sqlite:///{tmp_path / 'orch.db'}"
        first = open_store(url)
        async with trio.open_nursery() as nursery:
            await write(first, nursery, started())
            nursery.cancel_scope.cancel()
        first.close()
        second = open_store(url)
        try:
            assert (await second.row_counts())["calls"] == 1
        finally:
            second.close()

    async def test_in_memory(self) -> None:
        """sqlite:// (in memory) works, reads and writes sharing its one connection."""
        store = open_store("sqlite://")
        try:
            async with trio.open_nursery() as nursery:
                await write(store, nursery, started(), finished())
                assert [p.tracking_guid for p in await store.outbox_pending()] == ["guid-1"]
                nursery.cancel_scope.cancel()
        finally:
            store.close()

    @pytest.mark.parametrize(
        "url", ["not a url", "mysql://root@localhost/db", "sqlite:////proc/no/such/dir/x.db"]
    )
    def test_bad_urls_raise_store_error(self, url: str) -> None:
        """A malformed, unsupported, or unusable URL raises StoreError."""
        with pytest.raises(StoreError):
            open_store(url)
