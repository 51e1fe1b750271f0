"""Hostile and sloppy requests over real HTTP: every one gets a 4xx with a JSON body (never a
5xx, a dropped or a stalled connection), and the connection is usable afterwards — or the
answer said ``Connection: close`` and the server closed it.

Each test replays one finding of the hardening review (``docs/hardening.md``); the raw client
(:mod:`tests.support.raw_http`) sends the exact bytes, in a worker thread, while the whole
service runs in this test's Trio run.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from urllib.parse import quote, urlencode

import orjson
import pytest
import trio

from orchestrator.carriers.plivo import NONCE_HEADER, SIGNATURE_HEADER, sign_v3
from orchestrator.config import OperatorSettings
from tests.support.raw_http import Dropped, RawConnection, RawResponse, Stalled
from tests.support.service import (
    AUTH_TOKEN,
    RunningService,
    running_service,
    service_settings,
)

pytestmark = pytest.mark.e2e
TOKEN = "operator-token-0123456789abcdef"
GUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
PLIVO_PATHS = (
    "/plivo/answer",
    "/plivo/hangup",
    "/plivo/hold",
    "/plivo/room",
    "/plivo/ivr",
    "/plivo/voicemail",
    "/plivo/voicemail/done",
    "/plivo/conference",
    "/plivo/leg/answer",
    "/plivo/leg/ring",
    "/plivo/leg/hangup",
    "/plivo/leg/digits",
)


@pytest.fixture(name="service")
async def _service(tmp_path: Path) -> AsyncIterator[RunningService]:
    settings = service_settings(f"sqlite:///{tmp_path / 'o.db'}")
    settings = replace(settings, operator=OperatorSettings(token=TOKEN))
    async with running_service(settings) as service:
        yield service


def _port(service: RunningService) -> int:
    return service.settings.server.host_port[1]


async def exchange(
    service: RunningService,
    raw: bytes,
    *,
    check: Callable[[RawResponse], None] | None = None,
    method: str = "GET",
) -> RawResponse:
    """Send ``raw`` on a fresh connection (in a thread), then check the keep-alive contract."""

    def run() -> RawResponse:
        with RawConnection("127.0.0.1", _port(service)) as conn:
            answer = conn.exchange(raw, method=method)
            if check is not None:
                check(answer)
            conn.still_usable(answer)
            return answer

    return await trio.to_thread.run_sync(run)


def request(
    method: str, target: str, *, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def assert_json_error(answer: RawResponse, status: int) -> dict[str, object]:
    assert answer.status == status, answer
    assert answer.headers["content-type"] == "application/json", answer
    payload = orjson.loads(answer.body)
    assert isinstance(payload, dict), payload
    assert isinstance(payload.get("error"), str), payload
    return payload


def signed_headers(
    service: RunningService, method: str, target: str, form: dict[str, str] | None = None
) -> dict[str, str]:
    nonce = secrets.token_hex(10)
    url = service.base + target
    signature = sign_v3(method, url, form if method == "POST" else None, AUTH_TOKEN, nonce)
    return {SIGNATURE_HEADER: signature, NONCE_HEADER: nonce}


class TestSignatureCheck:
    """Finding 1: the V3 check answered 500 for a non-ASCII percent-escape in the query."""

    @pytest.mark.parametrize("path", PLIVO_PATHS)
    async def test_unverifiable_query_is_403(self, service: RunningService, path: str) -> None:
        headers = {SIGNATURE_HEADER: "x", NONCE_HEADER: "1"}
        answer = await exchange(service, request("POST", f"{path}?x=%C3%A4", headers=headers))
        assert_json_error(answer, 403)

    async def test_a_non_ascii_query_can_still_be_signed(self, service: RunningService) -> None:
        """A genuine GET callback whose query decodes to non-ASCII (a caller name with an
        accent) verifies: the message is built on text, where the SDK's helper raised."""
        target = "/plivo/hold?" + urlencode({"CallerName": "José Müller", "call": GUID})
        answer = await exchange(
            service, request("GET", target, headers=signed_headers(service, "GET", target))
        )
        assert answer.status == 200, answer
        assert answer.body.startswith(b"<Response>")


MULTIPART_UNNAMED = b'--b\r\nContent-Disposition: form-data; name="\\"\r\n\r\nx\r\n--b--\r\n'


class TestFormDecoding:
    """Finding 2: a multipart part whose name does not parse reached the routes as ``None``."""

    @pytest.mark.parametrize("path", ["/responsecollect", "/responsecollect.aspx", "/referrals"])
    async def test_unnamed_part_is_400(self, service: RunningService, path: str) -> None:
        headers = {"Content-Type": "multipart/form-data; boundary=b"}
        answer = await exchange(
            service, request("POST", path, headers=headers, body=MULTIPART_UNNAMED)
        )
        assert "no readable name" in str(assert_json_error(answer, 400)["error"])

    @pytest.mark.parametrize("path", PLIVO_PATHS)
    async def test_unnamed_part_on_a_carrier_route_cannot_be_verified(
        self, service: RunningService, path: str
    ) -> None:
        headers = {
            "Content-Type": "multipart/form-data; boundary=b",
            SIGNATURE_HEADER: "x",
            NONCE_HEADER: "1",
        }
        answer = await exchange(
            service, request("POST", path, headers=headers, body=MULTIPART_UNNAMED)
        )
        assert_json_error(answer, 403)

    async def test_too_many_parts_says_so(self, service: RunningService) -> None:
        """Finding 9: 1,001 small parts (55 KB) were answered "larger than 262144 bytes"."""
        body = (
            b"".join(
                b'--b\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nx\r\n' % i
                for i in range(1001)
            )
            + b"--b--\r\n"
        )
        headers = {"Content-Type": "multipart/form-data; boundary=b"}
        answer = await exchange(
            service, request("POST", "/responsecollect", headers=headers, body=body)
        )
        assert "more than 1000 parts" in str(assert_json_error(answer, 413)["error"])


