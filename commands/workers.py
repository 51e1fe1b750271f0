"""``orchestrator serve --workers N``: the parent that runs N workers and keeps them running.

Each worker is ``orchestrator serve --config FILE --worker-index K`` in a child process — an
instance of the cluster of its own (``orchestrator.workers``: the shared port, its own callback
port, its own instance id). The parent does no call work; it:

- starts the N workers and writes their output through (they inherit stdout/stderr);
- restarts a worker that exits on its own (``worker.died``, error, with its exit status or
  signal), after 1 s, doubling up to 30 s while it keeps dying within a minute of starting; a
  worker that exits with the config error status (2) is not restarted — nothing would change —
  and the parent stops the others and exits 2;
- on SIGTERM or SIGINT forwards SIGTERM to every worker (each drains its calls, as a single
  ``serve`` does) and exits 0 once all have exited; a second signal forwards SIGKILL.
"""

from __future__ import annotations

import signal
import sys
from dataclasses import dataclass, field

import structlog
import trio

logger = structlog.get_logger()

#: The config error exit status of ``orchestrator serve`` (commands.main.EXIT_CONFIG).
EXIT_CONFIG = 2
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
#: A worker that ran this long before dying is restarted after the first back-off again.
STABLE_S = 60.0


@dataclass
class Workers:
    """The running workers of one parent (see the module docstring)."""

    config: str
    count: int
    log_level: str = "info"
    live: dict[int, trio.Process] = field(default_factory=dict)
    stopping: trio.Event = field(default_factory=trio.Event)
    status: int = 0
    restarts: int = 0

    def argv(self, index: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "orchestrator",
            "serve",
            "--config",
            self.config,
            "--worker-index",
            str(index),
        ]

    async def run(self) -> int:
        logger.info("workers.starting", workers=self.count, config=self.config)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_signals, nursery.cancel_scope)
            async with trio.open_nursery() as workers:
                for index in range(self.count):
                    workers.start_soon(self._keep_running, index)
            nursery.cancel_scope.cancel()  # every worker is gone: stop watching signals
        logger.info("workers.stopped", status=self.status, restarts=self.restarts)
        return self.status

    def _signal_all(self, signum: int) -> None:
        for index, process in self.live.items():
            if process.returncode is None:
                logger.info(
                    "worker.signalled",
                    worker=index,
                    pid=process.pid,
                    signal=signal.Signals(signum).name,
                )
                process.send_signal(signum)

    def stop(self, status: int = 0) -> None:
        if not self.stopping.is_set():
            self.status = status
            self.stopping.set()
            self._signal_all(signal.SIGTERM)

    async def _watch_signals(self, scope: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                name = signal.Signals(signum).name
                if self.stopping.is_set():
                    logger.warning("workers.killing", signal=name)
                    self._signal_all(signal.SIGKILL)
                else:
                    logger.info("workers.stopping", signal=name)
                    self.stop()

    async def _keep_running(self, index: int) -> None:
        backoff = FIRST_BACKOFF_S
        while not self.stopping.is_set():
            started = trio.current_time()
            # a session of its own: a terminal's Ctrl-C reaches the parent, which forwards it
            process = await trio.lowlevel.open_process(self.argv(index), start_new_session=True)
            self.live[index] = process
            logger.info("worker.started", worker=index, pid=process.pid)
            code = await process.wait()
            if self.stopping.is_set():
                logger.info("worker.exited", worker=index, pid=process.pid, exit_status=code)
                return
            ran_s = trio.current_time() - started
            if code == EXIT_CONFIG:
                logger.error(
                    "worker.died",
                    worker=index,
                    pid=process.pid,
                    exit_status=code,
                    reason="config error: not restarted",
                )
                self.stop(EXIT_CONFIG)
                return
            if ran_s >= STABLE_S:
                backoff = FIRST_BACKOFF_S
            logger.error(
                "worker.died",
                worker=index,
                pid=process.pid,
                exit_status=code,
                signal=signal.Signals(-code).name if code < 0 else None,
                ran_s=round(ran_s, 1),
                restart_in_s=backoff,
            )
            with trio.move_on_after(backoff):
                await self.stopping.wait()
            backoff = min(backoff * 2, MAX_BACKOFF_S)
            if not self.stopping.is_set():
                self.restarts += 1
                logger.warning("worker.restarting", worker=index, restarts=self.restarts)
