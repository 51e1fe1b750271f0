"""The one way a leg is ended at the carrier (``actors.teardown``), under trio's MockClock."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import trio
import trio.testing
from structlog.testing import capture_logs

from actors.teardown import Target, Teardown, TeardownPolicy
from orchestrator.errors import CarrierError
from orchestrator.messages import LeadTarget
from orchestrator.ports import LegRequest

POLICY = TeardownPolicy(timeout_s=10.0, first_retry_s=1.0, max_retry_s=4.0, retry_for_s=20.0)


@dataclass
class ScriptedCarrier:
    """Ends fail ``failures`` times, then work; ``hang`` makes them never answer."""

    failures: int = 0
    hang: bool = False
    calls: list[tuple[float, str, str]] = field(default_factory=list)

    async def _end(self, what: str, ident: str) -> None:
        self.calls.append((trio.current_time(), what, ident))
        if self.hang:
            await trio.sleep_forever()
        await trio.lowlevel.checkpoint()
        if self.failures > 0:
            self.failures -= 1
            raise CarrierError("plivo cancel: server error (HTTP 500)")

    async def cancel(self, request_id: str) -> None:
        await self._end("cancel", request_id)

    async def hangup(self, call_id: str) -> None:
        await self._end("hangup", call_id)

    async def originate(self, request: LegRequest) -> str:
        raise NotImplementedError

    async def redirect_lead(self, call_id: str, tracking_guid: str, target: LeadTarget) -> None:
        raise NotImplementedError


class TestOneAttempt:
    async def test_a_call_is_hung_up_and_a_request_cancelled(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        carrier = ScriptedCarrier()
        teardown = Teardown(carrier, POLICY)
        assert await teardown.end(Target(request_id="r-1", call_id="c-1")) is None
        assert await teardown.end(Target(request_id="r-2")) is None
        assert await teardown.end(Target()) is None  # nothing placed: nothing to end
        assert [(what, ident) for _, what, ident in carrier.calls] == [
            ("hangup", "c-1"),
            ("cancel", "r-2"),
        ]

    async def test_an_attempt_is_bounded_and_shielded(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A carrier that never answers costs ``timeout_s``, even to a caller being cancelled."""
        teardown = Teardown(ScriptedCarrier(hang=True), POLICY)
        with trio.CancelScope() as scope:
            scope.cancel()  # the call is being torn down: the end still runs to its bound
            error = await teardown.end(Target(request_id="r-1"))
        assert error == "no answer from the carrier in 10 s"
        assert trio.current_time() == pytest.approx(10.0)


class TestEscalation:
    async def test_a_failed_end_is_retried_with_back_off_until_it_works(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        carrier = ScriptedCarrier(failures=3)
        teardown = Teardown(carrier, POLICY)
        with capture_logs() as logs:
            async with trio.open_nursery() as nursery:
                await nursery.start(teardown.run)
                assert "HTTP 500" in (await teardown.end(Target(request_id="r-1")) or "")
                await trio.sleep(30)
                nursery.cancel_scope.cancel()
        assert [at for at, _, _ in carrier.calls] == [0.0, 1.0, 3.0, 7.0]  # 1, 2, 4 s later
        events = [e["event"] for e in logs]
        assert events == ["leg.end_retry_failed", "leg.end_retry_failed", "leg.end_retried"]

    async def test_it_gives_up_once_the_phone_cannot_be_ringing(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        carrier = ScriptedCarrier(failures=100)
        teardown = Teardown(carrier, POLICY)
        with capture_logs() as logs:
            async with trio.open_nursery() as nursery:
                await nursery.start(teardown.run)
                await teardown.end(Target(call_id="c-1"))
                await trio.sleep(60)
                nursery.cancel_scope.cancel()
        # retries at 1, 3, 7, 11, 15, 19 s (the wait capped at 4 s); the next would pass 20 s
        assert [at for at, _, _ in carrier.calls] == [0.0, 1.0, 3.0, 7.0, 11.0, 15.0, 19.0]
        (abandoned,) = [e for e in logs if e["event"] == "leg.end_abandoned"]
        assert (abandoned["log_level"], abandoned["attempts"]) == ("error", 7)

    async def test_without_its_runner_a_failure_is_abandoned_at_once(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        teardown = Teardown(ScriptedCarrier(failures=1), POLICY)
        with capture_logs() as logs:
            assert await teardown.end(Target(request_id="r-1")) is not None
        assert [e["event"] for e in logs] == ["leg.end_abandoned"]
