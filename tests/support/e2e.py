"""End-to-end harness: the whole service, the built-in simulator and a customer, over real HTTP.

:func:`open_e2e` runs, on 127.0.0.1:

- a test **customer endpoint** (:class:`CustomerEndpoint`, a quart-trio app served with
  :func:`server.http.serve_http` on port 0) that records every Step 1 GET and Step 3
  POST with their headers, and answers Step 2 per lead phone either synchronously (the plan in
  the Step 1 response body) or by POSTing ``/responsecollect[.aspx]`` to the service, as the
  API doc's integrations do;
- the **service** itself (:func:`server.wiring.run_service`) with ``carrier.kind =
  "simulator"`` and SQLite in the test's ``tmp_path``: the production Plivo adapter talks HTTP
  to the simulator, which sends signed webhooks back;
- a second, independent **store reader** (``store.open_store``) to check what was committed.

On a normal exit it asserts the carrier is quiet: every simulated call ended
(``sim.wait_idle()`` within a deadline, then ``sim.live_calls() == []``) and the orchestrator
holds no live call. Simulator durations (scripts, ring and XML timeouts) are *simulated*
seconds scaled by ``time_scale``; the orchestrator's own timers (``plan_timeout_s``,
``initial_post_timeout_s``) are real seconds.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal
from xml.etree import ElementTree

import httpx
import trio
from quart import request
from quart.typing import ResponseReturnValue
from quart_trio import QuartTrio
from sqlalchemy import select

from orchestrator.carriers.plivo import NONCE_HEADER, SIGNATURE_HEADER, sign_v3
from orchestrator.config import (
    SIMULATOR_AUTH_ID,
    SIMULATOR_AUTH_TOKEN,
    Campaign,
    CarrierSettings,
    OperatorSettings,
    RoutingSettings,
    ServerSettings,
    Settings,
    SimulatorSettings,
    StoreSettings,
)
from orchestrator.ivr import IvrMenu
from server.http import serve_http
from server.wiring import ServiceHandle, run_service
from simulator import AgentScript, EventKind, LeadScript, SimEvent, Simulator
from store import CallView, SqlStore, open_store
from store.tables import OUTBOX
from tests.support.service import free_port

CAMPAIGN_NUMBER = "8005550100"
PLANTYPE = "Purchase"
INITIAL_PATH = "/initial"
OUTCOME_PATH = "/outcome"
#: Real seconds per simulated second: a simulated minute is 1.5 s.
DEFAULT_TIME_SCALE = 0.025
#: Real seconds any wait of a test may take before it fails.
WAIT_S = 15.0
#: Real seconds the carrier gets to go quiet after a test.
IDLE_S = 10.0
#: Real seconds a whole test (start, scenario, teardown) may take.
TEST_DEADLINE_S = 45.0

#: A lowercase UUID4, 36 characters (docs/contract.md: TrackingGUID).
GUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

#: The API doc's Step 2 example, field for field ("Specifically, the lead is posted with ...").
API_DOC_PLAN: dict[str, str] = {
    "AgentEmailAddresses": "Anthony.Smith@xyz.com,Erin.Jones@xyz.com",
    "AgentFiveMinApps": "1,0",
    "AgentID": "328290,328999",
    "AgentNames": "Anthony Smith,ErinJones",
    "AgentNMLS": "848,352",
    "AgentPhones": "8885551111,9492651111",
    "AgentTier": "1,1",
    "AgentRow": "1,2",
}

#: Routing for e2e runs. ``ring_timeout_s``/``accept_timeout_s``/``voicemail_max_s`` reach the
#: simulator as simulated seconds; the plan and Step 1 timeouts are the service's real seconds.
E2E_ROUTING = RoutingSettings(
    plan_timeout_s=5.0,
    ring_timeout_s=20.0,
    accept_timeout_s=8.0,
    voicemail_max_s=30.0,
    initial_post_timeout_s=2.0,
)


# --- the customer endpoint -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step1Get:
    """One Step 1 request as the customer received it."""

    query: dict[str, str]
    headers: dict[str, str]
    at: float  # trio clock

    @property
    def tracking_guid(self) -> str:
        return self.query["TrackingGUID"]

    @property
    def phone(self) -> str:
        return self.query.get("Phone", "")


@dataclass(frozen=True, slots=True)
class Step3Post:
    """One Step 3 post-back as the customer received it."""

    form: dict[str, str]
    headers: dict[str, str]
    at: float  # trio clock

    @property
    def tracking_guid(self) -> str:
        return self.form.get("TrackingGUID", "")


@dataclass(frozen=True, slots=True)
class PlanReply:
    """How the customer answers Step 2 for one lead phone.

    ``sync``: the plan is the JSON body of the Step 1 response. ``post``: the Step 1 response is
    a plain ``OK`` and the plan is POSTed (form body) to ``path`` on the service, with the
    TrackingGUID under ``guid_field`` (the API doc spells it ``TrackingGuid``).
    """

    fields: Mapping[str, str]
    mode: Literal["sync", "post"] = "post"
    path: str = "/responsecollect.aspx"
    guid_field: str = "TrackingGuid"


@dataclass(frozen=True, slots=True)
class Step2Answer:
    """The service's answer to a Step 2 POST the customer sent."""

    tracking_guid: str
    status: int
    body: str


