"""The demo's sample customer endpoint: an integration written from the API doc.

A quart-trio app served on 127.0.0.1 (port 0) with :func:`server.http.serve_http`:

- ``GET /initial`` (Step 1): answers 200 at once. It looks the lead up by ``Phone`` (the demo
  encodes the scenario in it, :func:`~commands.demo.scenarios.scenario_for_phone`). For a
  synchronous scenario the body *is* the routing plan (form-encoded Step 2 fields); otherwise
  the body is a plain ``OK`` and the plan is POSTed a moment later, form-encoded, to the
  service's ``/responsecollect.aspx`` — the API doc's URL — from a background task.
- ``POST /outcome`` (Step 3): records the form fields and the ``Idempotency-Key`` header and
  answers 200.

Everything it sees is kept on :class:`SampleCustomer` for the runner's checks; anything a
real integration would page someone about (a lead it cannot place, a Step 2 post that is not
answered 200) goes to :attr:`SampleCustomer.problems`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
import trio
from quart import Response, request
from quart.typing import ResponseReturnValue
from quart_trio import QuartTrio

from commands.demo.plans import form_body, plan_fields
from commands.demo.scenarios import SCENARIOS, Scenario, scenario_for_phone
from orchestrator.config import ServerSettings
from server.http import serve_http

STEP2_PATH = "/responsecollect.aspx"
#: Timeout of one Step 2 POST to the service (real seconds).
STEP2_TIMEOUT_S = 10.0
_FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class Step1Seen:
    """A Step 1 GET as received."""

    tracking_guid: str
    phone: str
    referral_id: str
    plantype: str
    scenario: str | None  # None: a lead the customer could not place
    at: float


@dataclass(frozen=True, slots=True)
class Step3Seen:
    """A Step 3 POST as received."""

    tracking_guid: str
    fields: dict[str, str]
    idempotency_key: str
    at: float


@dataclass(eq=False)
class SampleCustomer:
    """See the module docstring. ``service_url`` is where Step 2 plans are POSTed."""

    service_url: str
    scenarios: Sequence[Scenario] = SCENARIOS
    step1: dict[str, Step1Seen] = field(default_factory=dict)  # by TrackingGUID
    step2_status: dict[str, int] = field(default_factory=dict)  # by TrackingGUID
    step3: list[Step3Seen] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    _nursery: trio.Nursery | None = field(default=None, init=False, repr=False)
    _http: httpx.AsyncClient | None = field(default=None, init=False, repr=False)

    def outcomes(self) -> dict[str, Step3Seen]:
        """The first Step 3 post of each call, by TrackingGUID (retries are re-posts)."""
        first: dict[str, Step3Seen] = {}
        for seen in self.step3:
            first.setdefault(seen.tracking_guid, seen)
        return first

    def create_app(self) -> QuartTrio:
        app = QuartTrio("sample-customer")
        app.add_url_rule("/initial", "initial", self._initial, methods=["GET"])
        app.add_url_rule("/outcome", "outcome", self._outcome, methods=["POST"])
        return app

    async def serve(
        self, stop: trio.Event, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve on 127.0.0.1:0 until ``stop`` is set; ``started()`` with the base URL.

        Resource handling: owns the Step 2 HTTP client and the nursery of pending Step 2
        posts; both end (the posts cancelled) when this returns.
        """
        settings = ServerSettings(bind="127.0.0.1:0", public_url="http://127.0.0.1", drain_s=1.0)
        limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
        async with (
            httpx.AsyncClient(timeout=STEP2_TIMEOUT_S, limits=limits) as http,
            trio.open_nursery() as nursery,
        ):
            self._http, self._nursery = http, nursery
            bound: list[str] = await nursery.start(
                lambda task_status: serve_http(
                    self.create_app(), settings, shutdown_event=stop, task_status=task_status
                )
            )
            task_status.started(bound[0])
            await stop.wait()
            nursery.cancel_scope.cancel(reason="customer stopped")
        self._http = self._nursery = None

    # --- routes ------------------------------------------------------------------------------

    async def _initial(self) -> ResponseReturnValue:
        args = request.args
        guid = args.get("TrackingGUID", "")
        phone = args.get("Phone", "")
        referral_id = args.get("ReferralID", "0")
        scenario = scenario_for_phone(phone, self.scenarios)
        self.step1[guid] = Step1Seen(
            guid,
            phone,
            referral_id,
            args.get("plantype", ""),
            scenario.name if scenario else None,
            trio.current_time(),
        )
        if scenario is None:
            self.problems.append(f"Step 1 for an unknown lead {phone!r} ({guid})")
            return "OK", 200
        fields = plan_fields(scenario, tracking_guid=guid, referral_id=referral_id)
        if scenario.synchronous:
            return Response(form_body(fields), 200, content_type=_FORM)
        if self._nursery is None:
            self.problems.append(f"Step 1 for {guid} arrived while stopping")
        else:
            self._nursery.start_soon(self._post_plan, guid, fields)
        return "OK", 200

    async def _outcome(self) -> ResponseReturnValue:
        form = await request.form
        fields = {key: form.get(key, "") for key in form}
        guid = fields.get("TrackingGUID", "")
        key = request.headers.get("Idempotency-Key", "")
        if not key:
            self.problems.append(f"Step 3 POST for {guid} without an Idempotency-Key header")
        self.step3.append(Step3Seen(guid, fields, key, trio.current_time()))
        return "OK", 200

    async def _post_plan(self, tracking_guid: str, fields: dict[str, str]) -> None:
        """Step 2: POST the plan to the API doc's URL, form-encoded."""
        assert self._http is not None
        url = self.service_url.rstrip("/") + STEP2_PATH
        try:
            response = await self._http.post(url, data=fields)
        except httpx.HTTPError as exc:
            self.problems.append(f"Step 2 POST for {tracking_guid} failed: {exc!r}")
            return
        self.step2_status[tracking_guid] = response.status_code
        if response.status_code != 200:
            self.problems.append(
                f"Step 2 POST for {tracking_guid} answered {response.status_code}: "
                f"{response.text[:300]}"
            )
