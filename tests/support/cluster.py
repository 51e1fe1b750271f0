"""A real cluster on 127.0.0.1 for end-to-end tests: N ``orchestrator serve`` processes on one
fresh PostgreSQL database, haproxy in front, the simulator in its own process, and a customer
endpoint in this one.

- :func:`pg_database` creates a database of its own on the test server and drops it afterwards
  (skipped when PostgreSQL is unreachable, unless ``ORCH_REQUIRE_PG=1``);
- :func:`haproxy_program` finds Debian's haproxy (skipped when absent, unless
  ``ORCH_REQUIRE_HAPROXY=1``, as CI sets); :func:`haproxy_config` is the balancer's config:
  round robin over the instances, each checked on ``/readyz``;
- :func:`instance_toml` is one instance's config: ``public_url`` the balancer, its own
  ``callback_url`` (or the balancer's, to have its callbacks misrouted on purpose), the
  ``[cluster]`` table with one shared secret;
- :class:`Cluster` starts and stops the processes (:func:`open_cluster`) and reads what they
  logged and served.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import trio
from quart_trio import QuartTrio

from orchestrator.config import SIMULATOR_AUTH_ID, SIMULATOR_AUTH_TOKEN, ServerSettings
from server.http import serve_http
from tests.support.processes import Process, child
from tests.support.service import free_port
from tests.support.stores import PG_URL

CLUSTER_SECRET = "cluster-secret-for-tests-0123456789abcdef"
CAMPAIGN_NUMBER = "8005550100"
API_KEY = "campaign-api-key-0123456789"


@contextmanager
def pg_database() -> Iterator[str]:
    """A new, empty PostgreSQL database on the test server: its URL (dropped afterwards)."""
    name = f"orch_cluster_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(
        PG_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        message = f"PostgreSQL at {PG_URL} is unreachable: {exc.orig}"
        if os.environ.get("ORCH_REQUIRE_PG") == "1":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield sa.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def haproxy_program() -> str:
    found = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
    )
    if found is None:
        message = "haproxy is not installed (apt-get install haproxy)"
        if os.environ.get("ORCH_REQUIRE_HAPROXY") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return found


def haproxy_config(lb_port: int, backends: list[tuple[str, int]]) -> str:
    """The balancer: HTTP mode, round robin, each instance checked on ``/readyz``."""
    servers = "\n".join(
        f"    server {name} 127.0.0.1:{port} check inter 300ms fall 2 rise 1"
        for name, port in backends
    )
    return f"""\
global
    maxconn 2000

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    option http-keep-alive

frontend calls
    bind 127.0.0.1:{lb_port}
    default_backend instances

backend instances
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
{servers}
"""


def instance_toml(
    *,
    instance_id: str,
    port: int,
    lb_url: str,
    callback_url: str,
    db_url: str,
    sim_url: str,
    customer_url: str,
    calls_per_second: float,
    pool: tuple[str, ...],
    extra: str = "",
) -> str:
    numbers = ", ".join(f'"{n}"' for n in pool)
    return f"""\
[server]
bind = "127.0.0.1:{port}"
public_url = "{lb_url}"
callback_url = "{callback_url}"
drain_s = 3.0

[store]
url = "{db_url}"

[carrier]
kind = "plivo"
auth_id = "{SIMULATOR_AUTH_ID}"
auth_token = "{SIMULATOR_AUTH_TOKEN}"
api_url = "{sim_url}"
calls_per_second = {calls_per_second}

[cluster]
instance_id = "{instance_id}"
secret = "{CLUSTER_SECRET}"
heartbeat_s = 0.5
lease_s = 3.0

[routing]
plan_timeout_s = 20.0
ring_timeout_s = 20.0

[outbox]
first_retry_s = 0.2

[log]
level = "info"

