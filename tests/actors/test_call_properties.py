"""Property test: any plan, any agent behaviour, any lead — the call invariants hold.

For random routing plans (tiers, rows, override flags, a phone shared by two agents) and
random behaviours (busy, rings out, answers and presses 1 / another key / nothing, hangs up
during the whisper, carrier refuses, slow Make Call, a cancel slow to land) and a random lead
(hangs up at some point or waits, leaves a message or not, Step 2 early, late or never):

- at most one agent is ever connected, and the outcome names that agent;
- tiers never overlap: a tier's first leg is placed only after every leg of the tier before it
  has ended at the carrier;
- no leg is left live at the carrier;
- exactly one outcome is recorded and posted per call.
"""

from __future__ import annotations

import itertools
from collections import defaultdict

import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.carriers.fake import AgentScript, LeadScript
from orchestrator.model import PlanAgent
from orchestrator.records import CallFinished, LegStarted
from tests.support.call_harness import agent, harness

PHONES = [f"20000000{i:02d}" for i in range(12)]

agent_scripts = st.one_of(
    st.builds(AgentScript, busy=st.just(True)),
    st.builds(AgentScript, fail=st.just(True)),
    st.builds(AgentScript, answer_after_s=st.none()),
    st.builds(
        AgentScript,
        answer_after_s=st.floats(0.0, 25.0),
        press=st.sampled_from(["1", "1", "2", "9", None]),
        press_after_s=st.floats(0.0, 10.0),
        hangup_after_s=st.none() | st.floats(0.0, 10.0),
        talk_s=st.floats(1.0, 100.0),
        originate_latency_s=st.sampled_from([0.0, 0.0, 0.3, 4.0]),
    ),
)


@st.composite
def plans(draw: st.DrawFn) -> list[PlanAgent]:
    tiers = sorted(set(draw(st.lists(st.integers(0, 9), min_size=1, max_size=4))))
    agents: list[PlanAgent] = []
    row = 0
    for tier in tiers:
        for _ in range(draw(st.integers(1, 4))):
            row += 1
            agents.append(
                agent(
                    100 + row,
                    draw(st.sampled_from(PHONES)),
                    tier,
                    row,
                    press1=draw(st.booleans()),
                )
            )
    return agents


leads = st.builds(
    LeadScript,
    hangup_after_s=st.none() | st.floats(0.0, 120.0),
    message_s=st.none() | st.floats(0.0, 30.0),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    plan=plans(),
    scripts=st.fixed_dictionaries({p: agent_scripts for p in PHONES}),
    lead=leads,
    plan_after_s=st.sampled_from([0.0, 0.0, 2.0, 9.9, 12.0]),
    cancel_latency_s=st.sampled_from([0.0, 0.0, 0.7]),
)
def test_call_invariants(
    plan: list[PlanAgent],
    scripts: dict[str, AgentScript],
    lead: LeadScript,
    plan_after_s: float,
    cancel_latency_s: float,
) -> None:
    async def scenario() -> None:
        async with harness(scripts, cancel_latency_s=cancel_latency_s) as h:
            late = plan_after_s > 10.0
            sup = await h.call(lead, *plan, send_plan=False)
            if not late:
                await trio.testing.wait_all_tasks_blocked()  # Step 1 has gone out
                await trio.sleep(plan_after_s)
                if not sup.finished.is_set():
                    from tests.support.call_harness import plan_for

                    await h.orchestrator.submit_plan(plan_for(sup.tracking_guid, *plan))
            await h.settle(sup)
            c = h.carrier

            connected = c.notes("connected")
            assert len(connected) <= 1
            (finished,) = h.recorder.of(CallFinished)
            assert len(h.customer.outcome_posts) == 1
            posted = h.customer.outcome_posts[0][1]
            assert posted["Agent1ID"] == str(finished.outcome.agent1_id)
            if connected:
                winners = {a.agent_id for a in plan if a.phone == connected[0].phone}
                assert finished.outcome.agent1_id in winners
            else:
                assert finished.outcome.agent1_id in (0, 999999)

            tier_of = {r.leg_id: r.tier for r in h.recorder.of(LegStarted)}
            first_start: dict[int, float] = {}
            last_end: dict[int, float] = defaultdict(float)
            for note in c.log:
                tier = tier_of.get(note.leg_id)
                if tier is None:
                    continue
                if note.what == "originate":
                    first_start.setdefault(tier, note.at)
                elif note.what.startswith("ended_"):
                    last_end[tier] = max(last_end[tier], note.at)
            ordered = sorted(first_start)
            for before, after in itertools.pairwise(ordered):
                assert first_start[after] >= last_end[before]

    trio.run(scenario, clock=trio.testing.MockClock(autojump_threshold=0))
