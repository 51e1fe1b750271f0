"""Plivo's account limits as pure bookkeeping (docs/plivo.md §6.1). No trio, no I/O: callers pass
the current time.

- :class:`CpsGate`: outbound calls per second. Over the limit a Make Call request is *queued*,
  not rejected: ``reserve`` returns when it may be dialled (a token bucket holding one second's
  worth of calls, so 15 requests at 10 CPS give 10 now and 5 a second later).
- :class:`RateWindow`: REST requests per 5-second window (429 beyond it).
"""

from __future__ import annotations

from collections import deque

__all__ = ["CpsGate", "RateWindow"]


class CpsGate:
    """Token bucket for outbound calls; ``cps <= 0`` means unlimited."""

    def __init__(self, cps: float) -> None:
        self.cps = cps
        self._capacity = max(1.0, cps)
        self._tokens = self._capacity
        self._updated: float | None = None

    def reserve(self, now: float) -> float:
        """Take one call's slot; return the time at which it may be dialled (>= ``now``)."""
        if self.cps <= 0:
            return now
        if self._updated is not None:
            self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self.cps)
        self._updated = now
        self._tokens -= 1.0
        if self._tokens >= 0:
            return now
        return now + (-self._tokens) / self.cps


class RateWindow:
    """At most ``limit`` requests in any ``window_s`` seconds; ``limit <= 0`` = unlimited."""

    def __init__(self, limit: int, window_s: float = 5.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._times: deque[float] = deque()

    def allow(self, now: float) -> bool:
        if self.limit <= 0:
            return True
        while self._times and self._times[0] <= now - self.window_s:
            self._times.popleft()
        if len(self._times) >= self.limit:
            return False
        self._times.append(now)
        return True
