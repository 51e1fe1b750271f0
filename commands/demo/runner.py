"""Run the demo: the whole service on embedded defaults, a batch of calls, and the verdict.

In one Trio run, on 127.0.0.1 only:

1. the sample customer (:mod:`commands.demo.sample_customer`) on port 0;
2. the service via :func:`server.wiring.run_service` with ``carrier.kind = "simulator"``
   (the production Plivo adapter talking HTTP to the built-in simulator, which signs its
   webhooks) and SQLite at ``OUTPUT/orchestrator.db``; its JSON logs, the simulator's
   included, go to ``OUTPUT/orchestrator.log``;
3. the agents' scripts loaded into the simulator, then the leads' calls placed at ``rate`` per
   second, the scenarios round-robin, while a live table shows progress;
4. once every call's Step 3 outcome reached the customer (or the deadline passed) and the
   simulator is idle, the service is stopped (it drains and flushes the store), and each call
   is checked against its scenario from three witnesses: the Step 3 post, the ``call.finished``
   log line and the ``calls`` table (:mod:`commands.demo.summary`).

Routing settings, chosen for the simulator's time scale. Two kinds of timer meet here:

- **real seconds** (the orchestrator's own timers): ``plan_timeout_s`` = 5 and
  ``initial_post_timeout_s`` = 3 — the sample customer answers within milliseconds, so these
  only bound a broken run;
- **simulated seconds** (sent to the carrier, which runs them on its scaled clock):
  ``ring_timeout_s`` = 15, ``accept_timeout_s`` = 8 (the whisper's press-1 window) and
  ``voicemail_max_s`` = 30. At the default ``--time-scale 0.05`` a phone rings out in 0.75 s
  real and the slowest scenario (voicemail after two tiers) takes about 2 s.

The carrier's originate limit is raised to 50 calls/s (Plivo's default account allows 2) and
the simulator queues nothing, so the batch is paced only by ``--rate``.

Logging: the structlog configuration is swapped for the run (JSON lines to the log file, no
logger caching so nothing stays bound to the file afterwards) and restored when it ends, so the
demo can run inside a larger process (the tests).
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, cast

import structlog
import trio
from rich.console import Console
from rich.live import Live

from commands.demo import display
from commands.demo.options import DemoOptions
from commands.demo.progress import snapshot
from commands.demo.sample_customer import SampleCustomer, Step3Seen
from commands.demo.scenarios import (
    CAMPAIGN_NAME,
    CAMPAIGN_NUMBER,
    PLANTYPE,
    SCENARIOS,
    Scenario,
    agent_scripts,
    schedule,
)
from commands.demo.summary import (
    CallReport,
    StoredCall,
    build_reports,
    log_warnings,
    outcome_stats,
    parse_finished_lines,
    scenario_stats,
)
from orchestrator.config import (
    SIMULATOR_AUTH_ID,
    SIMULATOR_AUTH_TOKEN,
    Campaign,
    CarrierSettings,
    RoutingSettings,
    ServerSettings,
    Settings,
    SimulatorSettings,
    StoreSettings,
)
from orchestrator.logs import configure_logging
from server.wiring import ServiceHandle, run_service
from simulator import Simulator

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130

LOG_FILE = "orchestrator.log"
DB_FILE = "orchestrator.db"

# Real seconds (the orchestrator's own timers).
PLAN_TIMEOUT_S = 5.0
INITIAL_POST_TIMEOUT_S = 3.0
DRAIN_S = 1.0
# Simulated seconds (run by the carrier simulator on its scaled clock).
RING_TIMEOUT_S = 15.0
ACCEPT_TIMEOUT_S = 8.0
VOICEMAIL_MAX_S = 30.0
CARRIER_CPS = 50.0

#: After the last call is placed: real seconds to wait for every outcome, plus this many
#: simulated seconds (scaled) — a generous bound on the slowest scenario.
SETTLE_REAL_S = 20.0
SETTLE_SIMULATED_S = 200.0
#: Then the simulator must be idle within this many real seconds (plus simulated, scaled).
IDLE_REAL_S = 10.0
IDLE_SIMULATED_S = 60.0
REFRESH_S = 0.1
#: Console width when writing to a file or pipe.
WIDE = 110
#: Live simulator calls listed by name when some are left at the end.
SHOW_LIVE = 10


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the service's public URL needs its
    port before it starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def demo_settings(*, port: int, customer_url: str, db_path: Path, time_scale: float) -> Settings:
    """The embedded defaults: SQLite, the simulator, one campaign pointing at the customer."""
    url = f"http://127.0.0.1:{port}"
    return Settings(
        server=ServerSettings(bind=f"127.0.0.1:{port}", public_url=url, drain_s=DRAIN_S),
        store=StoreSettings(url=f"sqlite:///{db_path}"),
        carrier=CarrierSettings(
            kind="simulator",
            auth_id=SIMULATOR_AUTH_ID,
            auth_token=SIMULATOR_AUTH_TOKEN,
            calls_per_second=CARRIER_CPS,
        ),
        routing=RoutingSettings(
            plan_timeout_s=PLAN_TIMEOUT_S,
            ring_timeout_s=RING_TIMEOUT_S,
            accept_timeout_s=ACCEPT_TIMEOUT_S,
            voicemail_max_s=VOICEMAIL_MAX_S,
            initial_post_timeout_s=INITIAL_POST_TIMEOUT_S,
        ),
        simulator=SimulatorSettings(time_scale=time_scale, cps=0.0),
        campaigns=(
            Campaign(
                CAMPAIGN_NAME,
                (CAMPAIGN_NUMBER,),
                PLANTYPE,
                f"{customer_url.rstrip('/')}/initial",
                f"{customer_url.rstrip('/')}/outcome",
            ),
        ),
    )


# --- files -------------------------------------------------------------------------------------


def prepare_output(output: Path) -> tuple[Path, Path]:
    """Create ``output`` and remove a previous run's database; return (log path, db path)."""
    output = output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    db_path = output / DB_FILE
    for suffix in ("", "-wal", "-shm", "-journal"):
        db_path.with_name(DB_FILE + suffix).unlink(missing_ok=True)
    return output / LOG_FILE, db_path


