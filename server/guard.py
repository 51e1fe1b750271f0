"""Guards on hypercorn's trio worker: one bad client must not stop the service, drop its
connection without an answer, or get an answer that is not JSON.

Two narrowly scoped substitutions, each checked against hypercorn's internals first
(:func:`check_hypercorn_internals`), so an upgrade that moves them fails loudly instead of
silently dropping the protection:

- :class:`GuardedTCPServer` (hypercorn #225, below), which also takes the connection's send
  lock while closing: hypercorn's ``_close`` calls ``send_eof`` without it, so a close racing
  an error answer (``Expect: 100-continue`` then a malformed chunk) raised
  ``trio.BusyResourceError`` and dropped the connection instead of answering 400;
- :class:`JsonErrorH11Protocol`: the answers hypercorn's HTTP/1.1 parser gives on its own (bad
  framing, a duplicate ``Host``, headers too large: 400, 431) carry a JSON
  ``{"error": ...}`` body like every other error of this service, instead of an empty one; and
  a request whose path is not ASCII (hypercorn decodes it strictly and would crash the
  connection) gets such a 400 too.

The #225 bug (hypercorn 0.17-0.18, open upstream; the fix was reverted): a WebSocket upgrade request
followed by trailing bytes in the same packet (``GET / ... Upgrade: websocket ...\\r\\n\\r\\nx``)
puts h11 into its ERROR state while the WebSocket stream is still trying to answer, so
``h11.LocalProtocolError`` escapes the per-connection ``TaskGroup`` in
``hypercorn.trio.tcp_server.TCPServer.run``. That method only catches ``OSError``; the error
then reaches ``trio.serve_listeners``' handler nursery, which is hypercorn's server nursery, and
``hypercorn.trio.serve`` raises — embedded in our one Trio run, that ends ``trio.run`` and every
live call with it.

The guard: :class:`GuardedTCPServer` subclasses hypercorn's ``TCPServer`` and wraps ``run`` so
an ``Exception`` (or exception group of them) escaping one connection is logged as
``http.connection_crashed``, the socket is closed, and the connection task ends normally.
Cancellation and ``KeyboardInterrupt`` still propagate untouched. ``worker_serve`` looks the
class up by its module-global name ``hypercorn.trio.run.TCPServer`` on every connection, so
:func:`install_connection_guard` rebinds that one name — no file in site-packages is edited and
nothing else in hypercorn changes. It first checks that hypercorn's internals still have the
shape this relies on and raises :class:`GuardInstallError` if they moved, so an upgrade cannot
silently remove the protection. ``tests/test_server.py`` sends the #225 request and checks the
server still answers.
"""

from __future__ import annotations

import inspect
from http import HTTPStatus
from itertools import chain

import h11
import orjson
import structlog
import trio
from hypercorn import protocol as hypercorn_protocol
from hypercorn.events import Closed
from hypercorn.protocol import h11 as hypercorn_h11
from hypercorn.trio import run as hypercorn_run
from hypercorn.trio import tcp_server as hypercorn_tcp_server

logger = structlog.get_logger()

_TCPServer = hypercorn_tcp_server.TCPServer
_H11Protocol = hypercorn_h11.H11Protocol


class GuardInstallError(RuntimeError):
    """hypercorn's internals no longer look the way the #225 guard needs; fix the guard."""


class GuardedTCPServer(_TCPServer):
    """hypercorn's per-connection server, with crashes contained to the connection."""

    async def run(self) -> None:
        try:
            await super().run()
        except* Exception as group:
            logger.error(
                "http.connection_crashed",
                peer=self._peer(),
                errors=[repr(exc) for exc in group.exceptions],
                exc_info=group,
            )
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(self.stream)

    async def _close(self) -> None:
        # send_eof must not overlap a send_all of the same stream (module docstring)
        async with self.send_lock:
            await super()._close()

    def _peer(self) -> str | None:
        try:
            socket = getattr(self.stream, "socket", None) or self.stream.transport_stream.socket
            host, port = socket.getpeername()[:2]
        except (AttributeError, OSError, ValueError):
            return None
        return f"{host}:{port}"


def error_reason(status: int) -> str:
    """``{"error": ...}`` text for a status hypercorn answers on its own (``bad request``)."""
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return "error"


