"""PlivoCarrier against a fake Plivo REST API (``httpx.MockTransport``), and its token bucket.

All in memory: timing tests run under ``autojump_clock`` and assert exact ``trio.current_time()``
values of the requests the fake saw.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import structlog
import trio
import trio.lowlevel
import trio.testing
from structlog.testing import capture_logs

from orchestrator.carriers.plivo import rest
from orchestrator.carriers.plivo.ratelimit import TokenBucket
from orchestrator.carriers.plivo.rest import (
    PlivoCarrier,
    RetryPolicy,
    carrier_error,
    originate_body,
    retry_after_s,
)
from orchestrator.carriers.plivo.urls import CallbackUrls
from orchestrator.config import CarrierSettings, ServerSettings, Settings
from orchestrator.errors import CarrierError, CarrierRateLimited, ConfigError
from orchestrator.messages import LeadTarget
from orchestrator.ports import Carrier, LegRequest

AUTH_ID = "MA" + "A" * 18
TOKEN = "sim-token"
API = "https://plivo.test"
PUBLIC = "https://orch.example.com"
GUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
ACCOUNT = f"/v1/Account/{AUTH_ID}"

Reply = httpx.Response | BaseException | Callable[[], Awaitable[httpx.Response]]


@dataclass
class Seen:
    method: str
    path: str
    body: Any
    headers: httpx.Headers
    at: float
    raw_path: bytes = b""


@dataclass
class FakePlivo:
    """A scripted Plivo REST API: answers from ``script`` in order, then ``default``."""

    script: list[Reply] = field(default_factory=list)
    default: Reply | None = None
    seen: list[Seen] = field(default_factory=list)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.seen.append(
            Seen(
                request.method,
                request.url.path,
                body,
                request.headers,
                trio.current_time(),
                request.url.raw_path,
            )
        )
        reply = self.script.pop(0) if self.script else self.default
        if reply is None:
            reply = self.ok(request)
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, httpx.Response):
            return reply
        return await reply()

    @staticmethod
    def ok(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(204)
        if request.url.path.endswith("/Call/"):
            n = len(request.url.path)
            return httpx.Response(
                201, json={"message": "call fired", "api_id": "a-1", "request_uuid": f"req-{n}"}
            )
        return httpx.Response(202, json={"message": "call transferred", "api_id": "a-1"})


def leg(leg_id: str = "leg-1", **kw: Any) -> LegRequest:
    values: dict[str, Any] = {
        "tracking_guid": GUID,
        "leg_id": leg_id,
        "to": "9492651111",
        "caller_id": "8005550100",
        "ring_timeout_s": 20.0,
        "caller_name": "Acme",
    }
    values.update(kw)
    return LegRequest(**values)


@pytest.fixture(name="fake")
def _fake() -> FakePlivo:
    return FakePlivo()


@pytest.fixture(name="carrier")
async def _carrier(fake: FakePlivo) -> AsyncIterator[PlivoCarrier]:
    async with PlivoCarrier(
        auth_id=AUTH_ID,
        auth_token=TOKEN,
        api_url=API + "/",
        urls=CallbackUrls(PUBLIC),
        calls_per_second=2.0,
        transport=httpx.MockTransport(fake.handle),
        rng=random.Random(7),
    ) as carrier:
        yield carrier


def rate_limited(retry_after: str | None = None) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return httpx.Response(429, json={"api_id": "a", "error": "too many requests"}, headers=headers)


class TestOriginate:
    """Make Call: exact path, auth and JSON body; the request_uuid is returned."""

    async def test_request_on_the_wire(self, carrier: PlivoCarrier, fake: FakePlivo) -> None:
        request_id = await carrier.originate(leg(ring_timeout_s=20.5))
        [seen] = fake.seen
        assert request_id == f"req-{len(ACCOUNT + '/Call/')}"
        assert (seen.method, seen.path) == ("POST", f"{ACCOUNT}/Call/")
        expected_auth = base64.b64encode(f"{AUTH_ID}:{TOKEN}".encode()).decode()
        assert seen.headers["Authorization"] == f"Basic {expected_auth}"
        assert seen.headers["Content-Type"] == "application/json"
        q = f"call={GUID}&leg=leg-1"
        assert seen.body == {
            "from": "18005550100",
            "to": "19492651111",
            "answer_url": f"{PUBLIC}/plivo/leg/answer?{q}",
            "answer_method": "POST",
            "ring_url": f"{PUBLIC}/plivo/leg/ring?{q}",
            "ring_method": "POST",
            "hangup_url": f"{PUBLIC}/plivo/leg/hangup?{q}",
            "hangup_method": "POST",
            "ring_timeout": 21,
            "caller_name": "Acme",
        }

    def test_body_caps_caller_name_and_omits_it_when_empty(self) -> None:
        urls = CallbackUrls(PUBLIC)
        assert len(originate_body(leg(caller_name="x" * 80), urls)["caller_name"]) == 50
        assert "caller_name" not in originate_body(leg(caller_name=""), urls)

    async def test_queued_call_is_accepted(self, carrier: PlivoCarrier, fake: FakePlivo) -> None:
        fake.script = [httpx.Response(201, json={"message": "call queued", "request_uuid": "q-1"})]
        assert await carrier.originate(leg()) == "q-1"

    @pytest.mark.parametrize(
        "reply",
        [
            httpx.Response(201, json={"message": "call fired"}),
            httpx.Response(201, json={"request_uuid": ["a", "b"]}),
            httpx.Response(201, text="not json"),
        ],
    )
    async def test_answer_without_request_uuid_is_an_error(
        self, carrier: PlivoCarrier, fake: FakePlivo, reply: httpx.Response
    ) -> None:
        fake.script = [reply]
        with pytest.raises(CarrierError, match="request_uuid"):
            await carrier.originate(leg())


class TestNoDuplicateCalls:
    """Originate is never retried once the request may have been placed."""

    @pytest.mark.parametrize(
        "failure",
        [
            httpx.Response(500, json={"error": "internal"}),
            httpx.Response(503, text="unavailable"),
            httpx.ReadError("connection dropped"),
            httpx.RemoteProtocolError("server disconnected"),
            httpx.ReadTimeout("read timed out"),
        ],
    )
    async def test_failure_after_sending_is_not_retried(
        self, carrier: PlivoCarrier, fake: FakePlivo, failure: Reply
    ) -> None:
        fake.script = [failure]
        with pytest.raises(CarrierError):
            await carrier.originate(leg())
        assert len(fake.seen) == 1

    async def test_timeout_is_not_retried(
        self, carrier: PlivoCarrier, fake: FakePlivo, autojump_clock: trio.testing.MockClock
    ) -> None:
        async def slow() -> httpx.Response:
            await trio.sleep(3600)
            raise AssertionError("unreachable")

        fake.script = [slow]
        with pytest.raises(CarrierError, match="timed out"):
            await carrier.originate(leg())
        assert len(fake.seen) == 1
        assert trio.current_time() == pytest.approx(rest.DEFAULT_TIMEOUT_S)

    async def test_connect_error_is_retried_once(
        self, carrier: PlivoCarrier, fake: FakePlivo, autojump_clock: trio.testing.MockClock
    ) -> None:
        fake.script = [httpx.ConnectError("refused")]
        assert await carrier.originate(leg())
        assert len(fake.seen) == 2

    async def test_second_connect_error_is_raised(
        self, carrier: PlivoCarrier, fake: FakePlivo, autojump_clock: trio.testing.MockClock
    ) -> None:
        fake.script = [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow")]
        with pytest.raises(CarrierError, match="ConnectTimeout"):
            await carrier.originate(leg())
        assert len(fake.seen) == 2

    async def test_cancelled_caller_still_gets_the_request_id(
        self, carrier: PlivoCarrier, fake: FakePlivo, autojump_clock: trio.testing.MockClock
    ) -> None:
        async def slow_ok() -> httpx.Response:
            await trio.sleep(1.0)
            return httpx.Response(201, json={"message": "call fired", "request_uuid": "late-1"})

        fake.script = [slow_ok]
        got: list[str] = []
        with trio.move_on_after(0.5) as scope:
            got.append(await carrier.originate(leg()))
            await trio.lowlevel.checkpoint()  # the caller's next checkpoint: cancelled
        assert scope.cancelled_caught
        assert got == ["late-1"]
        assert trio.current_time() == pytest.approx(1.0)

    async def test_cancelled_while_paced_sends_nothing(
        self, carrier: PlivoCarrier, fake: FakePlivo, autojump_clock: trio.testing.MockClock
    ) -> None:
        await carrier.originate(leg("a"))
        await carrier.originate(leg("b"))  # the bucket (2 tokens) is now empty
        with trio.move_on_after(0.1):
            await carrier.originate(leg("c"))
        assert [s.body["answer_url"][-1] for s in fake.seen] == ["a", "b"]


class TestRateLimited:
    """429 means "not executed": back off (Retry-After, or exponential with jitter) and retry."""

    async def test_retry_after_is_honoured(
        self, carrier: PlivoCarrier, fake: FakePlivo, autojump_clock: trio.testing.MockClock
    ) -> None:
        fake.script = [rate_limited("2")]
        assert await carrier.originate(leg())
        assert [s.at for s in fake.seen] == pytest.approx([0.0, 2.0])

    async def test_exponential_backoff_with_jitter(
        self, carrier: PlivoCarrier, fake: FakePlivo, autojump_clock: trio.testing.MockClock
    ) -> None:
        fake.script = [rate_limited(), rate_limited(), rate_limited()]
        await carrier.hangup("c-1")
        gaps = [b.at - a.at for a, b in zip(fake.seen, fake.seen[1:], strict=False)]
        assert len(gaps) == 3
        for attempt, gap in enumerate(gaps, start=1):
            ceiling = 0.5 * 2 ** (attempt - 1)
            assert ceiling / 2 <= gap <= ceiling

    async def test_gives_up_after_the_policy(
        self, fake: FakePlivo, autojump_clock: trio.testing.MockClock
    ) -> None:
        fake.default = rate_limited("1")
        async with PlivoCarrier(
            auth_id=AUTH_ID,
            auth_token=TOKEN,
            api_url=API,
            urls=CallbackUrls(PUBLIC),
            transport=httpx.MockTransport(fake.handle),
            retry=RetryPolicy(rate_limited_attempts=3),
        ) as carrier:
            with pytest.raises(CarrierRateLimited, match="429"):
                await carrier.originate(leg())
        assert len(fake.seen) == 3

    async def test_logs_each_backoff(
        self,
        carrier: PlivoCarrier,
        fake: FakePlivo,
        autojump_clock: trio.testing.MockClock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        fake.script = [rate_limited("1")]
        with capture_logs() as logs:
            monkeypatch.setattr(rest, "logger", structlog.get_logger())
            await carrier.cancel("r-1")
        [entry] = [e for e in logs if e["event"] == "carrier.rate_limited"]
        assert entry["operation"] == "cancel"
        assert entry["retry_in_s"] == 1.0


class TestPacing:
    """Originates are paced by the token bucket (burst 2, refill 2/s at 2 cps)."""

    async def test_five_originates_at_two_per_second(
        self, carrier: PlivoCarrier, fake: FakePlivo, autojump_clock: trio.testing.MockClock
    ) -> None:
        async with trio.open_nursery() as nursery:
            for i in range(5):
                nursery.start_soon(carrier.originate, leg(f"leg-{i}"))
        assert [s.at for s in fake.seen] == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.5])

    async def test_hangups_are_not_paced(
        self, carrier: PlivoCarrier, fake: FakePlivo, autojump_clock: trio.testing.MockClock
    ) -> None:
        for i in range(5):
            await carrier.hangup(f"c-{i}")
        assert [s.at for s in fake.seen] == [0.0] * 5

    async def test_bucket_is_fifo_and_refills_to_burst(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        bucket = TokenBucket(2.0)
        starts: list[tuple[int, float]] = []

        async def take(i: int) -> None:
            await bucket.acquire()
            starts.append((i, trio.current_time()))

        async with trio.open_nursery() as nursery:
            for i in range(4):
                nursery.start_soon(take, i)
                await trio.testing.wait_all_tasks_blocked()
        assert starts == [(0, 0.0), (1, 0.0), (2, pytest.approx(0.5)), (3, pytest.approx(1.0))]
        await trio.sleep(10)  # refills to the burst (2), not beyond
        t0 = trio.current_time()
        for i in range(3):
            await take(10 + i)
        assert [t - t0 for _, t in starts[-3:]] == pytest.approx([0.0, 0.0, 0.5])

    async def test_bucket_takes_a_new_rate_and_holds(
        self, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A cluster share: the rate changes while running; a joining instance holds first."""
        bucket = TokenBucket(2.0)
        bucket.hold(1.5)
        starts: list[float] = []
        for _ in range(2):
            await bucket.acquire()
            starts.append(trio.current_time())
        assert starts == pytest.approx([1.5, 2.0])
        bucket.set_rate(4.0, burst=1)
        for _ in range(3):
            await bucket.acquire()
            starts.append(trio.current_time())
        assert starts[2:] == pytest.approx([2.25, 2.5, 2.75])
        assert (bucket.rate, bucket.burst) == (4.0, 1.0)
        with pytest.raises(ValueError, match="rate"):
            bucket.set_rate(0)

    def test_bucket_arguments(self) -> None:
        assert TokenBucket(0.5).burst == 1
        assert TokenBucket(10).burst == 10
        with pytest.raises(ValueError, match="rate"):
            TokenBucket(0)