class Tee:
    """A binary sink writing to the log file and to a pipe; a pipe whose reader has gone
    (``| head``) is dropped, the file keeps everything."""

    def __init__(self, file: BinaryIO, pipe: BinaryIO) -> None:
        self._file = file
        self._pipe: BinaryIO | None = pipe

    def write(self, data: bytes) -> int:
        self._file.write(data)
        self._to_pipe(lambda pipe: pipe.write(data))
        return len(data)

    def flush(self) -> None:
        self._file.flush()
        self._to_pipe(lambda pipe: pipe.flush())

    def _to_pipe(self, action: Callable[[BinaryIO], object]) -> None:
        if self._pipe is None:
            return
        try:
            action(self._pipe)
        except (BrokenPipeError, ValueError):  # reader gone / pipe closed
            self._pipe = None


def _open_log(path: Path) -> BinaryIO:
    return path.open("wb")


def read_log(path: Path) -> list[bytes]:
    with path.open("rb") as f:
        return f.read().splitlines()


def read_calls_table(db_path: Path) -> list[StoredCall]:
    """The ``calls`` rows as stored (read after the service stopped)."""
    if not db_path.exists():
        return []
    with closing(sqlite3.connect(db_path)) as db:
        rows = db.execute(
            "SELECT tracking_guid, lead_phone, outcome, agent1_id FROM calls"
        ).fetchall()
    return [StoredCall(str(g), str(p), o, a) for g, p, o, a in rows]


@contextmanager
def logging_to(stream: BinaryIO, level: str) -> Iterator[None]:
    """JSON log lines to ``stream`` for the duration; the previous configuration after."""
    saved = structlog.get_config()
    configure_logging(level, stream)
    structlog.configure(cache_logger_on_first_use=False)
    try:
        yield
    finally:
        structlog.configure(**saved)


def exit_status(*, interrupted: bool, problems: Sequence[str]) -> int:
    """130 when interrupted; else 0 only without a single problem."""
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if problems else EXIT_OK


def _console(*, stderr: bool) -> Console:
    """A console; one writing to a file or pipe gets room for the tables (not 80 columns)."""
    console = Console(stderr=stderr)
    if not console.is_terminal:
        console.width = max(console.width, WIDE)
    return console


