"""Fuzz every route over real HTTP: no 5xx, no dropped or stalled connection, JSON errors.

A real ``orchestrator serve`` process (the built-in simulator as its carrier, SQLite) gets
hypothesis-generated requests on every route it serves: random text and bytes in the query,
extra and odd headers (``Host`` included), urlencoded, multipart, JSON, raw and oversized
bodies, V3
signatures that are missing, wrong or right (so that parsing past the signature check is
reached too), the operator token or not. Live calls exist while it runs (one waiting for its
plan, one whose tier rings), so the ids in ``call=`` and ``leg=`` sometimes name real ones.

Every answer must be a complete HTTP response with a status below 500; an error status carries
a JSON object with ``error``; and the connection must then serve a ``GET /healthz`` — or the
answer said ``Connection: close`` and the server closed it. At the end the service's log must
hold no crash line (``http.connection_crashed``, ``http.request_failed``,
``http.request_crashed``, ``http.response_missing``) and the process must still be running.

Examples are derandomized (the same every run, as CI needs) and bounded: see
:data:`EXAMPLES_PER_ROUTE` and :data:`FRAMING_EXAMPLES`.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.carriers.plivo import NONCE_HEADER, SIGNATURE_HEADER, sign_v3
from orchestrator.config import SIMULATOR_AUTH_TOKEN
from tests.support.paths import REPO
from tests.support.raw_http import Dropped, RawConnection, RawResponse, Stalled
from tests.support.service import free_port

pytestmark = pytest.mark.e2e

#: Requests per route (each followed by a keep-alive probe).
EXAMPLES_PER_ROUTE = 80
#: Raw, malformed HTTP framings.
FRAMING_EXAMPLES = 200
TOKEN = "fuzz-operator-token-0123456789"
API_KEY = "fuzz-api-key-0123456789abcdef"
CAMPAIGN_NUMBER = "8005550100"
CRASH_EVENTS = (
    "http.connection_crashed",
    "http.request_failed",
    "http.request_crashed",
    "http.response_missing",
)

CONFIG = """\
[server]
bind = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
drain_s = 1.0
[store]
url = "sqlite:///{db}"
[carrier]
kind = "simulator"
calls_per_second = 50.0
[routing]
plan_timeout_s = 600.0
initial_post_timeout_s = 0.5
[operator]
token = "{token}"
[log]
level = "info"
[[campaigns]]
name = "acme"
numbers = ["{number}"]
plantype = "Purchase"
initial_post_url = "http://127.0.0.1:9/initial"
outcome_post_url = "http://127.0.0.1:9/outcome"
tracking_numbers = ["8005550111"]
api_key = "{api_key}"
"""

ROUTES = (
    "/healthz",
    "/readyz",
    "/metrics",
    "/responsecollect",
    "/responsecollect.aspx",
    "/referrals",
    "/calls",
    "/calls/{guid}",
    "/calls/{guid}/hangup",
    "/agents",
    "/live",
    "/live/snapshot",
    "/live/events",
    "/live/assets/live.js",
    "/plivo/answer",
    "/plivo/answer/",
    "/plivo/hangup",
    "/plivo/hangup/",
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
    "/nowhere",
    "/",
)
FIELD_NAMES = (
    "TrackingGUID",
    "TrackingGuid",
    "ReferralID",
    "AgentID",
    "AgentPhones",
    "AgentTier",
    "AgentRow",
    "AgentNames",
    "AgentEmailAddresses",
    "AgentNMLS",
    "AgentFiveMinApps",
    "ShowAgentRealID",
    "AgentOverrideIVR",
    "Agent1ID",
    "Agent1Group",
    "Agent1Phone",
    "Agent1Press1",
    "Agent2ID",
    "CallUUID",
    "From",
    "To",
    "Digits",
    "CallStatus",
    "Direction",
    "RequestUUID",
    "HangupCause",
    "HangupCauseCode",
    "HangupCauseName",
    "Duration",
    "RecordUrl",
    "RecordingID",
    "ConferenceAction",
    "RecordingDuration",
    "campaign",
    "FirstName",
    "LastName",
    "FullName",
    "City",
    "St",
    "Zip",
    "ApiKey",
    "reason",
    "format",
    "since",
    "until",
    "limit",
    "cursor",
    "phone",
    "outcome",
    "agent",
    "call",
    "leg",
    "token",
)


@dataclass
class Service:
    port: int
    log: Path
    process: subprocess.Popen[bytes]
    guids: list[str]
    legs: list[str]
    call_uuids: list[str]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _signed_post(base: str, path: str, form: dict[str, str]) -> httpx.Response:
    nonce = secrets.token_hex(10)
    signature = sign_v3("POST", base + path, form, SIMULATOR_AUTH_TOKEN, nonce)
    return httpx.post(
        base + path,
        data=form,
        headers={SIGNATURE_HEADER: signature, NONCE_HEADER: nonce},
        timeout=10,
    )


@pytest.fixture(name="service", scope="module")
def _service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    config = tmp / "config.toml"
    config.write_text(
        CONFIG.format(
            port=port, db=tmp / "o.db", token=TOKEN, api_key=API_KEY, number=CAMPAIGN_NUMBER
        )
    )
    log = tmp / "service.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "serve", "--config", str(config)],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the service did not become ready"
            time.sleep(0.1)
        guids, call_uuids = [], []
        for i in range(2):  # two live calls: one gets a plan (its tier rings), one waits
            call_uuid = f"fuzz-lead-{i}"
            answer = _signed_post(
                base,
                "/plivo/answer",
                {
                    "CallUUID": call_uuid,
                    "From": f"1949555000{i}",
                    "To": "1" + CAMPAIGN_NUMBER,
                    "Direction": "inbound",
                    "CallStatus": "in-progress",
                },
            )
            assert answer.status_code == 200, answer.text
            guids.append(answer.text.split("</Conference>")[0].rsplit(">", 1)[1])
            call_uuids.append(call_uuid)
        plan = {
            "TrackingGUID": guids[0],
            "Agent1ID": "11",
            "Agent1Group": "1",
            "Agent1Phone": "8885551111",
            "Agent1Press1": "1",
            "Agent2ID": "12",
            "Agent2Group": "1",
            "Agent2Phone": "9492651111",
            "Agent2Press1": "1",
        }
        assert httpx.post(f"{base}/responsecollect.aspx", data=plan).status_code == 200
        legs: list[str] = []
        for _ in range(50):
            shown = httpx.get(
                f"{base}/calls/{guids[0]}", headers={"Authorization": f"Bearer {TOKEN}"}
            ).json()
            legs = [leg["leg_id"] for leg in (shown.get("live") or {}).get("legs", [])]
            if legs:
                break
            time.sleep(0.1)
        yield Service(port, log, process, guids, legs or ["leg-1"], call_uuids)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- strategies --------------------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8"), max_size=30)
_names = st.one_of(st.sampled_from(FIELD_NAMES), _text)
_fields = st.dictionaries(
    _names, st.one_of(_text, st.sampled_from(["1", "0", "", "x,y"])), max_size=8
)
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | _text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=12,
)
_header_value = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"), max_size=40
)
_header_name = st.text(
    st.sampled_from("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-_!#$%&'*+.^`|~"),
    min_size=1,
    max_size=20,
)
_hosts = st.one_of(
    st.just("127.0.0.1"),
    st.just("a" * 64),
    st.just("[::1]:80"),
    st.just(""),
    st.just("..."),
    st.just("xn--"),
    st.just("bücher.example"),
    _header_value,
)


@dataclass(frozen=True)
class Plan:
    """One generated request, before it is turned into bytes."""

    method: str
    query: str
    content_type: str | None
    body: bytes
    headers: tuple[tuple[str, str], ...]
    host: str
    sign: bool
    operator: bool
    form: dict[str, str] | None  # the urlencoded form, when the body is one (for signing)


def _multipart(parts: list[tuple[str, str, bytes]], boundary: str, *, truncate: bool) -> bytes:
    out = bytearray()
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename:
            disposition += f'; filename="{filename}"'
        out += (
            f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode(
                "utf-8", "surrogatepass"
            )
            + content
            + b"\r\n"
        )
    out += f"--{boundary}--\r\n".encode()
    return bytes(out[: len(out) // 2]) if truncate else bytes(out)


@st.composite
def plans(draw: st.DrawFn, route: str, service: Service) -> Plan:
    method = draw(
        st.sampled_from(
            ["POST", "GET", "POST", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]
        )
    )
    query_fields = draw(_fields)
    if "{guid}" not in route and draw(st.booleans()):
        query_fields["call"] = draw(st.sampled_from([*service.guids, secrets.token_hex(4)]))
        query_fields["leg"] = draw(st.sampled_from([*service.legs, "leg-1", "x" * 80]))
    if draw(st.integers(0, 9)) == 0:
        query = quote(draw(st.binary(max_size=30)), safe="=&")  # raw bytes, percent-encoded
    else:
        query = urlencode(query_fields)
    # "huge" bodies are costly: about one example in ten
    kind = draw(
        st.sampled_from(
            [
                "multipart",
                "huge",
                "form",
                "json",
                "none",
                "raw",
                "json-raw",
                "multipart",
                "form",
                "json",
                "none",
                "raw",
                "json-raw",
            ]
        )
    )
    form: dict[str, str] | None = None
    content_type: str | None = None
    body = b""
    if kind == "form":
        form = draw(_fields)
        if route.startswith("/plivo/") and draw(st.booleans()):
            form["CallUUID"] = draw(st.sampled_from(service.call_uuids))
        body = urlencode(form).encode()
        content_type = "application/x-www-form-urlencoded"
    elif kind == "multipart":
        boundary = draw(st.sampled_from(["b", "----x", "a" * 70]))
        # names werkzeug cannot parse (a lone backslash), or that need escaping, or any text
        odd = st.sampled_from(["\\", '"', "", 'a"b', '\\"', "a;b", "é"])
        names = st.one_of(odd, odd, _text)
        parts = draw(
            st.lists(
                st.tuples(names, st.sampled_from(["", "f.txt", 'a"b']), st.binary(max_size=30)),
                min_size=1,
                max_size=5,
            )
        )
        body = _multipart(parts, boundary, truncate=draw(st.integers(0, 3)) == 3)
        right = f"multipart/form-data; boundary={boundary}"
        content_type = draw(
            st.sampled_from([right, right, "multipart/form-data", "multipart/form-data; x"])
        )
    elif kind == "json":
        body = orjson.dumps(draw(_json_values))
        content_type = "application/json"
    elif kind == "json-raw":
        body = draw(st.sampled_from([b"\xff", b"[" * 5000, b"{", b'{"a": ' * 1500, b""]))
        content_type = draw(st.sampled_from(["application/json", "application/x+json"]))
    elif kind == "huge":  # over the 256 KB cap, or a large one below it, often left unread
        body = b"x" * draw(st.sampled_from([300_000, 70_000]))
        content_type = draw(st.sampled_from([None, "application/x-www-form-urlencoded"]))
    elif kind == "raw":
        body = draw(st.binary(max_size=200))
        content_type = draw(
            st.one_of(
                st.none(),
                st.sampled_from(
                    ["text/plain", "application/xml", "x", "multipart/mixed; boundary=b", ";;;"]
                ),
            )
        )
    headers = tuple(draw(st.lists(st.tuples(_header_name, _header_value), max_size=4)))
    host = draw(_hosts) if draw(st.integers(0, 5)) == 0 else "127.0.0.1"
    sign = route.startswith("/plivo/") and draw(st.booleans())
    return Plan(
        method,
        query,
        content_type,
        body,
        headers,
        host,
        sign,
        operator=draw(st.booleans()),
        form=form,
    )


def to_bytes(plan: Plan, route: str, service: Service) -> bytes:
    path = route.replace("{guid}", service.guids[0])
    target = f"{path}?{plan.query}" if plan.query else path
    headers: list[tuple[str, str]] = [("Host", plan.host)]
    if plan.content_type is not None:
        headers.append(("Content-Type", plan.content_type))
    if plan.sign:
        nonce = secrets.token_hex(10)
        url = service.base + target
        params = plan.form if plan.method == "POST" else None
        try:
            signature = sign_v3(plan.method, url, params, SIMULATOR_AUTH_TOKEN, nonce)
        except ValueError:
            signature = "unsignable"
        headers += [(SIGNATURE_HEADER, signature), (NONCE_HEADER, nonce)]
    else:
        headers += [(SIGNATURE_HEADER, "x"), (NONCE_HEADER, "1")][: len(plan.query) % 3]
    # never a valid token on the event stream: it would (rightly) stream forever
    if plan.operator and route != "/live/events":
        headers.append(("Authorization", f"Bearer {TOKEN}"))
    headers.extend(plan.headers)
    headers.append(("Content-Length", str(len(plan.body))))
    head = f"{plan.method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    return head.encode("latin-1", "replace") + b"\r\n" + plan.body


def check_answer(answer: RawResponse, method: str) -> None:
    assert answer.status < 500, answer
    if answer.status >= 400 and method != "HEAD":
        assert answer.headers.get("content-type") == "application/json", answer
        payload = orjson.loads(answer.body)
        assert isinstance(payload, dict), answer
        assert isinstance(payload.get("error"), str), answer


def send(service: Service, raw: bytes, method: str) -> None:
    with RawConnection("127.0.0.1", service.port) as conn:
        answer = conn.exchange(raw, method=method)
        check_answer(answer, method)
        conn.still_usable(answer)


FUZZ = settings(
    max_examples=EXAMPLES_PER_ROUTE,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.parametrize("route", ROUTES)
def test_no_route_fails_on_any_request(service: Service, route: str) -> None:
    @FUZZ
    @given(st.data())
    def run(data: st.DataObject) -> None:
        plan = data.draw(plans(route, service))
        send(service, to_bytes(plan, route, service), plan.method)

    run()


#: (raw bytes, whether they make at least one complete request that must be answered)
_framings = st.one_of(
    # chunked bodies with broken chunk sizes, with or without Expect: 100-continue
    st.builds(
        lambda expect, chunk: (
            b"POST /plivo/answer HTTP/1.1\r\nHost: a\r\n"
            + (b"Expect: 100-continue\r\n" if expect else b"")
            + b"Transfer-Encoding: chunked\r\n\r\n"
            + chunk
            + b"\r\n0\r\n\r\n",
            True,
        ),
        st.booleans(),
        st.binary(max_size=40),
    ),
    # request lines of any bytes
    st.builds(
        lambda line: (line + b"\r\nHost: a\r\n\r\n", True), st.binary(min_size=1, max_size=60)
    ),
    # conflicting framing headers
    st.builds(
        lambda a, b: (
            (
                b"POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n"
                b"Content-Length: %d\r\n\r\n" % (a, b)
            )
            + b"x" * max(a, b),
            True,
        ),
        st.integers(0, 20),
        st.integers(0, 20),
    ),
    # a request line, then any bytes: maybe never a complete request
    st.builds(
        lambda junk: (b"POST /responsecollect HTTP/1.1\r\nHost: a\r\n" + junk, False),
        st.binary(max_size=120),
    ),
)


@settings(
    max_examples=FRAMING_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(_framings)
def test_malformed_framing_is_answered(service: Service, framing: tuple[bytes, bool]) -> None:
    """Broken HTTP itself gets a JSON 4xx and a closed (or still usable) connection. For bytes
    that may never complete a request, the server may also wait for more, or close; it must
    not crash (checked by the last test of the module)."""
    raw, complete = framing
    with RawConnection("127.0.0.1", service.port, timeout_s=3.0 if complete else 0.5) as conn:
        try:
            answer = conn.exchange(raw)
        except (Dropped, Stalled):
            assert not complete, "a complete request got no answer"
            return
        check_answer(answer, "GET")


def test_the_service_never_crashed(service: Service) -> None:
    """Runs last in this module: the log has no crash line and the process still runs."""
    assert service.process.poll() is None, "the service process died"
    crashes = [
        line
        for line in service.log.read_text().splitlines()
        if any(f'"{event}"' in line for event in CRASH_EVENTS)
    ]
    assert crashes == [], crashes[:3]