class TestEndingCalls:
    """cancel/hangup are idempotent DELETEs; an empty id is refused before anything is sent."""

    async def test_cancel(self, carrier: PlivoCarrier, fake: FakePlivo) -> None:
        await carrier.cancel("req-1")
        [seen] = fake.seen
        assert (seen.method, seen.path, seen.body) == ("DELETE", f"{ACCOUNT}/Request/req-1/", None)

    async def test_hangup(self, carrier: PlivoCarrier, fake: FakePlivo) -> None:
        await carrier.hangup("call-1")
        [seen] = fake.seen
        assert (seen.method, seen.path, seen.body) == ("DELETE", f"{ACCOUNT}/Call/call-1/", None)

    @pytest.mark.parametrize("operation", ["cancel", "hangup"])
    async def test_not_found_is_success(
        self, carrier: PlivoCarrier, fake: FakePlivo, operation: str
    ) -> None:
        fake.default = httpx.Response(404, json={"api_id": "a", "error": "not found"})
        await getattr(carrier, operation)("gone-1")
        await getattr(carrier, operation)("gone-1")
        assert len(fake.seen) == 2

    @pytest.mark.parametrize("bad_id", ["", "   "])
    async def test_empty_ids_are_refused(
        self, carrier: PlivoCarrier, fake: FakePlivo, bad_id: str
    ) -> None:
        with pytest.raises(CarrierError, match="empty call id"):
            await carrier.hangup(bad_id)
        with pytest.raises(CarrierError, match="empty request id"):
            await carrier.cancel(bad_id)
        with pytest.raises(CarrierError, match="empty call id"):
            await carrier.redirect_lead(bad_id, GUID, LeadTarget.VOICEMAIL)
        assert fake.seen == []

    async def test_ids_cannot_escape_the_path(self, carrier: PlivoCarrier, fake: FakePlivo) -> None:
        await carrier.hangup("../Call")
        assert fake.seen[0].raw_path == f"{ACCOUNT}/Call/..%2FCall/".encode()

    async def test_hangup_retries_server_errors(
        self, carrier: PlivoCarrier, fake: FakePlivo, autojump_clock: trio.testing.MockClock
    ) -> None:
        fake.script = [httpx.Response(502), httpx.ReadError("dropped")]
        await carrier.hangup("call-1")
        assert len(fake.seen) == 3

    async def test_hangup_gives_up_after_the_policy(
        self, carrier: PlivoCarrier, fake: FakePlivo, autojump_clock: trio.testing.MockClock
    ) -> None:
        fake.default = httpx.Response(500, json={"error": "boom"})
        with pytest.raises(CarrierError, match="server error"):
            await carrier.hangup("call-1")
        assert len(fake.seen) == RetryPolicy().server_error_attempts

    async def test_auth_failure(self, carrier: PlivoCarrier, fake: FakePlivo) -> None:
        fake.default = httpx.Response(401, json={"error": "authentication failed"})
        with pytest.raises(CarrierError, match="HTTP 401"):
            await carrier.hangup("call-1")
        assert len(fake.seen) == 1


