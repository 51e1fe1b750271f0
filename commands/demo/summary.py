"""What the demo saw for each call, whether that is what its scenario expects, and statistics.

Pure: no trio, no I/O. The runner gathers three independent witnesses of every call and this
module holds them against each other and against the scenario:

1. the Step 3 post the sample customer received (what the customer's business sees);
2. the canonical ``call.finished`` log line (what the operator sees);
3. the row in the SQLite ``calls`` table (what the service stored).

A call is as expected when the post carries the scenario's ``Agent1ID`` (the winner's id,
``0`` for voicemail, ``999999`` for a hang-up), a ``MessageLink`` where one is due, and the log
line and the stored row agree with it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any

import orjson

from commands.demo.scenarios import Scenario, outcome_label
from orchestrator.model import HANGUP_AGENT_ID, NOT_TRANSFERRED_AGENT_ID, OutcomeKind

FINISHED_EVENT = "call.finished"


@dataclass(frozen=True, slots=True)
class FinishedLine:
    """The fields of one canonical ``call.finished`` log line the demo uses."""

    tracking_guid: str
    outcome: str
    agent1_id: int | None
    legs: int
    tiers_tried: tuple[int, ...]
    time_to_connect_s: float | None
    duration_s: float | None


@dataclass(frozen=True, slots=True)
class StoredCall:
    """A call's row in the ``calls`` table."""

    tracking_guid: str
    lead_phone: str
    outcome: str | None
    agent1_id: int | None


@dataclass(frozen=True, slots=True)
class CallReport:
    """Everything seen about one demo call."""

    sequence: int
    scenario: Scenario
    lead_phone: str
    tracking_guid: str | None  # None: neither the customer nor the store knows the call
    posts: tuple[Mapping[str, str], ...]  # Step 3 posts received (retries included)
    finished: tuple[FinishedLine, ...]  # its call.finished lines
    stored: StoredCall | None
    step1_seen: bool = True  # the customer received its Step 1 GET

    @property
    def posted(self) -> Mapping[str, str] | None:
        return self.posts[0] if self.posts else None

    @property
    def actual(self) -> tuple[OutcomeKind | None, int | None]:
        return outcome_from_fields(self.posted)

    @property
    def actual_label(self) -> str:
        return outcome_label(*self.actual)

    @property
    def line(self) -> FinishedLine | None:
        return self.finished[0] if self.finished else None

    def problems(self) -> list[str]:
        """What is wrong with this call (empty: as its scenario expects)."""
        return call_problems(self)


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def outcome_from_fields(fields: Mapping[str, str] | None) -> tuple[OutcomeKind | None, int | None]:
    """The outcome a Step 3 post carries: ``Agent1ID`` 999999 hung up, 0 voicemail, else the
    winner's id (docs/contract.md §6)."""
    if fields is None:
        return None, None
    agent1 = _int(fields.get("Agent1ID", ""))
    if agent1 is None:
        return None, None
    if agent1 == HANGUP_AGENT_ID:
        return OutcomeKind.HUNG_UP, agent1
    if agent1 == NOT_TRANSFERRED_AGENT_ID:
        return OutcomeKind.VOICEMAIL, agent1
    return OutcomeKind.CONNECTED, agent1


def parse_finished_lines(lines: Iterable[bytes]) -> list[FinishedLine]:
    """Every ``call.finished`` line among JSON log ``lines`` (other lines are skipped)."""
    found: list[FinishedLine] = []
    for raw in lines:
        if FINISHED_EVENT.encode() not in raw:
            continue
        try:
            data: Any = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(data, dict) or data.get("event") != FINISHED_EVENT:
            continue
        ttc = data.get("time_to_connect_s")
        duration = data.get("duration_s")
        found.append(
            FinishedLine(
                tracking_guid=str(data.get("tracking_guid", "")),
                outcome=str(data.get("outcome", "")),
                agent1_id=_int(data.get("agent1_id")),
                legs=int(data.get("legs") or 0),
                tiers_tried=tuple(int(t) for t in data.get("tiers_tried") or ()),
                time_to_connect_s=None if ttc is None else float(ttc),
                duration_s=None if duration is None else float(duration),
            )
        )
    return found


def build_reports(
    placed: Sequence[tuple[Scenario, str]],
    *,
    guid_by_phone: Mapping[str, str],
    posts: Mapping[str, Sequence[Mapping[str, str]]],
    finished: Sequence[FinishedLine],
    stored: Sequence[StoredCall],
) -> list[CallReport]:
    """One :class:`CallReport` per placed call (``(scenario, lead phone)``, in order)."""
    lines: dict[str, list[FinishedLine]] = {}
    for line in finished:
        lines.setdefault(line.tracking_guid, []).append(line)
    rows = {row.tracking_guid: row for row in stored}
    rows_by_phone = {row.lead_phone: row for row in stored}
    reports = []
    for sequence, (scenario, phone) in enumerate(placed):
        guid = guid_by_phone.get(phone)
        step1_seen = guid is not None
        row = rows.get(guid) if guid else rows_by_phone.get(phone)
        if guid is None and row is not None:
            guid = row.tracking_guid
        reports.append(
            CallReport(
                sequence=sequence,
                scenario=scenario,
                lead_phone=phone,
                tracking_guid=guid,
                posts=tuple(posts.get(guid, ())) if guid else (),
                finished=tuple(lines.get(guid, ())) if guid else (),
                stored=row,
                step1_seen=step1_seen,
            )
        )
    return reports


