"""The customer's web endpoint over HTTP: Step 1 (GET) and Step 3 (POST form).

Implements :class:`orchestrator.ports.Customer` with one small-pooled ``httpx.AsyncClient``
(docs/architecture.md: one client with a large pool degrades badly under trio, httpx #3215).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import parse_qs, urlencode

import httpx

from orchestrator.errors import CustomerError
from orchestrator.ports import CustomerReply

USER_AGENT = "call-orchestrator/0.1"
MAX_CONNECTIONS = 16


def parse_reply_body(content_type: str, body: str) -> dict[str, str | list[str]]:
    """The fields of a Step 1 response body: a JSON object, or form/query-string text.

    A body that is neither (HTML, plain "OK") has no fields: it carries no plan.
    """
    text = body.strip()
    if "json" in content_type or text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return {}
        if not isinstance(data, dict):
            return {}
        return {
            str(k): [str(x) for x in v] if isinstance(v, list) else ("" if v is None else str(v))
            for k, v in data.items()
        }
    if "=" not in text or "<" in text:
        return {}
    return {
        k: v if len(v) > 1 else v[0]
        for k, v in parse_qs(text.lstrip("?"), keep_blank_values=True).items()
    }


class HttpCustomer:
    """See the module docstring. ``timeout_s`` bounds each request."""

    def __init__(
        self,
        *,
        timeout_s: float = 10.0,
        outcome_timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._outcome_timeout_s = outcome_timeout_s
        self._client = httpx.AsyncClient(
            timeout=timeout_s,
            transport=transport,
            limits=httpx.Limits(
                max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS
            ),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
        )

    async def initial_post(self, url: str, fields: Mapping[str, str]) -> CustomerReply:
        try:
            response = await self._client.get(url, params=dict(fields))
        except httpx.HTTPError as exc:
            raise CustomerError(f"Step 1 GET failed: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise CustomerError(f"Step 1 GET answered HTTP {response.status_code}")
        return CustomerReply(
            response.status_code,
            parse_reply_body(response.headers.get("content-type", ""), response.text),
        )

    async def outcome_post(
        self,
        url: str,
        fields: Mapping[str, str],
        *,
        key: str,
        headers: Mapping[str, str] | None = None,
    ) -> int:
        body = urlencode(dict(fields))  # exactly the bytes an HMAC signature header covers
        try:
            response = await self._client.post(
                url,
                content=body.encode(),
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Idempotency-Key": key,
                    **(headers or {}),
                },
                timeout=self._outcome_timeout_s,
            )
        except httpx.HTTPError as exc:
            raise CustomerError(f"Step 3 POST failed: {type(exc).__name__}: {exc}") from exc
        return response.status_code

    async def aclose(self) -> None:
        await self._client.aclose()