class TestRedirectLead:
    """The Transfer API moves the lead's call to its room or to voicemail."""

    @pytest.mark.parametrize(
        ("target", "path"),
        [
            (LeadTarget.HOLD, "/plivo/room"),
            (LeadTarget.VOICEMAIL, "/plivo/voicemail"),
        ],
    )
    async def test_transfer_body(
        self, carrier: PlivoCarrier, fake: FakePlivo, target: LeadTarget, path: str
    ) -> None:
        await carrier.redirect_lead("lead-1", GUID, target)
        [seen] = fake.seen
        assert (seen.method, seen.path) == ("POST", f"{ACCOUNT}/Call/lead-1/")
        assert seen.body == {
            "legs": "aleg",
            "aleg_url": f"{PUBLIC}{path}?call={GUID}",
            "aleg_method": "POST",
        }

    async def test_not_retried_after_a_server_error(
        self, carrier: PlivoCarrier, fake: FakePlivo
    ) -> None:
        fake.script = [httpx.Response(500)]
        with pytest.raises(CarrierError):
            await carrier.redirect_lead("lead-1", GUID, LeadTarget.VOICEMAIL)
        assert len(fake.seen) == 1

    async def test_missing_call_is_an_error(self, carrier: PlivoCarrier, fake: FakePlivo) -> None:
        fake.script = [httpx.Response(404, json={"error": "call not found"})]
        with pytest.raises(CarrierError, match="call not found"):
            await carrier.redirect_lead("lead-1", GUID, LeadTarget.VOICEMAIL)


