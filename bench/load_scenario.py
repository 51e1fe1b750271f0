"""The load benchmark's calls: who calls, which agents ring, who presses 1. Pure: no I/O.

Every call gets its own lead number and its own agent phones, so events in the simulator's log
(keyed by phone number) map back to one call without guessing. Each call is one tier of two or
three agents whose row order rotates from call to call:

- ``winner``: answers after 1 s, presses 1 one second into the whisper, talks ``talk_s``;
- ``ringer``: never answers (the service must cancel its ringing leg);
- ``silent``: answers after 0.5 s and stays silent at the whisper (the service must hang it up).

All script durations are simulated seconds (the simulator scales them by its time scale).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "BenchAgent",
    "BenchCall",
    "Role",
    "agent_scripts",
    "build_calls",
    "plan_fields",
]

CAMPAIGN_NUMBER = "8005550100"
PLANTYPE = "Purchase"
_AREA = {"lead": "949", "winner": "415", "ringer": "650", "silent": "510"}
_MAX_CALLS = 10_000_000  # seven digits of call index after the area code


class Role(StrEnum):
    WINNER = "winner"
    RINGER = "ringer"
    SILENT = "silent"


@dataclass(frozen=True, slots=True)
class BenchAgent:
    agent_id: int
    phone: str  # 10 digits
    row: int
    role: Role


@dataclass(frozen=True, slots=True)
class BenchCall:
    index: int
    lead_phone: str  # 10 digits
    agents: tuple[BenchAgent, ...]

    @property
    def winner(self) -> BenchAgent:
        return next(a for a in self.agents if a.role is Role.WINNER)

    @property
    def losers(self) -> tuple[BenchAgent, ...]:
        return tuple(a for a in self.agents if a.role is not Role.WINNER)


def _roles(agents: int) -> tuple[Role, ...]:
    if agents == 2:
        return (Role.WINNER, Role.RINGER)
    if agents == 3:
        return (Role.WINNER, Role.RINGER, Role.SILENT)
    raise ValueError(f"agents per call must be 2 or 3, got {agents}")


def build_calls(count: int, agents: int = 3) -> list[BenchCall]:
    """``count`` calls with ``agents`` agents each (one tier; the winner's row rotates).

    >>> [a.role.value for a in build_calls(2)[1].agents]
    ['silent', 'winner', 'ringer']
    """
    if not 0 < count <= _MAX_CALLS:
        raise ValueError(f"count must be 1..{_MAX_CALLS}, got {count}")
    roles = _roles(agents)
    calls = []
    for i in range(count):
        shift = i % len(roles)
        order = roles[-shift:] + roles[:-shift] if shift else roles
        members = tuple(
            BenchAgent(
                agent_id=100_000 + 10 * i + row,
                phone=f"{_AREA[role.value]}{i:07d}",
                row=row,
                role=role,
            )
            for row, role in enumerate(order, start=1)
        )
        calls.append(BenchCall(i, f"{_AREA['lead']}{i:07d}", members))
    return calls


def plan_fields(call: BenchCall, tracking_guid: str) -> dict[str, str]:
    """The Step 2 plan (list format) a customer puts in its Step 1 answer for ``call``."""
    agents = call.agents

    def joined(values: list[str]) -> str:
        return ",".join(values)

    return {
        "TrackingGUID": tracking_guid,
        "AgentEmailAddresses": joined([f"agent{a.agent_id}@bench.example.com" for a in agents]),
        "AgentFiveMinApps": joined(["0"] * len(agents)),
        "AgentID": joined([str(a.agent_id) for a in agents]),
        "AgentNames": joined([f"Agent {a.agent_id}" for a in agents]),
        "AgentNMLS": joined([str(a.agent_id) for a in agents]),
        "AgentPhones": joined([a.phone for a in agents]),
        "AgentTier": joined(["1"] * len(agents)),
        "AgentRow": joined([str(a.row) for a in agents]),
    }


def agent_scripts(call: BenchCall, *, talk_s: float) -> dict[str, dict[str, object]]:
    """The simulator scripts (``POST /sim/agents`` body entries) for ``call``'s agents."""
    scripts: dict[str, dict[str, object]] = {}
    for agent in call.agents:
        if agent.role is Role.WINNER:
            script: dict[str, object] = {
                "answer_after_s": 1.0,
                "press": "1",
                "press_after_s": 1.0,
                "talk_s": talk_s,
            }
        elif agent.role is Role.RINGER:
            script = {"no_answer": True}
        else:
            script = {"answer_after_s": 0.5, "press": None}
        scripts[agent.phone] = script
    return scripts
