"""The load benchmark (``bench/load_bench.py``): its pure parts, the simulator's timing hooks it
reads, its trivial-endpoint load generator, and a 5-call smoke run of the whole script."""

from __future__ import annotations

import json
import sys
import tomllib
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from quart_trio import QuartTrio

from bench.load_bench import outcome_kind
from bench.load_figures import (
    accept_to_cancel,
    digits10,
    leg_uuids,
    percentile,
    stats,
    webhook_latencies,
    webhooks_by_route,
)
from bench.load_http import hammer, parse_response_head
from bench.load_procs import REPO_ROOT, service_config
from bench.load_report import REQUIRED_FIGURES, format_report, problems
from bench.load_scenario import (
    CAMPAIGN_NUMBER,
    PLANTYPE,
    Role,
    agent_scripts,
    build_calls,
    plan_fields,
)
from orchestrator.config import ServerSettings, parse_settings
from orchestrator.plan_parser import parse_routing_plan
from server.http import serve_http
from simulator import EventKind, SimulatorConfig
from simulator.scripts import agent_script_from_dict
from simulator.server import RunningSimulator, serve_app, start_simulator
from simulator.testing import FakeApplication, Reply

TOKEN = "load-bench-test-token"
DEADLINE_S = 10.0


def _event(
    kind: str, at: float, *, number: str = "", call_uuid: str = "", **data: Any
) -> dict[str, Any]:
    return {
        "seq": 0,
        "at": at,
        "kind": kind,
        "call_uuid": call_uuid,
        "number": number,
        "data": data,
    }


class TestScenario:
    """Each call has its own numbers, one winner, and a plan the service accepts."""

    def test_roles_phones_and_rotation(self) -> None:
        """Every phone is unique, each call has exactly one winner, the winner's row rotates."""
        calls = build_calls(6, agents=3)
        phones = [a.phone for c in calls for a in c.agents] + [c.lead_phone for c in calls]
        assert len(set(phones)) == len(phones)
        assert all(len(p) == 10 and p.isdigit() for p in phones)
        assert all(sum(a.role is Role.WINNER for a in c.agents) == 1 for c in calls)
        assert [c.winner.row for c in calls[:3]] == [1, 2, 3]
        assert {a.role for a in build_calls(1, agents=2)[0].agents} == {Role.WINNER, Role.RINGER}
        with pytest.raises(ValueError, match="2 or 3"):
            build_calls(1, agents=4)

    def test_plan_passes_the_real_step2_parser(self) -> None:
        """The plan put in the Step 1 answer is valid for the service (e-mails included)."""
        call = build_calls(3)[2]
        guid = str(uuid.uuid4())
        plan = parse_routing_plan(plan_fields(call, guid))
        assert plan.tracking_guid == guid
        assert [t.number for t in plan.tiers] == [1]
        assert {a.agent_id for a in plan.agents} == {a.agent_id for a in call.agents}
        assert all(a.press1 for a in plan.agents)

    def test_agent_scripts_parse_and_match_roles(self) -> None:
        call = build_calls(1)[0]
        scripts = {
            phone: agent_script_from_dict(s) for phone, s in agent_scripts(call, talk_s=3.0).items()
        }
        by_role = {a.role: scripts[a.phone] for a in call.agents}
        assert by_role[Role.WINNER].press == "1"
        assert by_role[Role.WINNER].talk_s == 3.0
        assert by_role[Role.RINGER].no_answer
        assert by_role[Role.SILENT].press is None

    def test_outcome_kinds(self) -> None:
        call = build_calls(1)[0]
        assert outcome_kind(call, str(call.winner.agent_id)) == "winner"
        assert outcome_kind(call, "0") == "voicemail"
        assert outcome_kind(call, "999999") == "lead hung up"
        assert outcome_kind(call, str(call.losers[0].agent_id)) == "another agent"


