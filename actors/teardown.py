"""Ending a call leg at the carrier: the one way it is done, with one escalation policy.

Every place that ends something at the carrier — an agent leg when its tier closes or the lead
leaves, a stray leg nobody owns, the winner and the lead when a connected call ends, the lead at
shutdown, the legs a crash left behind — calls :meth:`Teardown.end`:

- a target with a carrier call id is **hung up**; one with only a request id (placed, not
  answered) has its request **cancelled**;
- the attempt runs **shielded** from cancellation (a call being torn down still ends its legs)
  and **bounded** by ``end_timeout_s``;
- if the carrier fails or does not answer in time, the agent's phone may still be ringing: the
  attempt is **escalated** to a background retry (``leg.end_retry_failed`` per failed retry)
  with exponential back-off from ``end_retry_s`` up to ``end_retry_max_s``, for as long as
  ``end_retry_for_s`` — about as long as that phone could still be ringing or whispering — and
  ends with ``leg.end_retried`` (it worked) or ``leg.end_abandoned`` (an error: a person may be
  holding a dead line).

The timings come from the ``[carrier]`` settings (:meth:`TeardownPolicy.from_settings`). The
retries outlive the call that asked for them: they run in the teardown's own nursery
(:meth:`Teardown.run`), started by the service before anything is placed.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
import trio

from orchestrator.config import Settings
from orchestrator.errors import CarrierError
from orchestrator.ports import Carrier

logger = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class TeardownPolicy:
    """How hard to try ending a leg (seconds)."""

    timeout_s: float = 10.0  # one attempt
    first_retry_s: float = 1.0  # the first background retry, then doubling
    max_retry_s: float = 15.0  # the longest wait between retries
    retry_for_s: float = 90.0  # retries stop this long after the first failure

    @classmethod
    def from_settings(cls, settings: Settings) -> TeardownPolicy:
        carrier = settings.carrier
        return cls(
            timeout_s=carrier.end_timeout_s,
            first_retry_s=carrier.end_retry_s,
            max_retry_s=carrier.end_retry_max_s,
            retry_for_s=carrier.end_retry_for_s,
        )


@dataclass(frozen=True, slots=True)
class Target:
    """Something to end at the carrier: a placed request, or a live call."""

    request_id: str = ""
    call_id: str = ""

    def __bool__(self) -> bool:
        return bool(self.request_id or self.call_id)


class Teardown:
    """Ends legs at the carrier (see the module docstring). Start :meth:`run` first; without
    it, failed attempts are logged as abandoned instead of retried."""

    def __init__(self, carrier: Carrier, policy: TeardownPolicy | None = None) -> None:
        self._carrier = carrier
        self.policy = policy or TeardownPolicy()
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the background retries until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None

    async def end(self, target: Target) -> str | None:
        """End ``target`` now (shielded, bounded). ``None`` when it ended (or there was nothing
        to end); otherwise why not — the retries have then been started."""
        if not target:
            return None
        error = await self._attempt(target)
        if error is not None:
            self._escalate(target)
        return error

    async def _attempt(self, target: Target) -> str | None:
        error: str | None = None
        with trio.CancelScope(shield=True), trio.move_on_after(self.policy.timeout_s) as scope:
            try:
                if target.call_id:
                    await self._carrier.hangup(target.call_id)
                else:
                    await self._carrier.cancel(target.request_id)
            except CarrierError as exc:
                error = str(exc)
        if scope.cancelled_caught:
            error = f"no answer from the carrier in {self.policy.timeout_s:g} s"
        return error

    def _escalate(self, target: Target) -> None:
        nursery = self._nursery
        if nursery is not None:
            try:
                nursery.start_soon(self._retry, target)
                return
            except RuntimeError:  # the nursery is closing (shutdown)
                pass
        logger.error(
            "leg.end_abandoned",
            request_id=target.request_id,
            call_id=target.call_id,
            attempts=1,
            reason="shutting down",
        )

    async def _retry(self, target: Target) -> None:
        """Keep trying, with back-off, until it works or the phone cannot be ringing any more."""
        policy = self.policy
        give_up = trio.current_time() + policy.retry_for_s
        delay = policy.first_retry_s
        attempt = 1
        while trio.current_time() + delay < give_up:
            await trio.sleep(delay)
            attempt += 1
            error = await self._attempt(target)
            if error is None:
                logger.info(
                    "leg.end_retried",
                    request_id=target.request_id,
                    call_id=target.call_id,
                    attempt=attempt,
                )
                return
            logger.warning(
                "leg.end_retry_failed",
                request_id=target.request_id,
                call_id=target.call_id,
                attempt=attempt,
                error=error,
            )
            delay = min(delay * 2, policy.max_retry_s)
        logger.error(
            "leg.end_abandoned",
            request_id=target.request_id,
            call_id=target.call_id,
            attempts=attempt,
        )
