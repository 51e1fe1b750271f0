"""The load benchmark's customer endpoint: answers Step 1 with the plan in the body
(synchronous mode, so no Step 2 round trip and no customer think time is measured) and
collects the Step 3 outcomes.

Step 1 finds the call by the lead's ``Phone`` (every benchmark call has its own lead number).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import trio
from quart import Response, request
from quart_trio import QuartTrio

from bench.load_scenario import BenchCall, plan_fields

__all__ = ["BenchCustomer", "Outcome"]


@dataclass(frozen=True, slots=True)
class Outcome:
    index: int
    agent1_id: str
    message_link: str
    at: float  # trio clock (real seconds) when the POST arrived


class BenchCustomer:
    """See the module docstring. Serve :attr:`app`; read :attr:`outcomes`."""

    def __init__(self, calls: list[BenchCall]) -> None:
        self._by_phone = {call.lead_phone: call for call in calls}
        self._by_guid: dict[str, BenchCall] = {}
        self.outcomes: dict[int, Outcome] = {}
        self.duplicate_outcomes = 0
        self.unknown_requests = 0
        self._changed = trio.Event()
        self.app = self._make_app()

    async def wait_outcomes(self, indexes: set[int]) -> None:
        """Return once every call in ``indexes`` has its outcome; add your deadline."""
        while not indexes <= self.outcomes.keys():
            await self._changed.wait()

    def _make_app(self) -> QuartTrio:
        app = QuartTrio("bench_customer")

        @app.get("/initial")
        async def initial() -> Response:
            call = self._by_phone.get(request.args.get("Phone", ""))
            guid = request.args.get("TrackingGUID", "")
            if call is None or not guid:
                self.unknown_requests += 1
                return Response("", status=200)  # no plan in the body
            self._by_guid[guid] = call
            return Response(json.dumps(plan_fields(call, guid)), content_type="application/json")

        @app.post("/outcome")
        async def outcome() -> Response:
            form = await request.form
            call = self._by_guid.get(form.get("TrackingGUID", ""))
            if call is None:
                self.unknown_requests += 1
            elif call.index in self.outcomes:
                self.duplicate_outcomes += 1
            else:
                self.outcomes[call.index] = Outcome(
                    call.index,
                    form.get("Agent1ID", ""),
                    form.get("MessageLink", ""),
                    trio.current_time(),
                )
                self._changed.set()
                self._changed = trio.Event()
            return Response("ok", status=200)

        return app