class TestHostHeader:
    """Finding 3: a Host label over 63 characters crashed outside every error handler."""

    @pytest.mark.parametrize(
        "path", ["/healthz", "/readyz", "/responsecollect", "/plivo/answer", "/calls", "/nowhere"]
    )
    async def test_long_label_is_400(self, service: RunningService, path: str) -> None:
        raw = f"GET {path} HTTP/1.1\r\nHost: {'a' * 64}\r\n\r\n".encode()
        answer = await exchange(service, raw)
        assert assert_json_error(answer, 400)["error"] == "malformed Host header"
        assert not answer.closes  # nothing was left unread: the connection is kept


class TestCallIds:
    """Finding 4: a NUL in ``call`` reached lxml on the room and IVR documents."""

    @pytest.mark.parametrize(
        "path",
        ["/plivo/room", "/plivo/ivr", "/plivo/voicemail", "/plivo/conference", "/plivo/leg/answer"],
    )
    async def test_nul_in_call_is_400(self, service: RunningService, path: str) -> None:
        target = f"{path}?call={quote(GUID + chr(0))}&leg=leg-1"
        form = {"CallUUID": "c-1", "Digits": "1"}
        body = urlencode(form).encode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            **signed_headers(service, "POST", target, form),
        }
        answer = await exchange(service, request("POST", target, headers=headers, body=body))
        assert "not a TrackingGUID" in str(assert_json_error(answer, 400)["error"])


class TestAdminHangupBody:
    """Finding 5: undecodable or too deeply nested JSON on the admin hang-up answered 500."""

    @pytest.mark.parametrize("body", [b"\xff", b"[" * 100_000])
    async def test_bad_json_is_400(self, service: RunningService, body: bytes) -> None:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
        answer = await exchange(
            service, request("POST", f"/calls/{GUID}/hangup", headers=headers, body=body)
        )
        assert "malformed JSON" in str(assert_json_error(answer, 400)["error"])


BIG = b"x" * 300_000


class TestUnreadBodies:
    """Finding 6: answering without reading the body left the connection stalled."""

    @pytest.mark.parametrize(
        ("method", "path", "headers", "status"),
        [
            (
                "POST",
                "/responsecollect",
                {"Content-Type": "application/x-www-form-urlencoded"},
                413,
            ),
            ("POST", f"/calls/{GUID}/hangup", {}, 401),
            ("POST", "/healthz", {}, 405),
            ("GET", "/healthz", {}, 200),
        ],
    )
    async def test_big_unread_body_closes_cleanly(
        self,
        service: RunningService,
        method: str,
        path: str,
        headers: dict[str, str],
        status: int,
    ) -> None:
        for _ in range(5):  # it was a race: repeat it
            answer = await exchange(
                service, request(method, path, headers=headers, body=BIG), method=method
            )
            assert answer.status == status
            assert answer.closes
            if status >= 400:
                assert_json_error(answer, status)

    async def test_small_unread_body_keeps_the_connection(self, service: RunningService) -> None:
        for _ in range(5):
            answer = await exchange(
                service, request("POST", f"/calls/{GUID}/hangup", body=b"0123456789")
            )
            assert_json_error(answer, 401)
            assert not answer.closes


class TestParserErrors:
    """Findings 7 and 9: hypercorn's own parser answers JSON, and never drops the connection."""

    async def test_expect_continue_then_bad_chunk_is_400(self, service: RunningService) -> None:
        head = (
            b"POST /healthz HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(20):  # BusyResourceError was a race (2 of 3 tries)
            answer = await exchange(service, head + b"ZZ\r\n")
            assert_json_error(answer, 400)
            assert answer.closes

    @pytest.mark.parametrize(
        ("raw", "status"),
        [
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n", 400),
            (b"NOT A REQUEST\r\n\r\n", 400),
            (b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ],
    )
    async def test_parser_errors_are_json(
        self, service: RunningService, raw: bytes, status: int
    ) -> None:
        answer = await exchange(service, raw)
        assert_json_error(answer, status)
        assert answer.closes

    async def test_headers_too_large_is_json_431(self, service: RunningService) -> None:
        """Sent in pieces, so that h11 sees an incomplete header block over its limit."""

        def run() -> RawResponse:
            with RawConnection("127.0.0.1", _port(service)) as conn:
                conn.sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
                for _ in range(40):
                    try:
                        conn.sock.sendall(b"X-Pad: " + b"a" * 1000 + b"\r\n")
                    except OSError:
                        break
                answer = conn.read_response()
                conn.still_usable(answer)
                return answer

        answer = await trio.to_thread.run_sync(run)
        assert_json_error(answer, 431)


class TestTheRawClient:
    """The harness itself tells a dropped connection from a stalled one."""

    async def test_dropped_and_stalled(self) -> None:
        async def serve(stream: trio.SocketStream, *, answer: bool) -> None:
            await stream.receive_some(1024)
            if not answer:
                await stream.aclose()
                return
            await trio.sleep_forever()

        for answer, expected in ((False, Dropped), (True, Stalled)):
            async with trio.open_nursery() as nursery:
                listeners = await nursery.start(
                    partial(trio.serve_tcp, partial(serve, answer=answer), 0, host="127.0.0.1")
                )
                port = listeners[0].socket.getsockname()[1]

                def run(port: int = port) -> None:
                    with RawConnection("127.0.0.1", port, timeout_s=0.5) as conn:
                        conn.exchange(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")

                with pytest.raises(expected):
                    await trio.to_thread.run_sync(run)
                nursery.cancel_scope.cancel()
