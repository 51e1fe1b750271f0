"""Metrics from the log events the actors already emit: a structlog processor and its table.

The actors do not call metrics; they log (``call.started``, ``call.finished``, ``leg.ended``,
``step1.sent``/``step1.failed``, ``outcome.*``). :func:`observe_metrics`, a processor in the
chain of :func:`orchestrator.logs.configure_logging` right after ``merge_contextvars`` (so the
call's ``campaign`` is on the event), looks the event name up in :data:`HANDLERS` and, for the
few names it knows, hands the event's fields to the :class:`MetricsSink` active in the current
context. Every other line costs one dict lookup.

Which sink: tests run several services in one process, each with its own registry, so the sink
lives in a :class:`contextvars.ContextVar`. :func:`activate` sets it in the calling task;
Trio copies contextvars into every task spawned afterwards (and the HTTP handlers that accept
calls are such tasks), so every event of that service's calls reaches that service's sink.
Events logged with no active sink are just logged.

Log level: the metrics must not depend on it. Below the configured level the filtering logger
would drop ``call.started`` before any processor ran, so :func:`filtering_logger` builds a
filtering logger that lets *only* the observed names through below the level, flagged with
:data:`BELOW_LEVEL`; :func:`observe_metrics` counts them and then drops them
(``structlog.DropEvent``). Other below-level lines stay a no-op method call.

Error handling: a handler that raises (a bug) must not break the actor that logged, so the
processor catches it and counts it in the sink's ``handler_failed``.

This module imports no Prometheus code: it is the pure half (which event means what); the
sink is :class:`orchestrator.metrics.families.ServiceMetrics`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, MutableMapping
from contextvars import ContextVar, Token
from typing import Any, Protocol, cast

import structlog
from structlog.typing import FilteringBoundLogger

#: Key set on an observed event that is below the configured level: count it, do not write it.
BELOW_LEVEL = "_metrics_only"


class MetricsSink(Protocol):
    """What the observed events are turned into (one per service instance)."""

    def call_started(self, campaign: str) -> None: ...

    def call_finished(
        self,
        campaign: str,
        outcome: str,
        duration_s: float | None,
        time_to_connect_s: float | None,
    ) -> None: ...

    def leg_ended(self, campaign: str, result: str) -> None: ...

    def step1_done(self, campaign: str, ok: bool, latency_s: float | None) -> None: ...

    def outcome_posted(self, delivered: bool) -> None: ...

    def outcome_dead(self) -> None: ...

    def webhook_forwarded(self, route: str, ok: bool) -> None: ...

    def handler_failed(self, event: str) -> None: ...


_ACTIVE: ContextVar[MetricsSink | None] = ContextVar("orchestrator_metrics_sink", default=None)


def activate(sink: MetricsSink) -> Token[MetricsSink | None]:
    """Make ``sink`` receive the observed events of this task and of every task it spawns from
    now on (Trio copies the context at spawn). Returns the token to :func:`deactivate` with."""
    return _ACTIVE.set(sink)


def deactivate(token: Token[MetricsSink | None]) -> None:
    _ACTIVE.reset(token)


def active_sink() -> MetricsSink | None:
    return _ACTIVE.get()


# --- the table: event name -> what it means --------------------------------------------------


def _seconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _label(event: Mapping[str, Any], key: str) -> str:
    value = event.get(key)
    return "" if value is None else str(value)


def _call_started(sink: MetricsSink, event: Mapping[str, Any]) -> None:
    sink.call_started(_label(event, "campaign"))


def _call_finished(sink: MetricsSink, event: Mapping[str, Any]) -> None:
    sink.call_finished(
        _label(event, "campaign"),
        _label(event, "outcome"),
        _seconds(event.get("duration_s")),
        _seconds(event.get("time_to_connect_s")),
    )


def _leg_ended(sink: MetricsSink, event: Mapping[str, Any]) -> None:
    sink.leg_ended(_label(event, "campaign"), _label(event, "result"))


def _step1_sent(sink: MetricsSink, event: Mapping[str, Any]) -> None:
    sink.step1_done(_label(event, "campaign"), True, _seconds(event.get("latency_s")))


def _step1_failed(sink: MetricsSink, event: Mapping[str, Any]) -> None:
    sink.step1_done(_label(event, "campaign"), False, _seconds(event.get("latency_s")))


def _outcome_delivered(sink: MetricsSink, event: Mapping[str, Any]) -> None:
    sink.outcome_posted(True)


def _outcome_attempt_failed(sink: MetricsSink, event: Mapping[str, Any]) -> None:
    sink.outcome_posted(False)


def _outcome_dead(sink: MetricsSink, event: Mapping[str, Any]) -> None:
    sink.outcome_posted(False)  # the last attempt failed too; it is logged only as dead
    sink.outcome_dead()


def _cluster_forwarded(sink: MetricsSink, event: Mapping[str, Any]) -> None:
    sink.webhook_forwarded(_label(event, "route"), True)


def _cluster_forward_failed(sink: MetricsSink, event: Mapping[str, Any]) -> None:
    sink.webhook_forwarded(_label(event, "route"), False)


Handler = Callable[[MetricsSink, Mapping[str, Any]], None]

#: The observed events. Adding a metric from a log event is one row here and one sink method.
HANDLERS: Mapping[str, Handler] = {
    "call.started": _call_started,
    "call.finished": _call_finished,
    "leg.ended": _leg_ended,
    "step1.sent": _step1_sent,
    "step1.failed": _step1_failed,
    "outcome.delivered": _outcome_delivered,
    "outcome.attempt_failed": _outcome_attempt_failed,
    "outcome.dead": _outcome_dead,
    "cluster.forwarded": _cluster_forwarded,
    "cluster.forward_failed": _cluster_forward_failed,
}


# --- the processor ---------------------------------------------------------------------------


def observe_metrics(
    logger: object, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: count the observed events (see the module docstring).

    Raises:
        structlog.DropEvent: for an observed event below the configured level (counted, not
            written).
    """
    handler = HANDLERS.get(event_dict.get("event", ""))
    if handler is None:
        return event_dict
    sink = _ACTIVE.get()
    if sink is not None:
        try:
            handler(sink, event_dict)
        except Exception:  # a metrics bug must never break the call that logged
            sink.handler_failed(str(event_dict.get("event")))
    if event_dict.pop(BELOW_LEVEL, False):
        raise structlog.DropEvent
    return event_dict


_LEVEL_METHODS = (
    ("debug", logging.DEBUG),
    ("info", logging.INFO),
    ("warning", logging.WARNING),
    ("error", logging.ERROR),
)
_ALIASES = {"info": ("msg",), "warning": ("warn",)}


def _observed_only(name: str) -> Callable[..., Any]:
    def method(self: Any, event: str, *args: Any, **kw: Any) -> Any:
        if event in HANDLERS:
            kw[BELOW_LEVEL] = True
            return self._proxy_to_logger(name, event, **kw)
        return None

    method.__name__ = name
    return method


def filtering_logger(min_level: int) -> type[FilteringBoundLogger]:
    """``structlog.make_filtering_bound_logger(min_level)``, except that the observed events
    still reach the processors below ``min_level`` (flagged; dropped after being counted)."""
    base = structlog.make_filtering_bound_logger(min_level)
    overrides: dict[str, Callable[..., Any]] = {}
    for name, level in _LEVEL_METHODS:
        if level < min_level:
            overrides[name] = _observed_only(name)
            for alias in _ALIASES.get(name, ()):
                overrides[alias] = overrides[name]
    if not overrides:
        return base
    return cast("type[FilteringBoundLogger]", type(f"Observing{base.__name__}", (base,), overrides))
