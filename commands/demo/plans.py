"""The Step 2 routing-plan fields a customer integration sends for a demo scenario.

Pure: no I/O. Written the way an integrator reading the API doc would: the **list format**
(``AgentEmailAddresses``, ``AgentFiveMinApps``, ``AgentID``, ``ShowAgentRealID``,
``AgentOverrideIVR``, ``AgentNames``, ``AgentNMLS``, ``AgentPhones``, ``AgentTier``,
``AgentRow``: comma-separated, one element per agent, an element holding a comma quoted as in
CSV), and for "no agents" the API doc's own words: ``Agent1ID=0`` with empty
``Agent1Group``, ``Agent1Phone`` and ``Agent1Press1``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from urllib.parse import urlencode

from commands.demo.scenarios import DemoAgent, Scenario


def csv_line(values: Sequence[str]) -> str:
    """One CSV line: ``Smith, Jr.`` becomes ``"Smith, Jr."``; plain values stay bare."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(values)
    return buffer.getvalue()


def _flag(value: bool) -> str:
    return "1" if value else "0"


def list_plan_fields(agents: Sequence[DemoAgent]) -> dict[str, str]:
    """The list-format agent fields for ``agents`` (API doc, Step 2)."""
    return {
        "AgentEmailAddresses": csv_line([a.email for a in agents]),
        "AgentFiveMinApps": csv_line([_flag(a.five_min_apps) for a in agents]),
        "AgentID": csv_line([str(a.agent_id) for a in agents]),
        "ShowAgentRealID": csv_line([_flag(a.show_real_id) for a in agents]),
        "AgentOverrideIVR": csv_line([_flag(a.override_ivr) for a in agents]),
        "AgentNames": csv_line([a.name for a in agents]),
        "AgentNMLS": csv_line([a.nmls for a in agents]),
        "AgentPhones": csv_line([a.phone for a in agents]),
        "AgentTier": csv_line([str(a.tier) for a in agents]),
        "AgentRow": csv_line([str(a.row) for a in agents]),
    }


def no_agents_fields() -> dict[str, str]:
    """ "No agents" as the API doc words it: ``Agent1ID=0``, the rest of agent 1 empty."""
    return {"Agent1ID": "0", "Agent1Group": "", "Agent1Phone": "", "Agent1Press1": ""}


def plan_fields(scenario: Scenario, *, tracking_guid: str, referral_id: str) -> dict[str, str]:
    """Every Step 2 field of ``scenario``'s plan for the call ``tracking_guid``."""
    agents = list_plan_fields(scenario.agents) if scenario.agents else no_agents_fields()
    return {"ReferralID": referral_id, "TrackingGUID": tracking_guid, **agents}


def form_body(fields: dict[str, str]) -> str:
    """``fields`` form-encoded (the synchronous Step 1 answer's body)."""
    return urlencode(fields)
