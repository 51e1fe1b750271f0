"""Simulator settings and scenario files. Pure apart from :func:`load_scenario`'s file read.

A scenario file (TOML, or JSON when it ends in ``.json``) scripts the simulated people::

    [default_agent]               # every number without its own script
    answer_after_s = 2.0
    press = "1"

    [agents."4155550111"]         # one agent's phone
    busy = true

    [default_lead]                # inbound callers placed without a script
    hangup_after_s = 60

    [[inbound]]                   # calls placed when the simulator starts
    from = "4155550199"
    to = "8005550100"
    at_s = 1.0                    # simulated seconds after start
    lead = { message_s = 5, hangup_after_message = true }

Every problem (unknown key, bad value) is reported at once in a
:class:`~simulator.errors.SimulatorConfigError`, each naming its key.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from simulator.defaults import DEFAULT_AUTH_ID, DEFAULT_AUTH_TOKEN
from simulator.errors import Problem, SimulatorConfigError
from simulator.scripts import (
    AgentScript,
    LeadScript,
    ScriptError,
    agent_script_from_dict,
    lead_script_from_dict,
)

__all__ = [
    "DEFAULT_AUTH_ID",
    "DEFAULT_AUTH_TOKEN",
    "Scenario",
    "ScheduledInbound",
    "SimulatorConfig",
    "load_scenario",
    "parse_scenario",
    "simulator_config_from_mapping",
]


@dataclass(frozen=True, slots=True)
class ScheduledInbound:
    """An inbound call the simulator places ``at_s`` simulated seconds after it starts."""

    from_number: str
    to_number: str
    at_s: float = 0.0
    lead: LeadScript = field(default_factory=LeadScript)


@dataclass(frozen=True, slots=True)
class Scenario:
    default_agent: AgentScript | None = None
    default_lead: LeadScript | None = None
    agents: Mapping[str, AgentScript] = field(default_factory=dict)
    inbound: tuple[ScheduledInbound, ...] = ()


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Everything :func:`~simulator.server.run_simulator` needs.

    ``answer_url``/``hangup_url`` are the Plivo application's URLs that inbound calls request
    (the service's ``/plivo/answer`` and ``/plivo/hangup``). ``public_url`` is how that service
    reaches the simulator (recording URLs); empty = the bound URL. ``cps`` 0 = unlimited;
    ``rate_limit_per_5s`` 0 = no 429s. ``scenario_file`` (optional) adds scripts and inbound
    calls on top of ``default_agent``/``default_lead``/``agents``.
    """

    bind: str = "127.0.0.1:8765"
    auth_id: str = DEFAULT_AUTH_ID
    auth_token: str = DEFAULT_AUTH_TOKEN
    answer_url: str = "http://127.0.0.1:8080/plivo/answer"
    answer_method: str = "POST"
    hangup_url: str = "http://127.0.0.1:8080/plivo/hangup"
    hangup_method: str = "POST"
    public_url: str = ""
    time_scale: float = 1.0
    cps: float = 2.0
    rate_limit_per_5s: int = 0
    conference_end_hangs_up: bool = True
    webhook_timeout_s: float = 10.0
    default_agent: AgentScript = field(default_factory=AgentScript)
    default_lead: LeadScript = field(default_factory=LeadScript)
    agents: Mapping[str, AgentScript] = field(default_factory=dict)
    inbound: tuple[ScheduledInbound, ...] = ()
    scenario_file: str = ""

    def with_scenario(self, scenario: Scenario) -> SimulatorConfig:
        """This config with a scenario's scripts and inbound calls laid over it."""
        return replace(
            self,
            default_agent=scenario.default_agent or self.default_agent,
            default_lead=scenario.default_lead or self.default_lead,
            agents={**self.agents, **scenario.agents},
            inbound=self.inbound + scenario.inbound,
        )


# --- parsing ------------------------------------------------------------------------------


def _script_problems(prefix: str, exc: ScriptError) -> list[Problem]:
    problems = []
    for text in exc.problems:
        where, _, message = text.partition(": ")
        problems.append(Problem(where or prefix, message or text))
    return problems


