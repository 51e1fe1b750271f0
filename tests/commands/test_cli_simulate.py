"""``orchestrator simulate`` runs the carrier simulator on its own process, reachable over REST."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import orjson
import pytest
import trio

from orchestrator.config import SIMULATOR_AUTH_ID, SIMULATOR_AUTH_TOKEN
from tests.support.paths import REPO


@pytest.mark.e2e
async def test_simulate_serves_plivo_rest_until_sigterm() -> None:
    process = await trio.lowlevel.open_process(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "simulate",
            "--bind",
            "127.0.0.1:0",
            "--log-level",
            "info",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert process.stdout is not None
        url = ""
        buffer = b""
        with trio.fail_after(20):
            while not url:
                chunk = await process.stdout.receive_some(65536)
                assert chunk, f"simulator exited early: {buffer!r}"
                buffer += chunk
                for line in buffer.split(b"\n"):
                    if line.startswith(b"{") and b"sim.serving" in line:
                        url = orjson.loads(line)["url"]
        async with httpx.AsyncClient(auth=(SIMULATOR_AUTH_ID, SIMULATOR_AUTH_TOKEN)) as http:
            response = await http.get(
                f"{url}/v1/Account/{SIMULATOR_AUTH_ID}/Call/", params={"status": "live"}
            )
        assert response.status_code == 200
        assert response.json()["calls"] == []
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(20):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
