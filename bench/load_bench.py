"""Load benchmark: N calls at a target rate through the whole service, carrier simulated in a
separate process (README "Performance").

Three processes, all on 127.0.0.1:

- the service: ``python -m orchestrator serve --config <temp>/service.toml`` with
  ``carrier.kind = "plivo"`` pointed at the simulator process, SQLite in a temp dir, signature
  checks on, log level ``warning`` (JSON lines to a file: realistic but quiet);
- the simulator: ``python -m simulator`` (log level ``warning``), scripted over its
  ``/sim/`` control API;
- this process: the customer endpoint (Step 1 answers with the plan in the body: synchronous
  mode, so the customer is out of the measurement), the load driver, and the analysis.

Each call is one tier of 2-3 agents (``bench.load_scenario``): one presses 1, one never answers,
(with 3) one answers and stays silent. After the call phase, ``GET /healthz`` of the same
service is hammered for a few seconds to compare the call flow's HTTP rate with a trivial one.

    .venv/bin/python -m bench.load_bench [--calls 200] [--rate 20] [--time-scale 0.02] [--json]

Exit status 0 when every call got the right outcome and no leg was left live, 1 when not,
2 when the service or the simulator failed to start or died during the run.
"""

from __future__ import annotations

import argparse
import io
import json
import pstats
import shlex
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import trio

from bench.load_customer import BenchCustomer
from bench.load_figures import (
    accept_to_cancel,
    leg_uuids,
    stats,
    webhook_latencies,
    webhooks_by_route,
)
from bench.load_http import HammerResult, hammer
from bench.load_procs import (
    Child,
    machine_facts,
    service_config,
    start_service,
    start_simulator,
)
from bench.load_report import format_report, problems
from bench.load_scenario import CAMPAIGN_NUMBER, PLANTYPE, BenchCall, agent_scripts, build_calls
from orchestrator.config import ServerSettings
from orchestrator.logs import configure_logging
from server.http import serve_http

SERVICE_LOG_LEVEL = "warning"
LEAD_PATIENCE_S = 60.0  # real seconds a lead waits before hanging up: only a safety net
SETTLE_S = 2.0  # real seconds the simulator may take to end the last legs after the outcomes
_MIB = 1024.0
MAX_CALLS = 20_000  # the simulator keeps 200k events: about 40 per call
MAX_RATE = 1000.0


@dataclass(frozen=True, slots=True)
class Options:
    calls: int = 200
    rate: float = 20.0
    time_scale: float = 0.02
    agents: int = 3
    talk_s: float = 5.0
    warmup: int = 2
    connections: int = 32
    trivial_s: float = 3.0
    json: bool = False
    logs_dir: str = ""
    profile: bool = False


_DEFAULTS = Options()


