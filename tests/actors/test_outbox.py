"""The outbox deliverer under MockClock: retries, back-off, give-up, per-customer bounds,
resume after restart, HMAC signatures."""

from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

import pytest
import trio
import trio.testing
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from actors.outbox import SIGNATURE_HEADER, OutboxDeliverer, RetryPolicy, signature_header
from orchestrator.errors import CustomerError
from orchestrator.ports import CustomerReply
from orchestrator.records import OutboxAttempted, OutboxDelivered
from tests.support.fakes import MemoryRecorder

FIELDS = {"ReferralID": "0", "TrackingGUID": "g-1", "Agent1ID": "328290", "MessageLink": ""}
NO_JITTER = RetryPolicy(
    first_delay_s=2.0, multiplier=2.0, max_delay_s=60.0, jitter=0.0, give_up_after_s=3600.0
)


@dataclass
class ScriptedCustomer:
    """Answers Step 3 posts from a script of statuses; ``"timeout"`` raises like a timeout."""

    script: list[int | str] = field(default_factory=list)
    hold_s: float = 0.0
    posts: list[tuple[float, str, dict[str, str], str, dict[str, str]]] = field(
        default_factory=list
    )
    in_flight: int = 0
    max_in_flight: int = 0

    async def initial_post(self, url: str, fields: Mapping[str, str]) -> CustomerReply:
        raise AssertionError("not used")

    async def outcome_post(
        self,
        url: str,
        fields: Mapping[str, str],
        *,
        key: str,
        headers: Mapping[str, str] | None = None,
    ) -> int:
        self.posts.append((trio.current_time(), url, dict(fields), key, dict(headers or {})))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await trio.sleep(self.hold_s)
            outcome = self.script.pop(0) if self.script else 200
            if outcome == "timeout":
                raise CustomerError("Step 3 POST failed: ReadTimeout")
            assert isinstance(outcome, int)
            return outcome
        finally:
            self.in_flight -= 1


@dataclass(frozen=True)
class Row:
    tracking_guid: str
    url: str
    fields: Mapping[str, str]
    created_at: float
    attempts: int
    next_attempt_at: float


@dataclass
class FakePending:
    rows: list[Row]

    async def outbox_pending(self, limit: int = 100) -> Sequence[Row]:
        await trio.lowlevel.checkpoint()
        return self.rows[:limit]


async def run_deliverer(deliverer: OutboxDeliverer, body) -> None:  # type: ignore[no-untyped-def]
    async with trio.open_nursery() as nursery:
        await nursery.start(deliverer.run)
        await body()
        await deliverer.close()


