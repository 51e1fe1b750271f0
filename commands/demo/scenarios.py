"""The demo's scenarios: who the agents are, what they and the lead do, what must happen.

Pure: no trio, no I/O. Each :class:`Scenario` is one path through the product (docs/contract.md
§3-§6): the agents of its routing plan with the simulator script each agent's phone follows, the
lead's script, whether the customer answers the plan synchronously (in the Step 1 body) or
posts it to ``/responsecollect.aspx``, and the Step 3 outcome it must end with.

The sample customer learns a call's scenario from the lead's phone number alone, as a real
integration looks a lead up by phone: lead numbers are ``94955`` + the scenario's one-digit
``code`` + a four-digit call sequence number (``9495530007`` = call 7, scenario 3). Agent
phones are ``888555`` + code + a three-digit agent number, so every agent phone has exactly one
script in the simulator.

Script times are *simulated* seconds (the simulator scales them by its ``time_scale``); they
are chosen against the demo's routing settings (:data:`RING_TIMEOUT_S` and friends in
:mod:`commands.demo.runner`): an agent who must win answers well before a rival, and a
lead who hangs up "while agents ring" does so well before the ring timeout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.model import HANGUP_AGENT_ID, NOT_TRANSFERRED_AGENT_ID, OutcomeKind
from simulator.scripts import AgentScript, LeadScript

LEAD_PREFIX = "94955"
AGENT_PREFIX = "888555"
#: The campaign's inbound number (the DID the leads dial).
CAMPAIGN_NUMBER = "8005550100"
CAMPAIGN_NAME = "demo"
PLANTYPE = "Purchase"
MAX_SEQUENCE = 9999

#: Once connected, the lead talks this long (simulated seconds), then hangs up.
LEAD_TALK_S = 10.0
#: A lead who leaves a voicemail speaks this long (simulated seconds), then hangs up.
MESSAGE_S = 4.0


@dataclass(frozen=True, slots=True)
class DemoAgent:
    """One agent of a scenario's plan and what their phone does when rung."""

    number: int  # 1..999 within the scenario: their phone and AgentID derive from it
    first: str
    last: str
    tier: int
    row: int
    script: AgentScript
    override_ivr: bool = False  # AgentOverrideIVR=1: answering is accepting
    show_real_id: bool = False  # ShowAgentRealID=1: the agent sees the lead's number
    five_min_apps: bool = False
    code: int = 0  # the scenario's code; set by :func:`_agents`

    @property
    def agent_id(self) -> int:
        return 320000 + self.code * 1000 + self.number

    @property
    def phone(self) -> str:
        return f"{AGENT_PREFIX}{self.code}{self.number:03d}"

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    @property
    def email(self) -> str:
        return f"{self.first}.{self.last.split(',')[0]}@xyz.com".lower().replace(" ", "")

    @property
    def nmls(self) -> str:
        return str(100000 + self.agent_id % 100000)


@dataclass(frozen=True, slots=True)
class Scenario:
    """One path through the product, and the outcome it must end with."""

    code: int  # one digit: the lead's number carries it
    name: str
    description: str
    agents: tuple[DemoAgent, ...]  # empty: the plan says "no agents"
    lead: LeadScript
    synchronous: bool  # plan in the Step 1 response body (else POSTed to Step 2)
    expected: OutcomeKind
    expected_agent1_id: int  # the Agent1ID the Step 3 post must carry

    @property
    def mode(self) -> str:
        """``sync``: the plan is the Step 1 response body; ``async``: POSTed to Step 2."""
        return "sync" if self.synchronous else "async"

    @property
    def expected_label(self) -> str:
        return outcome_label(self.expected, self.expected_agent1_id)


def outcome_label(kind: OutcomeKind | None, agent1_id: int | None) -> str:
    """``connected→320103``, ``voicemail``, ``hung_up``; ``-`` for no outcome yet."""
    if kind is None:
        return "-"
    if kind is OutcomeKind.CONNECTED:
        return f"{kind.value}→{agent1_id}"
    return kind.value


def _agents(code: int, *agents: DemoAgent) -> tuple[DemoAgent, ...]:
    return tuple(
        DemoAgent(
            a.number,
            a.first,
            a.last,
            a.tier,
            a.row,
            a.script,
            a.override_ivr,
            a.show_real_id,
            a.five_min_apps,
            code,
        )
        for a in agents
    )


_NEVER_ANSWERS = AgentScript(no_answer=True)