# --- the run -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What a demo run produced; ``exit_code`` is the command's exit status."""

    exit_code: int
    reports: tuple[CallReport, ...]
    problems: tuple[str, ...]
    log_path: Path
    db_path: Path
    live_calls: tuple[dict[str, object], ...]  # simulator calls still live at the end
    step3: tuple[Step3Seen, ...]  # every Step 3 post the customer received


@dataclass
class _Batch:
    """The run's mutable bookkeeping, shared by the placer and the watcher."""

    planned: list[tuple[Scenario, str]]
    customer: SampleCustomer
    started: float
    scenarios: Sequence[Scenario]
    placed: int = 0
    problems: list[str] = field(default_factory=list)
    interrupted: bool = False
    live_calls: list[dict[str, object]] = field(default_factory=list)

    def guid_by_phone(self) -> dict[str, str]:
        return {seen.phone: guid for guid, seen in self.customer.step1.items()}

    def outcomes(self) -> dict[str, dict[str, str]]:
        return {guid: seen.fields for guid, seen in self.customer.outcomes().items()}

    def all_finished(self) -> bool:
        """Every call placed and as many distinct Step 3 outcomes in (each call posts exactly
        one, retries re-post it): which call got which is checked afterwards."""
        return self.placed == len(self.planned) and len(self.customer.outcomes()) >= len(
            self.planned
        )


async def run_demo(
    options: DemoOptions,
    *,
    console: Console | None = None,
    progress_console: Console | None = None,
    scenarios: Sequence[Scenario] = SCENARIOS,
    log_stream: BinaryIO | None = None,
) -> DemoResult:
    """Run the demo (see the module docstring) and print its summary.

    Args:
        options: how many calls, how fast, the simulator's time scale, the output directory.
        console: where the summary goes (default: stdout).
        progress_console: where the live progress goes (default: stderr).
        scenarios: the scenario table (default: :data:`~commands.demo.scenarios.SCENARIOS`).
        log_stream: also write every JSON log line here (``orchestrator demo | orchestrator
            tail``: stdout when it is a pipe), besides the log file.

    Returns:
        The :class:`DemoResult`; its ``exit_code`` is 0 only when every call got the outcome
        its scenario expects and the simulator holds no live call at the end.
    """
    console = console or _console(stderr=False)
    progress_console = progress_console or _console(stderr=True)
    started = trio.current_time()
    log_path, db_path = await trio.to_thread.run_sync(prepare_output, options.output)
    batch = _Batch(
        schedule(options.calls, scenarios), SampleCustomer("", scenarios), started, scenarios
    )
    log_file = await trio.to_thread.run_sync(_open_log, log_path)
    try:
        # structlog only calls write() and flush() on its sink: a Tee serves as a BinaryIO
        sink = cast("BinaryIO", Tee(log_file, log_stream)) if log_stream else log_file
        with logging_to(sink, options.log_level):
            await _drive(options, db_path, batch, progress_console)
    finally:
        log_file.close()

    lines = await trio.to_thread.run_sync(read_log, log_path)
    stored = await trio.to_thread.run_sync(read_calls_table, db_path)
    customer = batch.customer
    posts: dict[str, list[dict[str, str]]] = {}
    for seen in customer.step3:
        posts.setdefault(seen.tracking_guid, []).append(seen.fields)
    reports = build_reports(
        batch.planned[: batch.placed],
        guid_by_phone=batch.guid_by_phone(),
        posts=posts,
        finished=parse_finished_lines(lines),
        stored=stored,
    )
    problems = [
        f"call {r.sequence} ({r.scenario.name}, lead {r.lead_phone}, "
        f"{r.tracking_guid or 'no TrackingGUID'}): {problem}"
        for r in reports
        for problem in r.problems()
    ]
    problems += customer.problems + batch.problems
    if batch.placed < len(batch.planned):
        problems.append(f"only {batch.placed} of {len(batch.planned)} calls were placed")
    if batch.live_calls:
        shown = "; ".join(
            f"{c.get('direction')} {c.get('from')}→{c.get('to')} ({c.get('state')})"
            for c in batch.live_calls[:SHOW_LIVE]
        )
        problems.append(f"{len(batch.live_calls)} call(s) still live in the simulator: {shown}")
    display.print_summary(
        console,
        reports=reports,
        outcomes=outcome_stats(reports),
        scenarios=scenario_stats(reports, batch.scenarios),
        problems=problems,
        log_path=log_path,
        log_lines=len(lines),
        log_warnings=log_warnings(lines),
        db_path=db_path,
        elapsed_s=trio.current_time() - started,
        interrupted=batch.interrupted,
    )
    return DemoResult(
        exit_status(interrupted=batch.interrupted, problems=problems),
        tuple(reports),
        tuple(problems),
        log_path,
        db_path,
        tuple(batch.live_calls),
        tuple(customer.step3),
    )


