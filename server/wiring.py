"""Wiring: build the whole service from :class:`Settings` and run it in one Trio run.

``run_service`` opens one root nursery holding the store's writer, the orchestrator (calls
nursery and outbox deliverer), the HTTP surface (quart-trio on hypercorn), the signal watcher
and — with ``carrier.kind = "simulator"`` — the built-in Plivo-compatible simulator, which the
production Plivo adapter then talks to over HTTP exactly as it would to Plivo.

Shutdown order matters, because live calls still need the carrier's callbacks:

1. SIGTERM/SIGINT → the orchestrator stops taking calls (``/readyz`` 503, new inbound calls are
   apologised to) and gives live calls ``server.drain_s`` to finish;
2. then HTTP stops accepting and drains in-flight requests;
3. then the store writer commits what is queued and stops.

This is the top of the import graph (like hypercorn's ``run.py``): it may import ``web``,
``store`` and the carrier adapters; nothing imports it but the CLI and the demo.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

import structlog
import trio

from actors.instance import Instance, InstanceConfig
from actors.outbox import OutboxDeliverer, RetryPolicy, Sharing
from actors.recovery import recover_calls
from actors.referral_desk import ReferralDesk
from actors.teardown import Teardown, TeardownPolicy
from orchestrator.carriers.plivo import CallbackUrls, PlivoCarrier
from orchestrator.config import Settings
from orchestrator.customer_client import HttpCustomer
from orchestrator.metrics import observe_service
from orchestrator.peers_client import HttpPeers
from orchestrator.service import Orchestrator
from orchestrator.signing import Signer
from server.http import serve_http, stop_on_signals
from simulator import RunningSimulator, SimulatorConfig, start_simulator
from store import SqlStore, open_store
from web.app import create_app
from web.forwarding import Forwarding
from web.history import create_history_blueprint
from web.internal import create_internal_blueprint
from web.live import create_live_assets_blueprint, create_live_blueprint
from web.metrics import create_metrics_blueprint
from web.plivo import create_plivo_blueprint
from web.referrals import create_referrals_blueprint
from web.step2 import step2_key_check

logger = structlog.get_logger()

#: How long a claim on a shared outbox row holds: well over one post's timeout (10 s), so a
#: slow customer's post is never taken by a second instance while it is still in flight.
OUTBOX_CLAIM_S = 30.0


@dataclass(frozen=True, slots=True)
class ServiceHandle:
    """What a running service reports to whoever started it (tests, the demo)."""

    bound: list[str]
    orchestrator: Orchestrator
    store: SqlStore
    simulator: RunningSimulator | None


@asynccontextmanager
async def open_carrier(
    settings: Settings, nursery: trio.Nursery
) -> AsyncIterator[tuple[PlivoCarrier, RunningSimulator | None]]:
    """The production Plivo adapter, pointed at Plivo (``kind = "plivo"``) or at the built-in
    simulator started here in ``nursery`` (``kind = "simulator"``)."""
    simulator: RunningSimulator | None = None
    api_url = settings.carrier.api_url
    if settings.carrier.kind == "simulator":
        public = settings.server.public_url.rstrip("/")
        sim = settings.simulator
        config = SimulatorConfig(
            bind="127.0.0.1:0",
            auth_id=settings.carrier.auth_id,
            auth_token=settings.carrier.auth_token,
            answer_url=f"{public}/plivo/answer",
            hangup_url=f"{public}/plivo/hangup",
            time_scale=sim.time_scale,
            cps=sim.cps,
            scenario_file=sim.scenario,
        )
        simulator = await nursery.start(start_simulator, config)
        api_url = simulator.url
    carrier = PlivoCarrier(
        auth_id=settings.carrier.auth_id,
        auth_token=settings.carrier.auth_token,
        api_url=api_url,
        urls=CallbackUrls(settings.server.callback_base),
        calls_per_second=settings.carrier.calls_per_second,
    )
    async with carrier:
        yield carrier, simulator


async def run_service(
    settings: Settings,
    *,
    stop: trio.Event | None = None,
    task_status: trio.TaskStatus[ServiceHandle] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run until SIGTERM/SIGINT (or ``stop`` is set), then shut down in order (module doc).

    Raises:
        InstanceInUse: the database is used by live instances this one may not run beside.
    """
    if stop is None:
        stop = trio.Event()
    if settings.cluster.enabled:  # every line says which instance wrote it (README "Logs")
        structlog.contextvars.bind_contextvars(instance=settings.instance_id)
    store = await trio.to_thread.run_sync(open_store, settings.store.url)
    customer = HttpCustomer(timeout_s=settings.routing.initial_post_timeout_s)
    peers = HttpPeers(
        Signer(settings.cluster.secret.encode(), settings.instance_id),
        timeout_s=settings.cluster.forward_timeout_s,
    )
    # this instance in the instances table: refused (InstanceInUse) if the database is not
    # ours to share (docs/contract.md §11)
    instance = Instance(instance_config(settings), store)
    try:
        await instance.register()
        async with trio.open_nursery() as root:
            async with open_carrier(settings, root) as (carrier, simulator):
                await root.start(store.run)
                # its share of the account's Make Call rate, as instances come and go
                instance.on_peers = partial(pace_carrier, carrier, settings)
                pace_carrier(carrier, settings, instance, joining=True)
                await root.start(instance.run)
                teardown = Teardown(carrier, TeardownPolicy.from_settings(settings))
                await root.start(teardown.run)
                # restart safety: finish what a crash left in flight before taking calls — only
                # calls whose owner holds no live lease, never a live instance's
                orphans = await store.adopt_orphans(
                    instance.instance_id, instance.epoch, now=time.time()
                )
                recovered = await recover_calls(orphans, teardown, store, settings, now=time.time)
                if recovered:
                    await store.flush()
                    logger.warning("service.recovered_calls", calls=recovered)
                outbox = OutboxDeliverer(
                    customer,
                    store,
                    pending=store,
                    policy=outbox_policy(settings),
                    secrets={
                        c.outcome_post_url: c.outcome_secret
                        for c in settings.campaigns
                        if c.outcome_secret
                    },
                    # a cluster delivers from the shared outbox: any instance posts any call's
                    # outcome, the per-customer bound counted across all of them
                    shared=Sharing(store, instance.instance_id, claim_s=OUTBOX_CLAIM_S)
                    if settings.cluster.enabled
                    else None,
                )
                # referrals (docs/contract.md §7): the pool and the id sequence are the
                # database's, shared by every instance and kept across restarts
                referrals = ReferralDesk(settings.campaigns, store)
                await referrals.open()
                orchestrator = Orchestrator(
                    settings,
                    carrier=carrier,
                    recorder=store,
                    customer=customer,
                    directory=store,
                    guid_key=settings.cluster.secret.encode() or None,
                    referrals=referrals,
                    outcomes=outbox,
                    teardown=teardown,
                    instance=instance,
                    peers=peers,
                )
                forwarding = (
                    Forwarding(orchestrator, peers, peers.signer)
                    if settings.cluster.enabled
                    else None
                )
                cluster_routes = (
                    [create_internal_blueprint(orchestrator, forwarding)] if forwarding else []
                )
                app = create_app(
                    orchestrator,
                    settings,
                    blueprints=[
                        # first: its request timing covers the other blueprints' hooks too
                        create_metrics_blueprint(observe_service(orchestrator)),
                        create_plivo_blueprint(orchestrator, settings, forwarding=forwarding),
                        *cluster_routes,
                        create_referrals_blueprint(referrals, settings),
                        create_history_blueprint(orchestrator, store, settings),
                        create_live_blueprint(orchestrator, settings.operator.token),
                        create_live_assets_blueprint(),
                    ],
                    step2_key_check=step2_key_check(settings, orchestrator.campaign_of_any),
                )
                calls_done, http_stop, http_done = trio.Event(), trio.Event(), trio.Event()

                async def run_calls(*, task_status: trio.TaskStatus[None]) -> None:
                    try:
                        await orchestrator.run(task_status=task_status)
                    finally:
                        calls_done.set()

                async def run_http(*, task_status: trio.TaskStatus[list[str]]) -> None:
                    try:
                        await serve_http(
                            app, settings.server, shutdown_event=http_stop, task_status=task_status
                        )
                    finally:
                        http_done.set()

                await root.start(run_calls)
                bound: list[str] = await root.start(run_http)
                worker = bool(settings.server.worker_bind)  # the parent escalates with SIGKILL
                await root.start(partial(stop_on_signals, stop, hold=worker))
                logger.info(
                    "service.started",
                    bind=bound,
                    public_url=settings.server.public_url,
                    callback_url=settings.server.callback_base,
                    instance_id=instance.instance_id,
                    epoch=instance.epoch,
                    clustered=settings.cluster.enabled,
                    calls_per_second=carrier.calls_per_second,
                    store=redacted(settings.store.url),
                    carrier=settings.carrier.kind,
                    api_url=simulator.url if simulator else settings.carrier.api_url,
                    campaigns={c.name: list(c.numbers) for c in settings.campaigns},
                )
                task_status.started(ServiceHandle(bound, orchestrator, store, simulator))

                await stop.wait()
                orchestrator.shutdown()
                await calls_done.wait()
                http_stop.set()
                await http_done.wait()  # hypercorn has drained in-flight requests
                await store.flush()
                await instance.stop()
            root.cancel_scope.cancel(reason="service stopped")
    finally:
        await instance.stop()
        await customer.aclose()
        await peers.aclose()
        store.close()
        logger.info("service.stopped")