class TestRetries:
    async def test_500_then_timeout_then_200_is_one_delivery_with_one_key(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Each failure is recorded with its delay; one success; the same Idempotency-Key."""
        customer = ScriptedCustomer([500, "timeout", 200])
        recorder = MemoryRecorder()
        deliverer = OutboxDeliverer(customer, recorder, policy=NO_JITTER, now=trio.current_time)

        async def body() -> None:
            await deliverer.send("g-1", "http://customer.test/outcome", FIELDS)
            await trio.sleep(100)

        with capture_logs(processors=[merge_contextvars]) as logs:
            await run_deliverer(deliverer, body)
        assert [t for t, *_ in customer.posts] == [0.0, 2.0, 6.0]
        assert {key for *_, key, _ in customer.posts} == {"g-1"}
        attempts = recorder.of(OutboxAttempted)
        assert [(a.attempts, a.next_attempt_at, a.last_error) for a in attempts] == [
            (1, 2.0, "HTTP 500"),
            (2, 6.0, "Step 3 POST failed: ReadTimeout"),
        ]
        (delivered,) = recorder.of(OutboxDelivered)
        assert (delivered.attempts, delivered.dead) == (3, False)
        failed = [e for e in logs if e["event"] == "outcome.attempt_failed"]
        assert [(e["attempt"], e["retry_in_s"]) for e in failed] == [(1, 2.0), (2, 4.0)]
        assert all(e["tracking_guid"] == "g-1" for e in failed)
        assert deliverer.delivered == 1

    async def test_gives_up_after_the_window_and_marks_the_row_dead(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Never 2xx: attempts until give_up_after_s, then dead (kept) and an error line."""
        customer = ScriptedCustomer([503] * 100)
        recorder = MemoryRecorder()
        policy = RetryPolicy(
            first_delay_s=10, multiplier=2, max_delay_s=100, jitter=0, give_up_after_s=300
        )
        deliverer = OutboxDeliverer(customer, recorder, policy=policy, now=trio.current_time)

        async def body() -> None:
            await deliverer.send("g-1", "http://customer.test/outcome", FIELDS)
            await trio.sleep(1000)

        with capture_logs() as logs:
            await run_deliverer(deliverer, body)
        # 0, 10, 30, 70, 150, 250 — the next (350) would pass the 300 s window.
        assert [t for t, *_ in customer.posts] == [0, 10, 30, 70, 150, 250]
        (dead,) = recorder.of(OutboxDelivered)
        assert dead.dead is True
        assert dead.last_error == "HTTP 503"
        assert any(e["event"] == "outcome.dead" and e["log_level"] == "error" for e in logs)

    def test_jitter_stays_within_its_band(self) -> None:
        policy = RetryPolicy(first_delay_s=10, multiplier=3, max_delay_s=500, jitter=0.2)
        rng = random.Random(7)
        for attempt, base in ((1, 10), (2, 30), (3, 90), (4, 270), (5, 500), (9, 500)):
            delays = [policy.delay_after(attempt, rng) for _ in range(200)]
            assert base * 0.8 <= min(delays) < max(delays) <= base * 1.2


class TestIsolationAndResume:
    async def test_a_slow_customer_does_not_hold_up_another(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Ten posts to a customer that takes 30 s each, at most 2 at once; B goes at once."""
        slow, fast = ScriptedCustomer(hold_s=30), ScriptedCustomer()

        class Router:
            async def initial_post(self, url: str, fields: Mapping[str, str]) -> CustomerReply:
                raise AssertionError

            async def outcome_post(
                self,
                url: str,
                fields: Mapping[str, str],
                *,
                key: str,
                headers: Mapping[str, str] | None = None,
            ) -> int:
                target = slow if "slow" in url else fast
                return await target.outcome_post(url, fields, key=key, headers=headers)

        policy = RetryPolicy(per_customer=2)
        deliverer = OutboxDeliverer(
            Router(), MemoryRecorder(), policy=policy, now=trio.current_time
        )

        async def body() -> None:
            for i in range(10):
                await deliverer.send(f"s-{i}", "http://slow.test/o", FIELDS)
            await deliverer.send("f-1", "http://fast.test/o", FIELDS)
            await trio.sleep(1000)

        await run_deliverer(deliverer, body)
        assert slow.max_in_flight == 2
        assert len(slow.posts) == 10
        assert [t for t, *_ in fast.posts] == [0.0]

    async def test_pending_rows_resume_after_a_restart_exactly_once(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """Rows left pending by a previous run are delivered when due, each exactly once."""
        rows = [
            Row(
                "old-1", "http://c.test/o", FIELDS, created_at=0.0, attempts=0, next_attempt_at=0.0
            ),
            Row(
                "old-2", "http://c.test/o", FIELDS, created_at=0.0, attempts=3, next_attempt_at=50.0
            ),
        ]
        customer = ScriptedCustomer()
        recorder = MemoryRecorder()
        deliverer = OutboxDeliverer(
            customer, recorder, pending=FakePending(rows), policy=NO_JITTER, now=trio.current_time
        )

        async def body() -> None:
            # The same outcome offered again (e.g. recovery) is not delivered twice.
            await deliverer.send("old-1", "http://c.test/o", FIELDS)
            await trio.sleep(100)

        await run_deliverer(deliverer, body)
        assert [(t, key) for t, _, _, key, _ in customer.posts] == [(0.0, "old-1"), (50.0, "old-2")]
        assert [d.attempts for d in recorder.of(OutboxDelivered)] == [1, 4]

    async def test_shutdown_leaves_waiting_retries_pending(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """close(): nothing waits for its next attempt; the row stays pending in the store."""
        customer = ScriptedCustomer([500])
        recorder = MemoryRecorder()
        deliverer = OutboxDeliverer(customer, recorder, policy=NO_JITTER, now=trio.current_time)

        async def body() -> None:
            await deliverer.send("g-1", "http://c.test/o", FIELDS)
            await trio.sleep(1)

        await run_deliverer(deliverer, body)
        assert trio.current_time() == pytest.approx(1.0)
        assert len(customer.posts) == 1
        assert recorder.of(OutboxDelivered) == []


class TestSignature:
    async def test_hmac_header_covers_the_exact_body(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """With a campaign secret, X-Orchestrator-Signature verifies against the form body."""
        customer = ScriptedCustomer()
        deliverer = OutboxDeliverer(
            customer,
            MemoryRecorder(),
            now=lambda: 1_700_000_000.0,
            secrets={"http://c.test/o": "s3cret"},
        )

        async def body() -> None:
            await deliverer.send("g-1", "http://c.test/o", FIELDS)
            await trio.testing.wait_all_tasks_blocked()

        await run_deliverer(deliverer, body)
        ((_, _, fields, _, headers),) = customer.posts
        value = headers[SIGNATURE_HEADER]
        stamp, mac = (part.split("=", 1)[1] for part in value.split(","))
        expected = hmac.new(
            b"s3cret", f"{stamp}.{urlencode(fields)}".encode(), hashlib.sha256
        ).hexdigest()
        assert hmac.compare_digest(mac, expected)
        assert value == signature_header("s3cret", urlencode(FIELDS), 1_700_000_000)


async def test_an_outcome_after_teardown_stays_pending_without_an_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Cancelled from outside (hard stop): a call finishing meanwhile must not crash; its row
    stays pending in the store for the next start."""
    deliverer = OutboxDeliverer(ScriptedCustomer(), MemoryRecorder(), now=trio.current_time)
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            await nursery.start(deliverer.run)
            scope.cancel()
    with capture_logs() as logs:
        deliverer._nursery = nursery  # as if torn down mid-send: the nursery is closed
        await deliverer.send("g-1", "http://c.test/o", FIELDS)
    assert [e["event"] for e in logs] == ["outcome.deferred"]
    assert deliverer.in_flight == set()
