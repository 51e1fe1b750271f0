"""The real Plivo SDK against the simulator's REST surface, and SDK-validated webhooks.

The SDK client is pointed at the simulator with docs/plivo.md §5.2's per-instance ``send_request``
override and runs in a worker thread (it is synchronous). Webhooks land on a
:class:`FakeApplication` that validates each with ``plivo.utils.validate_v3_signature`` against
the URL it was called at.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import pytest
import trio
from plivo import exceptions
from plivo.rest.client import Client

from simulator import (
    DEFAULT_AUTH_ID,
    AgentScript,
    EventKind,
    RunningSimulator,
    Simulator,
    SimulatorConfig,
    start_simulator,
)
from simulator.server import serve_app
from simulator.testing import CapturedRequest, FakeApplication

TOKEN = "sdk-test-token-0123456789"
AGENT = "+14155550111"
DID = "+18005550100"
DEADLINE_S = 10.0
T = TypeVar("T")


class SimClient(Client):  # type: ignore[misc]
    """docs/plivo.md §5.2: rewrite the SDK's base URL per instance (fallback URLs included)."""

    def __init__(self, *args: Any, sim_base: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sim = sim_base.rstrip("/")

    def send_request(self, request: Any, **kwargs: Any) -> Any:
        request.url = request.url.replace("https://api.plivo.com", self._sim, 1)
        return super().send_request(request, **kwargs)


async def sdk(fn: Callable[[], T]) -> T:
    """Run a blocking SDK call in a worker thread."""
    return await trio.to_thread.run_sync(fn)


@pytest.fixture(name="fake")
async def _fake(nursery: trio.Nursery) -> FakeApplication:
    fake = FakeApplication(auth_token=TOKEN)
    fake.base_url = await nursery.start(serve_app, fake.app, "127.0.0.1:0")
    return fake


@pytest.fixture(name="running")
async def _running(nursery: trio.Nursery, fake: FakeApplication) -> RunningSimulator:
    config = SimulatorConfig(
        bind="127.0.0.1:0",
        auth_token=TOKEN,
        answer_url=fake.url("/answer"),
        hangup_url=fake.url("/hangup"),
        time_scale=0.01,
        cps=0,
        webhook_timeout_s=2.0,
    )
    running: RunningSimulator = await nursery.start(start_simulator, config)
    return running


@pytest.fixture(name="client")
def _client(running: RunningSimulator) -> SimClient:
    return SimClient(auth_id=DEFAULT_AUTH_ID, auth_token=TOKEN, sim_base=running.url, timeout=5)


def _create(client: SimClient, fake: FakeApplication, to: str = AGENT, **kw: Any) -> Any:
    return client.calls.create(
        from_=DID,
        to_=to,
        answer_url=fake.url("/agent"),
        hangup_url=fake.url("/agent-hangup"),
        ring_url=fake.url("/ring"),
        caller_name="Acme",
        ring_timeout=30,
        time_limit=600,
        **kw,
    )


async def _wait(fake: FakeApplication, path: str, count: int = 1) -> list[CapturedRequest]:
    with trio.fail_after(DEADLINE_S):
        return await fake.wait_requests(path, count)


async def _idle(sim: Simulator) -> None:
    with trio.fail_after(DEADLINE_S):
        await sim.wait_idle()
    assert sim.live_calls() == []


class TestRestWithSdk:
    """The SDK's call operations work unchanged against the simulator."""

    async def test_make_call_and_cancel_request(
        self, running: RunningSimulator, client: SimClient, fake: FakeApplication
    ) -> None:
        """calls.create -> 'call fired' + request_uuid; calls.cancel -> hangup cause 1000."""
        running.simulator.scripts.set(AGENT, AgentScript(no_answer=True))
        response = await sdk(lambda: _create(client, fake))
        assert response.message == "call fired"
        assert response.request_uuid
        assert response.api_id
        (ring,) = await _wait(fake, "/ring")
        assert ring.form["RequestUUID"] == response.request_uuid
        assert ring.form["CallerName"] == "Acme"
        assert await sdk(lambda: client.calls.cancel(response.request_uuid)) is None
        (hangup,) = await _wait(fake, "/agent-hangup")
        assert (hangup.form["HangupCauseCode"], hangup.form["HangupSource"]) == (
            "1000",
            "API Request",
        )
        await _idle(running.simulator)

    async def test_list_live_hangup(
        self, running: RunningSimulator, client: SimClient, fake: FakeApplication
    ) -> None:
        """live_calls.list_ids/get see an answered call; calls.delete hangs it up (204)."""
        running.simulator.scripts.set(AGENT, AgentScript(answer_after_s=0.5))
        fake.reply("/agent", '<Response><Wait length="600"/></Response>')
        await sdk(lambda: _create(client, fake))
        (answer,) = await _wait(fake, "/agent")
        call_uuid = answer.form["CallUUID"]
        listed = await sdk(lambda: client.live_calls.list_ids())
        assert call_uuid in listed.calls
        live = await sdk(lambda: client.live_calls.get(call_uuid))
        assert (live.call_uuid, live.direction, live.to) == (call_uuid, "outbound", "14155550111")
        assert await sdk(lambda: client.calls.delete(call_uuid)) is None
        (hangup,) = await _wait(fake, "/agent-hangup")
        assert (hangup.form["HangupCauseCode"], hangup.form["HangupSource"]) == (
            "4000",
            "API Request",
        )
        with pytest.raises(exceptions.ResourceNotFoundError):
            await sdk(lambda: client.calls.delete(call_uuid))
        await _idle(running.simulator)

    async def test_transfer_and_record(
        self, running: RunningSimulator, client: SimClient, fake: FakeApplication
    ) -> None:
        """calls.transfer runs the aleg_url XML; calls.record returns url/recording_id."""
        running.simulator.scripts.set(AGENT, AgentScript(answer_after_s=0.5))
        fake.reply("/agent", '<Response><Wait length="600"/></Response>')
        fake.reply("/xfer", "<Response><Speak>Moved.</Speak><Hangup/></Response>")
        await sdk(lambda: _create(client, fake))
        (answer,) = await _wait(fake, "/agent")
        call_uuid = answer.form["CallUUID"]
        record = await sdk(lambda: client.calls.record(call_uuid, callback_url=fake.url("/rec")))
        assert record.recording_id
        assert record.url.endswith(".mp3")
        moved = await sdk(
            lambda: client.calls.transfer(call_uuid, legs="aleg", aleg_url=fake.url("/xfer"))
        )
        assert moved.message == "call transferred"
        (xfer,) = await _wait(fake, "/xfer")
        assert xfer.form["CallUUID"] == call_uuid
        (hangup,) = await _wait(fake, "/agent-hangup")
        assert hangup.form["HangupSource"] == "Answer XML"
        (rec,) = await _wait(fake, "/rec")
        assert (rec.form["recording_id"], rec.form["call_uuid"]) == (
            record.recording_id,
            call_uuid,
        )
        await _idle(running.simulator)

    async def test_bulk_and_queue(
        self, running: RunningSimulator, client: SimClient, fake: FakeApplication
    ) -> None:
        """A '<'-joined destination list answers 'calls fired' with a list of request ids."""
        running.simulator.scripts.set("14155550112", AgentScript(busy=True))
        running.simulator.scripts.set(AGENT, AgentScript(busy=True))
        response = await sdk(lambda: _create(client, fake, to=f"{AGENT}<+14155550112"))
        assert response.message == "calls fired"
        assert len(response.request_uuid) == 2
        hangups = await _wait(fake, "/agent-hangup", 2)
        assert {h.form["CallStatus"] for h in hangups} == {"busy"}
        await _idle(running.simulator)

    async def test_errors(
        self, running: RunningSimulator, client: SimClient, fake: FakeApplication
    ) -> None:
        """Wrong token -> AuthenticationError; unknown ids -> ResourceNotFoundError."""
        bad = SimClient(auth_id=DEFAULT_AUTH_ID, auth_token="wrong", sim_base=running.url)
        with pytest.raises(exceptions.AuthenticationError):
            await sdk(lambda: _create(bad, fake))
        with pytest.raises(exceptions.ResourceNotFoundError):
            await sdk(lambda: client.calls.cancel("no-such-request"))
        with pytest.raises(exceptions.ResourceNotFoundError):
            await sdk(
                lambda: client.calls.transfer("no-such-call", legs="aleg", aleg_url=fake.url("/x"))
            )
        with pytest.raises(exceptions.ResourceNotFoundError):
            await sdk(lambda: client.live_calls.get("no-such-call"))
        errors = [
            e
            for e in running.simulator.log.events(EventKind.API_REQUEST)
            if e.data["status"] in (401, 404)
        ]
        assert len(errors) == 4

    async def test_rate_limit(self, nursery: trio.Nursery, fake: FakeApplication) -> None:
        """With a REST rate limit, requests beyond it get 429 (a generic PlivoRestError)."""
        config = SimulatorConfig(
            bind="127.0.0.1:0", auth_token=TOKEN, time_scale=0.01, rate_limit_per_5s=1
        )
        running: RunningSimulator = await nursery.start(start_simulator, config)
        client = SimClient(auth_id=DEFAULT_AUTH_ID, auth_token=TOKEN, sim_base=running.url)
        await sdk(lambda: client.live_calls.list_ids())
        with pytest.raises(exceptions.PlivoRestError, match="429"):
            await sdk(lambda: client.live_calls.list_ids())


class TestSignedWebhooks:
    """Every webhook validates with plivo.utils.validate_v3_signature (POST and GET)."""

    async def test_post_webhooks_validate(
        self, running: RunningSimulator, client: SimClient, fake: FakeApplication
    ) -> None:
        """ring, answer, action and hangup requests are form-encoded and correctly signed."""
        running.simulator.scripts.set(
            AGENT, AgentScript(answer_after_s=0.5, press="1", press_after_s=0.5)
        )
        fake.reply(
            "/agent",
            f'<Response><GetDigits action="{fake.url("/digits?leg=7")}" numDigits="1"/></Response>',
        )
        await sdk(lambda: _create(client, fake))
        await _wait(fake, "/agent-hangup")
        paths = [r.path for r in fake.requests]
        assert paths == ["/ring", "/agent", "/digits", "/agent-hangup"]
        assert all(r.method == "POST" and r.form for r in fake.requests)
        assert all(r.signature_valid and r.ma_signature_valid for r in fake.requests)
        assert all(
            r.headers["Content-Type"] == "application/x-www-form-urlencoded" for r in fake.requests
        )
        assert fake.to("/digits")[0].url.endswith("/digits?leg=7")
        await _idle(running.simulator)

    async def test_get_webhooks_validate(
        self, running: RunningSimulator, client: SimClient, fake: FakeApplication
    ) -> None:
        """With *_method=GET the fields travel in the query string and still validate."""
        running.simulator.scripts.set(AGENT, AgentScript(answer_after_s=0.5))
        fake.reply("/agent", "<Response><Hangup/></Response>")
        await sdk(
            lambda: client.calls.create(
                from_=DID,
                to_=AGENT,
                answer_url=fake.url("/agent?x=1"),
                answer_method="GET",
                hangup_url=fake.url("/agent-hangup"),
                hangup_method="GET",
            )
        )
        (hangup,) = await _wait(fake, "/agent-hangup")
        (answer,) = fake.to("/agent")
        assert answer.method == "GET"
        assert not answer.form
        assert answer.args["x"] == "1"
        assert answer.args["From"] == "18005550100"
        assert hangup.args["HangupCauseCode"] == "4000"
        assert answer.signature_valid
        assert hangup.signature_valid
        await _idle(running.simulator)

    async def test_tampered_request_fails_validation(self, fake: FakeApplication) -> None:
        """Sanity check of the receiver: a forged signature does not validate."""
        async with httpx.AsyncClient() as http:
            await http.post(
                fake.url("/forged"),
                data={"CallUUID": "x"},
                headers={
                    "X-Plivo-Signature-V3": "forged",
                    "X-Plivo-Signature-V3-Nonce": "1",
                },
            )
        assert fake.to("/forged")[0].signature_valid is False