def instance_config(settings: Settings) -> InstanceConfig:
    cluster = settings.cluster
    return InstanceConfig(
        instance_id=settings.instance_id,
        internal_url=settings.internal_url,
        callback_url=settings.server.callback_base,
        clustered=cluster.enabled,
        heartbeat_s=cluster.heartbeat_s,
        lease_s=cluster.lease_s,
    )


#: A cluster instance paces under its share, so that the jitter between the instances and the
#: carrier (a request that waited for a connection, a busy moment) cannot push any second over
#: the account's rate: at 80 % and bursts of one, up to 250 ms of it (README "Capacity").
CLUSTER_PACE_MARGIN = 0.8


def pace_carrier(
    carrier: PlivoCarrier, settings: Settings, instance: Instance, *, joining: bool = False
) -> None:
    """Give ``carrier`` this instance's share of the account's Make Call rate.

    Alone (no ``[cluster]``) it has the whole rate, as before. In a cluster: its share, less
    :data:`CLUSTER_PACE_MARGIN`, with bursts of one; a joining instance first waits two
    heartbeats, the time the others take to see it and lower their shares.
    """
    rate = settings.carrier.calls_per_second
    if not settings.cluster.enabled:
        return
    share = instance.calls_per_second_share(rate) * CLUSTER_PACE_MARGIN
    hold_s = 2 * settings.cluster.heartbeat_s if joining else 0.0
    carrier.pace(share, burst=1, hold_s=hold_s)
    logger.info(
        "carrier.paced",
        calls_per_second=round(share, 3),
        account_calls_per_second=rate,
        live_instances=len(instance.live),
    )


def outbox_policy(settings: Settings) -> RetryPolicy:
    o = settings.outbox
    return RetryPolicy(
        first_delay_s=o.first_retry_s,
        max_delay_s=o.max_retry_s,
        give_up_after_s=o.give_up_after_s,
        per_customer=o.per_customer,
    )


def redacted(url: str) -> str:
    """A store URL without its password."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at or ":" not in creds:
        return url
    user = creds.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"