def parse_options(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load_bench", description=__doc__.splitlines()[0] if __doc__ else ""
    )
    parser.add_argument("--calls", type=int, default=_DEFAULTS.calls, help="calls measured")
    parser.add_argument(
        "--rate", type=float, default=_DEFAULTS.rate, help="calls placed per second"
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=_DEFAULTS.time_scale,
        help="simulator real seconds per simulated second",
    )
    parser.add_argument(
        "--agents",
        type=int,
        choices=(2, 3),
        default=_DEFAULTS.agents,
        help="agents per call (one tier)",
    )
    parser.add_argument(
        "--talk-s", type=float, default=_DEFAULTS.talk_s, help="simulated seconds the winner talks"
    )
    parser.add_argument(
        "--warmup", type=int, default=_DEFAULTS.warmup, help="calls run first and not counted"
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=_DEFAULTS.connections,
        help="connections hammering GET /healthz",
    )
    parser.add_argument(
        "--trivial-s", type=float, default=_DEFAULTS.trivial_s, help="seconds of GET /healthz"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object of figures")
    parser.add_argument(
        "--logs-dir",
        default="",
        help="keep the service/simulator logs, config and database here "
        "(default: a temp dir, removed)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the service under cProfile and print its top functions "
        "(slows it down: a diagnosis, not a measurement)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.calls <= MAX_CALLS or not 0 < args.rate <= MAX_RATE:
        parser.error(f"--calls 1..{MAX_CALLS} and --rate in (0, {MAX_RATE}] please")
    if args.time_scale <= 0 or not 0 <= args.warmup <= 100:
        parser.error("--time-scale > 0 and --warmup 0..100 please")
    if args.connections < 1 or args.trivial_s <= 0 or args.talk_s < 0:
        parser.error("--connections >= 1, --trivial-s > 0 and --talk-s >= 0 please")
    return Options(
        args.calls,
        args.rate,
        args.time_scale,
        args.agents,
        args.talk_s,
        args.warmup,
        args.connections,
        args.trivial_s,
        args.json,
        args.logs_dir,
        args.profile,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def ring_timeout_s(time_scale: float) -> float:
    """Simulated ring timeout: at least 5 real seconds, so a leg the service forgot to cancel
    is still ringing when the run ends (and is counted as left live)."""
    return max(60.0, 5.0 / time_scale)


# --- the call phase --------------------------------------------------------------------------


@dataclass
class Driven:
    placed_at: list[float] = field(default_factory=list)
    failures: int = 0  # /sim/inbound did not answer 201
    timed_out: bool = False  # the deadline passed before every outcome arrived


async def _place(
    http: httpx.AsyncClient, call: BenchCall, lead_script: dict[str, float], driven: Driven
) -> None:
    response = await http.post(
        "/sim/inbound",
        json={
            "from": "1" + call.lead_phone,
            "to": "1" + CAMPAIGN_NUMBER,
            "lead": lead_script,
        },
    )
    if response.status_code != 201:
        driven.failures += 1


async def drive(
    http: httpx.AsyncClient,
    calls: list[BenchCall],
    rate: float,
    time_scale: float,
    driven: Driven,
) -> None:
    """Place ``calls`` at ``rate`` per second (each POST in its own task, so a slow answer
    does not delay the schedule)."""
    # the lead stays on the line until the call ends (a real-time safety net, not a script)
    lead_script = {"hangup_after_s": LEAD_PATIENCE_S / time_scale}
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for i, call in enumerate(calls):
            await trio.sleep_until(start + i / rate)
            driven.placed_at.append(trio.current_time())
            nursery.start_soon(_place, http, call, lead_script, driven)


async def _events(http: httpx.AsyncClient, kind: str, since: int) -> list[dict[str, Any]]:
    response = await http.get("/sim/events", params={"kind": kind, "since": since})
    response.raise_for_status()
    events: list[dict[str, Any]] = response.json()["events"]
    return events


async def _last_seq(http: httpx.AsyncClient) -> int:
    response = await http.get("/sim/events", params={"kind": "call.ended", "since": 1 << 62})
    response.raise_for_status()
    seq: int = response.json()["last_seq"]
    return seq


async def _settle(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Wait (briefly) for the simulator to go idle; return what is still live."""
    await http.post("/sim/wait-idle", params={"timeout": SETTLE_S}, timeout=SETTLE_S + 5)
    live: list[dict[str, Any]] = (await http.get("/sim/state")).json()["live_calls"]
    return live


async def _cancel_on_exit(child: Child, scope: trio.CancelScope) -> None:
    await child.process.wait()
    scope.cancel()


async def _run_calls(
    http: httpx.AsyncClient,
    customer: BenchCustomer,
    calls: list[BenchCall],
    rate: float,
    time_scale: float,
    deadline_s: float,
    children: Sequence[Child],
) -> Driven:
    """Place ``calls`` and wait for their outcomes, until ``deadline_s`` at most.

    Raises:
        RuntimeError: one of ``children`` exited meanwhile (noticed at once).
    """
    driven = Driven()
    with trio.move_on_after(deadline_s) as scope:
        async with trio.open_nursery() as nursery:
            for child in children:
                nursery.start_soon(_cancel_on_exit, child, scope)
            await drive(http, calls, rate, time_scale, driven)
            await customer.wait_outcomes({c.index for c in calls})
            nursery.cancel_scope.cancel()
    for child in children:
        child.check_alive()
    driven.timed_out = scope.cancelled_caught
    return driven


# --- the whole run ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallPhase:
    """What the measured calls left behind: timings, CPU, memory and the simulator's events."""

    driven: Driven
    started: float  # trio clock when the first measured call was placed
    live: list[dict[str, Any]]  # simulator calls still live after the settle time
    cpu_s: tuple[float, float, float]  # service, simulator, this process
    rss_kib: int
    peak_rss_kib: int
    events: dict[str, list[dict[str, Any]]]  # by kind, since the phase started


async def run_call_phase(
    opts: Options,
    customer: BenchCustomer,
    calls: list[BenchCall],
    http: httpx.AsyncClient,
    service: Child,
    simulator: Child,
) -> CallPhase:
    """Warm up, then place the measured calls and wait for their outcomes and the simulator."""
    warm, measured = calls[: opts.warmup], calls[opts.warmup :]
    deadline_s = opts.calls / opts.rate + LEAD_PATIENCE_S + 30.0
    if warm:
        await _run_calls(
            http, customer, warm, opts.rate, opts.time_scale, deadline_s, (service, simulator)
        )
        await _settle(http)
    since = await _last_seq(http)
    cpu0 = service.cpu_s(), simulator.cpu_s(), time.process_time()
    started = trio.current_time()
    driven = await _run_calls(
        http, customer, measured, opts.rate, opts.time_scale, deadline_s, (service, simulator)
    )
    live = await _settle(http)
    for child in (service, simulator):
        child.check_alive()
    cpu1 = service.cpu_s(), simulator.cpu_s(), time.process_time()
    rss, peak = service.rss_kib(), service.peak_rss_kib()
    events = {
        kind: await _events(http, kind, since)
        for kind in (
            "webhook.sent",
            "webhook.failed",
            "api.request",
            "call.placed",
            "call.queued",
            "call.ended",
        )
    }
    return CallPhase(
        driven,
        started,
        live,
        (cpu1[0] - cpu0[0], cpu1[1] - cpu0[1], cpu1[2] - cpu0[2]),
        rss,
        peak,
        events,
    )


async def run_trivial_phase(
    opts: Options, service: Child, service_url: str
) -> tuple[HammerResult, float]:
    """Hammer ``GET /healthz`` of the (now idle) service; return the result and its CPU s."""
    host, port = service_url.removeprefix("http://").split(":")
    cpu0 = service.cpu_s()
    result = await hammer(
        host, int(port), "/healthz", connections=opts.connections, duration_s=opts.trivial_s
    )
    return result, service.cpu_s() - cpu0


def figures(
    opts: Options,
    measured: list[BenchCall],
    customer: BenchCustomer,
    phase: CallPhase,
    trivial: HammerResult,
    trivial_cpu_s: float,
    service_url: str,
) -> dict[str, Any]:
    """Every figure of the run (the JSON object printed with ``--json``)."""
    ev = phase.events
    webhooks = ev["webhook.sent"] + ev["webhook.failed"]
    outcomes = [customer.outcomes[c.index] for c in measured if c.index in customer.outcomes]
    kinds = Counter(
        outcome_kind(c, customer.outcomes[c.index].agent1_id)
        for c in measured
        if c.index in customer.outcomes
    )
    outcome_times = sorted(o.at for o in outcomes)
    last = outcome_times[-1] if outcome_times else phase.started
    flow_s = max(last - phase.started, 1e-9)
    cancels = accept_to_cancel(
        measured,
        webhooks,
        ev["api.request"],
        ev["call.ended"],
        leg_uuids(ev["call.placed"] + ev["call.queued"]),
        opts.time_scale,
    )
    routes = webhooks_by_route(webhooks, service_url)
    flow_requests = sum(len(v) for v in routes.values())
    service_cpu, simulator_cpu, bench_cpu = phase.cpu_s
    flow_per_cpu = flow_requests / service_cpu if service_cpu > 0 else 0.0
    trivial_per_cpu = trivial.requests / trivial_cpu_s if trivial_cpu_s > 0 else 0.0

    def per_call_ms(seconds: float) -> float:
        return round(seconds * 1000 / max(len(measured), 1), 3)

    def ratio(a: float, b: float) -> float:
        return round(a / b, 4) if b > 0 else 0.0

    return {
        "setup": {
            "calls": opts.calls,
            "rate": opts.rate,
            "time_scale": opts.time_scale,
            "agents_per_call": opts.agents,
            "talk_s": opts.talk_s,
            "warmup_calls": opts.warmup,
            "service_log_level": SERVICE_LOG_LEVEL,
            "store": "sqlite (temp dir)",
            "ring_timeout_s": ring_timeout_s(opts.time_scale),
            "trivial_connections": opts.connections,
            "trivial_s": opts.trivial_s,
        },
        "calls_placed": len(measured),
        "calls_place_failures": phase.driven.failures,
        "timed_out": phase.driven.timed_out,
        "calls_completed": len(outcomes),
        "calls_connected": kinds["winner"],
        "outcome_kinds": dict(kinds),
        "duplicate_outcomes": customer.duplicate_outcomes,
        "placed_per_s": _rate(phase.driven.placed_at),
        "calls_per_s": _rate(outcome_times),
        "answer_latency_ms": stats(webhook_latencies(webhooks)).as_dict(),
        "accept_to_cancel_ms": stats(cancels.latencies_ms).as_dict(),
        "losers_uncancelled": len(cancels.uncancelled),
        "losers_uncancelled_causes": dict(Counter(cause for _, cause in cancels.uncancelled)),
        "losers_declined_first": cancels.declined_first,
        "losers_never_dialled": cancels.never_dialled,
        "calls_without_accept": cancels.no_accept,
        "service_cpu_ms_per_call": per_call_ms(service_cpu),
        # the call rate at which the service would use one whole core (it runs on one)
        "service_one_core_calls_per_s": round(len(measured) / service_cpu, 1)
        if service_cpu > 0
        else 0.0,
        "simulator_cpu_ms_per_call": per_call_ms(simulator_cpu),
        "bench_cpu_ms_per_call": per_call_ms(bench_cpu),
        "service_rss_mib": round(phase.rss_kib / _MIB, 1),
        "service_peak_rss_mib": round(phase.peak_rss_kib / _MIB, 1),
        "legs_left_live": sum(1 for c in phase.live if c.get("direction") == "outbound"),
        "calls_left_live": len(phase.live),
        "flow_s": round(flow_s, 3),
        "flow_http_requests": flow_requests,
        "flow_http_per_s": round(flow_requests / flow_s, 1),
        "flow_http_per_cpu_s": round(flow_per_cpu, 1),
        "trivial_http_requests": trivial.requests,
        "trivial_errors": trivial.errors,
        "trivial_http_per_s": round(trivial.per_s, 1),
        "trivial_http_per_cpu_s": round(trivial_per_cpu, 1),
        "trivial_latency_ms": stats(trivial.latencies_ms).as_dict(),
        "http_rate_ratio": ratio(flow_requests / flow_s, trivial.per_s),
        "http_cpu_ratio": ratio(flow_per_cpu, trivial_per_cpu),
        "webhook_latency_ms": {k: stats(v).as_dict() for k, v in routes.items()},
    }


def outcome_kind(call: BenchCall, agent1_id: str) -> str:
    """What an outcome's ``Agent1ID`` says happened to ``call`` (docs/contract.md §6)."""
    if agent1_id == str(call.winner.agent_id):
        return "winner"
    if agent1_id == "0":
        return "voicemail"
    if agent1_id == "999999":
        return "lead hung up"
    return "another agent"


def _rate(times: Sequence[float]) -> float:
    """Events per second over their span: (n - 1) / (last - first)."""
    if len(times) < 2 or times[-1] <= times[0]:
        return 0.0
    return round((len(times) - 1) / (times[-1] - times[0]), 2)


async def run_bench(opts: Options, command: str) -> dict[str, Any]:
    """Start everything, run the calls and the trivial endpoint, stop everything."""
    machine = machine_facts()  # first, so the load average is the one before we started
    calls = build_calls(opts.warmup + opts.calls, opts.agents)
    customer = BenchCustomer(calls)
    children: list[Child] = []
    failed: RuntimeError | None = None
    with tempfile.TemporaryDirectory(prefix="load-bench-") as tmp:
        workdir = Path(opts.logs_dir or tmp)
        await trio.Path(workdir).mkdir(parents=True, exist_ok=True)
        profile_to = workdir / "service.prof" if opts.profile else None
        async with trio.open_nursery() as nursery:
            stop_customer = trio.Event()
            settings = ServerSettings(
                bind="127.0.0.1:0", public_url="http://127.0.0.1", drain_s=1.0
            )
            binds: list[str] = await nursery.start(
                partial(serve_http, customer.app, settings, shutdown_event=stop_customer)
            )
            service_url = f"http://127.0.0.1:{free_port()}"
            try:
                simulator, simulator_url = await start_simulator(
                    workdir, service_url=service_url, time_scale=opts.time_scale
                )
                children.append(simulator)
                config = service_config(
                    port=int(service_url.rsplit(":", 1)[1]),
                    simulator_url=simulator_url,
                    customer_url=binds[0],
                    db_path=workdir / "bench.db",
                    ring_timeout_s=ring_timeout_s(opts.time_scale),
                    campaign_number=CAMPAIGN_NUMBER,
                    plantype=PLANTYPE,
                    log_level=SERVICE_LOG_LEVEL,
                )
                service = await start_service(workdir, config, service_url, profile_to=profile_to)
                children.append(service)
                limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
                async with httpx.AsyncClient(
                    base_url=simulator_url, timeout=10, limits=limits
                ) as http:
                    scripts: dict[str, dict[str, object]] = {}
                    for call in calls:
                        scripts.update(agent_scripts(call, talk_s=opts.talk_s))
                    (await http.post("/sim/agents", json={"agents": scripts})).raise_for_status()
                    phase = await run_call_phase(opts, customer, calls, http, service, simulator)
                trivial, trivial_cpu_s = await run_trivial_phase(opts, service, service_url)
                fig = {
                    "command": command,
                    "machine": machine,
                    **figures(
                        opts,
                        calls[opts.warmup :],
                        customer,
                        phase,
                        trivial,
                        trivial_cpu_s,
                        service_url,
                    ),
                    "service_log_warnings": service.count_log_lines(
                        '"level":"warning"', '"level":"error"', "Traceback"
                    ),
                }
            except RuntimeError as exc:
                failed = exc  # raised below, outside the nursery (no ExceptionGroup)
            finally:
                with trio.CancelScope(shield=True):
                    for child in reversed(children):
                        await child.stop()
                stop_customer.set()
        if failed is not None:
            raise failed
        if profile_to is not None:
            fig["service_profile"] = top_functions(profile_to)
    fig["problems"] = problems(fig)
    fig["ok"] = not fig["problems"]
    return fig


def top_functions(path: Path, count: int = 25) -> str:
    """The ``count`` functions with the most own time in a cProfile stats file."""
    out = io.StringIO()
    pstats.Stats(str(path), stream=out).sort_stats("tottime").print_stats(count)
    return out.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    opts = parse_options(args)
    command = shlex.join(["python", "-m", "bench.load_bench", *args])
    configure_logging("warning", sys.stderr.buffer)  # stdout carries the report only
    try:
        fig = trio.run(run_bench, opts, command)
    except RuntimeError as exc:  # a process did not start, or died during the run
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if opts.json:
        print(json.dumps(fig))
    else:
        print(format_report(fig))
        if "service_profile" in fig:
            print("\nservice profile (cProfile, by own time):\n" + fig["service_profile"])
    return 0 if fig["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
