"""Throughput of ``orchestrator tail``: log lines/s through each view, in process and as a CLI.

Usage::

    .venv/bin/python bench/tail_bench.py [--lines 100000] [--in-flight 50] [--repeat 3]
        [--save FILE] [--no-cli]

The lines are real: the service's structlog configuration (:func:`orchestrator.logs.
configure_logging`) renders them, with the call context bound the way the actors bind it.
Each call is the demo's "connected on the first tier" story with the carrier simulator's lines
around it (29 lines: Step 1, plan, tier, two legs, accept, connect, recording, outcome), and
``--in-flight`` calls interleave line by line as they do at load. Output goes to /dev/null.
Prints lines/s per mode (best of ``--repeat``), by wall clock and per CPU-second of the tail
process (the steadier figure on a shared machine): the plain columns path, colour, the
filters, ``--timeline``, and the whole CLI in a subprocess (start-up included).
"""

from __future__ import annotations

import argparse
import io
import itertools
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import structlog
from structlog.contextvars import (
    bind_contextvars,
    bound_contextvars,
    clear_contextvars,
    get_contextvars,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from commands.tail.command import TailOptions
from commands.tail.runner import build_view
from commands.tail.views import pump
from orchestrator.logs import configure_logging

REPO_ROOT = Path(__file__).resolve().parent.parent
logger = structlog.get_logger()


def sim(event: str, **data: object) -> None:
    """Log a carrier-simulator line: the simulator's tasks carry no call context."""
    context = get_contextvars()
    clear_contextvars()
    logger.info(event, **data)
    bind_contextvars(**context)


def _uuid() -> str:
    return str(uuid.uuid4())


def one_call(n: int) -> Iterator[None]:
    """Log one connected call, one line per step (a generator so calls can interleave)."""
    guid, lead_uuid = _uuid(), _uuid()
    lead, campaign_number = f"949{n % 10_000_000:07d}", "8005550100"
    agents = [
        (320000 + 2 * (n % 5000), f"888{2 * n % 10_000_000:07d}"),
        (320001 + 2 * (n % 5000), f"888{(2 * n + 1) % 10_000_000:07d}"),
    ]
    legs = [(_uuid(), _uuid(), _uuid()) for _ in agents]  # leg id, request id, carrier call
    sim(
        "sim.call.placed",
        call_uuid=lead_uuid,
        number="1" + lead,
        direction="inbound",
        to="1" + campaign_number,
    )
    yield
    sim("sim.call.answered", call_uuid=lead_uuid, number="1" + lead, direction="inbound")
    yield
    with bound_contextvars(tracking_guid=guid, campaign="acme", call_uuid=lead_uuid):
        logger.info(
            "call.started",
            lead_phone=lead,
            dialled=campaign_number,
            plantype="Purchase",
            referral_id=0,
        )
        yield
        sim(
            "sim.conference.joined",
            call_uuid=lead_uuid,
            number="1" + lead,
            room=guid,
            member_id="1",
            start_on_enter=False,
            end_on_exit=True,
        )
        yield
        logger.info("step1.sent", status=200, reduced=False, latency_s=0.0123)
        yield
        logger.info("plan.received", agents=2, tiers=[1])
        yield
        logger.info("tier.started", tier=1, agents=[a for a, _ in agents])
        yield
        for (agent_id, phone), (leg_id, request_id, call_id) in zip(agents, legs, strict=True):
            sim(
                "sim.call.placed",
                call_uuid=call_id,
                number="1" + phone,
                direction="outbound",
                request_uuid=request_id,
                caller_id="1" + lead,
            )
            yield
            with bound_contextvars(tier=1, agent_id=agent_id, leg_id=leg_id):
                logger.info("leg.originated", request_id=request_id, phone=phone, caller_id=lead)
            yield
        for (_, phone), (_, request_id, call_id) in zip(agents, legs, strict=True):
            sim("sim.call.ringing", call_uuid=call_id, number="1" + phone, request_uuid=request_id)
            yield
        (winner, winner_phone), (loser, _) = agents
        (win_leg, _, win_call), (lose_leg, _, lose_call) = legs
        sim(
            "sim.call.answered", call_uuid=win_call, number="1" + winner_phone, direction="outbound"
        )
        yield
        with bound_contextvars(tier=1, agent_id=winner, leg_id=win_leg):
            logger.info("leg.answered", press1=True)
            yield
            logger.info("leg.accepted")
            yield
        sim(
            "sim.conference.joined",
            call_uuid=win_call,
            number="1" + winner_phone,
            room=guid,
            member_id="2",
            start_on_enter=True,
            end_on_exit=True,
        )
        yield
        sim(
            "sim.conference.started",
            call_uuid=None,
            number=None,
            room=guid,
            conference_uuid=_uuid(),
        )
        yield
        sim(
            "sim.call.ended",
            call_uuid=lose_call,
            direction="outbound",
            status="cancel",
            cause_code=1000,
            cause_name="Canceled",
            source="API Request",
            duration_s=0.0,
        )
        yield
        with bound_contextvars(tier=1, agent_id=loser, leg_id=lose_leg):
            logger.info("leg.ended", result="cancelled", duration_s=0.222)
        yield
        logger.info("call.connected", agent_id=winner, leg_id=win_leg, tier=1, wait_s=0.235)
        yield
        url = f"http://127.0.0.1:33233/sim/recordings/{_uuid()}.mp3"
        sim(
            "sim.recording.finished",
            call_uuid=None,
            number=None,
            what="conference",
            room=guid,
            recording_id=_uuid(),
            url=url,
            duration_s=10.142,
        )
        yield
        sim(
            "sim.conference.left",
            call_uuid=lead_uuid,
            number="1" + lead,
            room=guid,
            member_id="1",
            removed=False,
            wait_sound_loops=0,
        )
        yield
        logger.info("call.recording_ready", url=url)
        yield
        sim(
            "sim.call.ended",
            call_uuid=lead_uuid,
            number="1" + lead,
            direction="inbound",
            status="completed",
            cause_code=4000,
            cause_name="Normal Hangup",
            source="Caller",
            duration_s=15.083,
        )
        yield
        logger.info("call.lead_hung_up")
        yield
        with bound_contextvars(tier=1, agent_id=winner, leg_id=win_leg):
            logger.info("leg.ended", result="accepted", duration_s=12.0)
        yield
        logger.info(
            "call.finished",
            outcome="connected",
            agent1_id=winner,
            message_link=url,
            winner_agent_id=winner,
            tiers_tried=[1],
            legs=2,
            duration_s=0.84,
            time_to_connect_s=0.235,
        )
        yield
        logger.info("outcome.delivered", attempt=1, status=200, agent1_id=str(winner))
        yield


def generate(lines: int, in_flight: int) -> bytes:
    """``lines`` JSON log lines of ``in_flight`` interleaved calls (a finished call is replaced
    by a new one), rendered by the service's logging configuration."""
    buffer = io.BytesIO()
    configure_logging("info", buffer)
    numbers = itertools.count()
    active = [one_call(next(numbers)) for _ in range(in_flight)]
    emitted = 0
    while emitted < lines:
        for index in range(len(active)):
            if emitted >= lines:
                break
            try:
                next(active[index])  # each step logs one line
            except StopIteration:
                active[index] = one_call(next(numbers))
                next(active[index])
            emitted += 1
    structlog.reset_defaults()
    return buffer.getvalue()


def measure(options: TailOptions, data: bytes, repeat: int) -> tuple[float, float]:
    """Best (wall, CPU) lines/s of ``repeat`` runs of the view over ``data`` into /dev/null.
    CPU lines/s (per second of this process's CPU time) is the steadier figure on a busy
    machine."""
    raw_lines = data.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    best_wall = best_cpu = 0.0
    for _ in range(repeat):
        view = build_view(options, is_tty=False, no_color=False)
        with open(os.devnull, "wb") as sink:
            wall, cpu = time.perf_counter(), time.process_time()
            pump(raw_lines, view, sink)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        best_wall = max(best_wall, len(raw_lines) / wall)
        best_cpu = max(best_cpu, len(raw_lines) / max(cpu, 1e-9))
    return best_wall, best_cpu


def measure_cli(path: Path, count: int, args: list[str], repeat: int) -> tuple[float, float]:
    """Best (wall, CPU) lines/s of ``python -m orchestrator tail FILE ARGS > /dev/null``,
    interpreter start-up and imports included."""
    best_wall = best_cpu = 0.0
    for _ in range(repeat):
        before = os.times()
        wall = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "orchestrator", "tail", str(path), *args],
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            check=True,
        )
        wall = time.perf_counter() - wall
        after = os.times()
        cpu = (
            after.children_user
            - before.children_user
            + after.children_system
            - before.children_system
        )
        best_wall = max(best_wall, count / wall)
        best_cpu = max(best_cpu, count / max(cpu, 1e-9))
    return best_wall, best_cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--in-flight", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--save", type=Path, help="also write the generated log here")
    parser.add_argument("--no-cli", action="store_true", help="skip the subprocess runs")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    data = generate(args.lines, args.in_flight)
    count = data.count(b"\n")
    print(
        f"generated {count} lines ({len(data) / count:.0f} bytes/line) in "
        f"{time.perf_counter() - started:.1f}s"
    )
    some_guid = data.split(b'"tracking_guid":"', 2)[1][:8].decode()
    modes: list[tuple[str, TailOptions]] = [
        ("columns, plain (no filter)", TailOptions(color="never")),
        ("columns, colour", TailOptions(color="always")),
        ("columns, --wide", TailOptions(color="never", wide=True)),
        ("--call PREFIX (one call kept)", TailOptions(color="never", calls=(some_guid,))),
        (
            "--event 'leg.*' --level info",
            TailOptions(color="never", events=("leg.*",), level="info"),
        ),
        ("--exclude 'sim.*'", TailOptions(color="never", exclude=("sim.*",))),
        (
            "--campaign acme --agent 320000",
            TailOptions(color="never", campaigns=("acme",), agents=("320000",)),
        ),
        ("--timeline PREFIX", TailOptions(color="never", timeline=some_guid)),
        (
            "--timeline PREFIX --carrier",
            TailOptions(color="never", timeline=some_guid, with_carrier=True),
        ),
    ]
    rows: list[tuple[str, Callable[[], tuple[float, float]]]] = [
        (name, partial(measure, options, data, args.repeat)) for name, options in modes
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = args.save or Path(tmp) / "bench.log"
        path.write_bytes(data)
        if not args.no_cli:
            rows.append(
                (
                    "CLI subprocess, plain, file -> /dev/null",
                    partial(measure_cli, path, count, ["--color", "never"], args.repeat),
                )
            )
        print(f"{'mode':<42} {'wall lines/s':>12} {'CPU lines/s':>12}")
        for name, run in rows:
            wall, cpu = run()
            print(f"{name:<42} {wall:>12,.0f} {cpu:>12,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
