"""A Plivo-compatible carrier simulator: Plivo's REST API, signed form-encoded webhooks, and
an XML interpreter with scripted agents and leads, all in simulated (scalable) time.

The production Plivo adapter talks to it exactly as to Plivo (``carrier.api_url``), so the demo,
end-to-end tests and benchmarks exercise the real adapter. Layers:

- pure: :mod:`.xml_program` (XML -> steps), :mod:`.scripts`, :mod:`.signing`, :mod:`.causes`,
  :mod:`.params`, :mod:`.rest_params`, :mod:`.limits`, :mod:`.config`
- engine (trio): :mod:`.engine` (:class:`Simulator`), :mod:`.executor`, :mod:`.conference`,
  :mod:`.dial`, :mod:`.webhooks`, :mod:`.events`
- HTTP: :mod:`.rest_app` (``/v1/Account/...`` + ``/sim/`` control API), :mod:`.server`
  (:func:`run_simulator`, :func:`start_simulator`, :func:`serve`), :mod:`.cli`
- tests: :mod:`.testing` (:class:`FakeApplication`)
"""

from __future__ import annotations

from orchestrator.simulator.config import (
    DEFAULT_AUTH_ID as DEFAULT_AUTH_ID,
)
from orchestrator.simulator.config import (
    DEFAULT_AUTH_TOKEN as DEFAULT_AUTH_TOKEN,
)
from orchestrator.simulator.config import (
    Scenario as Scenario,
)
from orchestrator.simulator.config import (
    ScheduledInbound as ScheduledInbound,
)
from orchestrator.simulator.config import (
    SimulatorConfig as SimulatorConfig,
)
from orchestrator.simulator.config import (
    load_scenario as load_scenario,
)
from orchestrator.simulator.config import (
    simulator_config_from_mapping as simulator_config_from_mapping,
)
from orchestrator.simulator.engine import Simulator as Simulator
from orchestrator.simulator.events import EventKind as EventKind
from orchestrator.simulator.events import SimEvent as SimEvent
from orchestrator.simulator.scripts import AgentScript as AgentScript
from orchestrator.simulator.scripts import LeadScript as LeadScript
from orchestrator.simulator.scripts import ScriptBook as ScriptBook
from orchestrator.simulator.server import RunningSimulator as RunningSimulator
from orchestrator.simulator.server import run_simulator as run_simulator
from orchestrator.simulator.server import serve as serve
from orchestrator.simulator.server import start_simulator as start_simulator
from orchestrator.simulator.state import Account as Account
from orchestrator.simulator.state import CallUrls as CallUrls

__all__ = [
    "DEFAULT_AUTH_ID",
    "DEFAULT_AUTH_TOKEN",
    "Account",
    "AgentScript",
    "CallUrls",
    "EventKind",
    "LeadScript",
    "RunningSimulator",
    "Scenario",
    "ScheduledInbound",
    "ScriptBook",
    "SimEvent",
    "Simulator",
    "SimulatorConfig",
    "load_scenario",
    "run_simulator",
    "serve",
    "simulator_config_from_mapping",
    "start_simulator",
]
