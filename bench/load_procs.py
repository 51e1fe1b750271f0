"""The load benchmark's processes: the service and the simulator as subprocesses, their config,
and what ``/proc`` says about their CPU time and memory.

Both children write their logs to files in the benchmark's temporary directory (never to a pipe
nobody reads). :meth:`Child.stop` sends SIGTERM, waits, then kills: the benchmark never leaves a
process behind.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import trio

from orchestrator.config import SIMULATOR_AUTH_ID, SIMULATOR_AUTH_TOKEN

__all__ = [
    "Child",
    "machine_facts",
    "service_config",
    "start_service",
    "start_simulator",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_LISTENING = re.compile(r"listening on (http://\S+)")


def service_config(
    *,
    port: int,
    simulator_url: str,
    customer_url: str,
    db_path: Path,
    ring_timeout_s: float,
    campaign_number: str,
    plantype: str,
    log_level: str = "warning",
) -> str:
    """The service's TOML: Plivo carrier pointed at the simulator process, SQLite in a temp dir.

    ``calls_per_second`` is set high so the benchmark measures the service, not the pacing.
    """
    return f"""\
[server]
bind = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
drain_s = 2.0

[store]
url = "sqlite:///{db_path}"

[carrier]
kind = "plivo"
auth_id = "{SIMULATOR_AUTH_ID}"
auth_token = "{SIMULATOR_AUTH_TOKEN}"
api_url = "{simulator_url}"
verify_signatures = true
calls_per_second = 1000.0

[routing]
plan_timeout_s = 10.0
ring_timeout_s = {ring_timeout_s:.1f}
accept_timeout_s = 8.0
initial_post_timeout_s = 5.0

[log]
level = "{log_level}"

[[campaigns]]
name = "bench"
numbers = ["{campaign_number}"]
plantype = "{plantype}"
initial_post_url = "{customer_url}/initial"
outcome_post_url = "{customer_url}/outcome"
"""


def _proc_stat_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # after the ")" of comm: field 3 (state) is index 0, so utime (14) / stime (15) are 11 / 12
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def _proc_status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {key} for pid {pid}")


@dataclass(eq=False)
class Child:
    """A subprocess we started, its log file, and its resource readings."""

    name: str
    process: trio.Process
    log_path: Path
    log_file: IO[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_s(self) -> float:
        """User + system CPU seconds used so far (threads included)."""
        return _proc_stat_cpu_s(self.pid)

    def rss_kib(self) -> int:
        return _proc_status_kib(self.pid, "VmRSS")

    def peak_rss_kib(self) -> int:
        return _proc_status_kib(self.pid, "VmHWM")

    def alive(self) -> bool:
        return self.process.poll() is None

    def check_alive(self) -> None:
        """Raises:
        RuntimeError: the process has exited (with its status and the end of its log).
        """
        status = self.process.poll()
        if status is not None:
            raise RuntimeError(
                f"the {self.name} exited with status {status} during the run; "
                f"the end of its log:\n{self.log_tail()}"
            )

    def log_text(self) -> str:
        self.log_file.flush()
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def count_log_lines(self, *needles: str) -> int:
        """Log lines containing any of ``needles`` (e.g. ``'"level":"error"'``)."""
        return sum(1 for line in self.log_text().splitlines() if any(n in line for n in needles))

    async def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM, wait up to ``timeout_s``, then SIGKILL. Returns the exit status."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            with trio.move_on_after(timeout_s):
                await self.process.wait()
        if self.alive():
            self.process.kill()
            with trio.move_on_after(5):
                await self.process.wait()
        self.log_file.close()
        return self.process.poll()


async def _spawn(name: str, argv: list[str], workdir: Path) -> Child:
    log_path = workdir / f"{name}.log"
    log_file = open(log_path, "wb")  # noqa: SIM115, ASYNC230 (closed by Child.stop)
    process = await trio.lowlevel.open_process(
        argv,
        cwd=REPO_ROOT,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return Child(name, process, log_path, log_file)


async def start_simulator(
    workdir: Path, *, service_url: str, time_scale: float, log_level: str = "warning"
) -> tuple[Child, str]:
    """``python -m simulator`` on a free port; returns it and its URL.

    Raises:
        RuntimeError: it exited or did not report its URL within 20 s.
    """
    child = await _spawn(
        "simulator",
        [
            sys.executable,
            "-m",
            "simulator",
            "--bind",
            "127.0.0.1:0",
            "--answer-url",
            f"{service_url}/plivo/answer",
            "--hangup-url",
            f"{service_url}/plivo/hangup",
            "--time-scale",
            repr(time_scale),
            "--cps",
            "0",
            "--log-level",
            log_level,
        ],
        workdir,
    )
    with trio.move_on_after(20):
        while child.alive():
            found = _LISTENING.search(child.log_text())
            if found:
                return child, found.group(1)
            await trio.sleep(0.05)
    await child.stop()
    raise RuntimeError(f"the simulator did not start:\n{child.log_tail()}")


async def start_service(
    workdir: Path, config_toml: str, url: str, *, profile_to: Path | None = None
) -> Child:
    """``python -m orchestrator serve --config <workdir>/service.toml``; returns once
    ``/readyz`` answers 200. With ``profile_to``, the service runs under cProfile, which writes
    its stats there when the service stops.

    Raises:
        RuntimeError: it exited or was not ready within 30 s.
    """
    config_path = workdir / "service.toml"
    await trio.Path(config_path).write_text(config_toml)
    profiler = ["-m", "cProfile", "-o", str(profile_to)] if profile_to else []
    child = await _spawn(
        "service",
        [
            sys.executable,
            *profiler,
            "-m",
            "orchestrator",
            "serve",
            "--config",
            str(config_path),
        ],
        workdir,
    )
    async with httpx.AsyncClient(timeout=1.0) as http:
        with trio.move_on_after(30):
            while child.alive():
                try:
                    if (await http.get(f"{url}/readyz")).status_code == 200:
                        return child
                except httpx.TransportError:
                    pass
                await trio.sleep(0.1)
    await child.stop()
    raise RuntimeError(f"the service did not become ready:\n{child.log_tail()}")


def machine_facts() -> dict[str, object]:
    """Cores, CPU model, Python and OS: printed with the figures."""
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next(
                (line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), ""
            )
    except OSError:
        pass
    uname = os.uname()
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    started = time.perf_counter()
    total = 0
    for i in range(1_000_000):
        total += i
    return {
        "loadavg_1m_at_start": float(load),
        # how fast this Python is here: a plain 1M-iteration loop (compare machines by it)
        "loop_ns_per_iteration": round((time.perf_counter() - started) * 1000, 1),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "python": sys.version.split()[0],
        "os": f"{uname.sysname} {uname.release}",
    }