def call_problems(report: CallReport) -> list[str]:
    """See :meth:`CallReport.problems`."""
    scenario = report.scenario
    if report.tracking_guid is None:
        return ["no Step 1 GET reached the customer and nothing was stored"]
    problems: list[str] = []
    if not report.step1_seen:
        problems.append("no Step 1 GET reached the customer")
    posted = report.posted
    kind, agent1 = report.actual
    if posted is None:
        problems.append("no Step 3 outcome was posted to the customer")
    elif kind is None:
        problems.append(f"Step 3 post has no valid Agent1ID: {dict(posted)}")
    elif (kind, agent1) != (scenario.expected, scenario.expected_agent1_id):
        problems.append(
            f"expected {scenario.expected_label}, the customer got {report.actual_label}"
        )
    elif kind is not OutcomeKind.HUNG_UP and not posted.get("MessageLink"):
        problems.append(f"{kind.value} outcome posted without a MessageLink")
    if len({tuple(sorted(p.items())) for p in report.posts}) > 1:
        problems.append(f"{len(report.posts)} different Step 3 posts for one call")
    if len(report.finished) != 1:
        problems.append(f"{len(report.finished)} call.finished log lines (want 1)")
    elif kind is not None and report.finished[0].outcome != kind.value:
        problems.append(f"log says {report.finished[0].outcome}, the customer got {kind.value}")
    stored = report.stored
    if stored is None:
        problems.append("no row in the calls table")
    elif kind is not None and (stored.outcome, stored.agent1_id) != (kind.value, agent1):
        problems.append(
            f"calls table says {stored.outcome}/{stored.agent1_id}, "
            f"the customer got {kind.value}/{agent1}"
        )
    return problems


def log_warnings(lines: Iterable[bytes]) -> Counter[str]:
    """Events logged at warning level or above, counted by event name."""
    counts: Counter[str] = Counter()
    for raw in lines:
        if b'"level":"warning"' not in raw and b'"level":"error"' not in raw:
            continue
        try:
            data: Any = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(data, dict):
            counts[str(data.get("event", "?"))] += 1
    return counts


# --- statistics ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutcomeStat:
    """Calls that ended one way, with their mean time to connect and legs per call."""

    outcome: str
    calls: int
    mean_time_to_connect_s: float | None
    legs_per_call: float | None


@dataclass(frozen=True, slots=True)
class ScenarioStat:
    """A scenario's calls: what was expected, what happened, how many were right."""

    scenario: Scenario
    calls: int
    as_expected: int
    actual: Counter[str]
    legs_per_call: float | None
    tiers_tried: str  # the most common tiers_tried, e.g. "1,3"


def _mean(values: Iterable[float]) -> float | None:
    items = list(values)
    return fmean(items) if items else None


def outcome_stats(reports: Sequence[CallReport]) -> list[OutcomeStat]:
    """Per actual outcome (connected, voicemail, hung_up; ``none`` for no post), in that order."""
    order = [k.value for k in OutcomeKind] + ["none"]
    groups: dict[str, list[CallReport]] = {}
    for report in reports:
        kind = report.actual[0]
        groups.setdefault(kind.value if kind else "none", []).append(report)
    stats = []
    for name in order:
        group = groups.get(name)
        if not group:
            continue
        lines = [r.line for r in group if r.line is not None]
        stats.append(
            OutcomeStat(
                outcome=name,
                calls=len(group),
                mean_time_to_connect_s=_mean(
                    ln.time_to_connect_s for ln in lines if ln.time_to_connect_s is not None
                ),
                legs_per_call=_mean(ln.legs for ln in lines),
            )
        )
    return stats


def scenario_stats(
    reports: Sequence[CallReport], scenarios: Sequence[Scenario]
) -> list[ScenarioStat]:
    """Per scenario, in table order (scenarios without calls are left out)."""
    stats = []
    for scenario in scenarios:
        group = [r for r in reports if r.scenario.code == scenario.code]
        if not group:
            continue
        lines = [r.line for r in group if r.line is not None]
        tiers = Counter(",".join(map(str, ln.tiers_tried)) or "-" for ln in lines)
        stats.append(
            ScenarioStat(
                scenario=scenario,
                calls=len(group),
                as_expected=sum(1 for r in group if not r.problems()),
                actual=Counter(r.actual_label for r in group),
                legs_per_call=_mean(ln.legs for ln in lines),
                tiers_tried=tiers.most_common(1)[0][0] if tiers else "-",
            )
        )
    return stats
