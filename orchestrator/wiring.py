"""Wiring: build the whole service from :class:`Settings` and run it in one Trio run.

``run_service`` opens one root nursery holding the store's writer, the orchestrator (calls
nursery and outcome courier), the HTTP surface (quart-trio on hypercorn) and the signal
watcher. Shutdown order matters, because live calls still need the carrier's callbacks:

1. SIGTERM/SIGINT → the orchestrator stops taking calls (``/readyz`` 503, new inbound calls are
   apologised to) and gives live calls ``server.drain_s`` to finish;
2. then HTTP stops accepting and drains in-flight requests;
3. then the store writer commits what is queued and stops.

This is the top of the import graph (like hypercorn's ``run.py``): it may import ``web``,
``store`` and the carrier adapters; nothing imports it but the CLI.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
import trio

from orchestrator.carriers.plivo import CallbackUrls, PlivoCarrier
from orchestrator.config import Settings
from orchestrator.customer import HttpCustomer
from orchestrator.ports import Carrier
from orchestrator.server import serve_http, stop_on_signals
from orchestrator.service import Orchestrator
from store import open_store
from web.app import create_app
from web.plivo import create_plivo_blueprint

logger = structlog.get_logger()


@asynccontextmanager
async def open_carrier(settings: Settings) -> AsyncIterator[Carrier]:
    """The production carrier adapter: Plivo's REST API at ``carrier.api_url`` (Plivo itself,
    or any Plivo-compatible endpoint such as the built-in simulator)."""
    carrier = PlivoCarrier(
        auth_id=settings.carrier.auth_id,
        auth_token=settings.carrier.auth_token,
        api_url=settings.carrier.api_url,
        urls=CallbackUrls(settings.server.public_url),
        calls_per_second=settings.carrier.calls_per_second,
    )
    async with carrier:
        yield carrier


async def run_service(
    settings: Settings,
    *,
    stop: trio.Event | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run until SIGTERM/SIGINT (or ``stop`` is set), then shut down in order (module doc).

    ``task_status.started`` reports the bound HTTP addresses.
    """
    if stop is None:
        stop = trio.Event()
    store = await trio.to_thread.run_sync(open_store, settings.store.url)
    customer = HttpCustomer(timeout_s=settings.routing.initial_post_timeout_s)
    try:
        async with open_carrier(settings) as carrier, trio.open_nursery() as root:
            await root.start(store.run)
            orchestrator = Orchestrator(
                settings, carrier=carrier, recorder=store, customer=customer, lookup=store
            )
            app = create_app(
                orchestrator, settings, blueprints=[create_plivo_blueprint(orchestrator, settings)]
            )
            http_stop = trio.Event()
            calls_done = trio.Event()

            async def run_calls(*, task_status: trio.TaskStatus[None]) -> None:
                try:
                    await orchestrator.run(task_status=task_status)
                finally:
                    calls_done.set()

            http_done = trio.Event()

            async def run_http(*, task_status: trio.TaskStatus[list[str]]) -> None:
                try:
                    await serve_http(app, settings.server, shutdown_event=http_stop,
                                     task_status=task_status)
                finally:
                    http_done.set()

            await root.start(run_calls)
            bound: list[str] = await root.start(run_http)
            await root.start(stop_on_signals, stop)
            logger.info(
                "service.started", bind=bound, public_url=settings.server.public_url,
                store=_redacted(settings.store.url), carrier=settings.carrier.kind,
                api_url=settings.carrier.api_url,
                campaigns={c.name: list(c.numbers) for c in settings.campaigns},
            )
            task_status.started(bound)

            await stop.wait()
            orchestrator.shutdown()
            await calls_done.wait()
            http_stop.set()
            await http_done.wait()  # hypercorn has drained in-flight requests
            await store.flush()
            root.cancel_scope.cancel(reason="service stopped")
    finally:
        await customer.aclose()
        store.close()
        logger.info("service.stopped")


def _redacted(url: str) -> str:
    """A store URL without its password."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at or ":" not in creds:
        return url
    user = creds.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"
