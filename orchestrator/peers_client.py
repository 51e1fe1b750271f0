"""The other instances of the cluster over HTTP: implements :class:`orchestrator.ports.Peers`.

Every request is signed (:mod:`orchestrator.signing`) over the target as it goes on the wire,
and bounded by ``cluster.forward_timeout_s`` (a carrier waiting on a webhook must get an answer
before its own timeout); one small-pooled
``httpx.AsyncClient`` keeps connections to the peers open (docs/architecture.md: small pools
under trio). Failures are logged here with the peer and the path, once per request.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from urllib.parse import quote

import httpx
import structlog

from orchestrator.errors import PeerUnreachable
from orchestrator.ports import ForwardedReply
from orchestrator.signing import Signer

logger = structlog.get_logger()

USER_AGENT = "call-orchestrator-peer/0.1"
MAX_CONNECTIONS = 16
#: Internal routes (web/internal.py).
PLAN_PATH = "/internal/calls/{guid}/plan"
HANGUP_PATH = "/internal/calls/{guid}/hangup"


class HttpPeers:
    """See the module docstring."""

    def __init__(
        self,
        signer: Signer,
        *,
        timeout_s: float = 2.0,
        transport: httpx.AsyncBaseTransport | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.signer = signer
        self._now = now
        self._client = httpx.AsyncClient(
            timeout=timeout_s,
            transport=transport,
            limits=httpx.Limits(
                max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS
            ),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _send(
        self,
        internal_url: str,
        method: str,
        target: str,
        body: bytes,
        content_type: str,
        *,
        route: str,
    ) -> httpx.Response:
        """One signed request; ``route`` names it in the log and the metrics (bounded)."""
        try:
            url = httpx.URL(internal_url + target)
            # sign what goes on the wire: httpx may normalise the target's escapes
            signed = url.raw_path.decode("ascii")
            headers = self.signer.headers(method, signed, body, now=self._now())
            if content_type:
                headers["Content-Type"] = content_type
            return await self._client.request(method, url, content=body, headers=headers)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            logger.error(
                "cluster.forward_failed",
                peer=internal_url,
                method=method,
                route=route,
                error=f"{type(exc).__name__}: {exc}",
            )
            raise PeerUnreachable(f"{internal_url}: {type(exc).__name__}") from exc

    async def forward(
        self,
        internal_url: str,
        *,
        method: str,
        path: str,
        query: str,
        body: bytes,
        content_type: str,
    ) -> ForwardedReply:
        target = f"{path}?{query}" if query else path
        response = await self._send(internal_url, method, target, body, content_type, route=path)
        return ForwardedReply(
            response.status_code, response.headers.get("content-type", ""), response.content
        )

    async def hand_plan(self, internal_url: str, tracking_guid: str, plan: str) -> bool:
        target = PLAN_PATH.format(guid=quote(tracking_guid, safe=""))
        try:
            response = await self._send(
                internal_url, "POST", target, plan.encode(), "application/json", route="plan"
            )
        except PeerUnreachable:
            return False
        return response.status_code == 200

    async def end_call(self, internal_url: str, tracking_guid: str, reason: str) -> bool | None:
        target = HANGUP_PATH.format(guid=quote(tracking_guid, safe=""))
        body = json.dumps({"reason": reason}).encode()
        try:
            response = await self._send(
                internal_url, "POST", target, body, "application/json", route="hangup"
            )
        except PeerUnreachable:
            return None
        if response.status_code == 200:
            return True
        return False if response.status_code == 404 else None
