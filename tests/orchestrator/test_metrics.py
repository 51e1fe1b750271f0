"""Prometheus metrics (README "Operating it"): the log-event processor, the families, the
scrape-time
gauges, ``/metrics`` over real HTTP with the simulator, and the Grafana dashboard."""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog
import trio
import trio.testing
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.carriers.fake import AgentScript as FakeAgent
from orchestrator.carriers.fake import LeadScript as FakeLead
from orchestrator.logs import configure_logging
from orchestrator.metrics import (
    BELOW_LEVEL,
    HANDLERS,
    LiveCollector,
    LiveSample,
    ServiceMetrics,
    activate,
    active_sink,
    deactivate,
    logs_observed,
    observe_metrics,
    observed_metrics,
)
from orchestrator.model import LegResult, OutcomeKind
from simulator import AgentScript, LeadScript
from tests.support.call_harness import SETTINGS, agent, harness
from tests.support.e2e import API_DOC_PLAN, E2E_ROUTING, PlanReply, open_e2e
from tests.support.paths import REPO
from web.app import create_app
from web.metrics import create_metrics_blueprint, render, route_kind

DASHBOARD = REPO / "dashboards" / "orchestrator.json"


@pytest.fixture(name="log_stream")
def _log_stream(request: pytest.FixtureRequest) -> Iterator[io.BytesIO]:
    """The service's logging (with the metrics processor) into a buffer, for one test."""
    level = getattr(request, "param", "info")
    saved = structlog.get_config()
    stream = io.BytesIO()
    configure_logging(level, stream)
    structlog.configure(cache_logger_on_first_use=False)  # restorable after the test
    yield stream
    structlog.configure(**saved)


def log_events(stream: io.BytesIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines() if line]