class TestFigures:
    """Percentiles and the latencies read out of the simulator's event log."""

    def test_percentile_interpolates(self) -> None:
        assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
        assert percentile([1.0, 2.0], 100) == 2.0
        assert percentile([7.0], 99) == 7.0
        with pytest.raises(ValueError, match="no values"):
            percentile([], 50)
        assert stats([]).as_dict() == {"n": 0, "p50": None, "p99": None, "min": None, "max": None}
        assert stats([1.0, 3.0]).as_dict()["max"] == 3.0

    def test_answer_latency_only_from_the_lead_answer_url(self) -> None:
        events = [
            _event("webhook.sent", 1.0, url="http://s:1/plivo/answer", elapsed_ms=4.0),
            _event("webhook.failed", 1.0, url="http://s:1/plivo/answer", elapsed_ms=90.0),
            _event("webhook.sent", 1.0, url="http://s:1/plivo/leg/answer?call=x", elapsed_ms=7.0),
            _event("call.ended", 1.0, url="http://s:1/plivo/answer"),
        ]
        assert webhook_latencies(events) == [4.0, 90.0]
        routes = webhooks_by_route(
            [*events, _event("webhook.sent", 1.0, url="http://c:2/x", elapsed_ms=1.0)], "http://s:1"
        )
        assert routes == {"/plivo/answer": [4.0, 90.0], "/plivo/leg/answer": [7.0]}

    def test_accept_to_cancel(self) -> None:
        """Latency per loser in real ms; negative when the cancel beat the press-1 answer;
        a loser that declined before the accept is not a zombie; one that outlived it is."""
        one, two, three = build_calls(3, agents=3)
        scale = 0.02
        uuids: dict[str, str] = {}
        placed = []
        for call in (one, two, three):
            for agent in call.agents:
                request_uuid, call_uuid = f"r-{agent.phone}", f"c-{agent.phone}"
                placed.append(
                    _event(
                        "call.placed",
                        0.1,
                        number="1" + agent.phone,
                        call_uuid=call_uuid,
                        direction="outbound",
                        request_uuid=request_uuid,
                    )
                )
                uuids[agent.phone] = request_uuid if agent.role is Role.RINGER else call_uuid
        placed.append(
            _event(
                "call.placed",
                0.0,
                number="1" + one.lead_phone,
                call_uuid="lead",
                direction="inbound",
            )
        )
        mapping = leg_uuids(placed)
        assert "lead" not in mapping
        assert mapping[f"r-{one.winner.phone}"] == one.winner.phone

        digits = "http://s:1/plivo/leg/digits?call=g&leg=l"
        webhooks = [
            _event("webhook.sent", 10.0, number="1" + one.winner.phone, url=digits),
            _event("webhook.sent", 20.0, number="1" + two.winner.phone, url=digits),
        ]
        ringer1, silent1 = (
            next(a for a in one.agents if a.role is r) for r in (Role.RINGER, Role.SILENT)
        )
        ringer2, silent2 = (
            next(a for a in two.agents if a.role is r) for r in (Role.RINGER, Role.SILENT)
        )
        account = "/v1/Account/MA00/"
        api = [
            _event(
                "api.request",
                10.6,
                method="DELETE",
                received_at=10.5,
                path=f"{account}Request/{uuids[ringer1.phone]}/",
            ),
            _event(
                "api.request",
                9.9,
                method="DELETE",
                received_at=9.9,
                path=f"{account}Call/{uuids[silent1.phone]}/",
            ),
            _event(
                "api.request",
                9.0,
                method="POST",
                received_at=9.0,
                path=f"{account}Call/{uuids[ringer2.phone]}/",
            ),  # not a DELETE
        ]
        ended = [
            _event("call.ended", 15.0, number="1" + silent2.phone, cause_name="Normal Hangup"),
            _event("call.ended", 19.0, number="1" + ringer2.phone, cause_name="No Answer"),
        ]
        figures = accept_to_cancel([one, two, three], webhooks, api, ended, mapping, scale)
        assert figures.latencies_ms == pytest.approx([10.0, -2.0])
        assert figures.declined_first == 2  # both of call two's losers ended before t=20
        assert figures.uncancelled == []
        assert figures.no_accept == 1  # call three: its winner never pressed
        late = [_event("call.ended", 25.0, number="1" + ringer2.phone, cause_name="No Answer")]
        figures = accept_to_cancel([two], webhooks, [], late, mapping, scale)
        assert figures.uncancelled == [(silent2.phone, "still live"), (ringer2.phone, "No Answer")]
        undialled = {u: p for u, p in mapping.items() if p != silent2.phone}
        figures = accept_to_cancel([two], webhooks, [], late, undialled, scale)
        assert figures.uncancelled == [(ringer2.phone, "No Answer")]
        assert figures.never_dialled == 1
        assert digits10("+1 (415) 555-0111") == "4155550111"


