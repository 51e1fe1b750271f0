"""Guard against hypercorn #225: one bad client must not stop the whole service.

The bug (hypercorn 0.17-0.18, open upstream; the fix was reverted): a WebSocket upgrade request
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

import structlog
import trio
from hypercorn.trio import run as hypercorn_run
from hypercorn.trio import tcp_server as hypercorn_tcp_server

logger = structlog.get_logger()

_TCPServer = hypercorn_tcp_server.TCPServer


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

    def _peer(self) -> str | None:
        try:
            socket = getattr(self.stream, "socket", None) or self.stream.transport_stream.socket
            host, port = socket.getpeername()[:2]
        except (AttributeError, OSError, ValueError):
            return None
        return f"{host}:{port}"


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
    # the one narrowly-scoped patch: worker_serve builds each connection's server from this name
    hypercorn_run.TCPServer = GuardedTCPServer  # type: ignore[attr-defined]


def connection_guard_installed() -> bool:
    """True when hypercorn's trio worker will use :class:`GuardedTCPServer`."""
    return getattr(hypercorn_run, "TCPServer", None) is GuardedTCPServer
