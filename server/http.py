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


def hypercorn_config(settings: ServerSettings) -> Config:
    """The hypercorn config for ``settings``: our bind, no access log, drain = ``drain_s``."""
    config = Config()
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
    shutdown_event: trio.Event, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Set ``shutdown_event`` on the first SIGTERM or SIGINT, then return.

    Once this returns the default handlers are back, so a second signal stops the process at
    once (SIGINT raises ``KeyboardInterrupt``, SIGTERM terminates) — the operator's way out of
    a drain that takes too long.
    """
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        task_status.started()
        async for signum in signals:
            logger.info("service.stopping", signal=signal.Signals(signum).name)
            shutdown_event.set()
            return