class JsonErrorH11Protocol(_H11Protocol):
    """hypercorn's HTTP/1.1 protocol, with JSON error answers and ASCII-only paths."""

    async def _send_error_response(self, status_code: int) -> None:
        body = orjson.dumps({"error": error_reason(status_code)})
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await self._send_h11_event(
            h11.Response(
                status_code=status_code,
                headers=list(chain(headers, self.config.response_headers("h11"))),
            )
        )
        await self._send_h11_event(h11.Data(data=body))
        await self._send_h11_event(h11.EndOfMessage())

    async def _create_stream(self, request: h11.Request) -> None:
        path = bytes(request.target).partition(b"?")[0]
        if not path.isascii():
            logger.warning("http.request_rejected", reason="request path is not ASCII")
            await self._send_error_response(400)
            await self.send(Closed())
            return
        await super()._create_stream(request)


def check_hypercorn_internals() -> None:
    """Verify what the guard relies on; raise :class:`GuardInstallError` if anything moved."""
    problems: list[str] = []
    current = getattr(hypercorn_run, "TCPServer", None)
    if current is not GuardedTCPServer and current is not _TCPServer:
        problems.append(f"hypercorn.trio.run.TCPServer is {current!r}, not hypercorn's TCPServer")
    code = getattr(getattr(hypercorn_run, "worker_serve", None), "__code__", None)
    if code is None or "TCPServer" not in code.co_names:
        problems.append("hypercorn.trio.run.worker_serve no longer refers to TCPServer by name")
    if not inspect.iscoroutinefunction(getattr(_TCPServer, "run", None)):
        problems.append("hypercorn TCPServer.run is no longer a coroutine function")
    params = list(inspect.signature(_TCPServer.__init__).parameters)
    if params != ["self", "app", "config", "context", "state", "stream"]:
        problems.append(f"hypercorn TCPServer.__init__ takes {params[1:]}")
    if "send_lock" not in _TCPServer.__init__.__code__.co_names or not (
        inspect.iscoroutinefunction(getattr(_TCPServer, "_close", None))
    ):
        problems.append("hypercorn TCPServer no longer has send_lock and a coroutine _close")
    current_h11 = getattr(hypercorn_protocol, "H11Protocol", None)
    if current_h11 is not JsonErrorH11Protocol and current_h11 is not _H11Protocol:
        problems.append(f"hypercorn.protocol.H11Protocol is {current_h11!r}")
    init = getattr(getattr(hypercorn_protocol, "ProtocolWrapper", None), "__init__", None)
    if init is None or "H11Protocol" not in init.__code__.co_names:
        problems.append("hypercorn ProtocolWrapper no longer builds H11Protocol by name")
    for name, params_expected in (
        ("_send_error_response", ["self", "status_code"]),
        ("_create_stream", ["self", "request"]),
    ):
        method = getattr(_H11Protocol, name, None)
        if not inspect.iscoroutinefunction(method):
            problems.append(f"hypercorn H11Protocol.{name} is no longer a coroutine function")
        elif list(inspect.signature(method).parameters) != params_expected:
            problems.append(f"hypercorn H11Protocol.{name} changed its parameters")
    if problems:
        raise GuardInstallError(
            "cannot install the hypercorn #225 connection guard: " + "; ".join(problems)
        )


def install_connection_guard() -> None:
    """Make hypercorn's trio worker serve each connection with :class:`GuardedTCPServer`.

    Idempotent; call before ``hypercorn.trio.serve``.

    Raises:
        GuardInstallError: hypercorn's internals changed; the guard would not take effect.
    """
    check_hypercorn_internals()
    # worker_serve builds each connection's server from this name, and ProtocolWrapper each
    # HTTP/1.1 connection's protocol from the other: two names rebound, nothing else changes
    hypercorn_run.TCPServer = GuardedTCPServer  # type: ignore[attr-defined]
    hypercorn_protocol.H11Protocol = JsonErrorH11Protocol  # type: ignore[attr-defined]


def connection_guard_installed() -> bool:
    """True when hypercorn's trio worker will use :class:`GuardedTCPServer` and
    :class:`JsonErrorH11Protocol`."""
    return (
        getattr(hypercorn_run, "TCPServer", None) is GuardedTCPServer
        and getattr(hypercorn_protocol, "H11Protocol", None) is JsonErrorH11Protocol
    )
