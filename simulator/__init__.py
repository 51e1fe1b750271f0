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

from simulator.config import (
    DEFAULT_AUTH_ID as DEFAULT_AUTH_ID,
)
from simulator.config import (
    DEFAULT_AUTH_TOKEN as DEFAULT_AUTH_TOKEN,
)
from simulator.config import (
    Scenario as Scenario,
)
from simulator.config import (
    ScheduledInbound as ScheduledInbound,
)
from simulator.config import (
    SimulatorConfig as SimulatorConfig,
)
from simulator.config import (
    load_scenario as load_scenario,
)
from simulator.config import (
    simulator_config_from_mapping as simulator_config_from_mapping,
)
from simulator.engine import Simulator as Simulator
from simulator.events import EventKind as EventKind
from simulator.events import SimEvent as SimEvent
from simulator.scripts import AgentScript as AgentScript
from simulator.scripts import LeadScript as LeadScript
from simulator.scripts import ScriptBook as ScriptBook
from simulator.server import RunningSimulator as RunningSimulator
from simulator.server import run_simulator as run_simulator
from simulator.server import serve as serve
from simulator.server import start_simulator as start_simulator
from simulator.state import Account as Account
from simulator.state import CallUrls as CallUrls

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
