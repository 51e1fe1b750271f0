"""Run the simulator over HTTP with hypercorn (trio worker), embedded or on its own.

``await nursery.start(run_simulator, config)`` serves the REST app on ``config.bind`` (port 0
allowed) and reports the bound URL; the :class:`Simulator` is reachable through the returned
:class:`RunningSimulator` handle when started with :func:`start_simulator`. :func:`serve` is the
blocking entry point for ``orchestrator simulate`` (until SIGINT/SIGTERM).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from functools import partial

import hypercorn.config
import hypercorn.trio
import structlog
import trio
from quart_trio import QuartTrio

from simulator.config import ScheduledInbound, SimulatorConfig, load_scenario
from simulator.engine import Simulator
from simulator.rest_app import create_app
from simulator.scripts import ScriptBook
from simulator.state import Account, CallUrls

__all__ = [
    "RunningSimulator",
    "build_simulator",
    "run_simulator",
    "serve",
    "serve_app",
    "start_simulator",
]

logger = structlog.get_logger()


def build_simulator(config: SimulatorConfig) -> Simulator:
    """A :class:`Simulator` from config (scenario file included); not yet running."""
    if config.scenario_file:
        config = config.with_scenario(load_scenario(config.scenario_file))
    return Simulator(
        accounts=[Account(config.auth_id, config.auth_token)],
        application=CallUrls(
            answer_url=config.answer_url,
            answer_method=config.answer_method,
            hangup_url=config.hangup_url,
            hangup_method=config.hangup_method,
        ),
        time_scale=config.time_scale,
        cps=config.cps,
        scripts=ScriptBook(config.default_agent, config.agents),
        default_lead=config.default_lead,
        public_url=config.public_url or "http://127.0.0.1",
        conference_end_hangs_up=config.conference_end_hangs_up,
        webhook_timeout_s=config.webhook_timeout_s,
    )


async def serve_app(
    app: QuartTrio, bind: str, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve ``app`` with hypercorn on ``bind`` (``HOST:PORT``, port 0 allowed); report the URL.

    No access log (it costs 15-19%, docs/architecture.md).
    """
    config = hypercorn.config.Config()
    config.bind = [bind]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 1.0
    async with trio.open_nursery() as nursery:
        urls: list[str] = await nursery.start(partial(hypercorn.trio.serve, app, config))
        task_status.started(urls[0])


@dataclass(frozen=True, slots=True)
class RunningSimulator:
    """A simulator serving HTTP: its base URL (``http://127.0.0.1:PORT``) and the engine."""

    url: str
    simulator: Simulator

    @property
    def api_base(self) -> str:
        """What the carrier adapter's ``api_url`` should be (the SDK adds ``/v1/Account``)."""
        return self.url


async def _place_scheduled(sim: Simulator, call: ScheduledInbound) -> None:
    await sim.clock.sleep(call.at_s)
    sim.place_inbound(call.from_number, call.to_number, call.lead)


async def start_simulator(
    config: SimulatorConfig,
    *,
    task_status: trio.TaskStatus[RunningSimulator] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the simulator engine and its HTTP app until cancelled; report a handle.

    Resource handling: everything runs in one nursery here; cancelling this task ends the
    calls (without webhooks), the server and the webhook clients.
    """
    sim = build_simulator(config)
    scheduled = config.inbound
    if config.scenario_file:
        scheduled = config.with_scenario(load_scenario(config.scenario_file)).inbound
    app = create_app(sim, rate_limit=config.rate_limit_per_5s)
    async with trio.open_nursery() as nursery:
        await nursery.start(sim.run)
        url = await nursery.start(serve_app, app, config.bind)
        if not config.public_url:
            sim.public_url = url
        for call in scheduled:
            nursery.start_soon(_place_scheduled, sim, call)
        logger.info(
            "sim.serving",
            url=url,
            auth_id=config.auth_id,
            time_scale=config.time_scale,
            cps=config.cps,
        )
        task_status.started(RunningSimulator(url, sim))


async def run_simulator(
    config: SimulatorConfig, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve the simulator on ``config.bind`` until cancelled; ``started(bound URL)``."""
    async with trio.open_nursery() as nursery:
        running: RunningSimulator = await nursery.start(start_simulator, config)
        task_status.started(running.url)


def serve(config: SimulatorConfig) -> None:
    """Run the simulator in this process until SIGINT/SIGTERM (``orchestrator simulate``)."""

    async def main() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                running: RunningSimulator = await nursery.start(start_simulator, config)
                print(
                    f"Plivo simulator listening on {running.url} (auth_id {config.auth_id})",
                    flush=True,
                )
                async for signum in signals:
                    logger.info("sim.signalled", signal=signal.Signals(signum).name)
                    running.simulator.close()
                    nursery.cancel_scope.cancel()
                    break

    trio.run(main)
