"""Where the demo's batch stands while it runs, per scenario. Pure: no trio, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from commands.demo.scenarios import Scenario
from commands.demo.summary import outcome_from_fields


@dataclass(frozen=True, slots=True)
class ScenarioProgress:
    """One scenario's calls so far."""

    scenario: Scenario
    planned: int
    placed: int  # the simulator placed the lead's call
    routing: int  # Step 1 reached the customer; no outcome yet
    finished: int  # the customer received the Step 3 outcome
    as_expected: int  # ... carrying the scenario's Agent1ID
    unexpected: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The whole batch now, for the live display."""

    rows: tuple[ScenarioProgress, ...]
    elapsed_s: float
    simulator_live: int
    simulator_placed: int

    @property
    def planned(self) -> int:
        return sum(r.planned for r in self.rows)

    @property
    def finished(self) -> int:
        return sum(r.finished for r in self.rows)

    @property
    def unexpected(self) -> int:
        return sum(r.unexpected for r in self.rows)


def snapshot(
    planned: Sequence[tuple[Scenario, str]],
    placed: int,
    *,
    scenarios: Sequence[Scenario],
    guid_by_phone: Mapping[str, str],
    outcomes: Mapping[str, Mapping[str, str]],
    elapsed_s: float,
    simulator_live: int,
    simulator_placed: int,
) -> Snapshot:
    """Count ``planned`` calls (the first ``placed`` of them placed) by scenario and stage.

    ``guid_by_phone``: the TrackingGUID each lead's Step 1 carried; ``outcomes``: the first
    Step 3 post of each call, by TrackingGUID.
    """
    rows = []
    for scenario in scenarios:
        mine = [(i, phone) for i, (s, phone) in enumerate(planned) if s.code == scenario.code]
        if not mine:
            continue
        routing = finished = right = 0
        for _, phone in mine:
            guid = guid_by_phone.get(phone)
            if guid is None:
                continue
            posted = outcomes.get(guid)
            if posted is None:
                routing += 1
                continue
            finished += 1
            if outcome_from_fields(posted) == (scenario.expected, scenario.expected_agent1_id):
                right += 1
        rows.append(
            ScenarioProgress(
                scenario=scenario,
                planned=len(mine),
                placed=sum(1 for i, _ in mine if i < placed),
                routing=routing,
                finished=finished,
                as_expected=right,
                unexpected=finished - right,
            )
        )
    return Snapshot(tuple(rows), elapsed_s, simulator_live, simulator_placed)
