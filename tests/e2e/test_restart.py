"""Restart safety with real processes: the service is killed (SIGKILL) mid-call and restarted.

The simulator runs in its own process (it must outlive the service), the customer endpoint in
this one. After the restart the service must end the legs the dead process left ringing, hang
up the lead, and deliver the call's outcome exactly once.
"""

from __future__ import annotations

import signal
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio
from quart import request
from quart_trio import QuartTrio

from orchestrator.config import ServerSettings
from server.http import serve_http
from tests.support.processes import child
from tests.support.service import free_port

pytestmark = pytest.mark.e2e
AGENTS = ("8885551111", "9492651111")
PLAN = {
    "AgentEmailAddresses": "a@xyz.com,b@xyz.com",
    "AgentFiveMinApps": "0,0",
    "AgentID": "328290,328999",
    "AgentNames": "A B,C D",
    "AgentNMLS": "1,2",
    "AgentPhones": ",".join(AGENTS),
    "AgentTier": "1,1",
    "AgentRow": "1,2",
}
SERVICE_TOML = """\
[server]
bind = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
drain_s = 1.0
[store]
url = "sqlite:///{db}"
[carrier]
kind = "plivo"
auth_id = "MASIMULATOR000000000"
auth_token = "simulator-auth-token"
api_url = "{sim}"
calls_per_second = 20.0
[routing]
ring_timeout_s = 600.0
plan_timeout_s = 30.0
[outbox]
first_retry_s = 0.2
[log]
level = "info"
[[campaigns]]
name = "acme"
numbers = ["8005550100"]
plantype = "Purchase"
initial_post_url = "{customer}/initial"
outcome_post_url = "{customer}/outcome"
"""


async def test_kill_9_mid_call_then_restart_ends_legs_and_delivers_once(tmp_path: Path) -> None:
    outcomes: list[tuple[str, dict[str, str]]] = []
    customer = QuartTrio("customer")

    @customer.get("/initial")
    async def initial() -> dict[str, str]:
        return {**PLAN, "TrackingGUID": request.args["TrackingGUID"]}

    @customer.post("/outcome")
    async def outcome() -> str:
        outcomes.append((request.headers.get("Idempotency-Key", ""), dict(await request.form)))
        return "ok"

    service_port, sim_port, customer_port = free_port(), free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    config = tmp_path / "service.toml"
    config.write_text(
        SERVICE_TOML.format(
            port=service_port,
            db=tmp_path / "orch.db",
            sim=sim_url,
            customer=f"http://127.0.0.1:{customer_port}",
        )
    )
    async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=10) as http:
        stop_customer = trio.Event()
        customer_settings = ServerSettings(
            bind=f"127.0.0.1:{customer_port}",
            public_url=f"http://127.0.0.1:{customer_port}",
            drain_s=0.5,
        )
        await nursery.start(
            partial(serve_http, customer, customer_settings, shutdown_event=stop_customer)
        )
        async with child(
            nursery,
            "simulate",
            "--bind",
            f"127.0.0.1:{sim_port}",
            "--time-scale",
            "0.05",
            "--cps",
            "0",
            "--answer-url",
            f"http://127.0.0.1:{service_port}/plivo/answer",
            "--hangup-url",
            f"http://127.0.0.1:{service_port}/plivo/hangup",
        ) as sim:
            await sim.wait_for("sim.serving")
            agents = {phone: {"no_answer": True} for phone in AGENTS}
            assert (await http.post(f"{sim_url}/sim/agents", json={"agents": agents})).is_success

            async with child(nursery, "serve", "--config", str(config)) as first:
                await first.wait_for("service.started")
                placed = await http.post(
                    f"{sim_url}/sim/inbound",
                    json={"from": "19495550000", "to": "18005550100", "lead": {}},
                )
                assert placed.status_code == 201
                await first.wait_for("leg.originated", count=2)
                first.process.send_signal(signal.SIGKILL)
                await first.process.wait()
            state = (await http.get(f"{sim_url}/sim/state")).json()
            assert len(state["live_calls"]) == 3  # the lead and two ringing agents, orphaned

            async with child(nursery, "serve", "--config", str(config)) as second:
                await second.wait_for("service.started")
                (recovered,) = [e for e in second.events if e["event"] == "call.recovered"]
                assert (recovered["legs_ended"], recovered["lead_hung_up"]) == (2, True)
                await second.wait_for("outcome.delivered")
                idle = await http.post(f"{sim_url}/sim/wait-idle", params={"timeout": 10})
                assert idle.status_code == 200
                second.process.send_signal(signal.SIGTERM)
                with trio.fail_after(20):
                    assert await second.process.wait() == 0
            state = (await http.get(f"{sim_url}/sim/state")).json()
            assert state["live_calls"] == []
        stop_customer.set()
        nursery.cancel_scope.cancel()
    ((key, form),) = outcomes  # exactly one delivery
    assert form["Agent1ID"] == "999999"
    assert key == form["TrackingGUID"]
