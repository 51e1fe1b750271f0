"""ASGI middleware between hypercorn and the app: no request can crash a route, stall a
keep-alive connection, or get an answer that is not JSON.

Four jobs, each answering a way the stack fails on hostile or sloppy input:

1. **Requests the framework cannot even look at** are answered 400 here, before the app:
   a ``Host`` header whose name does not IDNA-encode (werkzeug raises ``BadHost`` outside every
   error handler, e.g. for a label over 63 characters) and a query string that is not UTF-8
   (quart decodes it strictly while routing). See :func:`request_problem` (pure).
2. **A response sent before the request body was read to its end** (413 for a body over the
   cap, 401 before a form is read, any route that ignores a body) first reads what is left of
   a small body (at most :data:`KEEP_ALIVE_BODY_MAX` bytes), so the connection stays
   usable; a larger or slower one is answered with ``Connection: close`` and its remainder is
   drained and dropped after the answer. Without this, quart-trio
   cancels its own final ``send`` when hypercorn reports the stream closed, hypercorn's
   connection then neither recycles nor closes, and the next request on that keep-alive
   connection is never answered — behind a pooling load balancer, some unrelated caller's.
3. **The final send of a response is shielded** from that cancellation, so hypercorn always
   finishes its connection bookkeeping (recycle for keep-alive, or close).
4. **A safety net**: an exception that escapes the app before it answered becomes a JSON 500
   (``http.request_crashed``), never hypercorn's empty one; WebSocket upgrades (we serve none)
   get a JSON 404.

Everything else passes through untouched, at the cost of one wrapper call per ASGI message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
import structlog
import trio

logger = structlog.get_logger()

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: After the app has answered, how long the unread rest of a request body may take to arrive
#: (it is thrown away; the connection is being closed).
DRAIN_TIMEOUT_S = 5.0
#: A body the app did not read is read to its end before the answer when it declares at most
#: this many bytes (and arrives within :data:`KEEP_ALIVE_WAIT_S`): the connection is kept.
KEEP_ALIVE_BODY_MAX = 64 * 1024
KEEP_ALIVE_WAIT_S = 0.5
_JSON = [(b"content-type", b"application/json")]


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


def request_problem(scope: Scope) -> str | None:
    """Why the framework could not handle this request at all, or ``None``. Pure.

    Checks exactly what quart and werkzeug would choke on outside the app's error handlers:
    the ``Host`` header's name must IDNA-encode (the port is not part of it), and the raw query
    string must be UTF-8.
    """
    host = _header(scope, b"host")
    if host is not None:
        name = host.decode("latin-1").lower()
        if not name.startswith("["):  # an IPv6 literal is not IDNA text
            name = name.partition(":")[0]
            try:
                name.encode("idna")
            except UnicodeError:
                return "malformed Host header"
    try:
        bytes(scope.get("query_string", b"")).decode("utf-8")
    except UnicodeDecodeError:
        return "query string is not UTF-8"
    return None


def declared_length(scope: Scope) -> int | None:
    """The body length the request declares: 0 for none, ``None`` when unknown (chunked, or
    a ``Content-Length`` that is not a number). Pure."""
    if _header(scope, b"transfer-encoding") is not None:
        return None
    length = _header(scope, b"content-length")
    if length is None:
        return 0
    text = length.strip()
    return int(text) if text.isdigit() else None


def json_body(error: str) -> bytes:
    return orjson.dumps({"error": error})


class _Exchange:
    """One HTTP request/response as the middleware sees it."""

    __slots__ = (
        "_declared",
        "_drain_scope",
        "_receive",
        "_send",
        "body_done",
        "disconnected",
        "finished",
        "started",
    )

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self._declared = declared_length(scope)
        self._drain_scope: trio.CancelScope | None = None
        self.body_done = self._declared == 0
        self.disconnected = False
        self.started = False
        self.finished = False

    async def receive(self) -> Message:
        message = await self._receive()
        kind = message.get("type")
        if kind == "http.request" and not message.get("more_body", False):
            self.body_done = True
        elif kind == "http.disconnect":
            self.disconnected = True
        if self._drain_scope is not None and (self.body_done or self.disconnected):
            # the app's own reader took the last message: a drain waiting for it is done
            self._drain_scope.cancel()
        return message

    async def send(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "http.response.start":
            self.started = True
            small = self._declared is None or self._declared <= KEEP_ALIVE_BODY_MAX
            if not self.body_done and small:
                await self.drain(KEEP_ALIVE_WAIT_S, max_bytes=KEEP_ALIVE_BODY_MAX)
            if not self.body_done:
                kept = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"connection"]
                message = {**message, "headers": [*kept, (b"connection", b"close")]}
        elif kind == "http.response.body" and not message.get("more_body", False):
            self.finished = True
            # hypercorn recycles or closes the connection inside this call; quart-trio may
            # cancel the task meanwhile (see the module docstring): let it finish.
            with trio.CancelScope(shield=True):
                await self._send(message)
            return
        await self._send(message)

    async def answer(self, status: int, error: str) -> None:
        """A complete JSON error response (only before the app started one)."""
        body = json_body(error)
        headers = [*_JSON, (b"content-length", str(len(body)).encode())]
        await self.send({"type": "http.response.start", "status": status, "headers": headers})
        await self.send({"type": "http.response.body", "body": body, "more_body": False})

    async def drain(self, timeout_s: float = DRAIN_TIMEOUT_S, max_bytes: int | None = None) -> None:
        """Read and drop what is left of the request body (bounded in time, and in bytes when
        ``max_bytes`` is given)."""
        read = 0
        with trio.move_on_after(timeout_s) as self._drain_scope:
            while not (self.body_done or self.disconnected):
                read += len((await self.receive()).get("body", b""))
                if max_bytes is not None and read > max_bytes:
                    break
        self._drain_scope = None


class RequestHygiene:
    """Wraps an ASGI app (the quart-trio app) with the four jobs of the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._refuse_websocket(receive, send)
        else:  # lifespan
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = _Exchange(scope, receive, send)
        problem = request_problem(scope)
        if problem is not None:
            logger.warning(
                "http.request_rejected",
                reason=problem,
                method=scope.get("method"),
                path=str(scope.get("path", ""))[:200],
            )
            await exchange.answer(400, problem)
        else:
            try:
                await self.app(scope, exchange.receive, exchange.send)
            except Exception as exc:  # the app's own handlers turn route errors into JSON
                logger.error(
                    "http.request_crashed",
                    method=scope.get("method"),
                    path=str(scope.get("path", ""))[:200],
                    exc_info=exc,
                )
                if not exchange.started:
                    await exchange.answer(500, "internal server error")
        if not exchange.started and not exchange.disconnected:
            logger.error(
                "http.response_missing",
                method=scope.get("method"),
                path=str(scope.get("path", ""))[:200],
            )
            await exchange.answer(500, "internal server error")
        await exchange.drain()

    async def _refuse_websocket(self, receive: Receive, send: Send) -> None:
        message = await receive()
        if message.get("type") != "websocket.connect":
            return
        body = json_body("this service has no WebSocket routes")
        headers = [*_JSON, (b"content-length", str(len(body)).encode())]
        await send({"type": "websocket.http.response.start", "status": 404, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body, "more_body": False})
