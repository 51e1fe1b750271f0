"""``orchestrator serve --workers 2`` on this machine (README "Running a cluster"): both workers
take calls on the shared port (SO_REUSEPORT), a worker killed with SIGKILL is restarted (its
instance id comes back once the dead incarnation's lease has run out) and takes calls again,
and SIGTERM to the parent drains both and exits 0.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio
from quart import request
from quart_trio import QuartTrio

from orchestrator.config import ServerSettings
from server.http import serve_http
from tests.support.cluster import CLUSTER_SECRET, pg_database
from tests.support.processes import Process, child
from tests.support.service import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

CONFIG = """\
[server]
bind = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
drain_s = 3.0
[store]
url = "{db}"
[carrier]
kind = "plivo"
auth_id = "MASIMULATOR000000000"
auth_token = "simulator-auth-token"
api_url = "{sim}"
calls_per_second = 40.0
[cluster]
instance_id = "box"
secret = "{secret}"
heartbeat_s = 0.5
lease_s = 2.0
[[campaigns]]
name = "acme"
numbers = ["8005550100"]
plantype = "Purchase"
initial_post_url = "{customer}/initial"
outcome_post_url = "{customer}/outcome"
"""


def plan(guid: str, n: int) -> dict[str, str]:
    return {
        "TrackingGUID": guid,
        "AgentID": str(700_000 + n),
        "AgentPhones": f"888556{n:04d}",
        "AgentTier": "1",
        "AgentRow": "1",
    }


def ports_of(parent: Process) -> dict[int, int]:
    """worker index -> pid, as the parent last started them."""
    return {int(str(e["worker"])): int(str(e["pid"])) for e in parent.named("worker.started")}


async def test_two_workers_share_the_port_and_a_killed_one_comes_back(tmp_path: Path) -> None:
    outcomes: list[str] = []
    arrived = trio.Event()
    customer = QuartTrio("customer")

    @customer.get("/initial")
    async def initial() -> dict[str, str]:
        return plan(request.args["TrackingGUID"], int(request.args["Phone"][-4:]))

    @customer.post("/outcome")
    async def outcome() -> str:
        nonlocal arrived
        outcomes.append((await request.form)["TrackingGUID"])
        arrived.set()
        arrived = trio.Event()
        return "ok"

    port, sim_port, customer_port = free_port(), free_port(), free_port()
    while port + 2 in (sim_port, customer_port):
        port = free_port()
    sim_url, customer_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{customer_port}"
    with pg_database() as db:
        config = tmp_path / "box.toml"
        config.write_text(
            CONFIG.format(
                port=port, db=db, sim=sim_url, customer=customer_url, secret=CLUSTER_SECRET
            )
        )
        async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=15) as http:
            stop_customer = trio.Event()
            settings = ServerSettings(bind=f"127.0.0.1:{customer_port}", public_url=customer_url)
            await nursery.start(
                partial(serve_http, customer, settings, shutdown_event=stop_customer)
            )
            async with (
                child(
                    nursery,
                    "simulate",
                    "--bind",
                    f"127.0.0.1:{sim_port}",
                    "--time-scale",
                    "0.05",
                    "--cps",
                    "0",
                    "--answer-url",
                    f"http://127.0.0.1:{port}/plivo/answer",
                    "--hangup-url",
                    f"http://127.0.0.1:{port}/plivo/hangup",
                    name="simulator",
                ) as sim,
                child(nursery, "serve", "--config", str(config), "--workers", "2") as parent,
            ):
                await sim.wait_for("sim.serving")
                await parent.wait_for("service.started", count=2, timeout_s=40)
                calls = 0

                async def place(count: int) -> None:
                    nonlocal calls
                    start = calls
                    calls += count
                    async with trio.open_nursery() as placing:
                        for n in range(start, start + count):
                            placing.start_soon(
                                partial(
                                    http.post,
                                    f"{sim_url}/sim/inbound",
                                    json={
                                        "from": f"1949555{n:04d}",
                                        "to": "18005550100",
                                        "lead": {},
                                    },
                                )
                            )
                    with trio.fail_after(40):
                        while len(outcomes) < calls:
                            await arrived.wait()

                await place(16)
                owners = Counter(e["instance"] for e in parent.named("call.started"))
                assert set(owners) == {"box-w0", "box-w1"}, owners  # both take calls

                victim = ports_of(parent)[0]
                os.kill(victim, signal.SIGKILL)
                await parent.wait_for("worker.died")
                (died,) = parent.named("worker.died")
                assert (died["worker"], died["signal"]) == (0, "SIGKILL")
                await parent.wait_for("service.started", count=3, timeout_s=40)
                assert ports_of(parent)[0] != victim  # a new process for worker 0
                before = len(parent.named("call.started"))
                await place(16)
                later = Counter(e["instance"] for e in parent.named("call.started")[before:])
                assert set(later) == {"box-w0", "box-w1"}, later  # the new worker 0 too
                assert sorted(outcomes) == sorted(set(outcomes))  # one outcome per call

                idle = await http.post(f"{sim_url}/sim/wait-idle", params={"timeout": 15})
                assert idle.status_code == 200
                parent.process.send_signal(signal.SIGTERM)
                with trio.fail_after(30):
                    assert await parent.process.wait() == 0
                exits = {
                    int(str(e["worker"])): e["exit_status"] for e in parent.named("worker.exited")
                }
                assert exits == {0: 0, 1: 0}  # both drained and stopped cleanly
            stop_customer.set()
            nursery.cancel_scope.cancel()