class TestConstruction:
    async def test_from_settings(self, fake: FakePlivo) -> None:
        settings = Settings(
            server=ServerSettings(public_url="https://pub.example/"),
            carrier=CarrierSettings(auth_id=AUTH_ID, auth_token=TOKEN, api_url="http://sim:9"),
        )
        async with PlivoCarrier.from_settings(
            settings, transport=httpx.MockTransport(fake.handle)
        ) as carrier:
            await carrier.hangup("c-1")
        assert carrier.urls.public_url == "https://pub.example"
        assert fake.seen[0].path == f"{ACCOUNT}/Call/c-1/"

    async def test_works_through_the_carrier_port(self, fake: FakePlivo) -> None:
        """Typed as the port (mypy checks PlivoCarrier is a Carrier), it ends legs the way
        the port promises: cancel by request id, hang up by call id."""
        plivo = PlivoCarrier(
            auth_id=AUTH_ID,
            auth_token=TOKEN,
            api_url=API,
            urls=CallbackUrls(PUBLIC),
            transport=httpx.MockTransport(fake.handle),
        )
        carrier: Carrier = plivo
        await carrier.cancel("r-1")
        await carrier.hangup("c-1")
        await plivo.aclose()
        assert [(r.method, r.path) for r in fake.seen] == [
            ("DELETE", f"{ACCOUNT}/Request/r-1/"),
            ("DELETE", f"{ACCOUNT}/Call/c-1/"),
        ]

    def test_empty_auth_id_is_a_config_error(self) -> None:
        with pytest.raises(ConfigError, match=r"carrier\.auth_id"):
            PlivoCarrier(auth_id="", auth_token="t", api_url=API, urls=CallbackUrls(PUBLIC))