class RecordingSink:
    """A MetricsSink that remembers what it was told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    def _note(self, name: str, *args: object) -> None:
        self.calls.append((name, args))

    def call_started(self, campaign: str) -> None:
        self._note("call_started", campaign)

    def call_finished(
        self, campaign: str, outcome: str, duration_s: float | None, time_to_connect_s: float | None
    ) -> None:
        self._note("call_finished", campaign, outcome, duration_s, time_to_connect_s)

    def leg_ended(self, campaign: str, result: str) -> None:
        self._note("leg_ended", campaign, result)

    def step1_done(self, campaign: str, ok: bool, latency_s: float | None) -> None:
        self._note("step1_done", campaign, ok, latency_s)

    def outcome_posted(self, delivered: bool) -> None:
        self._note("outcome_posted", delivered)

    def outcome_dead(self) -> None:
        self._note("outcome_dead")

    def webhook_forwarded(self, route: str, ok: bool) -> None:
        self._note("webhook_forwarded", route, ok)

    def handler_failed(self, event: str) -> None:
        self._note("handler_failed", event)


class BrokenSink(RecordingSink):
    def call_started(self, campaign: str) -> None:
        raise ValueError("bug")


# --- the processor (pure) ---------------------------------------------------------------------


class TestProcessor:
    """observe_metrics turns the observed log events into sink calls, and nothing else."""

    def test_observed_events_reach_the_active_sink(self) -> None:
        sink = RecordingSink()
        token = activate(sink)
        try:
            for event in (
                {"event": "call.started", "campaign": "acme"},
                {
                    "event": "call.finished",
                    "campaign": "acme",
                    "outcome": "connected",
                    "duration_s": 31.5,
                    "time_to_connect_s": 4.25,
                },
                {"event": "leg.ended", "campaign": "acme", "result": "no_answer"},
                {"event": "step1.sent", "campaign": "acme", "latency_s": 0.12},
                {"event": "step1.failed", "campaign": "acme", "latency_s": 2.0},
                {"event": "outcome.delivered"},
                {"event": "outcome.attempt_failed"},
                {"event": "outcome.dead"},
                {"event": "cluster.forwarded", "route": "/plivo/leg/answer", "status": 200},
                {"event": "cluster.forward_failed", "route": "/plivo/hangup"},
            ):
                assert observe_metrics(None, "info", dict(event)) == event
        finally:
            deactivate(token)
        assert sink.calls == [
            ("call_started", ("acme",)),
            ("call_finished", ("acme", "connected", 31.5, 4.25)),
            ("leg_ended", ("acme", "no_answer")),
            ("step1_done", ("acme", True, 0.12)),
            ("step1_done", ("acme", False, 2.0)),
            ("outcome_posted", (True,)),
            ("outcome_posted", (False,)),
            ("outcome_posted", (False,)),  # the final failed attempt is logged only as dead
            ("outcome_dead", ()),
            ("webhook_forwarded", ("/plivo/leg/answer", True)),
            ("webhook_forwarded", ("/plivo/hangup", False)),
        ]

    def test_other_events_and_missing_fields(self) -> None:
        """Unobserved events pass untouched; missing or odd fields never raise."""
        sink = RecordingSink()
        token = activate(sink)
        try:
            plain = {"event": "tier.started", "tier": 1}
            assert observe_metrics(None, "info", plain) is plain
            observe_metrics(
                None,
                "info",
                {
                    "event": "call.finished",
                    "outcome": "hung_up",
                    "duration_s": "soon",
                    "time_to_connect_s": None,
                },
            )
        finally:
            deactivate(token)
        assert sink.calls == [("call_finished", ("", "hung_up", None, None))]

    def test_no_active_sink_only_logs(self) -> None:
        assert active_sink() is None
        event = {"event": "call.started", "campaign": "acme"}
        assert observe_metrics(None, "info", event) == {"event": "call.started", "campaign": "acme"}

    def test_a_failing_handler_is_counted_not_raised(self) -> None:
        sink = BrokenSink()
        token = activate(sink)
        try:
            assert observe_metrics(None, "info", {"event": "call.started"})["event"] == (
                "call.started"
            )
        finally:
            deactivate(token)
        assert sink.calls == [("handler_failed", ("call.started",))]

    def test_below_level_observed_event_is_counted_then_dropped(self) -> None:
        sink = RecordingSink()
        token = activate(sink)
        try:
            with pytest.raises(structlog.DropEvent):
                observe_metrics(
                    None, "info", {"event": "leg.ended", "result": "busy", BELOW_LEVEL: True}
                )
        finally:
            deactivate(token)
        assert sink.calls == [("leg_ended", ("", "busy"))]


class TestConfiguredLogging:
    """configure_logging puts the processor in the chain; the level never hides metrics."""

    @pytest.mark.parametrize("log_stream", ["warning"], indirect=True)
    def test_observed_info_events_are_counted_but_not_written_at_warning(
        self, log_stream: io.BytesIO
    ) -> None:
        assert logs_observed()
        metrics = ServiceMetrics(["acme"])
        token = activate(metrics)
        log = structlog.get_logger()
        try:
            with structlog.contextvars.bound_contextvars(campaign="acme"):
                log.info("call.started", lead_phone="9495550000")
                log.info("tier.started", tier=1)  # not observed, below the level
                log.warning("step1.failed", reason="timeout", latency_s=2.0)
        finally:
            deactivate(token)
        assert (
            metrics.registry.get_sample_value(
                "orchestrator_calls_started_total", {"campaign": "acme"}
            )
            == 1
        )
        assert (
            metrics.registry.get_sample_value(
                "orchestrator_step1_duration_seconds_count",
                {"campaign": "acme", "result": "failed"},
            )
            == 1
        )
        lines = log_events(log_stream)
        assert [line["event"] for line in lines] == ["step1.failed"]
        assert BELOW_LEVEL not in lines[0]

    def test_info_level_writes_and_counts(self, log_stream: io.BytesIO) -> None:
        metrics = ServiceMetrics()
        token = activate(metrics)
        try:
            structlog.get_logger().info("leg.ended", result="accepted", campaign="acme")
        finally:
            deactivate(token)
        assert [e["event"] for e in log_events(log_stream)] == ["leg.ended"]
        assert (
            metrics.registry.get_sample_value(
                "orchestrator_legs_ended_total", {"campaign": "acme", "result": "accepted"}
            )
            == 1
        )


# --- the families over the in-memory harness --------------------------------------------------


def sample(metrics: ServiceMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    assert value is not None, (name, labels)
    return value


class TestHarnessCalls:
    """Calls run by the real actors move the counters; gauges follow the live calls."""

    async def test_connected_call(
        self, autojump_clock: trio.testing.MockClock, log_stream: io.BytesIO
    ) -> None:
        async with harness(
            {
                "8885551111": FakeAgent(answer_after_s=2.0),
                "9492651111": FakeAgent(answer_after_s=None),
            }
        ) as h:
            metrics = observed_metrics(h.orchestrator)
            token = activate(metrics)
            try:
                sup = await h.call(
                    FakeLead(),
                    agent(1, "8885551111", row=1),
                    agent(2, "9492651111", row=2),
                    plan_after_s=1.0,
                )
                await trio.sleep(3.25)  # both legs ringing since 2.0; agent 1 whispering
                live = sample(metrics, "orchestrator_live_calls", state="dialling")
                whispering = sample(metrics, "orchestrator_live_legs", state="whispering")
                ringing = sample(metrics, "orchestrator_live_legs", state="ringing")
                await h.settle(sup)
                await trio.testing.wait_all_tasks_blocked()
            finally:
                deactivate(token)
        assert (live, whispering, ringing) == (1, 1, 1)
        assert sample(metrics, "orchestrator_calls_started_total", campaign="acme") == 1
        assert (
            sample(
                metrics, "orchestrator_calls_finished_total", campaign="acme", outcome="connected"
            )
            == 1
        )
        assert (
            sample(metrics, "orchestrator_calls_finished_total", campaign="acme", outcome="hung_up")
            == 0
        )
        assert (
            sample(metrics, "orchestrator_legs_ended_total", campaign="acme", result="accepted")
            == 1
        )
        assert (
            sample(metrics, "orchestrator_legs_ended_total", campaign="acme", result="cancelled")
            == 1
        )
        assert sample(metrics, "orchestrator_time_to_connect_seconds_count", campaign="acme") == 1
        # the plan came at 1.0 s, agent 1 answered 2 s after being rung, pressed 1 a second later
        connect = sample(metrics, "orchestrator_time_to_connect_seconds_sum", campaign="acme")
        assert 3.0 <= connect <= 5.0
        assert (
            sample(
                metrics, "orchestrator_step1_duration_seconds_count", campaign="acme", result="ok"
            )
            == 1
        )
        assert sample(metrics, "orchestrator_outcome_posts_total", result="delivered") == 1
        assert sample(metrics, "orchestrator_live_calls", state="connected") == 0
        assert sample(metrics, "orchestrator_outbox_pending") == 0
        assert sample(metrics, "orchestrator_ready") == 1
        finished = [e for e in log_events(log_stream) if e["event"] == "call.finished"]
        assert finished[0]["time_to_connect_s"] == pytest.approx(connect)

    async def test_failed_step1_and_failed_outcome_posts(
        self, autojump_clock: trio.testing.MockClock, log_stream: io.BytesIO
    ) -> None:
        from tests.support.fakes import FakeCustomer

        customer = FakeCustomer(initial_delay_s=60.0, outcome_status=500)
        async with harness(customer=customer) as h:
            metrics = observed_metrics(h.orchestrator)
            token = activate(metrics)
            try:
                sup = await h.call(FakeLead(hangup_after_s=1.0), send_plan=False)
                await h.settle(sup)
                await trio.sleep(10)  # the outbox retries (2 s, then 4 s)
                await trio.testing.wait_all_tasks_blocked()
                pending = sample(metrics, "orchestrator_outbox_pending")
            finally:
                deactivate(token)
        assert (
            sample(metrics, "orchestrator_calls_finished_total", campaign="acme", outcome="hung_up")
            == 1
        )
        # the lead hung up while Step 1 was in flight: Step 1 ends without an answer
        step1_events = [
            e["event"] for e in log_events(log_stream) if e["event"].startswith("step1.")
        ]
        step1_count = sum(
            metrics.registry.get_sample_value(
                "orchestrator_step1_duration_seconds_count",
                {"campaign": "acme", "result": r},
            )
            or 0
            for r in ("ok", "failed")
        )
        assert step1_count == len(step1_events)
        assert sample(metrics, "orchestrator_outcome_posts_total", result="failed") >= 2
        assert sample(metrics, "orchestrator_outcome_posts_total", result="delivered") == 0
        assert pending == 1

    async def test_step1_timeout_is_a_failed_step1_with_its_latency(
        self, autojump_clock: trio.testing.MockClock, log_stream: io.BytesIO
    ) -> None:
        from tests.support.fakes import FakeCustomer

        customer = FakeCustomer(initial_delay_s=60.0)
        async with harness(customer=customer) as h:
            metrics = observed_metrics(h.orchestrator)
            token = activate(metrics)
            try:
                sup = await h.call(FakeLead(hangup_after_s=8.0), send_plan=False)
                await h.settle(sup)
            finally:
                deactivate(token)
        timeout = SETTINGS.routing.initial_post_timeout_s
        assert (
            sample(
                metrics,
                "orchestrator_step1_duration_seconds_count",
                campaign="acme",
                result="failed",
            )
            == 1
        )
        assert sample(
            metrics, "orchestrator_step1_duration_seconds_sum", campaign="acme", result="failed"
        ) == pytest.approx(timeout)


# --- /metrics and request timing (in memory) --------------------------------------------------


class TestEndpoint:
    """GET /metrics renders the service's own registry; every request is timed by kind."""

    async def test_scrape_parses_and_times_requests_by_kind(self, log_stream: io.BytesIO) -> None:
        async with harness() as h:
            metrics = observed_metrics(h.orchestrator)
            other = observed_metrics(h.orchestrator)  # a second service in the process
            app = create_app(
                h.orchestrator, SETTINGS, blueprints=[create_metrics_blueprint(metrics)]
            )
            client = app.test_client()
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/nowhere")).status_code == 404
            response = await client.get("/metrics")
            assert response.status_code == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            text = await response.get_data(as_text=True)
            openmetrics = await client.get(
                "/metrics", headers={"Accept": "application/openmetrics-text"}
            )
            assert openmetrics.headers["Content-Type"].startswith("application/openmetrics-text")
            assert (await openmetrics.get_data(as_text=True)).rstrip().endswith("# EOF")
        families = {f.name: f for f in text_string_to_metric_families(text)}
        kinds = {
            s.labels["kind"]: s.value
            for s in families["orchestrator_http_request_duration_seconds"].samples
            if s.name.endswith("_count")
        }
        assert kinds == {"health": 1, "unmatched": 1}
        statuses = {
            (s.labels["kind"], s.labels["status"])
            for s in families["orchestrator_http_responses"].samples
            if s.name.endswith("_total")
        }
        assert statuses == {("health", "2xx"), ("unmatched", "4xx")}
        assert "process_resident_memory_bytes" in families
        # every configured campaign's series exist at 0 before any call
        started = families["orchestrator_calls_started"].samples
        assert [(s.labels, s.value) for s in started if s.name.endswith("_total")] == [
            ({"campaign": "acme"}, 0.0)
        ]
        legs = {
            s.labels["result"]
            for s in families["orchestrator_legs_ended"].samples
            if s.name.endswith("_total")
        }
        assert legs == {r.value for r in LegResult}
        assert (
            other.registry.get_sample_value(
                "orchestrator_http_request_duration_seconds_count", {"kind": "health"}
            )
            is None
        )