[[campaigns]]
name = "acme"
numbers = ["{CAMPAIGN_NUMBER}"]
plantype = "Purchase"
initial_post_url = "{customer_url}/initial"
outcome_post_url = "{customer_url}/outcome"
api_key = "{API_KEY}"
tracking_numbers = [{numbers}]
{extra}"""


@dataclass
class Instance:
    instance_id: str
    port: int
    config: Path
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Cluster:
    """The running cluster (see the module docstring)."""

    nursery: trio.Nursery
    tmp: Path
    db_url: str
    lb_url: str
    sim_url: str
    customer_url: str
    http: httpx.AsyncClient
    instances: list[Instance]
    sim: Process
    haproxy: Process
    time_scale: float
    exits: dict[str, int] = field(default_factory=dict)

    def instance(self, instance_id: str) -> Instance:
        return next(i for i in self.instances if i.instance_id == instance_id)

    def proc(self, instance_id: str) -> Process:
        process = self.instance(instance_id).process
        assert process is not None, f"{instance_id} is not running"
        return process

    async def start(self, instance: Instance) -> Process:
        """Start ``instance`` and wait until it serves (``service.started``)."""
        cm = child(
            self.nursery, "serve", "--config", str(instance.config), name=instance.instance_id
        )
        process = await _enter_for_the_run(self.nursery, cm)
        instance.process = process
        await process.wait_for("service.started", timeout_s=30)
        return process

    async def stop(self, instance: Instance, *, timeout_s: float = 30.0) -> int:
        """SIGTERM, then wait for the exit code (a clean stop drains its calls)."""
        process = instance.process
        assert process is not None
        if process.process.returncode is None:
            process.process.terminate()
        with trio.fail_after(timeout_s):
            code = await process.process.wait()
        self.exits[instance.instance_id] = code
        return code

    def events(self, event: str) -> list[dict[str, object]]:
        """``event`` as logged by every instance started so far (each line with ``_by``)."""
        return [
            {**e, "_by": i.instance_id}
            for i in self.instances
            if i.process is not None
            for e in i.process.named(event)
        ]

    async def metric(self, name: str, **labels: str) -> float:
        """The sum over the running instances of the metric samples ``name{labels}``."""
        total = 0.0
        for instance in self.instances:
            if instance.process is None or instance.process.process.returncode is not None:
                continue
            text = (await self.http.get(f"{instance.url}/metrics")).text
            for line in text.splitlines():
                if not line.startswith(name):
                    continue
                head, _, value = line.rpartition(" ")
                if all(f'{k}="{v}"' in head for k, v in labels.items()):
                    total += float(value)
        return total

    async def sim_events(self, kind: str) -> list[dict[str, Any]]:
        response = await self.http.get(f"{self.sim_url}/sim/events", params={"kind": kind})
        events: list[dict[str, Any]] = response.json()["events"]
        return events

    async def wait_idle(self, timeout_s: float = 30.0) -> None:
        response = await self.http.post(
            f"{self.sim_url}/sim/wait-idle", params={"timeout": timeout_s}, timeout=timeout_s + 5
        )
        assert response.status_code == 200, response.text
        state = (await self.http.get(f"{self.sim_url}/sim/state")).json()
        assert state["live_calls"] == []

    async def place(self, lead_phone: str, to: str = CAMPAIGN_NUMBER, **lead: object) -> str:
        placed = await self.http.post(
            f"{self.sim_url}/sim/inbound",
            json={"from": "1" + lead_phone, "to": "1" + to, "lead": lead},
        )
        assert placed.status_code == 201, placed.text
        call_uuid: str = placed.json()["call_uuid"]
        return call_uuid

    def query(self, sql: str, **params: object) -> list[Any]:
        engine = sa.create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(sa.text(sql), params).all())
        finally:
            engine.dispose()


async def _enter_for_the_run(nursery: trio.Nursery, cm: Any) -> Process:
    """Enter the async context manager ``cm`` in a task of ``nursery`` that holds it open until
    the nursery is cancelled (so a process started mid-test is still reaped)."""

    async def hold(*, task_status: trio.TaskStatus[Process]) -> None:
        async with cm as process:
            task_status.started(process)
            await trio.sleep_forever()

    started: Process = await nursery.start(hold)
    return started


@asynccontextmanager
async def open_cluster(
    tmp: Path,
    customer: QuartTrio,
    *,
    instances: int = 3,
    start: int | None = None,
    calls_per_second: float = 30.0,
    misrouted: tuple[int, ...] = (),
    time_scale: float = 0.05,
    pool: tuple[str, ...] = (),
    extra_toml: Callable[[int], str] = lambda n: "",
) -> AsyncIterator[Cluster]:
    """Start the database, the simulator, the customer, ``instances`` instances and haproxy.

    ``start``: how many of them to start now (the others: ``Cluster.start`` later).
    ``misrouted``: the indexes of instances whose ``callback_url`` is the balancer's, so most
    of the callbacks of their calls reach another instance first (forwarded to the owner).
    """
    haproxy = haproxy_program()
    with pg_database() as db_url:
        lb_port, sim_port, customer_port = free_port(), free_port(), free_port()
        lb_url, sim_url = f"http://127.0.0.1:{lb_port}", f"http://127.0.0.1:{sim_port}"
        customer_url = f"http://127.0.0.1:{customer_port}"
        members = []
        for n in range(instances):
            port = free_port()
            config = tmp / f"i{n}.toml"
            config.write_text(
                instance_toml(
                    instance_id=f"i{n}",
                    port=port,
                    lb_url=lb_url,
                    callback_url=lb_url if n in misrouted else f"http://127.0.0.1:{port}",
                    db_url=db_url,
                    sim_url=sim_url,
                    customer_url=customer_url,
                    calls_per_second=calls_per_second,
                    pool=pool,
                    extra=extra_toml(n),
                )
            )
            members.append(Instance(f"i{n}", port, config))
        lb_config = tmp / "haproxy.cfg"
        lb_config.write_text(haproxy_config(lb_port, [(m.instance_id, m.port) for m in members]))
        async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=15) as http:
            stop_customer = trio.Event()
            settings = ServerSettings(
                bind=f"127.0.0.1:{customer_port}", public_url=customer_url, drain_s=0.5
            )
            await nursery.start(
                lambda task_status: serve_http(
                    customer, settings, shutdown_event=stop_customer, task_status=task_status
                )
            )
            async with (
                child(
                    nursery,
                    "simulate",
                    "--bind",
                    f"127.0.0.1:{sim_port}",
                    "--time-scale",
                    str(time_scale),
                    "--cps",
                    "0",
                    "--answer-url",
                    f"{lb_url}/plivo/answer",
                    "--hangup-url",
                    f"{lb_url}/plivo/hangup",
                    name="simulator",
                ) as sim,
                child(
                    nursery, "-db", "-f", str(lb_config), program=(haproxy,), name="haproxy"
                ) as lb,
            ):
                await sim.wait_for("sim.serving")
                cluster = Cluster(
                    nursery,
                    tmp,
                    db_url,
                    lb_url,
                    sim_url,
                    customer_url,
                    http,
                    members,
                    sim,
                    lb,
                    time_scale,
                )
                # the first instance migrates the new database; the others start beside it
                first, *others = members[: instances if start is None else start]
                await cluster.start(first)
                async with trio.open_nursery() as starting:
                    for member in others:
                        starting.start_soon(cluster.start, member)
                await _wait_balanced(cluster)
                try:
                    yield cluster
                finally:
                    with trio.CancelScope(shield=True):
                        for member in members:
                            if (
                                member.process is not None
                                and member.process.process.returncode is None
                            ):
                                member.process.process.terminate()
                        with trio.move_on_after(20):
                            for member in members:
                                if member.process is not None:
                                    await member.process.process.wait()
            stop_customer.set()
            nursery.cancel_scope.cancel()


async def _wait_balanced(cluster: Cluster) -> None:
    """Until every instance sees every other one and haproxy routes to them all."""
    count = sum(1 for i in cluster.instances if i.process is not None)
    with trio.fail_after(20):
        while True:
            paced = [
                e
                for i in cluster.instances
                if i.process is not None
                for e in i.process.named("carrier.paced")[-1:]
            ]
            if len(paced) == count and all(e.get("live_instances") == count for e in paced):
                break
            await trio.sleep(0.1)
    # haproxy marks an instance up after one good check (every 300 ms)
    await trio.sleep(1.0)
