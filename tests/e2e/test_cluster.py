"""A cluster end to end: three ``orchestrator serve`` processes on one PostgreSQL database behind
haproxy, the simulator in its own process, the customer here (docs/contract.md §11).

What must hold, through the production Plivo adapter and real HTTP everywhere:

- calls spread across the instances; each gets exactly one outcome, the right one; no leg is
  left live at the carrier;
- Step 2 posted to an instance that does not own the call reaches the owner; a conflicting
  plan through a third instance is 409, an identical one 200, an unknown TrackingGUID 404, a
  bad plan 400 with nothing stored;
- the callbacks of one instance's calls go through the balancer on purpose (its
  ``callback_url`` is the balancer's): they reach other instances first, are forwarded to the
  owner, and its calls complete;
- two instances registering visitors at once share one referral pool: no number and no
  ReferralID twice, and a call to a tracking number is attributed on whichever instance
  answers it;
- a forged instance-to-instance request is 401 and changes nothing; an instance without
  cluster configuration refuses to start on the cluster's database (exit 3); an instance
  started while the others carry live calls adopts none of them;
- with the account's rate at 6 calls/s across three instances, the carrier never sees more
  than 6 Make Calls in any one second.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio
from quart import request
from quart_trio import QuartTrio

from orchestrator.signing import INSTANCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from tests.support.cluster import API_KEY, Cluster, open_cluster
from tests.support.processes import child
from tests.support.service import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

POOL = tuple(f"80055520{n:02d}" for n in range(40))


def accepting_agent(n: int) -> tuple[int, str]:
    return 500_000 + n, f"888555{n:04d}"


def silent_agent(n: int) -> tuple[int, str]:
    return 600_000 + n, f"777555{n:04d}"


def plan_for(guid: str, n: int, *, first: tuple[int, str] | None = None) -> dict[str, str]:
    """One tier: the agent who presses 1 and one who never answers."""
    (a_id, a_phone), (b_id, b_phone) = first or accepting_agent(n), silent_agent(n)
    return {
        "TrackingGUID": guid,
        "AgentID": f"{a_id},{b_id}",
        "AgentPhones": f"{a_phone},{b_phone}",
        "AgentTier": "1,1",
        "AgentRow": "1,2",
        "AgentNames": "A A,B B",
        "AgentEmailAddresses": "a@x.example,b@x.example",
        "AgentNMLS": "1,2",
        "AgentFiveMinApps": "0,0",
    }


@dataclass
class Customer:
    """The customer endpoint: Step 1 is answered at once; the plan is posted (Step 2) to an
    instance that does NOT own the call, found in the database."""

    app: QuartTrio = field(default_factory=lambda: QuartTrio("customer"))
    step1: dict[str, dict[str, str]] = field(default_factory=dict)  # by TrackingGUID
    outcomes: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    answers: dict[str, list[tuple[str, str, int]]] = field(default_factory=dict)
    arrived: trio.Event = field(default_factory=trio.Event)

    def __post_init__(self) -> None:
        self.send, self.receive = trio.open_memory_channel[tuple[str, str]](100)

        @self.app.get("/initial")
        async def initial() -> str:
            fields = dict(request.args)
            self.step1[fields["TrackingGUID"]] = fields
            await self.send.send((fields["TrackingGUID"], fields["Phone"]))
            self._changed()
            return "ok"

        @self.app.post("/outcome")
        async def outcome() -> str:
            form = dict(await request.form)
            self.outcomes.append((request.headers.get("Idempotency-Key", ""), form))
            self._changed()
            return "ok"

    def _changed(self) -> None:
        self.arrived.set()
        self.arrived = trio.Event()

    async def wait(self, what: str, ready: Any, timeout_s: float = 40.0) -> None:
        with trio.fail_after(timeout_s):
            while not ready():
                await self.arrived.wait()

    async def post_plans(self, cluster: Cluster, index_of: dict[str, int]) -> None:
        """Step 2 for every call, to an instance that does not own it; the first call's plan
        goes through the whole sequence of answers (bad, good, conflicting, identical)."""
        async with trio.open_nursery() as nursery:
            async for guid, phone in self.receive:
                nursery.start_soon(self._post_plan, cluster, guid, index_of[phone])

    async def _post_plan(self, cluster: Cluster, guid: str, n: int) -> None:
        (owner,) = await trio.to_thread.run_sync(
            lambda: [
                r[0]
                for r in cluster.query(
                    "SELECT owner_id FROM calls WHERE tracking_guid = :g", g=guid
                )
            ]
        )
        others = [i for i in cluster.instances[:3] if i.instance_id != owner]
        answers = self.answers.setdefault(guid, [])

        async def post(target: str, kind: str, form: dict[str, str]) -> int:
            response = await cluster.http.post(f"{target}/responsecollect", data=form)
            answers.append((kind, target, response.status_code))
            return response.status_code

        plan = plan_for(guid, n)
        if n == 0:
            bad = {**plan, "AgentPhones": "123,456"}
            await post(others[0].url, "bad", bad)
            stored = await trio.to_thread.run_sync(
                lambda: cluster.query("SELECT plan FROM calls WHERE tracking_guid = :g", g=guid)
            )
            answers.append(("stored_after_bad", "", 0 if stored[0][0] is None else 1))
            await post(others[0].url, "good", plan)
            conflicting = plan_for(guid, n, first=(999_999_1, "8885559999"))
            await post(others[1].url, "conflicting", conflicting)
            await post(others[1].url, "identical", plan)
        else:
            await post(others[n % 2].url, "good", plan)
        self._changed()


async def register_visitors(cluster: Cluster, count: int) -> list[dict[str, Any]]:
    """``count`` referrals at once, half to i0 and half to i1, directly."""
    got: list[dict[str, Any]] = []

    async def one(n: int) -> None:
        target = cluster.instances[n % 2].url
        response = await cluster.http.post(
            f"{target}/referrals",
            json={"campaign": "acme", "FirstName": f"V{n}", "Zip": "92618"},
            headers={"X-Api-Key": API_KEY},
        )
        assert response.status_code == 200, response.text
        got.append(response.json())

    async with trio.open_nursery() as nursery:
        for n in range(count):
            nursery.start_soon(one, n)
    return got


async def forged_requests(cluster: Cluster, guid: str) -> list[int]:
    """An instance-to-instance request with a wrong signature, and one with none at all."""
    target = cluster.instances[0].url
    forged = {
        INSTANCE_HEADER: "i1",
        TIMESTAMP_HEADER: str(int(time.time())),
        SIGNATURE_HEADER: "0" * 64,
    }
    statuses = []
    for path, body in (
        (f"/internal/calls/{guid}/hangup", b'{"reason": "forged"}'),
        (f"/internal/calls/{guid}/plan", b"{}"),
        (f"/plivo/leg/answer?call={guid}&leg=0123456789abcdef", b"CallUUID=x"),
    ):
        for headers in (forged, {INSTANCE_HEADER: "i1"}):
            response = await cluster.http.post(
                f"{target}{path}",
                content=body,
                headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
            )
            statuses.append(response.status_code)
    return statuses


async def test_three_instances_behind_haproxy(tmp_path: Path) -> None:
    customer = Customer()
    calls = 12
    async with open_cluster(
        tmp_path, customer.app, instances=4, start=3, misrouted=(2,), pool=POOL
    ) as cluster:
        http = cluster.http
        # agents: one presses 1, the other never answers (rings until cancelled)
        silent = {silent_agent(n)[1]: {"no_answer": True} for n in range(calls + 1)}
        assert (
            await http.post(f"{cluster.sim_url}/sim/agents", json={"agents": silent})
        ).is_success

        # --- referrals: two instances at once, one pool --------------------------------------
        referrals = await register_visitors(cluster, 30)
        assert sorted(r["ReferralID"] for r in referrals) == list(range(1, 31))
        assert len({r["TrackingNumber"] for r in referrals}) == 30

        # --- calls -----------------------------------------------------------------------------
        leads = {f"949555{n:04d}": n for n in range(calls)}
        tracked_lead = "9495559999"  # calls the tracking number of referral 1
        leads[tracked_lead] = calls
        first = next(r for r in referrals if r["ReferralID"] == 1)
        cluster.nursery.start_soon(customer.post_plans, cluster, leads)
        for phone in leads:
            to = first["TrackingNumber"] if phone == tracked_lead else "8005550100"
            await cluster.place(phone, to)
        await customer.wait("step 1", lambda: len(customer.step1) == len(leads))

        # while the calls are live: forged requests, a refused instance, a new instance
        live_guid = next(iter(customer.step1))
        assert await forged_requests(cluster, live_guid) == [401] * 6
        solo = tmp_path / "solo.toml"
        solo_toml = cluster.instances[0].config.read_text()
        solo_toml = solo_toml.replace(
            f"127.0.0.1:{cluster.instances[0].port}", f"127.0.0.1:{free_port()}"
        )
        solo.write_text(
            solo_toml[: solo_toml.index("[cluster]")] + solo_toml[solo_toml.index("[routing]") :]
        )
        async with child(cluster.nursery, "serve", "--config", str(solo), name="solo") as refused:
            with trio.fail_after(30):
                assert await refused.process.wait() == 3
        (refusal,) = [line for line in refused.text if "refused to start" in line]
        assert "no [cluster] configuration" in refusal
        late = await cluster.start(cluster.instances[3])

        await customer.wait("outcomes", lambda: len(customer.outcomes) >= len(leads), 60)
        await cluster.wait_idle()
        await trio.sleep(0.5)  # a duplicate outcome would arrive now

        # --- every call: one outcome, the right one --------------------------------------------
        keys = Counter(key for key, _ in customer.outcomes)
        assert set(keys.values()) == {1}, keys
        assert set(keys) == set(customer.step1)
        guid_of = {fields["Phone"]: guid for guid, fields in customer.step1.items()}
        for phone, n in leads.items():
            ((form),) = [f for k, f in customer.outcomes if k == guid_of[phone]]
            assert form["Agent1ID"] == str(accepting_agent(n)[0]), (phone, form)

        # --- spread, forwarded, handed over --------------------------------------------------
        owners = Counter(
            r[0] for r in cluster.query("SELECT owner_id FROM calls WHERE finished_at IS NOT NULL")
        )
        assert sum(owners.values()) == len(leads)
        assert {"i0", "i1", "i2"} <= set(owners), owners
        handed = cluster.events("plan.handed_over")
        assert len(handed) == len(leads)  # every plan went to a non-owner first
        forwarded = await cluster.metric("orchestrator_webhooks_forwarded_total", result="ok")
        assert forwarded >= owners["i2"]  # i2's calls' callbacks come through the balancer
        assert late.named("call.recovered") == []  # it adopted nobody's live call
        assert cluster.events("call.recovered") == []

        # --- the first call's Step 2 answers ---------------------------------------------------
        special = guid_of[next(p for p, n in leads.items() if n == 0)]
        kinds = [(kind, status) for kind, _, status in customer.answers[special]]
        assert kinds == [
            ("bad", 400),
            ("stored_after_bad", 0),
            ("good", 200),
            ("conflicting", 409),
            ("identical", 200),
        ]
        unknown = await http.post(
            f"{cluster.lb_url}/responsecollect",
            data=plan_for("00000000-0000-4000-8000-000000000000", 1),
        )
        assert unknown.status_code == 404

        # --- the tracking number's call is referral 1's, on whichever instance took it ---------
        tracked = customer.step1[guid_of[tracked_lead]]
        assert tracked["ReferralID"] == "1"
        assert tracked["FirstName"].startswith("V")
        assert tracked["Zip"] == "92618"
        assert cluster.query("SELECT count(*) FROM outbox WHERE delivered_at IS NULL") == [(0,)]


async def test_the_account_rate_holds_across_three_instances(tmp_path: Path) -> None:
    """Account CPS 6, three instances (2 each, paced a little under): 40 Make Calls asked for
    within a second; never more than 6 reach the carrier in any one second."""
    customer = QuartTrio("customer")

    @customer.get("/initial")
    async def initial() -> dict[str, str]:
        guid = request.args["TrackingGUID"]
        n = int(request.args["Phone"][-4:])
        return plan_for(guid, n)

    @customer.post("/outcome")
    async def outcome() -> str:
        return "ok"

    async with open_cluster(tmp_path, customer, calls_per_second=6.0, time_scale=0.05) as cluster:
        http = cluster.http
        silent = {silent_agent(n)[1]: {"no_answer": True} for n in range(20)}
        scripts = {accepting_agent(n)[1]: {"no_answer": True} for n in range(20)}
        await http.post(f"{cluster.sim_url}/sim/agents", json={"agents": {**silent, **scripts}})
        since = (
            await http.get(f"{cluster.sim_url}/sim/events", params={"kind": "api.request"})
        ).json()["last_seq"]
        leads: list[str] = []

        async def place(n: int) -> None:
            leads.append(await cluster.place(f"949555{n:04d}", "8005550100"))

        async with trio.open_nursery() as nursery:
            for n in range(20):
                nursery.start_soon(place, n)
        with trio.fail_after(60):
            while True:
                events = (
                    await http.get(
                        f"{cluster.sim_url}/sim/events",
                        params={"kind": "api.request", "since": since},
                    )
                ).json()["events"]
                made = sorted(
                    e["data"]["received_at"] * cluster.time_scale
                    for e in events
                    if e["data"]["method"] == "POST" and e["data"]["path"].endswith("/Call/")
                )
                if len(made) >= 40:
                    break
                await trio.sleep(0.5)
        most = max(sum(1 for t in made if start <= t < start + 1.0) for start in made)
        assert most <= 6, made
        # the three instances together still use most of the rate
        span = made[-1] - made[0]
        assert len(made) / span > 3.6, (len(made), span)
        for call_uuid in leads:  # the leads give up: every ringing leg must be cancelled
            await http.post(f"{cluster.sim_url}/sim/calls/{call_uuid}/hangup")
        await cluster.wait_idle()
