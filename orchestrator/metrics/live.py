"""Gauges read at scrape time from the running service: live calls, live legs, the outbox.

Nothing updates these between scrapes: :class:`LiveCollector` asks the orchestrator when
Prometheus asks us (``Orchestrator.live_snapshot()``, ``outcomes.in_flight``, ``ready``), so a
gauge can never drift from the truth. The snapshot walks every live call and leg, once per
scrape.

Threads: the orchestrator's state belongs to the Trio thread, but rendering a large registry is
worth moving off it (``web.metrics`` renders in a worker thread). So the scrape first takes a
:class:`LiveSample` on the Trio thread and *pins* it (:meth:`LiveCollector.pinned`, a
contextvar, which ``trio.to_thread`` copies into the worker); ``collect`` then reads the pinned
sample instead of touching the orchestrator. Called unpinned (tests, ``get_sample_value``),
``collect`` samples directly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from orchestrator.model import CallState

PREFIX = "orchestrator"

#: Leg states (``actors.supervisor.leg_state``) of a leg still up at the carrier.
LIVE_LEG_STATES = ("dialling", "ringing", "whispering", "connected")
CALL_STATES = tuple(state.value for state in CallState)


class PendingOutcomes(Protocol):
    @property
    def in_flight(self) -> Collection[str]: ...


class LiveSource(Protocol):
    """What the gauges read (the :class:`orchestrator.service.Orchestrator`)."""

    @property
    def ready(self) -> bool: ...

    @property
    def outcomes(self) -> PendingOutcomes: ...

    def live_snapshot(self) -> Sequence[dict[str, object]]: ...


@dataclass(frozen=True, slots=True)
class LiveSample:
    """The live numbers at one instant."""

    calls: Counter[str] = field(default_factory=Counter)  # by call state
    legs: Counter[str] = field(default_factory=Counter)  # by leg state
    outbox_pending: int = 0
    ready: bool = False


_PINNED: ContextVar[tuple[LiveCollector, LiveSample] | None] = ContextVar(
    "orchestrator_metrics_live_sample", default=None
)


class LiveCollector:
    """A prometheus-client collector over a :class:`LiveSource` (see the module docstring)."""

    def __init__(self, source: LiveSource) -> None:
        self._source = source

    def sample(self) -> LiveSample:
        """Read the live numbers now (on the Trio thread)."""
        source = self._source
        calls: Counter[str] = Counter()
        legs: Counter[str] = Counter()
        for call in source.live_snapshot():
            calls[str(call.get("state"))] += 1
            call_legs = call.get("legs")
            if isinstance(call_legs, list):
                for leg in call_legs:
                    legs[str(leg.get("state"))] += 1
        return LiveSample(calls, legs, len(source.outcomes.in_flight), source.ready)

    @contextmanager
    def pinned(self, sample: LiveSample) -> Iterator[None]:
        """Within this block (and in threads started from it), ``collect`` reports ``sample``."""
        token = _PINNED.set((self, sample))
        try:
            yield
        finally:
            _PINNED.reset(token)

    def describe(self) -> Iterator[Metric]:
        yield from _families(LiveSample())

    def collect(self) -> Iterator[Metric]:
        pinned = _PINNED.get()
        sample = pinned[1] if pinned is not None and pinned[0] is self else self.sample()
        yield from _families(sample)


def _families(sample: LiveSample) -> Iterator[Metric]:
    by_state = GaugeMetricFamily(
        f"{PREFIX}_live_calls",
        "Calls in flight now, by state (sum them for the total).",
        labels=["state"],
    )
    for state in CALL_STATES:
        by_state.add_metric([state], sample.calls.get(state, 0))
    yield by_state
    live_legs = GaugeMetricFamily(
        f"{PREFIX}_live_legs", "Agent legs up at the carrier now, by state.", labels=["state"]
    )
    for state in LIVE_LEG_STATES:
        live_legs.add_metric([state], sample.legs.get(state, 0))
    yield live_legs
    yield GaugeMetricFamily(
        f"{PREFIX}_outbox_pending",
        "Step 3 posts scheduled in memory (in flight or waiting for a retry).",
        value=sample.outbox_pending,
    )
    yield GaugeMetricFamily(
        f"{PREFIX}_ready",
        "1 while the service takes calls (/readyz 200), else 0.",
        value=1 if sample.ready else 0,
    )
