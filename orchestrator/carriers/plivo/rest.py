"""``PlivoCarrier``: the :class:`orchestrator.ports.Carrier` port over Plivo's REST API.

We speak the small REST surface ourselves with one ``httpx.AsyncClient`` instead of wrapping the
SDK's client, which is synchronous, not thread-safe, retries Make Call on any 5xx (ringing an
agent twice) and can only be pointed elsewhere by patching globals (docs/architecture.md "Carrier").

Operations (paths end in ``/`` as the SDK's do; bodies are JSON; Basic auth; docs/plivo.md §1):

============  ==========================================  =====================================
originate     ``POST   /v1/Account/{id}/Call/``            paced by the CPS token bucket
cancel        ``DELETE /v1/Account/{id}/Request/{uuid}/``  404 = already gone = success
hangup        ``DELETE /v1/Account/{id}/Call/{uuid}/``     404 = already gone; never an empty id
redirect_lead ``POST   /v1/Account/{id}/Call/{uuid}/``     Transfer API, ``legs=aleg``
============  ==========================================  =====================================

Retry policy — the one thing that must not go wrong is ringing an agent twice:

- 429 means the request was refused, not executed: every operation backs off (exponential
  with jitter, or ``Retry-After`` when given) and retries, up to
  ``RetryPolicy.rate_limited_attempts`` attempts.
- A connection that could not be opened (connect error/timeout, no pooled connection) means
  nothing was sent: retried once.
- After the request may have been sent (5xx, timeout, connection dropped) only the idempotent
  DELETEs (cancel, hangup) are retried; originate and transfer raise :class:`CarrierError`.

Cancellation: pacing and back-off waits are cancellable. An HTTP exchange, once started, runs
shielded from cancellation, bounded by ``timeout_s``, so a placed call's request id is always
returned to the caller (who is then responsible for cancelling it). We cannot observe the exact
instant httpx writes the request, so the shield covers the whole exchange.

Error handling: every httpx error and failed status becomes a :class:`CarrierError` (or
:class:`CarrierRateLimited`) in one place, :func:`carrier_error`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import quote

import httpx
import structlog
import trio

from orchestrator.carriers.plivo.ratelimit import TokenBucket
from orchestrator.carriers.plivo.urls import CallbackUrls
from orchestrator.config import Settings
from orchestrator.errors import CarrierError, CarrierRateLimited, ConfigError, Problem
from orchestrator.messages import LeadTarget
from orchestrator.numbers import to_carrier, to_nanp10
from orchestrator.ports import LegRequest

logger = structlog.get_logger()

#: One client, a small pool: httpx degrades with large pools under load (httpx #3215).
DEFAULT_MAX_CONNECTIONS = 12
DEFAULT_TIMEOUT_S = 10.0
#: Plivo's limit on ``caller_name`` (docs/plivo.md §1.2).
MAX_CALLER_NAME = 50
#: Wait before the single retry of a request whose connection could not be opened.
CONNECT_RETRY_DELAY_S = 0.25
USER_AGENT = "call-orchestrator (httpx)"

Method = Literal["GET", "POST", "DELETE"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try. Attempts count the first request too."""

    rate_limited_attempts: int = 5  # 429s, every operation
    server_error_attempts: int = 3  # 5xx / timeouts / dropped connections, idempotent ops only
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0


@dataclass(frozen=True, slots=True)
class _Operation:
    name: str
    method: Method
    path: str
    body: dict[str, Any] | None = None
    paced: bool = False  # takes a CPS token per attempt
    idempotent: bool = False  # safe to repeat after it may have been executed
    gone_ok: bool = False  # 404 means "already ended": success


class _NotSent(Exception):
    """The connection could not be opened: the request never reached the carrier."""


def carrier_error(operation: str, failure: httpx.Response | BaseException) -> CarrierError:
    """Translate a failed HTTP exchange into the domain error (the one mapping in this module).

    Args:
        operation: ``originate``, ``cancel``, ``hangup`` or ``redirect_lead``.
        failure: the error response, or the exception the exchange raised.
    """
    if isinstance(failure, httpx.Response):
        status = failure.status_code
        detail = _error_text(failure)
        if status == 429:
            return CarrierRateLimited(f"plivo {operation}: rate limited (429) {detail}".rstrip())
        what = {401: "authentication failed", 403: "forbidden", 404: "not found"}.get(
            status, "server error" if status >= 500 else "rejected"
        )
        return CarrierError(f"plivo {operation}: {what} (HTTP {status}) {detail}".rstrip())
    if isinstance(failure, trio.TooSlowError | httpx.TimeoutException):
        return CarrierError(f"plivo {operation}: timed out")
    if isinstance(failure, httpx.HTTPError | _NotSent):
        cause = failure.__cause__ if isinstance(failure, _NotSent) else failure
        return CarrierError(f"plivo {operation}: {type(cause).__name__}: {cause}")
    return CarrierError(f"plivo {operation}: {type(failure).__name__}: {failure}")


