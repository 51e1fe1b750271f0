"""Call-history test data and an operator API server, shared by the store, web and CLI tests.

- :func:`seed_records` — six calls (``C1``..``C6``) over two campaigns and three agents, with
  legs, events and outcomes; ``ALL_NEWEST_FIRST`` is their order in a listing;
- :class:`FakeOrchestrator`, :func:`serve`, :class:`Api` — the history routes served over real
  HTTP on port 0 in front of a store, with the operator ``TOKEN``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx
import trio

from orchestrator.config import (
    Campaign,
    CarrierSettings,
    OperatorSettings,
    ServerSettings,
    Settings,
)
from orchestrator.model import (
    CallState,
    InboundCall,
    LegResult,
    Outcome,
    PlanAgent,
    RoutingPlan,
)
from orchestrator.records import (
    CallFinished,
    CallStarted,
    CallStateChanged,
    EventLogged,
    LegStarted,
    LegUpdated,
    PlanAccepted,
    Record,
)
from server.http import serve_http
from web.app import create_app
from web.history import HistoryStore, create_history_blueprint

T0 = 1_764_400_000.0
OUTCOME_URL = "https://customer.example/outcome"
RECORDING = "https://media.example/rec/c1.mp3"
VOICEMAIL = "https://media.example/vm/c2.mp3"
ANN, BOB, CID = 101, 102, 103
LEAD_A, LEAD_B, LEAD_C, LEAD_D = "9495550001", "9495550002", "9495550003", "9495550004"


def guid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


C1, C2, C3, C4, C5, C6 = (guid(n) for n in range(1, 7))


def plan_agent(agent_id: int, name: str, phone: str, tier: int = 1, row: int = 1) -> PlanAgent:
    return PlanAgent(
        agent_id=agent_id,
        phone=phone,
        tier=tier,
        row=row,
        name=name,
        email=f"{agent_id}@xyz.com",
        nmls=str(agent_id),
    )


AGENTS = {
    ANN: plan_agent(ANN, "Ann Smith", "8885551111"),
    BOB: plan_agent(BOB, "Bob Jones", "8885552222", row=2),
    CID: plan_agent(CID, "=Cid", "8885553333", tier=2),
}


def started(g: str, campaign: str, lead: str, at: float) -> CallStarted:
    call = InboundCall(
        tracking_guid=g,
        carrier_call_id=f"lead-{g[-4:]}",
        campaign=campaign,
        lead_phone=lead,
        dialled_number="8005550100",
        plantype="Purchase",
    )
    return CallStarted(call, at)


def leg(
    g: str,
    n: int,
    agent_id: int,
    at: float,
    result: LegResult | None,
    answered: float | None = None,
) -> list[Record]:
    a = AGENTS[agent_id]
    leg_id = f"{g[-2:]}-leg-{n}"
    records: list[Record] = [LegStarted(g, leg_id, agent_id, a.phone, a.tier, a.row, at)]
    if result is not None:
        records.append(
            LegUpdated(
                g,
                leg_id,
                at + 5,
                request_id=f"req-{leg_id}",
                carrier_call_id=f"call-{leg_id}",
                answered_at=answered,
                ended_at=at + 5,
                result=result,
            )
        )
    return records


def finished(g: str, outcome: Outcome, at: float) -> CallFinished:
    return CallFinished(g, outcome, 0, OUTCOME_URL, at)


def seed_records() -> list[Record]:
    """Six calls (C6 starts at the same instant as C4) and three agents:

    ======  ========  =======  ====  ==========  ========================================
    call    campaign  lead     at    outcome     legs
    ======  ========  =======  ====  ==========  ========================================
    C1      acme      A        +0    connected   Ann accepted, Bob cancelled (tier 1)
    C2      acme      B        +100  voicemail   Ann no answer (tier 1), Cid declined (2)
    C3      beta      A        +200  hung_up     none
    C4      beta      C        +300  redirected  none
    C6      acme      C        +300  hung_up     Bob no answer
    C5      acme      D        +400  (dialling)  Bob ringing
    ======  ========  =======  ====  ==========  ========================================
    """
    both = (AGENTS[ANN], AGENTS[BOB])
    return [
        started(C1, "acme", LEAD_A, T0),
        PlanAccepted(C1, "fp1", both, T0 + 1),
        *leg(C1, 1, ANN, T0 + 2, LegResult.ACCEPTED, answered=T0 + 4),
        *leg(C1, 2, BOB, T0 + 2, LegResult.CANCELLED),
        EventLogged(C1, "call.started", T0, json.dumps({"lead_phone": LEAD_A})),
        EventLogged(C1, "call.connected", T0 + 5, json.dumps({"agent_id": ANN, "tier": 1})),
        EventLogged(C1, "call.note", T0 + 6, "not json"),
        finished(C1, Outcome.connected(ANN, RECORDING), T0 + 60),
        started(C2, "acme", LEAD_B, T0 + 100),
        PlanAccepted(C2, "fp2", (AGENTS[ANN], AGENTS[CID]), T0 + 101),
        *leg(C2, 1, ANN, T0 + 102, LegResult.NO_ANSWER),
        *leg(C2, 2, CID, T0 + 110, LegResult.DECLINED, answered=T0 + 112),
        finished(C2, Outcome.voicemail(VOICEMAIL), T0 + 150),
        started(C3, "beta", LEAD_A, T0 + 200),
        finished(C3, Outcome.hung_up(), T0 + 210),
        started(C4, "beta", LEAD_C, T0 + 300),
        finished(C4, Outcome.redirected(), T0 + 305),
        started(C6, "acme", LEAD_C, T0 + 300),
        PlanAccepted(C6, "fp6", (AGENTS[BOB],), T0 + 301),
        *leg(C6, 1, BOB, T0 + 302, LegResult.NO_ANSWER),
        finished(C6, Outcome.hung_up(), T0 + 330),
        started(C5, "acme", LEAD_D, T0 + 400),
        PlanAccepted(C5, "fp5", (AGENTS[BOB],), T0 + 401),
        CallStateChanged(C5, CallState.DIALLING, T0 + 401),
        *leg(C5, 1, BOB, T0 + 402, None),
    ]


#: Newest first; C6 before C4 at the same instant (tracking_guid descending).
ALL_NEWEST_FIRST = [C5, C6, C4, C3, C2, C1]


TOKEN = "operator-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CARRIER_TOKEN = "carrier-auth-token-secret-42"
API_KEY = "campaign-api-key-secret-42"


@dataclass
class FakeOrchestrator:
    """The live side: ``live`` snapshots by guid; ``ended`` records hang_up requests."""

    live: dict[str, dict[str, object]] = field(default_factory=dict)
    ended: list[tuple[str, str]] = field(default_factory=list)

    def live_snapshot(self) -> list[dict[str, object]]:
        return list(self.live.values())

    #: what hang_up answers for a call not in ``live`` (None: its owner did not answer)
    elsewhere: bool | None = False

    async def hang_up(self, tracking_guid: str, reason: str) -> bool | None:
        await trio.lowlevel.checkpoint()
        if tracking_guid not in self.live:
            return self.elsewhere
        self.ended.append((tracking_guid, reason))
        return True

    # web.call_service.CallService, for create_app
    async def submit_plan(self, plan: RoutingPlan) -> RoutingPlan:
        raise NotImplementedError

    @property
    def ready(self) -> bool:
        return True

    @property
    def live_calls(self) -> int:
        return len(self.live)


def settings() -> Settings:
    campaign = Campaign(
        "acme", ("8005550100",), "Purchase", "http://c.test/i", "http://c.test/o", api_key=API_KEY
    )
    return Settings(
        carrier=CarrierSettings(kind="plivo", auth_token=CARRIER_TOKEN),
        operator=OperatorSettings(token=TOKEN),
        campaigns=(campaign,),
    )


def snapshot(g: str, state: str = "dialling") -> dict[str, object]:
    return {
        "tracking_guid": g,
        "campaign": "acme",
        "lead_phone": "9495550004",
        "plantype": "Purchase",
        "state": state,
        "waiting_s": 12.5,
        "tier": 1,
        "tiers_tried": [1],
        "legs": [
            {
                "leg_id": "l1",
                "agent_id": BOB,
                "name": "Bob Jones",
                "phone": "8885552222",
                "tier": 1,
                "state": "ringing",
            }
        ],
    }


@dataclass
class Api:
    url: str
    http: httpx.AsyncClient
    fake: FakeOrchestrator

    async def get(self, path: str, *, auth: bool = True, **params: Any) -> httpx.Response:
        return await self.http.get(self.url + path, params=params, headers=AUTH if auth else {})

    async def post(self, path: str, *, auth: bool = True, **kw: Any) -> httpx.Response:
        return await self.http.post(self.url + path, headers=AUTH if auth else {}, **kw)


async def serve(
    store: HistoryStore, nursery: trio.Nursery, fake: FakeOrchestrator | None = None
) -> Api:
    fake = fake or FakeOrchestrator()
    config = settings()
    app = create_app(fake, config, blueprints=[create_history_blueprint(fake, store, config)])
    stop = trio.Event()
    server = ServerSettings(bind="127.0.0.1:0", public_url="http://127.0.0.1", drain_s=0.5)
    binds: list[str] = await nursery.start(partial(serve_http, app, server, shutdown_event=stop))
    return Api(binds[0], httpx.AsyncClient(timeout=10), fake)