def _parse_inbound(raw: Any, problems: list[Problem]) -> tuple[ScheduledInbound, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append(Problem("inbound", "must be a list of tables"))
        return ()
    calls = []
    for i, item in enumerate(raw):
        prefix = f"inbound[{i}]"
        if not isinstance(item, dict):
            problems.append(Problem(prefix, "must be a table"))
            continue
        unknown = set(item) - {"from", "to", "at_s", "lead"}
        problems.extend(Problem(f"{prefix}.{k}", "unknown key") for k in sorted(unknown))
        from_number, to_number = item.get("from"), item.get("to")
        if not isinstance(from_number, str) or not from_number:
            problems.append(Problem(f"{prefix}.from", "a phone number is required"))
        if not isinstance(to_number, str) or not to_number:
            problems.append(Problem(f"{prefix}.to", "a phone number is required"))
        at_s = item.get("at_s", 0.0)
        if isinstance(at_s, bool) or not isinstance(at_s, int | float) or at_s < 0:
            problems.append(Problem(f"{prefix}.at_s", f"must be a number >= 0, got {at_s!r}"))
            at_s = 0.0
        lead = LeadScript()
        try:
            lead = lead_script_from_dict(item.get("lead") or {}, prefix=f"{prefix}.lead")
        except ScriptError as exc:
            problems.extend(_script_problems(prefix, exc))
        if isinstance(from_number, str) and isinstance(to_number, str):
            calls.append(ScheduledInbound(from_number, to_number, float(at_s), lead))
    return tuple(calls)


def parse_scenario(data: Mapping[str, Any]) -> Scenario:
    """Build a :class:`Scenario` from a decoded TOML/JSON mapping.

    Raises:
        SimulatorConfigError: listing every problem.
    """
    problems: list[Problem] = []
    for key in data:
        if key not in ("default_agent", "default_lead", "agents", "inbound"):
            problems.append(Problem(key, "unknown key"))
    default_agent = default_lead = None
    try:
        if data.get("default_agent") is not None:
            default_agent = agent_script_from_dict(data["default_agent"], prefix="default_agent")
    except ScriptError as exc:
        problems.extend(_script_problems("default_agent", exc))
    try:
        if data.get("default_lead") is not None:
            default_lead = lead_script_from_dict(data["default_lead"], prefix="default_lead")
    except ScriptError as exc:
        problems.extend(_script_problems("default_lead", exc))
    agents: dict[str, AgentScript] = {}
    raw_agents = data.get("agents") or {}
    if not isinstance(raw_agents, dict):
        problems.append(Problem("agents", "must be a table of phone -> script"))
        raw_agents = {}
    for phone, script in raw_agents.items():
        try:
            agents[str(phone)] = agent_script_from_dict(script, prefix=f"agents.{phone}")
        except ScriptError as exc:
            problems.extend(_script_problems(f"agents.{phone}", exc))
    inbound = _parse_inbound(data.get("inbound"), problems)
    if problems:
        raise SimulatorConfigError(problems)
    return Scenario(default_agent, default_lead, agents, inbound)


def load_scenario(path: str | Path) -> Scenario:
    """Read a TOML (or ``.json``) scenario file.

    Raises:
        SimulatorConfigError: the file is missing, unreadable, or has problems.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        problem = Problem(str(path), f"cannot read scenario file: {exc}")
        raise SimulatorConfigError([problem]) from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(raw)
        else:
            data = tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise SimulatorConfigError([Problem(str(path), f"not valid TOML/JSON: {exc}")]) from None
    if not isinstance(data, dict):
        raise SimulatorConfigError([Problem(str(path), "must hold a table/object")])
    return parse_scenario(data)


_SCALARS = {
    "bind": str,
    "auth_id": str,
    "auth_token": str,
    "answer_url": str,
    "answer_method": str,
    "hangup_url": str,
    "hangup_method": str,
    "public_url": str,
    "time_scale": float,
    "cps": float,
    "rate_limit_per_5s": int,
    "conference_end_hangs_up": bool,
    "webhook_timeout_s": float,
    "scenario_file": str,
}


def _check_scalar(key: str, value: Any, problems: list[Problem]) -> Any:
    kind = _SCALARS[key]
    if kind is bool:
        if not isinstance(value, bool):
            problems.append(Problem(key, f"must be true or false, got {value!r}"))
        return value
    if kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(Problem(key, f"must be a number, got {value!r}"))
            return value
        if value < 0 or (key in ("time_scale", "webhook_timeout_s") and value <= 0):
            problems.append(Problem(key, f"must be greater than 0, got {value!r}"))
        return kind(value)
    if not isinstance(value, str):
        problems.append(Problem(key, f"must be a string, got {value!r}"))
        return value
    if key.endswith("_url") and value:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            problems.append(Problem(key, f"must be an http(s) URL, got {value!r}"))
    if key.endswith("_method") and value.upper() not in ("GET", "POST"):
        problems.append(Problem(key, f"must be GET or POST, got {value!r}"))
    if key == "auth_id" and (len(value) != 20 or not value.startswith(("MA", "SA"))):
        problems.append(Problem(key, "must be MA or SA followed by 18 characters (Plivo SDK)"))
    if key == "bind":
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit():
            problems.append(Problem(key, f"must be HOST:PORT, got {value!r}"))
    return value


def simulator_config_from_mapping(data: Mapping[str, Any]) -> SimulatorConfig:
    """Build a :class:`SimulatorConfig` from a mapping (e.g. a ``[simulator]`` TOML table);
    ``default_agent``/``default_lead``/``agents``/``inbound`` use the scenario-file shape.

    Raises:
        SimulatorConfigError: listing every problem.
    """
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    script_keys = {"default_agent", "default_lead", "agents", "inbound"}
    known = {f.name for f in fields(SimulatorConfig)}
    for key, value in data.items():
        if key in script_keys:
            continue
        if key not in known or key not in _SCALARS:
            problems.append(Problem(key, "unknown key"))
            continue
        values[key] = _check_scalar(key, value, problems)
    scenario = Scenario()
    try:
        scenario = parse_scenario({k: v for k, v in data.items() if k in script_keys})
    except SimulatorConfigError as exc:
        problems.extend(exc.problems)
    if problems:
        raise SimulatorConfigError(problems)
    return SimulatorConfig(**values).with_scenario(scenario)
