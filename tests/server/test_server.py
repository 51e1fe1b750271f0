"""The HTTP runner (``server.http``), the probes, the #225 guard, and ``serve`` itself.

Rules: real sockets on 127.0.0.1 with port 0 (no autojump clock here: real I/O), a short
absolute ``fail_after`` around every wait, and no sleeps as assertions — a slow request is
held open by an event the test controls. The server runs in the test's ``nursery`` with
``nursery.start``; each test stops it through its shutdown event and waits for it to return.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import h11
import httpx
import orjson
import pytest
import structlog
import trio
import trio.testing
from hypercorn.config import Config
from hypercorn.trio import run as hypercorn_run
from hypercorn.trio import serve
from hypercorn.trio.tcp_server import TCPServer
from quart import Blueprint
from quart_trio import QuartTrio

from orchestrator.config import ServerSettings, Settings
from orchestrator.model import RoutingPlan
from server.guard import (
    GuardInstallError,
    check_hypercorn_internals,
    connection_guard_installed,
)
from server.http import hypercorn_config, serve_http, stop_on_signals
from tests.support.paths import REPO
from web.app import create_app

TIMEOUT = 10.0

#: hypercorn #225: a WebSocket upgrade request with one trailing byte after the headers.
WS_UPGRADE_PLUS_ONE_BYTE = (
    b"GET / HTTP/1.1\r\n"
    b"Host: 127.0.0.1\r\n"
    b"Connection: Upgrade\r\n"
    b"Upgrade: websocket\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Key: bKdPyn3u98cTfZJSh4TNeQ==\r\n"
    b"\r\n"
    b"x"
)


@dataclass
class FakeService:
    """A stand-in :class:`web.call_service.CallService` with settable readiness."""

    ready: bool = True
    live_calls: int = 0
    plans: list[RoutingPlan] = field(default_factory=list)

    async def submit_plan(self, plan: RoutingPlan) -> RoutingPlan:
        self.plans.append(plan)
        return plan


@dataclass
class SlowRoute:
    """``GET /slow`` that blocks until the test releases it."""

    entered: trio.Event = field(default_factory=trio.Event)
    release: trio.Event = field(default_factory=trio.Event)

    def blueprint(self) -> Blueprint:
        bp = Blueprint("slow", __name__)

        @bp.get("/slow")
        async def slow() -> dict[str, str]:
            self.entered.set()
            await self.release.wait()
            return {"slow": "done"}

        return bp


@dataclass
class Running:
    """A server started in the test's nursery."""

    url: str
    port: int
    shutdown: trio.Event
    stopped: trio.Event

    async def stop(self) -> None:
        self.shutdown.set()
        with trio.fail_after(TIMEOUT):
            await self.stopped.wait()


async def start_server(nursery: trio.Nursery, app: QuartTrio, *, drain_s: float = 5.0) -> Running:
    shutdown, stopped = trio.Event(), trio.Event()
    settings = ServerSettings(bind="127.0.0.1:0", drain_s=drain_s)

    async def run(*, task_status: trio.TaskStatus[list[str]]) -> None:
        try:
            await serve_http(app, settings, shutdown_event=shutdown, task_status=task_status)
        finally:
            stopped.set()

    with trio.fail_after(TIMEOUT):
        binds = await nursery.start(partial(run))
    url = binds[0]
    return Running(url, int(url.rsplit(":", 1)[1]), shutdown, stopped)


@pytest.fixture(name="service")
def _service() -> FakeService:
    return FakeService()


@pytest.fixture(name="slow")
def _slow() -> SlowRoute:
    return SlowRoute()


@pytest.fixture(name="server")
async def _server(
    nursery: trio.Nursery, service: FakeService, slow: SlowRoute
) -> AsyncIterator[Running]:
    app = create_app(service, Settings(), blueprints=[slow.blueprint()])
    running = await start_server(nursery, app)
    yield running
    slow.release.set()
    await running.stop()


async def read_until_closed(stream: trio.abc.ReceiveStream) -> bytes:
    received = bytearray()
    while chunk := await stream.receive_some(65536):
        received += chunk
    return bytes(received)


async def serve_until_crash(app: QuartTrio, config: Config) -> None:
    """Run plain ``hypercorn.trio.serve`` and send it the #225 request; returns only by raising."""
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(serve, app, config)
            port = int(binds[0].rsplit(":", 1)[1])
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.send_all(WS_UPGRADE_PLUS_ONE_BYTE)
            await read_until_closed(stream)
            await trio.sleep_forever()  # until the crash tears the nursery down