class ThreadCheckingSource:
    """A LiveSource that records which thread reads it."""

    def __init__(self) -> None:
        self.readers: list[int] = []
        self.ready = True
        self.outcomes = type("Outbox", (), {"in_flight": {"g1", "g2"}})()

    def live_snapshot(self) -> list[dict[str, object]]:
        self.readers.append(threading.get_ident())
        return [{"state": "dialling", "legs": [{"state": "ringing"}, {"state": "declined"}]}]


class TestRender:
    """The exposition renders in a worker thread; the live state is read on the Trio thread."""

    async def test_live_sample_is_taken_on_the_trio_thread_and_pinned(self) -> None:
        source = ThreadCheckingSource()
        metrics = ServiceMetrics(["acme"])
        metrics.attach_live(LiveCollector(source))
        renderers: list[int] = []

        def encoder(registry: Any) -> bytes:
            renderers.append(threading.get_ident())
            return generate_latest(registry)

        text = (await render(metrics, encoder)).decode()
        assert source.readers == [threading.get_ident()]
        assert renderers != [threading.get_ident()]
        values = scrape_values(text)
        assert value(values, "orchestrator_live_calls", state="dialling") == 1
        assert value(values, "orchestrator_live_legs", state="ringing") == 1
        assert value(values, "orchestrator_outbox_pending") == 2

    def test_a_pinned_sample_belongs_to_its_collector(self) -> None:
        first, second = ThreadCheckingSource(), ThreadCheckingSource()
        one, two = LiveCollector(first), LiveCollector(second)

        def ready(collector: LiveCollector) -> list[float]:
            return [
                m.samples[0].value for m in collector.collect() if m.name == "orchestrator_ready"
            ]

        with one.pinned(LiveSample(ready=False)):
            assert ready(one) == [0]
            assert ready(two) == [1]
        assert (len(first.readers), len(second.readers)) == (0, 1)


