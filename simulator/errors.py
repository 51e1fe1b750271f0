"""The simulator's own errors (it is a product of its own and imports nothing of the service).

- :class:`SimulatorConfigError` — settings or a scenario file are wrong; ``problems`` lists
  every problem at once, each naming its key.
- :class:`~simulator.scripts.ScriptError`, :class:`~simulator.rest_params.ParamError`,
  :class:`~simulator.xml_program.XmlProgramError` — a script, a REST request or an XML
  document is wrong (each in its own module, next to the parser that raises it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a setting: ``field`` is its key (``agents."4155550111".press``)."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class SimulatorConfigError(ValueError):
    """Simulator settings or a scenario file are wrong; ``problems`` lists every problem."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))