class TestErrorMapping:
    """One function maps every failure to CarrierError (429 to CarrierRateLimited)."""

    @pytest.mark.parametrize(
        ("failure", "kind", "text"),
        [
            (httpx.Response(429), CarrierRateLimited, "429"),
            (httpx.Response(401, json={"error": "bad creds"}), CarrierError, "bad creds"),
            (httpx.Response(400, text="plain"), CarrierError, "rejected (HTTP 400) plain"),
            (httpx.Response(503), CarrierError, "server error"),
            (httpx.ReadTimeout("t"), CarrierError, "timed out"),
            (trio.TooSlowError(), CarrierError, "timed out"),
            (httpx.ReadError("reset"), CarrierError, "ReadError"),
        ],
    )
    def test_mapping(self, failure: httpx.Response | BaseException, kind: type, text: str) -> None:
        error = carrier_error("originate", failure)
        assert type(error) is kind
        assert text in str(error)
        assert str(error).startswith("plivo originate")

    def test_retry_after_parsing(self) -> None:
        now = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
        assert retry_after_s("3") == 3.0
        assert retry_after_s("-3") == 0.0
        assert retry_after_s("Mon, 01 Jan 2024 12:00:05 GMT", now=now) == 5.0
        assert retry_after_s("soon") is None
        assert retry_after_s("nan") is None
        assert retry_after_s(None) is None
