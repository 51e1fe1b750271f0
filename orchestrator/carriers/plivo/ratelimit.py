"""A token bucket pacing outbound call requests (Plivo's account CPS, docs/plivo.md §6.1).

Semantics: the bucket holds at most ``burst`` tokens (default: ``rate`` rounded down, at least
1) and starts full; it refills continuously at ``rate`` tokens per second; each
:meth:`TokenBucket.acquire` takes one token, waiting until one is there. So at 2 calls/s, five
requests made at once start at t = 0, 0, 0.5, 1.0, 1.5.

:meth:`TokenBucket.set_rate` changes the pace while running (a cluster instance's share of the
account's rate, recomputed as instances come and go); :meth:`TokenBucket.hold` empties the
bucket for a while (a joining instance waits until the others have made room for it).

Waiters are served first come, first served (``trio.Lock`` is fair). Waiting is cancellable
and a cancelled waiter takes no token. Time is trio's clock, so tests run it under MockClock.
"""

from __future__ import annotations

import math

import trio


class TokenBucket:
    """Paces callers to ``rate`` per second with bursts of up to ``burst``.

    Args:
        rate: tokens added per second (> 0).
        burst: bucket size; default ``max(1, floor(rate))``.
    """

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        self.rate = float(rate)
        self.burst = float(burst) if burst is not None else float(max(1, math.floor(rate)))
        if self.burst < 1:
            raise ValueError(f"burst must be >= 1, got {self.burst}")
        self._tokens = self.burst
        self._updated: float | None = None  # trio's clock exists only inside trio.run
        self._lock = trio.Lock()

    def _refill(self, now: float) -> None:
        if self._updated is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def set_rate(self, rate: float, burst: float | None = None) -> None:
        """Pace at ``rate`` from now on (tokens earned so far are kept, up to the new burst)."""
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        if self._updated is not None:
            self._refill(trio.current_time())
        self.rate = float(rate)
        self.burst = float(burst) if burst is not None else float(max(1, math.floor(rate)))
        self._tokens = min(self._tokens, self.burst)

    def hold(self, seconds: float) -> None:
        """Give no token for ``seconds`` from now: the next one is there at ``now + seconds``."""
        self._refill(trio.current_time())
        self._tokens = min(self._tokens, 1.0 - seconds * self.rate)

    async def acquire(self) -> None:
        """Take one token, waiting (cancellably, in arrival order) until one is available."""
        async with self._lock:
            while True:
                self._refill(trio.current_time())
                # tolerate float dust: 0.5 s at 2/s must give a whole token
                if self._tokens >= 1 - 1e-9:
                    self._tokens = max(0.0, self._tokens - 1)
                    return
                await trio.sleep((1 - self._tokens) / self.rate)