class TestConfigAndReport:
    """The generated service config is valid; the report names every figure and problem."""

    def test_service_config_parses(self, tmp_path: Path) -> None:
        toml = service_config(
            port=8123,
            simulator_url="http://127.0.0.1:9000",
            customer_url="http://127.0.0.1:9001",
            db_path=tmp_path / "b.db",
            ring_timeout_s=250.0,
            campaign_number=CAMPAIGN_NUMBER,
            plantype=PLANTYPE,
        )
        settings = parse_settings(tomllib.loads(toml), {})
        assert settings.carrier.kind == "plivo"
        assert settings.carrier.api_url == "http://127.0.0.1:9000"
        assert settings.carrier.verify_signatures
        assert settings.log.level == "warning"
        assert settings.routing.ring_timeout_s == 250.0
        assert settings.campaigns[0].initial_post_url == "http://127.0.0.1:9001/initial"

    def test_problems_and_report(self) -> None:
        latency = {"n": 2, "p50": 1.0, "p99": 2.0, "min": 1.0, "max": 2.0}
        fig: dict[str, Any] = {
            "command": "python -m bench.load_bench",
            "machine": {
                "cores": 2,
                "cores_usable": 2,
                "cpu_model": "x",
                "python": "3.11",
                "os": "L",
            },
            "setup": {
                "calls": 2,
                "rate": 1.0,
                "time_scale": 0.02,
                "agents_per_call": 3,
                "warmup_calls": 0,
                "service_log_level": "warning",
                "trivial_connections": 4,
            },
            "calls_placed": 2,
            "calls_completed": 2,
            "calls_connected": 2,
            "outcome_kinds": {"winner": 2},
            "calls_place_failures": 0,
            "timed_out": False,
            "duplicate_outcomes": 0,
            "calls_per_s": 1.0,
            "placed_per_s": 1.0,
            "answer_latency_ms": latency,
            "accept_to_cancel_ms": latency,
            "service_cpu_ms_per_call": 1.0,
            "service_one_core_calls_per_s": 1000.0,
            "simulator_cpu_ms_per_call": 1.0,
            "bench_cpu_ms_per_call": 1.0,
            "service_rss_mib": 1.0,
            "service_peak_rss_mib": 1.0,
            "legs_left_live": 0,
            "calls_left_live": 0,
            "losers_uncancelled": 0,
            "losers_uncancelled_causes": {},
            "losers_declined_first": 0,
            "flow_http_requests": 10,
            "flow_http_per_s": 5.0,
            "flow_http_per_cpu_s": 50.0,
            "trivial_http_per_s": 100.0,
            "trivial_http_per_cpu_s": 100.0,
            "trivial_latency_ms": latency,
            "http_rate_ratio": 0.05,
            "http_cpu_ratio": 0.5,
            "service_log_warnings": 0,
            "webhook_latency_ms": {"/plivo/answer": latency},
        }
        assert problems(fig) == []
        fig["problems"] = []
        text = format_report(fig)
        assert "result: OK" in text
        assert "p99 2.00 ms" in text
        bad = {**fig, "legs_left_live": 1, "calls_completed": 1, "calls_connected": 1}
        found = problems(bad)
        assert any("still live" in p for p in found)
        assert any("no outcome" in p for p in found)
        assert "result: FAILED" in format_report({**bad, "problems": found})