async def _drive(
    options: DemoOptions, db_path: Path, batch: _Batch, progress_console: Console
) -> None:
    """Start customer and service, place the calls, wait for them, stop everything."""
    port = free_port()
    customer = batch.customer
    customer.service_url = f"http://127.0.0.1:{port}"
    customer_stop, service_stop, service_done = trio.Event(), trio.Event(), trio.Event()

    async def service(*, task_status: trio.TaskStatus[ServiceHandle]) -> None:
        try:
            await run_service(settings, stop=service_stop, task_status=task_status)
        finally:
            service_done.set()

    async with trio.open_nursery() as nursery:
        customer_url: str = await nursery.start(customer.serve, customer_stop)
        settings = demo_settings(
            port=port, customer_url=customer_url, db_path=db_path, time_scale=options.time_scale
        )
        try:
            handle: ServiceHandle = await nursery.start(service)
            assert handle.simulator is not None, "carrier.kind = simulator starts one"
            sim = handle.simulator.simulator
            for phone, script in agent_scripts(batch.scenarios).items():
                sim.scripts.set(phone, script)
            with Live(
                console=progress_console,
                auto_refresh=False,
                redirect_stdout=False,
                redirect_stderr=False,
            ) as live:
                await _place_and_watch(
                    options,
                    batch,
                    sim,
                    live,
                    lambda: not service_done.is_set() and handle.orchestrator.ready,
                )
            if not service_done.is_set():
                idle_s = IDLE_REAL_S + IDLE_SIMULATED_S * options.time_scale
                with trio.move_on_after(idle_s):
                    await sim.wait_idle()
            batch.live_calls = sim.live_calls()
        finally:
            service_stop.set()
            await service_done.wait()
            customer_stop.set()


async def _place_and_watch(
    options: DemoOptions,
    batch: _Batch,
    sim: Simulator,
    live: Live,
    service_up: Callable[[], bool],
) -> None:
    """Place the calls at ``options.rate`` while refreshing ``live``, until every outcome is in
    (or the deadline passes, or the service stops taking calls under us: SIGINT/SIGTERM)."""

    async def place(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        t0 = trio.current_time()
        for i, (scenario, phone) in enumerate(batch.planned):
            await trio.sleep_until(t0 + i / options.rate)
            if not service_up():
                return
            try:
                sim.place_inbound("1" + phone, "1" + CAMPAIGN_NUMBER, scenario.lead)
            except RuntimeError as exc:  # the simulator stopped (the service is stopping)
                batch.problems.append(f"call {i} could not be placed: {exc}")
                return
            batch.placed = i + 1

    settle_s = SETTLE_REAL_S + SETTLE_SIMULATED_S * options.time_scale
    deadline = trio.current_time() + (len(batch.planned) - 1) / options.rate + settle_s
    async with trio.open_nursery() as nursery:
        await nursery.start(place)
        while True:
            counts = sim.counts()
            live.update(
                display.live_view(
                    snapshot(
                        batch.planned,
                        batch.placed,
                        scenarios=batch.scenarios,
                        guid_by_phone=batch.guid_by_phone(),
                        outcomes=batch.outcomes(),
                        elapsed_s=trio.current_time() - batch.started,
                        simulator_live=counts.get("live", 0),
                        simulator_placed=counts.get("placed", 0),
                    )
                ),
                refresh=True,
            )
            if batch.all_finished():
                break
            if not service_up():
                batch.interrupted = True
                batch.problems.append("interrupted: the service stopped before the batch ended")
                break
            if trio.current_time() >= deadline:
                got = len(batch.outcomes())
                batch.problems.append(
                    f"timed out after {trio.current_time() - batch.started:.0f} s waiting for "
                    f"Step 3 outcomes ({got} of {len(batch.planned)} received)"
                )
                break
            await trio.sleep(REFRESH_S)
        nursery.cancel_scope.cancel(reason="batch over")
