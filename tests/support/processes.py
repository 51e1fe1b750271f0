"""Child processes for end-to-end tests: ``python -m orchestrator ...`` (or any program) whose
output lines are collected as they come — JSON log lines parsed, others kept as text.

:func:`child` starts one and always reaps it: a process still running when the block ends is
killed (SIGKILL) and waited for, so a failing test never leaves one behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import orjson
import trio

from tests.support.paths import REPO


class Process:
    """A child process whose JSON log lines (``events``) and other lines (``text``) are kept."""

    def __init__(self, process: trio.Process, name: str) -> None:
        self.process = process
        self.name = name
        self.events: list[dict[str, object]] = []
        self.text: list[str] = []
        self.changed = trio.Event()

    async def pump(self) -> None:
        assert self.process.stdout is not None
        buffer = b""
        async for chunk in self.process.stdout:
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line.startswith(b"{"):
                    try:
                        self.events.append(orjson.loads(line))
                        continue
                    except orjson.JSONDecodeError:
                        pass
                self.text.append(line.decode("utf-8", "replace"))
            self.changed.set()
            self.changed = trio.Event()

    def named(self, event: str) -> list[dict[str, object]]:
        return [e for e in self.events if e.get("event") == event]

    async def wait_for(self, event: str, count: int = 1, timeout_s: float = 20.0) -> None:
        """Until ``event`` was logged ``count`` times (AssertionError if the process exits)."""
        with trio.fail_after(timeout_s):
            while len(self.named(event)) < count:
                if self.process.returncode is not None:
                    tail = "\n".join(self.text[-20:])
                    raise AssertionError(
                        f"{self.name} exited {self.process.returncode} before {event}:\n{tail}"
                    )
                await self.changed.wait()

    async def wait_for_text(self, fragment: str, timeout_s: float = 20.0) -> None:
        with trio.fail_after(timeout_s):
            while not any(fragment in line for line in self.text):
                if self.process.returncode is not None:
                    raise AssertionError(f"{self.name} exited before printing {fragment!r}")
                await self.changed.wait()


@asynccontextmanager
async def child(
    nursery: trio.Nursery, *args: str, program: Sequence[str] | None = None, name: str = ""
) -> AsyncIterator[Process]:
    """Run ``python -m orchestrator *args`` (or ``program`` + ``args``) with output piped."""
    argv = [*(program or (sys.executable, "-m", "orchestrator")), *args]
    process = await trio.lowlevel.open_process(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    proc = Process(process, name or " ".join(argv[:4]))
    nursery.start_soon(proc.pump)
    try:
        yield proc
    finally:
        if process.returncode is None:
            process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()