_CONNECTED = _agents(
    1,
    DemoAgent(
        1,
        "Anthony",
        "Smith",
        1,
        1,
        AgentScript(answer_after_s=2.0, press="1"),
        show_real_id=True,
        five_min_apps=True,
    ),
    # slow to pick up and never presses 1: ringing (or whispered to) when Anthony accepts,
    # so her leg is ended at once; the winner never depends on webhook latency
    DemoAgent(2, "Erin", "Jones", 1, 2, AgentScript(answer_after_s=12.0, press=None)),
)
_ESCALATION = _agents(
    2,
    DemoAgent(1, "Carl", "Reyes", 1, 1, _NEVER_ANSWERS),
    DemoAgent(2, "Dana", "Webb", 1, 2, AgentScript(busy=True)),
    # tiers need not be consecutive (API doc): tier 3 comes right after tier 1
    DemoAgent(
        3, "Eve", "Moreno", 3, 1, AgentScript(answer_after_s=2.0, press=None), override_ivr=True
    ),
)
_DECLINE = _agents(
    3,
    DemoAgent(1, "Fay", "Olsen", 1, 1, AgentScript(answer_after_s=1.0, press="2")),
    DemoAgent(2, "Gus", "Patel", 1, 2, AgentScript(answer_after_s=4.0, press="1")),
)
_VOICEMAIL = _agents(
    4,
    DemoAgent(1, "Hal", "Quinn", 1, 1, AgentScript(answer_after_s=1.0, press=None)),
    DemoAgent(2, "Ivy", "Romero", 1, 2, AgentScript(fail=True)),
    DemoAgent(3, "Jon", "Stone", 2, 1, _NEVER_ANSWERS),
)
_LEAD_HANGUP = _agents(
    5,
    DemoAgent(1, "Kim", "Tanaka", 1, 1, _NEVER_ANSWERS),
    DemoAgent(2, "Lou", "Park, Jr.", 1, 2, _NEVER_ANSWERS),  # a quoted CSV element
)

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        1,
        "connected",
        "tier 1 rings; the agent who presses 1 is connected, the other leg ends",
        _CONNECTED,
        LeadScript(talk_s=LEAD_TALK_S),
        True,
        OutcomeKind.CONNECTED,
        _CONNECTED[0].agent_id,
    ),
    Scenario(
        2,
        "escalation",
        "tier 1 rings out / busy; tier 3 answers (no press 1 needed)",
        _ESCALATION,
        LeadScript(talk_s=LEAD_TALK_S),
        False,
        OutcomeKind.CONNECTED,
        _ESCALATION[2].agent_id,
    ),
    Scenario(
        3,
        "decline",
        "an agent presses 2 to decline; another presses 1",
        _DECLINE,
        LeadScript(talk_s=LEAD_TALK_S),
        True,
        OutcomeKind.CONNECTED,
        _DECLINE[1].agent_id,
    ),
    Scenario(
        4,
        "voicemail",
        "nobody accepts in any tier; the lead leaves a message",
        _VOICEMAIL,
        LeadScript(message_s=MESSAGE_S, hangup_after_message=True),
        False,
        OutcomeKind.VOICEMAIL,
        NOT_TRANSFERRED_AGENT_ID,
    ),
    Scenario(
        5,
        "lead-hangup",
        "the lead hangs up while the agents' phones ring",
        _LEAD_HANGUP,
        LeadScript(hangup_after_s=8.0),
        False,
        OutcomeKind.HUNG_UP,
        HANGUP_AGENT_ID,
    ),
    Scenario(
        6,
        "no-agents",
        'the plan says "no agents"; straight to voicemail',
        (),
        LeadScript(message_s=MESSAGE_S, hangup_after_message=True),
        True,
        OutcomeKind.VOICEMAIL,
        NOT_TRANSFERRED_AGENT_ID,
    ),
)


def lead_phone(scenario: Scenario, sequence: int) -> str:
    """The 10-digit number lead ``sequence`` of ``scenario`` calls from."""
    if not 0 <= sequence <= MAX_SEQUENCE:
        raise ValueError(f"sequence must be 0..{MAX_SEQUENCE}, got {sequence}")
    return f"{LEAD_PREFIX}{scenario.code}{sequence:04d}"


def scenario_for_phone(phone: str, scenarios: Sequence[Scenario] = SCENARIOS) -> Scenario | None:
    """The scenario a lead's 10-digit number belongs to, or ``None`` for a stranger."""
    if len(phone) != 10 or not phone.isdigit() or not phone.startswith(LEAD_PREFIX):
        return None
    code = int(phone[len(LEAD_PREFIX)])
    return next((s for s in scenarios if s.code == code), None)


def schedule(calls: int, scenarios: Sequence[Scenario] = SCENARIOS) -> list[tuple[Scenario, str]]:
    """``calls`` calls, scenarios round-robin: ``(scenario, lead phone)`` in placing order."""
    if calls > MAX_SEQUENCE + 1:
        raise ValueError(f"at most {MAX_SEQUENCE + 1} calls")
    return [
        (scenarios[i % len(scenarios)], lead_phone(scenarios[i % len(scenarios)], i))
        for i in range(calls)
    ]


def agent_scripts(scenarios: Sequence[Scenario] = SCENARIOS) -> dict[str, AgentScript]:
    """Every agent phone of ``scenarios`` and the simulator script it follows."""
    return {agent.phone: agent.script for s in scenarios for agent in s.agents}