class TestConfig:
    """serve_http builds hypercorn's config from ``[server]``."""

    def test_config_from_settings(self) -> None:
        config = hypercorn_config(ServerSettings(bind="127.0.0.1:9999", drain_s=3.5))
        assert config.bind == ["127.0.0.1:9999"]
        assert config.accesslog is None
        assert config.graceful_timeout == 3.5


class TestProbes:
    """/healthz is liveness; /readyz follows the service's readiness."""

    async def test_healthz(self, server: Running) -> None:
        async with httpx.AsyncClient(base_url=server.url) as client:
            response = await client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    async def test_readyz_ready(self, server: Running, service: FakeService) -> None:
        service.live_calls = 3
        async with httpx.AsyncClient(base_url=server.url) as client:
            response = await client.get("/readyz")
        assert response.status_code == 200
        assert response.json() == {"status": "ready", "live_calls": 3}

    async def test_readyz_not_ready(self, server: Running, service: FakeService) -> None:
        service.ready = False
        async with httpx.AsyncClient(base_url=server.url) as client:
            response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json() == {"status": "not ready", "live_calls": 0}


class TestJsonErrors:
    """Quart's own errors come back as JSON ``{"error": ...}``."""

    async def test_unknown_route_is_json_404(self, server: Running) -> None:
        async with httpx.AsyncClient(base_url=server.url) as client:
            response = await client.get("/nope")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"error": "not found"}

    async def test_wrong_method_is_json_405_with_allow(self, server: Running) -> None:
        async with httpx.AsyncClient(base_url=server.url) as client:
            response = await client.delete("/healthz")
        assert response.status_code == 405
        assert response.json() == {"error": "method not allowed"}
        assert "GET" in response.headers["allow"]

    async def test_oversized_body_is_json_413(self, server: Running) -> None:
        async with httpx.AsyncClient(base_url=server.url) as client:
            response = await client.post(
                "/responsecollect",
                content=b"a=" + b"x" * 300_000,
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
        assert response.status_code == 413
        assert "larger than" in response.json()["error"]

    async def test_route_crash_is_json_500(self, nursery: trio.Nursery) -> None:
        bp = Blueprint("boom", __name__)

        @bp.get("/boom")
        async def boom() -> str:
            raise RuntimeError("kaboom")

        app = create_app(FakeService(), Settings(), blueprints=[bp])
        running = await start_server(nursery, app)
        with structlog.testing.capture_logs() as logs:
            async with httpx.AsyncClient(base_url=running.url) as client:
                response = await client.get("/boom")
        await running.stop()
        assert response.status_code == 500
        assert response.json() == {"error": "internal server error"}
        assert [e["event"] for e in logs if e["log_level"] == "error"] == ["http.request_failed"]


class TestHypercorn225Guard:
    """A WebSocket upgrade plus one byte loses only its own connection (hypercorn #225)."""

    async def test_service_survives_the_225_request(self, server: Running) -> None:
        assert connection_guard_installed()
        with structlog.testing.capture_logs() as logs, trio.fail_after(TIMEOUT):
            stream = await trio.open_tcp_stream("127.0.0.1", server.port)
            await stream.send_all(WS_UPGRADE_PLUS_ONE_BYTE)
            await read_until_closed(stream)  # the server closes this one connection
            await stream.aclose()
            async with httpx.AsyncClient(base_url=server.url) as client:
                response = await client.get("/healthz")
        assert response.status_code == 200
        assert "http.connection_crashed" in [e["event"] for e in logs]

    async def test_unguarded_hypercorn_still_crashes(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Proves the guard test is real; if this starts failing, hypercorn fixed #225."""
        monkeypatch.setattr(hypercorn_run, "TCPServer", TCPServer)
        config = Config()
        config.bind = ["127.0.0.1:0"]
        config.accesslog = None
        config.errorlog = None
        app = create_app(FakeService(), Settings())
        with pytest.raises(BaseExceptionGroup) as info:
            await serve_until_crash(app, config)
        assert info.value.subgroup(h11.LocalProtocolError) is not None

    def test_internals_check_fails_loudly_when_hypercorn_moves(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        check_hypercorn_internals()  # the installed hypercorn has the expected shape
        monkeypatch.setattr(hypercorn_run, "TCPServer", object)
        with pytest.raises(GuardInstallError, match="TCPServer"):
            check_hypercorn_internals()


class TestGracefulShutdown:
    """The shutdown event refuses new connections and stops after in-flight requests finish."""

    async def test_in_flight_request_completes_and_server_returns(
        self, server: Running, slow: SlowRoute, nursery: trio.Nursery
    ) -> None:
        result: list[httpx.Response] = []

        async def slow_request() -> None:
            async with httpx.AsyncClient(base_url=server.url) as client:
                result.append(await client.get("/slow"))

        nursery.start_soon(slow_request)
        with trio.fail_after(TIMEOUT):
            await slow.entered.wait()
        server.shutdown.set()
        await trio.testing.wait_all_tasks_blocked()
        assert not server.stopped.is_set()  # still draining the slow request
        with pytest.raises(OSError, match="all attempts to connect"), trio.fail_after(TIMEOUT):
            await trio.open_tcp_stream("127.0.0.1", server.port)  # new connections refused
        slow.release.set()
        with trio.fail_after(TIMEOUT):
            await server.stopped.wait()
        assert [r.status_code for r in result] == [200]
        assert result[0].json() == {"slow": "done"}

    async def test_drain_deadline_cancels_stuck_request(
        self, nursery: trio.Nursery, slow: SlowRoute
    ) -> None:
        app = create_app(FakeService(), Settings(), blueprints=[slow.blueprint()])
        running = await start_server(nursery, app, drain_s=0.2)
        errors: list[Exception] = []
        failed = trio.Event()

        async def stuck_request() -> None:
            try:
                async with httpx.AsyncClient(base_url=running.url) as client:
                    await client.get("/slow")
            except httpx.HTTPError as exc:
                errors.append(exc)
                failed.set()

        nursery.start_soon(stuck_request)
        with trio.fail_after(TIMEOUT):
            await slow.entered.wait()
        await running.stop()  # returns although /slow never releases
        with trio.fail_after(TIMEOUT):
            await failed.wait()
        assert isinstance(errors[0], httpx.RemoteProtocolError)  # cut off, no response


class TestStopOnSignals:
    """The first SIGTERM or SIGINT sets the shutdown event (and is logged)."""

    @pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
    async def test_signal_sets_event(self, nursery: trio.Nursery, signum: signal.Signals) -> None:
        shutdown, returned = trio.Event(), trio.Event()

        async def watch(*, task_status: trio.TaskStatus[None]) -> None:
            await stop_on_signals(shutdown, task_status=task_status)
            returned.set()

        await nursery.start(partial(watch))
        assert not shutdown.is_set()
        with structlog.testing.capture_logs() as logs, trio.fail_after(TIMEOUT):
            os.kill(os.getpid(), signum)
            await returned.wait()
        assert shutdown.is_set()
        assert logs == [{"event": "service.stopping", "log_level": "info", "signal": signum.name}]


# --- the real command ---------------------------------------------------------------------------

SERVE_TOML = """\
[server]
bind = "127.0.0.1:0"
drain_s = 2.0

[store]
url = "sqlite:///{db}"

[carrier]
kind = "simulator"

[log]
level = "info"

[[campaigns]]
name = "acme"
numbers = ["8005550100"]
plantype = "Purchase"
initial_post_url = "http://127.0.0.1:9/initial"
outcome_post_url = "http://127.0.0.1:9/outcome"
"""


async def _read_events_until(
    stdout: trio.abc.ReceiveStream, wanted: str, events: list[dict[str, object]]
) -> None:
    buffer = b""
    while True:
        chunk = await stdout.receive_some(65536)
        if not chunk:
            raise AssertionError(f"process closed stdout before {wanted!r}; saw {events}")
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.startswith(b"{"):
                events.append(orjson.loads(line))
        if any(e.get("event") == wanted for e in events):
            return


@pytest.mark.e2e
class TestServeCommand:
    """``python -m orchestrator serve`` stops cleanly on SIGTERM (needs server.wiring)."""

    async def test_sigterm_exits_zero(self, tmp_path: Path) -> None:
        path = tmp_path / "serve.toml"
        path.write_text(SERVE_TOML.format(db=tmp_path / "orch.db"))
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "orchestrator", "serve", "--config", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
            env=env,
        )
        events: list[dict[str, object]] = []
        try:
            assert process.stdout is not None
            assert process.stderr is not None
            try:
                with trio.fail_after(20):
                    await _read_events_until(process.stdout, "service.started", events)
            except AssertionError as exc:
                with trio.move_on_after(5):
                    stderr = await read_until_closed(process.stderr)
                raise AssertionError(f"{exc}\nstderr:\n{stderr.decode(errors='replace')}") from None
            process.send_signal(signal.SIGTERM)
            with trio.fail_after(20):
                await _read_events_until(process.stdout, "service.stopping", events)
                code = await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert code == 0
        assert [e["signal"] for e in events if e["event"] == "service.stopping"] == ["SIGTERM"]
