"""Serve the HTTP surface inside the service's one Trio run, and stop it on a signal.

:func:`serve_http` runs hypercorn's trio worker on the app until ``shutdown_event`` is set: from
then on new connections are refused, idle keep-alive connections are closed, and in-flight
requests get ``settings.drain_s`` seconds to finish (hypercorn's ``graceful_timeout``) before
they are cancelled. :func:`stop_on_signals` sets that event on the first SIGTERM/SIGINT —
``hypercorn.trio.serve`` installs no signal handlers of its own.

Wiring, for example::

    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(stop_on_signals, shutdown)
        binds = await nursery.start(partial(serve_http, app, settings.server,
                                            shutdown_event=shutdown))
"""

from __future__ import annotations

import signal
import socket
from typing import TYPE_CHECKING, Any, cast

import structlog
import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from orchestrator.config import ServerSettings
from server.guard import install_connection_guard
from server.hygiene import RequestHygiene

if TYPE_CHECKING:
    from hypercorn.typing import ASGIFramework

logger = structlog.get_logger()


def shared_listener(bind: str) -> int:
    """A listening socket on ``bind`` that other processes may bind too (SO_REUSEPORT: the
    kernel spreads new connections over them); returns its file descriptor, for hypercorn's
    ``fd://`` bind (which then owns it)."""
    host, _, port = bind.rpartition(":")
    host = host.strip("[]")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, int(port)))
    except OSError:
        sock.close()
        raise
    return sock.detach()


def hypercorn_config(settings: ServerSettings) -> Config:
    """The hypercorn config for ``settings``: our bind, no access log, drain = ``drain_s``.

    A worker of ``serve --workers N`` (``settings.worker_bind`` set) listens on the shared
    ``bind`` (SO_REUSEPORT, :func:`shared_listener`) and on its own ``worker_bind``.
    """
    config = Config()
    if settings.worker_bind:
        config.bind = [f"fd://{shared_listener(settings.bind)}", settings.worker_bind]
    else:
        config.bind = [settings.bind]
    config.accesslog = None  # the access log costs 15-19% of throughput (docs/architecture.md)
    config.loglevel = "WARNING"  # hypercorn's own errors still reach stderr; "Running on" does not
    config.graceful_timeout = settings.drain_s
    return config


async def serve_http(
    app: Any,
    settings: ServerSettings,
    *,
    shutdown_event: trio.Event,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on ``settings.bind`` until ``shutdown_event`` is set, then drain.

    Args:
        app: the ASGI app (``web.create_app(...)``).
        settings: ``[server]`` settings: ``bind`` and ``drain_s``.
        shutdown_event: set it to stop accepting and drain.
        task_status: ``started()`` with the bound addresses (``["http://127.0.0.1:43127"]``),
            so a caller binding port 0 learns the real port.

    Resource handling:
        The listening sockets are closed when the event is set; in-flight requests finish
        within ``drain_s`` or are cancelled; the function returns once every connection ended.

    Error handling:
        Installs the hypercorn guards first (:mod:`server.guard`), so an error in one connection
        is logged (``http.connection_crashed``) and never ends the Trio run, and serves the app
        behind :class:`server.hygiene.RequestHygiene` (no malformed request reaches a route
        as a crash or stalls its connection); raises ``GuardInstallError`` if hypercorn's
        internals moved, and ``OSError`` if the bind fails.
    """
    install_connection_guard()
    config = hypercorn_config(settings)
    status = _LoggingStatus(task_status, drain_s=settings.drain_s)
    # RequestHygiene speaks ASGI on plain mappings; hypercorn's types are TypedDicts
    hygienic = cast("ASGIFramework", RequestHygiene(app))
    await serve(hygienic, config, shutdown_trigger=shutdown_event.wait, task_status=status)
    logger.info("http.stopped")


class _LoggingStatus:
    """Passes hypercorn's bound addresses on to our caller, logging ``http.started`` first."""

    def __init__(self, task_status: trio.TaskStatus[list[str]], *, drain_s: float) -> None:
        self._task_status = task_status
        self._drain_s = drain_s

    def started(self, value: list[str] | None = None) -> None:
        binds = value or []
        logger.info("http.started", binds=binds, drain_s=self._drain_s)
        self._task_status.started(binds)


async def stop_on_signals(
    shutdown_event: trio.Event,
    *,
    hold: bool = False,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Set ``shutdown_event`` on the first SIGTERM or SIGINT, then return.

    Once this returns the default handlers are back, so a second signal stops the process at
    once (SIGINT raises ``KeyboardInterrupt``, SIGTERM terminates) — the operator's way out of
    a drain that takes too long.

    ``hold`` (a worker of ``serve --workers``): keep taking the signals instead, so that the
    same request delivered twice — by the parent and by a process manager signalling the
    whole group — still drains; the parent's way out is SIGKILL.
    """
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        task_status.started()
        async for signum in signals:
            name = signal.Signals(signum).name
            if shutdown_event.is_set():
                logger.info("service.already_stopping", signal=name)
                continue
            logger.info("service.stopping", signal=name)
            shutdown_event.set()
            if not hold:
                return