class TestSimulatorTimingHooks:
    """The simulator records how long each webhook waited and when each REST request arrived."""

    async def test_webhook_elapsed_and_api_received_at(self, nursery: trio.Nursery) -> None:
        fake = FakeApplication(auth_token=TOKEN)
        fake.base_url = await nursery.start(serve_app, fake.app, "127.0.0.1:0")
        fake.reply("/answer", Reply('<Response><Wait length="600"/></Response>', delay_s=0.05))
        config = SimulatorConfig(
            bind="127.0.0.1:0",
            auth_token=TOKEN,
            answer_url=fake.url("/answer"),
            hangup_url=fake.url("/hangup"),
            time_scale=0.01,
            cps=0,
        )
        running: RunningSimulator = await nursery.start(start_simulator, config)
        sim = running.simulator
        call_uuid = sim.place_inbound("14155550199", "18005550100")
        with trio.fail_after(DEADLINE_S):
            await sim.wait_for(
                lambda: bool(sim.log.events(EventKind.WEBHOOK_SENT, call_uuid=call_uuid))
            )
        (sent,) = sim.log.events(EventKind.WEBHOOK_SENT, call_uuid=call_uuid)
        elapsed = sent.data["elapsed_ms"]
        assert isinstance(elapsed, float)
        assert 50.0 <= elapsed < DEADLINE_S * 1000  # the application answered after 50 ms
        auth = (config.auth_id, TOKEN)
        async with httpx.AsyncClient(base_url=running.url, auth=auth, timeout=5) as http:
            response = await http.delete(f"/v1/Account/{config.auth_id}/Call/{call_uuid}/")
            assert response.status_code == 204
        (request,) = sim.log.events(EventKind.API_REQUEST)
        received = request.data["received_at"]
        assert isinstance(received, float)
        assert 0 < received <= request.at
        assert request.data["method"] == "DELETE"


class TestHammer:
    """The trivial-endpoint load generator counts real 200 answers over keep-alive."""

    def test_parse_response_head(self) -> None:
        assert parse_response_head(b"HTTP/1.1 200 \r\ncontent-length: 16") == (200, 16)
        with pytest.raises(ValueError, match="Content-Length"):
            parse_response_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked")
        with pytest.raises(ValueError, match="HTTP/1"):
            parse_response_head(b"SSH-2.0")

    async def test_hammer_counts_answers(self, nursery: trio.Nursery) -> None:
        app = QuartTrio("trivial")
        hits: list[int] = []

        @app.get("/healthz")
        async def healthz() -> dict[str, str]:
            hits.append(1)
            return {"status": "ok"}

        stop = trio.Event()
        binds: list[str] = await nursery.start(
            partial(
                serve_http,
                app,
                ServerSettings(bind="127.0.0.1:0", drain_s=1.0),
                shutdown_event=stop,
            )
        )
        host, port = binds[0].removeprefix("http://").split(":")
        result = await hammer(host, int(port), "/healthz", connections=4, duration_s=0.3)
        missing = await hammer(host, int(port), "/nope", connections=1, duration_s=0.1)
        stop.set()
        assert result.errors == 0
        assert result.requests == len(hits) > 0
        assert result.per_s > 0
        assert len(result.latencies_ms) == result.requests
        assert missing.requests == 0
        assert missing.errors > 0


@pytest.mark.e2e
class TestSmokeRun:
    """The whole benchmark, 5 calls: three processes, every figure reported, no leg left live."""

    async def test_five_calls(self) -> None:
        argv = [
            sys.executable,
            "-m",
            "bench.load_bench",
            "--calls",
            "5",
            "--rate",
            "10",
            "--warmup",
            "1",
            "--trivial-s",
            "0.5",
            "--connections",
            "4",
            "--json",
        ]
        with trio.fail_after(120):
            done = await trio.run_process(
                argv, cwd=REPO_ROOT, capture_stdout=True, capture_stderr=True, check=False
            )
        output = done.stdout.decode()
        assert done.returncode in (0, 1), done.stderr.decode()[-2000:]
        fig = json.loads(output.strip().splitlines()[-1])
        missing = [k for k in REQUIRED_FIGURES if fig.get(k) is None]
        assert missing == []
        assert fig["legs_left_live"] == 0
        assert fig["calls_placed"] == 5
        assert fig["calls_completed"] == 5
        assert fig["answer_latency_ms"]["n"] == 5
        assert fig["answer_latency_ms"]["p50"] > 0
        assert fig["service_cpu_ms_per_call"] > 0
        assert fig["service_rss_mib"] > 10
        assert fig["trivial_http_per_s"] > 0
        assert fig["machine"]["cores"] >= 1
        assert fig["command"].startswith("python -m bench.load_bench --calls 5")