class TestRouteKind:
    """route_kind maps endpoints to a bounded set of labels, never a path."""

    @pytest.mark.parametrize(
        ("endpoint", "kind"),
        [
            ("plivo.lead_answer", "lead_answer"),
            ("plivo.lead_answer_slash", "lead_answer"),
            ("plivo.leg_answer", "leg_answer"),
            ("plivo.leg_digits", "leg_digits"),
            ("plivo.ivr", "ivr"),
            ("plivo.leg_ring", "notification"),
            ("plivo.lead_hangup", "notification"),
            ("plivo.voicemail_done", "notification"),
            ("plivo.hold", "document"),
            ("plivo.something_new", "plivo"),
            ("step2.responsecollect", "step2"),
            ("referrals.register", "referrals"),
            ("app_level_view", "app"),
            (None, "unmatched"),
        ],
    )
    def test_kinds(self, endpoint: str | None, kind: str) -> None:
        assert route_kind(endpoint) == kind


# --- end to end over real HTTP ----------------------------------------------------------------

LEAD, QUITTER = "9495550000", "9495550001"
ANTHONY, ERIN = "8885551111", "9492651111"


def scrape_values(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.mark.e2e
class TestMetricsEndToEnd:
    """/metrics over real HTTP moves as calls run through the simulator."""

    @pytest.mark.parametrize("log_stream", ["warning"], indirect=True)
    async def test_counters_move_when_calls_run(
        self, tmp_path: Path, log_stream: io.BytesIO
    ) -> None:
        routing = replace(E2E_ROUTING, ring_timeout_s=60.0)
        async with open_e2e(tmp_path, routing=routing) as e2e:
            before = await e2e.http.get(e2e.base + "/metrics")
            assert before.status_code == 200
            start = scrape_values(before.text)

            e2e.customer.answer(LEAD, PlanReply(API_DOC_PLAN))  # Step 2 POST
            e2e.script_agent(ANTHONY, AgentScript(answer_after_s=2.0, press="1"))
            e2e.script_agent(ERIN, AgentScript(no_answer=True))
            e2e.place_call(LEAD, LeadScript(talk_s=3.0))
            step1, _ = await e2e.outcome_of(LEAD)
            await e2e.delivered_outbox_row(step1.tracking_guid)

            e2e.place_call(QUITTER, LeadScript(hangup_after_s=2.0))  # no plan: hangs up
            quit1, quit3 = await e2e.outcome_of(QUITTER)
            assert quit3.form["Agent1ID"] == "999999"
            await e2e.delivered_outbox_row(quit1.tracking_guid)
            await e2e.assert_quiet()

            after = await e2e.http.get(e2e.base + "/metrics")
            end = scrape_values(after.text)

        def moved(name: str, **labels: str) -> float:
            return value(end, name, **labels) - value(start, name, **labels)

        assert value(start, "orchestrator_calls_started_total", campaign="acme") == 0
        assert moved("orchestrator_calls_started_total", campaign="acme") == 2
        assert (
            moved(
                "orchestrator_calls_finished_total",
                campaign="acme",
                outcome=OutcomeKind.CONNECTED.value,
            )
            == 1
        )
        assert (
            moved(
                "orchestrator_calls_finished_total",
                campaign="acme",
                outcome=OutcomeKind.HUNG_UP.value,
            )
            == 1
        )
        assert moved("orchestrator_legs_ended_total", campaign="acme", result="accepted") == 1
        assert moved("orchestrator_legs_ended_total", campaign="acme", result="cancelled") == 1
        assert moved("orchestrator_time_to_connect_seconds_count", campaign="acme") == 1
        assert moved("orchestrator_step1_duration_seconds_count", campaign="acme", result="ok") >= 2
        assert moved("orchestrator_outcome_posts_total", result="delivered") == 2
        for kind in ("lead_answer", "leg_answer", "leg_digits", "notification", "step2"):
            assert moved("orchestrator_http_request_duration_seconds_count", kind=kind) >= 1, kind
        assert value(end, "orchestrator_live_calls", state="dialling") == 0
        assert value(end, "orchestrator_live_legs", state="ringing") == 0
        assert value(end, "orchestrator_outbox_pending") == 0
        assert value(end, "orchestrator_ready") == 1
        # the log level was "warning": the counted info events were not written
        assert not [e for e in log_events(log_stream) if e["event"] == "call.started"]


# --- the Grafana dashboard --------------------------------------------------------------------

METRIC_RE = re.compile(r"\b((?:orchestrator|process)_[a-z0-9_]+)\b")


def exposed_names(text: str) -> set[str]:
    """Every series name /metrics can expose (empty families included)."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "gauge": ("",),
        "summary": ("_count", "_sum", ""),
    }
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + s for s in suffixes.get(family.type, ("",)))
        names.update(s.name for s in family.samples)
    return names


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return exprs


class TestDashboard:
    """dashboards/orchestrator.json is a usable Grafana dashboard over our metrics."""

    async def test_every_expr_uses_metrics_that_metrics_exposes(self) -> None:
        dashboard = json.loads(DASHBOARD.read_text())
        async with harness() as h:
            app = create_app(
                h.orchestrator,
                SETTINGS,
                blueprints=[create_metrics_blueprint(observed_metrics(h.orchestrator))],
            )
            text = await (await app.test_client().get("/metrics")).get_data(as_text=True)
        exposed = exposed_names(text)
        exprs = dashboard_exprs(dashboard)
        assert exprs
        used = {name for expr in exprs for name in METRIC_RE.findall(expr)}
        assert used - exposed == set()
        # every one of our families has a panel
        ours = {
            f.name
            for f in text_string_to_metric_families(text)
            if f.name.startswith("orchestrator_")
        }
        assert {f for f in ours if not any(n.startswith(f) for n in used)} == set()

    def test_structure(self) -> None:
        dashboard = json.loads(DASHBOARD.read_text())
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        panels = [p for p in dashboard["panels"] if p["type"] != "row"]
        assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
        for panel in panels:
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                expr = target["expr"]
                assert expr.count("(") == expr.count(")"), expr
                assert expr.count("{") == expr.count("}"), expr
                if "histogram_quantile" in expr:
                    assert "_bucket{" in expr, expr
                    assert re.search(r"by \(le\b", expr), expr
                if "_total" in expr:  # counters only ever through rate/increase
                    assert "rate(" in expr or "increase(" in expr, expr
        quantiles = {
            q
            for p in panels
            for t in p["targets"]
            for q in re.findall(r"histogram_quantile\((0\.\d+)", t["expr"])
        }
        assert {"0.5", "0.99"} <= quantiles


def test_handlers_cover_the_documented_events() -> None:
    """The events the processor observes are the ones the actors emit (names pinned)."""
    assert set(HANDLERS) == {
        "call.started",
        "call.finished",
        "leg.ended",
        "step1.sent",
        "step1.failed",
        "outcome.delivered",
        "outcome.attempt_failed",
        "outcome.dead",
        "cluster.forwarded",
        "cluster.forward_failed",
    }