def _error_text(response: httpx.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(payload, dict) and isinstance(payload.get("error"), str):
        return str(payload["error"])
    return response.text[:200]


def retry_after_s(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or HTTP date), or ``None``."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _carrier_number(number: str) -> str:
    """``1`` + 10 digits for NANP; anything else is passed through as given."""
    nanp = to_nanp10(number)
    return to_carrier(nanp) if nanp else number


def originate_body(request: LegRequest, urls: CallbackUrls) -> dict[str, Any]:
    """The Make Call JSON body for one agent leg (docs/plivo.md §1.2). Pure."""
    guid, leg = request.tracking_guid, request.leg_id
    body: dict[str, Any] = {
        "from": _carrier_number(request.caller_id),
        "to": _carrier_number(request.to),
        "answer_url": urls.leg_answer(guid, leg),
        "answer_method": "POST",
        "ring_url": urls.leg_ring(guid, leg),
        "ring_method": "POST",
        "hangup_url": urls.leg_hangup(guid, leg),
        "hangup_method": "POST",
        "ring_timeout": max(1, math.ceil(request.ring_timeout_s)),
    }
    if request.caller_name:
        body["caller_name"] = request.caller_name[:MAX_CALLER_NAME]
    return body


def _path_id(value: str, what: str) -> str:
    if not value or not value.strip():
        # DELETE /Call/ without an id hangs up EVERY call of the account (docs/plivo.md §1.4)
        raise CarrierError(f"plivo: refusing a request with an empty {what}")
    return quote(value.strip(), safe="")


class PlivoCarrier:
    """The Carrier port over Plivo's REST API (see the module docstring for the policy).

    Args:
        auth_id: the account's Auth ID (Basic auth user, part of every path).
        auth_token: the account's Auth Token (Basic auth password).
        api_url: base URL of any Plivo-compatible API (``https://api.plivo.com``).
        urls: builds the callback URLs given to Plivo.
        calls_per_second: pace of originate requests (token bucket, see ``ratelimit.py``).
        transport: an httpx transport, e.g. ``httpx.MockTransport`` in tests.
        timeout_s: bound on one HTTP exchange.
        max_connections: size of the connection pool.
        retry: the retry policy.
        rng: randomness for the back-off jitter (seed it in tests).

    Raises:
        ConfigError: ``auth_id`` is empty.

    Resource handling: owns one ``httpx.AsyncClient``; call :meth:`aclose` (or use
    ``async with``) when done.
    """

    def __init__(
        self,
        *,
        auth_id: str,
        auth_token: str,
        api_url: str,
        urls: CallbackUrls,
        calls_per_second: float = 2.0,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not auth_id.strip():
            raise ConfigError(
                [Problem("carrier.auth_id", "required for the Plivo REST API (or PLIVO_AUTH_ID)")]
            )
        self.urls = urls
        self._retry = retry or RetryPolicy()
        self._rng = rng or random.Random()
        self._timeout_s = timeout_s
        self._cps = TokenBucket(calls_per_second)
        self._client = httpx.AsyncClient(
            base_url=f"{api_url.rstrip('/')}/v1/Account/{quote(auth_id, safe='')}/",
            auth=httpx.BasicAuth(auth_id, auth_token),
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
        )

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> PlivoCarrier:
        """Build from ``[carrier]`` and this instance's callback base; ``kwargs`` as for the
        constructor."""
        carrier = settings.carrier
        return cls(
            auth_id=carrier.auth_id,
            auth_token=carrier.auth_token,
            api_url=carrier.api_url,
            urls=CallbackUrls(settings.server.callback_base),
            calls_per_second=carrier.calls_per_second,
            **kwargs,
        )

    def pace(
        self, calls_per_second: float, *, burst: float | None = None, hold_s: float = 0.0
    ) -> None:
        """Change the pace of Make Call requests (a cluster instance's share of the account's
        rate); ``hold_s``: send none for that long first."""
        self._cps.set_rate(calls_per_second, burst)
        if hold_s > 0:
            self._cps.hold(hold_s)

    @property
    def calls_per_second(self) -> float:
        return self._cps.rate

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def __aenter__(self) -> PlivoCarrier:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- the Carrier port -----------------------------------------------------------------

    async def originate(self, request: LegRequest) -> str:
        """Place one agent leg; return Plivo's ``request_uuid``.

        Raises:
            CarrierError: refused, failed, timed out, or the answer had no ``request_uuid``.
            CarrierRateLimited: still answered 429 after every retry.
        """
        op = _Operation(
            "originate", "POST", "Call/", originate_body(request, self.urls), paced=True
        )
        response = await self._request(op)
        assert response is not None  # 404 is not "gone_ok" for originate
        # no checkpoint from here on: the id must reach the caller even if it was cancelled
        try:
            payload = response.json()
        except ValueError:
            payload = None
        request_uuid = payload.get("request_uuid") if isinstance(payload, dict) else None
        if not isinstance(request_uuid, str) or not request_uuid:
            logger.error(
                "carrier.request_failed",
                operation="originate",
                status=response.status_code,
                error="no request_uuid in the answer",
                leg_id=request.leg_id,
            )
            raise CarrierError("plivo originate: the answer carried no request_uuid")
        logger.debug(
            "carrier.originated",
            leg_id=request.leg_id,
            request_uuid=request_uuid,
            message=payload.get("message", "") if isinstance(payload, dict) else "",
        )
        return request_uuid

    async def cancel(self, request_id: str) -> None:
        """Cancel a queued or ringing request; a request already gone (404) is success."""
        path = f"Request/{_path_id(request_id, 'request id')}/"
        await self._request(_Operation("cancel", "DELETE", path, idempotent=True, gone_ok=True))

    async def hangup(self, call_id: str) -> None:
        """Hang up a live call; a call already gone (404) is success.

        Raises:
            CarrierError: ``call_id`` is empty (that request would end every call of the
                account), or the request failed.
        """
        path = f"Call/{_path_id(call_id, 'call id')}/"
        await self._request(_Operation("hangup", "DELETE", path, idempotent=True, gone_ok=True))

    async def redirect_lead(self, call_id: str, tracking_guid: str, target: LeadTarget) -> None:
        """Transfer the lead's live call to its room (HOLD) or to voicemail (Transfer API)."""
        path = f"Call/{_path_id(call_id, 'call id')}/"
        url = (
            self.urls.room(tracking_guid)
            if target is LeadTarget.HOLD
            else self.urls.voicemail(tracking_guid)
        )
        body = {"legs": "aleg", "aleg_url": url, "aleg_method": "POST"}
        await self._request(_Operation("redirect_lead", "POST", path, body))

    # --- one request, with the retry policy -----------------------------------------------

    def _backoff_s(self, attempt: int, retry_after: float | None) -> float:
        """Delay before retry number ``attempt`` (1-based): Retry-After, else equal jitter."""
        policy = self._retry
        if retry_after is not None:
            return min(policy.max_delay_s, retry_after)
        ceiling = min(policy.max_delay_s, policy.base_delay_s * 2.0 ** (attempt - 1))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    async def _request(self, op: _Operation) -> httpx.Response | None:
        """Send ``op`` under the retry policy; ``None`` when a gone_ok op found nothing (404)."""
        policy = self._retry
        rate_limited = failures = 0
        connect_retried = False
        while True:
            if op.paced:
                await self._cps.acquire()
            try:
                response = await self._exchange(op)
            except _NotSent as exc:
                if not connect_retried:
                    connect_retried = True
                    logger.info(
                        "carrier.connect_retried", operation=op.name, error=str(exc.__cause__)
                    )
                    await trio.sleep(CONNECT_RETRY_DELAY_S)
                    continue
                raise self._failed(op, exc) from exc.__cause__
            except (httpx.HTTPError, trio.TooSlowError) as exc:
                failures += 1
                if op.idempotent and failures < policy.server_error_attempts:
                    await self._retry_wait(op, failures, None, error=str(exc) or type(exc).__name__)
                    continue
                raise self._failed(op, exc) from exc

            status = response.status_code
            if 200 <= status < 300:
                return response
            if status == 404 and op.gone_ok:
                logger.debug("carrier.already_gone", operation=op.name, path=op.path)
                return None
            if status == 429:
                rate_limited += 1
                if rate_limited < policy.rate_limited_attempts:
                    delay = retry_after_s(response.headers.get("Retry-After"))
                    await self._retry_wait(op, rate_limited, delay, status=status)
                    continue
            elif status >= 500:
                failures += 1
                if op.idempotent and failures < policy.server_error_attempts:
                    await self._retry_wait(op, failures, None, status=status)
                    continue
            raise self._failed(op, response)

    async def _retry_wait(
        self, op: _Operation, attempt: int, retry_after: float | None, **why: object
    ) -> None:
        delay = self._backoff_s(attempt, retry_after)
        event = "carrier.rate_limited" if why.get("status") == 429 else "carrier.retried"
        logger.warning(event, operation=op.name, attempt=attempt, retry_in_s=round(delay, 3), **why)
        await trio.sleep(delay)

    def _failed(self, op: _Operation, failure: httpx.Response | BaseException) -> CarrierError:
        error = carrier_error(op.name, failure)
        status = failure.status_code if isinstance(failure, httpx.Response) else None
        logger.warning("carrier.request_failed", operation=op.name, status=status, error=str(error))
        return error

    async def _exchange(self, op: _Operation) -> httpx.Response:
        """One HTTP exchange, shielded and bounded by ``timeout_s``.

        Raises:
            _NotSent: the connection could not be opened (safe to retry).
            httpx.HTTPError, trio.TooSlowError: anything else.
        """
        request = self._client.build_request(op.method, op.path, json=op.body)
        with trio.CancelScope(shield=True), trio.fail_after(self._timeout_s):
            try:
                response = await self._client.send(request)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                raise _NotSent(str(exc)) from exc
        return response
