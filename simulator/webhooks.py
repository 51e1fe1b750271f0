"""Send signed webhooks the way Plivo does, with its timeout and retry rules (docs/plivo.md §6.3).

:func:`retry_policy` (pure) reads Plivo's URL-fragment settings (``#ct=2000&rt=3000&rc=1&rp=ct,rt``)
with Plivo's defaults: one retry, only on a connect failure or a read timeout, never on an HTTP
status. :class:`WebhookSender` sends over a few small ``httpx.AsyncClient`` pools
(docs/architecture.md: one big pool degrades on trio) and returns a :class:`WebhookResult`; it never
raises for a
failed delivery.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import httpx
import structlog
import trio

from simulator.signing import build_webhook

__all__ = ["RetryPolicy", "WebhookResult", "WebhookSender", "retry_policy"]

logger = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    connect_timeout_s: float = 2.0  # ct
    read_timeout_s: float = 40.0  # rt
    total_timeout_s: float = 55.0  # tt (not enforced beyond the per-attempt timeouts)
    retries: int = 1  # rc
    retry_on: frozenset[str] = frozenset({"ct", "rt"})  # rp: 4xx, 5xx, ct, rt, all


def _clamp(value: str, low: float, high: float, default: float) -> float:
    try:
        number = float(value)
    except ValueError:
        return default
    return min(max(number, low), high)


def retry_policy(url: str, *, read_timeout_cap_s: float | None = None) -> RetryPolicy:
    """Plivo's per-URL timeout/retry settings from the URL fragment, defaults otherwise.

    ``read_timeout_cap_s`` lowers the read timeout (the simulator's ``webhook_timeout_s``), so a
    hung application cannot stall a simulated call for Plivo's 40 s.
    """
    fragment = urlsplit(url).fragment
    settings = dict(parse_qsl(fragment, keep_blank_values=True)) if "=" in fragment else {}
    default = RetryPolicy()
    ct = _clamp(settings["ct"], 100, 10_000, 2000) / 1000 if "ct" in settings else None
    rt = _clamp(settings["rt"], 100, 40_000, 40_000) / 1000 if "rt" in settings else None
    tt = _clamp(settings["tt"], 100, 55_000, 55_000) / 1000 if "tt" in settings else None
    rc = int(_clamp(settings["rc"], 0, 5, 1)) if "rc" in settings else default.retries
    retry_on = default.retry_on
    if "rp" in settings:
        retry_on = frozenset(p.strip() for p in settings["rp"].split(",") if p.strip())
    read = rt if rt is not None else default.read_timeout_s
    if read_timeout_cap_s is not None:
        read = min(read, read_timeout_cap_s)
    return RetryPolicy(
        connect_timeout_s=ct if ct is not None else default.connect_timeout_s,
        read_timeout_s=read,
        total_timeout_s=tt if tt is not None else default.total_timeout_s,
        retries=rc,
        retry_on=retry_on,
    )


def _should_retry(policy: RetryPolicy, failure: str, status: int | None) -> bool:
    if "all" in policy.retry_on:
        return True
    if failure in ("ct", "rt"):
        return failure in policy.retry_on
    if status is not None:
        return f"{status // 100}xx" in policy.retry_on
    return False


@dataclass(frozen=True, slots=True)
class WebhookResult:
    """What came back. ``failure`` is ``""`` on a 2xx, else ``ct`` (could not connect),
    ``rt`` (read timeout), ``status`` (non-2xx) or ``error`` (any other transport error).
    ``elapsed_s``: real seconds from sending the first attempt to the last answer (or failure),
    i.e. how long the simulated call waited on the application (benchmarks read it)."""

    url: str
    status: int | None
    body: str
    content_type: str
    attempts: int
    failure: str = ""
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failure


class WebhookSender:
    """Signed form-encoded webhooks over ``pools`` small connection pools.

    Resource handling: owns its clients; use ``async with WebhookSender(...)``.
    Error handling: delivery failures are returned, never raised (a call must go on).
    """

    def __init__(
        self,
        *,
        pools: int = 4,
        connections_per_pool: int = 8,
        timeout_cap_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        limits = httpx.Limits(
            max_connections=connections_per_pool, max_keepalive_connections=connections_per_pool
        )
        self._clients = [
            httpx.AsyncClient(
                limits=limits,
                transport=transport,
                headers={
                    "User-Agent": "PlivoSimulator/1.0",
                },
            )
            for _ in range(max(1, pools))
        ]
        self._next = itertools.cycle(self._clients)
        self._timeout_cap_s = timeout_cap_s

    async def __aenter__(self) -> WebhookSender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()

    async def send(
        self,
        method: str,
        url: str,
        params: Mapping[str, str],
        *,
        auth_token: str,
    ) -> WebhookResult:
        """Sign and send; retry per the URL's policy; return what happened."""
        policy = retry_policy(url, read_timeout_cap_s=self._timeout_cap_s)
        timeout = httpx.Timeout(
            connect=policy.connect_timeout_s,
            read=policy.read_timeout_s,
            write=policy.read_timeout_s,
            pool=policy.read_timeout_s,
        )
        client = next(self._next)
        started: float | None = None  # when the first attempt went out (signing excluded)
        attempts = 0
        result: WebhookResult | None = None
        while True:
            attempts += 1
            request = build_webhook(method, url, params, auth_token=auth_token)
            status: int | None = None
            failure = ""
            body = ""
            content_type = ""
            if started is None:
                started = trio.current_time()
            try:
                response = await client.request(
                    request.method,
                    request.url,
                    data=request.form if request.method == "POST" else None,
                    headers=request.headers,
                    timeout=timeout,
                )
            except (httpx.ConnectError, httpx.ConnectTimeout):
                failure = "ct"
            except httpx.TimeoutException:
                failure = "rt"
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                failure = "error"
                body = str(exc)
            else:
                status = response.status_code
                body = response.text
                content_type = response.headers.get("content-type", "")
                if not 200 <= status < 300:
                    failure = "status"
            result = WebhookResult(
                request.url,
                status,
                body,
                content_type,
                attempts,
                failure,
                trio.current_time() - started,
            )
            if not failure or attempts > policy.retries:
                break
            if not _should_retry(policy, failure, status):
                break
            logger.debug("sim.webhook.retried", url=request.url, failure=failure, status=status)
        return result
