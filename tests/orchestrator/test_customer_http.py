"""The customer endpoint adapter: Step 1 GET and its reply body, Step 3 POST bytes and headers."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import pytest

from orchestrator.customer_client import HttpCustomer, parse_reply_body
from orchestrator.errors import CustomerError

FIELDS = {
    "ReferralID": "0",
    "TrackingGUID": "g-1",
    "Agent1ID": "328290",
    "MessageLink": "https://rec.example/a b.mp3",
}


@pytest.mark.parametrize(
    ("content_type", "body", "fields"),
    [
        (
            "application/json",
            '{"AgentID": "1,2", "AgentTier": [1, 1], "x": null}',
            {"AgentID": "1,2", "AgentTier": ["1", "1"], "x": ""},
        ),
        (
            "application/x-www-form-urlencoded",
            "AgentID=1,2&AgentRow=1&AgentRow=2",
            {"AgentID": "1,2", "AgentRow": ["1", "2"]},
        ),
        ("text/html", "<html><body>OK</body></html>", {}),
        ("text/plain", "OK", {}),
        ("application/json", "[1, 2]", {}),
        ("application/json", "{not json", {}),
    ],
)
def test_step1_reply_bodies(content_type: str, body: str, fields: dict[str, object]) -> None:
    """A plan in the Step 1 body is read from JSON or form text; anything else carries none."""
    assert parse_reply_body(content_type, body) == fields


async def test_step3_post_body_is_the_urlencoded_fields_with_the_key() -> None:
    """The body is exactly urlencode(fields) — what an HMAC signature covers."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    customer = HttpCustomer(transport=httpx.MockTransport(handler))
    status = await customer.outcome_post(
        "http://c.test/o", FIELDS, key="g-1", headers={"X-Orchestrator-Signature": "t=1,v1=ab"}
    )
    await customer.aclose()
    assert status == 204
    (request,) = seen
    assert request.content == urlencode(FIELDS).encode()
    assert request.headers["Idempotency-Key"] == "g-1"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["X-Orchestrator-Signature"] == "t=1,v1=ab"


async def test_step1_errors_are_customer_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def fail(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    for handler, message in ((refuse, "ConnectError"), (fail, "HTTP 503")):
        customer = HttpCustomer(transport=httpx.MockTransport(handler))
        with pytest.raises(CustomerError, match=message):
            await customer.initial_post("http://c.test/i", {"Phone": "9495550000"})
        await customer.aclose()