class CustomerEndpoint:
    """The test customer (see the module docstring). ``run`` serves it; ``stop`` ends it."""

    def __init__(self) -> None:
        self.step1: list[Step1Get] = []
        self.outcomes: list[Step3Post] = []
        self.step2_answers: list[Step2Answer] = []
        self.service_url = ""  # set once the service is up (needed for ``post`` plans)
        self.url = ""
        self._plans: dict[str, PlanReply] = {}
        self._changed = trio.Event()
        self._stop = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._http: httpx.AsyncClient | None = None
        self.app = self._build_app()

    def answer(self, lead_phone: str, reply: PlanReply) -> None:
        """Answer Step 2 for calls from ``lead_phone`` (10 digits) with ``reply``; calls from
        other phones get no plan."""
        self._plans[lead_phone] = reply

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` holds, re-checked after every request received."""
        while not predicate():
            await self._changed.wait()

    async def step1_for(self, lead_phone: str) -> Step1Get:
        """The first Step 1 GET for ``lead_phone``, waiting up to :data:`WAIT_S`."""
        with trio.fail_after(WAIT_S):
            await self.wait_for(lambda: any(s.phone == lead_phone for s in self.step1))
        return next(s for s in self.step1 if s.phone == lead_phone)

    async def outcome_for(self, tracking_guid: str) -> Step3Post:
        """The first Step 3 post for ``tracking_guid``, waiting up to :data:`WAIT_S`."""
        with trio.fail_after(WAIT_S):
            await self.wait_for(
                lambda: any(o.tracking_guid == tracking_guid for o in self.outcomes)
            )
        return next(o for o in self.outcomes if o.tracking_guid == tracking_guid)

    def outcomes_for(self, tracking_guid: str) -> list[Step3Post]:
        return [o for o in self.outcomes if o.tracking_guid == tracking_guid]

    def _build_app(self) -> QuartTrio:
        app = QuartTrio("e2e-customer")

        @app.get(INITIAL_PATH)
        async def initial() -> ResponseReturnValue:
            got = Step1Get(request.args.to_dict(), _headers(), trio.current_time())
            self.step1.append(got)
            self._notify()
            reply = self._plans.get(got.phone)
            if reply is None:
                return "OK", 200, {"Content-Type": "text/plain"}
            if reply.mode == "sync":
                return {"TrackingGUID": got.tracking_guid, **reply.fields}
            assert self._nursery is not None
            self._nursery.start_soon(self._post_plan, got.tracking_guid, reply)
            return "OK", 200, {"Content-Type": "text/plain"}

        @app.post(OUTCOME_PATH)
        async def outcome() -> ResponseReturnValue:
            form = (await request.form).to_dict()
            self.outcomes.append(Step3Post(form, _headers(), trio.current_time()))
            self._notify()
            return "OK", 200, {"Content-Type": "text/plain"}

        return app

    async def _post_plan(self, tracking_guid: str, reply: PlanReply) -> None:
        assert self._http is not None
        data = {reply.guid_field: tracking_guid, **reply.fields}
        response = await self._http.post(self.service_url + reply.path, data=data)
        self.step2_answers.append(Step2Answer(tracking_guid, response.status_code, response.text))
        self._notify()

    async def step2_answer_for(self, tracking_guid: str) -> Step2Answer:
        with trio.fail_after(WAIT_S):
            await self.wait_for(
                lambda: any(a.tracking_guid == tracking_guid for a in self.step2_answers)
            )
        return next(a for a in self.step2_answers if a.tracking_guid == tracking_guid)

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve on 127.0.0.1, port 0, until :meth:`stop`; ``started(base_url)``."""
        settings = ServerSettings(bind="127.0.0.1:0", public_url="http://127.0.0.1", drain_s=0.5)
        async with httpx.AsyncClient(timeout=10) as http, trio.open_nursery() as nursery:
            self._http, self._nursery = http, nursery
            binds: list[str] = await nursery.start(
                partial(serve_http, self.app, settings, shutdown_event=self._stop)
            )
            self.url = binds[0]
            task_status.started(self.url)
            await self._stop.wait()

    def stop(self) -> None:
        self._stop.set()


def _headers() -> dict[str, str]:
    """The current request's headers, names lower-cased."""
    return {name.lower(): value for name, value in request.headers.items()}


# --- the service ------------------------------------------------------------------------------


def e2e_settings(
    db_url: str,
    customer_url: str,
    *,
    time_scale: float,
    routing: RoutingSettings,
    ivr: IvrMenu | None = None,
    operator_token: str = "",
) -> Settings:
    """Settings for one run: simulator carrier, SQLite at ``db_url``, one campaign."""
    port = free_port()
    return Settings(
        server=ServerSettings(
            bind=f"127.0.0.1:{port}", public_url=f"http://127.0.0.1:{port}", drain_s=1.0
        ),
        store=StoreSettings(url=db_url),
        carrier=CarrierSettings(
            kind="simulator",
            auth_id=SIMULATOR_AUTH_ID,
            auth_token=SIMULATOR_AUTH_TOKEN,
            calls_per_second=50.0,
        ),
        simulator=SimulatorSettings(time_scale=time_scale),
        routing=routing,
        operator=OperatorSettings(token=operator_token),
        campaigns=(
            Campaign(
                "acme",
                (CAMPAIGN_NUMBER,),
                PLANTYPE,
                customer_url + INITIAL_PATH,
                customer_url + OUTCOME_PATH,
                ivr=ivr,
            ),
        ),
    )


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A carrier webhook request, signed once, that can be sent (and replayed) as is."""

    url: str
    form: dict[str, str]
    headers: dict[str, str]


@dataclass
class E2E:
    """A running service with its simulator and customer; helpers for the scenarios."""

    settings: Settings
    service: ServiceHandle
    customer: CustomerEndpoint
    http: httpx.AsyncClient
    reader: SqlStore

    @property
    def sim(self) -> Simulator:
        assert self.service.simulator is not None
        return self.service.simulator.simulator

    @property
    def base(self) -> str:
        return self.settings.server.public_url

    @property
    def time_scale(self) -> float:
        return self.settings.simulator.time_scale

    # --- the carrier side -----------------------------------------------------------------

    def script_agent(self, phone: str, script: AgentScript) -> None:
        """What the agent at ``phone`` (10 digits) does when rung."""
        self.sim.scripts.set(phone, script)

    def place_call(self, lead_phone: str, script: LeadScript | None = None) -> str:
        """The lead at ``lead_phone`` (10 digits) calls the campaign; returns its CallUUID."""
        return self.sim.place_inbound(
            "1" + lead_phone, "1" + CAMPAIGN_NUMBER, script or LeadScript()
        )

    def sim_events(self, phone: str, kind: EventKind | None = None) -> list[SimEvent]:
        """The simulator's events about ``phone`` (optionally only of ``kind``), in order."""
        return [e for e in self.sim.history(phone) if kind is None or e.kind is kind]

    def sim_event(self, phone: str, kind: EventKind) -> SimEvent:
        """The one event of ``kind`` about ``phone``."""
        found = self.sim_events(phone, kind)
        assert len(found) == 1, (phone, kind, found)
        return found[0]

    def signed(
        self, path: str, form: Mapping[str, str], *, token: str = SIMULATOR_AUTH_TOKEN
    ) -> SignedRequest:
        """``form`` POSTed to ``path`` as Plivo would send it, V3-signed with ``token``."""
        url = self.base + path
        nonce = str(secrets.randbelow(10**20)).zfill(20)
        signature = sign_v3("POST", url, dict(form), token, nonce)
        return SignedRequest(url, dict(form), {SIGNATURE_HEADER: signature, NONCE_HEADER: nonce})

    async def send(self, req: SignedRequest) -> httpx.Response:
        return await self.http.post(req.url, data=req.form, headers=req.headers)

    # --- the customer side ----------------------------------------------------------------

    async def outcome_of(self, lead_phone: str) -> tuple[Step1Get, Step3Post]:
        """Step 1 and the Step 3 post of the call from ``lead_phone``."""
        step1 = await self.customer.step1_for(lead_phone)
        return step1, await self.customer.outcome_for(step1.tracking_guid)

    # --- the store ------------------------------------------------------------------------

    async def stored_call(self, tracking_guid: str) -> CallView:
        """The finished call as committed, read through the second store."""
        with trio.fail_after(WAIT_S):
            while True:
                await self.service.store.flush()
                call = await self.reader.get_call(tracking_guid)
                if call is not None and call.finished_at is not None:
                    return call
                # The writer commits on its own schedule; nothing to wait on but the store.
                await trio.sleep(0.02)

    async def delivered_outbox_row(self, tracking_guid: str) -> dict[str, Any]:
        """The call's outbox row once the outbox deliverer has recorded the delivery."""
        with trio.fail_after(WAIT_S):
            while True:
                await self.service.store.flush()
                row = await trio.to_thread.run_sync(self._outbox_row, tracking_guid)
                if row is not None and row["delivered_at"] is not None:
                    return row
                await trio.sleep(0.02)

    def _outbox_row(self, tracking_guid: str) -> dict[str, Any] | None:
        with self.reader.engine.connect() as conn:
            row = conn.execute(
                select(OUTBOX).where(OUTBOX.c.tracking_guid == tracking_guid)
            ).first()
        return None if row is None else dict(row._mapping)

    # --- teardown -------------------------------------------------------------------------

    async def assert_quiet(self) -> None:
        """Every simulated call has ended and the orchestrator holds no live call."""
        with trio.fail_after(IDLE_S):
            await self.sim.wait_idle()
        assert self.sim.live_calls() == []
        with trio.fail_after(IDLE_S):
            # The supervisor leaves the registry right after its last record: no event to await.
            while self.service.orchestrator.live_calls:  # noqa: ASYNC110
                await trio.sleep(0.02)


@asynccontextmanager
async def open_e2e(
    tmp_path: Path,
    *,
    time_scale: float = DEFAULT_TIME_SCALE,
    routing: RoutingSettings = E2E_ROUTING,
    deadline_s: float = TEST_DEADLINE_S,
    ivr: IvrMenu | None = None,
    operator_token: str = "",
) -> AsyncIterator[E2E]:
    """Run customer + service (+ simulator) for one test; assert the carrier is quiet at the
    end (see the module docstring)."""
    db_url = f"sqlite:///{tmp_path / 'e2e.db'}"
    customer = CustomerEndpoint()
    with trio.fail_after(deadline_s):
        async with trio.open_nursery() as nursery:
            stop = trio.Event()
            try:
                customer_url: str = await nursery.start(customer.run)
                settings = e2e_settings(
                    db_url,
                    customer_url,
                    time_scale=time_scale,
                    routing=routing,
                    ivr=ivr,
                    operator_token=operator_token,
                )
                handle: ServiceHandle = await nursery.start(
                    partial(run_service, settings, stop=stop)
                )
                customer.service_url = settings.server.public_url
                reader = open_store(db_url)
                try:
                    async with httpx.AsyncClient(timeout=10) as http:
                        harness = E2E(settings, handle, customer, http, reader)
                        yield harness
                        await harness.assert_quiet()
                finally:
                    reader.close()
            finally:
                stop.set()
                customer.stop()


# --- small checks -----------------------------------------------------------------------------


def assert_in_order(seen: Sequence[str], expected: Sequence[str]) -> None:
    """``expected`` occurs in ``seen`` as a subsequence (in this order, gaps allowed)."""
    it = iter(seen)
    missing = [name for name in expected if name not in it]
    assert not missing, f"{missing} not found in order in {list(seen)}"


def conference_room(xml_text: str) -> str:
    """The room name of the ``<Conference>`` in an answer document."""
    room = ElementTree.fromstring(xml_text).find(".//Conference")
    assert room is not None, xml_text
    assert room.text, xml_text
    return room.text
